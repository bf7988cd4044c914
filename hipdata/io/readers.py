"""Read one input file (CSV, Excel .xlsx, Parquet) into a table of text cells.

Every reader returns the same thing: a DataFrame of text cells (empty string for an empty cell)
with the columns as headed in the file, plus the 1-based spreadsheet row of each record (the
header is row 1). Parsing numbers and dates happens later, in one place, so that every format
gets the same rules and the same quarantine reasons.

What a reader cannot turn into cells it reports instead of guessing: records with more cells
than the header (``malformed``), cells it refuses (``problems``: a cell over the length limit,
an Excel formula without a saved result), columns it cannot read as text (``unusable``: Parquet
structs and maps) and facts about the file a user should know (``notes``: a hidden sheet skipped,
rows decoded as Windows-1252, a systematic trailing delimiter). Input that would cost unbounded
time or memory is refused before it is parsed (:data:`MAX_COLUMNS`, :data:`MAX_XLSX_PART_BYTES`,
:data:`MAX_XLSX_SHARED_STRINGS_BYTES`).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hipdata.errors import DataError

SUPPORTED_SUFFIXES = (".csv", ".txt", ".tsv", ".xlsx", ".parquet")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")

#: Longest cell read (characters); a longer cell quarantines its row.
MAX_CELL_CHARS = 10_000
#: Most columns a table may have; a wider file is refused before it is parsed.
MAX_COLUMNS = 500
#: Largest uncompressed part of an .xlsx workbook (bytes), checked before openpyxl opens it.
MAX_XLSX_PART_BYTES = 512 * 2**20
#: Largest uncompressed shared-strings part of an .xlsx workbook (bytes): openpyxl holds every
#: shared string in memory, so a small zip with a huge part would take gigabytes.
MAX_XLSX_SHARED_STRINGS_BYTES = 64 * 2**20
#: Files above this size get a note in the load report (loading needs a few times their size).
LARGE_FILE_BYTES = 500 * 2**20
#: Characters of a cell echoed into the quarantine or an error message.
ECHO_CHARS = 200


def column_key(name: object) -> str:
    """Case- and space-insensitive column key: ``'Patient ID'``, ``'patient_id'`` -> ``'patientid'``."""
    return _NON_ALNUM.sub("", str(name).lower())


def map_distinct(cells: pd.Series, function) -> pd.Series:
    """``cells.map(function)``, calling ``function`` once per distinct value instead of per row.

    The distinct values are mapped with pandas' own ``Series.map``, so the result has the dtype
    and values ``cells.map(function)`` would give; then it is spread back to the rows by their
    codes. Cells with missing values (``None`` and ``NaN`` reach ``function`` as they are) take
    the plain ``cells.map(function)``.

    >>> map_distinct(pd.Series(["Kg", "LBS", "Kg"]), column_key).tolist()
    ['kg', 'lbs', 'kg']
    """
    if isinstance(cells.dtype, pd.CategoricalDtype) and (cells.cat.codes < 0).any():
        cells = cells.astype(object)
    if isinstance(cells.dtype, pd.CategoricalDtype):
        codes = cells.cat.codes.to_numpy()
        mapped = pd.Series(cells.cat.categories, dtype="str").map(function)
        return pd.Series(mapped.array.take(codes), index=cells.index, name=cells.name)
    codes, uniques = pd.factorize(cells)
    if (codes < 0).any():
        return cells.map(function)
    mapped = pd.Series(uniques, dtype=cells.dtype).map(function)
    return pd.Series(mapped.array.take(codes), index=cells.index, name=cells.name)


def echo(text: str, limit: int = ECHO_CHARS) -> str:
    """``text`` cut to ``limit`` characters plus ``…``, to quote a cell without copying it whole.

    >>> echo("x" * 5, limit=3)
    'xxx…'
    """
    return text if len(text) <= limit else text[:limit] + "…"


def echo_series(cells: pd.Series, limit: int = ECHO_CHARS) -> pd.Series:
    """:func:`echo` for a Series of text (vectorised)."""
    cells = cells.astype(str)
    long = cells.str.len() > limit
    if not long.any():
        return cells
    return cells.where(~long, cells.str.slice(0, limit) + "…")


#: columns of :attr:`RawTable.problems`
PROBLEM_COLUMNS = ["source_row", "column", "value", "reason"]


@dataclass
class RawTable:
    """A file's records as text, before any parsing."""

    path: Path
    cells: pd.DataFrame  # one column per input column, named by its original header
    source_row: np.ndarray  # 1-based spreadsheet row of each record
    #: records that could not be split into cells (more cells than the header): (row, text)
    malformed: list[tuple[int, str]] = field(default_factory=list)
    #: cells refused by the reader: source_row, column (header as written), value, reason
    problems: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PROBLEM_COLUMNS))
    #: columns the reader cannot give as text (header -> why); their cells are empty
    unusable: dict[str, str] = field(default_factory=dict)
    #: columns left out by the reader (header -> why), e.g. empty unnamed columns
    dropped: dict[str, str] = field(default_factory=dict)
    #: facts about the file worth reporting (hidden sheets, encodings, ...)
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name


def read_raw(path: Path, *, coded: bool = False) -> RawTable:
    """Read a CSV / Excel / Parquet file into text cells; raise :class:`DataError` if unreadable.

    With ``coded=True`` the cells of CSV and Parquet files may come as pandas ``category``
    columns whose categories are the column's distinct cell texts (the same texts as without
    it): the loader then parses each distinct value once and never builds a text cell per row
    for typed Parquet columns. Without it every column is text (``str``), as always.
    """
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt", ".tsv"):
        raw = _read_csv(path, coded=coded)
    elif suffix == ".xlsx":
        raw = _read_xlsx(path)
    elif suffix == ".parquet":
        raw = _read_parquet(path, coded=coded)
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
    size = path.stat().st_size
    if size > LARGE_FILE_BYTES:
        raw.notes.append(
            f"large file ({size / 2**20:,.0f} MB): loading needs a few times its size in memory"
        )
    _check_width(path, raw.cells.shape[1])
    raw.cells.columns = [str(c).strip() for c in raw.cells.columns]
    _drop_empty_unnamed(raw)
    if any(c == "" for c in raw.cells.columns):
        raise DataError(
            "a column has an empty header but holds data",
            file=path.name,
            fix="give every column a name in the first row (or delete the column)",
        )
    keys = [column_key(c) for c in raw.cells.columns]
    seen: dict[str, str] = {}
    for original, key in zip(raw.cells.columns, keys, strict=True):
        if key in seen:
            raise DataError(
                f"columns {echo(seen[key], 60)!r} and {echo(original, 60)!r} name the same field",
                file=path.name,
                fix="keep one of them",
            )
        seen[key] = original
    # drop records with every cell empty (blank lines, Excel's trailing rows): they hold no data
    # and are not counted as rows read; row numbers of the others stay as the file shows them
    if raw.cells.shape[1]:
        filled = (raw.cells != "").any(axis=1).to_numpy()
    else:
        filled = np.zeros(len(raw.cells), dtype=bool)
    if not filled.all():
        raw.cells = raw.cells.loc[filled].reset_index(drop=True)
        raw.source_row = raw.source_row[filled]
    _limit_cell_length(raw)
    if not coded:
        for position in range(raw.cells.shape[1]):
            column = raw.cells.iloc[:, position]
            if isinstance(column.dtype, pd.CategoricalDtype):
                raw.cells.isetitem(position, decode_cells(column))
    release_arrow_memory()
    return raw


def release_arrow_memory() -> None:
    """Hand the memory Arrow's allocator keeps after freeing (the file's decoded columns, once
    they are coded) back to the system, so that the next allocations do not stack on it."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def coded_cells(codes: np.ndarray, texts) -> pd.Series:
    """A ``category`` Series of cell text from ``codes`` into ``texts`` (``-1``: an empty cell).

    ``texts`` may repeat a text (two typed values with one text form, or two cells that are equal
    once stripped): the categories are made distinct and the codes follow them.
    """
    items = np.asarray(texts, dtype=object)
    if all(type(item) is str for item in items):
        # plain text (every reader's case): the distinct texts found on the Python strings,
        # one ``str`` array made at the end (the same categories, in the same order)
        texts = np.append(items, "").astype(object)
    else:
        texts = pd.Series(pd.array(items, dtype="str")).fillna("")
        texts = pd.concat([texts, pd.Series([""], dtype="str")], ignore_index=True)
    remap, categories = pd.factorize(texts)
    codes = np.asarray(codes)
    if (codes < 0).any():
        codes = np.where(codes < 0, len(texts) - 1, codes)
    if len(categories) < len(texts):
        codes = remap[codes]  # some texts repeat: follow the distinct categories
    return pd.Series(
        pd.Categorical.from_codes(
            codes.astype(np.int32, copy=False), categories=pd.Index(categories, dtype="str")
        )
    )


def decode_cells(column: pd.Series) -> pd.Series:
    """The text (pandas ``str``) of a ``category`` column of cells, built by one ``take``."""
    codes = column.cat.codes.to_numpy()
    categories = pd.Index(column.cat.categories, dtype="str").array
    if (codes < 0).any():
        categories = pd.concat([pd.Series(categories), pd.Series([""], dtype="str")]).array
        codes = np.where(codes < 0, len(categories) - 1, codes)
    return pd.Series(categories.take(codes), index=column.index, name=column.name)


def _check_width(path: Path, width: int) -> None:
    if width > MAX_COLUMNS:
        raise DataError(
            f"the table has {width:,} columns; hipdata reads at most {MAX_COLUMNS}",
            file=path.name,
            fix="delete the columns hipdata does not need (or check the delimiter and header row)",
        )


def _drop_empty_unnamed(raw: RawTable) -> None:
    """Columns with no header and no data (a trailing delimiter on every line) are dropped."""
    unnamed = [i for i, c in enumerate(raw.cells.columns) if c == ""]
    if not unnamed:
        return
    empty = [i for i in unnamed if not (raw.cells.iloc[:, i] != "").any()]
    if not empty:
        return
    keep = [i for i in range(raw.cells.shape[1]) if i not in set(empty)]
    raw.cells = raw.cells.iloc[:, keep]
    raw.dropped[f"(unnamed, {len(empty)} empty)"] = (
        "empty column without a header (a delimiter at the end of every line)"
    )


def _limit_cell_length(raw: RawTable) -> None:
    """Quarantine rows with a cell over :data:`MAX_CELL_CHARS`; keep only its first characters."""
    found = []
    for position in range(raw.cells.shape[1]):
        column = raw.cells.iloc[:, position]
        if (
            isinstance(column.dtype, pd.CategoricalDtype)
            and not (column.cat.categories.str.len() > MAX_CELL_CHARS).any()
        ):
            continue  # no distinct text is too long
        lengths = column.str.len()
        long = (lengths > MAX_CELL_CHARS).to_numpy()
        if not long.any():
            continue
        if isinstance(column.dtype, pd.CategoricalDtype):
            column = decode_cells(column)
        found.append(
            pd.DataFrame(
                {
                    "source_row": raw.source_row[long],
                    "column": raw.cells.columns[position],
                    "value": echo_series(column[long]).to_numpy(),
                    "reason": "cell has "
                    + lengths[long].astype("int64").map("{:,}".format).to_numpy()
                    + f" characters (at most {MAX_CELL_CHARS:,}); split or shorten it",
                }
            )
        )
        raw.cells.isetitem(position, column.where(~long, echo_series(column[long])))
    if found:
        raw.problems = pd.concat([raw.problems, *found], ignore_index=True)


def _add_problems(raw: RawTable, rows: list[tuple[int, str, str, str]]) -> None:
    if rows:
        extra = pd.DataFrame(rows, columns=PROBLEM_COLUMNS)
        raw.problems = pd.concat([raw.problems, extra], ignore_index=True)


# --------------------------------------------------------------------------------------- CSV


def _decode(path: Path, data: bytes) -> tuple[str, list[str]]:
    """Decode a text table: UTF-16 (BOM), UTF-8 (BOM optional), else line by line UTF-8 or
    Windows-1252, so a UTF-8 file with a few lines pasted from a cp1252 source keeps both."""
    # (``data.strip()`` copies the whole file: only done when its start is blank)
    if not data[:4096].strip() and not data.strip():
        raise DataError("the file is empty", file=path.name, fix="export the table again")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), []
        except UnicodeDecodeError as exc:
            raise DataError(
                f"the UTF-16 text is broken at byte {exc.start}",
                file=path.name,
                fix="export the table again as 'CSV UTF-8'",
            ) from exc
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
        data = data[3:]
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError:
        pass
    fast = _decode_lines_fast(data)
    if fast is not None:
        return fast
    return _decode_lines(path, data)


#: Bytes per block of lines that the fast decoder tries as UTF-8 at once.
DECODE_BLOCK_BYTES = 1 << 16


def _decode_lines_fast(data: bytes) -> tuple[str, list[str]] | None:
    """:func:`_decode_lines` without a Python step per line where it can: the same text and
    notes, or ``None`` when a line is neither UTF-8 nor Windows-1252 (the line-by-line decoder
    then names it).

    When no line holds a non-ASCII UTF-8 character (the file decoded with ``surrogateescape``
    encodes back to ASCII with it: every non-ASCII byte is outside a UTF-8 sequence), each
    line is ASCII or Windows-1252, which is the whole file decoded as Windows-1252 at once.
    Otherwise blocks of whole lines (about :data:`DECODE_BLOCK_BYTES`) are decoded as UTF-8 at
    once, and only a block that is not UTF-8 line by line (``\\n`` is never inside a UTF-8
    sequence, so a block is UTF-8 exactly when each of its lines is).
    """
    try:
        data.decode("utf-8", errors="surrogateescape").encode("ascii", errors="surrogateescape")
    except UnicodeEncodeError:
        pass  # a line has a non-ASCII UTF-8 character: decoded block by block below
    else:
        try:
            return data.decode("cp1252"), ["decoded as Windows-1252 (not UTF-8)"]
        except UnicodeDecodeError:
            return None
    blocks, cp1252_lines = [], []
    utf8_non_ascii = False
    start, number = 0, 1  # the block's first byte and line number
    while True:
        cut = data.find(b"\n", start + DECODE_BLOCK_BYTES)
        end = len(data) if cut < 0 else cut
        block = data[start:end]
        try:
            blocks.append(block.decode("utf-8"))
            utf8_non_ascii = utf8_non_ascii or not block.isascii()
        except UnicodeDecodeError:
            decoded = []
            for offset, line in enumerate(block.split(b"\n")):
                try:
                    decoded.append(line.decode("utf-8"))
                    utf8_non_ascii = utf8_non_ascii or not line.isascii()
                except UnicodeDecodeError:
                    try:
                        decoded.append(line.decode("cp1252"))
                    except UnicodeDecodeError:
                        return None
                    cp1252_lines.append(number + offset)
            blocks.append("\n".join(decoded))
        if cut < 0:
            break
        number += block.count(b"\n") + 1
        start = cut + 1
    text = "\n".join(blocks)
    if not utf8_non_ascii:
        return text, ["decoded as Windows-1252 (not UTF-8)"]
    shown = ", ".join(map(str, cp1252_lines[:20])) + (", ..." if len(cp1252_lines) > 20 else "")
    notes = [
        f"mixed encodings: {len(cp1252_lines):,} line(s) are Windows-1252 (lines {shown}), "
        "the rest UTF-8; each line was decoded in its own encoding"
    ]
    return text, notes


def _decode_lines(path: Path, data: bytes) -> tuple[str, list[str]]:
    """Each line (split at ``\\n``) decoded as UTF-8, else as Windows-1252."""
    lines = data.split(b"\n")
    utf8_lines, cp1252_lines = 0, []
    decoded = []
    for number, line in enumerate(lines, start=1):
        try:
            text = line.decode("utf-8")
            utf8_lines += not line.isascii()
        except UnicodeDecodeError:
            try:
                # Excel on Windows writes "CSV" in the ANSI code page: cp1252 in Western Europe
                text = line.decode("cp1252")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"line {number} is neither UTF-8 nor Windows-1252 (byte {exc.start} of the "
                    "line)",
                    file=path.name,
                    fix="save the file as 'CSV UTF-8'",
                ) from exc
            cp1252_lines.append(number)
        decoded.append(text)
    notes = []
    if utf8_lines:
        shown = ", ".join(map(str, cp1252_lines[:20])) + (", ..." if len(cp1252_lines) > 20 else "")
        notes.append(
            f"mixed encodings: {len(cp1252_lines):,} line(s) are Windows-1252 (lines {shown}), "
            "the rest UTF-8; each line was decoded in its own encoding"
        )
    else:
        notes.append("decoded as Windows-1252 (not UTF-8)")
    return "\n".join(decoded), notes


def _sniff_delimiter(header: str) -> str:
    outside_quotes = re.sub(r'"[^"]*"', "", header)
    counts = {sep: outside_quotes.count(sep) for sep in (",", ";", "\t")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] > 0 else ","


def _first_line(text: str) -> str:
    """The first line with text (the header), found without splitting the whole file."""
    start = 0
    while True:
        end = text.find("\n", start)
        line = text[start:] if end < 0 else text[start:end]
        if line.strip() or end < 0:
            return line
        start = end + 1


def _read_csv(path: Path, *, coded: bool = False) -> RawTable:
    data = path.read_bytes()
    text, notes = _decode(path, data)
    header_line = _first_line(text)
    if re.fullmatch(r'\s*"?sep=.?"?\s*', header_line, flags=re.IGNORECASE):
        raise DataError(
            f"the first line {header_line.strip()!r} is Excel's delimiter hint, not a header",
            file=path.name,
            fix="delete that line so the column names come first (or save as 'CSV UTF-8')",
        )
    sep = _sniff_delimiter(header_line)
    # refuse a very wide header before any parser sees it (a 10^6-column header is quadratic)
    _check_width(path, re.sub(r'"[^"]*"', "", header_line).count(sep) + 1)
    if coded:
        # a plain UTF-8 file's bytes are the UTF-8 encoding of its text (BOM dropped): given to
        # Arrow as they are, without encoding the text again
        utf8 = not notes and not data.startswith((b"\xff\xfe", b"\xfe\xff"))
        start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
        raw = _read_csv_arrow(path, text, sep, data=memoryview(data)[start:] if utf8 else None)
    else:
        raw = None
    if raw is None:
        raw = _read_csv_fast(path, text, sep)
    if raw is None:
        raw = _read_csv_careful(path, text, sep)
    raw.notes.extend(notes)
    return raw


def _strip_cells(cells: pd.DataFrame) -> pd.DataFrame:
    for position in range(cells.shape[1]):
        cells.isetitem(position, cells.iloc[:, position].fillna("").astype(str).str.strip())
    return cells


def _read_csv_arrow(
    path: Path, text: str, sep: str, *, data: memoryview | None = None
) -> RawTable | None:
    """pyarrow's CSV reader (multithreaded), every column dictionary-encoded text, for the common
    case: every record has exactly the header's number of cells, no blank line, no block-sized
    record. Anything else makes it fail and pandas' C parser (then the careful path) takes over,
    so the cells are those :func:`_read_csv_fast` gives; ``None`` then. Cells are stripped once
    per distinct text. ``data``, when given, is ``text`` encoded as UTF-8 (the file's bytes).

    The header line is read as a record (its cells name the columns); a header text that no
    data row has is left out of that column's distinct texts, so the parsers never see it."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    end = text.find("\n")
    if not (text if end < 0 else text[:end]).strip():
        return None
    width = re.sub(r'"[^"]*"', "", _first_line(text)).count(sep) + 1
    try:
        table = pacsv.read_csv(
            pa.py_buffer(text.encode("utf-8") if data is None else data),
            read_options=pacsv.ReadOptions(autogenerate_column_names=True),
            parse_options=pacsv.ParseOptions(
                delimiter=sep,
                # without a quote character no line break can be inside a cell: the reader
                # then splits the blocks without tracking quotes (the same records)
                newlines_in_values='"' in text,
                ignore_empty_lines=False,
            ),
            convert_options=pacsv.ConvertOptions(
                # (32-bit offsets: each column comes in blocks of about a megabyte, and only
                # its distinct texts are ever put together)
                column_types={f"f{i}": pa.string() for i in range(width + 1)},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowException, ValueError):  # any record pyarrow refuses: the other parsers
        return None
    if table.num_rows == 0 or table.num_columns != width:
        return None
    try:  # the distinct texts in order of first appearance, codes per row
        encoded = _map_threads(_dictionary_codes, table.columns)
    except (pa.ArrowException, ValueError):
        return None
    del table
    header, columns = [], []
    for codes, dictionary in encoded:
        texts = pd.Series(dictionary.to_pylist(), dtype="str").str.strip()
        header.append(str(texts.iloc[codes[0]]).strip())
        codes = codes[1:]
        # the header's text is the first distinct text (code 0, in order of first
        # appearance); when no data row has it, it is dropped (the same cells)
        if not (codes == 0).any():
            codes = codes - 1
            texts = texts.iloc[1:].reset_index(drop=True)
        columns.append(coded_cells(codes, texts))
    if len(set(header)) != len(header):
        return None  # repeated headers: the careful path reports them
    cells = pd.DataFrame(dict(enumerate(columns)))
    cells.columns = header
    return RawTable(path, cells, np.arange(len(cells), dtype=np.int64) + 2)


#: Threads that encode a CSV file's columns at once (Arrow's kernels release the GIL).
ENCODE_THREADS = 2


def _map_threads(function, items: list) -> list:
    """``[function(item) for item in items]`` on :data:`ENCODE_THREADS` threads (in order; the
    first error is raised)."""
    if len(items) < 2 or ENCODE_THREADS < 2:
        return [function(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(ENCODE_THREADS) as pool:
        return list(pool.map(function, items))


def _dictionary_codes(column) -> tuple[np.ndarray, object]:
    """A chunked Arrow text column's codes (``int32``, one per row) into its distinct texts
    in order of first appearance (an Arrow array), as ``dictionary_encode`` of the whole column
    gives them.

    The column is encoded chunk by chunk with one memo (no copy of the whole column's text):
    every chunk's dictionary is then the memo's final one, or a prefix of it, so the codes of
    every chunk point into the last chunk's dictionary. When the chunks' dictionaries differ
    in length (never seen), the whole column is encoded at once instead.
    """
    import pyarrow.compute as pc

    chunks = pc.dictionary_encode(column).chunks
    dictionary = chunks[-1].dictionary
    if any(len(chunk.dictionary) != len(dictionary) for chunk in chunks):
        whole = pc.dictionary_encode(column.combine_chunks())
        return whole.indices.to_numpy(zero_copy_only=False), whole.dictionary
    codes = np.concatenate([chunk.indices.to_numpy(zero_copy_only=False) for chunk in chunks])
    return codes, dictionary


def _read_csv_fast(path: Path, text: str, sep: str) -> RawTable | None:
    """pandas' C parser for the common case. The header line is read as a record
    (``header=None``), so a later record with more cells than the header — the first data row
    included — makes the parser fail, and the careful path takes over; ``None`` then."""
    end = text.find("\n")
    if not (text if end < 0 else text[:end]).strip():
        return None  # leading blank lines: the careful path finds the header
    try:
        cells = pd.read_csv(
            io.StringIO(text),
            sep=sep,
            header=None,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            engine="c",
        )
    except (pd.errors.ParserError, ValueError, pd.errors.EmptyDataError):
        return None
    if len(cells) == 0:
        return None
    header = [str(h).strip() for h in cells.iloc[0].tolist()]
    if len(set(header)) != len(header):
        return None  # repeated headers: the careful path reports them
    cells = _strip_cells(cells.iloc[1:].reset_index(drop=True))
    cells.columns = header
    return RawTable(path, cells, np.arange(len(cells), dtype=np.int64) + 2)


def _read_csv_careful(path: Path, text: str, sep: str) -> RawTable:
    """Python's csv module, record by record: pads short records, quarantines long ones."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    try:
        records = list(reader)
    except csv.Error as exc:
        raise DataError(
            f"not a readable table ({exc})",
            file=path.name,
            fix="export the table again as CSV (a cell over 131 072 characters cannot be read)",
        ) from exc
    first = 0
    while first < len(records) and not any(cell.strip() for cell in records[first]):
        first += 1  # leading blank lines: the header is the first line with text
    if first == len(records):
        raise DataError("the file is empty", file=path.name, fix="export the table again")
    header = [cell.strip() for cell in records[first]]
    width = len(header)
    _check_width(path, width)
    data = records[first + 1 :]
    filled = [any(cell.strip() for cell in record) for record in data]
    lengths = {len(r) for r, f in zip(data, filled, strict=True) if f}
    extra = 0
    if len(lengths) == 1 and (only := lengths.pop()) > width:
        surplus = [r[width:] for r, f in zip(data, filled, strict=True) if f]
        if not any(cell.strip() for cells in surplus for cell in cells):
            # every line ends in the same empty cells: a systematic trailing delimiter
            extra = only - width
    rows, row_numbers, malformed = [], [], []
    for number, (record, has_text) in enumerate(zip(data, filled, strict=True), start=first + 2):
        if not has_text:
            rows.append([""] * width)
        elif len(record) <= width:
            # spreadsheet programs drop trailing empty cells: pad them
            rows.append(record + [""] * (width - len(record)))
        elif extra and len(record) == width + extra:
            rows.append(record[:width])
        else:
            # a stray delimiter or an unquoted decimal comma: the cells cannot be placed
            malformed.append((number, echo(sep.join(record))))
            continue
        row_numbers.append(number)
    cells = _strip_cells(pd.DataFrame(rows, columns=header, dtype=object).astype(str))
    raw = RawTable(path, cells, np.asarray(row_numbers, dtype=np.int64), malformed)
    if extra:
        raw.notes.append(
            f"every line ends in {extra} extra empty cell(s) (a trailing delimiter): ignored"
        )
    return raw


# -------------------------------------------------------------------------------------- Excel


def _cell_text(value: object) -> str:
    """Excel and Parquet cells as the text the CSV reader would have produced."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.replace(tzinfo=None)
        if value.time() == dt.time(0):
            return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
        return f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.time().isoformat()}"
    if isinstance(value, dt.date):
        return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
    if isinstance(value, dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return _number_text(value.total_seconds())
    if isinstance(value, float | np.floating):
        return _number_text(float(value))
    return str(value).strip()


def _number_text(value: float) -> str:
    if np.isnan(value):
        return ""
    if value.is_integer() and abs(value) < 2**63:
        return str(int(value))
    return repr(value)


def _check_xlsx_parts(path: Path) -> None:
    """Refuse a workbook whose uncompressed parts would take unbounded memory (zip bombs)."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise DataError(
            f"not a readable Excel workbook ({exc})",
            file=path.name,
            fix="open it in Excel and save it again as .xlsx, or export it as CSV",
        ) from exc
    for member in members:
        limit = (
            MAX_XLSX_SHARED_STRINGS_BYTES
            if member.filename.lower().endswith("sharedstrings.xml")
            else MAX_XLSX_PART_BYTES
        )
        if member.file_size > limit:
            raise DataError(
                f"the workbook part {echo(member.filename, 60)} unpacks to "
                f"{member.file_size / 2**20:,.0f} MB (at most {limit / 2**20:,.0f} MB)",
                file=path.name,
                fix="export the table as CSV (UTF-8) or Parquet, or split it into smaller files",
            )


def _has_formulas(path: Path) -> bool:
    """Whether any worksheet part holds a formula (``<f>`` element), read in chunks."""
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if not member.startswith("xl/worksheets/") or not member.endswith(".xml"):
                continue
            with archive.open(member) as stream:
                tail = b""
                while chunk := stream.read(1 << 20):
                    block = tail + chunk
                    if b"<f>" in block or b"<f " in block or b":f>" in block or b":f " in block:
                        return True
                    tail = block[-4:]
    return False


def _open_workbook(path: Path, *, data_only: bool):
    from openpyxl import load_workbook

    try:
        return load_workbook(path, read_only=True, data_only=data_only)
    except Exception as exc:  # openpyxl raises several types for a broken workbook
        raise DataError(
            f"not a readable Excel workbook ({type(exc).__name__}: {echo(str(exc), 120)})",
            file=path.name,
            fix="open it in Excel and save it again as .xlsx, or export it as CSV",
        ) from exc


def _sheet_rows(path: Path, sheet, convert, notes: list[str]) -> list[tuple[int, list]]:
    """The sheet's rows (1-based row number, converted cells), each as wide as the sheet.

    openpyxl's read-only sheets stop at the size the file states (its ``<dimension>``); some
    programs write a wrong one (``A1``), and every cell outside it would be lost. The sheet is
    read whole; when cells lie outside the stated size a note says so.
    """
    width, height = sheet.max_column, sheet.max_row  # the stated size (None: not stated)
    stated = width is not None and height is not None
    if stated:
        sheet.reset_dimensions()
    records = []
    try:
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            if number == 1:
                _check_width(path, len(values) if width is None else width)
            records.append((number, [convert(v) for v in values]))
    except DataError:
        raise
    except Exception as exc:  # a cell openpyxl cannot convert (e.g. a date serial out of range)
        raise DataError(
            f"a cell of the sheet cannot be read ({type(exc).__name__}: {echo(str(exc), 120)})",
            file=path.name,
            fix="check the dates and numbers in the sheet, or export it as CSV",
        ) from exc
    if not stated:
        return records
    used = [(n, max((i + 1 for i, c in enumerate(r) if c), default=0)) for n, r in records]
    rows = max((n for n, last in used if last), default=0)
    columns = max((last for _, last in used), default=0)
    if rows > height or columns > width:
        from openpyxl.utils import get_column_letter

        notes.append(
            f"the sheet states its size as {get_column_letter(width)}{height} but has cells up "
            f"to {get_column_letter(columns)}{rows}: all of them were read"
        )
        width = max(width, columns)
        _check_width(path, width)
    return [(n, (r + [""] * (width - len(r)))[:width]) for n, r in records]


# The fast path: python-calamine (Rust) reads the sheet; openpyxl's own rules are applied to the
# cells calamine reads differently, and every feature not provably read alike sends the sheet to
# the openpyxl path (:func:`_sheet_rows`). Only openpyxl's cheap work is kept: the workbook, its
# sheet list and states, the styles, the shared strings, the sheet's ``<dimension>``.

#: Built-in number formats that are plain numbers or text for openpyxl and calamine alike
#: (General, 0, 0.00, #,##0, ..., percent, scientific, fractions, accounting without symbols, @).
_PLAIN_BUILTIN_FORMATS = frozenset({0, 1, 2, 3, 4, 9, 10, 11, 12, 13, 37, 38, 39, 40, 48, 49})
#: A custom number format that cannot be a date or a duration: no letter but the exponent E,
#: no ``[...]`` section, once quoted text and escaped characters are removed.
_PLAIN_FORMAT = re.compile(r"[0-9#?.,%+\-() @;/$E]*")
_FORMAT_LITERALS = re.compile(r'"[^"]*"|\\.|[_*].')
#: A ``<v>`` whose text is not a plain decimal number or an error value (``#N/A``).
_ODD_VALUE = re.compile(rb"<v>(?!-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?</v>|#[^<]{1,30}</v>)")
#: A whole number of 16 or more digits: openpyxl keeps it exact (a Python int), calamine rounds
#: it to a float when it is past 2**53.
_LONG_INTEGER = re.compile(rb"<v>-?([0-9]{16,})</v>")
#: A cell type other than shared or inline string, number, boolean or error (a formula string,
#: an ISO date).
_ODD_TYPE = re.compile(rb' t="(?!(?:s|n|b|e|inlineStr)")')
_ODD_BOOLEAN = re.compile(rb't="b"[^>]*><v>(?![01]</v>)')
_ERROR_CELL = re.compile(rb'<c r="([A-Z]{1,3})([0-9]+)"[^>]*? t="e"[^>]*?(?:/>|><v>([^<]*)</v>|>)')
_CELL_TYPE = re.compile(rb't="([^"]*)"')
_COORDINATE = re.compile(rb'([A-Z]{1,3})([0-9]+)"')
_XML_ENCODING = re.compile(rb'^<\?xml[^>]*encoding="([^"]*)"')
_CUSTOM_FORMAT_ID = re.compile(rb'<(?:\w+:)?numFmt\s[^>]*numFmtId\s*=\s*["\']?([0-9]+)')
_EXCEL_ESCAPE = re.compile(rb"_[xX][0-9A-Fa-f]{4}_")


def _plain_format(code: str | None) -> bool:
    if code is None:
        return False
    return code == "General" or _PLAIN_FORMAT.fullmatch(_FORMAT_LITERALS.sub("", code)) is not None


def _is_number_cell(attributes: bytes) -> bool:
    """Whether a cell's other attributes make it a number cell (no type, or type ``n``)."""
    if not attributes or attributes == b' t="n"' or b"t=" not in attributes:
        return True
    kind = _CELL_TYPE.search(attributes)
    return kind is None or kind.group(1) == b"n"


def _column_index(letters: bytes) -> int:
    index = 0
    for letter in letters:
        index = index * 26 + letter - 64
    return index


class _Kinds(dict):
    def __missing__(self, key: type) -> int:
        return 2


#: The kind of a cell value for :func:`_values_text`: text 0, float 1, anything else 2.
_VALUE_KINDS = _Kinds({str: 0, float: 1})


def _values_text(values: np.ndarray) -> np.ndarray:
    """:func:`_cell_text` of each value of an object array, with numpy for text and floats."""
    items = values.tolist()
    out = np.empty(len(items), dtype=object)
    kinds = np.fromiter(map(_VALUE_KINDS.__getitem__, map(type, items)), np.int8, len(items))
    text = kinds == 0
    if text.any():
        out[text] = [value.strip() for value in values[text].tolist()]
    number = kinds == 1
    if number.any():
        out[number] = _floats_text(values[number].astype(np.float64))
    rest = ~(text | number)
    if rest.any():
        out[rest] = [_cell_text(value) for value in values[rest].tolist()]
    return out


def _floats_text(values: np.ndarray) -> np.ndarray:
    """:func:`_number_text` of each float64: whole numbers as integers, others by ``repr``."""
    out = np.full(len(values), "", dtype=object)
    with np.errstate(invalid="ignore"):
        whole = np.isfinite(values) & (np.mod(values, 1) == 0) & (np.abs(values) < 2**63)
    out[whole] = list(map(str, values[whole].astype(np.int64).tolist()))
    rest = ~whole & ~np.isnan(values)
    out[rest] = list(map(repr, values[rest].tolist()))
    return out


def _xml_is_plain(data: bytes) -> bool:
    """Whether an XML part is UTF-8, unprefixed, without DTD, CDATA, comments or CR characters."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return False
    declared = _XML_ENCODING.match(data.removeprefix(b"\xef\xbb\xbf"))
    if declared and declared.group(1).lower() not in (b"utf-8", b"utf8"):
        return False
    return b"<!" not in data and b"\r" not in data and _EXCEL_ESCAPE.search(data) is None


def _calamine_records(path: Path, workbook, sheet) -> list[tuple[int, list[str]]] | None:
    """The sheet's rows as :func:`_sheet_rows` gives them, read by python-calamine.

    ``None`` when calamine is not installed or the sheet holds anything calamine is not proven
    to read as openpyxl does: formulas, formula strings, ISO dates, numbers of 16 or
    more digits past 2**53, odd ``<v>`` text, rich or phonetic strings, ``_xHHHH_`` escapes, CR
    characters, a DTD, attributes in single quotes or on several lines, cells or rows without
    a reference, rows out of order, a missing ``<dimension>`` or one smaller than the data, a
    custom number format numbered as a built-in one, a default style that is not plain. Cells
    whose style is not a plain number format (dates, times, durations, anything with letters)
    and error cells are taken from the XML text and converted by openpyxl's own functions, so
    dates out of range, negative serials and error values read exactly as openpyxl reads them.
    """
    try:
        from openpyxl.utils.datetime import from_excel
        from openpyxl.worksheet._reader import _cast_number
        from python_calamine import CalamineWorkbook
    except ImportError:
        return None
    part = getattr(sheet, "_worksheet_path", None)
    width, height = sheet.max_column, sheet.max_row
    if part is None or width is None or height is None or width > MAX_COLUMNS:
        return None
    with zipfile.ZipFile(path) as archive:
        members = {m.filename: m for m in archive.infolist()}
        part = part.lstrip("/")
        if part not in members:
            return None
        data = archive.read(part)
        for name in members:
            lower = name.lower()
            if lower.endswith("sharedstrings.xml"):
                strings = archive.read(name)
                if not _xml_is_plain(strings) or b"<rPh" in strings or b"</r><t" in strings:
                    return None
            elif lower.endswith("styles.xml"):
                styles = archive.read(name)
                if any(int(i) < 164 for i in _CUSTOM_FORMAT_ID.findall(styles)):
                    return None
    if (
        not _xml_is_plain(data)
        or b"<sheetData" not in data
        or b"='" in data
        or b"\t" in data
        or data.count(b"\n") > 2
        or b"<f>" in data
        or b"<f " in data
        or b"<f/>" in data
        or b"<c>" in data
        or b"<row>" in data
        or data.count(b"<c ") != data.count(b'<c r="')
        or data.count(b"<row ") != data.count(b'<row r="')
        or b"<v/>" in data
        or b"<r>" in data
        or b"<rPh" in data
        or b"<v " in data
        or _ODD_TYPE.search(data)
        or _ODD_VALUE.search(data)
        or any(int(digits) > 2**53 for digits in _LONG_INTEGER.findall(data))
        or _ODD_BOOLEAN.search(data)
    ):
        return None
    row_numbers = np.array(re.findall(rb'<row r="([0-9]+)"', data), dtype=np.int64)
    if len(row_numbers) and (np.any(np.diff(row_numbers) <= 0) or row_numbers[-1] > height):
        return None
    # styles whose number format could be a date, a time or a duration (for either reader)
    date_styles = workbook._date_formats
    custom = list(workbook._number_formats)
    suspect = set(date_styles | workbook._timedelta_formats)
    for index, style in enumerate(workbook._cell_styles):
        number_format = style.numFmtId
        if number_format < 164:
            plain = number_format in _PLAIN_BUILTIN_FORMATS
        else:
            position = number_format - 164
            plain = position < len(custom) and _plain_format(custom[position])
        if not plain:
            suspect.add(index)
    if 0 in suspect:
        return None
    # cells calamine reads differently, as openpyxl reads them: error cells, number cells in a
    # style that is not plain (dates, times, durations, ...), converted by openpyxl's functions
    rows_at: list[int] = []
    columns_at: list[int] = []
    texts: list[str] = []
    column_of: dict[bytes, int] = {}

    def place(letters: bytes, number: bytes, text: str) -> None:
        column = column_of.get(letters)
        if column is None:
            column = column_of[letters] = _column_index(letters) - 1
        rows_at.append(int(number) - 1)
        columns_at.append(column)
        texts.append(text)

    if b' t="e"' in data:
        for letters, number, raw in _ERROR_CELL.findall(data):
            if b"&" in raw:
                return None
            place(letters, number, raw.decode().strip())
    if suspect:
        ids = b"|".join(str(i).encode() for i in sorted(suspect))
        epoch = workbook.epoch
        durations = workbook._timedelta_formats

        class Texts(dict):  # the text of each distinct (style, number text), as openpyxl reads it
            def __missing__(self, key: tuple[bytes, bytes]) -> str:
                style, raw = key
                value = _cast_number(raw.decode()) if raw else None
                if value is not None and int(style) in date_styles:
                    try:  # as openpyxl's WorksheetReader.parse_cell
                        value = from_excel(value, epoch, timedelta=int(style) in durations)
                    except (OverflowError, ValueError):
                        value = "#VALUE!"
                text = self[key] = _cell_text(value)
                return text

        memo = Texts()
        # the usual layout, the style right after the reference (openpyxl, XlsxWriter, Excel),
        # read in one pass when it accounts for every use of the styles; else cell by cell
        quick = re.compile(
            rb'<c r="([A-Z]{1,3})([0-9]+)" s="('
            + ids
            + rb')"((?: [a-zA-Z]+="[^"]*")*)(?:/>|><v>([^<]*)</v>|>)'
        )
        found = quick.findall(data)
        if len(found) == len(re.findall(rb' s="(?:' + ids + rb')"', data)):
            if {after for _, _, _, after, _ in found} - {b"", b' t="n"'}:
                found = [cell for cell in found if _is_number_cell(cell[3])]
            if found:
                letters, numbers, styles, _, raws = zip(*found, strict=True)
                for letter in set(letters):
                    column_of[letter] = _column_index(letter) - 1
                rows_at.extend(int(number) - 1 for number in numbers)
                columns_at.extend(map(column_of.__getitem__, letters))
                texts.extend(map(memo.__getitem__, zip(styles, raws, strict=True)))
            found = []
        else:
            found = None
        # found by the style attribute (a literal, quick to search), then the cell it is in
        pattern = re.compile(rb' s="(' + ids + rb')"([^>]*?)(?:/>|><v>([^<]*)</v>|>)')
        for match in pattern.finditer(data) if found is None else ():
            at = match.start()
            start = data.rfind(b'<c r="', 0, at)
            if start < 0 or data.find(b">", start, at) >= 0:
                continue  # not in a cell's tag (a row's style, or text)
            coordinate = _COORDINATE.match(data, start + 6, at)
            if coordinate is None:
                return None
            style, after, raw = match.groups()
            if not _is_number_cell(data[coordinate.end() : at] + after):
                continue  # a string, boolean or error cell: its style does not apply
            place(coordinate.group(1), coordinate.group(2), memo[(style, raw)])
    if texts and (max(columns_at) >= width or max(rows_at) >= height):
        return None
    del data  # the sheet's XML is not needed any more: free it before calamine reads
    try:
        with CalamineWorkbook.from_path(str(path)) as book:
            grid = book.get_sheet_by_name(sheet.title).to_python(skip_empty_area=False)
    except Exception:  # anything calamine cannot read or convert is read by openpyxl
        return None
    size = len(grid[0]) if grid else 0
    if len(grid) > height or size > width or any(len(row) != size for row in grid):
        return None
    read = len(grid)
    cells = np.full((max(read, max(rows_at, default=-1) + 1), width), "", dtype=object)
    if size:
        cells[:read, :size] = grid
    del grid
    if texts:
        cells[rows_at, columns_at] = np.array(texts, dtype=object)
    for j in range(size):
        cells[:read, j] = _values_text(cells[:read, j])
    return list(enumerate(cells.tolist(), start=1))


def _read_xlsx(path: Path) -> RawTable:
    _check_xlsx_parts(path)
    notes: list[str] = []
    workbook = _open_workbook(path, data_only=True)
    try:
        sheets = workbook.worksheets
        if not sheets:
            raise DataError("the workbook has no sheet", file=path.name, fix="export it again")
        states = [getattr(s, "sheet_state", "visible") for s in sheets]
        visible = [i for i, state in enumerate(states) if state == "visible"]
        index = visible[0] if visible else 0
        hidden_before = [sheets[i].title for i in range(index) if states[i] != "visible"]
        if hidden_before:
            notes.append(
                f"hidden sheet(s) {', '.join(map(repr, hidden_before))} skipped; read the first "
                f"visible sheet {sheets[index].title!r}"
            )
        others = [s.title for i, s in enumerate(sheets) if i > index]
        if others:
            notes.append(
                f"read sheet {sheets[index].title!r}; other sheet(s) ignored: "
                + ", ".join(map(repr, others))
            )
        records = _calamine_records(path, workbook, sheets[index])
        fast = records is not None  # read by calamine: the sheet holds no formula
        if records is None:
            records = _sheet_rows(path, sheets[index], _cell_text, notes)
    finally:
        workbook.close()
    formulas: dict[tuple[int, int], str] = {}
    if not fast and _has_formulas(path):
        workbook = _open_workbook(path, data_only=False)
        try:
            sheet = workbook.worksheets[index]
            if sheet.max_column is not None and sheet.max_row is not None:
                sheet.reset_dimensions()  # the formulas outside a wrong stated size too
            for number, row in enumerate(sheet.iter_rows(), start=1):
                for position, cell in enumerate(row):
                    if getattr(cell, "data_type", None) == "f":
                        formulas[(number, position)] = str(cell.value)
        except Exception as exc:
            raise DataError(
                f"the sheet's formulas cannot be read ({type(exc).__name__})",
                file=path.name,
                fix="paste the sheet as values, or export it as CSV",
            ) from exc
        finally:
            workbook.close()
    # a formula without a saved result (a file written by a program, never opened and saved by
    # a spreadsheet) reads as empty: show the formula so the row is not blank, and quarantine it
    uncached = []
    by_row = {number: cells for number, cells in records}
    for (number, position), formula in formulas.items():
        cells = by_row.get(number)
        if cells is not None and position < len(cells) and cells[position] == "":
            cells[position] = echo(formula)
            uncached.append((number, position, formula))
    records = [(n, r) for n, r in records if any(r)]
    if not records:
        raise DataError("the sheet is empty", file=path.name, fix="put the table first")
    header_row, header = records[0]
    while header and header[-1] == "":
        header = header[:-1]
    width = len(header)
    body = records[1:]
    rows = [r[:width] + [""] * (width - len(r)) for _, r in body]
    malformed = [(n, echo(";".join(r))) for n, r in body if any(c for c in r[width:])]
    bad = {n for n, _ in malformed}
    keep = [i for i, (n, _) in enumerate(body) if n not in bad]
    cells = pd.DataFrame([rows[i] for i in keep], columns=header, dtype=object).astype(str)
    numbers = np.asarray([body[i][0] for i in keep], dtype=np.int64)
    raw = RawTable(path, cells, numbers, malformed, notes=notes)
    problems = [
        (
            number,
            header[position] if position < width else "",
            echo(formula),
            "formula without a saved result (the workbook was never recalculated and saved): "
            "open and save it in a spreadsheet program, or paste the values",
        )
        for number, position, formula in uncached
        if number != header_row and number not in bad
    ]
    _add_problems(raw, problems)
    if formulas:
        raw.notes.append(
            f"{len(formulas):,} formula cell(s): their saved results were read"
            + (f"; {len(problems):,} without a saved result quarantined" if problems else "")
        )
    return raw


# ------------------------------------------------------------------------------------ Parquet

#: A typed Parquet column (numbers, dates, time stamps) longer than :data:`MANY_DISTINCT_MIN`
#: rows whose first :data:`MANY_DISTINCT_MIN` values are more than this share distinct is given
#: as per-row text made by Arrow kernels instead of one text per distinct value: coding a
#: column of (nearly) unique values, typically a row id or a time stamp the loader ignores (a
#: pandas index written with the frame), costs more than it saves.
MANY_DISTINCT_SHARE = 0.5
#: Rows sampled by :func:`_mostly_distinct` (and the fewest rows it looks at).
MANY_DISTINCT_MIN = 10_000


def _arrow_text(column, name: str) -> tuple[np.ndarray, str | None]:
    """One Arrow column as an array of cell text, or (empty cells, why it is unusable).

    Strings, integers, booleans and dates are turned into text by Arrow compute kernels and
    stay Arrow-backed (pandas ``str``); the other types give an object array.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
        kind = column.type
    n = len(column)
    empty = np.full(n, "", dtype=object)
    if pa.types.is_null(kind):
        return empty, None
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        text = pc.utf8_trim_whitespace(column)
    elif pa.types.is_boolean(kind):
        text = pc.if_else(column, "true", "false")
    elif pa.types.is_integer(kind) or pa.types.is_decimal(kind):
        text = pc.cast(column, pa.string())
    elif pa.types.is_floating(kind):
        # each value as the shortest text that reads back to it *in its own precision*: a
        # float32 0.1 is "0.1" (what the writer was given, and what a CSV export shows), not
        # the float64 expansion of the nearest float32, 0.10000000149011612
        native = column.to_numpy(zero_copy_only=False)
        values = native.astype("float64")
        out = np.full(len(values), "", dtype=object)
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(values) & (np.mod(values, 1) == 0) & (np.abs(values) < 2**63)
        out[whole] = values[whole].astype(np.int64).astype(str)
        rest = ~whole & ~np.isnan(values)
        if native.dtype == np.float64:  # Python's repr: numpy's str of a float64, made faster
            out[rest] = [repr(value) for value in values[rest].tolist()]
        else:
            out[rest] = pd.Series(native[rest]).astype(str).to_numpy(dtype=object)
        return out, None
    elif pa.types.is_date(kind) or pa.types.is_timestamp(kind):
        if pa.types.is_timestamp(kind) and kind.tz is not None:
            column = pc.local_timestamp(column)  # the wall-clock time, as written
        text = _arrow_date_text(column)
    elif pa.types.is_time(kind):
        seconds = pc.cast(pc.cast(column, pa.time64("us")), pa.int64()).to_numpy(
            zero_copy_only=False
        )
        out = empty.copy()
        ok = ~pd.isna(seconds)
        s = seconds[ok].astype(np.int64) // 1_000_000
        out[ok] = [f"{v // 3600:02d}:{v // 60 % 60:02d}:{v % 60:02d}" for v in s]
        return out, None
    elif pa.types.is_duration(kind):
        micro = pc.cast(pc.cast(column, pa.duration("us")), pa.int64()).to_numpy(
            zero_copy_only=False
        )
        values = np.where(pd.isna(micro), np.nan, micro.astype("float64") / 1e6)
        out = pd.Series(values).astype(str).to_numpy(dtype=object)
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(values) & (np.mod(values, 1) == 0)
        out[whole] = values[whole].astype(np.int64).astype(str)
        out[np.isnan(values)] = ""
        return out, None
    elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
        inner = kind.value_type
        if not (pa.types.is_integer(inner) or pa.types.is_floating(inner)):
            return empty, f"a list of {inner} values"
        flat, _ = _arrow_text(pc.list_flatten(column), name)
        lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
        lengths = np.where(pd.isna(lengths), 0, lengths).astype(np.int64)
        ends = np.cumsum(lengths)
        out = np.array(
            ["/".join(flat[end - length : end]) for end, length in zip(ends, lengths, strict=True)],
            dtype=object,
        )
        return out, None
    elif pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return empty, "binary (bytes) values"
    else:
        return empty, f"{kind} values (nested data)"
    # stays Arrow-backed (pandas' ``str`` dtype): no per-cell Python object is made
    return pd.Series(pc.fill_null(text, "").to_pandas()).astype("str").array, None


def _arrow_date_text(column) -> object:
    """Dates and timestamps as ``YYYY-MM-DD`` (``THH:MM:SS`` when there is a time), built from
    their parts so years outside pandas' nanosecond range (1026, 9999) stay readable."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_date(column.type):
        column = pc.cast(column, pa.timestamp("s"))

    def pad(values, width):
        return pc.utf8_lpad(pc.cast(values, pa.string()), width, "0")

    date = pc.binary_join_element_wise(
        pad(pc.year(column), 4), pad(pc.month(column), 2), pad(pc.day(column), 2), "-"
    )
    seconds = pc.add(
        pc.add(pc.multiply(pc.hour(column), 3600), pc.multiply(pc.minute(column), 60)),
        pc.second(column),
    )
    time = pc.binary_join_element_wise(
        pad(pc.hour(column), 2), pad(pc.minute(column), 2), pad(pc.second(column), 2), ":"
    )
    with_time = pc.binary_join_element_wise(date, time, "T")
    return pc.if_else(pc.equal(seconds, 0), date, with_time)


def _arrow_coded(column, name: str, *, read_as_dictionary: bool = False) -> pd.Series | None:
    """One Arrow column as a ``category`` Series of cell text: the text of each *distinct* value
    is made by :func:`_arrow_text` (so it is the text a per-row conversion gives), the rows only
    get codes. ``None`` for types without a dictionary encoding (lists, nested data).

    ``read_as_dictionary``: a text column the Parquet reader handed over as its dictionary
    (``read_dictionary``, no per-row string made); its distinct values are put in order of
    first appearance and unused ones dropped, which is what ``dictionary_encode`` of the
    decoded column gives."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if read_as_dictionary and pa.types.is_dictionary(column.type):
        return _first_appearance_coded(column, name)
    kind = column.type
    simple = (
        pa.types.is_dictionary(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_date(kind)
        or pa.types.is_timestamp(kind)
    )
    if not simple:
        return None
    if _mostly_distinct(column):
        return None  # nearly every value distinct (a row id, a time stamp): the per-row text
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks else pa.array([], type=kind)
    encoded = column if pa.types.is_dictionary(kind) else pc.dictionary_encode(column)
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
    dictionary = encoded.dictionary
    if len(dictionary) == 0:
        return coded_cells(codes, [])
    texts, why = _arrow_text(pa.chunked_array([dictionary]), name)
    if why is not None:
        return None
    return coded_cells(codes, np.asarray(texts, dtype=object))


def _mostly_distinct(column) -> bool:
    """Whether a number, date or time-stamp column looks like a column of (nearly) unique
    values: more than :data:`MANY_DISTINCT_SHARE` of its first :data:`MANY_DISTINCT_MIN` values
    distinct. Only the speed depends on it: per-row and per-value text give the same cells."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if len(column) <= MANY_DISTINCT_MIN or not (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_date(kind)
        or pa.types.is_timestamp(kind)
    ):
        return False
    sample = column.slice(0, MANY_DISTINCT_MIN)
    return pc.count_distinct(sample).as_py() > MANY_DISTINCT_SHARE * MANY_DISTINCT_MIN


def _first_appearance_coded(column, name: str) -> pd.Series | None:
    """:func:`_arrow_coded` of a dictionary column read from a text column: the codes and
    dictionary renumbered in order of first appearance (the order ``dictionary_encode`` gives
    the decoded column), so the categories are those of the per-value path."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(column, pa.ChunkedArray):
        if not column.num_chunks:
            return coded_cells(np.zeros(0, dtype=np.int64), [])
        column = column.unify_dictionaries().combine_chunks()
    codes = pc.fill_null(column.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    order = pd.unique(codes[codes >= 0])  # used dictionary entries, in order of first use
    if len(order) == 0:
        return coded_cells(codes, [])
    renumber = np.full(len(column.dictionary), -1, dtype=np.int64)
    renumber[order] = np.arange(len(order))
    codes = np.where(codes >= 0, renumber[np.maximum(codes, 0)], -1)
    dictionary = column.dictionary.take(pa.array(order))
    texts, why = _arrow_text(pa.chunked_array([dictionary]), name)
    if why is not None:
        return None
    return coded_cells(codes, np.asarray(texts, dtype=object))


def _read_parquet(path: Path, *, coded: bool = False) -> RawTable:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
        _check_width(path, len(schema.names))
        # coded: text columns come as their dictionaries (no per-row string is made)
        as_dictionary = (
            [
                field.name
                for field in schema
                if pa.types.is_string(field.type) or pa.types.is_large_string(field.type)
            ]
            if coded and len(set(schema.names)) == len(schema.names)
            else []
        )
        table = pq.read_table(
            path, coerce_int96_timestamp_unit="us", read_dictionary=as_dictionary or None
        )
    except DataError:
        raise
    except Exception as exc:  # pyarrow raises several types for a broken file
        raise DataError(
            f"not a readable Parquet file ({type(exc).__name__}: {echo(str(exc), 120)})",
            file=path.name,
            fix="write the table again with pandas.DataFrame.to_parquet",
        ) from exc
    columns, unusable = {}, {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        if coded:
            try:
                cells = _arrow_coded(column, name, read_as_dictionary=name in as_dictionary)
            except Exception:  # an Arrow type with no dictionary encoding: the per-row text
                cells = None
            if cells is not None:
                columns[str(name)] = cells
                continue
        try:
            text, why = _arrow_text(column, name)
        except Exception as exc:  # an Arrow type with no text form
            text, why = np.full(table.num_rows, "", dtype=object), f"{column.type} values ({exc})"
        if why is not None:
            unusable[str(name)] = why
        columns[str(name)] = text
    cells = (
        pd.DataFrame(
            {
                name: text if isinstance(text, pd.Series) else pd.Series(text).astype("str")
                for name, text in columns.items()
            }
        )
        if columns
        else pd.DataFrame()
    )
    if not columns:
        cells = pd.DataFrame(index=range(table.num_rows))
    return RawTable(path, cells, np.arange(table.num_rows, dtype=np.int64) + 2, unusable=unusable)
