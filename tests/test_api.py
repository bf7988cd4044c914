"""The public API (issue 10 item 2): fit.summary() as in statsmodels, one confidence keyword
(alpha=) with ci= as a deprecated alias, hipdata.analysis re-exports, subpackages after
``import hipdata``."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hipdata
import hipdata.analysis
from hipdata.analysis.intervals import t_interval, wilson_ci
from hipdata.analysis.models import fit_mixed

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def sleepstudy_fit():
    data = pd.read_csv(DATA / "sleepstudy.csv")
    return fit_mixed(data, "Reaction ~ Days", group="Subject", re_formula="~Days")


def test_summary_is_the_table_and_callable_as_in_statsmodels(sleepstudy_fit):
    # R 4.2.2, lme4 1.1.31: m <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy); summary(m)
    #   REML criterion at convergence: 1743.6
    #   Random effects: Subject (Intercept) Std.Dev. 24.741, Days 5.922, Corr 0.07;
    #   Residual 25.592. Number of obs: 180, groups: Subject, 18
    #   Fixed effects: (Intercept) 251.405 (SE 6.825), Days 10.467 (SE 1.546)
    fit = sleepstudy_fit
    table = fit.summary.set_index("term")  # still the tidy DataFrame
    assert isinstance(table, pd.DataFrame) and table.loc["Days", "estimate"] == pytest.approx(
        10.46728596, rel=1e-6
    )
    text = fit.summary()
    assert str(text) == repr(text)  # prints as the table in a console and a notebook
    lines = {line.split()[0]: line.split() for line in str(text).splitlines() if line.strip()}
    assert lines["Intercept"][1:3] == ["251.4051", "6.8246"]
    assert lines["Days"][1:3] == ["10.4673", "1.5458"]
    # Wald interval 10.4673 +- 1.959964 * 1.545790 = [7.4376, 13.4970]; z = 6.77; p < 0.001
    assert lines["Days"][3:] == ["6.77", "7.4376", "13.4970", "<0.001"]
    # the random part to lme4's precision (test_mixed_lme4: rel 1e-4; cor abs 1e-3)
    assert float(lines["sd(Intercept)"][1]) == pytest.approx(24.740657995, rel=1e-4)
    assert float(lines["sd(Days)"][1]) == pytest.approx(5.922137659, rel=1e-4)
    assert float(lines["cor(Intercept,Days)"][1]) == pytest.approx(0.06555124, abs=1e-3)
    assert float(lines["sd(Residual)"][1]) == pytest.approx(25.591795722, rel=1e-5)
    assert "REML criterion: 1743.6283" in text
    assert "Observations:   180" in text and "Groups:   18" in text
    assert "Model chosen:   random intercept and slope; best fit not singular" in text
    assert "[0.025" in text and "0.975]" in text and "95%" in text
    assert "<pre>" in text._repr_html_()


def test_summary_names_the_fallback():
    # mixed_pain_sessions.csv (see test_mixed_lme4): lme4 calls the slope optimum singular
    # (isSingular TRUE); R: lmer(pain_24h ~ week + (1 | patient_id), d): REMLcrit 4852.3451937,
    # fixef week 0.03472516935 (SE 0.007850193173)
    from hipdata.analysis.trajectories import fit_pain_trajectory

    fit = fit_pain_trajectory(pd.read_csv(DATA / "mixed_pain_sessions.csv"))
    text = fit.summary()
    assert (
        "Model chosen:   random intercept only; slope model singular (lme4 isSingular), "
        "fell back" in text
    )
    assert "REML criterion: 4852.3452" in text
    assert "sd(week)" not in text and "sd(Intercept)" in text
    assert f"Note: {fit.warnings[0]}" in text
    week = next(line.split() for line in text.splitlines() if line.startswith("week "))
    assert week[1:3] == ["0.0347", "0.0079"]


def test_alpha_is_the_one_keyword_and_ci_a_deprecated_alias():
    # R: prop.test-free Wilson 95 % for 3/10: 0.1078, 0.6032 (binom::binom.wilson)
    low, high = wilson_ci([3], [10], alpha=0.05)
    with pytest.warns(DeprecationWarning, match=r"use alpha=0.05"):
        old_low, old_high = wilson_ci([3], [10], ci=0.95)
    assert old_low == pytest.approx(low) and old_high == pytest.approx(high)
    assert round(float(low[0]), 4) == 0.1078
    # 90 %: t(0.95, 9) = 1.833113; 5 +- 1.833113 * 2 / sqrt(10) = [3.8406, 6.1594]
    low, high = t_interval(np.array([5.0]), np.array([2.0]), np.array([10]), alpha=0.10)
    assert float(low[0]) == pytest.approx(3.8406, abs=1e-4)
    with pytest.warns(DeprecationWarning):
        assert t_interval(np.array([5.0]), np.array([2.0]), np.array([10]), ci=0.90)[0][
            0
        ] == pytest.approx(float(low[0]))
    with pytest.raises(TypeError, match="give alpha= only"):
        wilson_ci([3], [10], alpha=0.05, ci=0.95)


def _public_functions():
    import hipdata.plots

    for module in (hipdata.analysis, hipdata.plots):
        for name in module.__all__:
            value = getattr(module, name)
            if inspect.isfunction(value):
                yield f"{module.__name__}.{name}", value


def test_no_public_function_spells_the_confidence_level_another_way():
    for name, function in _public_functions():
        parameters = inspect.signature(function).parameters
        assert "level" not in parameters, name
        if "ci" in parameters:
            # plot_level_progression(ci=True) switches the band on or off, not a level
            assert parameters["ci"].annotation in (bool, "bool"), name
        if "alpha" in parameters:
            assert parameters["alpha"].default in (0.05, inspect.Parameter.empty), name


def test_internal_calls_use_alpha(sleepstudy_fit):
    # no library function calls another with the deprecated spelling
    from hipdata.analysis.outcomes import responder_rates
    from hipdata.analysis.trajectories import weekly_pain

    sessions = pd.DataFrame(
        {
            "patient_id": ["a", "a", "b", "b", "c"],
            "week": [0, 1, 0, 1, 0],
            "max_pain_during": [3.0, 2.0, 4.0, 3.0, 5.0],
            "pain_24h": [2.0, 1.0, 3.0, 2.0, 4.0],
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        weekly_pain(sessions, alpha=0.1)
        change = pd.DataFrame(
            {
                "patient_id": ["a", "b"],
                "measure": ["nprs", "nprs"],
                "responder": [True, False],
            }
        )
        try:
            responder_rates(change, alpha=0.1)
        except (KeyError, ValueError):
            pass  # a minimal frame may lack columns; the point is no DeprecationWarning


def test_analysis_reexports_every_public_function():
    for name in hipdata.analysis.__all__:
        value = getattr(hipdata.analysis, name)
        module = importlib.import_module(value.__module__)
        assert getattr(module, name) is value, name
    assert hipdata.analysis.fit_mixed is fit_mixed
    from hipdata.analysis import dose_response_slope, fit_pain_trajectory  # noqa: F401

    with pytest.raises(AttributeError):
        hipdata.analysis.no_such_function  # noqa: B018


def test_subpackages_reachable_after_import_hipdata_and_loaded_lazily():
    code = (
        "import sys, hipdata\n"
        "assert 'matplotlib' not in sys.modules, 'import hipdata loaded matplotlib'\n"
        "assert 'statsmodels' not in sys.modules, 'import hipdata loaded statsmodels'\n"
        "print(hipdata.analysis.fit_mixed.__name__, hipdata.plots.plot_pain_trajectory.__name__,"
        " hipdata.metrics.compute_all.__name__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["fit_mixed", "plot_pain_trajectory", "compute_all"]
    assert {"analysis", "metrics", "plots"} <= set(dir(hipdata))
