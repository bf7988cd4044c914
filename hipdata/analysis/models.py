"""Linear mixed models fitted once, checked for convergence, and summarised as tidy tables.

:func:`fit_mixed` wraps statsmodels' ``MixedLM`` (REML). A fit is accepted only when the optimiser
reports convergence, statsmodels raises no ``ConvergenceWarning`` about the Hessian (not positive
definite), the estimates are finite, and the fit is not singular in lme4's sense (``isSingular``: a
diagonal of the Cholesky factor of the random-effects covariance relative to the residual variance
below 1e-4). Otherwise the next optimiser is tried; when none gives a clean random intercept and
slope fit, the model is refitted with a random intercept only. Every such step is recorded, in
plain language, in :attr:`MixedModelFit.warnings` so that a report can show it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.tools.sm_exceptions import ConvergenceWarning

#: Optimisers tried in turn (names as ``MixedLM.fit(method=...)`` takes them).
DEFAULT_OPTIMISERS = ("lbfgs", "bfgs", "powell", "nm", "cg")
#: Boundary (singular fit) tolerance on the relative Cholesky factor, as lme4's ``isSingular``.
SINGULAR_TOLERANCE = 1e-4

SUMMARY_COLUMNS = ["term", "estimate", "std_error", "ci_low", "ci_high", "effect", "p_value"]


@dataclass
class MixedModelFit:
    """A fitted linear mixed model and what a reader needs to trust it.

    Attributes
    ----------
    summary : DataFrame
        One row per term: ``term, estimate, std_error, ci_low, ci_high, effect, p_value``. Fixed
        effects carry statsmodels' names (``Intercept``, ``week``, ...) with Wald (normal) intervals;
        the random part follows as ``sd(Intercept)``, ``sd(<slope>)``, ``cor(Intercept,<slope>)``
        and ``sd(Residual)``, whose standard error, interval and p-value are empty.
    converged : bool
        Whether the accepted fit's optimiser converged.
    method : str
        The optimiser that produced the accepted fit.
    random_effects : str
        ``"intercept+slope"`` or ``"intercept"`` (after a fallback, or when asked for).
    warnings : list of str
        Plain-language notes for a report (fallbacks, boundary fits, rows left out).
    n_obs, n_groups : int
        Observations and groups used.
    n_dropped : int
        Rows left out for a missing value in the model's variables.
    """

    summary: pd.DataFrame
    converged: bool
    method: str
    random_effects: str
    warnings: list[str]
    n_obs: int
    n_groups: int
    n_dropped: int
    formula: str
    re_formula: str
    group: str
    result: Any = field(repr=False)

    @property
    def fixed_effects(self) -> pd.Series:
        """Fixed-effect estimates by term."""
        fixed = self.summary[self.summary["effect"] == "fixed"]
        return pd.Series(fixed["estimate"].to_numpy(), index=fixed["term"].to_numpy())

    def predict(self, data: pd.DataFrame) -> pd.Series:
        """Population-level (fixed-effect) prediction for the rows of ``data``."""
        return pd.Series(np.asarray(self.result.predict(data)), index=data.index)


@dataclass
class _Attempt:
    method: str
    result: Any = None
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return self.result is not None and not self.problems


def _random_names(result, group: str) -> list[str]:
    # statsmodels names a random intercept after the grouping variable.
    return ["Intercept" if name == group else str(name) for name in result.cov_re.index]


def _fit_once(model, method: str) -> _Attempt:
    attempt = _Attempt(method)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = model.fit(reml=True, method=method)
        except (np.linalg.LinAlgError, ValueError, ZeroDivisionError) as error:
            attempt.problems.append(f"failed ({error})")
            return attempt
    attempt.result = result
    messages = {str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)}
    if not result.converged:
        attempt.problems.append("did not converge")
    # statsmodels' own "boundary" warning compares variances with 0.01 in the data's units, which
    # flags a real slope SD of 0.1 pain points per week; the scale-free check below replaces it.
    if _is_singular(result):
        attempt.problems.append("fit on the boundary (a variance near zero)")
    if any("Hessian" in m for m in messages):
        attempt.problems.append("standard errors unreliable (Hessian not positive definite)")
    if not (np.all(np.isfinite(result.fe_params)) and np.all(np.isfinite(result.bse_fe))):
        attempt.problems.append("non-finite estimates or standard errors")
    return attempt


def _is_singular(result, tolerance: float = SINGULAR_TOLERANCE) -> bool:
    """lme4's ``isSingular``: a diagonal element of the relative Cholesky factor near zero.

    The random-effects covariance relative to the residual variance is factored as ``L L'``; a
    diagonal of ``L`` below ``tolerance`` means a variance of (or a correlation of +-1 between)
    random effects at the boundary.
    """
    relative = np.asarray(result.cov_re, dtype=float) / float(result.scale)
    try:
        factor = np.linalg.cholesky(relative)
    except np.linalg.LinAlgError:
        return True
    return bool(np.any(np.abs(np.diag(factor)) < tolerance))


def _try_optimisers(model, optimisers: Sequence[str]) -> tuple[_Attempt | None, list[_Attempt]]:
    attempts = []
    for method in optimisers:
        attempt = _fit_once(model, method)
        attempts.append(attempt)
        if attempt.clean:
            return attempt, attempts
    return None, attempts


def _describe(attempts: list[_Attempt]) -> str:
    problems = dict.fromkeys(p for a in attempts for p in a.problems)
    methods = ", ".join(a.method for a in attempts)
    return f"tried {methods}: {'; '.join(problems)}"


def _summary(result, group: str, ci: float) -> pd.DataFrame:
    z = stats.norm.ppf(0.5 + ci / 2)
    estimate = np.asarray(result.fe_params, dtype=float)
    std_error = np.asarray(result.bse_fe, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_value = 2 * stats.norm.sf(np.abs(estimate / std_error))
    fixed = pd.DataFrame(
        {
            "term": [str(t) for t in result.fe_params.index],
            "estimate": estimate,
            "std_error": std_error,
            "ci_low": estimate - z * std_error,
            "ci_high": estimate + z * std_error,
            "effect": "fixed",
            "p_value": p_value,
        }
    )
    names = _random_names(result, group)
    cov_re = np.asarray(result.cov_re, dtype=float)
    sd = np.sqrt(np.clip(np.diag(cov_re), 0, None))
    terms = [f"sd({name})" for name in names]
    values = list(sd)
    for i, j in combinations(range(len(names)), 2):
        terms.append(f"cor({names[i]},{names[j]})")
        denominator = sd[i] * sd[j]
        values.append(cov_re[i, j] / denominator if denominator > 0 else np.nan)
    terms.append("sd(Residual)")
    values.append(float(np.sqrt(result.scale)))
    random = pd.DataFrame(
        {
            "term": terms,
            "estimate": values,
            "std_error": np.nan,
            "ci_low": np.nan,
            "ci_high": np.nan,
            "effect": "random",
            "p_value": np.nan,
        }
    )
    return pd.concat([fixed, random], ignore_index=True)[SUMMARY_COLUMNS]


def _has_slope(re_formula: str) -> bool:
    return re_formula.replace("~", "").strip() not in ("1", "")


def fit_mixed(
    data: pd.DataFrame,
    formula: str,
    *,
    group: str,
    re_formula: str = "~week",
    optimisers: Sequence[str] = DEFAULT_OPTIMISERS,
    ci: float = 0.95,
    group_label: str | None = None,
    row_label: str = "rows",
) -> MixedModelFit:
    """Fit a linear mixed model by REML, checking convergence and falling back when needed.

    The model is ``formula`` for the fixed part and ``re_formula`` for the random part, with one
    set of random effects per level of ``group`` (``"~week"``: random intercept and slope;
    ``"1"``: random intercept only). Optimisers are tried in the order given; the first fit that
    converges cleanly (see the module docstring) is kept. If the random-slope model has no clean
    fit, the random-intercept model is fitted the same way. If that is on the boundary too
    (between-group variance estimated as zero), the best converged fit is returned with a warning.

    Rows with a missing value in a model variable or in ``group`` are left out and counted.

    Parameters
    ----------
    data : DataFrame
        Long-format data, one row per observation.
    formula : str
        Fixed-effects formula, e.g. ``"pain_24h ~ week"``.
    group : str
        Column identifying the groups (patients).
    re_formula : str
        Random-effects formula.
    optimisers : sequence of str
        ``MixedLM.fit`` methods to try, in order.
    ci : float
        Confidence level of the fixed-effect (Wald) intervals.
    group_label : str, optional
        What a group is, for the warnings ("patient"); defaults to ``group``.
    row_label : str
        What a row is, for the warnings ("sessions", "scores").

    Returns
    -------
    MixedModelFit

    Raises
    ------
    ValueError
        When fewer than two groups remain, or when no optimiser can fit either model at all.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> data = pd.DataFrame({"patient_id": np.repeat(list("ABCDEFGH"), 6),
    ...                      "week": np.tile(range(6), 8)})
    >>> data["pain"] = (5 - 0.4 * data["week"] + rng.normal(0, 1, 8).repeat(6)
    ...                 + rng.normal(0, 0.5, 48))
    >>> fit = fit_mixed(data, "pain ~ week", group="patient_id")
    >>> fit.converged, fit.random_effects, fit.warnings
    (True, 'intercept+slope', [])
    >>> fit.summary["term"].tolist()
    ['Intercept', 'week', 'sd(Intercept)', 'sd(week)', 'cor(Intercept,week)', 'sd(Residual)']
    """
    notes: list[str] = []
    label = group if group_label is None else group_label
    usable = data.loc[data[group].notna()]
    n_groups = usable[group].nunique()
    if n_groups < 2:
        raise ValueError(
            f"a mixed model needs at least two groups in column {group!r}; found {n_groups}"
        )

    def model_for(random_formula: str):
        return smf.mixedlm(formula, usable, groups=group, re_formula=random_formula, missing="drop")

    random_effects = "intercept+slope" if _has_slope(re_formula) else "intercept"
    used_formula = re_formula
    accepted, attempts = _try_optimisers(model_for(re_formula), optimisers)
    if accepted is None and random_effects == "intercept+slope":
        notes.append(
            f"The random intercept and slope model ({re_formula}) could not be fitted cleanly "
            f"({_describe(attempts)}); it was refitted with a random intercept per {label} only."
        )
        random_effects, used_formula = "intercept", "1"
        accepted, fallback_attempts = _try_optimisers(model_for("1"), optimisers)
        attempts = fallback_attempts
    if accepted is None:
        fitted = [a for a in attempts if a.result is not None]
        if not fitted:
            raise ValueError(f"the mixed model could not be fitted: {_describe(attempts)}")
        converged = [a for a in fitted if a.result.converged] or fitted
        accepted = max(converged, key=lambda a: a.result.llf)
        if not accepted.result.converged:
            notes.append(
                f"No optimiser converged ({_describe(attempts)}); the estimates shown come from "
                f"the best attempt ({accepted.method}) and are not reliable."
            )
        elif any("boundary" in p for p in accepted.problems):
            notes.append(
                f"The variance between {label}s was estimated at (or near) zero "
                f"({', '.join(accepted.problems)}): the fixed effects are those of an ordinary "
                f"regression ignoring the {label}s, and the random-effect SDs are not informative."
            )
        else:
            notes.append(
                f"The fit converged with problems ({', '.join(accepted.problems)}); interpret "
                "its standard errors and intervals with care."
            )
    result = accepted.result
    n_obs = int(result.nobs)
    n_dropped = len(data) - n_obs
    if n_dropped:
        notes.append(
            f"{n_dropped} of {len(data)} {row_label} were left out for a missing value in the "
            "model's variables."
        )
    return MixedModelFit(
        summary=_summary(result, group, ci),
        converged=bool(result.converged),
        method=accepted.method,
        random_effects=random_effects,
        warnings=notes,
        n_obs=n_obs,
        n_groups=int(result.model.n_groups),
        n_dropped=n_dropped,
        formula=formula,
        re_formula=used_formula,
        group=group,
        result=result,
    )


def _as_list(by: str | Sequence[str] | None) -> list[str]:
    if by is None:
        return []
    return [by] if isinstance(by, str) else list(by)
