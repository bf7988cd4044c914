"""Reusable hypothesis strategies and checks for fuzzing the readers and the loader.

Importers (``hipdata/sources``) can reuse them: build a file's bytes with a strategy, write it
into a folder with :func:`write_case`, and check the outcome with :func:`assert_loads_or_refuses`.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import strategies as st
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

import hipdata
from hipdata import DataError
from tests.io_helpers import PATIENTS, SETS, TODAY

#: Cells that have broken loaders: formulas, numbers with both marks, dates out of range,
#: quotes and delimiters, control characters, very long text.
NASTY_CELLS = st.sampled_from(
    [
        "",
        " ",
        '=HYPERLINK("http://x","y")',
        "+cmd|' /C calc'!A0",
        "@SUM(1+1)",
        "-2+3",
        "\t=1",
        "\r",
        '"',
        '""',
        ",",
        ";",
        "4,5",
        "1.234,5",
        "1026-02-05",
        "9999-12-31",
        "0000-00-00",
        "31/02/2026",
        "03/04/2026",
        "NaN",
        "inf",
        "-0",
        "1e400",
        "10/10/8",
        "/".join(["10"] * 60),
        "🙂",
        "\u00a0",
        "C04-Tü",
        "x" * 10_001,
    ]
)
# no lone surrogates: no file can hold them, and pandas' Arrow strings refuse them
CELLS = st.one_of(
    NASTY_CELLS,
    st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=20),
)


@st.composite
def exercise_frames(draw, max_rows: int = 8) -> pd.DataFrame:
    """The set-level exercises table with random cells replaced by nasty ones."""
    frame = SETS.copy()
    for _ in range(draw(st.integers(0, max_rows))):
        row = draw(st.integers(0, len(frame) - 1))
        column = draw(st.sampled_from(list(frame.columns)))
        frame.loc[row, column] = draw(CELLS)
    return frame


def csv_bytes(frame: pd.DataFrame, *, sep: str = ",", encoding: str = "utf-8") -> bytes:
    """A frame as CSV bytes; characters the encoding lacks become '?'."""
    return frame.to_csv(index=False, sep=sep).encode(encoding, errors="replace")


@st.composite
def csv_files(draw) -> bytes:
    """CSV bytes of a valid-looking exercises table, then damaged: wrong encoding, truncated,
    extra delimiters, random bytes spliced in."""
    frame = draw(exercise_frames())
    data = csv_bytes(
        frame,
        sep=draw(st.sampled_from([",", ";", "\t"])),
        encoding=draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16", "latin-1"])),
    )
    damage = draw(st.sampled_from(["none", "truncate", "splice", "extra_cells", "mixed"]))
    if damage == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    elif damage == "splice":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=40)) + data[at:]
    elif damage == "extra_cells":
        lines = data.split(b"\n")
        which = draw(st.integers(0, len(lines) - 1))
        lines[which] += b"," * draw(st.integers(1, 3))
        data = b"\n".join(lines)
    elif damage == "mixed":
        data += "P1,2026-03-02,bridge,9,10,,,Tü,\n".encode("cp1252")
    return data


def wide_header(columns: int) -> bytes:
    """A header of ``columns`` columns and one short row."""
    return (",".join(f"c{i}" for i in range(columns)) + "\n1,2\n").encode()


def xlsx_bytes(frame: pd.DataFrame, *, hidden_first: bool = False, formula: str | None = None):
    """A workbook holding ``frame`` (optionally behind a hidden sheet, with one formula cell)."""
    book = Workbook()
    sheet = book.active
    if hidden_first:
        sheet.title = "hidden"
        sheet.append(["nothing"])
        sheet.sheet_state = "hidden"
        sheet = book.create_sheet("data")
    sheet.append(list(frame.columns))
    for record in frame.itertuples(index=False):
        # Excel cannot hold control characters: drop them as a spreadsheet program would
        sheet.append([ILLEGAL_CHARACTERS_RE.sub("", str(v)) for v in record])
    if formula is not None:
        sheet["E2"] = formula
    stream = io.BytesIO()
    book.save(stream)
    return stream.getvalue()


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    stream = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), stream)
    return stream.getvalue()


def write_case(folder: Path, exercises: bytes, suffix: str = ".csv") -> Path:
    """A folder with the good patients table and the given exercises file."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("exercises.*"):
        old.unlink()
    PATIENTS.to_csv(folder / "patients.csv", index=False)
    (folder / f"exercises{suffix}").write_bytes(exercises)
    return folder


def assert_loads_or_refuses(folder: Path, **options) -> hipdata.Dataset | None:
    """The loader's promise: a Dataset whose rows reconcile, or one clear DataError."""
    try:
        ds = hipdata.load(folder, today=TODAY, **options)
    except DataError as error:
        assert str(error).strip()
        return None
    report = ds.load_report
    assert (report["rows_read"] == report["rows_kept"] + report["rows_quarantined"]).all()
    per_file = ds.quarantine.groupby("source_file").size()
    for row in report.itertuples():
        assert per_file.get(row.source_file, 0) == row.rows_quarantined
    # every column of every file is accounted for, once
    assert not ds.columns.duplicated(["source_file", "column"]).any()
    # values echoed into the quarantine are short
    assert (ds.quarantine["value"].astype(str).str.len() <= 201).all()
    assert ds.sets["load_kg"].between(0, 500).all()
    assert ds.sets["pain_during"].dropna().between(0, 10).all()
    return ds
