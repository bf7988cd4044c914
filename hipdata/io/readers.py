"""Read one input file (CSV, Excel .xlsx, Parquet) into a table of text cells.

Every reader returns the same thing: a DataFrame of ``str`` cells (empty string for an empty
cell) with normalised column names, plus the 1-based spreadsheet row of each record (the header
is row 1). Parsing numbers and dates happens later, in one place, so that every format gets the
same rules and the same quarantine reasons.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hipdata.errors import DataError

SUPPORTED_SUFFIXES = (".csv", ".txt", ".tsv", ".xlsx", ".parquet")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def column_key(name: object) -> str:
    """Case- and space-insensitive column key: ``'Patient ID'``, ``'patient_id'`` -> ``'patientid'``."""
    return _NON_ALNUM.sub("", str(name).lower())


@dataclass
class RawTable:
    """A file's records as text, before any parsing."""

    path: Path
    cells: pd.DataFrame  # one column per input column, named by its original header
    source_row: np.ndarray  # 1-based spreadsheet row of each record
    #: records that could not be split into cells (wrong number of fields): (row, text)
    malformed: list[tuple[int, str]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name


def read_raw(path: Path) -> RawTable:
    """Read a CSV / Excel / Parquet file into text cells; raise :class:`DataError` if unreadable."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt", ".tsv"):
        raw = _read_csv(path)
    elif suffix == ".xlsx":
        raw = _read_xlsx(path)
    elif suffix == ".parquet":
        raw = _read_parquet(path)
    elif suffix in (".xls", ".ods", ".numbers"):
        raise DataError(
            f"{suffix} files are not supported",
            file=path.name,
            fix="save the sheet as .xlsx or as CSV (UTF-8) and run again",
        )
    else:
        raise DataError(
            f"unknown file type {suffix!r}",
            file=path.name,
            fix="give the table as .csv, .xlsx or .parquet",
        )
    raw.cells.columns = [str(c).strip() for c in raw.cells.columns]
    if any(c == "" for c in raw.cells.columns):
        raise DataError(
            "a column has an empty header",
            file=path.name,
            fix="give every column a name in the first row (or delete the empty column)",
        )
    keys = [column_key(c) for c in raw.cells.columns]
    seen: dict[str, str] = {}
    for original, key in zip(raw.cells.columns, keys, strict=True):
        if key in seen:
            raise DataError(
                f"columns {seen[key]!r} and {original!r} name the same field",
                file=path.name,
                fix="keep one of them",
            )
        seen[key] = original
    # drop records with every cell empty (blank lines, Excel's trailing rows): they hold no data
    # and are not counted as rows read; row numbers of the others stay as the file shows them
    filled = (raw.cells != "").any(axis=1).to_numpy()
    if not filled.all():
        raw.cells = raw.cells.loc[filled].reset_index(drop=True)
        raw.source_row = raw.source_row[filled]
    return raw


def _decode(path: Path, data: bytes) -> str:
    if not data.strip():
        raise DataError("the file is empty", file=path.name, fix="export the table again")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if data.startswith(b"PK\x03\x04"):
        raise DataError(
            "the file is a zip/Excel workbook with a .csv name",
            file=path.name,
            fix="rename it to .xlsx, or export it as CSV",
        )
    if b"\x00" in data[:4096]:
        raise DataError(
            "the file is binary, not a text table",
            file=path.name,
            fix="export the table as CSV (UTF-8), .xlsx or .parquet",
        )
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        # Excel on Windows writes "CSV" in the ANSI code page: cp1252 in Western Europe
        return data.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"the text encoding is neither UTF-8 nor Windows-1252 (byte {exc.start})",
            file=path.name,
            fix="save the file as 'CSV UTF-8'",
        ) from exc


def _sniff_delimiter(text: str) -> str:
    header = next((line for line in text.splitlines() if line.strip()), "")
    outside_quotes = re.sub(r'"[^"]*"', "", header)
    counts = {sep: outside_quotes.count(sep) for sep in (",", ";", "\t")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] > 0 else ","


def _read_csv(path: Path) -> RawTable:
    text = _decode(path, path.read_bytes())
    sep = _sniff_delimiter(text)
    fast = _read_csv_fast(text, sep)
    if fast is not None:
        return RawTable(path, fast[0], fast[1])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    try:
        records = list(reader)
    except csv.Error as exc:
        raise DataError(
            f"not a readable table ({exc})", file=path.name, fix="export the table again as CSV"
        ) from exc
    first = 0
    while first < len(records) and not any(cell.strip() for cell in records[first]):
        first += 1  # leading blank lines: the header is the first line with text
    if first == len(records):
        raise DataError("the file is empty", file=path.name, fix="export the table again")
    header = [cell.strip() for cell in records[first]]
    width = len(header)
    rows, row_numbers, malformed = [], [], []
    for number, record in enumerate(records[first + 1 :], start=first + 2):
        if len(record) == width:
            rows.append(record)
        elif len(record) < width:
            if any(cell.strip() for cell in record):
                # spreadsheet programs drop trailing empty cells: pad them
                rows.append(record + [""] * (width - len(record)))
            else:
                rows.append([""] * width)
        elif not any(cell.strip() for cell in record[width:]):
            rows.append(record[:width])  # trailing empty fields (a stray separator)
        else:
            malformed.append((number, sep.join(record)))
            continue
        row_numbers.append(number)
    cells = pd.DataFrame(rows, columns=header, dtype=object)
    for position in range(cells.shape[1]):
        cells.isetitem(position, cells.iloc[:, position].str.strip())
    return RawTable(path, cells, np.asarray(row_numbers, dtype=np.int64), malformed)


def _read_csv_fast(text: str, sep: str) -> tuple[pd.DataFrame, np.ndarray] | None:
    """pandas' C parser for the common case; ``None`` (use the careful path) when a record has
    more cells than the header or the file starts with blank lines, so row numbers stay exact."""
    first_line = text.lstrip("\ufeff").splitlines()[0] if text else ""
    header = next(csv.reader([first_line], delimiter=sep), [])
    if not first_line.strip() or len({h.strip() for h in header}) != len(header):
        return None  # leading blank lines or repeated headers: the careful path reports them
    try:
        cells = pd.read_csv(
            io.StringIO(text),
            sep=sep,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            index_col=False,
            engine="c",
        )
    except (pd.errors.ParserError, ValueError):
        return None
    cells = cells.astype(object).fillna("")
    for position in range(cells.shape[1]):
        cells.isetitem(position, cells.iloc[:, position].str.strip())
    return cells, np.arange(len(cells), dtype=np.int64) + 2


def _cell_text(value: object) -> str:
    """Excel and Parquet cells as the text the CSV reader would have produced."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return ""
    if value is pd.NaT:
        return ""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, pd.Timestamp) or hasattr(value, "isoformat"):
        stamp = pd.Timestamp(value)
        if stamp.tz is not None:
            stamp = stamp.tz_localize(None)
        return stamp.strftime("%Y-%m-%d") if stamp == stamp.normalize() else stamp.isoformat()
    if isinstance(value, float | np.floating):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return str(value).strip()


def _read_xlsx(path: Path) -> RawTable:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several types for a broken workbook
        raise DataError(
            f"not a readable Excel workbook ({type(exc).__name__}: {exc})",
            file=path.name,
            fix="open it in Excel and save it again as .xlsx, or export it as CSV",
        ) from exc
    try:
        sheet = workbook.worksheets[0]
        records = [
            (number, [_cell_text(v) for v in values])
            for number, values in enumerate(sheet.iter_rows(values_only=True), start=1)
        ]
    finally:
        workbook.close()
    records = [(n, r) for n, r in records if any(r)] or []
    if not records:
        raise DataError("the first sheet is empty", file=path.name, fix="put the table first")
    _, header = records[0]
    while header and header[-1] == "":
        header = header[:-1]
    width = len(header)
    rows = [r[:width] + [""] * (width - len(r)) for _, r in records[1:]]
    malformed = [(n, ";".join(r)) for n, r in records[1:] if any(c for c in r[width:])]
    bad = {n for n, _ in malformed}
    keep = [i for i, (n, _) in enumerate(records[1:]) if n not in bad]
    cells = pd.DataFrame([rows[i] for i in keep], columns=header, dtype=object)
    numbers = np.asarray([records[1:][i][0] for i in keep], dtype=np.int64)
    return RawTable(path, cells, numbers, malformed)


def _read_parquet(path: Path) -> RawTable:
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a broken file
        raise DataError(
            f"not a readable Parquet file ({type(exc).__name__}: {exc})",
            file=path.name,
            fix="write the table again with pandas.DataFrame.to_parquet",
        ) from exc
    cells = pd.DataFrame({column: _column_text(frame[column]) for column in frame.columns})
    return RawTable(path, cells, np.arange(len(frame), dtype=np.int64) + 2)


def _column_text(values: pd.Series) -> np.ndarray:
    """A typed column as the text :func:`_cell_text` gives each cell, converting each distinct
    value once (a registry's Parquet column has millions of cells but few distinct values);
    missing values of any kind (``None``, ``NaN``, ``NaT``, ``pd.NA``) become ``""``."""
    try:
        codes, distinct = pd.factorize(values, use_na_sentinel=True)
    except TypeError:  # unhashable cells (lists, dicts): convert one by one
        return np.asarray([_cell_text(v) for v in values.tolist()], dtype=object)
    texts = np.asarray([_cell_text(v) for v in distinct.tolist()] + [""], dtype=object)
    return texts[codes]  # the sentinel -1 picks the trailing ""
