"""sessions_table: aggregation, quarter and the flare flag (CONTRACT §4)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hipdata import Dataset
from hipdata.metrics import SESSIONS_COLUMNS, flare, sessions_table

NaN = np.nan


def flare_ds() -> Dataset:
    patients = pd.DataFrame(
        {
            "patient_id": ["P1"],
            "clinic_id": ["C7"],
            "clinician_id": ["K1"],
            "start_date": ["2026-06-29"],
        }
    )
    rows = [
        # session 1 (2026-06-30, 2026Q2): two exercises, three sets
        ("2026-06-30", "bridge", 1, 10, NaN, NaN, 2.0, 1.0),
        ("2026-06-30", "bridge", 2, 8, NaN, NaN, 3.0, NaN),
        ("2026-06-30", "side_plank", 1, NaN, 20.0, NaN, NaN, 3.0),
        # session 2 (2026Q3): pain_during 4 > 3, pain_24h not recorded -> flare True
        ("2026-07-02", "bridge_loaded", 1, 10, NaN, 10.0, 4.0, NaN),
        # session 3: pain_during 2 recorded, pain_24h missing -> flare missing
        ("2026-07-06", "bridge", 1, 10, NaN, NaN, 2.0, NaN),
        # session 4: only pain_24h 3.5 > 3 -> flare True
        ("2026-07-07", "bridge", 1, 10, NaN, NaN, NaN, 3.5),
        # session 5: no pain recorded -> flare missing
        ("2026-07-08", "bridge", 1, 10, NaN, NaN, NaN, NaN),
        # session 6: 3 + 1e-10 is within the 1e-9 tolerance of 3 -> flare False
        ("2026-07-09", "bridge", 1, 10, NaN, NaN, 3.0000000001, 0.0),
    ]
    sets = pd.DataFrame(
        rows,
        columns=["date", "exercise", "set", "reps", "hold_s", "load_kg", "pain_during", "pain_24h"],
    ).assign(patient_id="P1")
    return Dataset.from_frames(patients, sets)


def test_session_aggregates_by_hand():
    table = sessions_table(flare_ds())
    assert list(table.columns[: len(SESSIONS_COLUMNS)]) == SESSIONS_COLUMNS
    first = table.iloc[0]
    assert first["clinic_id"] == "C7"
    assert first["week"] == 0  # 2026-06-30 is start + 1 day
    assert first["quarter"] == "2026Q2"
    assert first["n_exercises"] == 2  # bridge, side_plank
    assert first["n_sets"] == 3
    assert first["total_reps"] == 18.0  # 10 + 8 (the hold has no reps)
    assert first["volume_load_kg"] == 0.0  # body weight only
    assert first["tut_s"] == 20.0  # the 20 s hold
    assert first["max_pain_during"] == 3.0  # max(2, 3)
    assert first["pain_24h"] == 3.0  # max(1, 3): rows disagree -> the session takes the maximum
    assert table["quarter"].tolist() == ["2026Q2"] + ["2026Q3"] * 5
    assert table.loc[1, "volume_load_kg"] == 100.0  # 10 reps x 10 kg


def test_flare_true_false_and_missing():
    table = sessions_table(flare_ds())
    assert table["flare"].dtype == "boolean"
    # s1: 3 and 3 both recorded, 3 <= 3 -> False; s2: 4 > 3 -> True; s3: 24 h missing -> NA;
    # s4: 3.5 > 3 -> True; s5: nothing -> NA; s6: within tolerance -> False
    assert table["flare"].tolist() == [False, True, pd.NA, True, pd.NA, False]


def test_flare_threshold_is_a_parameter():
    # with a limit of 2/10, session 1 (pain 3 during, 3 after) is over it
    table = sessions_table(flare_ds(), pain_threshold=2.0)
    assert bool(table.loc[0, "flare"]) is True


def test_flare_function_directly():
    during = pd.Series([NaN, 5.0, 1.0, NaN])
    after = pd.Series([NaN, NaN, 2.0, 1.0])
    assert flare(during, after).tolist() == [pd.NA, True, False, pd.NA]
