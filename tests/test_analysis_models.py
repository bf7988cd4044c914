"""Tests for hipdata.analysis.models, hipdata.analysis.trajectories and the pain-trajectory plot."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402

from hipdata.analysis.intervals import t_mean_ci, wilson_ci  # noqa: E402
from hipdata.analysis.models import fit_mixed  # noqa: E402
from hipdata.analysis.trajectories import fit_pain_trajectory, weekly_pain  # noqa: E402
from hipdata.plots.pain import plot_pain_trajectory  # noqa: E402

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def sleepstudy() -> pd.DataFrame:
    return pd.read_csv(DATA / "sleepstudy.csv")


def simulated_sessions(seed: int = 3, n_patients: int = 60, n_weeks: int = 10) -> pd.DataFrame:
    """Sessions with planted pain_24h = 4 - 0.3 week + b0 + b1 week + e; 10 % pain missing."""
    rng = np.random.default_rng(seed)
    patient = np.repeat(np.arange(n_patients), n_weeks)
    week = np.tile(np.arange(n_weeks), n_patients)
    intercept_dev = rng.normal(0, 1.0, n_patients)[patient]
    slope_dev = rng.normal(0, 0.1, n_patients)[patient]
    pain = 4.0 + intercept_dev + (-0.3 + slope_dev) * week + rng.normal(0, 0.7, week.size)
    pain[rng.random(week.size) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "patient_id": [f"P{i:03d}" for i in patient],
            "clinic_id": np.where(patient < n_patients // 2, "C1", "C2"),
            "date": pd.Timestamp("2026-01-05") + pd.to_timedelta(7 * week, unit="D"),
            "week": week,
            "max_pain_during": pain + 1.0,
            "pain_24h": pain,
        }
    )


# --- the reference data -------------------------------------------------------------------


def test_sleepstudy_file_is_lme4s_data(sleepstudy):
    # lme4's sleepstudy: 180 rows, 18 subjects x 10 days, mean Reaction 298.5079.
    assert sleepstudy.shape == (180, 3)
    assert sleepstudy["Subject"].nunique() == 18
    assert sleepstudy["Reaction"].mean() == pytest.approx(298.5079, abs=1e-4)


def test_fit_mixed_reproduces_lme4_sleepstudy(sleepstudy):
    # R: summary(lmer(Reaction ~ Days + (Days | Subject), sleepstudy))  (REML)
    #   fixed: (Intercept) 251.405 (SE 6.825), Days 10.467 (SE 1.546)
    #   random: Subject (Intercept) SD 24.74, Days SD 5.92, Corr 0.07; Residual SD 25.59
    fit = fit_mixed(sleepstudy, "Reaction ~ Days", group="Subject", re_formula="~Days")
    summary = fit.summary.set_index("term")
    assert list(fit.summary.columns[:5]) == ["term", "estimate", "std_error", "ci_low", "ci_high"]
    assert summary.loc["Intercept", "estimate"] == pytest.approx(251.405, rel=1e-3)
    assert summary.loc["Days", "estimate"] == pytest.approx(10.467, rel=1e-3)
    assert summary.loc["Intercept", "std_error"] == pytest.approx(6.825, rel=1e-3)
    assert summary.loc["Days", "std_error"] == pytest.approx(1.546, rel=1e-3)
    assert summary.loc["sd(Intercept)", "estimate"] == pytest.approx(24.74, rel=1e-2)
    assert summary.loc["sd(Days)", "estimate"] == pytest.approx(5.92, rel=1e-2)
    assert summary.loc["cor(Intercept,Days)", "estimate"] == pytest.approx(0.07, abs=1e-2)
    assert summary.loc["sd(Residual)", "estimate"] == pytest.approx(25.59, rel=1e-2)
    # Wald interval: 10.467 +- 1.959964 x 1.546 = (7.437, 13.497)
    assert summary.loc["Days", "ci_low"] == pytest.approx(7.437, abs=2e-3)
    assert summary.loc["Days", "ci_high"] == pytest.approx(13.497, abs=2e-3)
    # the random part has no standard errors
    assert summary.loc["sd(Days)", ["std_error", "ci_low", "ci_high"]].isna().all()
    assert fit.converged
    assert fit.random_effects == "intercept+slope"
    # fit_mixed now minimises lme4's profiled REML criterion with scipy optimisers (issue 7): the
    # first run to reach the lowest criterion here is L-BFGS-B (statsmodels' "lbfgs" before).
    assert fit.method == "L-BFGS-B"
    assert fit.warnings == []
    assert (fit.n_obs, fit.n_groups, fit.n_dropped) == (180, 18, 0)
    assert fit.fixed_effects.to_dict() == pytest.approx(
        {"Intercept": 251.405, "Days": 10.467}, rel=1e-3
    )


# --- convergence checks and fallbacks ------------------------------------------------------


def test_fit_mixed_falls_back_to_random_intercept_when_slopes_do_not_vary():
    # Every patient's pain falls by exactly 0.5 per week: the noise pattern (+1, -1, -1, +1) over
    # weeks 0-3 is orthogonal to both intercept and slope, so the between-patient slope variance
    # is exactly zero (a singular fit) while intercepts vary. The fixed slope is then -0.5 exactly.
    rng = np.random.default_rng(7)
    n_patients = 12
    patient = np.repeat(np.arange(n_patients), 4)
    week = np.tile(np.arange(4), n_patients)
    pattern = np.tile([1.0, -1.0, -1.0, 1.0], n_patients)
    pain = (
        6.0
        + rng.normal(0, 1.5, n_patients)[patient]
        - 0.5 * week
        + rng.normal(0, 0.8, n_patients)[patient] * pattern
    )
    data = pd.DataFrame({"patient_id": [f"P{i}" for i in patient], "week": week, "pain": pain})
    fit = fit_mixed(data, "pain ~ week", group="patient_id", group_label="patient")
    assert fit.random_effects == "intercept"
    assert fit.re_formula == "1"
    assert fit.converged
    assert len(fit.warnings) == 1
    assert "random intercept per patient only" in fit.warnings[0]
    assert list(fit.summary["term"]) == [
        "Intercept",
        "week",
        "sd(Intercept)",
        "sd(Residual)",
    ]
    assert fit.fixed_effects["week"] == pytest.approx(-0.5, abs=1e-6)


def test_fit_mixed_with_three_patients_and_no_patient_variance_still_summarises():
    # Too few groups and no between-patient variance at all: the three patients share one series
    # (pain = 5 - 0.25 week + e, the same e), so patient means and slopes are identical and both
    # the slope model and the intercept model sit on the boundary; the fit reports it. With no
    # patient variance the estimates are the pooled OLS line.
    rng = np.random.default_rng(11)
    patient = np.repeat(np.arange(3), 8)
    week = np.tile(np.arange(8), 3).astype(float)
    pain = 5.0 - 0.25 * week + np.tile(rng.normal(0, 0.5, 8), 3)
    data = pd.DataFrame({"patient_id": patient.astype(str), "week": week, "pain": pain})
    fit = fit_mixed(data, "pain ~ week", group="patient_id", group_label="patient")
    assert fit.random_effects == "intercept"
    assert len(fit.warnings) == 2
    assert "variance between patients was estimated at (or near) zero" in fit.warnings[1]
    assert fit.n_groups == 3
    assert set(fit.summary["term"]) >= {"Intercept", "week", "sd(Intercept)", "sd(Residual)"}
    ols_slope, ols_intercept = np.polyfit(week, pain, 1)
    assert fit.fixed_effects["week"] == pytest.approx(ols_slope, abs=1e-3)
    assert fit.fixed_effects["Intercept"] == pytest.approx(ols_intercept, abs=1e-3)


def test_fit_mixed_needs_two_groups():
    data = pd.DataFrame({"patient_id": ["P1"] * 4, "week": [0, 1, 2, 3], "pain": [5, 4, 4, 3]})
    with pytest.raises(ValueError, match="at least two groups"):
        fit_mixed(data, "pain ~ week", group="patient_id")


def test_fit_mixed_is_silent(recwarn, capsys):
    fit_mixed(simulated_sessions(), "pain_24h ~ week", group="patient_id")
    assert len(recwarn) == 0
    assert capsys.readouterr() == ("", "")


# --- trajectories --------------------------------------------------------------------------


def test_fit_pain_trajectory_recovers_planted_slope_and_counts_missing():
    sessions = simulated_sessions()
    n_missing = int(sessions["pain_24h"].isna().sum())
    fit = fit_pain_trajectory(sessions)
    summary = fit.summary.set_index("term")
    # planted: intercept 4, slope -0.3 per week, SD(intercept) 1, SD(slope) 0.1, residual 0.7
    assert summary.loc["week", "ci_low"] <= -0.3 <= summary.loc["week", "ci_high"]
    assert summary.loc["Intercept", "ci_low"] <= 4.0 <= summary.loc["Intercept", "ci_high"]
    assert summary.loc["sd(Residual)", "estimate"] == pytest.approx(0.7, rel=0.1)
    assert fit.random_effects == "intercept+slope"
    assert fit.n_dropped == n_missing > 0
    assert fit.n_obs == len(sessions) - n_missing
    assert fit.n_groups == 60
    assert any(f"{n_missing} of {len(sessions)} sessions were left out" in w for w in fit.warnings)


def test_weekly_pain_matches_hand_computed_t_interval():
    sessions = pd.DataFrame(
        {
            "patient_id": ["P1", "P2", "P3", "P1", "P2"],
            "week": [0, 0, 0, 1, 1],
            "max_pain_during": [4.0, 6.0, 8.0, 5.0, np.nan],
            "pain_24h": [2.0, 3.0, 4.0, np.nan, np.nan],
        }
    )
    table = weekly_pain(sessions)
    assert list(table.columns) == ["week", "measure", "n", "mean", "ci_low", "ci_high"]
    row = table.set_index(["week", "measure"]).loc[(0, "pain_24h")]
    # week 0, pain_24h = 2, 3, 4: mean 3, sd 1, t(0.975, df 2) = 4.302653 (t table);
    # half width = 4.302653 x 1 / sqrt(3) = 2.484138 -> (0.515862, 5.484138)
    assert row["n"] == 3
    assert row["mean"] == pytest.approx(3.0)
    assert row["ci_low"] == pytest.approx(0.515862, abs=1e-6)
    assert row["ci_high"] == pytest.approx(5.484138, abs=1e-6)
    # max_pain_during 4, 6, 8: mean 6, sd 2 -> half width 4.302653 x 2 / sqrt(3) = 4.968276
    row = table.set_index(["week", "measure"]).loc[(0, "max_pain_during")]
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((1.031724, 10.968276), abs=1e-6)
    # week 1: one max_pain_during value (no interval), no pain_24h at all (no row)
    week1 = table.loc[table["week"] == 1]
    assert list(week1["measure"]) == ["max_pain_during"]
    assert week1["n"].iloc[0] == 1
    assert math.isnan(week1["ci_low"].iloc[0])


def test_weekly_pain_by_clinic():
    sessions = pd.DataFrame(
        {
            "clinic_id": ["C1", "C1", "C2", "C2"],
            "week": [0, 0, 0, 0],
            "max_pain_during": [1.0, 3.0, 5.0, 5.0],
            "pain_24h": [0.0, 2.0, 4.0, 6.0],
        }
    )
    table = weekly_pain(sessions, by="clinic_id")
    assert list(table.columns) == ["week", "clinic_id", "measure", "n", "mean", "ci_low", "ci_high"]
    means = table.set_index(["clinic_id", "measure"])["mean"]
    # C1 pain_24h (0 + 2) / 2 = 1; C2 (4 + 6) / 2 = 5; C2 max_pain_during 5, 5: sd 0 -> CI (5, 5)
    assert means[("C1", "pain_24h")] == 1.0
    assert means[("C2", "pain_24h")] == 5.0
    row = table.set_index(["clinic_id", "measure"]).loc[("C2", "max_pain_during")]
    assert (row["ci_low"], row["ci_high"]) == (5.0, 5.0)


def test_t_mean_ci_without_groups():
    # 1, 2, 3, 4, 5: mean 3, sd sqrt(2.5) = 1.581139; t(0.975, 4) = 2.776445 (t table)
    # half width 2.776445 x 1.581139 / sqrt(5) = 1.963243
    table = t_mean_ci(pd.DataFrame({"x": [1.0, 2, 3, 4, 5, np.nan]}), "x")
    assert table["n"].iloc[0] == 5
    assert table["ci_low"].iloc[0] == pytest.approx(3 - 1.963243, abs=1e-6)
    assert table["ci_high"].iloc[0] == pytest.approx(3 + 1.963243, abs=1e-6)


def test_wilson_interval_8_of_10():
    # Wilson (1927): centre (x + z^2/2) / (n + z^2), half width z / (n + z^2) sqrt(x(n-x)/n + z^2/4)
    # z = 1.959964, z^2 = 3.841459: centre 9.920729 / 13.841459 = 0.716738;
    # half 1.959964 / 13.841459 x sqrt(1.6 + 0.960365) = 0.226576 -> (0.4902, 0.9433)
    z = 1.959963984540054
    centre = (8 + z**2 / 2) / (10 + z**2)
    half = z / (10 + z**2) * math.sqrt(8 * 2 / 10 + z**2 / 4)
    low, high = wilson_ci([8, 0], [10, 0])
    assert (low[0], high[0]) == pytest.approx((centre - half, centre + half), abs=1e-9)
    assert (low[0], high[0]) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert math.isnan(low[1]) and math.isnan(high[1])


# --- plot ----------------------------------------------------------------------------------


def test_plot_pain_trajectory_draws_means_bands_model_and_limit():
    sessions = simulated_sessions()
    fit = fit_pain_trajectory(sessions)
    fig, ax = plt.subplots()
    returned = plot_pain_trajectory(data=sessions, model=fit, ax=ax)
    assert returned is ax
    labels = [line.get_label() for line in ax.lines]
    # two weekly-mean lines, the model line and the 3/10 limit
    assert len(ax.lines) == 4
    assert "3/10 limit" in labels
    limit = ax.lines[labels.index("3/10 limit")]
    assert list(limit.get_ydata()) == [3.0, 3.0]
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 2
    model_line = ax.lines[labels.index("Mixed model (intercept+slope)")]
    # the line starts at week 0, where the fixed-effect prediction is the intercept
    assert model_line.get_xdata()[0] == 0
    assert model_line.get_ydata()[0] == pytest.approx(fit.fixed_effects["Intercept"])
    weekly_line = ax.lines[labels.index("Pain in next 24 h")]
    expected = weekly_pain(sessions).query("measure == 'pain_24h'")["mean"].to_numpy()
    assert np.allclose(weekly_line.get_ydata(), expected)


def test_plot_pain_trajectory_from_weekly_table_per_clinic():
    weekly = weekly_pain(simulated_sessions(), by="clinic_id")
    ax = plot_pain_trajectory(data=weekly, measures=["pain_24h"], hue="clinic_id")
    labels = [line.get_label() for line in ax.lines]
    assert labels == ["Pain in next 24 h: C1", "Pain in next 24 h: C2", "3/10 limit"]
