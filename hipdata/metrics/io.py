"""Write computed tables to disk (CSV or Parquet), atomically."""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

FORMATS = {"csv": ".csv", "parquet": ".parquet"}


def csv_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` shaped for the contract's CSV conventions.

    Booleans become ``true`` / ``false`` (missing stays empty), and float columns holding only
    whole numbers become nullable integers, so ``3.0`` is written ``3`` (a value written
    ``3`` reads back as the same number). Dates are formatted by :func:`write_tables`.
    """
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if pd.api.types.is_bool_dtype(values.dtype):
            words = np.where(values.fillna(False).astype(bool), "true", "false")
            out[column] = pd.Series(words, index=out.index, dtype="object").where(
                values.notna(), None
            )
        elif pd.api.types.is_float_dtype(values.dtype):
            present = values.dropna()
            if np.isfinite(present).all() and (present == np.round(present)).all():
                out[column] = values.round().astype("Int64")
    return out


def _write_one(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    # A hidden name in the same folder (os.replace is atomic only within one file system); not
    # mkstemp, whose 0600 mode would survive the rename and hide the table from other users.
    temp_name = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        if fmt == "csv":
            csv_ready(frame).to_csv(
                temp_name, index=False, date_format="%Y-%m-%d", na_rep="", lineterminator="\n"
            )
        else:
            frame.to_parquet(temp_name, index=False)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def write_tables(
    tables: Mapping[str, pd.DataFrame], out_dir: str | os.PathLike, *, format: str = "csv"
) -> dict[str, Path]:
    """Write each table as ``out_dir/<name>.csv`` (or ``.parquet``), creating ``out_dir``.

    Each file is written to a temporary name in ``out_dir`` and moved into place with
    :func:`os.replace`, so a reader never sees a half-written table and a failed write leaves the
    previous file intact. CSV follows CONTRACT §5: dates ``YYYY-MM-DD``, booleans
    ``true``/``false``, missing values empty, whole-number columns without ``.0``; UTF-8, comma
    separated. Parquet keeps the DataFrame's dtypes.

    Parameters
    ----------
    tables : mapping of str to DataFrame
        Table name -> table, e.g. the result of :func:`compute_all`.
    out_dir : path
        The output folder.
    format : {"csv", "parquet"}
        File format.

    Returns
    -------
    dict of str to Path
        Table name -> file written.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}: use one of {', '.join(FORMATS)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, frame in tables.items():
        if not name or Path(name).name != name or name.startswith("."):
            raise ValueError(f"table name {name!r} cannot be used as a file name")
        path = out_dir / f"{name}{FORMATS[format]}"
        _write_one(frame, path, format)
        written[name] = path
    return written
