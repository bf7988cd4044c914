"""The importers' shared core: folders of files, the pain diary, warm-ups in the metrics."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

import hipdata
from hipdata import Dataset
from hipdata.errors import DataError
from hipdata.metrics import family_sessions
from hipdata.metrics.summary import dose_units
from hipdata.sources import hevy, strong
from hipdata.sources._common import QUARANTINE_COLUMNS, read_records
from tests.sources_helpers import DATA, TODAY, quarantine_rows


def test_pain_diary_merged_by_date_and_every_diary_row_accounted_for(tmp_path):
    result = strong.read(
        DATA / "strong_semicolon.csv", patient_id="P01", pain_diary=DATA / "pain_diary.csv"
    )
    diary = result.report[result.report["file"] == "pain_diary.csv"].iloc[0]
    assert diary[["read", "kept", "quarantined"]].tolist() == [7, 2, 5]
    assert quarantine_rows(result, "pain_diary.csv") == [
        (4, "date", "no session on this date in the app data (the diary row is not used)"),
        (5, "date", "duplicate of row 2 (same patient and date)"),
        (6, "date", "not a date"),
        (7, "patient_id", "patient not in the imported files"),
        (8, "pain_during", "pain outside the 0-10 scale (never clipped)"),
    ]
    sets = result.tables["exercises"]
    by_day = sets.groupby(sets["date"].dt.strftime("%Y-%m-%d"))[["pain_during", "pain_24h"]]
    assert by_day.max().to_dict("index") == {
        "2026-03-02": {"pain_during": 2.0, "pain_24h": 3.0},
        "2026-03-04": {"pain_during": 4.0, "pain_24h": pytest.approx(float("nan"), nan_ok=True)},
    }
    # the 3/10 rule can now be judged: 2 March within (2 and 3), 4 March flares (4 > 3)
    result.write(tmp_path)
    ds = hipdata.load(tmp_path, today=TODAY)
    sessions = hipdata.metrics.sessions_table(ds)
    assert sessions["flare"].tolist() == [False, True]


def test_folder_of_files_one_patient_each_with_a_patient_map(tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    shutil.copy(DATA / "hevy.csv", folder / "anna.csv")
    shutil.copy(DATA / "hevy_lbs.csv", folder / "ben.csv")
    by_name = hevy.read(folder)
    assert by_name.tables["patients"]["patient_id"].tolist() == ["anna", "ben"]
    mapping = tmp_path / "map.csv"
    mapping.write_text("file,patient_id\nanna.csv,P10\nben.csv,P11\n")
    result = hevy.read(folder, patient_map=mapping, clinic_id="C2", start_date="2026-03-01")
    assert result.tables["patients"].to_dict("list") == {
        "patient_id": ["P10", "P11"],
        "clinic_id": ["C2", "C2"],
        "start_date": [pd.Timestamp("2026-03-01")] * 2,
    }
    assert result.report[["file", "read", "kept", "quarantined"]].values.tolist() == [
        ["anna.csv", 15, 12, 3],
        ["ben.csv", 3, 3, 0],
    ]
    mapping.write_text("file,patient_id\nanna.csv,P10\n")
    with pytest.raises(DataError, match="names no patient for ben.csv"):
        hevy.read(folder, patient_map=mapping)


def test_written_folder_holds_every_file(tmp_path):
    result = hevy.read(DATA / "hevy.csv", patient_id="P03")
    names = sorted(p.name for p in result.write(tmp_path))
    assert names == [
        "activity.csv",
        "exercises.csv",
        "import_columns.csv",
        "import_notes.csv",
        "import_report.csv",
        "patients.csv",
        "quarantine.csv",
    ]
    quarantine = pd.read_csv(tmp_path / "quarantine.csv")
    assert quarantine.columns.tolist() == QUARANTINE_COLUMNS
    report = pd.read_csv(tmp_path / "import_report.csv")
    assert (report["read"] == report["kept"] + report["quarantined"]).all()


def test_read_records_keeps_row_numbers_and_long_rows(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text('a,b\n1,2\n\n"x\ny",3\n4,5,6\n7,8,\n')
    records = read_records(path)
    # a quoted line break is one spreadsheet row; the blank line keeps its number
    assert records.rows.tolist() == [2, 4, 6]
    assert records.long == [(5, ["4", "5", "6"])]
    assert records.data_rows == 4
    assert read_records(path, trim_trailing=False).rows.tolist() == [2, 4]


def _warmup_dataset(warmup_type: str) -> Dataset:
    patients = pd.DataFrame(
        {"patient_id": ["P1"], "clinic_id": ["C1"], "start_date": ["2026-01-05"]}
    )
    sets = pd.DataFrame(
        {
            "patient_id": "P1",
            "date": "2026-01-05",
            "exercise": "bridge",
            "set": [1, 2, 3],
            "set_type": [warmup_type, "working", "working"],
            "reps": [10, 10, 10],
            "pain_during": 1.0,
            "pain_24h": 1.0,
            "prescribed_sets": 3,
            "prescribed_reps": 10,
        }
    )
    return Dataset.from_frames(patients, sets)


def test_warmup_sets_are_left_out_of_criterion_and_dose():
    # 3 sets of 10 reps, pain 1/10: met when all three are working sets ...
    assert family_sessions(_warmup_dataset("working"))["criterion"].tolist() == ["met"]
    # ... not met when one is a warm-up: only 2 sets count towards 3 x >= 8 reps
    warm = _warmup_dataset("warmup")
    table = family_sessions(warm)
    assert table[["sets_on_target", "criterion"]].values.tolist() == [[2, "not_met"]]
    # dose: prescribed 3 x 10 = 30 reps; performed 20 working reps -> 20 / 30
    units = dose_units(hipdata.metrics.sets_table(warm))
    assert units["dose_adherence"].tolist() == pytest.approx([20 / 30])
    assert dose_units(hipdata.metrics.sets_table(_warmup_dataset("drop")))[
        "dose_adherence"
    ].tolist() == pytest.approx([1.0])


def test_loader_reads_set_type_and_quarantines_unknown_types(tmp_path):
    pd.DataFrame({"patient_id": ["P1"], "clinic_id": ["C1"], "start_date": ["2026-03-01"]}).to_csv(
        tmp_path / "patients.csv", index=False
    )
    pd.DataFrame(
        {
            "patient_id": "P1",
            "date": "2026-03-02",
            "exercise": "bridge",
            "set": [1, 2, 3, 4],
            "reps": 10,
            "set_type": ["Warm-up", "", "Drop set", "superset"],
        }
    ).to_csv(tmp_path / "exercises.csv", index=False)
    ds = hipdata.load(tmp_path, today=TODAY)
    assert ds.sets["set_type"].tolist() == ["warmup", "working", "drop"]
    assert ds.quarantine[["source_row", "column", "value", "reason"]].values.tolist() == [
        [5, "set_type", "superset", "set_type must be working, warmup, drop or failure"]
    ]


def test_a_second_import_leaves_no_stale_table(tmp_path):
    strong.read(DATA / "strong_semicolon.csv", patient_id="P01").write(tmp_path)
    assert len(pd.read_csv(tmp_path / "activity.csv")) == 1
    # the FitNotes locale file has no cardio: activity.csv is emptied, not left stale
    from hipdata.sources import fitnotes

    fitnotes.read(DATA / "fitnotes_locale.csv", patient_id="P07").write(tmp_path)
    assert len(pd.read_csv(tmp_path / "activity.csv")) == 0
    ds = hipdata.load(tmp_path, today=TODAY)
    assert ds.activity.empty and len(ds.sets) == 3
