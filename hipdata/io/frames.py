"""Validate DataFrames built in a notebook by the same rules and quarantine as files (CONTRACT §2).

Each frame becomes the loader's :class:`~hipdata.io.readers.RawTable` (its cells as the text a
file would hold) and goes through :func:`hipdata.io.loader.load` unchanged, so a frame and a CSV
with the same content give the same clean tables, the same quarantine reasons and the same load
report. Typed columns are written as exact canonical text that the loader's parsers read back to
the same value: ``datetime64`` as ISO dates (``2026-03-04``, never day/month-ambiguous), floats
as their shortest round-trip decimal (``0.1 + 0.2`` stays ``0.30000000000000004``), integers and
booleans as written. Nothing is guessed and nothing is rounded on the way.

Where a quarantined row came from: ``source_file`` is the table's name with `` (DataFrame)``
(``"patients (DataFrame)"``) and ``source_row`` is the frame's row *position* + 2, the row a
spreadsheet shows after ``frame.to_csv(index=False)`` (header on row 1): the row is
``frame.iloc[source_row - 2]``, whatever the frame's index.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from hipdata.dataset import Dataset
from hipdata.errors import DataError
from hipdata.io.readers import (
    RawTable,
    _cell_text,
    _check_width,
    _limit_cell_length,
    column_key,
)

TABLES = ("patients", "exercises", "activity", "outcomes", "treatments")
#: Also accepted as a table name: ``sets`` is the name :meth:`Dataset.from_frames` uses.
TABLE_ALIASES = {"sets": "exercises"}
FRAME_SUFFIX = " (DataFrame)"
#: First spreadsheet row of data (the header is row 1).
FIRST_ROW = 2


def frame_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """The cells of ``frame`` as the text a file reader would produce (vectorised per column).

    Missing values (``None``, ``NaN``, ``NaT``, ``pd.NA``) become ``""``; text is stripped;
    ``datetime64`` values are ``YYYY-MM-DD`` at midnight and ``YYYY-MM-DDTHH:MM:SS`` otherwise
    (time zones dropped, the wall-clock date kept); booleans ``true``/``false``; whole floats
    without ``.0``; other floats in their shortest round-trip form (``repr``). Object columns
    mixing types use the Excel/Parquet readers' rule for each cell.

    Examples
    --------
    >>> import pandas as pd
    >>> frame_cells(pd.DataFrame({"d": pd.to_datetime(["2026-03-04", None]),
    ...                           "x": [3.0, 0.1 + 0.2], "b": [True, False]})).values.tolist()
    [['2026-03-04', '3', 'true'], ['', '0.30000000000000004', 'false']]
    """
    columns = {}
    for position in range(frame.shape[1]):
        columns[position] = _column_text(frame.iloc[:, position])
    cells = pd.DataFrame(columns, dtype=object, index=pd.RangeIndex(len(frame)))
    cells.columns = list(frame.columns)
    return cells.reset_index(drop=True)


def _column_text(values: pd.Series) -> pd.Series:
    missing = values.isna().to_numpy()
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        text = np.where(values.fillna(False).to_numpy(dtype=bool), "true", "false")
    elif pd.api.types.is_datetime64_any_dtype(dtype):
        stamps = values.dt.tz_localize(None) if getattr(dtype, "tz", None) else values
        moments = stamps.to_numpy()
        days = moments.astype("datetime64[D]")
        text = np.datetime_as_string(days)
        timed = ~missing & (moments != days)
        if timed.any():  # a time of day is kept in the text (the date parser drops it)
            text = text.astype(object)
            text[timed] = np.datetime_as_string(moments[timed], unit="s")
    elif pd.api.types.is_integer_dtype(dtype):
        numbers = values.to_numpy(dtype=object, na_value=0)
        text = _per_distinct(numbers, lambda distinct: distinct.astype(str))
    elif pd.api.types.is_float_dtype(dtype):
        # in the column's own precision: a float32 0.1 is "0.1", as the Parquet reader gives it
        native = np.dtype(getattr(dtype, "numpy_dtype", dtype))
        precision = native if native.itemsize < 8 else np.float64
        text = _per_distinct(values.to_numpy(dtype=precision, na_value=np.nan), _float_text)
    else:
        cells = values.astype(object)
        if pd.api.types.infer_dtype(cells, skipna=True) in ("string", "empty"):
            text = cells.where(~missing, "").astype(object).str.strip().to_numpy(dtype=object)
        else:  # mixed Python objects (dates, numbers, text): the readers' rule, cell by cell
            text = cells.map(_cell_text).to_numpy(dtype=object)
    out = np.array(text, dtype=object)  # a copy: some inputs are read-only views
    out[missing] = ""
    return pd.Series(out, dtype=object)


def _per_distinct(values: np.ndarray, convert) -> np.ndarray:
    """``convert`` applied once per distinct value (logs repeat the same numbers endlessly)."""
    codes, distinct = pd.factorize(values, use_na_sentinel=False)
    return np.asarray(convert(np.asarray(distinct)), dtype=object)[codes]


def _float_text(numbers: np.ndarray) -> np.ndarray:
    whole = np.isfinite(numbers) & (np.abs(numbers.astype(np.float64)) < 2**53)
    whole[whole] = numbers[whole] == np.round(numbers[whole])
    # numpy writes the shortest text that reads back as the same float, like repr()
    return np.where(
        whole, np.where(whole, numbers, 0).astype(np.int64).astype(str), numbers.astype(str)
    )


def frame_to_raw(frame: pd.DataFrame, table: str) -> RawTable:
    """Wrap a DataFrame as the loader's raw table named ``"<table> (DataFrame)"``.

    Header rules are the file readers': names are stripped, an empty name or two names for the
    same field (``Patient ID`` and ``patient_id``) stop with a :class:`DataError`. Every row is a
    row read: a row with every cell empty is quarantined (a file's blank line is not a record, a
    frame's row is).
    """
    name = f"{table}{FRAME_SUFFIX}"
    if not isinstance(frame, pd.DataFrame):
        raise DataError(
            f"the {table} table is a {type(frame).__name__}, not a DataFrame",
            file=name,
            fix="pass a pandas DataFrame",
        )
    _check_width(Path(name), frame.shape[1])  # the file readers' limits apply to frames too
    cells = frame_cells(frame)
    headers = [str(column).strip() for column in frame.columns]
    if any(header == "" for header in headers):
        raise DataError(
            "a column has an empty name",
            file=name,
            fix="give every column a name (or drop the unnamed column)",
        )
    seen: dict[str, str] = {}
    for header in headers:
        key = column_key(header)
        if key in seen:
            raise DataError(
                f"columns {seen[key]!r} and {header!r} name the same field",
                file=name,
                fix="keep one of them",
            )
        seen[key] = header
    cells.columns = headers
    raw = RawTable(Path(name), cells, np.arange(len(cells), dtype=np.int64) + FIRST_ROW)
    _limit_cell_length(raw)
    return raw


def validate(
    frames: Mapping[str, pd.DataFrame] | None = None,
    *,
    dayfirst: bool | None = None,
    pain_scale: str = "nrs",
    catalogue: str | Path | pd.DataFrame | None = None,
    measures=None,
    today: str | pd.Timestamp | None = None,
    **tables: pd.DataFrame,
) -> Dataset:
    """Validate DataFrames as the loader validates files: same rules, reasons and quarantine.

    Parameters
    ----------
    frames : mapping of str to DataFrame, optional
        Table name -> frame, the names of a data folder's files: ``patients`` (required),
        ``exercises`` (``sets`` is accepted for it), ``activity``, ``outcomes``, ``treatments``;
        the tables the loader requires are required here too. The tables may also be given as keywords (``patients=...``). Columns
        are the input tables' of CONTRACT §1 (matched ignoring case and spaces, both exercise
        layouts accepted), as text or typed (``datetime64``, numbers, booleans).
    dayfirst, pain_scale, catalogue, measures, today
        As for :func:`hipdata.load`.

    Returns
    -------
    Dataset
        Clean tables, the quarantine (``source_file`` ``"<table> (DataFrame)"``, ``source_row``
        the frame's row position + 2) and the load report, where for every frame
        ``rows_read == rows_kept + rows_quarantined``.

    Raises
    ------
    DataError
        When a frame cannot be used at all (a required table or column missing, a name that is
        not a table, two columns for one field).

    Examples
    --------
    >>> import pandas as pd
    >>> ds = validate(
    ...     patients=pd.DataFrame({"patient_id": ["P1"], "clinic_id": ["C1"],
    ...                            "start_date": pd.to_datetime(["2026-01-05"])}),
    ...     exercises=pd.DataFrame({"patient_id": ["P1", "P1"], "date": ["2026-01-05", "2026-01-05"],
    ...                             "exercise": ["bridge", "bridge"], "set": [1, 2],
    ...                             "reps": [10, 250]}))
    >>> ds.quarantine[["source_file", "source_row", "column", "reason"]].values.tolist()
    [['exercises (DataFrame)', 3, 'reps', 'reps above 200 is impossible']]
    """
    from hipdata.io.loader import REQUIRED_TABLES, load

    if isinstance(frames, pd.DataFrame):
        raise DataError(
            "validate() takes the tables by name, not a single DataFrame",
            fix="call hipdata.validate(patients=..., exercises=...) or pass "
            '{"patients": ..., "exercises": ...}',
        )
    given = {**dict(frames or {}), **tables}
    raws: dict[str, RawTable] = {}
    for key, frame in given.items():
        table = TABLE_ALIASES.get(str(key).strip().lower(), str(key).strip().lower())
        if table not in TABLES:
            raise DataError(
                f"{key!r} is not a table hipdata reads",
                file=f"{key}{FRAME_SUFFIX}",
                fix=f"name the frames {', '.join(TABLES)}",
            )
        if table in raws:
            raise DataError(
                f"two frames for the {table} table",
                file=f"{table}{FRAME_SUFFIX}",
                fix="give each table once",
            )
        if frame is not None:
            raws[table] = frame_to_raw(frame, table)
    for table in REQUIRED_TABLES:
        if table not in raws:
            raise DataError(
                f"no {table} table among the frames given",
                file=f"{table}{FRAME_SUFFIX}",
                fix=f"pass the {table} DataFrame ({table}=...)",
            )
    ordered = {table: raws[table] for table in TABLES if table in raws}
    dataset = load(
        ordered,
        dayfirst=dayfirst,
        pain_scale=pain_scale,
        catalogue=catalogue,
        measures=measures,
        today=today,
    )
    digest = hashlib.sha256()
    for table, raw in ordered.items():
        digest.update(table.encode() + b"\0" + "\x1f".join(raw.cells.columns).encode() + b"\0")
        digest.update(pd.util.hash_pandas_object(raw.cells, index=False).to_numpy().tobytes())
    dataset.input_hash = digest.hexdigest()
    dataset.source = "DataFrames"
    return dataset
