"""patient_summary: attendance, pain adherence, dose adherence, progressions, activity (§4)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hipdata import Dataset
from hipdata.metrics import PATIENT_SUMMARY_COLUMNS, dose_units, patient_summary, weeks_in_care
from hipdata.protocol import FAMILIES

NaN = np.nan
START = "2026-01-05"
SET_COLUMNS = [
    "patient_id",
    "date",
    "exercise",
    "set",
    "reps",
    "hold_s",
    "load_kg",
    "pain_during",
    "pain_24h",
]


def bridge(patient, date, pain_during=1.0, pain_24h=1.0, exercise="bridge", reps=10, load=0.0):
    return [(patient, date, exercise, s, reps, NaN, load, pain_during, pain_24h) for s in (1, 2, 3)]


# --- attendance ----------------------------------------------------------------------------------


def attendance_ds() -> Dataset:
    patients = pd.DataFrame(
        {
            "patient_id": ["P1", "P2", "P3", "P4", "P5", "P6"],
            "clinic_id": ["C1", "C1", "C2", "C2", "C2", "C2"],
            "clinician_id": ["K1", "K1", "K2", None, None, None],
            "start_date": START,
            "discharge_date": ["2026-02-02", None, None, None, START, "2026-01-15"],
            "planned_sessions_per_week": [2.0, 3.0, None, None, None, None],
        }
    )
    p1_dates = ["2026-01-05", "2026-01-07", "2026-01-12", "2026-01-14", "2026-01-19", "2026-01-21"]
    p1_pain = [(1, 1), (2, 2), (3, 3), (0, 1), (4, 1), (2, NaN)]  # flare F F F F T NA
    rows = [
        row
        for date, (during, after) in zip(p1_dates, p1_pain, strict=True)
        for row in bridge("P1", date, during, after)
    ]
    rows += [r for d in ("2026-01-05", "2026-01-12", "2026-01-19") for r in bridge("P2", d)]
    rows += [r for d in ("2026-01-05", "2026-01-08") for r in bridge("P3", d)]
    rows += [r for d in ("2026-01-06", "2026-01-09") for r in bridge("P6", d)]
    return Dataset.from_frames(patients, pd.DataFrame(rows, columns=SET_COLUMNS))


def test_every_patient_gets_a_row_with_the_contract_columns():
    table = patient_summary(attendance_ds())
    assert list(table.columns[: len(PATIENT_SUMMARY_COLUMNS)]) == PATIENT_SUMMARY_COLUMNS
    assert table["patient_id"].tolist() == ["P1", "P2", "P3", "P4", "P5", "P6"]
    assert table["sessions"].tolist() == [6, 3, 2, 0, 0, 2]
    assert [f"top_level_{f}" for f in FAMILIES] == [
        c for c in table.columns if c.startswith("top_level_")
    ]


def test_attendance_with_and_without_discharge():
    table = patient_summary(attendance_ds()).set_index("patient_id")
    # P1 discharged: 2026-01-05 -> 2026-02-02 = 28 days = 4 weeks; 2 per week -> 8 planned;
    # 6 sessions / 8 = 0.75
    assert table.loc["P1", "weeks_in_care"] == 4.0
    assert table.loc["P1", "planned_sessions"] == 8.0
    assert table.loc["P1", "attendance"] == 0.75
    # P2 in care: start -> last session 2026-01-19 = 14 days = 2 weeks; 3 per week -> 6 planned;
    # 3 sessions / 6 = 0.5
    assert table.loc["P2", "weeks_in_care"] == 2.0
    assert table.loc["P2", "attendance"] == 0.5
    # P3 in care: 3 days to the last session -> max(1, 3 / 7) = 1 week; default 2 per week;
    # 2 / 2 = 1.0
    assert table.loc["P3", "weeks_in_care"] == 1.0
    assert table.loc["P3", "attendance"] == 1.0
    # P4 in care, no session: weeks, planned and attendance empty
    assert np.isnan(table.loc["P4", ["weeks_in_care", "planned_sessions", "attendance"]]).all()
    # P5 discharged on the start day, no session: max(1, 0) = 1 week, 2 planned, attendance 0
    assert table.loc["P5", "weeks_in_care"] == 1.0
    assert table.loc["P5", "attendance"] == 0.0
    # P6: 10 days -> 10 / 7 weeks, unrounded; planned 20 / 7; 2 / (20 / 7) = 0.7
    assert table.loc["P6", "weeks_in_care"] == pytest.approx(10 / 7)
    assert table.loc["P6", "attendance"] == pytest.approx(0.7)


def test_weeks_in_care_function():
    start = pd.to_datetime(pd.Series(["2026-01-05"] * 3))
    discharge = pd.to_datetime(pd.Series(["2026-01-26", None, None]))
    last = pd.to_datetime(pd.Series(["2026-01-10", "2026-01-19", None]))
    # 21 / 7 = 3 (discharge wins over the last session); 14 / 7 = 2; in care, no session -> NaN
    np.testing.assert_array_equal(weeks_in_care(start, discharge, last), [3.0, 2.0, NaN])


def test_pain_threshold_adherence():
    table = patient_summary(attendance_ds()).set_index("patient_id")
    # P1's flares: F, F, F (3 and 3 are allowed), F, T (pain 4), NA (24 h missing)
    # adherence = 4 False / 5 known = 0.8; 1 flare session; 1 pain-missing session
    assert table.loc["P1", "pain_threshold_adherence"] == 0.8
    assert table.loc["P1", "flare_sessions"] == 1
    assert table.loc["P1", "pain_missing_sessions"] == 1
    # no session -> adherence empty, counts 0
    assert np.isnan(table.loc["P4", "pain_threshold_adherence"])
    assert table.loc["P4", "flare_sessions"] == 0


def test_pain_threshold_adherence_is_complete_case():
    # CONTRACT §4 (issue 7 item 5): among sessions with BOTH pains recorded, the share with both
    # <= 3; pain_missing_sessions counts sessions missing either pain.
    patients = pd.DataFrame({"patient_id": ["P7", "P8"], "clinic_id": "C1", "start_date": START})
    p7 = [(1, 1), (2, 2), (5, 2), (4, NaN), (NaN, 1), (1, NaN), (3, 3)]
    p8 = [(2, NaN), (NaN, NaN)]
    rows = [
        row
        for patient, pains in (("P7", p7), ("P8", p8))
        for day, (during, after) in enumerate(pains)
        for row in bridge(patient, f"2026-01-{5 + day:02d}", during, after)
    ]
    table = patient_summary(
        Dataset.from_frames(patients, pd.DataFrame(rows, columns=SET_COLUMNS))
    ).set_index("patient_id")
    # P7: both recorded in sessions 1, 2, 3, 7 (4 sessions); both <= 3 in 1, 2, 7 (3 = 3 counts
    # as within) -> 3 / 4 = 0.75. The old "flare known" rule kept session 4 (4/10 during, 24 h
    # missing) because it flares: 3 / 5 = 0.6, biased low.
    assert table.loc["P7", "pain_threshold_adherence"] == 0.75
    assert table.loc["P7", "pain_recorded_sessions"] == 4
    # missing either pain: sessions 4, 5, 6 -> 3
    assert table.loc["P7", "pain_missing_sessions"] == 3
    # flare True (a recorded pain > 3): sessions 3 (5 during) and 4 (4 during) -> 2
    assert table.loc["P7", "flare_sessions"] == 2
    # P8: no session has both pains -> adherence empty; both sessions miss a pain
    assert np.isnan(table.loc["P8", "pain_threshold_adherence"])
    assert table.loc["P8", "pain_missing_sessions"] == 2
    assert table.loc["P8", "flare_sessions"] == 0


# --- dose adherence ------------------------------------------------------------------------------


def dose_ds() -> Dataset:
    patients = pd.DataFrame({"patient_id": ["P1", "P2"], "clinic_id": "C1", "start_date": START})
    columns = [
        "patient_id",
        "date",
        "exercise",
        "set",
        "reps",
        "hold_s",
        "prescribed_sets",
        "prescribed_reps",
        "prescribed_hold_s",
    ]
    rows = [
        # unit 1: set-level rows repeating the prescription 3 x 10 -> prescribed 30 (once, not
        # 90); performed 10 + 10 + 7 = 27 -> 0.9
        ("P1", START, "bridge", 1, 10, NaN, 3, 10, NaN),
        ("P1", START, "bridge", 2, 10, NaN, 3, 10, NaN),
        ("P1", START, "bridge", 3, 7, NaN, 3, 10, NaN),
        # unit 2: hold prescription 3 x 20 s = 60 s; performed 30 + 30 = 60 s of TUT -> 1.0
        ("P1", START, "side_plank", 1, NaN, 30.0, 3, NaN, 20.0),
        ("P1", START, "side_plank", 2, NaN, 30.0, 3, NaN, 20.0),
        # unit 3: no prescribed sets -> the 2 sets done; 2 x 10 = 20; performed 24 -> 1.2
        # (not capped)
        ("P1", "2026-01-07", "bridge_loaded", 1, 12, NaN, NaN, 10, NaN),
        ("P1", "2026-01-07", "bridge_loaded", 2, 12, NaN, NaN, 10, NaN),
        # unit 4: no prescription -> not a unit
        ("P1", "2026-01-07", "hip_hike", 1, 10, NaN, NaN, NaN, NaN),
        # P2: no prescriptions at all -> dose adherence empty
        ("P2", START, "bridge", 1, 10, NaN, NaN, NaN, NaN),
    ]
    return Dataset.from_frames(patients, pd.DataFrame(rows, columns=columns))


def test_dose_units_by_hand():
    units = dose_units(dose_ds().sets.assign(tut_s=[0, 0, 0, 30.0, 30.0, 0, 0, 0, 0]))
    assert units["exercise"].tolist() == ["bridge", "side_plank", "bridge_loaded"]
    assert units["prescribed"].tolist() == [30.0, 60.0, 20.0]
    assert units["performed"].tolist() == [27.0, 60.0, 24.0]


def test_dose_adherence_is_the_mean_over_units():
    table = patient_summary(dose_ds()).set_index("patient_id")
    # (0.9 + 1.0 + 1.2) / 3 = 1.0333...
    assert table.loc["P1", "dose_adherence"] == pytest.approx((0.9 + 1.0 + 1.2) / 3)
    assert table.loc["P1", "dose_units"] == 3
    assert np.isnan(table.loc["P2", "dose_adherence"])


# --- on-criteria share, early progressions, top levels --------------------------------------------


def progression_summary_ds() -> Dataset:
    patients = pd.DataFrame({"patient_id": ["P1", "P2"], "clinic_id": "C1", "start_date": START})
    rows = (
        # d1 bridge: 3 x 5 reps -> not_met
        bridge("P1", "2026-01-05", reps=5)
        # d2 up (bridge -> bridge_loaded 10 kg), criterion_before not_met -> early; d2 met
        + bridge("P1", "2026-01-07", exercise="bridge_loaded", load=10.0)
        # d3 load_up 10 -> 12 kg, before met; d3 pain_24h missing -> unknown
        + bridge("P1", "2026-01-09", pain_24h=NaN, exercise="bridge_loaded", load=12.0)
        # d4 up to standing_hip_extension (level 3), before unknown; d4 met
        + bridge("P1", "2026-01-12", exercise="standing_hip_extension")
        # d5 down to bridge_loaded 12 kg: not a forward event; 5 reps -> not_met
        + bridge("P1", "2026-01-14", exercise="bridge_loaded", load=12.0, reps=5)
        # d6 load_down 12 -> 10 kg: not a forward event
        + bridge("P1", "2026-01-16", exercise="bridge_loaded", load=10.0)
        # trunk: one session at level 2
        + [("P1", "2026-01-16", "side_plank", 1, NaN, 25.0, 0.0, 1.0, 1.0)]
        # P2: one family, no event
        + bridge("P2", "2026-01-05")
    )
    return Dataset.from_frames(patients, pd.DataFrame(rows, columns=SET_COLUMNS))


def test_on_criteria_share_and_early_progressions():
    table = patient_summary(progression_summary_ds()).set_index("patient_id")
    # forward events: up (not_met), load_up (met), up (unknown) -> share 1 / 3 (unknown in the
    # denominator); early = 1 (the not_met one)
    assert table.loc["P1", "on_criteria_share"] == pytest.approx(1 / 3)
    assert table.loc["P1", "early_progressions"] == 1
    assert table.loc["P1", "forward_progressions"] == 3
    # no up or load_up events -> share empty, early 0
    assert np.isnan(table.loc["P2", "on_criteria_share"])
    assert table.loc["P2", "early_progressions"] == 0


def test_top_levels_per_family():
    table = patient_summary(progression_summary_ds()).set_index("patient_id")
    assert table.loc["P1", "top_level_extensors"] == 3  # standing_hip_extension
    assert table.loc["P1", "top_level_trunk"] == 2  # side_plank
    assert pd.isna(table.loc["P1", "top_level_adductors"])  # never done
    assert table.loc["P2", "top_level_extensors"] == 1
    assert table["top_level_hop"].dtype == "Int64"


# --- activity target -----------------------------------------------------------------------------


def activity_ds() -> Dataset:
    patients = pd.DataFrame({"patient_id": ["P1", "P2"], "clinic_id": "C1", "start_date": START})
    exercise_dates = [
        "2026-01-06",
        "2026-01-09",  # week 0: 2 exercise sessions
        "2026-01-12",
        "2026-01-14",
        "2026-01-16",  # week 1: 3
        "2026-02-02",  # week 4: sessions but no activity row -> not an activity week
    ]
    rows = [r for d in exercise_dates for r in bridge("P1", d)] + bridge("P2", START)
    activity = pd.DataFrame(
        [
            # week -1 (start - 4 days): 150 min and 2 recorded -> met (counts like any week)
            ("P1", "2026-01-01", 150.0, 2.0),
            # week 0: 100 + 50 = 150 min (inclusive), no strength recorded -> the 2 exercise
            # sessions count -> met
            ("P1", "2026-01-05", 100.0, NaN),
            ("P1", "2026-01-08", 50.0, NaN),
            # week 1: 200 min but 1 recorded strength session (recorded values win over the 3
            # exercise sessions) -> not met
            ("P1", "2026-01-12", 200.0, 1.0),
            ("P1", "2026-01-14", 0.0, NaN),
            # week 2: 149 min < 150 -> not met
            ("P1", "2026-01-19", 149.0, 2.0),
            # week 3: 300 min, 2 recorded -> met
            ("P1", "2026-01-26", 300.0, 2.0),
        ],
        columns=["patient_id", "date", "cardio_min", "strength_sessions"],
    )
    return Dataset.from_frames(patients, pd.DataFrame(rows, columns=SET_COLUMNS), activity=activity)


def test_activity_weeks_met_share():
    table = patient_summary(activity_ds()).set_index("patient_id")
    # weeks with activity: -1, 0, 1, 2, 3 = 5; met: -1, 0, 3 = 3 -> 0.6
    assert table.loc["P1", "activity_weeks"] == 5
    assert table.loc["P1", "activity_weeks_met"] == 3
    assert table.loc["P1", "activity_weeks_met_share"] == pytest.approx(0.6)
    # no activity rows -> empty
    assert np.isnan(table.loc["P2", "activity_weeks_met_share"])


def test_activity_targets_are_parameters():
    # a 100-minute target: week 2 (149 min, 2 sessions) now meets it too -> 4 / 5
    table = patient_summary(activity_ds(), who_cardio_min=100.0).set_index("patient_id")
    assert table.loc["P1", "activity_weeks_met_share"] == pytest.approx(0.8)
