"""The typed Parquet path (columns dictionary-encoded, each distinct value turned into text and
parsed once) must load exactly as the same cohort written as CSV: values, dtypes, quarantine rows
and reasons, hostile typed values included.

The CSV is written from the same frames through ``frame_cells`` (the canonical text a typed value
has: ``11`` for the float 11.0, ``1850-01-01`` for that date), so even the quarantine's echoed
``value`` must agree between the formats.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hipdata
from hipdata.io.frames import frame_cells
from hipdata.io.readers import decode_cells, read_raw
from hipdata.synth import generate

TABLES = ("patients", "sets", "activity", "outcomes", "treatments")


def _hostile(cohort) -> dict[str, pd.DataFrame]:
    tables = {name: frame.copy() for name, frame in cohort.tables.items()}
    ex = tables["exercises"]
    ex["pain_during"] = ex["pain_during"].astype("float64")  # a float column with NaN
    ex.loc[3, "reps"] = -4  # negative reps: "reps below 0 is impossible"
    ex.loc[5, "pain_during"] = 11.0  # pain 11 on the 0-10 scale
    ex.loc[6, "pain_during"] = np.nan  # missing pain is allowed
    ex.loc[7, "pain_during"] = 2.5
    ex.loc[8, "date"] = pd.Timestamp("1850-03-01")  # implausible date
    ex.loc[9, "reps"] = 250  # above 200
    ex.loc[10, "hold_s"] = -1
    ex.loc[11, "date"] = pd.Timestamp("2026-02-03 14:30:00")  # a time of day: kept as text
    ex.loc[12, "set"] = 0  # set number below 1
    ex.loc[13, "exercise"] = "  hip thrust  "  # text stripped, resolved by alias
    ex.loc[14, "exercise"] = "moon walk"  # unknown exercise
    patients = tables["patients"]
    patients["age_years"] = patients["age_years"].astype("float64")
    patients.loc[1, "age_years"] = 7.0  # below 12
    patients.loc[2, "age_years"] = 40.5  # not whole
    patients.loc[3, "start_date"] = pd.Timestamp("1850-01-01")
    outcomes = tables["outcomes"]
    outcomes.loc[0, "score"] = np.nan  # score is missing
    outcomes.loc[1, "score"] = 1e6  # outside the measure's range
    activity = tables["activity"]
    fine = ~activity["patient_id"].isin(patients.loc[1:3, "patient_id"])  # patient kept
    activity.loc[activity.index[fine][0], "cardio_min"] = -5
    return tables


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    tables = _hostile(generate(12, seed=5))
    folder = tmp_path_factory.mktemp("typed_fast")
    (folder / "csv").mkdir()
    (folder / "parquet").mkdir()
    for name, frame in tables.items():
        frame.to_parquet(folder / "parquet" / f"{name}.parquet", index=False)
        frame_cells(frame).to_csv(folder / "csv" / f"{name}.csv", index=False)
    today = "2027-01-01"
    return (
        folder,
        hipdata.load(folder / "csv", today=today),
        hipdata.load(folder / "parquet", today=today),
    )


def test_typed_parquet_is_really_typed(both):
    folder, _, _ = both
    import pyarrow.parquet as pq

    schema = pq.read_schema(folder / "parquet" / "exercises.parquet")
    assert str(schema.field("reps").type) == "int64"
    assert str(schema.field("pain_during").type) == "double"
    assert str(schema.field("date").type).startswith("timestamp")


def test_hostile_values_are_quarantined(both):
    _, from_csv, _ = both
    reasons = set(from_csv.quarantine["reason"])
    for expected in (
        "reps below 0 is impossible",
        "pain outside the 0-10 scale (never clipped)",
        "implausible date: before 1900",
        "reps above 200 is impossible",
        "hold_s below 0 is impossible",
        "set number below 1 is impossible",
        "age_years below 12 is impossible",
        "age_years must be a whole number",
        "score is missing",
        "cardio_min below 0 is impossible",
    ):
        assert expected in reasons, expected
    pain = from_csv.quarantine[from_csv.quarantine["column"] == "pain_during"]
    assert pain["value"].tolist() == ["11"]


def test_parquet_loads_exactly_like_csv(both):
    _, from_csv, from_parquet = both
    for name in TABLES:
        expected = getattr(from_csv, name).drop(columns="source_file", errors="ignore")
        got = getattr(from_parquet, name).drop(columns="source_file", errors="ignore")
        pd.testing.assert_frame_equal(got, expected)
    columns = ["table", "source_row", "column", "value", "reason"]
    got = from_parquet.quarantine[columns].reset_index(drop=True)
    # a reason may name the patients file ("patients.parquet row 3"): the only difference
    got["reason"] = got["reason"].str.replace("patients.parquet", "patients.csv", regex=False)
    pd.testing.assert_frame_equal(
        got,
        from_csv.quarantine[columns].reset_index(drop=True),
    )
    assert len(from_csv.quarantine) >= 14
    report = ["table", "rows_read", "rows_kept", "rows_quarantined"]
    pd.testing.assert_frame_equal(from_parquet.load_report[report], from_csv.load_report[report])


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_coded_cells_are_the_text_cells(both, fmt):
    folder, _, _ = both
    for path in sorted((folder / fmt).iterdir()):
        text = read_raw(path).cells
        coded = read_raw(path, coded=True).cells
        assert any(isinstance(d, pd.CategoricalDtype) for d in coded.dtypes)
        decoded = coded.apply(
            lambda c: decode_cells(c) if isinstance(c.dtype, pd.CategoricalDtype) else c
        )
        pd.testing.assert_frame_equal(decoded, text)


CSV_EDGE_CASES = {
    "quote_inside_cell": 'a,b\nx"y",2\n',
    "text_after_quote": 'a,b\n"xy"z,2\n',
    "lone_cr": "a,b\r1,2\r3,4\r",
    "mixed_line_ends": "a,b\r\n1,2\n3,4\r5,6",
    "quoted_newline": 'a,b\n"x\ny",2\n3,4\n',
    "blank_line": "a,b\n1,2\n\n3,4\n",
    "whitespace_line": "a,b\n1,2\n   \n3,4\n",
    "short_row": "a,b,c\n1,2\n3,4,5\n",
    "long_row": "a,b\n1,2,3\n3,4\n",
    "unbalanced_quote": 'a,b\n"1,2\n3,4\n',
    "spaces_and_nbsp": "a , b \n\u00a01\u00a0 , 2 \n",
    "doubled_quote": 'a,b\n"x""y",2\n',
    "trailing_delimiter": "a,b,\n1,2,\n3,4,\n",
    "semicolons": "a;b\n1,5;2\n",
    "bom": "\ufeffa,b\n1,2\n",
}


@pytest.mark.parametrize("name", sorted(CSV_EDGE_CASES))
def test_csv_arrow_path_reads_like_pandas_and_careful_paths(tmp_path, name):
    # the coded CSV reader (pyarrow.csv, falling back to pandas' C parser and the csv module)
    # must give the same cells, rows, malformed records and notes as the text reader
    path = tmp_path / f"{name}.csv"
    path.write_text(CSV_EDGE_CASES[name], encoding="utf-8", newline="")
    text, coded = read_raw(path), read_raw(path, coded=True)
    decoded = coded.cells.apply(
        lambda c: decode_cells(c) if isinstance(c.dtype, pd.CategoricalDtype) else c
    )
    pd.testing.assert_frame_equal(decoded, text.cells)
    assert list(coded.source_row) == list(text.source_row)
    assert coded.malformed == text.malformed
    assert coded.notes == text.notes
