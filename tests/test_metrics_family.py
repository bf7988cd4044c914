"""family_sessions (criterion, level, top load, volume change) and weekly_load (CONTRACT §4)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hipdata import Dataset
from hipdata.metrics import (
    FAMILY_SESSION_COLUMNS,
    WEEKLY_LOAD_COLUMNS,
    family_sessions,
    weekly_load,
)

NaN = np.nan
START = "2026-01-05"
COLUMNS = ["date", "exercise", "set", "reps", "hold_s", "load_kg", "pain_during", "pain_24h"]


def make_ds(rows: list[tuple], patient_ids=("P1",)) -> Dataset:
    patients = pd.DataFrame(
        {
            "patient_id": list(patient_ids),
            "clinic_id": "C1",
            "clinician_id": "K1",
            "start_date": START,
        }
    )
    sets = pd.DataFrame(rows, columns=["patient_id", *COLUMNS])
    return Dataset.from_frames(patients, sets)


def criterion_of(rows: list[tuple], family: str, **thresholds) -> str:
    table = family_sessions(make_ds(rows), **thresholds)
    (value,) = table.loc[table["family"] == family, "criterion"]
    return value


def bridge_sets(reps, pain_during=1.0, pain_24h=1.0, exercise="bridge", load=0.0, date=START):
    """One row per set of a reps exercise."""
    if np.ndim(pain_during) == 0:
        pain_during = [pain_during] * len(reps)
    return [
        ("P1", date, exercise, i + 1, r, NaN, load, p, pain_24h)
        for i, (r, p) in enumerate(zip(reps, pain_during, strict=True))
    ]


def hold_sets(holds, pain_during=1.0, pain_24h=1.0, exercise="side_plank", reps=NaN, date=START):
    return [
        ("P1", date, exercise, i + 1, reps, h, 0.0, pain_during, pain_24h)
        for i, h in enumerate(holds)
    ]


# --- criterion: met / not_met / unknown ----------------------------------------------------------


def test_reps_dose_met_with_pain_exactly_three():
    # 3 sets with reps >= 8 (10, 9, 8: 8 is inclusive); worst pain_during 3.0 <= 3 (inclusive);
    # pain_24h 3 <= 3 -> met
    assert criterion_of(bridge_sets([10, 9, 8], [1.0, 2.0, 3.0], 3.0), "extensors") == "met"


def test_two_sets_only_is_not_met():
    # 2 sets on target < 3 -> not_met, even with pain fine
    assert criterion_of(bridge_sets([10, 10]), "extensors") == "not_met"


def test_a_set_under_eight_reps_does_not_count():
    # reps 10, 10, 7: only 2 sets >= 8 -> not_met
    assert criterion_of(bridge_sets([10, 10, 7]), "extensors") == "not_met"


def test_no_upper_bound_on_reps():
    # 15 reps is above the 8-10 range but the contract sets no upper bound -> met
    assert criterion_of(bridge_sets([15, 15, 15]), "extensors") == "met"


def test_hold_dose_met_and_not_met():
    # holds 20, 25, 30: all >= 20 -> met
    assert criterion_of(hold_sets([20.0, 25.0, 30.0]), "trunk") == "met"
    # 19.5 < 20: two sets on target -> not_met
    assert criterion_of(hold_sets([20.0, 19.5, 30.0]), "trunk") == "not_met"


def test_pain_24h_missing_gives_unknown():
    # dose and pain_during fine, pain_24h not recorded -> unknown
    assert criterion_of(bridge_sets([10, 10, 10], 1.0, NaN), "extensors") == "unknown"


def test_pain_during_missing_gives_unknown():
    assert criterion_of(bridge_sets([10, 10, 10], NaN, 1.0), "extensors") == "unknown"


def test_false_beats_unknown():
    # pain_during 4 > 3 is false; pain_24h missing is unknown -> not_met
    assert criterion_of(bridge_sets([10, 10, 10], 4.0, NaN), "extensors") == "not_met"
    # 2 sets only (false) with pain_24h missing -> not_met
    assert criterion_of(bridge_sets([10, 10], 1.0, NaN), "extensors") == "not_met"
    # pain_24h 3.5 > 3 with pain_during missing -> not_met
    assert criterion_of(bridge_sets([10, 10, 10], NaN, 3.5), "extensors") == "not_met"


def test_reps_exercise_with_hold_per_rep_is_judged_on_reps():
    # side_lying_adduction is a reps exercise (2-3 s hold per rep): 3 x 10 reps with 3 s holds
    # meets the reps target; the 3 s hold is not compared with the 20 s hold target
    rows = [("P1", START, "side_lying_adduction", i, 10, 3.0, 0.0, 1.0, 1.0) for i in (1, 2, 3)]
    assert criterion_of(rows, "adductors") == "met"


def test_hold_exercise_is_judged_on_hold_even_with_reps():
    # copenhagen_short_lever is a hold exercise: 10 reps of 5 s are 3 sets with hold 5 < 20
    rows = hold_sets([5.0, 5.0, 5.0], exercise="copenhagen_short_lever", reps=10)
    assert criterion_of(rows, "adductors") == "not_met"


def test_thresholds_are_parameters():
    # 3 x 6 reps fails the default 8, meets criterion_reps=6; 2 sets meet criterion_sets=2
    assert criterion_of(bridge_sets([6, 6, 6]), "extensors", criterion_reps=6) == "met"
    assert criterion_of(bridge_sets([10, 10]), "extensors", criterion_sets=2) == "met"
    # pain 3 fails a 2/10 limit
    assert criterion_of(bridge_sets([10] * 3, 3.0), "extensors", pain_threshold=2.0) == "not_met"


def test_decimal_reps_and_holds_use_the_tolerance():
    # 19.9999999999 s is within 1e-9 of 20 -> on target
    assert criterion_of(hold_sets([19.9999999999] * 3), "trunk") == "met"


# --- level, top load, pooling, "those sets" ------------------------------------------------------


def test_level_top_load_and_sets_at_level():
    # bridge (level 1) 3 x 10 at 0 kg + bridge_loaded (level 2) 2 x 10 at 20 and 25 kg
    rows = bridge_sets([10, 10, 10]) + [
        ("P1", START, "bridge_loaded", 1, 10, NaN, 20.0, 1.0, 1.0),
        ("P1", START, "bridge_loaded", 2, 10, NaN, 25.0, 1.0, 1.0),
    ]
    table = family_sessions(make_ds(rows))
    assert list(table.columns[: len(FAMILY_SESSION_COLUMNS)]) == FAMILY_SESSION_COLUMNS
    row = table.iloc[0]
    assert row["level"] == 2  # highest level done
    assert row["top_load_kg"] == 25.0  # highest load at level 2
    assert row["sets"] == 2  # sets at level 2 only
    assert row["total_reps"] == 50.0  # 5 sets x 10, whole family
    assert row["volume_load_kg"] == 450.0  # 10 x 20 + 10 x 25 (+ 3 x 10 x 0)
    # only 2 sets at level 2: the 3 level-1 sets do not count -> not_met
    assert row["criterion"] == "not_met"
    assert (row["clinic_id"], row["clinician_id"], row["week"]) == ("C1", "K1", 0)


def test_exercises_of_one_family_at_one_level_pool():
    # trunk_variations are all level 1: 2 Pallof holds of 20 s + 1 front plank of 30 s = 3 sets
    rows = hold_sets([20.0, 20.0], exercise="pallof_press") + hold_sets(
        [30.0], exercise="front_plank"
    )
    table = family_sessions(make_ds(rows))
    assert table.loc[0, "sets"] == 3
    assert table.loc[0, "tut_s"] == 70.0  # 20 + 20 + 30
    assert table.loc[0, "criterion"] == "met"


def test_pain_on_a_lower_level_set_is_not_judged():
    # a painful bridge (level 1, pain 5) and 3 comfortable bridge_loaded sets (level 2, pain 2):
    # the criterion is judged at level 2 -> met; max_pain_during is 2 (level-2 sets only)
    rows = bridge_sets([10], 5.0) + bridge_sets([10, 10, 10], 2.0, exercise="bridge_loaded")
    table = family_sessions(make_ds(rows))
    assert table.loc[0, "max_pain_during"] == 2.0
    assert table.loc[0, "criterion"] == "met"


def test_those_sets_means_all_sets_at_the_level():
    # 3 sets of 10 at pain 1 meet the dose; a 4th set at the same level (5 reps, pain 4) is not on
    # target but still one of the level's sets: worst pain_during = 4 > 3 -> not_met
    rows = bridge_sets([10, 10, 10, 5], [1.0, 1.0, 1.0, 4.0])
    table = family_sessions(make_ds(rows))
    assert table.loc[0, "max_pain_during"] == 4.0
    assert table.loc[0, "criterion"] == "not_met"


def test_pain_24h_is_the_sessions_even_from_another_family():
    # bridge rows record no pain_24h; the side plank row of the same session records 2 -> the
    # extensors family session's pain_24h is 2 and its criterion met
    rows = bridge_sets([10, 10, 10], 1.0, NaN) + hold_sets([25.0], pain_24h=2.0)
    table = family_sessions(make_ds(rows)).set_index("family")
    assert table.loc["extensors", "pain_24h"] == 2.0
    assert table.loc["extensors", "criterion"] == "met"


def test_volume_change_pct_between_family_sessions():
    rows = (
        bridge_sets([10], exercise="bridge_loaded", load=10.0, date="2026-01-05")  # 100 kg
        + bridge_sets([10], exercise="bridge_loaded", load=15.0, date="2026-01-07")  # 150 kg
        + bridge_sets([10], exercise="bridge", date="2026-01-09")  # 0 kg
        + bridge_sets([10], exercise="bridge_loaded", load=10.0, date="2026-01-12")  # 100 kg
        + hold_sets([20.0], date="2026-01-07")  # another family: not in the extensors chain
    )
    table = family_sessions(make_ds(rows))
    extensors = table[table["family"] == "extensors"]
    # first: NaN; 100 -> 150: +50 %; 150 -> 0: -100 %; 0 -> 100: previous volume 0 -> NaN
    np.testing.assert_array_equal(extensors["volume_change_pct"], [NaN, 50.0, -100.0, NaN])
    assert np.isnan(table.loc[table["family"] == "trunk", "volume_change_pct"]).all()


def test_volume_change_does_not_cross_patients():
    rows = bridge_sets([10], exercise="bridge_loaded", load=10.0) + [
        ("P2", "2026-01-07", "bridge_loaded", 1, 10, NaN, 20.0, 1.0, 1.0)
    ]
    table = family_sessions(make_ds(rows, patient_ids=("P1", "P2")))
    assert table["volume_change_pct"].isna().all()


# --- weekly load ---------------------------------------------------------------------------------


def weekly_rows() -> list[tuple]:
    def row(date, exercise, set_no, reps, load=0.0, hold=NaN):
        return ("P1", date, exercise, set_no, reps, hold, load, 1.0, 1.0)

    return [
        # week -1 (start - 3 days): hip hike loaded 10 x 5 kg = 50 kg
        row("2026-01-02", "hip_hike_loaded", 1, 10, 5.0),
        # week 0: hip hike loaded 10 x 6 kg = 60 kg -> +20 % on week -1
        row("2026-01-06", "hip_hike_loaded", 1, 10, 6.0),
        # week 0, extensors: two sessions, 4 sets, 38 reps, 0 + 0 + 100 + 100 = 200 kg,
        # top level 2, top load at it 12.5
        row("2026-01-05", "bridge", 1, 10),
        row("2026-01-05", "bridge", 2, 10),
        row("2026-01-07", "bridge_loaded", 1, 10, 10.0),
        row("2026-01-07", "bridge_loaded", 2, 8, 12.5),
        # week 1: 2 x 10 x 15 kg = 300 kg -> 100 x (300 - 200) / 200 = +50 %
        row("2026-01-12", "bridge_loaded", 1, 10, 15.0),
        row("2026-01-12", "bridge_loaded", 2, 10, 15.0),
        # week 3 (week 2 empty, a gap): 100 kg -> change empty
        row("2026-01-26", "bridge_loaded", 1, 10, 10.0),
        # trunk holds: no volume in week 0, so week 1's change is empty too
        row("2026-01-05", "side_plank", 1, NaN, hold=20.0),
        row("2026-01-12", "side_plank", 1, NaN, hold=30.0),
    ]


def test_weekly_load_by_hand():
    table = weekly_load(make_ds(weekly_rows()))
    assert list(table.columns) == WEEKLY_LOAD_COLUMNS
    table = table.set_index(["family", "week"])
    week0 = table.loc[("extensors", 0)]
    assert week0["sessions"] == 2
    assert week0["sets"] == 4
    assert week0["total_reps"] == 38.0
    assert week0["volume_load_kg"] == 200.0
    assert week0["top_level"] == 2
    assert week0["top_load_kg"] == 12.5
    assert np.isnan(week0["volume_change_pct"])  # no week -1 row for extensors
    assert table.loc[("extensors", 1), "volume_change_pct"] == 50.0
    assert np.isnan(table.loc[("extensors", 3), "volume_change_pct"])  # gap week 2
    assert ("extensors", 2) not in table.index  # rows only for weeks with sets
    assert np.isclose(table.loc[("abductors", 0), "volume_change_pct"], 20.0)  # 50 -> 60 kg
    assert table.loc[("abductors", -1), "sessions"] == 1
    assert np.isnan(table.loc[("trunk", 1), "volume_change_pct"])  # previous volume 0
    assert table.loc[("trunk", 1), "tut_s"] == 30.0
