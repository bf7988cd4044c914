"""A CSV file split by its lines (:mod:`hipdata.io.csvlines`), the chunked run's CSV fast path.

The reference is ``read_raw(path, coded=True)`` itself, sliced to the chunk's records (what the
chunked parent sent before): every chunk's :meth:`CsvPart.raw` must give the same cell texts,
row numbers, reader problems and notes, and the ids the parent reads must be the loader's. A file
the path cannot split exactly must be refused (``None``: the parent then reads it whole, as
before).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hipdata.io.csvlines import read_lines
from hipdata.io.readers import decode_cells, read_raw
from hipdata.metrics.chunked import _id_cells, _slice

HEADER = "patient_id,date,exercise,set,reps,hold_s,load_kg,pain_during,pain_24h"
ROWS = [
    "P1,2026-01-05,clamshell,1,10,,0,2,3",
    "P2,2026-01-05,bridge,1,8,,5,1,2",
    "P1,2026-01-06,clamshell,2,10,,0,2,3",
    "  P3 ,2026-01-07,bridge,1,12,,2.5,0,0",
    ",2026-01-07,bridge,1,12,,2.5,0,0",
    "Pé,2026-01-08,side plank,1,,30,,3,3",
    "患者1,2026-01-08,bridge,1,9,,7,11,2",
    "P2,2026-01-09,bridge,2,8,,5,abc,2",
]


def _text(rows, *, header=HEADER, end="\n", last=True) -> str:
    return end.join([header, *rows]) + (end if last else "")


def _cells(raw) -> pd.DataFrame:
    return pd.DataFrame(
        {
            c: decode_cells(raw.cells[c]) if hasattr(raw.cells[c], "cat") else raw.cells[c]
            for c in raw.cells.columns
        }
    )


def _check_parts(path: Path, table: str = "exercises") -> None:
    """Every way of splitting the records (in halves, odd/even, one by one, none) gives the
    sliced whole-file RawTable; the parent's ids are the loader's."""
    lines = read_lines(path, table)
    assert lines is not None, path.read_bytes()[:200]
    whole = read_raw(path, coded=True)
    ids = _id_cells(whole, table)
    # the parent's ids: the loader's ids of the records read_raw keeps, in file order (blank
    # records are dropped by read_raw; the lines path keeps a record of empty cells, whose id is
    # "", which read_raw drops in the worker)
    kept = np.isin(lines.source_row, whole.source_row)
    assert lines.source_row[kept].tolist() == whole.source_row.tolist()
    assert decode_cells(lines.ids)[kept].tolist() == decode_cells(ids).tolist()
    n = len(lines.source_row)
    splits = [np.arange(n), np.arange(0, n, 2), np.arange(1, n, 2), np.arange(n // 2, n)]
    splits += [np.array([i]) for i in range(n)] + [np.zeros(0, dtype=np.int64)]
    for positions in splits:
        part = lines.part(positions).raw()
        wanted = np.flatnonzero(np.isin(whole.source_row, lines.source_row[positions]))
        expected = _slice(whole, wanted, malformed=False)
        assert list(part.cells.columns) == list(expected.cells.columns)
        assert part.source_row.tolist() == expected.source_row.tolist()
        pd.testing.assert_frame_equal(
            _cells(part).reset_index(drop=True), _cells(expected).reset_index(drop=True)
        )
        for column in part.cells.columns:
            assert isinstance(part.cells[column].dtype, pd.CategoricalDtype)
        pd.testing.assert_frame_equal(
            part.problems.reset_index(drop=True), expected.problems.reset_index(drop=True)
        )
        assert part.notes == expected.notes
        assert part.malformed == [] and part.unusable == {} and part.dropped == {}


@pytest.mark.parametrize(
    "name, data",
    [
        ("plain", _text(ROWS).encode()),
        ("no_final_newline", _text(ROWS, last=False).encode()),
        ("crlf", _text(ROWS, end="\r\n").encode()),
        ("bom", b"\xef\xbb\xbf" + _text(ROWS).encode()),
        ("blank_lines", _text([*ROWS[:2], "", *ROWS[2:5], "", "", *ROWS[5:], ""]).encode()),
        ("crlf_blank", _text([*ROWS[:3], "", *ROWS[3:]], end="\r\n").encode()),
        ("empty_cells_rows", _text([*ROWS[:3], ",,,,,,,,", *ROWS[3:], ",,,,,,,,"]).encode()),
        (
            "quoted",
            _text(
                [
                    '"P1","2026-01-05","clamshell, banded","1","10","","0","2","3"',
                    'P2,2026-01-05,"say ""bridge""",1,8,,5,1,2',
                    '"  P3 ",2026-01-07,bridge,1,12,,2.5,0,0',
                    *ROWS[3:],
                ],
                header='"patient_id","date","exercise",set,reps,hold_s,load_kg,pain_during,'
                "pain_24h",
            ).encode(),
        ),
        (
            "semicolon",
            _text([r.replace(",", ";") for r in ROWS], header=HEADER.replace(",", ";")).encode(),
        ),
        (
            "spaced_header",
            _text(
                ROWS,
                header=" Patient ID , date,exercise,set,reps,hold_s,load_kg,pain_during,pain_24h",
            ).encode(),
        ),
        ("extra_column", _text([r + ",x" for r in ROWS], header=HEADER + ",note").encode()),
    ],
)
@pytest.mark.parametrize("piece_bytes", [1 << 27, 37])
def test_parts_equal_the_sliced_whole_file(tmp_path, monkeypatch, name, data, piece_bytes):
    # 37 bytes: a file without quotes is parsed in pieces of one or two lines
    monkeypatch.setattr("hipdata.io.csvlines.PARSE_PIECE_BYTES", piece_bytes)
    path = tmp_path / "exercises.csv"
    path.write_bytes(data)
    _check_parts(path)


def test_tsv_and_other_tables(tmp_path):
    path = tmp_path / "exercises.tsv"
    path.write_text(_text([r.replace(",", "\t") for r in ROWS], header=HEADER.replace(",", "\t")))
    _check_parts(path)
    path = tmp_path / "outcomes.csv"
    path.write_text("patient_id,date,measure,score\nP1,2026-01-05,nprs,4\n\nP2,2026-02-01,nprs,x\n")
    _check_parts(path, "outcomes")


@pytest.mark.parametrize(
    "name, data",
    [
        # a quoted line break: a record of two lines
        ("quoted_newline", _text([*ROWS[:2], 'P4,2026-01-05,"clamshell\nbanded",1,10,,0,2,3'])),
        ("quoted_crlf", _text([*ROWS[:2], 'P4,2026-01-05,"clamshell\r\nbanded",1,10,,0,2,3'])),
        ("lone_cr", _text(ROWS[:3], end="\r")),
        ("lone_cr_inside", _text([ROWS[0], "P1,2026-01-05,clam\rshell,1,10,,0,2,3"])),
        ("long_record", _text([*ROWS, "P1,2026-01-05,clamshell,1,10,,0,2,3,9,9"])),
        ("short_record", _text([*ROWS, "P1,2026-01-05,clamshell"])),
        ("space_line", _text([*ROWS[:2], "   ", *ROWS[2:]])),
        ("header_only", HEADER + "\n"),
        ("sep_hint", "sep=,\n" + _text(ROWS)),
        ("blank_first_line", "\n" + _text(ROWS)),
        ("duplicate_header", _text(ROWS, header=HEADER.replace("hold_s", "Pain During"))),
        ("empty_header", _text([r + "," for r in ROWS], header=HEADER + ",")),
        ("no_patient_id", _text(ROWS, header=HEADER.replace("patient_id", "who"))),
        ("missing_date", _text(ROWS, header=HEADER.replace("date", "when"))),
        ("no_ids", _text([",2026-01-05,clamshell,1,10,,0,2,3"] * 3)),
        ("long_cell", _text([*ROWS, "P1,2026-01-05," + "x" * 10_001 + ",1,10,,0,2,3"])),
    ],
)
@pytest.mark.parametrize("piece_bytes", [1 << 27, 37])
def test_files_not_split_by_lines(tmp_path, monkeypatch, name, data, piece_bytes):
    monkeypatch.setattr("hipdata.io.csvlines.PARSE_PIECE_BYTES", piece_bytes)
    path = tmp_path / "exercises.csv"
    path.write_bytes(data.encode())
    assert read_lines(path, "exercises") is None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        "\ufeffpatient_id,date\nP1,x\n".encode("utf-16"),
        _text(ROWS[:6]).encode("cp1252"),  # not UTF-8 (é as one byte): decoded by read_raw
        b"PK\x03\x04" + _text(ROWS).encode(),
        _text(ROWS).encode()[:20] + b"\x00" + _text(ROWS).encode()[20:],
    ],
)
def test_other_encodings_are_left_to_read_raw(tmp_path, data):
    path = tmp_path / "exercises.csv"
    path.write_bytes(data)
    assert read_lines(path, "exercises") is None


def test_non_csv_files_are_left_to_read_raw(tmp_path):
    path = tmp_path / "exercises.parquet"
    pd.DataFrame({"patient_id": ["P1"]}).to_parquet(path)
    assert read_lines(path, "exercises") is None


def test_blank_lines_between_records_do_not_shift_rows(tmp_path):
    # rows 2, 4 and 7 hold records; 3, 5 and 6 are blank (hand-counted)
    path = tmp_path / "exercises.csv"
    path.write_text(_text([ROWS[0], "", ROWS[1], "", "", ROWS[2]]))
    lines = read_lines(path, "exercises")
    assert lines.source_row.tolist() == [2, 4, 7]
    assert lines.part(np.array([2])).raw().source_row.tolist() == [7]
    assert lines.part(np.array([0, 2])).raw().cells["exercise"].astype(str).tolist() == [
        "clamshell",
        "clamshell",
    ]


def _line_shaped(folder: Path) -> Path:
    """The chunked tests' hostile cohort (shuffled rows, unknown, duplicated, spaced and empty
    ids, bad pain scores) without its malformed line, written as a registry's export might be:
    exercises with a BOM, CRLF line ends, quoted cells (one with a comma), blank lines, a
    record of empty cells and unicode ids; outcomes quoted throughout."""
    from tests.test_metrics_chunked import _hostile

    _hostile(folder, seed=7, n_patients=60)
    sets = pd.read_csv(
        folder / "exercises.csv", dtype=str, keep_default_na=False, on_bad_lines="skip"
    )
    unicode = sets["patient_id"] == sets["patient_id"].iloc[0].strip()
    sets.loc[unicode, "patient_id"] = "Pé-患者"
    patients = pd.read_csv(folder / "patients.csv", dtype=str, keep_default_na=False)
    patients.loc[patients["patient_id"] == sets["patient_id"].iloc[0], "patient_id"] = "Pé-患者"
    patients.to_csv(folder / "patients.csv", index=False)
    sets.loc[sets.index[::7], "exercise"] = "clamshell, banded"  # unknown name, quoted
    lines = sets.to_csv(index=False, lineterminator="\r\n").split("\r\n")
    lines[30:30] = ["", ",,,,,,,,,,,"]
    lines.insert(80, "")
    (folder / "exercises.csv").write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode())
    outcomes = pd.read_csv(folder / "outcomes.csv", dtype=str, keep_default_na=False)
    outcomes.to_csv(folder / "outcomes.csv", index=False, quoting=1)
    return folder


def test_chunked_run_on_line_shaped_csv_equals_one_process_and_the_whole_file_path(tmp_path):
    """Lines path (every input file split by lines) == parent reading whole files == one
    process: every file, byte for byte."""
    from hipdata.metrics import chunked
    from hipdata.protocol import Protocol
    from tests.test_metrics_chunked import (
        TODAY as CHUNK_TODAY,
    )
    from tests.test_metrics_chunked import (
        _assert_same_folders,
        _one_process,
        _protocol_table,
    )

    data = _line_shaped(tmp_path / "data")
    for table in ("patients", "exercises", "activity", "outcomes", "treatments"):
        assert read_lines(data / f"{table}.csv", table) is not None, table
    _one_process(data, tmp_path / "one", "csv")
    for by_lines in (True, False):
        out = tmp_path / f"chunked_{by_lines}"
        try:
            chunked.CSV_BY_LINES = by_lines
            result = chunked.compute_chunked(
                data,
                out,
                fmt="csv",
                protocol=Protocol(),
                workers=2,
                chunk_rows=2_500,
                extra_tables={"protocol": _protocol_table()},
                today=CHUNK_TODAY,
            )
        finally:
            chunked.CSV_BY_LINES = True
        assert result.chunks >= 3
        _assert_same_folders(tmp_path / "one", out)
    quarantine = pd.read_csv(tmp_path / "one" / "quarantine.csv", dtype=str)
    assert quarantine["value"].eq("clamshell, banded").any()  # the quoted cell, whole
