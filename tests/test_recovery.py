"""End to end: files -> loader -> metrics -> analysis recover what the generator planted.

Runs on the shipped demo cohort (whose ground_truth.json is the answer) and on a second,
independently seeded cohort, so that the checks are not tuned to one sample.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import hipdata
from hipdata.analysis.outcomes import adherence_outcome_association
from hipdata.analysis.progression import progression_rates
from hipdata.analysis.response import dose_response_slope
from hipdata.metrics import compute_all
from hipdata.synth import write_cohort

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


def test_nothing_quarantined_in_generated_data(cohort):
    ds, _, _ = cohort
    assert len(ds.quarantine) == 0


def test_dose_response_slope_recovered_within_its_ci(cohort):
    _, tables, truth = cohort
    slope = dose_response_slope(tables["family_sessions"])
    assert slope["ci_low"] <= truth["dose_response_per_10pct"] <= slope["ci_high"], slope


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
