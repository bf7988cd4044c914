"""Case-mix adjusted comparison of clinics and clinicians (observed against expected).

Clinics see different patients: older patients with hip OA improve less than young athletes with
a groin strain. A fair comparison asks how a unit's patients did against what the network's
patients *like them* did. For each episode with the outcome, a model fitted on the network's
episodes of a comparison window gives the expected outcome from the case mix:

- **NPRS responders** (logistic): ``P(responder) ~ baseline NPRS + age + sex + condition +
  athlete``; a unit's observed count ``O`` of responders is compared with ``E = sum p_i`` over its
  episodes, as ``O / E``, with exact tail probabilities of ``O`` under independent Bernoulli
  ``p_i`` (the Poisson-binomial distribution, :func:`poisson_binomial_pmf`).
- **NPRS improvement** (linear): the unit's mean improvement ``O`` against the mean of its
  episodes' predictions ``E``, as ``O - E``, with normal tails of ``(O - E) / (sigma / sqrt(n))``
  (``sigma`` the model's residual standard deviation).

Missing covariates keep the episode: a categorical value that is missing is its own level
(``unknown``), a missing age is set to the mean age with an ``age_missing`` indicator. Levels with
fewer than ``min_level`` episodes are pooled into ``other`` (so no coefficient rests on one or two
patients, and free text never becomes a term). With an intercept, the logistic and the linear
model's expected values sum to the observed over the episodes they were fitted on.

The model's quality is reported beside the comparison: coefficients and standard errors, the
c-statistic (area under the ROC curve) and calibration by decile of expected risk.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from hipdata.analysis.funnel import FUNNEL_LEVELS, flags_from_tails, level_label, normal_tails

#: Case-mix covariates (columns of the episode table).
CASEMIX_COVARIATES = ("baseline", "age_years", "sex", "condition", "athlete")
#: Categorical covariates; the others are numbers.
CATEGORICAL = ("sex", "condition", "athlete")
#: Fewest episodes a categorical level needs to keep its own coefficient.
MIN_LEVEL_EPISODES = 10
#: Outcomes the comparison supports: indicator name -> (episode column, model family).
OUTCOMES = {
    "nprs_responder": ("responder", "binomial"),
    "nprs_improvement": ("improvement", "gaussian"),
}


def casemix_episodes(ds, tables: dict[str, pd.DataFrame], *, measure: str = "nprs") -> pd.DataFrame:
    """One row per discharged episode with the measure at baseline and follow-up.

    Columns: ``patient_id, clinic_id, clinician_id, quarter`` (of discharge), ``baseline``,
    ``improvement``, ``responder`` (0/1), ``age_years``, ``sex``, ``condition``, ``athlete``.
    """
    change = tables["outcome_change"]
    pairs = change[(change["measure"] == measure) & change["improvement"].notna()]
    pairs = pairs.drop_duplicates("patient_id")
    patients = ds.patients[ds.patients["discharge_date"].notna()]
    episodes = patients[
        ["patient_id", "clinic_id", "clinician_id", "discharge_date", *CASEMIX_COVARIATES[1:]]
    ].merge(
        pairs[["patient_id", "baseline", "improvement", "responder"]],
        on="patient_id",
        how="inner",
        validate="one_to_one",
    )
    episodes["quarter"] = episodes["discharge_date"].dt.to_period("Q").astype("str")
    episodes["responder"] = episodes["responder"].astype("boolean").fillna(False).astype("int64")
    return episodes.drop(columns="discharge_date").reset_index(drop=True)


def _design(episodes: pd.DataFrame, *, min_level: int) -> tuple[pd.DataFrame, list[str]]:
    """Model frame with missing values and rare levels handled; the formula's terms."""
    frame = pd.DataFrame(index=episodes.index)
    terms: list[str] = []
    frame["baseline"] = episodes["baseline"].astype("float64")
    terms.append("baseline")
    age = pd.to_numeric(episodes["age_years"]).astype("float64")
    if age.notna().any():
        frame["age_years"] = age.fillna(age.mean())
        terms.append("age_years")
        if age.isna().any():
            frame["age_missing"] = age.isna().astype("float64")
            terms.append("age_missing")
    for column in CATEGORICAL:
        values = episodes[column].astype("string").fillna("unknown")
        counts = values.value_counts()
        rare = counts.index[counts < min_level]
        values = values.where(~values.isin(rare), "other")
        if values.nunique() > 1:
            frame[column] = values.astype("str")
            # the most common level is the reference
            reference = values.value_counts().index[0]
            terms.append(f"C({column}, Treatment(reference={reference!r}))")
    return frame, terms


@dataclass
class CasemixFit:
    """A fitted case-mix model and what a report shows of it.

    Attributes
    ----------
    indicator : str
        ``nprs_responder`` or ``nprs_improvement``.
    family : str
        ``binomial`` (logistic) or ``gaussian`` (linear).
    expected : Series
        Expected outcome per episode (index of the fitting episodes).
    observed : Series
        Observed outcome per episode.
    coefficients : DataFrame
        ``term, estimate, std_error``.
    c_statistic : float
        Area under the ROC curve (logistic), NaN for the linear model.
    r_squared : float
        Share of variance explained (linear), NaN for the logistic model.
    sigma : float
        Residual standard deviation (linear), NaN for the logistic model.
    calibration : DataFrame
        ``decile, episodes, mean_expected, observed`` by decile of the expected value.
    notes : list of str
        Anything a reader should know (separation, terms dropped).
    """

    indicator: str
    family: str
    expected: pd.Series
    observed: pd.Series
    coefficients: pd.DataFrame
    c_statistic: float
    r_squared: float
    sigma: float
    calibration: pd.DataFrame
    notes: list[str]


def c_statistic(outcome, score) -> float:
    """Area under the ROC curve: the Mann-Whitney probability that a random event outranks a
    random non-event (ties count one half). NaN without both outcomes.

    Examples
    --------
    >>> c_statistic([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])  # 3 of 4 pairs ordered
    0.75
    """
    outcome = np.asarray(outcome, dtype=bool)
    score = np.asarray(score, dtype=float)
    n1, n0 = outcome.sum(), (~outcome).sum()
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = stats.rankdata(score)
    return float((ranks[outcome].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def calibration_by_decile(observed, expected, *, groups: int = 10) -> pd.DataFrame:
    """Observed against expected by groups of equal size of the expected value.

    Returns
    -------
    DataFrame
        ``decile, episodes, mean_expected, observed`` (mean observed outcome).
    """
    frame = pd.DataFrame({"observed": np.asarray(observed, float), "expected": expected})
    ranks = frame["expected"].rank(method="first")
    frame["decile"] = pd.qcut(ranks, q=min(groups, len(frame)), labels=False) + 1
    table = frame.groupby("decile").agg(
        episodes=("observed", "size"),
        mean_expected=("expected", "mean"),
        observed=("observed", "mean"),
    )
    return table.reset_index()


def fit_casemix(
    episodes: pd.DataFrame,
    indicator: str = "nprs_responder",
    *,
    min_level: int = MIN_LEVEL_EPISODES,
) -> CasemixFit:
    """Fit the case-mix model of ``indicator`` on ``episodes`` (:func:`casemix_episodes`).

    Logistic (``nprs_responder``) or linear (``nprs_improvement``) regression by maximum
    likelihood (statsmodels GLM) of the outcome on baseline NPRS, age, sex, condition and athlete
    status, with an intercept.

    Raises
    ------
    ValueError
        With fewer than 10 episodes, or (logistic) without both responders and non-responders.
    """
    import statsmodels.formula.api as smf
    from statsmodels.genmod.families import Binomial, Gaussian
    from statsmodels.tools.sm_exceptions import PerfectSeparationError

    if indicator not in OUTCOMES:
        raise ValueError(f"indicator must be one of {sorted(OUTCOMES)}, got {indicator!r}")
    column, family = OUTCOMES[indicator]
    episodes = episodes.reset_index(drop=True)
    if len(episodes) < 10:
        raise ValueError(f"a case-mix model needs at least 10 episodes, got {len(episodes)}")
    outcome = episodes[column].astype("float64")
    if family == "binomial" and outcome.nunique() < 2:
        raise ValueError("a logistic case-mix model needs both responders and non-responders")
    frame, terms = _design(episodes, min_level=min_level)
    frame["_y"] = outcome
    notes: list[str] = []
    formula = "_y ~ " + " + ".join(terms)
    model = smf.glm(formula, frame, family=Binomial() if family == "binomial" else Gaussian())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = model.fit()
        except (np.linalg.LinAlgError, ValueError, PerfectSeparationError) as exc:
            # e.g. perfect separation, or a covariate constant within the outcome
            raise ValueError(f"the case-mix model could not be fitted ({exc})") from exc
    for warning in caught:
        text = str(warning.message)
        if "separation" in text.lower() or "converge" in text.lower():
            notes.append(f"model warning: {text.splitlines()[0]}")
    expected = pd.Series(np.asarray(result.fittedvalues, dtype=float), index=episodes.index)
    coefficients = pd.DataFrame(
        {
            "term": [_term_label(name) for name in result.params.index],
            "estimate": result.params.to_numpy(),
            "std_error": result.bse.to_numpy(),
        }
    )
    if family == "binomial":
        c = c_statistic(outcome, expected)
        r2, sigma = float("nan"), float("nan")
    else:
        c = float("nan")
        residual = outcome - expected
        dof = max(len(outcome) - len(result.params), 1)
        sigma = float(np.sqrt((residual**2).sum() / dof))
        r2 = float(1 - (residual**2).sum() / ((outcome - outcome.mean()) ** 2).sum())
    return CasemixFit(
        indicator=indicator,
        family=family,
        expected=expected,
        observed=outcome,
        coefficients=coefficients,
        c_statistic=c,
        r_squared=r2,
        sigma=sigma,
        calibration=calibration_by_decile(outcome, expected),
        notes=notes,
    )


def _term_label(name: str) -> str:
    """``C(sex, Treatment(reference='F'))[T.M]`` -> ``sex: M (vs F)``."""
    if not name.startswith("C("):
        return name
    variable = name[2 : name.index(",")]
    reference = name.split("reference=")[1].split(")")[0].strip("'\"")
    level = name.split("[T.")[1].rstrip("]")
    return f"{variable}: {level} (vs {reference})"


# --- Poisson-binomial ---------------------------------------------------------------------------


def poisson_binomial_pmf(p) -> np.ndarray:
    """Probability of 0..n successes among independent Bernoulli(``p_i``) trials.

    Computed from the characteristic function at the ``n + 1`` roots of unity (Hong 2013, the
    DFT-CF method): ``pmf = Re(DFT(prod_i (1 - p_i + p_i exp(i w))))  / (n + 1)``, then clipped
    at 0 and normalised (rounding leaves values of order 1e-16).

    Examples
    --------
    >>> np.round(poisson_binomial_pmf([0.5, 0.2]), 4)  # (0.4, 0.5, 0.1)
    array([0.4, 0.5, 0.1])
    """
    p = np.asarray(p, dtype=float)
    n = len(p)
    omega = 2 * np.pi * np.arange(n + 1) / (n + 1)
    factors = 1 - p[:, None] + p[:, None] * np.exp(1j * omega[None, :])
    characteristic = np.prod(factors, axis=0) if n else np.ones(1, dtype=complex)
    pmf = np.real(np.fft.fft(characteristic)) / (n + 1)
    pmf = np.clip(pmf, 0.0, None)
    return pmf / pmf.sum()


def poisson_binomial_tails(observed: int, p) -> tuple[float, float]:
    """``P(O >= observed)`` and ``P(O <= observed)`` for ``O`` Poisson-binomial(``p``)."""
    pmf = poisson_binomial_pmf(p)
    observed = int(round(observed))
    return float(pmf[observed:].sum()), float(pmf[: observed + 1].sum())


def _interpolated_count(cdf: np.ndarray, prob: float) -> float:
    """Spiegelhalter's interpolated quantile ``r_P - alpha`` of a discrete CDF on 0..n."""
    r = int(np.searchsorted(cdf, prob - 1e-12))
    r = min(r, len(cdf) - 1)
    before = cdf[r - 1] if r > 0 else 0.0
    alpha = (cdf[r] - prob) / (cdf[r] - before) if cdf[r] > before else 0.0
    return max(r - alpha, 0.0)


# --- comparison --------------------------------------------------------------------------------


def casemix_comparison(
    episodes: pd.DataFrame,
    fit: CasemixFit,
    *,
    unit: str,
    levels: Sequence[float] = FUNNEL_LEVELS,
) -> pd.DataFrame:
    """Observed against expected per unit, with exact limits and flags.

    ``episodes`` are those the comparison is about (e.g. one quarter's), with the expected value
    of each episode taken from ``fit`` (matched on the index, so pass rows of the fitting
    episodes). For responders: ``observed`` = responders, ``expected = sum p_i``, ``ratio = O/E``,
    tails of the Poisson-binomial(``p_i``) at ``O`` and limits ``(r_P - alpha) / E`` from its
    interpolated quantiles; for improvement: ``observed`` and ``expected`` are means,
    ``difference = O - E``, limits ``+/- z sigma / sqrt(n)`` and normal tails. Flags as in
    :func:`hipdata.analysis.funnel.flags_from_tails`.

    Returns
    -------
    DataFrame
        ``unit, episodes, observed, expected, ratio | difference, p_value, lower_<L>,
        upper_<L>, flag``.
    """
    expected = fit.expected.reindex(episodes.index)
    if expected.isna().any():
        raise ValueError("casemix_comparison: some episodes have no expected value in the fit")
    observed = fit.observed.reindex(episodes.index)
    frame = pd.DataFrame({"unit": episodes[unit], "o": observed, "e": expected})
    frame = frame[frame["unit"].notna()]
    rows = []
    for name, part in frame.groupby("unit", sort=True):  # one small loop per unit, not per row
        rows.append(_unit_row(name, part, fit, tuple(sorted(levels))))
    if not rows:
        return pd.DataFrame(columns=["unit", "episodes", "observed", "expected", "flag"])
    return pd.DataFrame(rows)


def _unit_row(name, part: pd.DataFrame, fit: CasemixFit, levels: tuple[float, ...]) -> dict:
    n = len(part)
    row: dict = {"unit": name, "episodes": n}
    if fit.family == "binomial":
        o, e = float(part["o"].sum()), float(part["e"].sum())
        pmf = poisson_binomial_pmf(part["e"].to_numpy())
        cdf = np.cumsum(pmf)
        upper, lower = float(pmf[int(o) :].sum()), float(cdf[int(o)])
        row.update(observed=o, expected=e, ratio=o / e if e > 0 else np.nan)
        for level in levels:
            label = level_label(level)
            low = _interpolated_count(cdf, (1 - level) / 2)
            high = _interpolated_count(cdf, (1 + level) / 2)
            row[f"lower_{label}"] = low / e if e > 0 else np.nan
            row[f"upper_{label}"] = high / e if e > 0 else np.nan
    else:
        o, e = float(part["o"].mean()), float(part["e"].mean())
        se = fit.sigma / np.sqrt(n)
        upper_a, lower_a = normal_tails((o - e) / se)
        upper, lower = float(upper_a[0]), float(lower_a[0])
        row.update(observed=o, expected=e, difference=o - e)
        for level in levels:
            label = level_label(level)
            z = stats.norm.ppf((1 + level) / 2)
            row[f"lower_{label}"] = -z * se
            row[f"upper_{label}"] = z * se
    row["p_value"] = min(upper, lower)
    row["flag"] = flags_from_tails([upper], [lower], levels=levels)[0]
    return row
