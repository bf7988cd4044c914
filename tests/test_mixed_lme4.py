"""Mixed models against lme4 (issue 7 item 1): the optimum, the nested check, isSingular, fallback.

Every reference value below was produced with R 4.2.2 and lme4 1.1.31 (``lmer``, REML, default
optimiser bobyqa unless said otherwise) from the CSV named in the test; the fixtures are written by
``tests/data/make_mixed_fixtures.py`` (synthetic, fixed seeds). ``REMLcrit`` is lme4's -2 REML
log-likelihood, ``getME(m, "theta")`` the relative Cholesky factor, ``isSingular(m)`` its boundary
test (an element of theta on the diagonal below 1e-4).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from statsmodels.regression.mixed_linear_model import MixedLMParams

from hipdata.analysis import _reml
from hipdata.analysis.models import SINGULAR_TOLERANCE, fit_mixed
from hipdata.analysis.outcomes import outcome_mixed_model
from hipdata.analysis.trajectories import fit_pain_trajectory

DATA = Path(__file__).parent / "data"


def _terms(fit) -> pd.Series:
    return fit.summary.set_index("term")["estimate"]


def _se(fit) -> pd.Series:
    return fit.summary.set_index("term")["std_error"]


def _candidate(fit, model: str) -> pd.Series:
    return fit.candidates.set_index("model").loc[model]


# --- sleepstudy ------------------------------------------------------------------------------


def test_sleepstudy_matches_lme4_to_six_figures():
    # R: m <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
    #   REMLcrit(m) 1743.628272; theta 0.9667417740 0.0151690589 0.2309099532; isSingular FALSE
    #   fixef 251.40510485 10.46728596; SE 6.824596695 1.545789644
    #   SD (Intercept) 24.740657995, Days 5.922137659, Corr 0.06555124; Residual 25.591795722
    data = pd.read_csv(DATA / "sleepstudy.csv")
    fit = fit_mixed(data, "Reaction ~ Days", group="Subject", re_formula="~Days")
    est, se = _terms(fit), _se(fit)
    assert fit.reml_criterion == pytest.approx(1743.628272, abs=1e-5)
    assert fit.result.theta == pytest.approx([0.9667417740, 0.0151690589, 0.2309099532], abs=2e-4)
    assert est["Intercept"] == pytest.approx(251.40510485, rel=1e-7)
    assert est["Days"] == pytest.approx(10.46728596, rel=1e-7)
    assert se["Intercept"] == pytest.approx(6.824596695, rel=1e-4)
    assert se["Days"] == pytest.approx(1.545789644, rel=1e-4)
    assert est["sd(Intercept)"] == pytest.approx(24.740657995, rel=1e-4)
    assert est["sd(Days)"] == pytest.approx(5.922137659, rel=1e-4)
    assert est["cor(Intercept,Days)"] == pytest.approx(0.06555124, abs=1e-3)
    assert est["sd(Residual)"] == pytest.approx(25.591795722, rel=1e-5)
    assert fit.random_effects == "intercept+slope"
    assert fit.selection == "random intercept and slope; best fit not singular"
    assert fit.warnings == []
    # R: m0 <- lmer(Reaction ~ Days + (1 | Subject), sleepstudy); REMLcrit(m0) 1786.465085
    assert _candidate(fit, "random intercept only")["reml_criterion"] == pytest.approx(
        1786.465085, abs=1e-5
    )


def test_sleepstudy_random_intercept_model_matches_lme4():
    # R: m0 <- lmer(Reaction ~ Days + (1 | Subject), sleepstudy)
    #   REMLcrit 1786.465085; fixef 251.40510485 10.46728596; SE 9.7467162692 0.8042214289;
    #   SD (Intercept) 37.12382677, Residual 30.99123390
    data = pd.read_csv(DATA / "sleepstudy.csv")
    fit = fit_mixed(data, "Reaction ~ Days", group="Subject", re_formula="1")
    est, se = _terms(fit), _se(fit)
    assert fit.reml_criterion == pytest.approx(1786.465085, abs=1e-5)
    assert se["Intercept"] == pytest.approx(9.7467162692, rel=1e-5)
    assert se["Days"] == pytest.approx(0.8042214289, rel=1e-5)
    assert est["sd(Intercept)"] == pytest.approx(37.12382677, rel=1e-5)
    assert est["sd(Residual)"] == pytest.approx(30.99123390, rel=1e-6)
    assert fit.selection == "random intercept only; as requested"
    assert list(fit.candidates["model"]) == ["random intercept only"]


# --- a hipdata cohort whose slope optimum is singular ----------------------------------------


def test_pain_trajectory_falls_back_when_lme4_calls_the_slope_optimum_singular():
    # mixed_pain_sessions.csv: 1 556 sessions of 120 patients of hipdata.synth (seed 7).
    # R: m1 <- lmer(pain_24h ~ week + (week | patient_id), d)
    #   REMLcrit 4852.00573792 (bobyqa and Nelder_Mead agree); theta 0.08515 0.005640 0 ->
    #   isSingular TRUE (correlation +1)
    # R: m0 <- lmer(pain_24h ~ week + (1 | patient_id), d)
    #   REMLcrit 4852.3451937; isSingular FALSE; fixef 2.63100636672 0.03472516935;
    #   SE 0.051304115470 0.007850193173; SD (Intercept) 0.1292612034, Residual 1.1399644358
    sessions = pd.read_csv(DATA / "mixed_pain_sessions.csv")
    fit = fit_pain_trajectory(sessions)
    slope = _candidate(fit, "random intercept and slope")
    assert slope["reml_criterion"] == pytest.approx(4852.00573792, abs=1e-4)
    assert bool(slope["singular"])
    assert slope["result"].theta[2] < SINGULAR_TOLERANCE
    assert slope["result"].theta[:2] == pytest.approx([0.0851487293, 0.0056415061], rel=2e-3)
    # the larger model is at least as good as the nested one (4852.006 <= 4852.345)
    assert slope["reml_criterion"] <= _candidate(fit, "random intercept only")["reml_criterion"]
    # lme4's choice: the documented fallback
    assert fit.random_effects == "intercept"
    assert fit.re_formula == "1"
    assert fit.reml_criterion == pytest.approx(4852.3451937, abs=1e-4)
    est, se = _terms(fit), _se(fit)
    assert est["Intercept"] == pytest.approx(2.63100636672, rel=1e-6)
    assert est["week"] == pytest.approx(0.03472516935, rel=1e-5)
    assert se["Intercept"] == pytest.approx(0.051304115470, rel=1e-4)
    assert se["week"] == pytest.approx(0.007850193173, rel=1e-4)
    assert est["sd(Intercept)"] == pytest.approx(0.1292612034, rel=1e-3)
    assert est["sd(Residual)"] == pytest.approx(1.1399644358, rel=1e-5)
    assert fit.selection == (
        "random intercept only; slope model singular (lme4 isSingular), fell back"
    )
    assert len(fit.warnings) == 1
    assert "singular at its best fit (REML criterion 4852.01" in fit.warnings[0]
    assert "random intercept per patient only (REML criterion 4852.35)" in fit.warnings[0]
    table = fit.table()
    assert list(table.columns) == [*fit.summary.columns, "model"]
    assert set(table["model"]) == {fit.selection}


# --- non-singular hipdata cases --------------------------------------------------------------


def test_outcome_model_matches_lme4_on_hipdata_nprs_scores():
    # mixed_nprs_scores.csv: NPRS scores of 80 patients of hipdata.synth (seed 7), 136 scores.
    # R: lmer(score ~ weeks_since_start + (1 | patient_id), e)
    #   REMLcrit 531.842083883; isSingular FALSE; theta 0.99374826
    #   fixef 5.6827142048 -0.2056869297; SE 0.19231308820 0.01858709923
    #   SD (Intercept) 1.250958802, Residual 1.258828666
    scores = pd.read_csv(DATA / "mixed_nprs_scores.csv")
    outcomes = scores.assign(
        measure="nprs",
        date=pd.Timestamp("2026-01-01")
        + pd.to_timedelta((scores["weeks_since_start"] * 7).round(), "D"),
    )
    patients = pd.DataFrame(
        {"patient_id": scores["patient_id"].unique(), "start_date": pd.Timestamp("2026-01-01")}
    )
    fit = outcome_mixed_model(outcomes, patients, measure="nprs")
    est, se = _terms(fit), _se(fit)
    assert fit.reml_criterion == pytest.approx(531.842083883, abs=1e-4)
    assert est["Intercept"] == pytest.approx(5.6827142048, rel=1e-5)
    assert est["weeks_since_start"] == pytest.approx(-0.2056869297, rel=1e-5)
    assert se["Intercept"] == pytest.approx(0.19231308820, rel=1e-4)
    assert se["weeks_since_start"] == pytest.approx(0.01858709923, rel=1e-4)
    assert est["sd(Intercept)"] == pytest.approx(1.250958802, rel=1e-4)
    assert est["sd(Residual)"] == pytest.approx(1.258828666, rel=1e-5)
    assert fit.warnings == []


def test_planted_random_slope_is_kept_and_matches_lme4():
    # mixed_slope_sessions.csv: 40 patients x 10 weeks with a planted slope SD of 0.15.
    # R: lmer(pain_24h ~ week + (week | patient_id), s): REMLcrit 1034.73215653; isSingular FALSE
    #   theta 1.373949367 0.045864709 0.185699657; fixef 4.0601818182 -0.2923181818;
    #   SE 0.16534070099 0.02441867298; SD 0.9614296787 0.1338491877, Corr 0.2397782025,
    #   Residual 0.6997562658. Nested (1 | patient_id): REMLcrit 1097.50896011.
    sessions = pd.read_csv(DATA / "mixed_slope_sessions.csv")
    fit = fit_pain_trajectory(sessions)
    est, se = _terms(fit), _se(fit)
    assert fit.random_effects == "intercept+slope"
    assert fit.reml_criterion == pytest.approx(1034.73215653, abs=1e-5)
    assert est["Intercept"] == pytest.approx(4.0601818182, rel=1e-7)
    assert est["week"] == pytest.approx(-0.2923181818, rel=1e-7)
    assert se["Intercept"] == pytest.approx(0.16534070099, rel=1e-4)
    assert se["week"] == pytest.approx(0.02441867298, rel=1e-4)
    assert est["sd(Intercept)"] == pytest.approx(0.9614296787, rel=1e-4)
    assert est["sd(week)"] == pytest.approx(0.1338491877, rel=1e-4)
    assert est["cor(Intercept,week)"] == pytest.approx(0.2397782025, abs=1e-4)
    assert est["sd(Residual)"] == pytest.approx(0.6997562658, rel=1e-5)
    assert _candidate(fit, "random intercept only")["reml_criterion"] == pytest.approx(
        1097.50896011, abs=1e-5
    )
    assert fit.warnings == []
    assert set(fit.table()["model"]) == {"random intercept and slope; best fit not singular"}


# --- properties ------------------------------------------------------------------------------


def _no_slope_sessions(seed: int) -> pd.DataFrame:
    """30 patients x 8 weeks, random intercepts only: the case where statsmodels went wrong."""
    rng = np.random.default_rng(seed)
    patient = np.repeat(np.arange(30), 8)
    week = np.tile(np.arange(8), 30).astype(float)
    pain = 3 + rng.normal(0, 0.5, 30)[patient] + 0.05 * week + rng.normal(0, 1.1, week.size)
    return pd.DataFrame({"patient_id": patient, "week": week, "pain_24h": pain.round()})


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_larger_model_is_never_worse_than_the_nested_one(seed):
    fit = fit_pain_trajectory(_no_slope_sessions(seed))
    slope = _candidate(fit, "random intercept and slope")
    nested = _candidate(fit, "random intercept only")
    assert slope["reml_criterion"] <= nested["reml_criterion"] + 1e-6
    # the chosen model is the slope model exactly when its optimum is not singular
    assert (fit.random_effects == "intercept+slope") == (not slope["singular"])
    assert fit.candidates["chosen"].sum() == 1


def _statsmodels_criterion(data, formula, re_formula, result) -> float:
    """statsmodels' -2 REML log-likelihood at the given fit's parameters."""
    model = smf.mixedlm(formula, data, groups="patient_id", re_formula=re_formula)
    model.reml, model.cov_pen, model.fe_pen = True, None, None
    params = MixedLMParams.from_components(
        fe_params=result.fe_params.to_numpy(), cov_re=result.cov_re.to_numpy() / result.scale
    )
    return -2 * model.loglike(params, profile_fe=False)


def test_criterion_equals_statsmodels_at_the_same_parameters():
    # Both maximise the same REML likelihood; at a non-singular fit statsmodels' -2 llf at our
    # parameters must equal our criterion (at a singular one statsmodels inverts a singular
    # covariance and loses precision, so only non-singular candidates are compared).
    cases = [(pd.read_csv(DATA / "mixed_slope_sessions.csv"), 2), (_no_slope_sessions(2), 1)]
    for data, expected in cases:
        fit = fit_pain_trajectory(data)
        compared = 0
        for name, criterion, singular, result in fit.candidates[
            ["model", "reml_criterion", "singular", "result"]
        ].to_numpy():
            if singular:
                continue
            re_formula = "~week" if name == "random intercept and slope" else "1"
            assert _statsmodels_criterion(data, "pain_24h ~ week", re_formula, result) == (
                pytest.approx(criterion, abs=1e-6)
            )
            compared += 1
        assert compared == expected


def test_statsmodels_optimisers_never_beat_the_optimum():
    # The reproducer of issue 7: statsmodels' lbfgs can stop short of the optimum and say it
    # converged; none of its optimisers may reach a lower criterion than the one kept here.
    data = _no_slope_sessions(2)
    fit = fit_pain_trajectory(data)
    best = _candidate(fit, "random intercept and slope")["reml_criterion"]
    model = smf.mixedlm("pain_24h ~ week", data, groups="patient_id", re_formula="~week")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for method in ("lbfgs", "bfgs", "powell", "nm", "cg"):
            assert -2 * model.fit(reml=True, method=method).llf >= best - 1e-6


def test_profiled_criterion_vectorised_equals_dense_formula():
    # -2 l_R = log det(V) + log det(X'V^-1 X) + r'V^-1 r + (n - p) log(2 pi), V = Z D Z' + s2 I
    # (Harville 1977), at theta and the profiled sigma^2, for 5 groups of unequal size.
    rng = np.random.default_rng(0)
    sizes = [3, 5, 2, 6, 4]
    codes = np.repeat(np.arange(5), sizes)
    n = codes.size
    x = np.column_stack([np.ones(n), rng.normal(size=n)])
    z = x.copy()
    y = rng.normal(size=n)
    theta = np.array([0.8, -0.3, 0.4])
    stats = _reml.sufficient_stats(y, x, z, codes, 5)
    sol = _reml.solution(stats, theta)
    lam = _reml.lambda_of(theta, 2)
    zfull = np.zeros((n, 10))
    for g in range(5):
        zfull[codes == g, 2 * g : 2 * g + 2] = z[codes == g]
    v = sol.sigma2 * (zfull @ np.kron(np.eye(5), lam @ lam.T) @ zfull.T + np.eye(n))
    vinv = np.linalg.inv(v)
    beta = np.linalg.solve(x.T @ vinv @ x, x.T @ vinv @ y)
    r = y - x @ beta
    dense = (
        np.linalg.slogdet(v)[1]
        + np.linalg.slogdet(x.T @ vinv @ x)[1]
        + r @ vinv @ r
        + (n - 2) * np.log(2 * np.pi)
    )
    assert sol.deviance == pytest.approx(dense, rel=1e-10)
    assert sol.beta == pytest.approx(beta, rel=1e-10)
    # the general (q > 2) code path gives the same blocks as the q = 2 one
    general = _reml._blocks_general(stats, lam)[2]
    assert general == pytest.approx(_reml._blocks_q2(stats, lam)[2], rel=1e-12)


def test_result_summary_text_and_prediction():
    data = pd.read_csv(DATA / "sleepstudy.csv")
    fit = fit_mixed(data, "Reaction ~ Days", group="Subject", re_formula="~Days")
    text = fit.result.summary()
    assert "REML criterion 1743.6283" in text
    # population prediction at day 2: 251.40510485 + 2 x 10.46728596 = 272.33967677
    prediction = fit.predict(pd.DataFrame({"Days": [2.0]}))
    assert prediction.iloc[0] == pytest.approx(272.33967677, rel=1e-7)
    # conditional modes sum to zero over subjects (REML with an intercept), lme4's ranef
    assert fit.result.random_effects.sum().abs().max() < 1e-6


def test_optimisers_are_checked_and_statsmodels_names_accepted():
    data = pd.read_csv(DATA / "sleepstudy.csv")
    with pytest.raises(ValueError, match="take bounds"):
        fit_mixed(data, "Reaction ~ Days", group="Subject", optimisers=["bfgs"])
    # one optimiser given by its statsmodels name still reaches lme4's REMLcrit 1743.628272
    fit = fit_mixed(
        data, "Reaction ~ Days", group="Subject", re_formula="~Days", optimisers=["lbfgs"]
    )
    assert fit.reml_criterion == pytest.approx(1743.628272, abs=1e-5)
    assert fit.method == "L-BFGS-B"
