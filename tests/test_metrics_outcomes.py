"""outcome_change: baseline and follow-up windows, improvement, responders (CONTRACT §4)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from hipdata import Dataset
from hipdata.metrics import OUTCOME_CHANGE_COLUMNS, outcome_change
from hipdata.outcome_measures import MEASURES

NaN = np.nan
START = pd.Timestamp("2026-03-02")
DISCHARGE = pd.Timestamp("2026-05-04")


def day(offset: int, base: pd.Timestamp = START) -> pd.Timestamp:
    return base + pd.Timedelta(days=offset)


def make_ds(scores: list[tuple], discharge: dict | None = None) -> Dataset:
    """``scores``: (patient, date, measure, score); every patient starts on START."""
    outcomes = pd.DataFrame(scores, columns=["patient_id", "date", "measure", "score"])
    ids = sorted(outcomes["patient_id"].unique())
    discharge = discharge or {}
    patients = pd.DataFrame(
        {
            "patient_id": ids,
            "clinic_id": "C1",
            "start_date": START,
            "discharge_date": [discharge.get(i, DISCHARGE) for i in ids],
        }
    )
    sets = pd.DataFrame(
        {"patient_id": ids, "date": START, "exercise": "bridge", "set": 1, "reps": 10}
    )
    # trusted frames (validate=False): some tests give measures outside the registry on purpose,
    # which the loader's rules would quarantine before outcome_change could see them
    return Dataset.from_frames(patients, sets, outcomes=outcomes, validate=False)


def row_of(table: pd.DataFrame, patient: str, measure: str = "nprs") -> pd.Series:
    (index,) = table.index[(table["patient_id"] == patient) & (table["measure"] == measure)]
    return table.loc[index]


# --- windows -------------------------------------------------------------------------------------


def test_baseline_window_edges():
    table = outcome_change(
        make_ds(
            [
                ("A", day(-30), "nprs", 6.0),  # start - 30: inside -> baseline 6
                ("B", day(7), "nprs", 6.0),  # start + 7: inside -> baseline 6
                ("C", day(8), "nprs", 6.0),  # start + 8: outside -> no baseline
                ("D", day(-31), "nprs", 6.0),  # start - 31: outside -> no baseline
            ]
        )
    )
    assert list(table.columns[: len(OUTCOME_CHANGE_COLUMNS)]) == OUTCOME_CHANGE_COLUMNS
    assert row_of(table, "A")["baseline"] == 6.0
    assert row_of(table, "B")["baseline"] == 6.0
    assert np.isnan(row_of(table, "C")["baseline"])
    assert np.isnan(row_of(table, "D")["baseline"])
    # a row for every patient and measure with any score, even without baseline or follow-up
    assert table["patient_id"].tolist() == ["A", "B", "C", "D"]


def test_baseline_is_the_closest_score_and_ties_go_to_the_earlier():
    table = outcome_change(
        make_ds(
            [
                # start - 2 (6) and start + 2 (7) are equally close -> the earlier, 6
                ("T", day(-2), "nprs", 6.0),
                ("T", day(2), "nprs", 7.0),
                # start - 10 (5) vs start + 3 (7): 3 days is closer -> 7
                ("U", day(-10), "nprs", 5.0),
                ("U", day(3), "nprs", 7.0),
            ]
        )
    )
    assert row_of(table, "T")["baseline"] == 6.0
    assert row_of(table, "T")["baseline_date"] == day(-2)
    assert row_of(table, "U")["baseline"] == 7.0


def test_followup_window_edges_and_latest_score():
    table = outcome_change(
        make_ds(
            [
                # both edges inside: discharge - 14 (4) and discharge + 30 (3) -> the latest, 3
                ("A", day(0), "nprs", 6.0),
                ("A", day(-14, DISCHARGE), "nprs", 4.0),
                ("A", day(30, DISCHARGE), "nprs", 3.0),
                # only discharge - 14 -> 4
                ("B", day(0), "nprs", 6.0),
                ("B", day(-14, DISCHARGE), "nprs", 4.0),
                # discharge - 15 and discharge + 31 are outside -> no follow-up, and no
                # carrying forward of the earlier score
                ("C", day(0), "nprs", 6.0),
                ("C", day(-15, DISCHARGE), "nprs", 4.0),
                ("C", day(31, DISCHARGE), "nprs", 3.0),
            ]
        )
    )
    assert row_of(table, "A")["followup"] == 3.0
    assert row_of(table, "A")["followup_date"] == day(30, DISCHARGE)
    assert row_of(table, "B")["followup"] == 4.0
    c = row_of(table, "C")
    assert np.isnan(c["followup"]) and np.isnan(c["improvement"])
    assert pd.isna(c["responder"])  # empty when the follow-up is missing


def test_no_followup_while_in_care():
    # in care (no discharge date): a later score is not a follow-up
    table = outcome_change(
        make_ds([("A", day(0), "nprs", 6.0), ("A", day(40), "nprs", 2.0)], {"A": pd.NaT})
    )
    a = row_of(table, "A")
    assert a["baseline"] == 6.0
    assert np.isnan(a["followup"])
    assert pd.isna(a["responder"])


def test_followup_must_be_after_the_baseline():
    # a 4-day episode: the start-day score is the baseline and also inside the follow-up window;
    # it cannot be its own follow-up. With a later score (start + 3) that one is the follow-up.
    short = day(4)
    table = outcome_change(
        make_ds(
            [
                ("A", day(0), "nprs", 6.0),
                ("B", day(0), "nprs", 6.0),
                ("B", day(3), "nprs", 3.0),
            ],
            {"A": short, "B": short},
        )
    )
    assert np.isnan(row_of(table, "A")["followup"])
    b = row_of(table, "B")
    assert (b["baseline"], b["followup"]) == (6.0, 3.0)


def test_missing_baseline_keeps_the_followup_but_no_responder():
    table = outcome_change(make_ds([("A", day(0, DISCHARGE), "nprs", 3.0)]))
    a = row_of(table, "A")
    assert np.isnan(a["baseline"]) and a["followup"] == 3.0
    assert pd.isna(a["responder"])


# --- improvement and responders ------------------------------------------------------------------


def pairs_ds(pairs: dict[str, tuple[str, float, float]]) -> Dataset:
    scores = []
    for patient, (measure, baseline, followup) in pairs.items():
        scores += [(patient, day(0), measure, baseline), (patient, DISCHARGE, measure, followup)]
    return make_ds(scores)


def test_nprs_responders_by_points_and_by_percent():
    table = outcome_change(
        pairs_ds(
            {
                # lower is better: 6 -> 4 improves by 2 (>= 2 points) and 33.3 % -> responder
                "A": ("nprs", 6.0, 4.0),
                # 5 -> 3.5: 1.5 points < 2, but 100 x 1.5 / 5 = 30 % (>= 30 %) -> responder
                "B": ("nprs", 5.0, 3.5),
                # 8 -> 6.5: 1.5 points, 18.75 % -> not
                "C": ("nprs", 8.0, 6.5),
                # 0.7 -> 0.49: 0.21 / 0.7 = 30 % exactly (floating point gives 29.999...96:
                # the 1e-9 tolerance keeps it inclusive) -> responder
                "D": ("nprs", 0.7, 0.49),
                # baseline 0: pct empty; 0 points -> not a responder
                "E": ("nprs", 0.0, 0.0),
                # worse: 4 -> 6 is -2 points, -50 % -> not
                "F": ("nprs", 4.0, 6.0),
                # unchanged: 0 points and 0 % (a plain 0, not the -0.0 of -1 x 0) -> not
                "G": ("nprs", 4.0, 4.0),
            }
        )
    )
    expected = {
        "A": (2.0, 100 * 2 / 6, True),
        "B": (1.5, 30.0, True),
        "C": (1.5, 18.75, False),
        "D": (0.21, 30.0, True),
        "E": (0.0, NaN, False),
        "F": (-2.0, -50.0, False),
        "G": (0.0, 0.0, False),
    }
    for patient, (improvement, pct, responder) in expected.items():
        got = row_of(table, patient)
        assert got["improvement"] == pytest.approx(improvement), patient
        assert got["pct_improvement"] == pytest.approx(pct, nan_ok=True), patient
        assert bool(got["responder"]) is responder, patient
    assert table["responder"].dtype == "boolean"
    assert not np.signbit(
        row_of(table, "G")[["improvement", "pct_improvement"]].astype(float)
    ).any()


def test_responder_rule_and_needs_both_mcids():
    table = outcome_change(
        pairs_ds(
            {
                # 6 -> 4: 2 points and 33.3 % -> both -> responder under either rule
                "A": ("nprs", 6.0, 4.0),
                # 5 -> 3.5: 1.5 points (< 2), 30 % -> "or" only
                "B": ("nprs", 5.0, 3.5),
                # 9 -> 7: 2 points, 22.2 % (< 30) -> "or" only
                "C": ("nprs", 9.0, 7.0),
                # 10 -> 7: 3 points, exactly 30 % -> both
                "D": ("nprs", 10.0, 7.0),
                # hoos_pain has no percentage MCID: 40 -> 50 is 10 points -> responder under both
                "H": ("hoos_pain", 40.0, 50.0),
            }
        ),
        responder_rule="and",
    )
    got = {
        p: bool(row_of(table, p, m)["responder"])
        for p, m in [("A", "nprs"), ("B", "nprs"), ("C", "nprs"), ("D", "nprs"), ("H", "hoos_pain")]
    }
    assert got == {"A": True, "B": False, "C": False, "D": True, "H": True}
    either = outcome_change(pairs_ds({"B": ("nprs", 5.0, 3.5), "C": ("nprs", 9.0, 7.0)}))
    assert either["responder"].tolist() == [True, True]
    with pytest.raises(ValueError, match="responder_rule"):
        outcome_change(pairs_ds({"A": ("nprs", 6.0, 4.0)}), responder_rule="both")


def test_higher_is_better_measures_are_signed_positive_when_better():
    table = outcome_change(
        pairs_ds(
            {
                # HOOS pain 50 -> 62: +12 >= 10 -> responder; 100 x 12 / 50 = 24 %
                "A": ("hoos_pain", 50.0, 62.0),
                # 50 -> 55: +5 < 10 -> not
                "B": ("hoos_pain", 50.0, 55.0),
                # 60 -> 50: -10 (worse) -> not
                "C": ("hoos_pain", 60.0, 50.0),
                # EQ-5D 0.5 -> 0.57: +0.07 = MCID (0.57 - 0.5 is 0.0699...95 in floating point,
                # inside the tolerance) -> responder; no percent MCID for EQ-5D
                "D": ("eq5d_index", 0.5, 0.57),
                # iHOT-12 40 -> 52: +12 < 13 -> not, although 30 % (ihot12 has no percent MCID)
                "E": ("ihot12", 40.0, 52.0),
            }
        )
    )
    a = row_of(table, "A", "hoos_pain")
    assert (a["improvement"], a["pct_improvement"], bool(a["responder"])) == (12.0, 24.0, True)
    assert bool(row_of(table, "B", "hoos_pain")["responder"]) is False
    c = row_of(table, "C", "hoos_pain")
    assert c["improvement"] == -10.0 and bool(c["responder"]) is False
    assert bool(row_of(table, "D", "eq5d_index")["responder"]) is True
    assert bool(row_of(table, "E", "ihot12")["responder"]) is False


def test_mcid_comes_from_the_registry_passed_in():
    # with an nprs MCID of 3 points (30 % kept), 6 -> 4 (2 points, 33 %) still responds by
    # percent; with the percent MCID removed it does not
    ds = pairs_ds({"A": ("nprs", 6.0, 4.0)})
    stricter = dict(MEASURES, nprs=dataclasses.replace(MEASURES["nprs"], mcid_points=3.0))
    assert bool(outcome_change(ds, measures=stricter).loc[0, "responder"]) is True
    no_pct = dict(stricter, nprs=dataclasses.replace(stricter["nprs"], mcid_pct=None))
    assert bool(outcome_change(ds, measures=no_pct).loc[0, "responder"]) is False


def test_windows_are_parameters():
    # a score at start + 8 is outside the default window, inside (-30, 14)
    ds = make_ds([("A", day(8), "nprs", 6.0)])
    assert np.isnan(outcome_change(ds).loc[0, "baseline"])
    assert outcome_change(ds, baseline_window_days=(-30, 14)).loc[0, "baseline"] == 6.0


def test_measure_outside_the_registry_keeps_its_scores_only():
    table = outcome_change(pairs_ds({"A": ("clinic_scale", 10.0, 20.0)}))
    a = table.iloc[0]
    assert (a["baseline"], a["followup"]) == (10.0, 20.0)
    assert np.isnan(a["improvement"]) and pd.isna(a["responder"])
