"""Exercise names as apps write them: equipment brackets, side phrases, word order, loads."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

import hipdata
from hipdata.catalogue import (
    apply_loaded_variants,
    load_catalogue,
    resolve_exercises,
    suggest_exercises,
    unmatched_names,
)
from hipdata.cli import app
from hipdata.errors import DataError

CATALOGUE = load_catalogue()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Hip Thrust (Machine)", "bridge"),  # alias "hip thrust" + equipment bracket
        ("Glute Bridge (Barbell)", "bridge_loaded"),  # = the alias "barbell glute bridge"
        ("Single Leg Deadlift (Dumbbell)", "single_leg_deadlift"),
        ("Deadlift Single Leg", "single_leg_deadlift"),  # word order
        ("Single-Leg Deadlift", "single_leg_deadlift"),
        ("Split Squat (Each Leg)", "split_squat"),  # side phrase inside brackets
        ("Side Plank Each Side", "side_plank"),
        ("Side Plank (Knee)", "side_plank_knee"),  # a bracket that is not equipment stays
        ("Copenhagen Plank", "copenhagen_short_lever"),
    ],
)
def test_names_resolve(name, expected):
    assert resolve_exercises(pd.Series([name]), CATALOGUE).tolist() == [expected]


@pytest.mark.parametrize(
    "name", ["Glute Bridge (Single-Leg)", "Reverse Lunge", "Bench Press (Barbell)", "Deadlift"]
)
def test_names_that_would_be_guesses_stay_unmatched(name):
    # a single-leg bridge is not the bridge; no other form of these names is an alias
    assert resolve_exercises(pd.Series([name]), CATALOGUE).isna().all()


def test_suggestions_by_shared_words_and_spelling():
    # "lunge" is an alias of split_squat: one shared word of two -> 0.5
    assert suggest_exercises("Reverse Lunge", CATALOGUE) == ["split_squat"]
    assert suggest_exercises("Glute Bridge (Single-Leg)", CATALOGUE)[0] == "bridge"
    assert suggest_exercises("Hip Abduction (Machine)", CATALOGUE)[0] == "standing_hip_abduction"
    assert suggest_exercises("Bench Press (Barbell)", CATALOGUE) == []


def test_loaded_variant_chosen_from_the_load():
    names = pd.Series(["Hip Thrust", "Hip Thrust", "side lying adduction", "bridge", "Squat"])
    ids = pd.Series(["bridge", "bridge", "side_lying_adduction", "bridge", "squat_comfortable"])
    load = pd.Series([42.5, 0.0, 2.0, 20.0, 60.0])
    assert apply_loaded_variants(names, ids, load, CATALOGUE).tolist() == [
        "bridge_loaded",  # 42.5 kg: the loaded variant
        "bridge",  # body weight
        "side_lying_adduction_loaded",  # an ankle weight
        "bridge",  # the id written as such: the data manager chose the level
        "squat_deep",  # the squat ladder's level 2 is the loaded squat
    ]


def _folder(tmp_path, names):
    pd.DataFrame({"patient_id": ["P1"], "clinic_id": ["C1"], "start_date": ["2026-03-01"]}).to_csv(
        tmp_path / "patients.csv", index=False
    )
    pd.DataFrame(
        {
            "patient_id": "P1",
            "date": "2026-03-02",
            "exercise": names,
            "set": range(1, len(names) + 1),
            "reps": 10,
        }
    ).to_csv(tmp_path / "exercises.csv", index=False)
    return tmp_path


def test_unmatched_template_round_trip_with_alias_rows(tmp_path):
    folder = _folder(
        tmp_path, ["Reverse Lunge", "Reverse Lunge", "Clamshell", "Hip Thrust (Machine)"]
    )
    template = unmatched_names(folder)
    assert template[["name", "count", "suggestions"]].values.tolist() == [
        ["Reverse Lunge", 2, "split_squat"],
        ["Clamshell", 1, ""],
    ]
    # the user maps one name to a known id (alias row) and defines the other as new
    template.loc[0, "id"] = "split_squat"
    template.loc[1, ["id", "family", "level", "dose"]] = ["clamshell", "abductors", "1", "reps"]
    mapping = tmp_path / "mapping.csv"
    template.to_csv(mapping, index=False)
    ds = hipdata.load(folder, catalogue=mapping, today="2026-11-01")
    assert ds.quarantine.empty
    assert ds.sets["exercise"].tolist() == ["split_squat", "split_squat", "clamshell", "bridge"]


def test_alias_row_for_an_unknown_id_is_an_error(tmp_path):
    mapping = tmp_path / "mapping.csv"
    mapping.write_text("name,count,id,family,level,dose,suggestions\nFoo,1,no_such_id,,,,\n")
    with pytest.raises(DataError, match="catalogue row 2: 'no_such_id' is not a known"):
        load_catalogue(mapping)


def test_cli_catalogue_unmatched(tmp_path):
    (tmp_path / "data").mkdir()
    folder = _folder(tmp_path / "data", ["Reverse Lunge"])
    out = tmp_path / "mapping.csv"
    result = CliRunner().invoke(app, ["catalogue", "unmatched", str(folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert pd.read_csv(out, keep_default_na=False)["name"].tolist() == ["Reverse Lunge"]
    assert "1 unmatched name(s)" in result.output
