"""The shared core of every importer: read a source file's records, account for every row,
and write a canonical data folder that :func:`hipdata.load` reads.

An importer turns one export (a workout app's CSV, a REDCap project, ...) into hipdata's input
tables and returns an :class:`ImportResult`. Every *data row* of the source (a non-blank record
after the header) ends in exactly one place: it is **kept** (it became, or was merged into, a row
of a canonical table) or **quarantined** (one row in ``quarantine`` with the loader's columns:
``source_file, source_row, column, value, reason, other_problems``; ``source_row`` is the
1-based spreadsheet row, header = row 1). ``import_report`` has one row per source file with
``file, read, kept, quarantined`` and ``read = kept + quarantined``.

Building blocks for an importer:

- :func:`read_records` reads a CSV file into text cells and row numbers (records with more
  cells than the header are returned separately, never shifted silently);
- :class:`RowProblems` collects "this row is rejected because ..." per rule, vectorised, and
  turns them into quarantine rows (first problem as the reason, the others in
  ``other_problems``, like the loader);
- :func:`report_row` counts one file; :class:`ImportResult` holds the tables and writes them.
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

#: Columns of ``quarantine.csv`` written by an import (the loader's, without ``table``).
QUARANTINE_COLUMNS = ["source_file", "source_row", "column", "value", "reason", "other_problems"]
#: Columns of ``import_report.csv``.
REPORT_COLUMNS = ["file", "read", "kept", "quarantined"]
#: Columns of ``import_columns.csv``: what became of every source column.
COLUMN_REPORT_COLUMNS = ["file", "column", "used_as"]
#: Columns of ``import_notes.csv``: kept rows that were changed to be read (e.g. repaired).
NOTE_COLUMNS = ["file", "row", "note"]
#: The order in which canonical tables are written.
TABLE_ORDER = ("patients", "exercises", "activity", "outcomes", "treatments")

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def key(name: object) -> str:
    """Column key ignoring case, spaces and punctuation (``'Weight (kg)'`` -> ``'weightkg'``)."""
    return _NON_ALNUM.sub("", str(name).lower())


@dataclass
class Records:
    """A CSV file's data records as text cells.

    ``cells`` has one column per header cell (as written, stripped) and one row per well-formed
    data record; ``rows`` the 1-based spreadsheet row of each (header = row 1; a record with a
    line break inside a quoted cell is one row). ``long`` holds records with more non-empty cells
    than the header: ``(row, cells)`` pairs, for the importer to repair or quarantine.
    """

    path: Path
    header: list[str]
    cells: pd.DataFrame
    rows: np.ndarray
    long: list[tuple[int, list[str]]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def data_rows(self) -> int:
        """Non-blank records after the header: the ``read`` count of the import report."""
        return len(self.cells) + len(self.long)

    def column(self, *keys: str) -> str | None:
        """The header whose :func:`key` is the first of ``keys`` found, else ``None``."""
        by_key = {key(h): h for h in self.header}
        for wanted in keys:
            if wanted in by_key:
                return by_key[wanted]
        return None


def decode(path: Path) -> str:
    """The file's text: UTF-16 with BOM, UTF-8 (BOM or not), else Windows-1252."""
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if b"\x00" in data[:4096]:
        raise DataError(
            "the file is binary, not a CSV export",
            file=path.name,
            fix="give the CSV file the app exported (unzip it first if needed)",
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252")


def read_records(
    path: str | Path, *, delimiter: str | None = None, trim_trailing: bool = True
) -> Records:
    """Read a CSV export into text cells, numbering rows as a spreadsheet shows them.

    The delimiter is the one of ``,``, ``;`` and tab that occurs most often in the header line
    outside quotes (unless given). Line endings (LF, CRLF) and a UTF-8 BOM are handled. Blank
    records are not data rows (they keep their row number). Records shorter than the header are
    padded with empty cells. Records longer than it are trimmed when the extra cells are empty
    (a trailing separator) and ``trim_trailing`` is true, and otherwise returned in ``long``
    (cells as written): a format with unquoted text (FitNotes) passes ``trim_trailing=False``,
    because there an extra empty cell at the end means a value was split and the rest shifted.

    Raises
    ------
    DataError
        When the file is empty, binary or has no header.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("no such file", file=str(path), fix="give the exported CSV file")
    text = decode(path)
    if not text.strip():
        raise DataError("the file is empty", file=path.name, fix="export the data again")
    if delimiter is None:
        first = next((line for line in text.splitlines() if line.strip()), "")
        outside = re.sub(r'"[^"]*"', "", first)
        counts = {sep: outside.count(sep) for sep in (",", ";", "\t")}
        delimiter = max(counts, key=lambda sep: counts[sep])
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise DataError(
            f"not a readable CSV file ({exc})", file=path.name, fix="export the data again"
        ) from exc
    start = 0
    while start < len(records) and not any(c.strip() for c in records[start]):
        start += 1
    if start == len(records):
        raise DataError("the file is empty", file=path.name, fix="export the data again")
    header = [c.strip() for c in records[start]]
    width = len(header)
    rows, numbers, long = [], [], []
    for number, record in enumerate(records[start + 1 :], start=start + 2):
        cells = [c.strip() for c in record]
        if not any(cells):
            continue
        if len(cells) > width and (any(cells[width:]) or not trim_trailing):
            long.append((number, list(record)))  # as written: a repair re-joins the cells
            continue
        rows.append((cells + [""] * width)[:width])
        numbers.append(number)
    frame = pd.DataFrame(rows, columns=range(width), dtype=object)
    frame.columns = header
    return Records(path, header, frame, np.asarray(numbers, dtype=np.int64), long)


class RowProblems:
    """Problems of a file's rows, collected rule by rule, then turned into quarantine rows.

    ``flag(mask, column, reason, values)`` rejects the rows where ``mask`` is true; a row's first
    flagged problem is its quarantine reason and later ones go to ``other_problems``.
    """

    def __init__(self, file: str, rows: np.ndarray):
        self.file = file
        self.rows = np.asarray(rows, dtype=np.int64)
        self._parts: list[pd.DataFrame] = []

    def flag(self, mask, column: str, reason, values=None) -> None:
        """Reject rows where ``mask``; ``reason`` and ``values`` are scalars or per-row arrays."""
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        where = np.flatnonzero(mask)
        n = len(self.rows)

        def pick(x):
            x = np.asarray(x, dtype=object) if not np.isscalar(x) else np.full(n, x, dtype=object)
            return x[where]

        self._parts.append(
            pd.DataFrame(
                {
                    "position": where,
                    "column": column,
                    "value": pick("" if values is None else values),
                    "reason": pick(reason),
                    "order": len(self._parts),
                }
            )
        )

    @property
    def bad(self) -> np.ndarray:
        """Boolean array: the row is quarantined."""
        out = np.zeros(len(self.rows), dtype=bool)
        for part in self._parts:
            out[part["position"].to_numpy()] = True
        return out

    def quarantine(self) -> pd.DataFrame:
        """One quarantine row per rejected row, ordered by row."""
        if not self._parts:
            return empty_quarantine()
        problems = pd.concat(self._parts, ignore_index=True).sort_values(
            ["position", "order"], kind="stable"
        )
        first = problems.drop_duplicates("position").set_index("position")
        rest = problems[problems.duplicated("position")]
        others = (rest["column"] + ": " + rest["reason"]).groupby(rest["position"]).agg("; ".join)
        first["other_problems"] = others.reindex(first.index).fillna("")
        first["source_row"] = self.rows[first.index.to_numpy()]
        first["source_file"] = self.file
        out = first.reset_index(drop=True)[QUARANTINE_COLUMNS]
        out["value"] = out["value"].astype(str)
        return out.sort_values("source_row", kind="stable").reset_index(drop=True)


def empty_quarantine() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in QUARANTINE_COLUMNS})


def quarantine_rows(file: str, rows, column: str, values, reason) -> pd.DataFrame:
    """Quarantine rows built directly (e.g. records with too many cells)."""
    rows = list(rows)
    if not rows:
        return empty_quarantine()
    return pd.DataFrame(
        {
            "source_file": file,
            "source_row": np.asarray(rows, dtype=np.int64),
            "column": column,
            "value": [str(v)[:200] for v in values],
            "reason": reason,
            "other_problems": "",
        }
    )[QUARANTINE_COLUMNS]


def report_row(file: str, read: int, quarantine: pd.DataFrame) -> dict:
    """One ``import_report`` row: ``kept = read - quarantined`` rows of ``file``."""
    quarantined = int((quarantine["source_file"] == file).sum())
    if quarantined > read:  # an importer bug, never a data problem
        raise AssertionError(f"{file}: {quarantined} rows quarantined but only {read} read")
    return {
        "file": file,
        "read": int(read),
        "kept": int(read - quarantined),
        "quarantined": quarantined,
    }


@dataclass
class ImportResult:
    """What an import produced: canonical tables, the quarantine and the row accounting.

    Attributes
    ----------
    tables : dict of str to DataFrame
        Canonical input tables by name (``patients``, ``exercises``, ``activity``, ...), with the
        loader's column names; values as text or numbers, dates as ``YYYY-MM-DD``.
    quarantine : DataFrame
        :data:`QUARANTINE_COLUMNS`; one row per source row that was not kept.
    report : DataFrame
        :data:`REPORT_COLUMNS`; one row per source file, ``read = kept + quarantined``.
    columns : DataFrame
        :data:`COLUMN_REPORT_COLUMNS`: what became of each source column (read as ..., or
        ignored and why), so columns are accounted for as strictly as rows.
    notes : DataFrame
        :data:`NOTE_COLUMNS`: kept rows that needed a change to be read (a repair).
    """

    tables: dict[str, pd.DataFrame]
    quarantine: pd.DataFrame
    report: pd.DataFrame
    columns: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=COLUMN_REPORT_COLUMNS)
    )
    notes: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=NOTE_COLUMNS))

    def check(self) -> None:
        """Raise ``AssertionError`` unless every file reconciles (``read = kept + quarantined``)."""
        for row in self.report.itertuples(index=False):
            quarantined = int((self.quarantine["source_file"] == row.file).sum())
            if row.read != row.kept + row.quarantined or quarantined != row.quarantined:
                raise AssertionError(f"{row.file}: the import report does not reconcile")

    def write(self, folder: str | Path) -> list[Path]:
        """Write the tables, ``quarantine.csv``, ``import_report.csv``, ``import_columns.csv``
        and ``import_notes.csv`` into ``folder`` (created if needed); return the paths.

        Every table in ``tables`` is written, with a header only when it has no rows (so a
        second import into the same folder never leaves a stale table behind; the loader reads
        a header-only table as no rows).
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for name in TABLE_ORDER + tuple(t for t in self.tables if t not in TABLE_ORDER):
            table = self.tables.get(name)
            if table is None:
                continue
            written.append(_write_csv(table, folder / f"{name}.csv"))
        for name, frame in (
            ("quarantine", self.quarantine),
            ("import_report", self.report),
            ("import_columns", self.columns),
            ("import_notes", self.notes),
        ):
            written.append(_write_csv(frame, folder / f"{name}.csv"))
        return written


def _write_csv(frame: pd.DataFrame, path: Path) -> Path:
    from hipdata.io.writers import neutralise_text  # no live spreadsheet formulas (issue 8.5)

    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[column]):
            out[column] = out[column].dt.strftime("%Y-%m-%d")
    out = out.apply(neutralise_text)
    temporary = path.with_name(path.name + ".tmp")
    out.to_csv(temporary, index=False, lineterminator="\n")
    temporary.replace(path)
    return path


def concat_results(results: list[ImportResult]) -> ImportResult:
    """Combine the results of several files (one patient each) into one."""
    names = []
    for result in results:
        names.extend(n for n in result.tables if n not in names)
    tables = {
        name: pd.concat([r.tables[name] for r in results if name in r.tables], ignore_index=True)
        for name in names
    }
    return ImportResult(
        tables=tables,
        quarantine=pd.concat([r.quarantine for r in results], ignore_index=True),
        report=pd.concat([r.report for r in results], ignore_index=True),
        columns=pd.concat([r.columns for r in results], ignore_index=True),
        notes=pd.concat([r.notes for r in results], ignore_index=True),
    )
