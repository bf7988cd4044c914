"""The CSV reader's and the loader's session-7 fast paths give exactly what the plain paths give.

- ``_read_csv_arrow`` encodes each column chunk by chunk (``_dictionary_codes``), reads a plain
  UTF-8 file's bytes without encoding its text again, and leaves a header text that no data row
  has out of the column's distinct texts. Its cells are compared with the text reader's
  (pandas' C parser and the csv module) on files of several Arrow blocks, with the header's
  text in data rows, unicode, a BOM, Windows-1252 and UTF-16 text.
- The whole ``load`` through the Arrow reader is compared with ``load`` through pandas' C
  parser (the Arrow reader switched off), every table, the quarantine, the load report and the
  column report, on a hostile folder (unknown and empty measures, header texts as cells,
  duplicates, bad dates, unicode ids).
- The outcome measure (and its range) is mapped once per distinct text: compared with the
  per-row expression it replaces.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from io_helpers import PATIENTS, SETS, TODAY, write_folder

import hipdata
from hipdata.io import loader, readers
from hipdata.io.readers import decode_cells, read_raw
from hipdata.outcome_measures import MEASURES, measure_aliases


def _decoded(raw) -> pd.DataFrame:
    cells = raw.cells.copy()
    for position in range(cells.shape[1]):
        column = cells.iloc[:, position]
        if isinstance(column.dtype, pd.CategoricalDtype):
            cells.isetitem(position, decode_cells(column))
    return cells


def _assert_reads_alike(path) -> None:
    text, coded = read_raw(path), read_raw(path, coded=True)
    pd.testing.assert_frame_equal(_decoded(coded), text.cells)
    assert list(coded.source_row) == list(text.source_row)
    assert coded.malformed == text.malformed
    assert coded.notes == text.notes


CSV_CASES = {
    # the header's text in data rows (it must stay a cell), in some columns only
    "header_text_in_rows": "a,b,c\na,2,x\n1,b,c\na,b,c\n",
    "header_only": "a,b\n",
    "one_row": "a,b\n1,2\n",
    "unicode": "id,name\nP\u00e9,\u00c5se\n\u4e2d\u6587,caf\u00e9\n\U0001f600,\u00e9\n",
    "bom_and_unicode": "\ufeffid,name\nP\u00e9,x\nQ,\u00e9\n",
    "strip_equal_to_header": "a,b\n a ,2\n a,3\n",
    "empty_cells": "a,b\n,2\n1,\n,\n3,4\n",
}


@pytest.mark.parametrize("name", sorted(CSV_CASES))
def test_arrow_reader_cells_equal_the_text_reader(tmp_path, name):
    path = tmp_path / f"{name}.csv"
    path.write_text(CSV_CASES[name], encoding="utf-8", newline="")
    _assert_reads_alike(path)


@pytest.mark.parametrize("encoding", ["cp1252", "utf-16"])
def test_arrow_reader_of_re_encoded_text(tmp_path, encoding):
    path = tmp_path / f"{encoding}.csv"
    path.write_bytes("id,name\nP1,caf\u00e9\nP2,na\u00efve\nid,name\n".encode(encoding))
    _assert_reads_alike(path)
    assert read_raw(path, coded=True).cells["name"].dtype.name == "category"


def test_arrow_reader_of_many_blocks(tmp_path):
    # about 5 MB: several Arrow blocks (1 MB each); new distinct texts appear in late blocks,
    # the header's text only in the last row, ties everywhere
    rng = np.random.default_rng(3)
    n = 200_000
    ids = np.array([f"P{i:05d}" for i in range(4_000)], dtype=object)
    frame = pd.DataFrame(
        {
            "patient_id": ids[np.sort(rng.integers(0, len(ids), n))],
            "date": pd.to_datetime("2026-01-01")
            + pd.to_timedelta(rng.integers(0, 400, n), unit="D"),
            "reps": rng.integers(0, 12, n).astype(str),
            "note": np.where(rng.random(n) < 0.001, "\u00e9t\u00e9 ", ""),
        }
    )
    frame.loc[n - 5 :, "reps"] = ["late1", "late2", " 07", "+7", "7.0"]
    frame.loc[n - 1, "patient_id"] = "patient_id"
    path = tmp_path / "big.csv"
    frame.to_csv(path, index=False)
    assert path.stat().st_size > 4 * 2**20
    _assert_reads_alike(path)


def test_dictionary_codes_equal_encoding_the_whole_column():
    rng = np.random.default_rng(0)
    words = ["", "a", "b ", "\u00e9", "P1", "P10", "x" * 300]
    chunks = [
        pa.array([words[i] for i in rng.integers(0, k, 1_000)], type=pa.string())
        for k in (1, 2, 3, 7, 7)
    ] + [pa.array([], type=pa.string())]
    for column in (pa.chunked_array(chunks), pa.chunked_array(chunks[::-1])):
        codes, dictionary = readers._dictionary_codes(column)
        whole = pa.compute.dictionary_encode(column.combine_chunks())
        np.testing.assert_array_equal(codes, whole.indices.to_numpy(zero_copy_only=False))
        assert dictionary.equals(whole.dictionary)


def _outcomes() -> pd.DataFrame:
    rows = [
        ("P1", "2026-03-02", "hoos_pain", "55"),
        ("P1", "2026-03-02", "HOOS Pain", "56"),  # an alias: a duplicate of the row above
        ("P1", "2026-04-02", "measure", "50"),  # the header's text as a cell: unknown
        ("P1", "2026-04-03", "moon", "3"),  # unknown measure
        ("P1", "2026-04-04", "", "3"),  # missing measure
        ("P1", "2026-04-05", "hoos_adl", "101"),  # out of range
        ("P1", "date", "hoos_adl", "40"),  # the header's text as a date
        ("P\u00e9", "2026-04-06", "hoos_adl", "40"),  # unknown unicode id
        ("P2", "2026-04-06", "hoos_adl", ""),  # missing score
        ("P2", "2026-04-07", "hoos_adl", "score"),  # not a number
        ("P2", "2026-04-08", "hoos_sport", "62.50"),
        ("P2", "2026-04-08", "hoos_sport", "62.5"),  # duplicate
    ]
    return pd.DataFrame(rows, columns=["patient_id", "date", "measure", "score"])


def _arrow_off(monkeypatch) -> None:
    monkeypatch.setattr(readers, "_read_csv_arrow", lambda *args, **kwargs: None)


def _assert_same_dataset(got, expected) -> None:
    for name in ("patients", "sets", "activity", "outcomes", "treatments"):
        pd.testing.assert_frame_equal(getattr(got, name), getattr(expected, name), check_exact=True)
    for name in ("quarantine", "load_report", "columns"):
        pd.testing.assert_frame_equal(getattr(got, name), getattr(expected, name), check_exact=True)


@pytest.mark.parametrize(
    "outcomes",
    [_outcomes(), _outcomes().iloc[:1], _outcomes().iloc[2:5], _outcomes().iloc[::-1]],
    ids=["hostile", "one_row", "all_unknown", "reversed"],
)
def test_load_through_arrow_equals_load_through_pandas(tmp_path, monkeypatch, outcomes):
    sets = pd.concat([SETS, SETS.iloc[[0]]], ignore_index=True)  # a duplicate set
    sets.loc[1, "date"] = "date"  # the header's text as a cell
    sets.loc[2, "reps"] = "reps"
    activity = pd.DataFrame(
        {
            "patient_id": ["P1", "P1", "P2", "patient_id"],
            "date": ["2026-03-03", "2026-03-03", "2026-13-01", "2026-03-04"],
            "cardio_min": ["30", "30", "", "20"],
            "strength_sessions": ["1", "1", "2", "0"],
        }
    )
    treatments = pd.DataFrame(
        {
            "patient_id": ["P1", "P2", "P2"],
            "date": ["2026-03-02", "2026-03-09", "2026-03-09"],
            "treatment": ["Manual Therapy", "treatment", "treatment"],
        }
    )
    folder = write_folder(
        tmp_path / "f",
        patients=PATIENTS,
        exercises=sets,
        extra={"outcomes": outcomes, "activity": activity, "treatments": treatments},
    )
    fast = hipdata.load(folder, today=TODAY)
    assert any(
        isinstance(d, pd.CategoricalDtype)
        for d in read_raw(folder / "outcomes.csv", coded=True).cells.dtypes
    )
    _arrow_off(monkeypatch)
    plain = hipdata.load(folder, today=TODAY)
    _assert_same_dataset(fast, plain)
    assert len(fast.quarantine) >= 4


@pytest.mark.parametrize(
    "texts",
    [
        ["hoos_pain", "HOOS Pain", "measure", "", "moon", "hoos_adl", "hoos_adl"],
        ["moon", "x"],
        [""],
        ["hoos_adl"],
        [],
    ],
)
def test_measure_per_distinct_text_equals_the_per_row_map(texts):
    checked = loader._Checked(
        readers.RawTable(
            readers.Path("outcomes.csv"),
            pd.DataFrame({"measure": pd.Series(texts, dtype="str")}),
            np.arange(len(texts), dtype=np.int64) + 2,
        ),
        "outcomes",
        {"measure": "measure"},
        [],
    )
    aliases = {readers.column_key(k): v for k, v in measure_aliases(MEASURES).items()}
    # the per-row expressions the loader used before session 7
    names = checked.cells("measure")
    measure = readers.map_distinct(checked.coded("measure"), readers.column_key).map(aliases)
    low = measure.map({k: m.low for k, m in MEASURES.items()})
    high = measure.map({k: m.high for k, m in MEASURES.items()})
    got = loader._measure_columns(checked.coded("measure"), MEASURES)
    pd.testing.assert_series_equal(got[0], measure, check_exact=True, check_names=False)
    if len(texts):  # (no row: nothing is compared with the ranges)
        pd.testing.assert_series_equal(got[1], low, check_exact=True, check_names=False)
        pd.testing.assert_series_equal(got[2], high, check_exact=True, check_names=False)
    np.testing.assert_array_equal(got[3], (names == "").to_numpy())
    np.testing.assert_array_equal(got[4], ((names != "") & measure.isna()).to_numpy())


def _dup_checked(n: int) -> loader._Checked:
    frame = pd.DataFrame({"patient_id": pd.Series(["P"] * n, dtype="str")})
    raw = readers.RawTable(readers.Path("t.csv"), frame, np.arange(n, dtype=np.int64) + 2)
    return loader._Checked(raw, "exercises", {"patient_id": "patient_id"}, [])


DUPLICATE_KEYS = {
    "days": pd.to_datetime(["2026-01-05", "2026-01-06", "2026-01-05", "1900-01-01", "2199-12-31"]),
    "nat": pd.to_datetime(["2026-01-05", "NaT", "2026-01-05", "NaT", "2026-01-06"]),
    "time_of_day": pd.to_datetime(["2026-01-05 10:00", "2026-01-05 00:00", "2026-01-05 10:00", "2026-01-05 00:00", "2026-01-05 10:01"]),
    "whole_floats": np.array([1.0, np.nan, -0.0, 0.0, np.nan]),
    "fractions": np.array([1.5, 1.5, 2.0, np.nan, 2.0]),
    "infinite": np.array([np.inf, np.inf, 1.0, -np.inf, 1.0]),
    "huge": np.array([1e300, 1e300, 1.0, 2.0**60, 2.0**60]),
    "wide": np.array([0.0, 2.0**40, 0.0, -(2.0**40), 2.0**40]),
    "all_nan": np.array([np.nan] * 5),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(DUPLICATE_KEYS))
def test_duplicates_on_integer_keys_equal_factorized_keys(monkeypatch, name):
    values = DUPLICATE_KEYS[name]
    converted = loader._integer_key(np.asarray(values))
    fast_path = name in ("days", "whole_floats")  # the others are factorized
    assert (converted.dtype.kind == "i") == fast_path
    key = pd.DataFrame({"patient_id": np.zeros(5, dtype=np.int64), "x": values})
    fast = _dup_checked(5)
    loader._flag_duplicates(fast, key, "patient and x")
    monkeypatch.setattr(loader, "_integer_key", lambda values: values)  # factorize every key
    plain = _dup_checked(5)
    loader._flag_duplicates(plain, key, "patient and x")
    pd.testing.assert_frame_equal(fast.quarantine(), plain.quarantine())
    assert len(plain.quarantine()) >= 1  # each case has a copy (hand-made)


@pytest.mark.parametrize("blank", [" " * 10_000, "\n" * 5_000, " \t\r\n" * 2_000])
def test_blank_file_is_empty_and_a_late_text_is_not(tmp_path, blank):
    # the emptiness check strips the first 4 096 bytes first, the whole file only when blank
    path = tmp_path / "t.csv"
    path.write_text(blank, encoding="utf-8", newline="")
    with pytest.raises(hipdata.DataError, match="the file is empty"):
        read_raw(path, coded=True)
    path.write_text(blank + "a,b\n1,2\n", encoding="utf-8", newline="")
    assert readers._decode(path, path.read_bytes())[0] == blank + "a,b\n1,2\n"
