"""Linear mixed models fitted at their REML optimum, checked as lme4 checks them, and summarised.

:func:`fit_mixed` fits ``formula`` (fixed part) with the random effects of ``re_formula`` per level
of one grouping factor by **exact profiled REML in lme4's formulation** (:mod:`._reml`: Bates et
al. 2015, J Stat Softw 67(1)), computed from per-group sufficient statistics, so a registry of
10^5 patients fits in seconds. The criterion is minimised over the relative covariance factor
``theta`` by every optimiser of ``optimisers`` (scipy's ``L-BFGS-B``, ``Nelder-Mead``, ``Powell``,
with lme4's bounds) from several starts; the **lowest criterion wins**, not the first run that says
it converged.

Model selection (the rule documented in ``docs/decisions.md``):

1. With a random slope asked for, the nested random-intercept model is fitted first and its
   optimum is one of the starts of the larger model, so the larger model's criterion can never be
   worse than the nested one's (a larger model that is worse was not optimised).
2. The best slope fit is tested with lme4's ``isSingular``: an element of ``theta`` on the
   diagonal of the relative Cholesky factor below ``1e-4`` (a slope SD of zero, or intercept and
   slope correlated at +-1). A singular optimum is not reported; the model is refitted with a
   random intercept per group only, and :attr:`MixedModelFit.warnings` says so in plain language.
3. A random-intercept model whose between-group variance is estimated at zero is reported with a
   warning (its fixed effects are those of ordinary least squares).

Fixed-effect standard errors are lme4's ``vcov``: ``sigma^2 (R_X' R_X)^-1`` at the optimum; the
intervals are Wald (normal). statsmodels' ``MixedLM`` maximises the same REML likelihood (its
``-2 llf`` equals the criterion here at the same parameters; the tests check it) but can stop short
of the optimum and loops over groups in Python; it is no longer used to fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
import patsy

from hipdata.analysis import _reml
from hipdata.analysis._confidence import accepts_ci

#: Optimisers tried (scipy.optimize.minimize methods, each honouring lme4's bounds on theta).
DEFAULT_OPTIMISERS = ("L-BFGS-B", "Nelder-Mead", "Powell")
#: statsmodels' names for the same optimisers (accepted for backward compatibility).
OPTIMISER_ALIASES = {"lbfgs": "L-BFGS-B", "nm": "Nelder-Mead", "powell": "Powell"}
#: Boundary (singular fit) tolerance on the relative Cholesky factor, as lme4's ``isSingular``.
SINGULAR_TOLERANCE = 1e-4
#: Criterion differences below this are ties (the optimisers' own precision).
CRITERION_TOLERANCE = 1e-6

SUMMARY_COLUMNS = ["term", "estimate", "std_error", "ci_low", "ci_high", "effect", "p_value"]


class ModelSummary(pd.DataFrame):
    """The tidy term table of a fit, which can also be called as in statsmodels.

    As a DataFrame it is :attr:`MixedModelFit.summary` (one row per term; ``set_index("term")``
    and friends return plain DataFrames). Called, ``fit.summary()`` returns a
    :class:`SummaryText`: the printable table statsmodels' ``result.summary()`` gives.
    """

    _metadata = ["_fit"]

    @property
    def _constructor(self):
        return pd.DataFrame  # derived tables are plain tables

    def __call__(self) -> SummaryText:
        fit = getattr(self, "_fit", None)
        if fit is None:
            raise TypeError("this summary table is not attached to a fit")
        return SummaryText(_summary_text(fit))


class SummaryText(str):
    """The text of ``fit.summary()``: prints as the table (also in a notebook)."""

    def __repr__(self) -> str:
        return str(self)

    def as_text(self) -> str:
        """The table as plain text (statsmodels' ``Summary.as_text``)."""
        return str(self)

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(str(self))}</pre>"


@dataclass
class MixedModelFit:
    """A fitted linear mixed model and what a reader needs to trust it.

    Attributes
    ----------
    summary : ModelSummary
        One row per term: ``term, estimate, std_error, ci_low, ci_high, effect, p_value``. Fixed
        effects carry patsy's names (``Intercept``, ``week``, ...) with Wald (normal) intervals;
        the random part follows as ``sd(Intercept)``, ``sd(<slope>)``, ``cor(Intercept,<slope>)``
        and ``sd(Residual)``, whose standard error, interval and p-value are empty. A DataFrame;
        called as in statsmodels, ``fit.summary()`` prints the readable table: fixed effects with
        SE, interval and p, random-effect SDs and correlation, REML criterion, observations and
        groups, and which model was chosen and why.
    converged : bool
        Whether an optimiser reported convergence at the accepted (lowest-criterion) point.
    method : str
        The optimiser whose run reached the accepted optimum first.
    random_effects : str
        ``"intercept+slope"`` or ``"intercept"`` (after a fallback, or when asked for).
    warnings : list of str
        Plain-language notes for a report (fallbacks, boundary fits, rows left out).
    n_obs, n_groups : int
        Observations and groups used.
    n_dropped : int
        Rows left out for a missing value in the model's variables.
    formula, re_formula, group : str
        The model fitted (``re_formula`` is ``"1"`` after a fallback).
    result : REMLResult
        The fitted model (``fe_params``, ``bse_fe``, ``cov_re``, ``scale``, ``llf``,
        ``random_effects``, ``predict``, ``summary()``).
    selection : str
        Which model was finally fitted and why, in words (e.g. ``"random intercept only; slope
        model singular (lme4 isSingular), fell back"``); written as the ``model`` column of
        ``pain_trajectory_model.csv``.
    reml_criterion : float
        ``-2`` REML log-likelihood of the accepted model (lme4's ``REMLcrit``).
    candidates : DataFrame
        The models compared: ``model, reml_criterion, singular, chosen, result`` (each
        model's :class:`REMLResult` at its own optimum).
    alpha : float
        1 - confidence level of the intervals in :attr:`summary`.
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
    selection: str = ""
    reml_criterion: float = float("nan")
    candidates: pd.DataFrame | None = field(default=None, repr=False)
    alpha: float = 0.05

    def __post_init__(self) -> None:
        summary = ModelSummary(self.summary)
        object.__setattr__(summary, "_fit", self)
        self.summary = summary

    @property
    def fixed_effects(self) -> pd.Series:
        """Fixed-effect estimates by term."""
        fixed = self.summary[self.summary["effect"] == "fixed"]
        return pd.Series(fixed["estimate"].to_numpy(), index=fixed["term"].to_numpy())

    def predict(self, data: pd.DataFrame) -> pd.Series:
        """Population-level (fixed-effect) prediction for the rows of ``data``."""
        return pd.Series(np.asarray(self.result.predict(data)), index=data.index)

    def table(self) -> pd.DataFrame:
        """:attr:`summary` with a ``model`` column holding :attr:`selection` (the CSV output)."""
        return self.summary.assign(model=self.selection)


@dataclass
class REMLResult:
    """The fitted model at the REML optimum (names follow statsmodels' ``MixedLMResults``)."""

    fe_params: pd.Series
    bse_fe: pd.Series
    cov_params_fe: pd.DataFrame = field(repr=False)
    cov_re: pd.DataFrame
    scale: float
    deviance: float
    theta: np.ndarray
    converged: bool
    method: str
    nobs: int
    n_groups: int
    random_effects: pd.DataFrame = field(repr=False)
    design_info: Any = field(repr=False, default=None)

    @property
    def llf(self) -> float:
        """REML log-likelihood."""
        return -self.deviance / 2

    @property
    def singular(self) -> bool:
        """lme4's ``isSingular`` at this fit."""
        return _is_singular(self.theta, self.cov_re.shape[0])

    def cov_params(self) -> pd.DataFrame:
        """Covariance of the fixed effects, ``sigma^2 (R_X' R_X)^-1`` (lme4's ``vcov``)."""
        return self.cov_params_fe

    def predict(self, data: pd.DataFrame) -> np.ndarray:
        """Fixed-effect prediction for ``data`` (needs the fixed part's variables only)."""
        (x,) = patsy.build_design_matrices([self.design_info], data, return_type="matrix")
        return np.asarray(x) @ self.fe_params.to_numpy()

    def summary(self) -> str:
        """A printable summary: criterion, variance components and fixed effects."""
        sd = np.sqrt(np.clip(np.diag(self.cov_re.to_numpy()), 0, None))
        lines = [
            f"Linear mixed model fit by REML ({self.method}); REML criterion {self.deviance:.4f}",
            f"Observations {self.nobs}, groups {self.n_groups}; singular: {self.singular}",
            "Random effects (SD):",
            *[
                f"  {name:<20}{value:12.6g}"
                for name, value in zip(self.cov_re.index, sd, strict=True)
            ],
            f"  {'Residual':<20}{np.sqrt(self.scale):12.6g}",
            "Fixed effects:           estimate   std.error",
            *[
                f"  {name:<20}{est:12.6g}{se:12.6g}"
                for name, est, se in zip(
                    self.fe_params.index, self.fe_params, self.bse_fe, strict=True
                )
            ],
        ]
        return "\n".join(lines)


def _is_singular(theta: np.ndarray, q: int, tolerance: float = SINGULAR_TOLERANCE) -> bool:
    """lme4's ``isSingular``: a bounded (diagonal) element of ``theta`` below ``tolerance``.

    ``theta`` holds the lower-triangular relative Cholesky factor of the random-effects covariance
    (relative to the residual variance); a diagonal element near zero means a variance of zero, or
    a correlation of +-1 between random effects.
    """
    bounded = np.isfinite(_reml.theta_lower_bounds(q))
    return bool(np.any(np.asarray(theta)[bounded] < tolerance))


@dataclass
class _Design:
    y: np.ndarray
    x: np.ndarray
    z: np.ndarray
    codes: np.ndarray
    levels: pd.Index
    fe_names: list[str]
    re_names: list[str]
    design_info: Any
    n_dropped: int


def _design(data: pd.DataFrame, formula: str, re_formula: str, group: str) -> _Design:
    right = re_formula.split("~", 1)[-1].strip() or "1"
    with np.errstate(all="ignore"):
        y, x = patsy.dmatrices(formula, data, NA_action="drop", return_type="dataframe")
        z = patsy.dmatrix(right, data, NA_action="drop", return_type="dataframe")
    keep = x.index.intersection(z.index)
    keep = keep[data.loc[keep, group].notna().to_numpy()]
    codes, levels = pd.factorize(data.loc[keep, group], sort=True)
    return _Design(
        y=y.loc[keep].to_numpy(dtype=float)[:, 0],
        x=x.loc[keep].to_numpy(dtype=float),
        z=z.loc[keep].to_numpy(dtype=float),
        codes=np.asarray(codes, dtype=np.int64),
        levels=pd.Index(levels),
        fe_names=[str(c) for c in x.columns],
        re_names=[str(c) for c in z.columns],
        design_info=x.design_info,
        n_dropped=len(data) - len(keep),
    )


@dataclass
class GroupPieces:
    """What :func:`fit_mixed` needs of one part of the data: a part holds whole groups.

    Made by :func:`group_pieces` for each part (the chunks of patients of ``hipdata metrics``,
    in worker processes) and combined by :func:`fit_mixed_pieces`, which gives the fit of the
    parts' rows concatenated. Per group, the sums of products are a group's own rows added in
    row order (:func:`hipdata.analysis._reml.group_stats`), so a part's groups have the values
    of the whole data's; the totals over rows (``X'X``, ``X'y``, ``y'y``) are pairwise sums
    that depend on every row, so each part hands over its rows' ``y`` and ``X`` and the totals
    are computed over them all.

    Attributes
    ----------
    levels : array
        The part's groups (sorted), as ``pd.factorize(..., sort=True)`` gives them.
    ztz, ztx, zty : ndarray
        Per-group ``Z'Z`` (q, q, G), ``Z'X`` (q, G, p), ``Z'y`` (q, G), every random-effect column.
    y, x : ndarray
        The rows used (no missing value), in the part's order.
    n_rows, n_present : int
        The part's rows, and its groups with a (non-missing) group value.
    fe_names, re_names : list of str
        The fixed and random design's column names.
    """

    levels: Any
    ztz: np.ndarray
    ztx: np.ndarray
    zty: np.ndarray
    y: np.ndarray
    x: np.ndarray
    n_rows: int
    n_present: int
    fe_names: list[str]
    re_names: list[str]


def group_pieces(data: pd.DataFrame, formula: str, *, group: str, re_formula: str) -> GroupPieces:
    """The :class:`GroupPieces` of ``data`` (arguments as :func:`fit_mixed`; rows with a missing
    value are left out as there). ``data`` must hold every row of its groups."""
    usable = data.loc[data[group].notna()]
    design = _design(usable, formula, re_formula, group)
    ztz, ztx, zty = _reml.group_stats(
        design.y, design.x, design.z, design.codes, len(design.levels)
    )
    return GroupPieces(
        levels=design.levels.array,
        ztz=ztz,
        ztx=ztx,
        zty=zty,
        y=design.y,
        x=design.x,
        n_rows=len(data),
        n_present=int(usable[group].nunique()),
        fe_names=design.fe_names,
        re_names=design.re_names,
    )


@dataclass
class _Prepared:
    """Everything the fit uses of the data: the sufficient statistics of every random-effect
    column and the names and counts the result reports."""

    stats: _reml.SufficientStats
    levels: pd.Index
    fe_names: list[str]
    re_names: list[str]
    design_info: Any
    n_rows: int
    n_present: int

    def stats_for(self, columns: list[int]) -> _reml.SufficientStats:
        """The statistics of the random-effect columns ``columns`` (their rows and columns of
        the full ones: the same sums)."""
        full = self.stats
        if columns == list(range(full.q)):
            return full
        index = np.asarray(columns)
        return _reml.SufficientStats(
            ztz=np.ascontiguousarray(full.ztz[np.ix_(index, index)]),
            ztx=np.ascontiguousarray(full.ztx[index]),
            zty=np.ascontiguousarray(full.zty[index]),
            xtx=full.xtx,
            xty=full.xty,
            yty=full.yty,
            n_obs=full.n_obs,
        )


def _combine(pieces: Sequence[GroupPieces], design_info: Any) -> _Prepared:
    """The :class:`_Prepared` of the parts' rows concatenated (see :class:`GroupPieces`)."""
    if not pieces:
        raise ValueError("no parts of the data to fit")
    first = pieces[0]
    if any(p.fe_names != first.fe_names or p.re_names != first.re_names for p in pieces):
        raise ValueError("the parts of the data have different model designs")
    with_groups = [p for p in pieces if len(p.levels)] or list(pieces[:1])
    every = pd.concat([pd.Series(p.levels) for p in with_groups], ignore_index=True)
    codes, uniques = pd.factorize(every, sort=True)
    if len(uniques) != len(every):
        raise ValueError("a group appears in more than one part of the data")
    order = np.argsort(codes, kind="stable")  # the groups in the one-run (sorted) order
    ztz = np.concatenate([p.ztz for p in with_groups], axis=2)[:, :, order]
    ztx = np.concatenate([p.ztx for p in with_groups], axis=1)[:, order, :]
    zty = np.concatenate([p.zty for p in with_groups], axis=1)[:, order]
    y = np.concatenate([p.y for p in pieces])
    x = np.concatenate([p.x for p in pieces])
    xtx, xty, yty = _reml.totals(y, x)
    stats = _reml.SufficientStats(
        ztz=np.ascontiguousarray(ztz),
        ztx=np.ascontiguousarray(ztx),
        zty=np.ascontiguousarray(zty),
        xtx=xtx,
        xty=xty,
        yty=yty,
        n_obs=len(y),
    )
    return _Prepared(
        stats=stats,
        levels=pd.Index(uniques),
        fe_names=first.fe_names,
        re_names=first.re_names,
        design_info=design_info,
        n_rows=sum(p.n_rows for p in pieces),
        n_present=sum(p.n_present for p in pieces),
    )


@dataclass
class _Optimum:
    stats: _reml.SufficientStats
    run: _reml.Run
    converged: bool
    singular: bool


def _optimise(
    stats: _reml.SufficientStats,
    optimisers: Sequence[str],
    extra_starts: Sequence[np.ndarray] = (),
) -> _Optimum:
    """The first optimiser from several starts, every other one from the best point found.

    The starts are lme4's (``Lambda = I``), ``0.1 I`` and ``extra_starts`` (the nested model's
    optimum). Each further optimiser then restarts from the best point so far (a run that stopped
    short is caught by the others), and the first optimiser once more if one of them improved
    on it. The lowest criterion of all runs is kept.
    """
    q = stats.q
    rows, cols = _reml.theta_index(q)
    diagonal = (rows == cols).astype(float)
    methods = tuple(optimisers)
    runs = _reml.minimise(stats, [diagonal, 0.1 * diagonal, *extra_starts], methods[:1])
    best = min(runs, key=lambda r: r.deviance)
    runs += _reml.minimise(stats, [best.theta], methods[1:])
    improved = min(runs, key=lambda r: r.deviance)
    if improved.deviance < best.deviance - CRITERION_TOLERANCE:
        runs += _reml.minimise(stats, [improved.theta], methods[:1])
    # a point that every run missed but a start reached (e.g. the nested model's optimum)
    for start in extra_starts:
        runs.append(
            _reml.Run("start", start, start, _reml.deviance(stats, start), True, 1),
        )
    finite = [r for r in runs if np.isfinite(r.deviance)]
    if not finite:
        raise ValueError("the REML criterion could not be evaluated at any start")
    best = min(finite, key=lambda r: r.deviance)
    at_best = [r for r in finite if r.deviance <= best.deviance + CRITERION_TOLERANCE]
    converged = any(r.success for r in at_best)
    first = next((r for r in at_best if r.method != "start"), best)
    return _Optimum(stats, first, converged, _is_singular(best.theta, q))


def _result(
    optimum: _Optimum, design: _Prepared, columns: list[int], converged: bool
) -> REMLResult:
    sol = _reml.solution(optimum.stats, optimum.run.theta)
    names = [design.re_names[c] for c in columns]
    fe = design.fe_names
    cov_fe = sol.sigma2 * sol.beta_cov_unscaled
    cov_re = sol.sigma2 * sol.lam @ sol.lam.T
    return REMLResult(
        fe_params=pd.Series(sol.beta, index=fe),
        bse_fe=pd.Series(np.sqrt(np.diag(cov_fe)), index=fe),
        cov_params_fe=pd.DataFrame(cov_fe, index=fe, columns=fe),
        cov_re=pd.DataFrame(cov_re, index=names, columns=names),
        scale=float(sol.sigma2),
        deviance=float(sol.deviance),
        theta=sol.theta,
        converged=converged,
        method=optimum.run.method,
        nobs=int(optimum.stats.n_obs),
        n_groups=int(optimum.stats.n_groups),
        random_effects=pd.DataFrame(sol.u @ sol.lam.T, index=design.levels, columns=names),
        design_info=design.design_info,
    )


def _summary(result: REMLResult, alpha: float) -> pd.DataFrame:
    # The normal quantile and tail from scipy.special (norm.ppf is ndtri, norm.sf(x) is ndtr(-x),
    # bit for bit): importing scipy.stats would add about a second to every `hipdata metrics`.
    from scipy.special import ndtr, ndtri

    z = ndtri(1 - alpha / 2)
    estimate = result.fe_params.to_numpy()
    std_error = result.bse_fe.to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        p_value = 2 * ndtr(-np.abs(estimate / std_error))
    fixed = pd.DataFrame(
        {
            "term": list(result.fe_params.index),
            "estimate": estimate,
            "std_error": std_error,
            "ci_low": estimate - z * std_error,
            "ci_high": estimate + z * std_error,
            "effect": "fixed",
            "p_value": p_value,
        }
    )
    names = list(result.cov_re.index)
    cov_re = result.cov_re.to_numpy()
    sd = np.sqrt(np.clip(np.diag(cov_re), 0, None))
    terms = [f"sd({name})" for name in names]
    values = list(sd)
    for i, j in combinations(range(len(names)), 2):
        terms.append(f"cor({names[i]},{names[j]})")
        denominator = sd[i] * sd[j]
        values.append(
            float(np.clip(cov_re[i, j] / denominator, -1, 1)) if denominator > 0 else np.nan
        )
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


@accepts_ci
def fit_mixed(
    data: pd.DataFrame,
    formula: str,
    *,
    group: str,
    re_formula: str = "~week",
    optimisers: Sequence[str] = DEFAULT_OPTIMISERS,
    alpha: float = 0.05,
    group_label: str | None = None,
    row_label: str = "rows",
) -> MixedModelFit:
    """Fit a linear mixed model at its REML optimum, falling back as lme4 users do when singular.

    The model is ``formula`` for the fixed part and ``re_formula`` for the random part, with one
    set of random effects per level of ``group`` (``"~week"``: random intercept and slope;
    ``"1"``: random intercept only). The exact profiled REML criterion (lme4's ``REMLcrit``) is
    minimised by every optimiser from several starts and the lowest value is kept. A random-slope
    model is checked against the nested random-intercept model (it can never be worse) and, when
    its optimum is singular in lme4's sense (``isSingular``), replaced by the random-intercept
    model with a warning; see the module docstring for the whole rule.

    Rows with a missing value in a model variable or in ``group`` are left out and counted.

    Parameters
    ----------
    data : DataFrame
        Long-format data, one row per observation.
    formula : str
        Fixed-effects formula (patsy), e.g. ``"pain_24h ~ week"``.
    group : str
        Column identifying the groups (patients).
    re_formula : str
        Random-effects formula (``"~week"``, ``"1"``); its first column must be the intercept.
    optimisers : sequence of str
        ``scipy.optimize.minimize`` methods that take bounds (``L-BFGS-B``, ``Nelder-Mead``,
        ``Powell``, ``TNC``; statsmodels' ``lbfgs``, ``nm``, ``powell`` are accepted), all of
        which are tried.
    alpha : float
        1 - confidence level of the fixed-effect (Wald) intervals (``ci=`` level is a
        deprecated alias).
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
        When fewer than two groups remain, or when the criterion cannot be evaluated at all.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> data = pd.DataFrame({"patient_id": np.repeat(list("ABCDEFGH"), 6),
    ...                      "week": np.tile(range(6), 8)})
    >>> data["pain"] = (5 - 0.4 * data["week"] + rng.normal(0, 1, 8).repeat(6)
    ...                 + rng.normal(0, 0.5, 48))
    >>> fit = fit_mixed(data, "pain ~ week", group="patient_id", group_label="patient")
    >>> fit.converged, fit.random_effects
    (True, 'intercept')
    >>> fit.selection
    'random intercept only; slope model singular (lme4 isSingular), fell back'
    >>> fit.summary["term"].tolist()
    ['Intercept', 'week', 'sd(Intercept)', 'sd(Residual)']
    """
    methods = _methods(optimisers)
    label = group if group_label is None else group_label
    usable = data.loc[data[group].notna()]
    n_present = usable[group].nunique()
    if n_present < 2:
        raise ValueError(
            f"a mixed model needs at least two groups in column {group!r}; found {n_present}"
        )
    design = _design(usable, formula, re_formula, group)
    prepared = _Prepared(
        stats=_reml.sufficient_stats(
            design.y, design.x, design.z, design.codes, len(design.levels)
        ),
        levels=design.levels,
        fe_names=design.fe_names,
        re_names=design.re_names,
        design_info=design.design_info,
        n_rows=len(data),
        n_present=n_present,
    )
    return _fit_prepared(
        prepared, formula, group, re_formula, methods, alpha, label, row_label, data_rows=len(data)
    )


def fit_mixed_pieces(
    pieces: Sequence[GroupPieces],
    formula: str,
    *,
    group: str,
    re_formula: str = "~week",
    optimisers: Sequence[str] = DEFAULT_OPTIMISERS,
    alpha: float = 0.05,
    group_label: str | None = None,
    row_label: str = "rows",
    design_data: pd.DataFrame | None = None,
) -> MixedModelFit:
    """:func:`fit_mixed` of the concatenated parts of the data, from their :func:`group_pieces`.

    The parts hold whole groups, in any order; their rows, concatenated in the order given, are
    the data :func:`fit_mixed` would be given. The fit is the same, bit for bit: the per-group
    statistics are the parts', put in the sorted order of the groups, and the totals over rows
    are computed over all the parts' rows in order. ``design_data`` (a few rows with the
    model's variables, of the data's dtypes) gives the fixed part's design for
    :meth:`REMLResult.predict`.

    Raises
    ------
    ValueError
        As :func:`fit_mixed`, and when a group appears in more than one part.
    """
    methods = _methods(optimisers)
    label = group if group_label is None else group_label
    n_present = sum(p.n_present for p in pieces)
    if n_present < 2:
        raise ValueError(
            f"a mixed model needs at least two groups in column {group!r}; found {n_present}"
        )
    design_info = None
    if design_data is not None:
        with np.errstate(all="ignore"):
            design_info = patsy.dmatrices(
                formula, design_data, NA_action="drop", return_type="dataframe"
            )[1].design_info
    prepared = _combine(pieces, design_info)
    return _fit_prepared(
        prepared,
        formula,
        group,
        re_formula,
        methods,
        alpha,
        label,
        row_label,
        data_rows=prepared.n_rows,
    )


def _methods(optimisers: Sequence[str]) -> list[str]:
    methods = [OPTIMISER_ALIASES.get(name, name) for name in optimisers]
    unknown = [name for name in methods if name not in _reml.BOUNDED_METHODS]
    if unknown or not methods:
        raise ValueError(
            f"optimisers must be scipy methods that take bounds, from {_reml.BOUNDED_METHODS}; "
            f"got {list(optimisers)}"
        )
    return methods


def _fit_prepared(
    design: _Prepared,
    formula: str,
    group: str,
    re_formula: str,
    optimisers: list[str],
    alpha: float,
    label: str,
    row_label: str,
    *,
    data_rows: int,
) -> MixedModelFit:
    """The fit of :func:`fit_mixed` from the data's :class:`_Prepared` statistics."""
    notes: list[str] = []
    n_dropped = data_rows - design.stats.n_obs
    n_groups = len(design.levels)
    if n_groups < 2:
        raise ValueError(
            f"a mixed model needs at least two groups with complete {row_label}; found {n_groups}"
        )
    if design.re_names[0] != "Intercept":
        raise ValueError(f"the random part {re_formula!r} must include an intercept")

    stats_for = design.stats_for
    n_random = len(design.re_names)
    slope_asked = n_random > 1
    columns_full = list(range(n_random))
    nested = _optimise(stats_for([0]), optimisers)
    candidates = [("random intercept only", nested)]
    chosen, columns = nested, [0]
    used_formula = "1"
    if slope_asked:
        q = n_random
        embedded = np.zeros(q * (q + 1) // 2)
        embedded[0] = nested.run.theta[0]
        full = _optimise(stats_for(list(range(q))), optimisers, extra_starts=[embedded])
        candidates.insert(0, ("random intercept and slope", full))
        if full.run.deviance > nested.run.deviance + CRITERION_TOLERANCE:  # pragma: no cover
            # cannot happen: the nested optimum is a start of the larger model
            raise RuntimeError("the larger model's optimum is worse than the nested model's")
        if full.singular:
            notes.append(
                f"The model with a random intercept and slope per {label} ({re_formula}) is "
                f"singular at its best fit (REML criterion {full.run.deviance:.2f}; lme4's "
                f"isSingular: the {label}s' slopes do not vary, or vary in perfect correlation "
                "with their intercepts, so the random-effects covariance is on its boundary). As "
                f"documented, it was refitted with a random intercept per {label} only (REML "
                f"criterion {nested.run.deviance:.2f})."
            )
            selection = "random intercept only; slope model singular (lme4 isSingular), fell back"
        else:
            chosen, columns, used_formula = full, list(range(q)), re_formula
            selection = "random intercept and slope; best fit not singular"
    else:
        selection = "random intercept only; as requested"
    random_effects = "intercept+slope" if len(columns) > 1 else "intercept"
    if chosen is nested and nested.singular:
        notes.append(
            f"The variance between {label}s was estimated at (or near) zero (a singular fit): "
            f"the fixed effects are those of an ordinary regression ignoring the {label}s, and "
            "the random-effect SDs are not informative."
        )
        selection += "; variance between groups estimated at zero (singular)"
    if not chosen.converged:
        notes.append(
            f"No optimiser reported convergence at the best point found ({chosen.run.method}); "
            "the estimates are the lowest REML criterion reached but may not be reliable."
        )
    column_sets = {"random intercept only": [0], "random intercept and slope": columns_full}
    results = {
        name: _result(opt, design, column_sets[name], opt.converged) for name, opt in candidates
    }
    result = results[next(name for name, opt in candidates if opt is chosen)]
    if n_dropped:
        notes.append(
            f"{n_dropped} of {data_rows} {row_label} were left out for a missing value in the "
            "model's variables."
        )
    table = pd.DataFrame(
        {
            "model": [name for name, _ in candidates],
            "reml_criterion": [opt.run.deviance for _, opt in candidates],
            "singular": [opt.singular for _, opt in candidates],
            "chosen": [opt is chosen for _, opt in candidates],
            "result": [results[name] for name, _ in candidates],
        }
    )
    return MixedModelFit(
        summary=_summary(result, alpha),
        converged=bool(chosen.converged),
        method=chosen.run.method,
        random_effects=random_effects,
        warnings=notes,
        n_obs=int(result.nobs),
        n_groups=n_groups,
        n_dropped=n_dropped,
        formula=formula,
        re_formula=used_formula,
        group=group,
        result=result,
        selection=selection,
        reml_criterion=float(result.deviance),
        candidates=table,
        alpha=alpha,
    )


def _number(value: float, width: int = 10) -> str:
    """A number for the summary table: 4 decimals, scientific when very large or small."""
    if value is None or not np.isfinite(value):
        return f"{'-':>{width}}"
    if value != 0 and (abs(value) >= 1e4 or abs(value) < 1e-3):
        return f"{value:>{width}.3e}"
    return f"{value:>{width}.4f}"


def _p_value(p: float) -> str:
    if not np.isfinite(p):
        return f"{'-':>8}"
    return f"{'<0.001':>8}" if p < 0.001 else f"{p:>8.3f}"


def _summary_text(fit: MixedModelFit) -> str:
    """The printable summary of ``fit`` (see :attr:`MixedModelFit.summary`)."""
    table = pd.DataFrame(fit.summary)
    fixed = table[table["effect"] == "fixed"]
    random = table[table["effect"] == "random"]
    width = max(14, *(len(str(term)) for term in table["term"])) + 1
    low, high = f"[{fit.alpha / 2:g}", f"{1 - fit.alpha / 2:g}]"
    rule = "=" * (width + 57)
    thin = "-" * (width + 57)
    converged = f"yes ({fit.method})" if fit.converged else f"NO ({fit.method})"
    header = [
        "Linear mixed model fit by REML (profiled, lme4's formulation)".center(len(rule)),
        rule,
        f"{'Formula:':<16}{fit.formula}",
        f"{'Random effects:':<16}{fit.random_effects} (~{fit.re_formula.lstrip('~')} | "
        f"{fit.group})",
        f"{'Observations:':<16}{fit.n_obs:<12}{'Groups:':<10}{fit.n_groups:<10}"
        f"{'Rows left out:':<15}{fit.n_dropped}",
        f"{'REML criterion:':<16}{fit.reml_criterion:<22.4f}{'Converged:':<11}{converged}",
        f"{'Model chosen:':<16}{fit.selection or fit.random_effects}",
        thin,
        f"{'Fixed effects':<{width}}{'Estimate':>10}{'Std.Err.':>10}{'z':>9}"
        f"{low:>10}{high:>10}{'P>|z|':>8}",
    ]
    rows = []
    for row in fixed.itertuples(index=False):
        z = row.estimate / row.std_error if row.std_error else np.nan
        z_text = f"{z:>9.2f}" if np.isfinite(z) else f"{'-':>9}"
        rows.append(
            f"{row.term:<{width}}{_number(row.estimate)}{_number(row.std_error)}"
            f"{z_text}"
            f"{_number(row.ci_low)}{_number(row.ci_high)}{_p_value(row.p_value)}"
        )
    rows += [thin, f"{'Random effects':<{width}}{'SD / cor':>10}"]
    rows += [f"{row.term:<{width}}{_number(row.estimate)}" for row in random.itertuples()]
    rows.append(rule)
    notes = [f"Note: {warning}" for warning in fit.warnings]
    notes.append(f"Intervals: Wald (normal), {1 - fit.alpha:.0%}; standard errors are lme4's vcov.")
    return "\n".join([*header, *rows, *notes])


def _as_list(by: str | Sequence[str] | None) -> list[str]:
    if by is None:
        return []
    return [by] if isinstance(by, str) else list(by)
