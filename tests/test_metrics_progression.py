"""progressions and held_back_episodes: events, runs and held-back runs (CONTRACT §4)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hipdata import Dataset
from hipdata.metrics import (
    HELD_BACK_COLUMNS,
    PROGRESSIONS_COLUMNS,
    held_back_episodes,
    patient_summary,
    progressions,
)

NaN = np.nan
START = "2026-01-05"


def session(patient, date, exercise, state, load=0.0):
    """Three sets of one exercise in a family session whose criterion is ``state``.

    met: 3 x 10 reps (or 3 x 25 s), pain 1 and 1; not_met: 3 x 5 reps (or 3 x 10 s);
    unknown: the met sets with pain_24h not recorded.
    """
    hold_exercise = exercise in {"side_plank_knee", "side_plank", "front_plank"}
    amount = {"met": 10, "not_met": 5, "unknown": 10}[state]
    pain_24h = NaN if state == "unknown" else 1.0
    rows = []
    for set_no in (1, 2, 3):
        reps, hold = (NaN, 2.5 * amount) if hold_exercise else (amount, NaN)
        rows.append((patient, date, exercise, set_no, reps, hold, load, 1.0, pain_24h))
    return rows


def make_ds(sessions: list[list[tuple]], patient_ids=("P1",)) -> Dataset:
    patients = pd.DataFrame(
        {"patient_id": list(patient_ids), "clinic_id": "C1", "start_date": START}
    )
    rows = [row for s in sessions for row in s]
    sets = pd.DataFrame(
        rows,
        columns=[
            "patient_id",
            "date",
            "exercise",
            "set",
            "reps",
            "hold_s",
            "load_kg",
            "pain_during",
            "pain_24h",
        ],
    )
    return Dataset.from_frames(patients, sets)


def progression_ds() -> Dataset:
    return make_ds(
        [
            session("P1", "2026-01-05", "bridge", "met"),  # d1, run A (L1, 0 kg)
            session("P1", "2026-01-07", "bridge", "met"),  # d2, run A
            session("P1", "2026-01-09", "bridge_loaded", "unknown", 10.0),  # d3, run B (L2, 10)
            session("P1", "2026-01-12", "bridge_loaded", "not_met", 15.0),  # d4, run C (L2, 15)
            session("P1", "2026-01-14", "bridge_loaded", "not_met", 15.0),  # d5, run C
            session("P1", "2026-01-16", "bridge_loaded", "met", 12.5),  # d6, run D (L2, 12.5)
            session("P1", "2026-01-19", "bridge", "met"),  # d7, run E (L1, 0)
            # the same top load within 1e-9 kg is not a load change
            session("P1", "2026-01-21", "bridge", "met", 1e-10),  # d8, still run E
            # another family on d1 and d2, same level throughout: no event (not on d3, whose
            # session pain_24h must stay unrecorded)
            session("P1", "2026-01-05", "hip_hike", "met"),
            session("P1", "2026-01-07", "hip_hike", "met"),
            # another patient: their first session is not compared with P1's last
            session("P2", "2026-01-22", "bridge_loaded", "met", 20.0),
        ],
        patient_ids=("P1", "P2"),
    )


def test_progression_events_by_hand():
    table = progressions(progression_ds())
    assert list(table.columns[: len(PROGRESSIONS_COLUMNS)]) == PROGRESSIONS_COLUMNS
    expected = pd.DataFrame(
        [
            # d2 -> d3: level 1 -> 2 (up), loads 0 -> 10; d2 met; run A = d1, d2 -> 2 sessions;
            # days from d1 (01-05) to the event (01-09) = 4
            ("2026-01-09", 1, 2, 0.0, 10.0, "up", "met", 2, 4),
            # d3 -> d4: same level, 10 -> 15 kg (load_up); d3 unknown; run B = d3 -> 1; 01-09 to
            # 01-12 = 3 days
            ("2026-01-12", 2, 2, 10.0, 15.0, "load_up", "unknown", 1, 3),
            # d5 -> d6: 15 -> 12.5 kg (load_down); d5 not_met; run C = d4, d5 -> 2; 01-12 to 01-16
            ("2026-01-16", 2, 2, 15.0, 12.5, "load_down", "not_met", 2, 4),
            # d6 -> d7: level 2 -> 1 (down), loads 12.5 -> 0; d6 met; run D = d6 -> 1; 3 days
            ("2026-01-19", 2, 1, 12.5, 0.0, "down", "met", 1, 3),
        ],
        columns=[
            "date",
            "from_level",
            "to_level",
            "from_load_kg",
            "to_load_kg",
            "kind",
            "criterion_before",
            "sessions_at_level",
            "days_at_level",
        ],
    )
    expected["date"] = pd.to_datetime(expected["date"]).astype("datetime64[ns]")
    got = table[expected.columns].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert (table["patient_id"] == "P1").all()
    assert (table["family"] == "extensors").all()
    assert table["sessions_at_level"].dtype == "int64"
    assert table["days_at_level"].dtype == "int64"


def test_no_events_without_changes():
    ds = make_ds([session("P1", d, "bridge", "met") for d in ("2026-01-05", "2026-01-07")])
    assert progressions(ds).empty


# --- held back -----------------------------------------------------------------------------------


def held_back_ds() -> Dataset:
    dates = pd.date_range("2026-01-05", periods=20, freq="D").strftime("%Y-%m-%d")
    p1 = [
        # run 1 (bridge): not_met, met, then exactly 3 further sessions -> 1 episode (closed run)
        ("bridge", "not_met"),
        ("bridge", "met"),
        ("bridge", "not_met"),
        ("bridge", "met"),
        ("bridge", "met"),
        # run 2 (bridge_loaded, 0 kg): met then only 2 further sessions -> 0 episodes
        ("bridge_loaded", "met"),
        ("bridge_loaded", "met"),
        ("bridge_loaded", "met"),
        # run 3 (standing_hip_extension), still open: met x 5 -> first met followed by 4
        # further sessions -> 1 episode (one per run, however many met sessions follow)
        *[("standing_hip_extension", "met")] * 5,
    ]
    sessions = [session("P1", dates[i], ex, state) for i, (ex, state) in enumerate(p1)]
    # trunk, still-open run: met, then 3 further (unknown) sessions -> 1 episode
    trunk = ["met", "unknown", "unknown", "unknown"]
    sessions += [session("P1", dates[i], "side_plank", s) for i, s in enumerate(trunk)]
    # P2: first met is the 3rd session, followed by 2 -> 0 episodes
    p2 = ["not_met", "not_met", "met", "met", "met"]
    sessions += [session("P2", dates[i], "bridge", s) for i, s in enumerate(p2)]
    return make_ds(sessions, patient_ids=("P1", "P2"))


def test_held_back_episodes_by_hand():
    table = held_back_episodes(held_back_ds())
    assert list(table.columns) == HELD_BACK_COLUMNS
    got = table[["patient_id", "family", "level", "sessions_after_met", "run_open"]]
    expected = [
        ("P1", "extensors", 1, 3, False),  # exactly 3 further sessions -> counted
        ("P1", "extensors", 3, 4, True),  # still-open run counted
        ("P1", "trunk", 2, 3, True),
    ]
    assert list(got.itertuples(index=False, name=None)) == expected
    # run 1's first met session is its 2nd (2026-01-06), the run spans 01-05 .. 01-09
    first = table.iloc[0]
    assert first["first_met_date"] == pd.Timestamp("2026-01-06")
    assert (first["run_start"], first["run_end"]) == (
        pd.Timestamp("2026-01-05"),
        pd.Timestamp("2026-01-09"),
    )


def test_held_back_threshold_is_a_parameter():
    # with 2 further sessions enough, run 2 of P1 (met + 2) and P2 (met + 2) count as well
    table = held_back_episodes(held_back_ds(), held_back_sessions=2)
    assert table.groupby("patient_id").size().to_dict() == {"P1": 4, "P2": 1}


def test_patient_summary_sums_held_back_over_families():
    summary = patient_summary(held_back_ds()).set_index("patient_id")
    # P1: extensors 2 + trunk 1 = 3; P2: 0
    assert summary.loc["P1", "held_back_episodes"] == 3
    assert summary.loc["P2", "held_back_episodes"] == 0
