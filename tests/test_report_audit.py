"""Quarterly audit indicators (hipdata.analysis.audit) on hand-made cohorts.

The metric tables are hand-made frames with the §5 columns the audit reads, so every expected
figure below is worked out from the rows in this file.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from hipdata.analysis.audit import (
    AUDIT_COLUMNS,
    audit_indicators,
    latest_complete_quarter,
    previous_quarters,
)
from hipdata.analysis.indicators import INDICATORS, indicator_definitions
from hipdata.dataset import Dataset
from hipdata.protocol import Protocol
from hipdata.report.quarterly import format_indicator

NO_SUPPRESSION = 1  # k = 1: no count lies in 1..0, so every figure is shown


def dataset(patients: list[tuple], *, treatments: list[tuple] = ()) -> Dataset:
    patient_frame = pd.DataFrame(
        patients,
        columns=[
            "patient_id",
            "clinic_id",
            "clinician_id",
            "start_date",
            "discharge_date",
            "discharge_reason",
        ],
    )
    sets = pd.DataFrame(
        {"patient_id": [patients[0][0]], "date": [patients[0][3]], "exercise": ["bridge"],
         "set": [1], "reps": [10]}
    )  # fmt: skip
    treatment_frame = pd.DataFrame(list(treatments), columns=["patient_id", "date", "treatment"])
    return Dataset.from_frames(patient_frame, sets, treatments=treatment_frame)


def sessions_frame(rows: list[tuple]) -> pd.DataFrame:
    """rows: (patient_id, date, flare True/False/None, pain_24h or None)."""
    frame = pd.DataFrame(rows, columns=["patient_id", "date", "flare", "pain_24h"])
    frame["date"] = pd.to_datetime(frame["date"])
    frame["flare"] = frame["flare"].astype("boolean")
    frame["pain_24h"] = pd.to_numeric(frame["pain_24h"]).astype("float64")
    # both pains recorded exactly where the flare is known (1/10 during; the complete-case rule
    # of CONTRACT §4 then counts the same sessions as "flare known" did)
    frame["max_pain_during"] = np.where(frame["flare"].notna(), 1.0, np.nan)
    return frame


def progressions_frame(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["patient_id", "family", "date", "kind", "criterion_before"])
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def summary_frame(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(
        rows,
        columns=[
            "patient_id",
            "attendance",
            "dose_adherence",
            "held_back_episodes",
            "activity_weeks_met_share",
        ],
    ).astype({"attendance": "float64", "dose_adherence": "float64"})


def outcome_frame(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(
        rows, columns=["patient_id", "measure", "baseline", "followup", "improvement", "responder"]
    )
    frame["responder"] = frame["responder"].astype("boolean")
    return frame.astype({"followup": "float64", "improvement": "float64"})


# --- the tiny cohort ---------------------------------------------------------------------------
# Clinic C1: clinicians T1 (P1) and T2 (P2). Clinic C2: clinician T3 (P3, P4).
# P1 discharged 2026-03-20 (2026Q1); P2 2026-05-15 and P3 2026-04-30 (2026Q2); P4 still in care.


@pytest.fixture
def tiny():
    ds = dataset(
        [
            ("P1", "C1", "T1", "2026-01-05", "2026-03-20", "completed"),
            ("P2", "C1", "T2", "2026-02-02", "2026-05-15", "referred_surgery"),
            ("P3", "C2", "T3", "2026-03-02", "2026-04-30", "completed"),
            ("P4", "C2", "T3", "2026-03-16", None, None),
        ],
        treatments=[
            ("P1", "2026-01-05", "soft_tissue"),
            ("P1", "2026-01-12", "education_imaging"),
            ("P2", "2026-02-02", "education_activity"),
            ("P3", "2026-03-02", "joint_mobilisation"),
            ("P3", "2026-04-27", "surgical_referral"),
            ("P4", "2026-03-16", "soft_tissue"),
        ],
    )
    tables = {
        "sessions": sessions_frame(
            [
                ("P1", "2026-01-05", False, 2),
                ("P1", "2026-01-12", True, 5),
                ("P1", "2026-02-02", None, None),
                ("P1", "2026-03-16", False, 1),
                ("P2", "2026-02-02", False, 2),
                ("P2", "2026-03-30", True, 4),
                ("P2", "2026-04-06", False, 0),
                ("P2", "2026-05-11", None, 3),
                ("P3", "2026-03-02", False, 1),
                ("P3", "2026-04-13", False, 2),
                ("P3", "2026-04-27", True, 6),
                ("P4", "2026-03-16", None, None),
                ("P4", "2026-04-20", False, 1),
            ]
        ),
        "progressions": progressions_frame(
            [
                ("P1", "extensors", "2026-01-12", "up", "met"),
                ("P1", "extensors", "2026-02-02", "load_up", "not_met"),
                ("P1", "extensors", "2026-03-16", "down", "met"),  # not a progression
                ("P2", "squat", "2026-03-30", "up", "unknown"),
                ("P2", "squat", "2026-04-06", "load_down", "met"),  # not a progression
                ("P3", "adductors", "2026-04-27", "load_up", "met"),
            ]
        ),
        "patient_summary": summary_frame(
            [
                ("P1", 0.8, 0.9, 1, 0.5),
                ("P2", 0.5, np.nan, 0, np.nan),
                ("P3", 0.75, 1.1, 2, 1.0),
                ("P4", 0.4, 0.7, 0, 0.0),
            ]
        ),
        "outcome_change": outcome_frame(
            [
                ("P1", "nprs", 6.0, 3.0, 3.0, True),
                ("P1", "hoos_pain", 50.0, 60.0, 10.0, True),
                ("P2", "nprs", 5.0, 4.0, 1.0, False),
                ("P3", "nprs", 4.0, None, None, None),
                ("P3", "hoos_pain", 40.0, None, None, None),
                ("P4", "nprs", 7.0, None, None, None),
            ]
        ),
    }
    return ds, tables


def figure(audit: pd.DataFrame, level: str, unit: str, quarter: str, indicator: str):
    row = audit[
        (audit["level"] == level)
        & (audit["unit"] == unit)
        & (audit["quarter"] == quarter)
        & (audit["indicator"] == indicator)
    ]
    assert len(row) == 1, (level, unit, quarter, indicator)
    row = row.iloc[0]
    return row["numerator"], row["denominator"], row["value"], bool(row["suppressed"])


def assert_figure(audit, level, unit, quarter, indicator, numerator, denominator, value):
    got = figure(audit, level, unit, quarter, indicator)
    expected = (numerator, denominator, value, False)
    np.testing.assert_allclose(
        np.array(got[:3], dtype=float), np.array(expected[:3], dtype=float), equal_nan=True
    )
    assert got[3] is False


def test_session_pain_shares_are_complete_case(tiny):
    # CONTRACT §4 (issue 7 item 5): P1's 2026-02-02 session now flares during exercise (5/10)
    # with pain_24h missing. "Flare known" would count it (T1 Q1 adherence 2/4, flare 2/4); the
    # complete-case rule leaves it out of both shares: still 2/3 and 1/3.
    ds, tables = tiny
    sessions = tables["sessions"]
    row = (sessions["patient_id"] == "P1") & (sessions["date"] == "2026-02-02")
    sessions.loc[row, "flare"] = True
    sessions.loc[row, "max_pain_during"] = 5.0
    a = audit_indicators(ds, tables, k=NO_SUPPRESSION)
    assert_figure(a, "clinician", "T1", "2026Q1", "pain_threshold_adherence", 2, 3, 2 / 3)
    assert_figure(a, "clinician", "T1", "2026Q1", "flare_rate", 1, 3, 1 / 3)


def test_shape_columns_and_units(tiny):
    ds, tables = tiny
    audit = audit_indicators(ds, tables, k=NO_SUPPRESSION)
    assert list(audit.columns) == AUDIT_COLUMNS
    # quarters from the first to the last dated session / event / discharge: 2026Q1, 2026Q2;
    # units: network + 2 clinics + 3 clinicians = 6; 20 indicators.
    assert sorted(audit["quarter"].unique()) == ["2026Q1", "2026Q2"]
    assert len(audit) == 2 * 6 * len(INDICATORS)
    units = audit[["level", "unit"]].drop_duplicates().apply(tuple, axis=1).tolist()
    assert units == [
        ("network", "all"),
        ("clinic", "C1"),
        ("clinic", "C2"),
        ("clinician", "T1"),
        ("clinician", "T2"),
        ("clinician", "T3"),
    ]
    assert audit["suppressed"].dtype == bool
    assert not audit["suppressed"].any()


def test_session_indicators_count_by_session_date(tiny):
    ds, tables = tiny
    a = audit_indicators(ds, tables, k=NO_SUPPRESSION)
    nan = np.nan
    # 2026Q1 sessions: P1 01-05, 01-12, 02-02, 03-16 (4); P2 02-02, 03-30 (2); P3 03-02 (1);
    # P4 03-16 (1) -> T1 4, T2 2, T3 2; C1 6, C2 2; network 8.
    assert_figure(a, "clinician", "T1", "2026Q1", "sessions", 4, nan, 4)
    assert_figure(a, "clinician", "T3", "2026Q1", "sessions", 2, nan, 2)
    assert_figure(a, "clinic", "C1", "2026Q1", "sessions", 6, nan, 6)
    assert_figure(a, "network", "all", "2026Q1", "sessions", 8, nan, 8)
    # 2026Q2: P2 04-06, 05-11; P3 04-13, 04-27; P4 04-20 -> T1 0, T2 2, T3 3, network 5.
    assert_figure(a, "clinician", "T1", "2026Q2", "sessions", 0, nan, 0)
    assert_figure(a, "network", "all", "2026Q2", "sessions", 5, nan, 5)
    # active patients Q1: P1..P4 all had a session (T3: P3 and P4) -> 4; Q2: P2, P3, P4 -> 3.
    assert_figure(a, "clinician", "T3", "2026Q1", "active_patients", 2, nan, 2)
    assert_figure(a, "network", "all", "2026Q2", "active_patients", 3, nan, 3)
    # pain-threshold adherence Q1, flare known: P1 F,T,F (3), P2 F,T (2), P3 F (1), P4 none.
    # T1 2/3; C1 (P1+P2) 3/5; network 4/6. Flare rate is the other side: network 2/6.
    assert_figure(a, "clinician", "T1", "2026Q1", "pain_threshold_adherence", 2, 3, 2 / 3)
    assert_figure(a, "clinic", "C1", "2026Q1", "pain_threshold_adherence", 3, 5, 3 / 5)
    assert_figure(a, "network", "all", "2026Q1", "pain_threshold_adherence", 4, 6, 4 / 6)
    assert_figure(a, "network", "all", "2026Q1", "flare_rate", 2, 6, 2 / 6)
    # Q2 flare known: P2 F (05-11 unknown), P3 F,T, P4 F -> T3 2/3 adherence, 1/3 flare.
    assert_figure(a, "clinician", "T3", "2026Q2", "flare_rate", 1, 3, 1 / 3)
    # T1 has no Q2 session: 0/0 -> value empty, not suppressed.
    assert_figure(a, "clinician", "T1", "2026Q2", "flare_rate", 0, 0, nan)
    # pain_24h recorded Q1: P1 3 of 4, P2 2/2, P3 1/1, P4 0/1 -> T3 1/2, network 6/8.
    assert_figure(a, "clinician", "T3", "2026Q1", "pain_24h_recorded", 1, 2, 0.5)
    assert_figure(a, "network", "all", "2026Q1", "pain_24h_recorded", 6, 8, 0.75)
    # progressions (up / load_up only, by event date): Q1 P1 up met 01-12, P1 load_up
    # not_met 02-02, P2 up unknown 03-30 -> T1 2 (on criteria 1/2, early 1/2), T2 1 (0/1, 0/1),
    # C1 3 (1/3, 1/3). Q2: P3 load_up met -> T3 1 (1/1, early 0/1); P2's load_down is not one.
    assert_figure(a, "clinician", "T1", "2026Q1", "progression_events", 2, nan, 2)
    assert_figure(a, "clinician", "T1", "2026Q1", "on_criteria_share", 1, 2, 0.5)
    assert_figure(a, "clinician", "T2", "2026Q1", "on_criteria_share", 0, 1, 0.0)
    assert_figure(a, "clinic", "C1", "2026Q1", "early_progression_share", 1, 3, 1 / 3)
    assert_figure(a, "clinician", "T2", "2026Q2", "progression_events", 0, nan, 0)
    assert_figure(a, "network", "all", "2026Q2", "progression_events", 1, nan, 1)
    assert_figure(a, "clinician", "T3", "2026Q2", "early_progression_share", 0, 1, 0.0)


def test_episode_indicators_count_episodes_discharged_in_the_quarter(tiny):
    ds, tables = tiny
    a = audit_indicators(ds, tables, k=NO_SUPPRESSION)
    nan = np.nan
    # Q1 discharges: P1 (T1, C1) only. Q2: P2 (T2, C1) and P3 (T3, C2). P4 is in care: never.
    assert_figure(a, "network", "all", "2026Q1", "episodes_discharged", 1, nan, 1)
    assert_figure(a, "network", "all", "2026Q2", "episodes_discharged", 2, nan, 2)
    assert_figure(a, "clinician", "T3", "2026Q1", "episodes_discharged", 0, nan, 0)
    # attendance mean: Q1 T1 0.8 / 1; Q2 network (0.5 + 0.75) / 2 = 0.625 (P4's 0.4 not used).
    assert_figure(a, "clinician", "T1", "2026Q1", "attendance", 0.8, 1, 0.8)
    assert_figure(a, "network", "all", "2026Q2", "attendance", 1.25, 2, 0.625)
    # completion (attendance >= 0.75, inclusive): P2 0.5 no, P3 0.75 yes -> network Q2 1/2.
    assert_figure(a, "network", "all", "2026Q2", "completion", 1, 2, 0.5)
    assert_figure(a, "clinician", "T3", "2026Q2", "completion", 1, 1, 1.0)
    # dose adherence: P2 has none -> Q2 network 1.1 / 1; T2 0/0 empty.
    assert_figure(a, "network", "all", "2026Q2", "dose_adherence", 1.1, 1, 1.1)
    assert_figure(a, "clinician", "T2", "2026Q2", "dose_adherence", 0, 0, nan)
    # held back (>= 1 held-back run): P1 1 yes; P2 0 no; P3 2 yes -> Q2 network 1/2.
    assert_figure(a, "clinician", "T1", "2026Q1", "held_back_share", 1, 1, 1.0)
    assert_figure(a, "network", "all", "2026Q2", "held_back_share", 1, 2, 0.5)
    # activity target: P2 no activity -> Q2 network 1.0 / 1 (P3).
    assert_figure(a, "network", "all", "2026Q2", "activity_target_met", 1.0, 1, 1.0)
    # follow-up present (any measure): P1 yes, P2 yes, P3 no -> Q2 network 1/2, C2 0/1.
    assert_figure(a, "network", "all", "2026Q2", "followup_questionnaire", 1, 2, 0.5)
    assert_figure(a, "clinic", "C2", "2026Q2", "followup_questionnaire", 0, 1, 0.0)
    # NPRS with both scores: P1 (improvement 3, responder), P2 (1, not); P3 no follow-up.
    assert_figure(a, "clinician", "T1", "2026Q1", "nprs_responder", 1, 1, 1.0)
    assert_figure(a, "network", "all", "2026Q2", "nprs_responder", 0, 1, 0.0)
    assert_figure(a, "network", "all", "2026Q2", "nprs_improvement", 1.0, 1, 1.0)
    assert_figure(a, "clinician", "T3", "2026Q2", "nprs_improvement", 0, 0, nan)
    # referrals: P2 by discharge_reason referred_surgery, P3 by a surgical_referral treatment;
    # P1 neither -> Q1 0/1, Q2 2/2.
    assert_figure(a, "network", "all", "2026Q1", "referral_injection_surgery", 0, 1, 0.0)
    assert_figure(a, "network", "all", "2026Q2", "referral_injection_surgery", 2, 2, 1.0)
    # manual therapy: P1 soft_tissue, P3 joint_mobilisation, P2 none -> Q2 1/2.
    # education: P1 imaging, P2 activity, P3 none -> Q2 1/2 (C1 1/1, C2 0/1).
    assert_figure(a, "clinician", "T1", "2026Q1", "manual_therapy", 1, 1, 1.0)
    assert_figure(a, "network", "all", "2026Q2", "manual_therapy", 1, 2, 0.5)
    assert_figure(a, "clinic", "C1", "2026Q2", "education", 1, 1, 1.0)
    assert_figure(a, "clinic", "C2", "2026Q2", "education", 0, 1, 0.0)


def test_network_is_the_sum_of_clinics_and_clinics_of_their_clinicians(tiny):
    ds, tables = tiny
    a = audit_indicators(ds, tables, k=NO_SUPPRESSION)
    clinic_of = {"T1": "C1", "T2": "C1", "T3": "C2"}
    for column in ("numerator", "denominator"):
        wide = a.pivot_table(
            index=["quarter", "indicator"], columns="unit", values=column, dropna=False
        )
        if column == "denominator":
            wide = wide.dropna()  # counts have no denominator
        pd.testing.assert_series_equal(
            wide["all"], wide["C1"] + wide["C2"], check_names=False, atol=1e-12
        )
        for clinic in ("C1", "C2"):
            members = [t for t, c in clinic_of.items() if c == clinic]
            pd.testing.assert_series_equal(
                wide[clinic], wide[members].sum(axis=1), check_names=False, atol=1e-12
            )


def test_quarters_selects_and_fills_empty_quarters(tiny):
    ds, tables = tiny
    a = audit_indicators(ds, tables, quarters=["2026Q2", "2026Q3"], k=NO_SUPPRESSION)
    assert sorted(a["quarter"].unique()) == ["2026Q2", "2026Q3"]
    # nothing is dated in 2026Q3: counts 0, proportions 0/0 (empty)
    assert_figure(a, "network", "all", "2026Q3", "sessions", 0, np.nan, 0)
    assert_figure(a, "network", "all", "2026Q3", "completion", 0, 0, np.nan)


# --- suppression -------------------------------------------------------------------------------


def cohort_with_session_counts(counts: dict[tuple[str, str | None], int], missing_24h=None):
    """One patient per (clinic, clinician) with that many 2026Q1 sessions, all without flare."""
    missing_24h = missing_24h or {}
    patients, rows = [], []
    for number, ((clinic, clinician), n) in enumerate(counts.items()):
        patient = f"P{number}"
        patients.append((patient, clinic, clinician, "2026-01-01", None, None))
        days = pd.date_range("2026-01-01", periods=n, freq="D")
        missing = missing_24h.get((clinic, clinician), 0)
        rows += [
            (patient, str(day.date()), False, None if i < missing else 1)
            for i, day in enumerate(days)
        ]
    tables = {
        "sessions": sessions_frame(rows),
        "progressions": progressions_frame([]),
        "patient_summary": summary_frame([(p[0], np.nan, np.nan, 0, np.nan) for p in patients]),
        "outcome_change": outcome_frame([]),
    }
    return dataset(patients), tables


def shown(audit, indicator, quarter="2026Q1"):
    rows = audit[(audit["indicator"] == indicator) & (audit["quarter"] == quarter)]
    return {
        unit: (None if suppressed else int(n))
        for unit, n, suppressed in rows[["unit", "numerator", "suppressed"]].itertuples(index=False)
    }


def test_small_counts_and_their_complement_in_the_clinic_are_suppressed():
    # C1 = T1 3 + T2 20 = 23; C2 = T3 30 + T4 12 = 42; network 65.
    # T1 = 3 is primary (1..4). C1 is published, so 23 - 20 would give T1 back: T2 is hidden too
    # (the next-smallest non-zero clinician of C1). C2's and the network's lines are complete.
    ds, tables = cohort_with_session_counts(
        {("C1", "T1"): 3, ("C1", "T2"): 20, ("C2", "T3"): 30, ("C2", "T4"): 12}
    )
    a = audit_indicators(ds, tables)
    assert shown(a, "sessions") == {
        "all": 65, "C1": 23, "C2": 42, "T1": None, "T2": None, "T3": 30, "T4": 12
    }  # fmt: skip
    hidden = a[a["suppressed"]]
    assert hidden[["numerator", "denominator", "value"]].isna().all().all()
    # one patient per clinician: active_patients 1 everywhere below the network (1..4), and
    # the network's 4 too.
    assert all(v is None for v in shown(a, "active_patients").values())


def test_secondary_suppression_climbs_the_hierarchy():
    # C1 = T1 10 + T2 12 = 22; C2 = T3 2 (its only clinician); C3 = T4 40; network 64.
    # T3 = 2 is primary. C2 = T3 exactly -> C2 hidden. Network: 64 - 22 - 40 gives C2 back ->
    # hide the smallest other clinic, C1 (22). C1 hidden but T1 + T2 published gives it back ->
    # hide C1's smallest clinician T1 (10). Now every line has 0 or >= 2 hidden cells:
    # network {C1, C2}, C1 {C1, T1}, C2 {C2, T3}, C3 {}.
    ds, tables = cohort_with_session_counts(
        {("C1", "T1"): 10, ("C1", "T2"): 12, ("C2", "T3"): 2, ("C3", "T4"): 40}
    )
    a = audit_indicators(ds, tables)
    assert shown(a, "sessions") == {
        "all": 64, "C1": None, "C2": None, "C3": 40, "T1": None, "T2": 12, "T3": None, "T4": 40
    }  # fmt: skip


def test_markers_are_part_of_what_a_reader_knows():
    # C1 = T1 1; C2 = T2 5; C3 = T3 30; network 36. T1 and C1 (1) are "<5"; C1 alone in the
    # network line -> C2 (5) hidden as "*"; C2 equals its only clinician, so T2 is hidden too.
    # Changed on purpose (issue 10 item 6): "*" is now a neutral marker (any count >= 0, since a
    # "<5" the markers alone would pin is shown "*"), so 36 - 30 = C1 + C2 = 6 leaves C1 in 1..4
    # and C3 (30) stays published; before, "*" meant >= 5, which forced C1 = 1 and hid C3.
    ds, tables = cohort_with_session_counts({("C1", "T1"): 1, ("C2", "T2"): 5, ("C3", "T3"): 30})
    a = audit_indicators(ds, tables)
    assert shown(a, "sessions") == {
        "all": 36, "C1": None, "C2": None, "C3": 30, "T1": None, "T2": None, "T3": 30
    }  # fmt: skip


def test_patients_without_a_clinician_keep_the_clinic_line_open():
    # C1 = T1 3 + (no clinician) 20 = 23; the unassigned 20 is never published, so 23 does not
    # give T1 back: only T1 is hidden.
    ds, tables = cohort_with_session_counts({("C1", "T1"): 3, ("C1", None): 20, ("C2", "T2"): 9})
    a = audit_indicators(ds, tables)
    assert shown(a, "sessions") == {"all": 32, "C1": 23, "C2": 9, "T1": None, "T2": 9}


def test_a_proportion_is_hidden_when_its_complement_is_small():
    # T3: 30 sessions, 2 without pain_24h -> 28/30 would reveal the 2 (1..4) -> hidden.
    # Network: 51 / 53 -> complement 2 -> hidden. The session counts themselves stay shown.
    ds, tables = cohort_with_session_counts(
        {("C1", "T1"): 11, ("C1", "T2"): 12, ("C2", "T3"): 30}, missing_24h={("C2", "T3"): 2}
    )
    a = audit_indicators(ds, tables)
    recorded = shown(a, "pain_24h_recorded")
    assert recorded["T3"] is None and recorded["all"] is None
    assert recorded["T1"] == 11 and recorded["T2"] == 12
    assert shown(a, "sessions") == {"all": 53, "C1": 23, "C2": 30, "T1": 11, "T2": 12, "T3": 30}


def test_every_line_has_zero_or_several_hidden_cells(tiny):
    ds, tables = tiny
    a = audit_indicators(ds, tables, k=3)
    a = a.assign(clinic=a["unit"].map({"T1": "C1", "T2": "C1", "T3": "C2", "C1": "C1", "C2": "C2"}))
    for (_, _), group in a.groupby(["quarter", "indicator"]):
        network = group[group["level"] == "network"]
        clinics = group[group["level"] == "clinic"]
        assert (network["suppressed"].sum() + clinics["suppressed"].sum()) != 1
        for clinic, members in group[group["level"] != "network"].groupby("clinic"):
            assert members["suppressed"].sum() != 1, clinic
    # no shown count is small: numerators of counts and proportions, every denominator
    visible = a[~a["suppressed"]]
    is_mean = visible["indicator"].map(lambda name: INDICATORS[name].kind == "mean")
    assert not visible.loc[~is_mean, "numerator"].between(1, 2).any()
    assert not visible["denominator"].between(1, 2).any()


# --- registry, parameters, quarters --------------------------------------------------------------


def test_registry_names_kinds_and_definitions():
    for name, indicator in INDICATORS.items():
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name)
        assert indicator.kind in {"count", "proportion", "mean"}
        assert indicator.cohort in {"session", "episode"}
        assert indicator.label and indicator.definition
    definitions = indicator_definitions(Protocol(pain_threshold=2.0, completion_attendance=0.8))
    text = definitions.set_index("indicator")["definition"]
    assert "2/10" in text["flare_rate"]
    assert "80%" in text["completion"]
    # defaults cite the protocol: 3/10, 75 %, NPRS MCID 2 points or 30 %
    assert "3/10" in INDICATORS["flare_rate"].definition
    assert "75%" in INDICATORS["completion"].definition
    assert "2 points or >= 30 %" in INDICATORS["nprs_responder"].definition
    # the responder rule is worded as the protocol sets it
    strict = indicator_definitions(Protocol(responder_rule="and")).set_index("indicator")
    assert "2 points and >= 30 %" in strict.loc["nprs_responder", "definition"]


def test_unknown_parameter_is_rejected(tiny):
    ds, tables = tiny
    with pytest.raises(TypeError, match="pain_treshold"):
        audit_indicators(ds, tables, pain_treshold=3)
    # protocol parameters travel in one Protocol, which checks its own names
    with pytest.raises(TypeError, match="pain_treshold"):
        Protocol(pain_treshold=3)


def test_completion_threshold_is_a_parameter(tiny):
    ds, tables = tiny
    a = audit_indicators(ds, tables, k=NO_SUPPRESSION, protocol=Protocol(completion_attendance=0.5))
    # attendance 0.5 (P2) and 0.75 (P3) both reach 0.5 -> 2/2
    assert_figure(a, "network", "all", "2026Q2", "completion", 2, 2, 1.0)


def test_latest_complete_quarter_and_previous_quarters(tiny):
    # a quarter is complete when its last day is on or before the last date in the data
    assert latest_complete_quarter(["2026-01-10", "2026-06-30"]) == "2026Q2"
    assert latest_complete_quarter(["2026-01-10", "2026-06-29"]) == "2026Q1"
    assert latest_complete_quarter(pd.Series(pd.to_datetime(["2026-01-01"]))) == "2025Q4"
    # today caps it: on 2026-06-30 the quarter ending that day is still running
    assert latest_complete_quarter(["2026-06-30"], today="2026-06-30") == "2026Q1"
    assert latest_complete_quarter(["2026-06-30"], today="2026-07-01") == "2026Q2"
    # tiny cohort: last date in any table is P2's discharge 2026-05-15 -> 2026Q1
    ds, _ = tiny
    assert latest_complete_quarter(ds) == "2026Q1"
    assert previous_quarters("2026Q2", 4) == ["2025Q2", "2025Q3", "2025Q4", "2026Q1"]
    assert previous_quarters("2026Q1", 1) == ["2025Q4"]
    with pytest.raises(ValueError, match="no dates"):
        latest_complete_quarter([])


def test_format_indicator_shows_markers_for_suppressed_rows():
    # same cohort as test_small_counts_and_their_complement_in_the_clinic_are_suppressed
    ds, tables = cohort_with_session_counts(
        {("C1", "T1"): 3, ("C1", "T2"): 20, ("C2", "T3"): 30, ("C2", "T4"): 12}
    )
    audit = audit_indicators(ds, tables)
    small = audit.attrs["small_count"]
    text = pd.Series(
        [format_indicator(row, primary=bool(small[i]), k=5) for i, row in audit.iterrows()],
        index=pd.MultiIndex.from_frame(audit[["quarter", "unit", "indicator"]]),
    )
    # T1: 3 sessions, a small count of its own -> "<5"; C1: 3 + 20 = 23 shown
    assert text[("2026Q1", "T1", "sessions")] == "<5"
    assert text[("2026Q1", "C1", "sessions")] == "23"
    # T3: 30 sessions, none with a flare, all with pain known -> 30/30 = 100%
    assert text[("2026Q1", "T3", "pain_threshold_adherence")] == "100% (30/30)"
    # a row hidden only to protect another shows the neutral marker
    hidden = audit["suppressed"] & ~small
    assert hidden.any()
    assert set(text[hidden.to_numpy()]) == {"*"}
