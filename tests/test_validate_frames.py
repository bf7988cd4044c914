"""hipdata.validate / Dataset.from_frames: frames get the loader's rules and quarantine (issue 8.4)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

import hipdata
from hipdata import DataError, Dataset
from tests.io_helpers import EXERCISES, PATIENTS, SETS, TODAY, with_row, write_folder
from tests.test_io_loader import EXERCISE_CASES, PATIENT_CASES

QUARANTINE = ["table", "column", "value", "reason", "other_problems"]


def from_files(tmp_path, **tables):
    return hipdata.load(write_folder(tmp_path, **tables), today=TODAY)


def from_frames(patients=PATIENTS, exercises=SETS, **extra):
    return hipdata.validate(patients=patients, exercises=exercises, today=TODAY, **extra)


def assert_same_outcome(by_file, by_frame, table):
    """Same quarantine (rows, columns, values, reasons) and same clean tables."""
    file_q = by_file.quarantine.reset_index(drop=True)
    frame_q = by_frame.quarantine.reset_index(drop=True)
    pd.testing.assert_frame_equal(file_q[QUARANTINE], frame_q[QUARANTINE])
    # the same spreadsheet row: a file's row n is the frame's row n - 2 (header on row 1)
    assert file_q["source_row"].tolist() == frame_q["source_row"].tolist()
    assert set(frame_q["source_file"]) <= {f"{table} (DataFrame)"}
    for name in ("patients", "sets"):
        left = getattr(by_file, name).drop(columns=["source_file"], errors="ignore")
        right = getattr(by_frame, name).drop(columns=["source_file"], errors="ignore")
        pd.testing.assert_frame_equal(left, right)
    counts = ["table", "rows_read", "rows_kept", "rows_quarantined"]
    pd.testing.assert_frame_equal(by_file.load_report[counts], by_frame.load_report[counts])


@pytest.mark.parametrize(("column", "value", "flagged", "reason"), EXERCISE_CASES)
def test_each_exercise_rule_gives_the_same_quarantine_as_a_csv(
    tmp_path, column, value, flagged, reason
):
    exercises = with_row(
        SETS, **{column: value, "set": "9"} if column != "set" else {column: value}
    )
    by_frame = from_frames(exercises=exercises)
    assert_same_outcome(from_files(tmp_path, exercises=exercises), by_frame, "exercises")
    row = by_frame.quarantine.iloc[0]
    assert (row["source_file"], row["source_row"], row["column"]) == (
        "exercises (DataFrame)",
        8,  # frame position 6 (the 7th row) + 2
        flagged,
    )
    assert reason in row["reason"]


@pytest.mark.parametrize(("column", "value", "flagged", "reason"), PATIENT_CASES)
def test_each_patient_rule_gives_the_same_quarantine_as_a_csv(
    tmp_path, column, value, flagged, reason
):
    values = {"patient_id": "P3", column: value} if column != "patient_id" else {column: value}
    patients = with_row(PATIENTS, **values)
    by_frame = from_frames(patients=patients)
    assert_same_outcome(from_files(tmp_path, patients=patients), by_frame, "patients")
    row = by_frame.quarantine.iloc[0]
    assert (row["source_file"], row["source_row"], row["column"]) == (
        "patients (DataFrame)",
        4,
        flagged,
    )
    assert reason in row["reason"]


def test_optional_tables_and_exercise_layout_match_files(tmp_path):
    outcomes = pd.DataFrame(
        {
            "patient_id": ["P1", "P1", "P1", "P9"],
            "date": ["2026-03-01", "2026-05-20", "2026-05-20", "2026-03-01"],
            "measure": ["NPRS", "HOOS Pain", "walking", "nprs"],
            "score": ["6", "120", "3", "5"],
        }
    )
    by_file = hipdata.load(
        write_folder(tmp_path, exercises=EXERCISES, extra={"outcomes": outcomes}), today=TODAY
    )
    by_frame = from_frames(exercises=EXERCISES, outcomes=outcomes)
    pd.testing.assert_frame_equal(
        by_file.quarantine[QUARANTINE + ["source_row"]],
        by_frame.quarantine[QUARANTINE + ["source_row"]],
    )
    assert by_frame.quarantine["reason"].str.contains("score outside").any()
    assert by_frame.quarantine["reason"].str.contains("unknown patient id").any()
    pd.testing.assert_frame_equal(
        by_file.outcomes.drop(columns="source_file"),
        by_frame.outcomes.drop(columns="source_file"),
    )


def test_typed_columns_are_read_exactly_without_guessing():
    patients = pd.DataFrame(
        {
            "patient_id": ["P1"],
            "clinic_id": ["C1"],
            # 2026-03-04 written dd/mm would be ambiguous; a datetime64 value never is
            "start_date": pd.to_datetime(["2026-03-04"]),
            "age_years": pd.array([54], dtype="Int64"),
            "athlete": [True],
        }
    )
    exercises = pd.DataFrame(
        {
            "patient_id": ["P1", "P1"],
            "date": pd.to_datetime(["2026-03-04 18:30", "2026-03-05 00:00"]),
            "exercise": ["bridge_loaded", "bridge_loaded"],
            "set": np.array([1, 1]),
            "reps": [10.0, 8.0],
            "load_kg": [0.1 + 0.2, 12.5],  # not rounded on the way: 0.30000000000000004
            "pain_during": [np.nan, 2.0],
        }
    )
    ds = from_frames(patients=patients, exercises=exercises)
    assert len(ds.quarantine) == 0
    assert ds.patients["start_date"].iloc[0] == pd.Timestamp("2026-03-04")
    assert ds.patients["age_years"].iloc[0] == 54 and bool(ds.patients["athlete"].iloc[0])
    assert ds.sets["date"].tolist() == [pd.Timestamp("2026-03-04"), pd.Timestamp("2026-03-05")]
    assert ds.sets["load_kg"].tolist() == [0.1 + 0.2, 12.5]
    assert np.isnan(ds.sets["pain_during"].iloc[0]) and ds.sets["pain_during"].iloc[1] == 2.0


def test_typed_bad_values_are_quarantined_not_raised():
    exercises = SETS.assign(
        reps=[10.0, 10.0, 8.5, np.nan, np.nan, 12.0],  # 8.5 reps: not a whole number
        pain_during=[2.0, 2.0, 2.0, 1.0, 1.0, 11.0],  # 11: outside the scale, never clipped
    )
    ds = from_frames(exercises=exercises)
    q = ds.quarantine.set_index("source_row")
    assert q.loc[4, "column"] == "reps" and "whole number" in q.loc[4, "reason"]
    assert q.loc[4, "value"] == "8.5"
    assert q.loc[7, "column"] == "pain_during" and "outside the 0-10 scale" in q.loc[7, "reason"]
    report = ds.load_report.set_index("table").loc["exercises"]
    assert (report["rows_read"], report["rows_kept"], report["rows_quarantined"]) == (6, 4, 2)


def test_source_row_is_the_position_whatever_the_index():
    exercises = with_row(SETS, patient_id="P9", set="9")
    exercises.index = [f"r{i}" for i in range(len(exercises))][::-1]
    ds = from_frames(exercises=exercises)
    row = ds.quarantine.iloc[0]
    assert row["source_row"] == 8
    assert exercises.iloc[row["source_row"] - 2]["patient_id"] == "P9"


def test_an_empty_frame_row_is_quarantined_not_dropped():
    exercises = pd.concat([SETS, pd.DataFrame([{c: None for c in SETS.columns}])])
    ds = from_frames(exercises=exercises)
    assert ds.quarantine["source_row"].tolist() == [8]
    assert ds.quarantine.iloc[0]["reason"] == "patient id is empty"


def test_from_frames_validates_by_default_and_trusts_on_request():
    exercises = with_row(SETS, pain_during="12", set="9")
    ds = Dataset.from_frames(PATIENTS, exercises, today=TODAY)
    assert len(ds.quarantine) == 1 and len(ds.sets) == 6
    assert ds.quarantine.iloc[0]["source_file"] == "exercises (DataFrame)"
    trusted = Dataset.from_frames(
        PATIENTS.assign(start_date=pd.to_datetime(PATIENTS["start_date"])),
        SETS.astype({"set": int}).replace("", np.nan),
        validate=False,
    )
    assert len(trusted.quarantine) == 0 and len(trusted.sets) == 6
    with pytest.raises(TypeError, match="only with validate=True"):
        Dataset.from_frames(PATIENTS, SETS, validate=False, dayfirst=True)


def test_python_date_objects_and_mixed_columns_use_the_readers_rule():
    exercises = SETS.astype(object)
    exercises["date"] = [dt.date(2026, 3, 2)] * 5 + [dt.datetime(2026, 3, 10, 9, 30)]
    exercises["reps"] = [10, 10.0, "8", None, np.nan, 12]
    by_frame = from_frames(exercises=exercises)
    assert len(by_frame.quarantine) == 0
    by_text = from_frames()
    pd.testing.assert_frame_equal(by_frame.sets, by_text.sets)


def test_unusable_frames_stop_with_a_clear_error():
    with pytest.raises(DataError, match="by name, not a single DataFrame"):
        hipdata.validate(PATIENTS)
    with pytest.raises(DataError, match="no patients table"):
        hipdata.validate(exercises=SETS)
    with pytest.raises(DataError, match="'visits' is not a table"):
        hipdata.validate({"patients": PATIENTS, "exercises": SETS, "visits": SETS})
    with pytest.raises(DataError, match="name the same field"):
        from_frames(patients=PATIENTS.assign(**{"Patient ID": PATIENTS["patient_id"]}))
    with pytest.raises(DataError, match="lacks the required column"):
        from_frames(patients=PATIENTS.drop(columns="clinic_id"))


def test_same_frames_same_hash():
    first, second = from_frames(), from_frames()
    assert first.input_hash == second.input_hash and len(first.input_hash) == 64
    assert from_frames(exercises=SETS.iloc[:-1]).input_hash != first.input_hash


def test_frames_get_the_file_readers_limits():
    """A frame is held to the same cell-length and width limits as a file (issue 8 item 3)."""
    from hipdata.io.readers import MAX_CELL_CHARS, MAX_COLUMNS

    patients = pd.DataFrame(
        {
            "patient_id": ["P1", "P2"],
            "clinic_id": ["C1", "C" * (MAX_CELL_CHARS + 1)],
            "start_date": ["2026-01-05", "2026-01-05"],
        }
    )
    ds = hipdata.validate({"patients": patients}, today="2026-11-28")
    assert ds.patients["patient_id"].tolist() == ["P1"]
    row = ds.quarantine.iloc[0]
    assert (row["source_row"], row["column"]) == (3, "clinic_id")
    assert str(MAX_CELL_CHARS) in row["reason"].replace(",", "")
    assert len(row["value"]) <= 201  # echoed values are cut

    wide = patients.iloc[:1].copy()
    for number in range(MAX_COLUMNS):
        wide[f"extra_{number}"] = ""
    with pytest.raises(hipdata.DataError, match="columns"):
        hipdata.validate({"patients": wide}, today="2026-11-28")
