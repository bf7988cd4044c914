"""Funnel plots for comparing clinics or clinicians (Spiegelhalter 2005).

A funnel plot shows each unit's indicator (a proportion ``numerator / denominator``) against its
denominator, with control limits around a target that narrow as the denominator grows. A unit
outside the 99.8 % limits is unlikely to differ from the target by chance alone; the 95 % limits
are the "alert" lines.

Reference: Spiegelhalter DJ. Funnel plots for comparing institutional performance. *Statistics in
Medicine* 2005; 24:1185-1202 (exact binomial limits with interpolation: appendix A.1.1;
overdispersion: section 5).

Examples
--------
>>> import pandas as pd
>>> from hipdata.report.funnel import funnel_table
>>> counts = pd.DataFrame(
...     {"clinic_id": ["A", "B", "C"], "met": [40, 18, 86], "sessions": [50, 40, 100]}
... )
>>> table = funnel_table(counts, numerator="met", denominator="sessions", unit="clinic_id")
>>> list(table["flag"])
['within', 'below 99.8%', 'above 95%']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import PercentFormatter
from scipy import stats

#: Control-limit levels of a funnel plot: the 95 % "alert" and 99.8 % "alarm" limits
#: (about 2 and 3 standard errors; Spiegelhalter 2005, section 3).
FUNNEL_LEVELS: tuple[float, ...] = (0.95, 0.998)
#: Share of z-scores pulled in at each end before estimating overdispersion (Spiegelhalter 2005,
#: section 5.1: a 10 % Winsorised estimate).
WINSOR_SHARE = 0.1
#: Overdispersion adjustments accepted by :func:`funnel_table` and :func:`plot_funnel`.
ADJUSTMENTS = (None, "multiplicative", "additive")

FLAG_WITHIN = "within"


def level_label(level: float) -> str:
    """Percent label of a limit level as used in column names: ``0.998 -> "99.8"``."""
    return f"{100 * level:g}"


def _check_levels(levels: Sequence[float]) -> tuple[float, ...]:
    levels = tuple(sorted(float(level) for level in levels))
    if not levels or not all(0 < level < 1 for level in levels):
        raise ValueError(f"levels must be probabilities strictly between 0 and 1, got {levels}")
    return levels


def _as_denominators(n) -> np.ndarray:
    n = np.atleast_1d(np.asarray(n, dtype=float))
    finite = n[np.isfinite(n)]
    if (finite < 0).any() or (finite != np.round(finite)).any():
        bad = finite[(finite < 0) | (finite != np.round(finite))][0]
        raise ValueError(
            f"denominators must be whole numbers >= 0 (a count of patients or sessions), got {bad}"
        )
    return n


def _binomial_limit(p0: float, n: np.ndarray, prob: float) -> np.ndarray:
    """Spiegelhalter's interpolated binomial quantile ``(r_P - alpha) / n``, clipped to [0, 1]."""
    n_safe = np.where(n > 0, n, 1.0)
    r = stats.binom.ppf(prob, n_safe, p0)
    # ppf is computed in floating point; step r so that it is exactly the smallest r with
    # F(r) >= P, which is the definition the interpolation relies on.
    r = np.where(stats.binom.cdf(r - 1, n_safe, p0) >= prob, r - 1, r)
    r = np.where(stats.binom.cdf(r, n_safe, p0) < prob, r + 1, r)
    cdf_r = stats.binom.cdf(r, n_safe, p0)
    cdf_before = stats.binom.cdf(r - 1, n_safe, p0)
    alpha = (cdf_r - prob) / (cdf_r - cdf_before)
    limit = np.clip((r - alpha) / n_safe, 0.0, 1.0)
    return np.where(n > 0, limit, np.nan)


def funnel_limits_proportion(
    p0: float, n, *, levels: Sequence[float] = FUNNEL_LEVELS
) -> pd.DataFrame:
    """Exact binomial control limits for a proportion, with Spiegelhalter's interpolation.

    For a target proportion ``p0``, a denominator ``n`` and a one-sided probability ``P``, let
    ``r_P`` be the smallest ``r`` with ``F(r) >= P`` (``F`` the Binomial(n, p0) CDF) and
    ``alpha = (F(r_P) - P) / (F(r_P) - F(r_P - 1))``. The limit is ``(r_P - alpha) / n``
    (Spiegelhalter 2005, appendix A.1.1), clipped to [0, 1]. A two-sided ``level`` uses
    ``P = (1 - level) / 2`` for the lower and ``P = (1 + level) / 2`` for the upper limit. The
    interpolation makes the limits a smooth function of ``n`` instead of a staircase.

    Parameters
    ----------
    p0 : float
        Target proportion, strictly between 0 and 1.
    n : int or array-like of int
        Denominators (whole numbers >= 0); limits are NaN where ``n`` is 0.
    levels : sequence of float
        Two-sided coverage of each pair of limits.

    Returns
    -------
    DataFrame
        Columns ``n``, ``target`` and ``lower_<L>``, ``upper_<L>`` for each level, ``<L>`` the
        level in percent (``lower_95``, ``upper_99.8``).

    Examples
    --------
    >>> limits = funnel_limits_proportion(0.5, [50])
    >>> round(float(limits["upper_95"].iloc[0]), 4)
    0.6293
    """
    if not 0 < p0 < 1:
        raise ValueError(f"target proportion p0 must be strictly between 0 and 1, got {p0}")
    n = _as_denominators(n)
    limits = {"n": n, "target": np.full(n.shape, float(p0))}
    for level in _check_levels(levels):
        label = level_label(level)
        limits[f"lower_{label}"] = _binomial_limit(p0, n, (1 - level) / 2)
        limits[f"upper_{label}"] = _binomial_limit(p0, n, (1 + level) / 2)
    return pd.DataFrame(limits)


def funnel_limits_mean(
    target: float, sd: float, n, *, levels: Sequence[float] = FUNNEL_LEVELS
) -> pd.DataFrame:
    """Normal control limits for a mean: ``target ± z * sd / sqrt(n)``.

    ``z`` is the standard normal quantile at ``(1 + level) / 2`` (1.960 for 95 %, 3.090 for
    99.8 %); ``sd`` is the between-patient standard deviation under the target.

    Parameters
    ----------
    target : float
        The mean expected of every unit.
    sd : float
        Standard deviation of one observation (> 0).
    n : int or array-like
        Number of observations per unit; limits are NaN where ``n`` is 0.
    levels : sequence of float
        Two-sided coverage of each pair of limits.

    Returns
    -------
    DataFrame
        Same columns as :func:`funnel_limits_proportion`.

    Examples
    --------
    >>> limits = funnel_limits_mean(2.0, 1.5, [25])
    >>> round(float(limits["upper_95"].iloc[0]), 3)  # 2 + 1.96 * 1.5 / 5
    2.588
    """
    if not sd > 0:
        raise ValueError(f"sd must be positive, got {sd}")
    n = _as_denominators(n)
    with np.errstate(divide="ignore"):
        standard_error = np.where(n > 0, sd / np.sqrt(np.where(n > 0, n, 1.0)), np.nan)
    limits = {"n": n, "target": np.full(n.shape, float(target))}
    for level in _check_levels(levels):
        z = stats.norm.ppf((1 + level) / 2)
        label = level_label(level)
        limits[f"lower_{label}"] = target - z * standard_error
        limits[f"upper_{label}"] = target + z * standard_error
    return pd.DataFrame(limits)


@dataclass(frozen=True)
class Overdispersion:
    """Overdispersion of units around a target (Spiegelhalter 2005, section 5).

    Attributes
    ----------
    phi : float
        Multiplicative overdispersion factor: mean of the squared Winsorised z-scores.
    tau2 : float
        Additive between-unit variance (random-effects), 0 when ``phi`` gives none.
    n_units : int
        Number of units with a z-score.
    winsor : float
        Share of z-scores Winsorised at each end.
    """

    phi: float
    tau2: float
    n_units: int
    winsor: float

    @property
    def inflation(self) -> float:
        """Factor applied to the limits' distance from the target: sqrt(phi) when phi > 1."""
        return float(np.sqrt(self.phi)) if self.phi > 1 else 1.0


def overdispersion(
    observed,
    target,
    n,
    *,
    sd: float | None = None,
    winsor: float = WINSOR_SHARE,
) -> Overdispersion:
    """Estimate overdispersion from Winsorised z-scores (Spiegelhalter 2005, section 5).

    Each unit's z-score is ``z_i = (y_i - target_i) / s_i`` with ``s_i = sqrt(t (1 - t) / n_i)``
    for proportions, or ``sd / sqrt(n_i)`` for means when ``sd`` is given. The z-scores below
    their ``winsor`` quantile are raised to it and those above the ``1 - winsor`` quantile are
    lowered to it (quantiles by linear interpolation, numpy's default). Then

    - ``phi = sum(z_w^2) / k`` over the ``k`` units: limits are widened by ``sqrt(phi)`` when
      ``phi > 1`` (multiplicative model);
    - ``tau2 = (k phi - (k - 1)) / (sum(w) - sum(w^2) / sum(w))`` with ``w_i = 1 / s_i^2``,
      0 when ``k phi <= k - 1`` (additive random-effects model): limits become
      ``target ± z sqrt(s_i^2 + tau2)``.

    Units with ``n`` = 0 or a missing value are ignored.

    Parameters
    ----------
    observed : array-like
        Each unit's indicator (a proportion, or a mean when ``sd`` is given).
    target : float or array-like
        Target proportion or mean (per unit when array-like).
    n : array-like
        Each unit's denominator.
    sd : float, optional
        Standard deviation of one observation, for means.
    winsor : float
        Share Winsorised at each end, in [0, 0.5).

    Returns
    -------
    Overdispersion

    Examples
    --------
    >>> result = overdispersion([0.6, 0.4, 0.5], 0.5, [100, 100, 100], winsor=0.0)
    >>> round(result.phi, 6)  # z = 2, -2, 0 -> (4 + 4 + 0) / 3
    2.666667
    """
    if not 0 <= winsor < 0.5:
        raise ValueError(f"winsor must be in [0, 0.5), got {winsor}")
    observed, target, n = np.broadcast_arrays(
        np.asarray(observed, dtype=float), np.asarray(target, dtype=float), _as_denominators(n)
    )
    if sd is None:
        variance = target * (1 - target) / np.where(n > 0, n, np.nan)
    else:
        variance = sd**2 / np.where(n > 0, n, np.nan)
    standard_error = np.sqrt(variance)
    usable = np.isfinite(observed) & np.isfinite(standard_error) & (standard_error > 0)
    k = int(usable.sum())
    if k == 0:
        return Overdispersion(phi=np.nan, tau2=np.nan, n_units=0, winsor=winsor)
    z = (observed[usable] - target[usable]) / standard_error[usable]
    low, high = np.quantile(z, [winsor, 1 - winsor])
    z_winsorised = np.clip(z, low, high)
    phi = float(np.sum(z_winsorised**2) / k)
    weight = 1 / variance[usable]
    tau2_denominator = weight.sum() - (weight**2).sum() / weight.sum()
    if k * phi > k - 1 and tau2_denominator > 0:
        tau2 = float((k * phi - (k - 1)) / tau2_denominator)
    else:
        tau2 = 0.0
    return Overdispersion(phi=phi, tau2=tau2, n_units=k, winsor=winsor)


def _proportion_limits(
    p0: float,
    n: np.ndarray,
    *,
    levels: tuple[float, ...],
    adjust: str | None,
    dispersion: Overdispersion | None,
) -> pd.DataFrame:
    """Limits at ``n``: exact binomial, or adjusted for overdispersion."""
    if adjust is None:
        return funnel_limits_proportion(p0, n, levels=levels)
    if adjust == "multiplicative":
        limits = funnel_limits_proportion(p0, n, levels=levels)
        inflation = dispersion.inflation if dispersion is not None else 1.0
        for column in limits.columns.drop(["n", "target"]):
            limits[column] = (p0 + inflation * (limits[column] - p0)).clip(0.0, 1.0)
        return limits
    if adjust == "additive":
        tau2 = dispersion.tau2 if dispersion is not None and np.isfinite(dispersion.tau2) else 0.0
        n = _as_denominators(n)
        with np.errstate(divide="ignore", invalid="ignore"):
            spread = np.where(n > 0, np.sqrt(p0 * (1 - p0) / n + tau2), np.nan)
        limits = {"n": n, "target": np.full(n.shape, p0)}
        for level in levels:
            z = stats.norm.ppf((1 + level) / 2)
            label = level_label(level)
            limits[f"lower_{label}"] = np.clip(p0 - z * spread, 0.0, 1.0)
            limits[f"upper_{label}"] = np.clip(p0 + z * spread, 0.0, 1.0)
        return pd.DataFrame(limits)
    raise ValueError(f"adjust must be one of {ADJUSTMENTS}, got {adjust!r}")


def funnel_table(
    data: pd.DataFrame,
    *,
    numerator: str,
    denominator: str,
    unit: str,
    target: float | None = None,
    levels: Sequence[float] = FUNNEL_LEVELS,
    adjust: str | None = None,
    winsor: float = WINSOR_SHARE,
) -> pd.DataFrame:
    """One row per unit: its proportion, the funnel limits at its denominator, and a flag.

    Rows of one unit are summed first (numerators and denominators), so a table with one row per
    unit and quarter gives the unit's pooled proportion. ``value = numerator / denominator``.
    The target defaults to the pooled proportion ``sum(numerator) / sum(denominator)``. A unit
    is flagged ``above <L>%`` when its value is strictly beyond the upper limit of the widest
    level ``L`` it exceeds (``below <L>%`` likewise), else ``within``; a unit with denominator 0
    has no value and no flag.

    Parameters
    ----------
    data : DataFrame
        Counts per unit (clinic or clinician).
    numerator, denominator, unit : str
        Column names.
    target : float, optional
        Target proportion; default the pooled proportion.
    levels : sequence of float
        Two-sided limit levels.
    adjust : {None, "multiplicative", "additive"}
        Overdispersion adjustment (see :func:`overdispersion`).
    winsor : float
        Winsorising share for the overdispersion estimate.

    Returns
    -------
    DataFrame
        Columns: ``unit``'s name, numerator, denominator, ``value``, ``target``,
        ``lower_<L>``/``upper_<L>`` per level, ``flag``. ``attrs["overdispersion"]`` holds the
        :class:`Overdispersion` estimate.
    """
    missing = [c for c in (numerator, denominator, unit) if c not in data.columns]
    if missing:
        raise KeyError(f"funnel_table: column(s) {missing} not in data ({list(data.columns)})")
    levels = _check_levels(levels)
    counts = data.groupby(unit, sort=True, observed=True)[[numerator, denominator]].sum()
    counts = counts.reset_index()
    numerators = counts[numerator].to_numpy(dtype=float)
    denominators = _as_denominators(counts[denominator].to_numpy(dtype=float))
    if (numerators > denominators).any() or (numerators < 0).any():
        bad = counts.loc[(numerators > denominators) | (numerators < 0), unit].iloc[0]
        raise ValueError(
            f"funnel_table: unit {bad!r} has {numerator} outside 0..{denominator}; "
            "a funnel plot of proportions needs 0 <= numerator <= denominator"
        )
    if target is None:
        target = float(numerators.sum() / denominators.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(denominators > 0, numerators / denominators, np.nan)
    dispersion = overdispersion(value, target, denominators, winsor=winsor)
    limits = _proportion_limits(
        target, denominators, levels=levels, adjust=adjust, dispersion=dispersion
    )
    table = counts.assign(value=value).join(limits.drop(columns="n"))
    flag = pd.Series(FLAG_WITHIN, index=table.index, dtype="str")
    for level in levels:  # narrow to wide, so the widest exceeded level wins
        label = level_label(level)
        flag = flag.mask(table["value"] > table[f"upper_{label}"], f"above {label}%")
        flag = flag.mask(table["value"] < table[f"lower_{label}"], f"below {label}%")
    table["flag"] = flag.mask(table["value"].isna())
    table.attrs["overdispersion"] = dispersion
    return table


def _label_without_overlap(ax: Axes, x, y, labels, *, fontsize: float) -> None:
    """Annotate points, moving each label up until it clears the labels already placed.

    Label boxes are estimated from the font size (0.65 em per character, 1.3 em per line): good
    enough to keep a handful of outlier labels apart without a text renderer.
    """
    to_pixels = ax.figure.dpi / 72
    height = 1.3 * fontsize * to_pixels
    offset = 4 * to_pixels
    display = ax.transData.transform(np.column_stack([x, y]))
    placed: list[tuple[float, float, float]] = []  # (left, bottom, width) of placed boxes
    for i in np.argsort(display[:, 1], kind="stable"):
        left = display[i, 0] + offset
        bottom = display[i, 1] - height / 2
        width = 0.65 * fontsize * to_pixels * len(labels[i])
        while any(
            left < p_left + p_width and p_left < left + width and abs(bottom - p_bottom) < height
            for p_left, p_bottom, p_width in placed
        ):
            bottom += height
        placed.append((left, bottom, width))
        shift_points = (bottom + height / 2 - display[i, 1]) / to_pixels
        ax.annotate(
            labels[i],
            xy=(x[i], y[i]),
            xytext=(4, shift_points),
            textcoords="offset points",
            fontsize=fontsize,
            va="center",
            arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "0.4"} if shift_points else None,
        )


def plot_funnel(
    *,
    data: pd.DataFrame,
    numerator: str,
    denominator: str,
    unit: str | None = None,
    target: float | None = None,
    ax: Axes | None = None,
    label_outliers: bool = True,
    title: str | None = None,
    levels: Sequence[float] = FUNNEL_LEVELS,
    adjust: str | None = None,
    winsor: float = WINSOR_SHARE,
) -> Axes:
    """Funnel plot of a proportion by clinic or clinician.

    Points are the units of :func:`funnel_table`; the horizontal line is the target; the curves
    are the control limits over a grid of denominators (dashed: the inner level, solid: the outer).
    Units beyond the inner limits are coloured and, with ``label_outliers``, labelled by ``unit``.

    Only clinic or clinician ids may label points: a ``unit`` column naming patients is refused,
    because a report must not identify patients.

    Parameters
    ----------
    data : DataFrame
        Counts per unit.
    numerator, denominator : str
        Column names of the counts.
    unit : str, optional
        Column of unit ids (e.g. ``clinic_id``); without it every row is a unit, unlabelled.
    target : float, optional
        Target proportion; default the pooled proportion.
    ax : Axes, optional
        Axes to draw on; default a new figure's.
    label_outliers : bool
        Label units beyond the inner limits.
    title : str, optional
        Axes title.
    levels, adjust, winsor
        As in :func:`funnel_table`.

    Returns
    -------
    Axes
    """
    import matplotlib.pyplot as plt

    if unit is not None and "patient" in unit.lower():
        raise ValueError(
            f"plot_funnel: unit={unit!r} looks like a patient identifier; funnel plots compare "
            "clinics or clinicians (e.g. unit='clinic_id') and must not label patients"
        )
    levels = _check_levels(levels)
    if unit is None:
        unit_column = "_row"
        data = data.assign(**{unit_column: np.arange(len(data))})
    else:
        unit_column = unit
    table = funnel_table(
        data,
        numerator=numerator,
        denominator=denominator,
        unit=unit_column,
        target=target,
        levels=levels,
        adjust=adjust,
        winsor=winsor,
    )
    table = table[table[denominator] > 0]
    p0 = float(table["target"].iloc[0]) if len(table) else np.nan
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.6), layout="constrained")
    if not len(table):
        ax.set_title(title or "")
        return ax

    n_max = float(table[denominator].max())
    n_min = float(table[denominator].min())
    grid = np.unique(np.round(np.linspace(max(1.0, np.floor(0.8 * n_min)), 1.05 * n_max, 400)))
    curves = _proportion_limits(
        p0, grid, levels=levels, adjust=adjust, dispersion=table.attrs["overdispersion"]
    )
    styles = {levels[0]: "--", levels[-1]: "-"}
    for level in levels:
        label = level_label(level)
        line_style = styles.get(level, ":")
        ax.plot(grid, curves[f"upper_{label}"], line_style, color="0.35", lw=1.0)
        ax.plot(grid, curves[f"lower_{label}"], line_style, color="0.35", lw=1.0)
        ax.plot([], [], line_style, color="0.35", lw=1.0, label=f"{label}% limits")
    ax.axhline(p0, color="0.1", lw=1.0, label=f"Target {100 * p0:.1f}%")

    inner = level_label(levels[0])
    outer = level_label(levels[-1])
    outside = table["flag"].ne(FLAG_WITHIN)
    beyond_outer = table["flag"].str.endswith(f" {outer}%") if len(levels) > 1 else ~outside
    groups = [
        (~outside, "tab:blue", "Within limits"),
        (outside & ~beyond_outer, "tab:orange", f"Beyond {inner}% limits"),
        (outside & beyond_outer, "tab:red", f"Beyond {outer}% limits"),
    ]
    for members, colour, label in groups:
        if members.any():
            ax.scatter(
                table.loc[members, denominator],
                table.loc[members, "value"],
                s=24,
                color=colour,
                zorder=3,
                label=label,
            )
    ax.set_xlim(0, 1.08 * n_max)
    # Frame the units and their outer limits; the mouth of the funnel at tiny n may run off.
    low = min(table["value"].min(), table[f"lower_{outer}"].min())
    high = max(table["value"].max(), table[f"upper_{outer}"].max())
    pad = 0.15 * max(high - low, 0.05)
    ax.set_ylim(max(low - pad, -0.02), min(high + pad, 1.02))
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
    ax.set_xlabel(f"Denominator ({denominator})")
    ax.set_ylabel(f"{numerator} / {denominator}")
    # Below the axes, so that it never hides a unit.
    ax.legend(
        fontsize="small", frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3
    )
    if title:
        ax.set_title(title)
    if label_outliers and unit is not None and outside.any():
        labelled = table[outside]
        _label_without_overlap(
            ax,
            labelled[denominator].to_numpy(dtype=float),
            labelled["value"].to_numpy(dtype=float),
            [str(label) for label in labelled[unit_column]],
            fontsize=8,
        )
    return ax
