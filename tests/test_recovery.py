"""End to end: files -> loader -> metrics -> analysis recover what the generator planted.

Runs on the shipped demo cohort (whose ground_truth.json is the answer) and on a second,
independently seeded cohort, so that the checks are not tuned to one sample.

The generator plants a fall of pain_24h over care (``pain_24h_weekly_change`` per week) beside the
dose-response. Volume changes drift with the week of care, so hipdata's dose-response slopes, which
do not adjust for week, carry an omitted-variable bias on trended cohorts: the tests below check
the slopes against the planted value on cohorts whose trend is switched off, and on the trended
ones check that the slopes equal planted value + trend x (week-on-dose regression), the textbook
omitted-variable formula, while a week-adjusted fit written here recovers the planted value.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import hipdata
from hipdata.analysis.outcomes import adherence_outcome_association
from hipdata.analysis.progression import progression_rates
from hipdata.analysis.response import dose_response_slope, dose_response_within_between
from hipdata.analysis.trajectories import fit_pain_trajectory
from hipdata.metrics import compute_all
from hipdata.synth import Planted, generate, write_cohort

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"


@pytest.fixture(scope="module", params=["demo", "seed-11"])
def cohort(request, tmp_path_factory):
    if request.param == "demo":
        folder = DEMO
    else:
        folder = tmp_path_factory.mktemp("cohort")
        write_cohort(folder, 400, seed=11)
    truth = json.loads((folder / "ground_truth.json").read_text())
    ds = hipdata.load(folder, today="2026-11-27")
    return ds, compute_all(ds), truth


@pytest.fixture(scope="module", params=[(300, 20261127), (400, 11)], ids=["demo-seed", "seed-11"])
def untrended(request, tmp_path_factory):
    """The same seeds with the planted time trend switched off (every other draw is the same)."""
    n_patients, seed = request.param
    flat = Planted(
        pain_24h_weekly_change=0.0, pain_24h_weekly_change_sd=0.0, pain_during_weekly_change=0.0
    )
    folder = generate(n_patients, seed=seed, planted=flat).write(tmp_path_factory.mktemp("flat"))
    truth = json.loads((folder / "ground_truth.json").read_text())
    return compute_all(hipdata.load(folder, today="2026-11-27")), truth


def _session_dose(tables) -> pd.DataFrame:
    """Per session with a volume change and pain_24h: dose (largest change / 10 %), pain, week."""
    per = (
        tables["family_sessions"]
        .groupby(["patient_id", "date"])
        .agg(
            dose=("volume_change_pct", "max"),
            pain_24h=("pain_24h", "max"),
            week=("week", "first"),
        )
        .astype(float)
        .dropna()
        .reset_index()
    )
    per["dose"] = per["dose"] / 10
    return per


def test_nothing_quarantined_in_generated_data(cohort):
    ds, _, _ = cohort
    assert len(ds.quarantine) == 0


def test_dose_response_slope_recovered_within_its_ci(untrended):
    tables, truth = untrended
    assert truth["pain_24h_weekly_change"] == 0.0
    slope = dose_response_slope(tables["family_sessions"])
    assert slope["ci_low"] <= truth["dose_response_per_10pct"] <= slope["ci_high"], slope
    within = dose_response_within_between(tables["family_sessions"]).set_index("part")
    row = within.loc["within"]
    assert row["ci_low"] <= truth["dose_response_per_10pct"] <= row["ci_high"], row


def test_dose_response_under_the_time_trend(cohort):
    _, tables, truth = cohort
    planted, trend = truth["dose_response_per_10pct"], truth["pain_24h_weekly_change"]
    per = _session_dose(tables)
    # Omitted-variable formula: a slope fitted without week = planted + trend x delta, where delta
    # is the slope of week on dose in the same design (pooled: OLS with a constant; within: both
    # centred on the patient's mean).
    delta_pooled = sm.OLS(per["week"], sm.add_constant(per["dose"])).fit().params["dose"]
    centred = per[["dose", "week"]] - per.groupby("patient_id")[["dose", "week"]].transform("mean")
    delta_within = sm.OLS(centred["week"], centred["dose"]).fit().params["dose"]
    assert delta_pooled > 0 and delta_within > 0  # doses grow over care: the bias is downward

    pooled = dose_response_slope(tables["family_sessions"])
    assert pooled["ci_low"] > 0
    assert abs(pooled["estimate"] - (planted + trend * delta_pooled)) < 3 * pooled["std_error"]
    within = dose_response_within_between(tables["family_sessions"]).set_index("part")
    row = within.loc["within"]
    assert row["ci_low"] > 0
    assert abs(row["estimate"] - (planted + trend * delta_within)) < 3 * row["std_error"]

    # With week in the model (hipdata's dose-response functions have no week term), the planted
    # slope is recovered: patient fixed effects, errors clustered by patient.
    fit = smf.ols("pain_24h ~ dose + week + C(patient_id)", per).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(per["patient_id"])[0]}
    )
    assert abs(fit.params["dose"] - planted) < 3 * fit.bse["dose"]


def test_pain_trajectory_falls_and_recovers_the_planted_weekly_change(cohort):
    _, tables, truth = cohort
    sessions = tables["sessions"]
    raw = fit_pain_trajectory(sessions).summary.set_index("term").loc["week"]
    assert raw["ci_high"] < 0  # pain in the 24 h after sessions falls over care
    # The raw slope is the planted fall plus the drift of doses over care (the dose-response
    # term grows with week); take the planted dose term out and the planted fall is recovered.
    largest = tables["family_sessions"].groupby(["patient_id", "date"])["volume_change_pct"].max()
    sessions = sessions.join(largest.rename("largest"), on=["patient_id", "date"])
    dose = truth["dose_response_per_10pct"] * sessions["largest"].astype(float).fillna(0.0) / 10
    sessions["pain_adjusted"] = sessions["pain_24h"].astype(float) - dose
    adjusted = fit_pain_trajectory(sessions, outcome="pain_adjusted")
    row = adjusted.summary.set_index("term").loc["week"]
    planted = truth["pain_24h_weekly_change"]
    assert row["ci_low"] <= planted <= row["ci_high"], row
    assert planted < raw["estimate"] < 0


def test_early_clinician_has_the_lowest_on_criteria_share(cohort):
    ds, tables, truth = cohort
    rates = progression_rates(tables["progressions"], ds.patients, by="clinician_id")
    rates = rates.set_index("clinician_id")
    assert rates["on_criteria_share"].idxmin() == truth["early_clinician"]
    assert rates["early_share"].idxmax() == truth["early_clinician"]


def test_held_back_clinician_has_the_most_held_back_episodes(cohort):
    _, tables, truth = cohort
    summary = tables["patient_summary"]
    per_patient = summary.groupby("clinician_id")["held_back_episodes"].mean()
    total = summary.groupby("clinician_id")["held_back_episodes"].sum()
    assert per_patient.idxmax() == truth["held_back_clinician"]
    assert total.idxmax() == truth["held_back_clinician"]


def test_attendance_associated_with_nprs_improvement(cohort):
    ds, tables, truth = cohort
    fit = adherence_outcome_association(
        tables["outcome_change"], tables["patient_summary"], ds.patients, measure="nprs"
    ).set_index("term")
    row = fit.loc["attendance"]
    assert row["ci_low"] > 0  # improvement rises with attendance
    assert row["ci_low"] <= truth["attendance_effect_nprs"] <= row["ci_high"]


def test_pain_24h_missing_rate_recovered(cohort):
    _, tables, truth = cohort
    sessions = tables["sessions"]
    missing = sessions["pain_24h"].isna().mean()
    rate = truth["pain_24h_missing_rate"]
    # binomial standard error of a share over this many sessions; 4 SE keeps false alarms < 1e-4
    se = np.sqrt(rate * (1 - rate) / len(sessions))
    assert abs(missing - rate) < 4 * se
