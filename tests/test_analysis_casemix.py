"""Case-mix adjusted comparison (hipdata.analysis.casemix)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from hipdata.analysis.casemix import (
    c_statistic,
    casemix_comparison,
    fit_casemix,
    poisson_binomial_pmf,
    poisson_binomial_tails,
)


def synthetic_episodes(seed: int = 1, n: int = 600, clinic_effect: float = 0.0) -> pd.DataFrame:
    """Episodes whose outcome depends on the case mix, plus a planted effect of clinic C3."""
    rng = np.random.default_rng(seed)
    clinic = rng.choice(["C1", "C2", "C3", "C4"], size=n)
    # C3 sees older patients with higher baseline pain: the case mix the model must take out
    age = rng.integers(20, 80, size=n) + np.where(clinic == "C3", 8, 0)
    baseline = np.clip(rng.integers(3, 10, size=n) + (clinic == "C3"), 0, 10).astype(float)
    condition = rng.choice(["hip_oa", "fai_syndrome", "gtps", "groin_adductor"], size=n)
    sex = rng.choice(["F", "M"], size=n)
    athlete = rng.random(n) < 0.2
    log_odds = (
        0.3 * (baseline - 6)
        - 0.03 * (age - 50)
        - 0.6 * (condition == "hip_oa")
        + 0.5 * athlete
        + clinic_effect * (clinic == "C3")
    )
    responder = rng.random(n) < 1 / (1 + np.exp(-log_odds))
    improvement = 0.4 * baseline - 0.02 * age + 0.8 * clinic_effect * (clinic == "C3")
    improvement = improvement + rng.normal(0, 1.5, size=n)
    return pd.DataFrame(
        {
            "patient_id": [f"P{i:04d}" for i in range(n)],
            "clinic_id": clinic,
            "clinician_id": clinic,
            "quarter": "2026Q3",
            "baseline": baseline,
            "improvement": improvement,
            "responder": responder.astype(int),
            "age_years": pd.array(age, dtype="Int64"),
            "sex": sex,
            "condition": condition,
            "athlete": pd.array(athlete, dtype="boolean"),
        }
    )


def test_poisson_binomial_against_brute_force_enumeration():
    p = np.array([0.1, 0.35, 0.5, 0.8, 0.95])
    brute = np.zeros(len(p) + 1)
    for outcome in itertools.product([0, 1], repeat=len(p)):
        outcome = np.array(outcome)
        brute[outcome.sum()] += np.prod(np.where(outcome == 1, p, 1 - p))
    assert poisson_binomial_pmf(p) == pytest.approx(brute, abs=1e-14)
    upper, lower = poisson_binomial_tails(4, p)
    assert upper == pytest.approx(brute[4:].sum(), abs=1e-14)
    assert lower == pytest.approx(brute[:5].sum(), abs=1e-14)


def test_poisson_binomial_with_equal_p_is_binomial():
    from scipy.stats import binom

    assert poisson_binomial_pmf(np.full(40, 0.3)) == pytest.approx(
        binom.pmf(np.arange(41), 40, 0.3), abs=1e-12
    )


def test_c_statistic_by_hand():
    # events scored 0.35 and 0.8; non-events 0.1 and 0.4: pairs (0.35 > 0.1) yes, (0.35 > 0.4)
    # no, (0.8 > 0.1) yes, (0.8 > 0.4) yes -> 3 / 4; a tie counts 1/2.
    assert c_statistic([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert c_statistic([0, 1], [0.5, 0.5]) == 0.5


@pytest.mark.parametrize("indicator", ["nprs_responder", "nprs_improvement"])
def test_expected_sums_to_observed_over_the_fitting_population(indicator):
    # The score equations of a GLM with an intercept and canonical link: sum(y - mu) = 0.
    episodes = synthetic_episodes(seed=2, n=400)
    fit = fit_casemix(episodes, indicator)
    assert fit.expected.sum() == pytest.approx(fit.observed.sum(), rel=1e-8)
    table = casemix_comparison(episodes, fit, unit="clinic_id")
    if indicator == "nprs_responder":
        assert table["expected"].sum() == pytest.approx(table["observed"].sum(), rel=1e-8)
        assert 0.6 < fit.c_statistic < 0.9
        assert fit.calibration["mean_expected"].is_monotonic_increasing
        assert len(fit.calibration) == 10
    else:
        weighted = (table["expected"] * table["episodes"]).sum()
        assert weighted == pytest.approx((table["observed"] * table["episodes"]).sum())
        assert fit.sigma == pytest.approx(1.5, rel=0.1)


def test_planted_clinic_effect_is_recovered_after_adjustment():
    episodes = synthetic_episodes(seed=5, n=1200, clinic_effect=1.2)
    fit = fit_casemix(episodes, "nprs_responder")
    table = casemix_comparison(episodes, fit, unit="clinic_id").set_index("unit")
    assert table.loc["C3", "flag"] in ("above_95", "above_99.8")
    assert table.loc["C3", "ratio"] > 1.1
    assert table.loc[["C1", "C2", "C4"], "ratio"].lt(1.0).all()
    assert table.loc["C3", "ratio"] > table.loc["C3", "upper_95"]
    linear = fit_casemix(episodes, "nprs_improvement")
    means = casemix_comparison(episodes, linear, unit="clinic_id").set_index("unit")
    assert means.loc["C3", "flag"] == "above_99.8"
    assert means.loc["C3", "difference"] > 0.5


def test_no_planted_effect_flags_nobody_at_998():
    episodes = synthetic_episodes(seed=11, n=800, clinic_effect=0.0)
    fit = fit_casemix(episodes, "nprs_responder")
    table = casemix_comparison(episodes, fit, unit="clinic_id")
    assert not table["flag"].str.endswith("99.8").any()
    # the case mix alone makes C3's crude rate differ; adjusted, its O/E is near 1
    assert table.set_index("unit").loc["C3", "ratio"] == pytest.approx(1.0, abs=0.15)


def test_rare_levels_are_pooled_and_labelled():
    episodes = synthetic_episodes(seed=3, n=300)
    episodes.loc[:2, "condition"] = "jane doe dob 1961-03-04"  # free text, 3 episodes
    fit = fit_casemix(episodes, "nprs_responder")
    terms = " ".join(fit.coefficients["term"])
    assert "jane" not in terms
    assert "condition: groin_adductor" in terms or "condition: other" in terms
    assert fit.coefficients["std_error"].notna().all()
