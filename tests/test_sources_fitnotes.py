"""FitNotes exports: weight columns, h:mm:ss times, set numbers, unquoted commas."""

from __future__ import annotations

import pytest

from hipdata.sources import fitnotes
from hipdata.sources.fitnotes import _repair
from tests.sources_helpers import DATA, quarantine_rows


def test_fitnotes_kgs_column_repairs_and_quarantines():
    result = fitnotes.read(DATA / "fitnotes.csv", patient_id="P05")
    assert result.report.iloc[0][["read", "kept", "quarantined"]].tolist() == [12, 9, 3]
    assert quarantine_rows(result, "fitnotes.csv") == [
        (
            8,
            "Exercise",
            "unquoted comma: the row has more cells than the header and 2 different ways of "
            "re-joining them give a valid row (quote the name, or fix the row)",
        ),
        (
            11,
            "Exercise",
            "cardio row without a duration (cardio minutes cannot be worked out from a distance)",
        ),
        (13, "Time", "time must be h:mm:ss or m:ss (like 0:01:30)"),
    ]
    assert result.notes.values.tolist() == [
        [
            "fitnotes.csv",
            4,
            "1 unquoted comma(s) re-joined: 'Overhead Press (Each Side, Dumbbells)'",
        ]
    ]
    sets = result.tables["exercises"]
    press = sets[sets["app_row"] == 4].iloc[0]
    # repaired, nothing shifted: the weight is 8.0 and the reps 10
    assert (press["exercise"], press["load_kg"], press["reps"]) == (
        "Overhead Press (Each Side, Dumbbells)",
        8.0,
        10.0,
    )
    bridge = sets[sets["exercise"] == "Glute Bridge"]
    # no set number in FitNotes: numbered in file order within patient, date and exercise
    assert bridge["set"].tolist() == [1, 2, 3] and bridge["app_row"].tolist() == [2, 3, 6]
    # 0:00:30 is 30 s; 1:30 (m:ss) is 90 s
    assert sets.loc[sets["exercise"] == "Side Plank", "hold_s"].tolist() == [30.0, 90.0]
    # the Cardio category: running 0:28:00 is 28 minutes
    assert result.tables["activity"]["cardio_min"].tolist() == [28.0]


def test_fitnotes_weight_unit_column_and_comment_commas():
    result = fitnotes.read(DATA / "fitnotes_units.csv", patient_id="P06")
    assert result.report.iloc[0][["read", "kept", "quarantined"]].tolist() == [5, 5, 0]
    sets = result.tables["exercises"]
    assert sets["load_kg"].tolist() == pytest.approx([0.0, 0.0, 45 * 0.45359237, 45 * 0.45359237])
    assert sets["hold_s"].tolist()[:2] == [25.0, 25.0]
    assert result.notes["row"].tolist() == [3]
    assert result.tables["activity"]["cardio_min"].tolist() == [30.0]


def test_repair_is_unique_or_refused():
    header = [
        "Date",
        "Exercise",
        "Category",
        "Weight (kgs)",
        "Reps",
        "Distance",
        "Distance Unit",
        "Time",
    ]
    one = "2026-03-02,Overhead Press (Each Side, Dumbbells),Shoulders,8.0,10,,,".split(",")
    assert _repair(header, one) == [
        [
            "2026-03-02",
            "Overhead Press (Each Side, Dumbbells)",
            "Shoulders",
            "8.0",
            "10",
            "",
            "",
            "",
        ]
    ]
    two = "2026-03-05,Hip Thrust,Legs, Glutes,40.0,10,,,".split(",")
    assert len(_repair(header, two)) == 2  # name or category: cannot tell
    shifted = "2026-03-05,Hip Thrust,Legs,40.0,10,x,,,".split(",")
    assert _repair(header, shifted) == []


def test_locale_dates_settled_by_the_file():
    # 23/12/2025 can only be day first, so 05/01/2026 in the same export is 5 January
    result = fitnotes.read(DATA / "fitnotes_locale.csv", patient_id="P07")
    sets = result.tables["exercises"]
    assert sets["date"].dt.strftime("%Y-%m-%d").tolist() == [
        "2025-12-23",
        "2026-01-05",
        "2026-01-05",
    ]
    # "1:30" is m:ss: a 90 s plank
    assert sets["hold_s"].tolist()[2] == 90.0


def test_ambiguous_locale_dates_are_never_guessed():
    path = DATA / "fitnotes_ambiguous.csv"
    result = fitnotes.read(path, patient_id="P08")
    assert result.report.iloc[0][["read", "kept", "quarantined"]].tolist() == [2, 0, 2]
    assert result.quarantine["reason"].str.startswith("ambiguous date").all()
    assert result.tables["patients"]["start_date"].isna().all()  # no session: no start date
    dated = fitnotes.read(path, patient_id="P08", dayfirst=False)
    assert dated.tables["exercises"]["date"].dt.strftime("%Y-%m-%d").tolist() == [
        "2026-05-01",
        "2026-06-01",
    ]
