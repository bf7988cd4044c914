"""Loader: canonical tables, every bad-input rule of CONTRACT §2, reconciliation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hipdata
from hipdata import DataError
from tests.io_helpers import EXERCISES, PATIENTS, SETS, TODAY, with_row, write_folder


def load(folder, **options):
    return hipdata.load(folder, today=TODAY, **options)


def assert_reconciles(ds):
    report = ds.load_report
    assert (report["rows_read"] == report["rows_kept"] + report["rows_quarantined"]).all()
    per_file = ds.quarantine.groupby("source_file").size()
    for row in report.itertuples():
        assert per_file.get(row.source_file, 0) == row.rows_quarantined


def test_set_level_canonical_values(tmp_path):
    ds = load(write_folder(tmp_path))
    assert len(ds.quarantine) == 0
    sets = ds.sets
    assert len(sets) == 6
    bridge = sets[sets["exercise"] == "bridge_loaded"]
    assert bridge["reps"].tolist() == [10, 10, 8]
    assert bridge["load_kg"].tolist() == [20, 20, 20]
    assert set(bridge["family"]) == {"extensors"} and set(bridge["level"]) == {2}
    plank = sets[sets["exercise"] == "side_plank"]
    assert plank["hold_s"].tolist() == [25, 30]
    assert plank["load_kg"].tolist() == [0, 0]  # empty load is 0 (body weight)
    assert plank["reps"].isna().all()
    # P2's empty planned_sessions_per_week takes the default of 2
    assert ds.patients.set_index("patient_id").loc["P2", "planned_sessions_per_week"] == 2
    assert ds.patients["start_date"].dtype.kind == "M"
    assert_reconciles(ds)


def test_both_layouts_give_identical_sets(tmp_path):
    by_set = load(write_folder(tmp_path / "set", exercises=SETS)).sets
    by_exercise = load(write_folder(tmp_path / "ex", exercises=EXERCISES)).sets
    columns = [c for c in by_set.columns if c not in ("source_file", "source_row")]
    pd.testing.assert_frame_equal(
        by_set[columns].reset_index(drop=True), by_exercise[columns].reset_index(drop=True)
    )


# (table, column changed, bad value, quarantined column, reason fragment)
EXERCISE_CASES = [
    ("date", "03/04/2026", "date", "ambiguous date"),
    ("date", "31/02/2026", "date", "impossible date"),
    ("date", "2026-02-30", "date", "impossible date"),
    ("date", "next tuesday", "date", "not a date"),
    ("date", "2026-12-25", "date", "in the future"),
    ("date", "2026-02-01", "date", "29 days before the patient's start_date"),
    ("date", "", "date", "date is missing"),
    ("patient_id", "P9", "patient_id", "unknown patient id"),
    ("patient_id", "", "patient_id", "patient id is empty"),
    ("exercise", "copenhagen plnk", "exercise", "did you mean copenhagen_short_lever"),
    ("exercise", "", "exercise", "exercise name is empty"),
    ("pain_during", "11", "pain_during", "outside the 0-10 scale"),
    ("pain_24h", "-1", "pain_24h", "outside the 0-10 scale"),
    ("pain_during", "mild", "pain_during", "not a number"),
    ("reps", "ten", "reps", "not a number"),
    ("reps", "-3", "reps", "reps below 0"),
    ("reps", "8.5", "reps", "whole number"),
    ("reps", "250", "reps", "reps above 200"),
    ("hold_s", "700", "hold_s", "hold_s above 600"),
    ("load_kg", "-5", "load_kg", "load_kg below 0"),
    ("load_kg", "600", "load_kg", "load_kg above 500"),
    ("load_kg", "1.234,5", "load_kg", "ambiguous number"),
    ("set", "", "set", "set number is missing"),
    ("set", "0", "set", "set number below 1"),
]


@pytest.mark.parametrize(("column", "value", "flagged", "reason"), EXERCISE_CASES)
def test_bad_exercise_row_is_quarantined_with_reason(tmp_path, column, value, flagged, reason):
    # the bad row is appended after the 6 good ones: header row 1, good rows 2-7, bad row 8
    exercises = with_row(
        SETS, **{column: value, "set": "9"} if column != "set" else {column: value}
    )
    ds = load(write_folder(tmp_path, exercises=exercises))
    q = ds.quarantine
    assert len(q) == 1, q
    row = q.iloc[0]
    assert (row["source_file"], row["source_row"], row["column"]) == ("exercises.csv", 8, flagged)
    assert row["value"] == value
    assert reason in row["reason"]
    assert len(ds.sets) == 6
    report = ds.load_report.set_index("table").loc["exercises"]
    assert (report["rows_read"], report["rows_kept"], report["rows_quarantined"]) == (7, 6, 1)


def test_duplicate_set_quarantines_the_later_copy_naming_the_first(tmp_path):
    exercises = pd.concat([SETS, SETS.iloc[[1]]], ignore_index=True)  # row 3 copied to row 8
    ds = load(write_folder(tmp_path, exercises=exercises))
    row = ds.quarantine.iloc[0]
    assert len(ds.quarantine) == 1
    assert row["source_row"] == 8 and "duplicate of row 3" in row["reason"]
    assert len(ds.sets) == 6  # not summed


def test_duplicate_exercise_row_in_exercise_layout(tmp_path):
    exercises = pd.concat([EXERCISES, EXERCISES.iloc[[0]]], ignore_index=True)
    ds = load(write_folder(tmp_path, exercises=exercises))
    assert ds.quarantine["source_row"].tolist() == [5]
    assert "duplicate of row 2" in ds.quarantine.iloc[0]["reason"]


PATIENT_CASES = [
    ("discharge_date", "2026-03-01", "discharge_date", "discharge_date is before start_date"),
    ("patient_id", "P1", "patient_id", "duplicate of row 2"),
    ("age_years", "5", "age_years", "age_years below 12"),
    ("age_years", "forty", "age_years", "not a number"),
    ("sex", "Q", "sex", "sex must be F, M, X or unknown"),
    ("start_date", "", "start_date", "start_date is missing"),
    ("clinic_id", "", "clinic_id", "clinic id is missing"),
    ("planned_sessions_per_week", "0", "planned_sessions_per_week", "must be above 0"),
    ("discharge_reason", "bored", "discharge_reason", "must be one of"),
]


@pytest.mark.parametrize(("column", "value", "flagged", "reason"), PATIENT_CASES)
def test_bad_patient_row_is_quarantined(tmp_path, column, value, flagged, reason):
    values = {"patient_id": "P3", column: value} if column != "patient_id" else {column: value}
    ds = load(write_folder(tmp_path, patients=with_row(PATIENTS, **values)))
    q = ds.quarantine
    assert len(q) == 1, q
    row = q.iloc[0]
    assert (row["source_file"], row["source_row"], row["column"]) == ("patients.csv", 4, flagged)
    assert reason in row["reason"]
    assert_reconciles(ds)


def test_rows_of_a_quarantined_patient_say_why(tmp_path):
    patients = with_row(PATIENTS, patient_id="P3", age_years="200")
    exercises = with_row(SETS, patient_id="P3", date="2026-03-03")
    ds = load(write_folder(tmp_path, patients=patients, exercises=exercises))
    row = ds.quarantine.set_index("source_file").loc["exercises.csv"]
    assert "patient is quarantined" in row["reason"]
    assert "patients.csv row 4" in row["reason"] and "age_years above 110" in row["reason"]


def test_all_problems_of_a_row_are_kept(tmp_path):
    exercises = with_row(SETS, set="9", exercise="unknownthing", pain_during="12")
    ds = load(write_folder(tmp_path, exercises=exercises))
    row = ds.quarantine.iloc[0]
    assert row["column"] == "exercise"  # the first rule that failed
    assert "pain_during" in row["other_problems"]


def test_row_with_too_many_cells_is_quarantined(tmp_path):
    folder = write_folder(tmp_path)
    with open(folder / "exercises.csv", "a", encoding="utf-8") as stream:
        stream.write("P1,2026-03-02,bridge,7,10,,,1,1,surplus\n")
    ds = load(folder)
    row = ds.quarantine.iloc[0]
    assert row["source_row"] == 8 and "more cells than the header" in row["reason"]
    assert_reconciles(ds)


def test_blank_lines_keep_spreadsheet_row_numbers(tmp_path):
    folder = write_folder(tmp_path)
    text = (folder / "exercises.csv").read_text().splitlines()
    text.insert(3, "")  # a blank line becomes spreadsheet row 4
    text.append("P9,2026-03-02,bridge,1,10,,,1,1")
    (folder / "exercises.csv").write_text("\n".join(text) + "\n")
    ds = load(folder)
    assert ds.quarantine["source_row"].tolist() == [9]
    assert ds.load_report.set_index("table").loc["exercises", "rows_read"] == 7


def test_dayfirst_decides_ambiguous_dates(tmp_path):
    exercises = SETS.assign(date=["02/03/2026"] * 5 + ["10/03/2026"])
    folder = write_folder(tmp_path, exercises=exercises)
    assert len(load(folder).quarantine) == 6
    ds = load(folder, dayfirst=True)
    assert len(ds.quarantine) == 0
    assert ds.sets["date"].iloc[0] == pd.Timestamp("2026-03-02")
    # read month-first, 02/03 is 3 February (27 days before P1's start: quarantined) and
    # 10/03 is 3 October 2026 (a valid date for P2)
    wrong = load(folder, dayfirst=False)
    assert len(wrong.quarantine) == 5
    assert wrong.sets["date"].tolist() == [pd.Timestamp("2026-10-03")]


def test_optional_tables_are_validated(tmp_path):
    outcomes = pd.DataFrame(
        {
            "patient_id": ["P1", "P1", "P1", "P1", "P9"],
            "date": ["2026-03-01", "2026-05-20", "2026-05-20", "2026-12-30", "2026-03-01"],
            "measure": ["NPRS", "HOOS Pain", "walking", "nprs", "nprs"],
            "score": ["6", "120", "3", "2", "5"],
        }
    )
    activity = pd.DataFrame(
        {
            "patient_id": ["P1", "P1", "P1"],
            "date": ["2026-03-02", "2026-03-09", "2026-03-09"],
            "cardio_min": ["90", "-10", "200"],
            "strength_sessions": ["2", "1", "3"],
        }
    )
    treatments = pd.DataFrame(
        {
            "patient_id": ["P1", "P1"],
            "date": ["2026-03-02", "2026-03-02"],
            "treatment": ["Soft Tissue", "soft_tissue"],
        }
    )
    folder = write_folder(
        tmp_path, extra={"outcomes": outcomes, "activity": activity, "treatments": treatments}
    )
    ds = load(folder)
    q = ds.quarantine.set_index(["source_file", "source_row"])["reason"]
    assert "outside the measure's range 0 to 100" in q[("outcomes.csv", 3)]
    assert "unknown measure" in q[("outcomes.csv", 4)]
    assert "in the future" in q[("outcomes.csv", 5)]
    assert "unknown patient id" in q[("outcomes.csv", 6)]
    assert "cardio_min below 0" in q[("activity.csv", 3)]
    assert "duplicate of row 2" in q[("treatments.csv", 3)]  # 'Soft Tissue' = soft_tissue
    assert ds.outcomes["measure"].tolist() == ["nprs"]
    assert ds.activity["cardio_min"].tolist() == [90, 200]
    assert ds.treatments["treatment"].tolist() == ["soft_tissue"]
    assert_reconciles(ds)


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        # exercises became optional (issue 9: outcome-only data); patients is the required table
        (lambda f: (f / "patients.csv").unlink(), "no patients file"),
        (lambda f: (f / "patients.csv").write_text("patient_id,clinic\nP1,C1\n"), "start_date"),
        (lambda f: (f / "exercises.csv").write_bytes(b"\x00\x01\x02binary"), "binary"),
        (lambda f: (f / "exercises.csv").write_text(""), "empty"),
        (lambda f: (f / "exercises.csv").write_bytes(b"PK\x03\x04rest"), "zip/Excel"),
        (
            lambda f: (f / "exercises.csv").write_text("patient_id,date,exercise,reps\nP1,x,y,1\n"),
            "exactly one of the columns 'set'",
        ),
        (lambda f: (f / "patients.xls").write_bytes(b"old"), "more than one file"),
        (
            lambda f: (f / "patients.csv").write_text(
                "patient_id,clinic_id,start_date,Clinic ID\nP1,C1,2026-03-02,C2\n"
            ),
            "name the same field",
        ),
    ],
)
def test_unusable_files_raise_one_clear_error(tmp_path, mutate, fragment):
    folder = write_folder(tmp_path)
    mutate(folder)
    with pytest.raises(DataError) as error:
        load(folder)
    assert fragment in str(error.value)
    assert "Fix:" in str(error.value) or "more than one" in str(error.value)


def test_unknown_pain_scale_is_an_error(tmp_path):
    with pytest.raises(DataError, match="pain_scale"):
        load(write_folder(tmp_path), pain_scale="vas10")


def test_vas100_is_divided_by_ten_and_checked_on_its_scale(tmp_path):
    exercises = SETS.assign(pain_during=["20", "20", "20", "10", "10", "45"])
    exercises = with_row(exercises, set="9", pain_24h="101")
    ds = load(write_folder(tmp_path, exercises=exercises), pain_scale="vas100")
    assert ds.sets["pain_during"].tolist() == [2, 2, 2, 1, 1, 4.5]
    assert ds.sets["pain_24h"].iloc[0] == pytest.approx(0.3)  # "3" mm on the 100 mm scale
    assert "outside the 0-100 scale" in ds.quarantine.iloc[0]["reason"]


def test_pain_written_as_fraction(tmp_path):
    exercises = SETS.assign(pain_during=["2/10", "2", "2", "1", "1", "4"])
    ds = load(write_folder(tmp_path, exercises=exercises))
    assert ds.sets["pain_during"].iloc[0] == 2
    assert np.isclose(ds.sets["pain_during"], [2, 2, 2, 1, 1, 4]).all()


def test_input_hash_changes_with_content(tmp_path):
    first = load(write_folder(tmp_path / "a")).input_hash
    same = load(write_folder(tmp_path / "b")).input_hash
    other = load(write_folder(tmp_path / "c", exercises=SETS.iloc[:5])).input_hash
    assert first == same != other and len(first) == 64
