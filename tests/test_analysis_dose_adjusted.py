"""The dose-response slope adjusted for the time trend of pain over care (issue 7 follow-up).

Pain falls over a course of care while volume steps grow, so the unadjusted slope is biased
towards zero (demo: 0.187 against the planted 0.2); ``adjust_for=("week",)`` compares sessions at
the same point of care.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hipdata.analysis.response import dose_response_slope, dose_response_within_between

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"

# 8 patients x 5 weekly sessions (one family per session): volume change (%) and pain_24h
# (the within/between data of test_analysis_response, with a session a week: weeks 0..4)
CHANGES = [24, 1, 14, 16, 29, 21, 39, 24, 13, 32, 7, -8, 28, 3, 25, 24, 32, 43, 17, 1, 27, 16, 21,
           16, -20, -6, 6, 10, 8, 17, 20, -23, 8, -14, -18, 8, 16, 43, 4, 36]  # fmt: skip
PAINS = [4.1, 3.4, 4.1, 2.9, 4.5, 2.0, 2.1, 2.2, 0.4, 1.5, 0.7, 1.1, 2.0, 1.7, 1.9, 2.1, 3.1, 2.3,
         1.9, 2.1, 3.3, 2.7, 1.7, 2.9, 1.6, 3.4, 3.1, 3.8, 3.4, 4.5, 5.3, 3.4, 3.6, 3.9, 3.3, 0.2,
         2.4, 0.9, 1.5, 2.2]  # fmt: skip


def weekly_sessions() -> pd.DataFrame:
    """family_sessions columns the dose-response functions read, one family per session."""
    index = np.arange(len(CHANGES))
    day = 7 * (index % 5) + 1
    return pd.DataFrame(
        {
            "patient_id": [f"P{i // 5}" for i in index],
            "date": pd.Timestamp("2026-01-05") + pd.to_timedelta(day, unit="D"),
            "week": day // 7,
            "family": "extensors",
            "volume_change_pct": np.array(CHANGES, dtype="float64"),
            "pain_24h": PAINS,
        }
    )


def test_adjusted_slope_matches_r_lm_with_cluster_robust_errors():
    # R 4.2.2, sandwich 3.0.2: x = change / 10
    #   m <- lm(pain_24h ~ x + week, d); sqrt(diag(vcovCL(m, cluster = ~patient_id, type = "HC1")))
    #   coef: (Intercept) 2.71611411619, x -0.06020200398, week -0.02591565531
    #   SE:   x 0.1117461546
    result = dose_response_slope(weekly_sessions(), adjust_for=("week",))
    assert result["estimate"] == pytest.approx(-0.06020200398, rel=1e-8)
    assert result["std_error"] == pytest.approx(0.1117461546, rel=1e-8)
    assert result["intercept"] == pytest.approx(2.71611411619, rel=1e-8)
    assert result["covariates"]["week"] == pytest.approx(-0.02591565531, rel=1e-8)
    assert result["adjusted_for"] == ("week",)
    assert (result["n_sessions"], result["n_patients"]) == (40, 8)


def test_adjusted_within_between_matches_lme4():
    # R 4.2.2, lme4 1.1.31: m = ave(x, patient_id); w = x - m
    #   lmer(pain_24h ~ w + m + week + (1 | patient_id), d, REML = TRUE); isSingular FALSE
    #   fixef w 0.2553503382 (SE 0.07219684202), m -0.6614691995 (SE 0.32642570684),
    #   week -0.001460348789 (SE 0.06748184407); m - w = -0.9168195377 (SE 0.3343144120)
    table = dose_response_within_between(weekly_sessions(), adjust_for=("week",))
    table = table.set_index("part")
    assert table.loc["within", "estimate"] == pytest.approx(0.2553503382, rel=1e-5)
    assert table.loc["within", "std_error"] == pytest.approx(0.07219684202, rel=1e-4)
    assert table.loc["between", "estimate"] == pytest.approx(-0.6614691995, rel=1e-5)
    assert table.loc["between", "std_error"] == pytest.approx(0.32642570684, rel=1e-4)
    assert table.loc["between_minus_within", "estimate"] == pytest.approx(-0.9168195377, rel=1e-5)
    assert table.loc["between_minus_within", "std_error"] == pytest.approx(0.3343144120, rel=1e-4)
    # the pooled row is the adjusted OLS slope (lm above)
    assert table.loc["pooled", "estimate"] == pytest.approx(-0.06020200398, rel=1e-8)
    assert table.attrs["adjusted_for"] == ("week",)


def test_unknown_covariate_is_named():
    with pytest.raises(ValueError, match="adjust_for: no column 'weeks'"):
        dose_response_slope(weekly_sessions(), adjust_for=("weeks",))


def test_unadjusted_default_is_unchanged():
    # same as before the keyword existed: R lm(pain_24h ~ x, d) on these sessions
    plain = dose_response_slope(weekly_sessions())
    assert plain["adjusted_for"] == () and plain["covariates"] == {}
    x = np.array(CHANGES) / 10
    # OLS slope by hand: cov(x, y) / var(x)
    expected = np.cov(x, PAINS)[0, 1] / np.var(x, ddof=1)
    assert plain["estimate"] == pytest.approx(expected, rel=1e-10)


@pytest.fixture(scope="module")
def demo_family_sessions() -> pd.DataFrame:
    import hipdata
    from hipdata.metrics import compute_all

    return compute_all(hipdata.load(DEMO))["family_sessions"]


def test_adjusted_slope_recovers_the_demo_ground_truth(demo_family_sessions):
    truth = json.loads((DEMO / "ground_truth.json").read_text())
    planted = truth["dose_response_per_10pct"]  # 0.2
    plain = dose_response_slope(demo_family_sessions)
    adjusted = dose_response_slope(demo_family_sessions, adjust_for=("week",))
    # unadjusted: 0.1868 [0.1797, 0.1939] misses the planted 0.2 (pain falls over care while
    # volume steps grow)
    assert plain["ci_high"] < planted
    # adjusted: 0.1935 [0.1869, 0.2002] covers it; what remains is latent pain clipped at 0
    # (the generator rounds and clips pain_24h to 0..10), which attenuates a little
    assert adjusted["ci_low"] <= planted <= adjusted["ci_high"]
    assert abs(adjusted["estimate"] - planted) < abs(plain["estimate"] - planted)
    # the time trend it adjusts for is the planted one: pain_24h_weekly_change -0.1 per week
    # (each patient's own slope with sd 0.03 around it)
    week = adjusted["covariates"]["week"]
    assert week == pytest.approx(truth["pain_24h_weekly_change"], abs=0.02)
    parts = dose_response_within_between(demo_family_sessions, adjust_for=("week",))
    within = parts.set_index("part").loc["within"]
    assert within["ci_low"] <= planted <= within["ci_high"]
