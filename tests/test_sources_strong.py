"""Strong exports: both layouts, every quirk of the format, every row accounted for."""

from __future__ import annotations

import pytest

import hipdata
from hipdata.errors import DataError
from hipdata.sources import strong
from tests.sources_helpers import DATA, TODAY, data_rows, quarantine_rows

LB = 0.45359237


def test_semicolon_layout_bom_crlf_decimal_commas_and_set_orders():
    path = DATA / "strong_semicolon.csv"
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw  # the quirks are in the file
    result = strong.read(path, patient_id="P01", clinic_id="C1")
    report = result.report.iloc[0]
    # 21 data records, 1 blank line (not a row): 20 read
    assert report["read"] == data_rows(path, ";") == 20
    assert (report["kept"], report["quarantined"]) == (14, 6)
    assert quarantine_rows(result, "strong_semicolon.csv") == [
        (6, "Set Order", "a rest timer row, not a set (Strong writes rest periods as rows)"),
        (10, "Set Order", "a note row, not a set"),
        (19, "Date", "not a date in this app's format (expected like '2024-01-15 18:30:00')"),
        (20, "Weight", "not a number"),
        (21, "Set Order", "unknown set order (expected a number, W, D, F, Rest Timer or Note)"),
        (22, "Weight Unit", "weight unit is missing or unknown (expected kg or lbs)"),
    ]
    sets = result.tables["exercises"]
    thrust = sets[sets["exercise"] == "Hip Thrust (Barbell)"]
    # W -> warmup (numbered in time order with the others); "42,5" is 42.5
    assert thrust["set_type"].tolist() == ["warmup", "working", "working", "working"]
    assert thrust["set"].tolist() == [1, 2, 3, 4]
    assert thrust["load_kg"].tolist() == [20.0, 42.5, 42.5, 42.5]
    squat = sets[sets["exercise"] == "Split Squat (Dumbbell)"]
    assert squat["set_type"].tolist() == ["working", "working", "drop", "failure"]
    assert squat["load_kg"].tolist() == pytest.approx([10 * LB, 10 * LB, 5 * LB, 10 * LB])
    plank = sets[sets["exercise"] == "Side Plank (Knee)"]
    # Seconds with 0 reps is a hold, not a set of 0 reps
    assert plank["hold_s"].tolist() == [30.0, 25.0, 20.0] and plank["reps"].isna().all()
    # RPE is never pain
    assert sets["pain_during"].isna().all() and sets["pain_24h"].isna().all()
    # running (2,5 km, 1200 s) is cardio: 20 minutes of activity
    assert result.tables["activity"][["cardio_min", "app_rows"]].values.tolist() == [[20.0, "11"]]
    patients = result.tables["patients"]
    assert patients.to_dict("records") == [
        {"patient_id": "P01", "clinic_id": "C1", "start_date": sets["date"].min()}
    ]
    used = dict(zip(result.columns["column"], result.columns["used_as"], strict=True))
    assert used["RPE"] == "not read (RPE is effort, not pain)"
    assert set(used) == set(
        "Date;Workout Name;Exercise Name;Set Order;Weight;Weight Unit;Reps;RPE;Distance;"
        "Distance Unit;Seconds;Notes;Workout Notes".split(";")
    )


def test_semicolon_import_loads_with_loaded_variants(tmp_path):
    strong.read(DATA / "strong_semicolon.csv", patient_id="P01").write(tmp_path)
    ds = hipdata.load(tmp_path, today=TODAY)
    assert ds.load_report["rows_read"].tolist() == [1, 13, 1]
    # "Hip Thrust" with 42.5 kg is bridge_loaded; side-lying adduction with 2 kg is loaded too
    ids = ds.sets.drop_duplicates("exercise")["exercise"].tolist()
    assert ids == ["bridge_loaded", "side_plank_knee", "split_squat", "side_lying_adduction_loaded"]
    assert ds.quarantine["reason"].tolist() == ["unknown exercise; did you mean split_squat?"]
    assert ds.sets.loc[ds.sets["exercise"] == "bridge_loaded", "set_type"].tolist() == [
        "warmup",
        "working",
        "working",
        "working",
    ]


def test_comma_layout_needs_the_weight_unit():
    path = DATA / "strong_comma.csv"
    with pytest.raises(DataError, match="kg or lbs"):
        strong.read(path, patient_id="P02")
    result = strong.read(path, patient_id="P02", weight_unit="lbs")
    assert result.report.iloc[0][["read", "kept", "quarantined"]].tolist() == [8, 7, 1]
    assert data_rows(path, ",") == 8
    assert quarantine_rows(result, "strong_comma.csv") == [
        (9, "Reps", "Reps below 0 is impossible")
    ]
    sets = result.tables["exercises"]
    bridge = sets[sets["exercise"] == "Glute Bridge"]
    assert bridge["load_kg"].tolist() == pytest.approx([0.0, 95 * LB, 95 * LB, 95 * LB])
    assert bridge["set_type"].tolist() == ["warmup", "working", "working", "working"]
    # cycling 12.4 km in 2700 s: 45 cardio minutes; the workout Duration is not read
    assert result.tables["activity"]["cardio_min"].tolist() == [45.0]
    used = dict(zip(result.columns["column"], result.columns["used_as"], strict=True))
    assert used["Duration"] == "not read (the workout's length, not a set's)"
    assert used["Weight"] == "load_kg (lbs)"


def test_not_a_strong_file_is_one_clear_error(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(
        DataError, match="not a Strong export: no column for date, exercise, set order"
    ):
        strong.read(path)


def test_weight_kg_header_and_a_line_break_inside_notes():
    # the notes cell of row 2 holds a ';', a line break and doubled quotes: still one row
    result = strong.read(DATA / "strong_android.csv", patient_id="P09")
    assert result.report.iloc[0][["read", "kept", "quarantined"]].tolist() == [5, 4, 1]
    assert quarantine_rows(result, "strong_android.csv") == [
        (3, "Set Order", "a rest timer row, not a set (Strong writes rest periods as rows)")
    ]
    sets = result.tables["exercises"]
    assert sets["app_row"].tolist() == [2, 4, 5, 6]
    assert sets["load_kg"].fillna(0).tolist() == [20.5, 40.0, 40.0, 0.0]
    assert sets["set_type"].tolist() == ["warmup", "working", "failure", "working"]
    assert sets["hold_s"].tolist()[3] == 25.0
