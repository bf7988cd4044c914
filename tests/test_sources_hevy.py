"""Hevy exports: dates like '15 Sep 2025, 07:48', set_index from 0, set types, newest first."""

from __future__ import annotations

import pytest

import hipdata
from hipdata.sources import hevy
from tests.sources_helpers import DATA, TODAY, data_rows, quarantine_rows


def test_hevy_example_every_row_accounted_for():
    path = DATA / "hevy.csv"
    result = hevy.read(path, patient_id="P03")
    assert result.report.iloc[0][["read", "kept", "quarantined"]].tolist() == [15, 12, 3]
    assert data_rows(path, ",") == 15
    assert quarantine_rows(result, "hevy.csv") == [
        (14, "start_time", "not a date in this app's format (expected like '15 Sep 2025, 07:48')"),
        (15, "set_type", "unknown set type (expected normal, warmup, dropset or failure)"),
        (16, "reps", "reps must be a whole number"),
    ]
    sets = result.tables["exercises"]
    # newest first in the file, oldest first out; sessions are days
    assert sets["date"].dt.strftime("%Y-%m-%d").unique().tolist() == ["2026-03-16", "2026-03-18"]
    thrust = sets[sets["exercise"] == "Hip Thrust (Machine)"]
    assert thrust["app_set"].tolist() == ["0", "1", "2", "3"]  # Hevy counts from 0
    assert thrust["set"].tolist() == [1, 2, 3, 4]
    assert thrust["set_type"].tolist() == ["warmup", "working", "working", "drop"]
    plank = sets[sets["exercise"] == "Copenhagen Plank"]
    assert plank["hold_s"].tolist() == [20.0, 22.0, 25.0]
    assert plank["set_type"].tolist() == ["working", "working", "failure"]
    # running 5.2 km in 1800 s: 30 minutes of activity on 18 March
    activity = result.tables["activity"]
    assert activity[["cardio_min", "app_rows"]].values.tolist() == [[30.0, "9"]]
    assert sets["pain_during"].isna().all()  # rpe is never pain


def test_hevy_pounds_and_miles():
    result = hevy.read(DATA / "hevy_lbs.csv", patient_id="P04")
    sets = result.tables["exercises"]
    assert sets["load_kg"].tolist() == pytest.approx([20 * 0.45359237] * 2)
    assert result.tables["activity"]["cardio_min"].tolist() == [25.0]


def test_hevy_import_loads(tmp_path):
    hevy.read(DATA / "hevy.csv", patient_id="P03").write(tmp_path)
    ds = hipdata.load(tmp_path, today=TODAY)
    assert ds.sets.drop_duplicates("exercise")["exercise"].tolist() == [
        "bridge",
        "bridge_loaded",
        "copenhagen_short_lever",
    ]
    # the 20 kg warm-up of "Hip Thrust (Machine)" is loaded too
    thrust = ds.sets[ds.sets["exercise"] == "bridge_loaded"]
    assert thrust["load_kg"].tolist() == [20.0, 42.5, 42.5, 30.0]
    assert ds.quarantine["value"].tolist() == ["Lateral Lunge"]
