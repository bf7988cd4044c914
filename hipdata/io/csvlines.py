"""A CSV file split by its lines, for the chunked ``hipdata metrics`` (no cell held in the parent).

The chunked run (:mod:`hipdata.metrics.chunked`) needs, in its parent process, only each record's
patient id, to put every record in the chunk of its patient. For a CSV file in which every line
is one record, :func:`read_lines` memory-maps the file, finds its lines, and reads the patient-id
column alone (pyarrow's parser, which still checks that every record has the header's number of
cells); each chunk is then sent to its worker as the header line plus the chunk's own lines
(:class:`CsvPart`), and the worker turns them into the very cells and row numbers
:func:`hipdata.io.readers.read_raw` gives for those records (:meth:`CsvPart.raw`: the same
pyarrow read, ``_read_csv_arrow``, on the header and those lines, and ``read_raw``'s own steps
after it).

Every line is one record, and parsing it alone gives the cells the whole file's parse gives it,
exactly when (all checked; any other file returns ``None`` and the chunked run reads it with
``read_raw`` as before):

- the file decodes as UTF-8 (a leading BOM is skipped, as the reader does), without a NUL byte in
  its first 4 KiB, and ``read_raw`` would take its pyarrow path (a non-blank header line that is
  not Excel's ``sep=`` hint, no more than :data:`~hipdata.io.readers.MAX_COLUMNS` columns, named,
  distinct column names, every record with the header's number of cells);
- every carriage return ends a line (``\\r\\n``): a lone ``\\r`` is a record break to pyarrow but
  not a line break here;
- pyarrow's parse of the whole file finds as many records as the file has lines (a blank line is
  a record of empty cells to it): a quoted cell holding a line break would make a record of two
  lines and fewer records than lines. A record's parse starts outside quotes, so a record that is
  one line parses alone as it does in the file;
- no line is longer than :data:`~hipdata.io.readers.MAX_CELL_CHARS` bytes, so no cell is cut
  (the only cell ``read_raw`` changes), and some record has a patient id (so the file has rows:
  the chunked run's rule for an optional table whose chunk has none holds).

Blank lines are left out of the chunks: ``read_raw`` drops records with every cell empty, and
keeps the file's row numbers for the others, which the parts carry.
"""

from __future__ import annotations

import codecs
import mmap
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hipdata.errors import DataError

#: Bytes per block in which the file's bytes are scanned (bounds the scans' temporary arrays).
SCAN_BLOCK_BYTES = 1 << 26
#: Bytes of whole lines per piece in which a file without quotes is parsed (bounds the
#: parser's memory: about twice the piece while it runs).
PARSE_PIECE_BYTES = 1 << 27
_CSV_SUFFIXES = (".csv", ".txt", ".tsv")


@dataclass
class CsvLines:
    """A CSV file held as its memory-mapped lines (see the module's docstring).

    Attributes
    ----------
    mapped : mmap.mmap
        The file, memory-mapped (read-only); the other attributes' buffers point into it.
    path : Path
        The file.
    sep : str
        Its delimiter (as ``read_raw`` sniffs it).
    header : bytes
        The header line with its line end (without a BOM).
    lines : pyarrow.LargeBinaryArray
        Byte ranges of the file: the data lines, each with its line end but the file's last
        (and, when the file has blank lines, those too).
    index : ndarray or None
        The element of ``lines`` of each data line (blank lines left out); None: the same.
    source_row : ndarray
        The file row (1-based; the header is row 1) of each data line.
    ids : Series
        The patient-id cell of each data line as ``read_raw`` and the loader give it: a
        ``category`` Series of the stripped texts.
    notes : list of str
        The file-level notes ``read_raw`` adds (a large file).
    """

    mapped: mmap.mmap
    path: Path
    sep: str
    header: bytes
    lines: object
    index: np.ndarray | None
    source_row: np.ndarray
    ids: pd.Series
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name

    def part(self, positions: np.ndarray) -> CsvPart:
        """The data lines at ``positions`` (ascending) as one chunk's part."""
        import pyarrow as pa

        positions = np.asarray(positions, dtype=np.int64)
        elements = positions if self.index is None else self.index[positions]
        taken = self.lines.take(pa.array(elements))
        offsets = np.frombuffer(taken.buffers()[1], dtype=np.int64)[
            taken.offset : taken.offset + len(taken) + 1
        ]
        data = taken.buffers()[2]
        body = b"" if data is None else data[int(offsets[0]) : int(offsets[-1])].to_pybytes()
        del taken, data
        _release(self.mapped)
        return CsvPart(
            self.path, self.sep, self.header + body, self.source_row[positions], list(self.notes)
        )


@dataclass
class CsvPart:
    """Some records of a CSV file, as their header and lines (see :class:`CsvLines`)."""

    path: Path
    sep: str
    data: bytes  # the header line, then the records' lines
    source_row: np.ndarray
    notes: list[str]

    @property
    def name(self) -> str:
        return self.path.name

    def raw(self):
        """The records as the :class:`~hipdata.io.readers.RawTable` ``read_raw(path,
        coded=True)`` gives for the whole file, restricted to these records (each column a
        ``category`` of its stripped texts; the categories are those of these records)."""
        from hipdata.io import readers

        text = self.data.decode("utf-8")
        if len(self.source_row):
            raw = readers._read_csv_arrow(self.path, text, self.sep, data=memoryview(self.data))
            if raw is None:  # never for the files read_lines accepts; the same cells then
                raw = readers._read_csv_fast(self.path, text, self.sep)
            if raw is None or len(raw.cells) != len(self.source_row):
                raise AssertionError(f"{self.name}: a chunk's lines did not parse as the file")
        else:
            names = _header_names(self.data.decode("utf-8"), self.sep)
            cells = pd.DataFrame(
                {i: readers.coded_cells(np.zeros(0, dtype=np.int64), []) for i in range(len(names))}
            )
            cells.columns = names
            raw = readers.RawTable(self.path, cells, np.zeros(0, dtype=np.int64))
        raw.source_row = np.asarray(self.source_row, dtype=np.int64)
        raw.notes = list(self.notes)
        # read_raw's steps after the parser, for these records
        raw.cells.columns = [str(c).strip() for c in raw.cells.columns]
        if raw.cells.shape[1] and len(raw.cells):
            filled = (raw.cells != "").any(axis=1).to_numpy()
            if not filled.all():
                raw.cells = raw.cells.loc[filled].reset_index(drop=True)
                raw.source_row = raw.source_row[filled]
        readers._limit_cell_length(raw)
        readers.release_arrow_memory()
        return raw


def _release(mapped: mmap.mmap) -> None:
    """Drop the mapped file's pages from this process's resident memory (they stay in the page
    cache; the next read maps them again), so the parent's memory is not the file's size."""
    if hasattr(mapped, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        mapped.madvise(mmap.MADV_DONTNEED)


def _header_names(header_line: str, sep: str) -> list[str]:
    """The header's cells (pyarrow's parse of the line), stripped as ``read_raw`` strips them."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(
        pa.py_buffer((header_line + "\n").encode("utf-8")),
        read_options=pacsv.ReadOptions(autogenerate_column_names=True),
        parse_options=pacsv.ParseOptions(
            delimiter=sep, newlines_in_values='"' in header_line, ignore_empty_lines=False
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={f"f{i}": pa.large_string() for i in range(header_line.count(sep) + 2)},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    return [str(column[0].as_py()).strip() for column in table.columns]


def _blocks(data: np.ndarray):
    for begin in range(0, len(data), SCAN_BLOCK_BYTES):
        yield begin, data[begin : begin + SCAN_BLOCK_BYTES]


def _is_utf8(data: np.ndarray) -> bool:
    if all(int(block.max()) < 0x80 for _, block in _blocks(data)):
        return True
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        for _, block in _blocks(data):
            decoder.decode(block.tobytes())
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _positions(data: np.ndarray, byte: int) -> np.ndarray:
    parts = [np.flatnonzero(block == byte) + begin for begin, block in _blocks(data)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _contains(data: np.ndarray, byte: int) -> bool:
    return any(bool((block == byte).any()) for _, block in _blocks(data))


def read_lines(path: Path, table: str) -> CsvLines | None:
    """``path`` as :class:`CsvLines`, or None when it is not a CSV file whose every line is one
    record (module docstring); ``read_raw`` then reads it. Never raises for the file's content:
    what ``read_raw`` would refuse, this returns None for."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from hipdata.io import readers
    from hipdata.io.columns import KNOWN_COLUMNS
    from hipdata.io.loader import _map_columns

    path = Path(path)
    if path.suffix.lower() not in _CSV_SUFFIXES:
        return None
    try:
        with open(path, "rb") as stream:
            mapped = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):  # ValueError: an empty file
        return None
    buffer = pa.py_buffer(mapped)
    data = np.frombuffer(buffer, dtype=np.uint8) if buffer.size else np.zeros(0, np.uint8)
    head = data[:4096].tobytes()
    if not head.strip() or head.startswith((b"\xff\xfe", b"\xfe\xff", b"PK\x03\x04")):
        return None
    if b"\x00" in head:
        return None
    start = 3 if head.startswith(b"\xef\xbb\xbf") else 0
    data = data[start:]
    if not len(data) or not _is_utf8(data):
        return None
    breaks = _positions(data, 0x0A)
    returns = _positions(data, 0x0D)
    if len(returns) and (
        returns[-1] + 1 >= len(data) or not (data[returns + 1] == 0x0A).all()
    ):  # a carriage return that does not end a line
        return None
    starts = np.concatenate([[0], breaks + 1]).astype(np.int64)
    del breaks
    if starts[-1] == len(data):
        starts = starts[:-1]
    ends = np.concatenate([starts[1:], [len(data)]]).astype(np.int64)
    if len(starts) < 2:
        return None  # a header without records
    lengths = ends - starts
    if int(lengths.max()) > readers.MAX_CELL_CHARS:
        return None
    header_bytes = data[: ends[0]].tobytes()
    header_line = header_bytes.decode("utf-8").rstrip("\n").rstrip("\r")
    if not header_line.strip():
        return None
    if re.fullmatch(r'\s*"?sep=.?"?\s*', header_line, flags=re.IGNORECASE):
        return None
    sep = readers._sniff_delimiter(header_line)
    width = re.sub(r'"[^"]*"', "", header_line).count(sep) + 1
    if width > readers.MAX_COLUMNS:
        return None
    quoted = _contains(data, 0x22)
    _release(mapped)  # the scans touched every page
    try:
        names = _header_names(header_line, sep)
    except (pa.ArrowException, ValueError):
        return None
    keys = [readers.column_key(name) for name in names]
    if len(names) != width or "" in names or len(set(keys)) != len(keys):
        return None
    empty = readers.RawTable(path, pd.DataFrame(columns=names), np.zeros(0, dtype=np.int64))
    try:
        mapping, _ = _map_columns(empty, table, KNOWN_COLUMNS[table])
    except DataError:
        return None  # the loader's error, raised where the chunked run maps the columns
    if "patient_id" not in mapping:
        return None
    position = names.index(mapping["patient_id"])
    # without a quote character every line start is a record start: the file is parsed in
    # pieces of whole lines (bounds the parser's memory); with quotes, whole
    cuts = [0, len(data)]
    if not quoted:
        targets = np.arange(PARSE_PIECE_BYTES, len(data), PARSE_PIECE_BYTES)
        found = np.searchsorted(starts, targets)
        inner = np.unique(starts[found[found < len(starts)]])
        cuts = [0, *inner[inner > 0].tolist(), len(data)]
    pieces, records = [], 0
    for begin, end in zip(cuts[:-1], cuts[1:], strict=True):
        try:
            parsed = pacsv.read_csv(
                buffer.slice(start + begin, end - begin),
                # every record must have the header's number of cells (as read_raw's check)
                read_options=pacsv.ReadOptions(column_names=[f"f{i}" for i in range(width)]),
                parse_options=pacsv.ParseOptions(
                    delimiter=sep, newlines_in_values=quoted, ignore_empty_lines=False
                ),
                convert_options=pacsv.ConvertOptions(
                    include_columns=[f"f{position}"],
                    column_types={f"f{position}": pa.large_string()},
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
        except (pa.ArrowException, ValueError):
            return None
        records += parsed.num_rows
        pieces.extend(parsed.column(0).chunks)
        del parsed
        _release(mapped)  # the piece's pages: not held while the next piece is parsed
    if records != len(starts):
        return None  # a record of several lines (a quoted line break)
    import pyarrow.compute as pc

    column = pc.dictionary_encode(pa.chunked_array(pieces, type=pa.large_string()).combine_chunks())
    del pieces
    codes = column.indices.to_numpy(zero_copy_only=False).astype(np.int64)[1:]
    texts = pd.Series(column.dictionary.to_pylist(), dtype="str").str.strip()
    blank = (lengths[1:] == 1) | ((lengths[1:] == 2) & (data[starts[1:]] == 0x0D))
    keep = np.flatnonzero(~blank)
    codes = codes[keep]
    if not (texts != "").to_numpy()[codes].any():
        return None  # no record has a patient id: read_raw's own rows decide
    ids = readers.coded_cells(codes, texts.to_numpy(dtype=object))
    lines, index = _lines_array(buffer, starts[1:][keep] + start, ends[1:][keep] + start)
    notes = []
    size = path.stat().st_size
    if size > readers.LARGE_FILE_BYTES:
        notes.append(
            f"large file ({size / 2**20:,.0f} MB): loading needs a few times its size in memory"
        )
    _release(mapped)
    return CsvLines(
        mapped=mapped,
        path=path,
        sep=sep,
        header=header_bytes,
        lines=lines,
        index=index,
        source_row=keep.astype(np.int64) + 2,
        ids=ids,
        notes=notes,
    )


def _lines_array(buffer, begins: np.ndarray, ends: np.ndarray):
    """The byte ranges ``[begins[i], ends[i])`` of ``buffer`` (ascending, not overlapping) as a
    ``large_binary`` array over the buffer (no copy) and the element of each range (None: the
    ranges are the array, contiguous)."""
    import pyarrow as pa

    n = len(begins)
    if (begins[1:] == ends[:-1]).all():
        offsets = np.concatenate([begins, ends[-1:]]).astype(np.int64)
        return pa.LargeBinaryArray.from_buffers(
            pa.large_binary(), n, [None, pa.py_buffer(offsets), buffer]
        ), None
    # blank lines between some: the array's elements are the ranges between every begin and
    # end, and each range is the element that starts at its begin
    bounds = np.unique(np.concatenate([begins, ends])).astype(np.int64)
    every = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(bounds) - 1, [None, pa.py_buffer(bounds), buffer]
    )
    return every, np.searchsorted(bounds, begins).astype(np.int64)
