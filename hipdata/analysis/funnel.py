"""Funnel-plot statistics for comparing clinics or clinicians (Spiegelhalter 2005).

A funnel plot shows each unit's indicator (a proportion ``numerator / denominator``, or a mean)
against its denominator, with control limits around a target that narrow as the denominator
grows. A unit beyond the 99.8 % limits is unlikely to differ from the target by chance alone; the
95 % limits are the "alert" lines.

Units are *flagged* by their exact one-sided tail probability (binomial for proportions, normal
for means), never by their position against the interpolated limits, which are drawn for reading
only: at small denominators a unit at 100 % can sit above the interpolated line although
``P(Y = n)`` is far above the line's tail probability.

References: Spiegelhalter DJ. Funnel plots for comparing institutional performance. *Statistics in
Medicine* 2005; 24:1185-1202 (exact binomial limits with interpolation: appendix A.1.1).
Spiegelhalter DJ. Handling over-dispersion of performance indicators. *Quality and Safety in
Health Care* 2005; 14:347-351 (Winsorised z-scores, multiplicative phi, additive tau2).

The figures are drawn by :func:`hipdata.plots.funnel.plot_funnel`.

Examples
--------
>>> import pandas as pd
>>> from hipdata.analysis.funnel import funnel_table
>>> counts = pd.DataFrame(
...     {"clinic_id": ["A", "B", "C"], "met": [40, 18, 86], "sessions": [50, 40, 100]}
... )
>>> table = funnel_table(counts, numerator="met", denominator="sessions", unit="clinic_id")
>>> list(table["flag"])
['within', 'below_99.8', 'above_95']
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
from scipy import special, stats

from hipdata.analysis.overdispersion import (
    OVERDISPERSION_TEST_LEVEL,
    WINSOR_SHARE,
    Overdispersion,
    _as_denominators,
    overdispersion,
)

__all__ = [
    "ADJUSTMENTS",
    "FLAG_WITHIN",
    "FUNNEL_LEVELS",
    "MIN_UNITS_OVERDISPERSION",
    "OVERDISPERSION_TEST_LEVEL",
    "WINSOR_SHARE",
    "Overdispersion",
    "binomial_tails",
    "design_effects",
    "expected_chance_flags",
    "flag_name",
    "flags_from_tails",
    "funnel_limits_mean",
    "funnel_limits_proportion",
    "funnel_table",
    "level_label",
    "normal_tails",
    "overdispersion",
]

#: Control-limit levels of a funnel plot: the 95 % "alert" and 99.8 % "alarm" limits
#: (about 2 and 3 standard errors; Spiegelhalter 2005, section 3).
FUNNEL_LEVELS: tuple[float, ...] = (0.95, 0.998)
#: Overdispersion adjustments accepted by :func:`funnel_table` and :func:`plot_funnel`.
ADJUSTMENTS = (None, "multiplicative", "additive")
#: Fewest units with which an overdispersion estimate is applied (Spiegelhalter 2005 warns that
#: phi and tau2 from a handful of units are unstable).
MIN_UNITS_OVERDISPERSION = 10

FLAG_WITHIN = "within"


def level_label(level: float) -> str:
    """Percent label of a limit level as used in column names: ``0.998 -> "99.8"``."""
    return f"{100 * level:g}"


def _check_levels(levels: Sequence[float]) -> tuple[float, ...]:
    levels = tuple(sorted(float(level) for level in levels))
    if not levels or not all(0 < level < 1 for level in levels):
        raise ValueError(f"levels must be probabilities strictly between 0 and 1, got {levels}")
    return levels


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


# --- exact tail probabilities and flags --------------------------------------------------------


def binomial_tails(y, n, p0) -> tuple[np.ndarray, np.ndarray]:
    """Exact one-sided binomial tail probabilities ``P(Y >= y)`` and ``P(Y <= y)``.

    ``Y ~ Binomial(n, p0)``. Through the regularised incomplete beta function,
    ``P(Y >= y) = I_p0(y, n - y + 1)`` (1 when ``y = 0``) and ``P(Y <= y) = I_(1-p0)(n - y, y + 1)``
    (1 when ``y = n``), which are the binomial sums for whole numbers and extend them smoothly to
    the non-integer *effective* counts ``y / deff`` and ``n / deff`` of clustered records.
    NaN where ``n`` is 0 or missing.

    Examples
    --------
    >>> upper, lower = binomial_tails(8, 8, 0.8)  # P(Y = 8) = 0.8 ** 8
    >>> round(float(upper[0]), 4), float(lower[0])
    (0.1678, 1.0)
    """
    y, n, p0 = np.broadcast_arrays(
        np.atleast_1d(np.asarray(y, dtype=float)),
        np.atleast_1d(np.asarray(n, dtype=float)),
        np.atleast_1d(np.asarray(p0, dtype=float)),
    )
    valid = np.isfinite(y) & np.isfinite(n) & (n > 0)
    y_safe = np.where(valid, y, 0.0)
    n_safe = np.where(valid, n, 1.0)
    with np.errstate(invalid="ignore"):
        upper = np.where(
            y_safe <= 0, 1.0, special.betainc(np.maximum(y_safe, 1e-300), n_safe - y_safe + 1, p0)
        )
        lower = np.where(
            y_safe >= n_safe,
            1.0,
            special.betainc(np.maximum(n_safe - y_safe, 1e-300), y_safe + 1, 1 - p0),
        )
    return np.where(valid, upper, np.nan), np.where(valid, lower, np.nan)


def normal_tails(z) -> tuple[np.ndarray, np.ndarray]:
    """One-sided normal tail probabilities ``P(Z >= z)`` and ``P(Z <= z)`` of a z-score."""
    z = np.atleast_1d(np.asarray(z, dtype=float))
    return stats.norm.sf(z), stats.norm.cdf(z)


def flag_name(direction: str, level: float) -> str:
    """A flag as written in ``funnel.csv``: ``above_95``, ``below_99.8``."""
    return f"{direction}_{level_label(level)}"


def flags_from_tails(upper, lower, *, levels: Sequence[float] = FUNNEL_LEVELS) -> np.ndarray:
    """Flag each unit by its exact one-sided tail probabilities.

    A unit is ``above_<L>`` when ``P(Y >= y) <= (1 - L) / 2`` for the widest level ``L`` that
    holds (``below_<L>`` with ``P(Y <= y)``), else ``within``; NaN tails give no flag (None). So
    no unit is flagged at a level whose one-sided tail probability (0.025 for 95 %, 0.001 for
    99.8 %) is below its own.

    Examples
    --------
    >>> list(flags_from_tails([0.02, 0.5, 0.0005], [0.99, 0.6, 1.0]))
    ['above_95', 'within', 'above_99.8']
    """
    upper = np.atleast_1d(np.asarray(upper, dtype=float))
    lower = np.atleast_1d(np.asarray(lower, dtype=float))
    flag = np.full(upper.shape, FLAG_WITHIN, dtype=object)
    for level in _check_levels(levels):  # narrow to wide, so the widest level reached wins
        alpha = (1 - level) / 2
        flag = np.where(upper <= alpha, flag_name("above", level), flag)
        flag = np.where(lower <= alpha, flag_name("below", level), flag)
    flag[~(np.isfinite(upper) & np.isfinite(lower))] = None
    return flag


def expected_chance_flags(n_units: int, level: float = FUNNEL_LEVELS[0]) -> float:
    """Expected number of units beyond the ``level`` limits by chance alone: ``(1 - level) k``.

    With exact tests at small denominators a unit is flagged a little less often than the
    nominal ``1 - level``, so this is an upper bound when every unit is on target.
    """
    return float(n_units) * (1 - level)


# --- limits at a denominator ---------------------------------------------------------------------


def _adjusted_limits(
    kind: str,
    target: float,
    n: np.ndarray,
    *,
    levels: tuple[float, ...],
    adjust: str | None,
    dispersion: Overdispersion | None,
    design_effect,
    sd: float | None,
) -> pd.DataFrame:
    """Limits at denominators ``n``: exact (at the effective denominator), or adjusted.

    Exact proportions: Spiegelhalter's interpolated binomial limits at ``n / deff`` (rounded to
    a whole number, at least 1); means: normal ``target +/- z sd sqrt(deff / n)``. Multiplicative:
    normal form ``target +/- z sqrt(phi deff t (1 - t) / n)``. Additive: proportions on the
    arcsine scale, ``sin^2(asin(sqrt(t)) +/- z sqrt(deff / (4 n) + tau2))`` (the angle kept in
    [0, pi/2]); means ``target +/- z sqrt(deff sd^2 / n + tau2)``.
    """
    n = _as_denominators(n)
    deff = np.broadcast_to(np.asarray(design_effect, dtype=float), n.shape)
    use = adjust if (dispersion is not None and dispersion.present) else None
    if use is None:
        if kind == "proportion":
            effective = np.where(n > 0, np.maximum(np.round(n / deff), 1.0), 0.0)
            limits = funnel_limits_proportion(target, effective, levels=levels)
            limits["n"] = n
            return limits
        with np.errstate(divide="ignore", invalid="ignore"):
            spread = np.where(n > 0, sd * np.sqrt(deff / np.where(n > 0, n, 1.0)), np.nan)
        limits = {"n": n, "target": np.full(n.shape, float(target))}
        for level in levels:
            z = stats.norm.ppf((1 + level) / 2)
            limits[f"lower_{level_label(level)}"] = target - z * spread
            limits[f"upper_{level_label(level)}"] = target + z * spread
        return pd.DataFrame(limits)
    with np.errstate(divide="ignore", invalid="ignore"):
        n_valid = np.where(n > 0, n, np.nan)
        if kind == "proportion" and use == "additive":
            centre = np.arcsin(np.sqrt(target))
            spread = np.sqrt(deff / (4 * n_valid) + dispersion.tau2)
        elif kind == "proportion":
            centre = target
            spread = np.sqrt(dispersion.phi * deff * target * (1 - target) / n_valid)
        elif use == "additive":
            centre = target
            spread = np.sqrt(deff * sd**2 / n_valid + dispersion.tau2)
        else:
            centre = target
            spread = np.sqrt(dispersion.phi * deff * sd**2 / n_valid)
    limits = {"n": n, "target": np.full(n.shape, float(target))}
    for level in levels:
        z = stats.norm.ppf((1 + level) / 2)
        label = level_label(level)
        low, high = centre - z * spread, centre + z * spread
        if kind == "proportion" and use == "additive":
            low = np.sin(np.clip(low, 0, np.pi / 2)) ** 2
            high = np.sin(np.clip(high, 0, np.pi / 2)) ** 2
        elif kind == "proportion":
            low, high = np.clip(low, 0.0, 1.0), np.clip(high, 0.0, 1.0)
        limits[f"lower_{label}"] = low
        limits[f"upper_{label}"] = high
    return pd.DataFrame(limits)


def _tails(
    kind: str,
    numerators: np.ndarray,
    denominators: np.ndarray,
    value: np.ndarray,
    target: float,
    *,
    adjust: str | None,
    dispersion: Overdispersion | None,
    design_effect: np.ndarray,
    sd: float | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Each unit's one-sided tail probabilities under the (possibly adjusted) null."""
    use = adjust if (dispersion is not None and dispersion.present) else None
    deff = design_effect
    with np.errstate(divide="ignore", invalid="ignore"):
        n_valid = np.where(denominators > 0, denominators, np.nan)
        if use is None and kind == "proportion":
            return binomial_tails(numerators / deff, denominators / deff, target)
        if use is None:
            z = (value - target) / (sd * np.sqrt(deff / n_valid))
        elif kind == "proportion" and use == "additive":
            z = (np.arcsin(np.sqrt(value)) - np.arcsin(np.sqrt(target))) / np.sqrt(
                deff / (4 * n_valid) + dispersion.tau2
            )
        elif kind == "proportion":
            z = (value - target) / np.sqrt(dispersion.phi * deff * target * (1 - target) / n_valid)
        elif use == "additive":
            z = (value - target) / np.sqrt(deff * sd**2 / n_valid + dispersion.tau2)
        else:
            z = (value - target) / np.sqrt(dispersion.phi * deff * sd**2 / n_valid)
    upper, lower = normal_tails(z)
    bad = ~np.isfinite(z)
    return np.where(bad, np.nan, upper), np.where(bad, np.nan, lower)


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
    kind: str = "proportion",
    sd: float | None = None,
    design_effect: float | str = 1.0,
    min_units: int = MIN_UNITS_OVERDISPERSION,
) -> pd.DataFrame:
    """One row per unit: its value, exact one-sided tail probability, limits and flag.

    Rows of one unit are summed first (numerators and denominators), so a table with one row per
    unit and quarter gives the unit's pooled value ``numerator / denominator``. The target
    defaults to the pooled value ``sum(numerator) / sum(denominator)``.

    **Flags come from exact tail probabilities, not from the drawn limits.** For a proportion,
    ``P(Y >= y)`` and ``P(Y <= y)`` under ``Binomial(n, target)`` (:func:`binomial_tails`; with
    clustered records, at the effective counts ``y / deff`` and ``n / deff``); for a mean, normal
    tails of ``z = (mean - target) / (sd sqrt(deff / n))``. A unit is flagged at the widest level
    ``L`` whose one-sided tail ``(1 - L) / 2`` its probability reaches (:func:`flags_from_tails`):
    ``within``, ``above_95``, ``below_95``, ``above_99.8``, ``below_99.8``. ``p_value`` is the
    smaller of the two tails (one-sided, in the direction of the unit's deviation). The limit
    columns are the interpolated limits at the unit's denominator, for drawing and reading only.

    With ``adjust``, overdispersion is estimated (:func:`overdispersion`; ``"multiplicative"``:
    phi on the normal scale; ``"additive"``: tau2 on the arcsine scale for proportions) and
    applied, to tails and limits alike, only when the test finds it and at least ``min_units``
    units have a value; otherwise the exact flags stand. ``attrs["overdispersion_note"]`` says
    which happened and warns when fewer than ``min_units`` units make the estimate unstable.

    Parameters
    ----------
    data : DataFrame
        Counts per unit (clinic or clinician).
    numerator, denominator, unit : str
        Column names (for a mean, the numerator is the sum of the values).
    target : float, optional
        Target proportion or mean; default the pooled value.
    levels : sequence of float
        Two-sided limit levels.
    adjust : {None, "multiplicative", "additive"}
        Overdispersion adjustment.
    winsor : float
        Winsorising share for the overdispersion estimate.
    kind : {"proportion", "mean"}
        What the indicator is.
    sd : float, optional
        Standard deviation of one observation (required for means).
    design_effect : float or str
        Variance inflation for records clustered within patients: a number for every unit, or
        the name of a column holding each unit's (one value per unit).
    min_units : int
        Fewest units with which an overdispersion estimate is applied.

    Returns
    -------
    DataFrame
        Columns: ``unit``'s name, numerator, denominator, ``value``, ``target``, ``p_value``,
        ``design_effect``, ``lower_<L>``/``upper_<L>`` per level, ``flag``.
        ``attrs["overdispersion"]`` holds the :class:`Overdispersion` estimate.
    """
    if adjust not in ADJUSTMENTS:
        raise ValueError(f"adjust must be one of {ADJUSTMENTS}, got {adjust!r}")
    if kind not in ("proportion", "mean"):
        raise ValueError(f"kind must be 'proportion' or 'mean', got {kind!r}")
    if kind == "mean" and not (sd is not None and sd > 0):
        raise ValueError(f"a funnel of means needs a positive sd, got {sd}")
    deff_column = design_effect if isinstance(design_effect, str) else None
    columns = [numerator, denominator, unit] + ([deff_column] if deff_column else [])
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise KeyError(f"funnel_table: column(s) {missing} not in data ({list(data.columns)})")
    levels = _check_levels(levels)
    grouped = data.groupby(unit, sort=True, observed=True)
    counts = grouped[[numerator, denominator]].sum()
    if deff_column:
        counts["design_effect"] = grouped[deff_column].first()
    else:
        counts["design_effect"] = float(design_effect)
    counts = counts.reset_index()
    deff = counts["design_effect"].fillna(1.0).clip(lower=1.0).to_numpy(dtype=float)
    counts["design_effect"] = deff
    numerators = counts[numerator].to_numpy(dtype=float)
    denominators = _as_denominators(counts[denominator].to_numpy(dtype=float))
    if kind == "proportion" and ((numerators > denominators) | (numerators < 0)).any():
        bad = counts.loc[(numerators > denominators) | (numerators < 0), unit].iloc[0]
        raise ValueError(
            f"funnel_table: unit {bad!r} has {numerator} outside 0..{denominator}; "
            "a funnel plot of proportions needs 0 <= numerator <= denominator"
        )
    if target is None:
        target = float(numerators.sum() / denominators.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(denominators > 0, numerators / denominators, np.nan)
    scale = "arcsine" if (adjust == "additive" and kind == "proportion") else "normal"
    dispersion = overdispersion(
        value,
        target,
        denominators,
        sd=sd if kind == "mean" else None,
        winsor=winsor,
        scale=scale,
        design_effect=deff,
    )
    note = ""
    if adjust is not None:
        if dispersion.n_units < min_units:
            note = (
                f"Only {dispersion.n_units} unit{'' if dispersion.n_units == 1 else 's'}: too few to estimate overdispersion reliably "
                f"(at least {min_units} needed); exact limits are used."
            )
            dispersion = replace(dispersion, present=False)
        elif dispersion.present:
            note = (
                f"Overdispersion found (phi = {dispersion.phi:.2f}, test p = "
                f"{dispersion.p_value:.3f}); {adjust} adjustment applied."
            )
        else:
            note = (
                f"No overdispersion found (phi = {dispersion.phi:.2f}, test p = "
                f"{dispersion.p_value:.3f}); exact limits are used."
            )
        if dispersion.n_units < min_units:
            warnings.warn(note, UserWarning, stacklevel=2)
    upper, lower = _tails(
        kind,
        numerators,
        denominators,
        value,
        target,
        adjust=adjust,
        dispersion=dispersion,
        design_effect=deff,
        sd=sd,
    )
    limits = _adjusted_limits(
        kind,
        target,
        denominators,
        levels=levels,
        adjust=adjust,
        dispersion=dispersion,
        design_effect=deff,
        sd=sd,
    )
    table = counts.assign(value=value, target=float(target), p_value=np.fmin(upper, lower))
    table = table.join(limits.drop(columns=["n", "target"]))
    table["flag"] = flags_from_tails(upper, lower, levels=levels)
    table.loc[table["value"].isna(), ["flag", "p_value"]] = None
    first = ["design_effect"]
    table = table[[c for c in table.columns if c not in first] + first]
    table.attrs["overdispersion"] = dispersion
    table.attrs["overdispersion_note"] = note
    return table


# --- records clustered within patients -----------------------------------------------------------


def design_effects(
    data: pd.DataFrame,
    *,
    numerator: str,
    denominator: str,
    units: Sequence[str],
    groups: pd.Series | None = None,
) -> tuple[float, pd.DataFrame]:
    """Intra-patient correlation of a binary share and each unit's design effect (Kish).

    ``data`` has one row per patient (and period) with the patient's ``numerator`` and
    ``denominator`` counts (e.g. sessions without flare, sessions with both pains recorded). The
    intra-patient correlation ``rho`` is :func:`hipdata.analysis.clustered.icc_binary` of the
    records within ``groups`` (e.g. clinicians, so that differences between the units a funnel
    compares are not taken for clustering); a non-finite estimate counts as 0. A unit's design
    effect is Kish's ``1 + (sum x_i^2 / sum x_i - 1) rho`` over its patients' denominators
    ``x_i``; its effective number of records is ``n / deff``.

    Parameters
    ----------
    data : DataFrame
        Per-patient counts with the unit columns.
    numerator, denominator : str
        Count columns.
    units : sequence of str
        Unit columns (``clinic_id``, ``clinician_id``): one block of rows per column.
    groups : Series, optional
        Grouping within which ``rho`` is estimated (default: no grouping beyond the patient).

    Returns
    -------
    rho : float
    DataFrame
        ``level`` (the unit column without ``_id``), ``unit``, ``design_effect``; units with no
        records are left out.

    Examples
    --------
    >>> data = pd.DataFrame({"clinic_id": ["A", "A"], "y": [1, 3], "n": [2, 4]})
    >>> rho, deff = design_effects(data, numerator="y", denominator="n", units=["clinic_id"])
    >>> float(deff["design_effect"].iloc[0]) == 1 + (20 / 6 - 1) * rho
    True
    """
    from hipdata.analysis.clustered import icc_binary

    y, x = data[numerator], data[denominator]
    rho = icc_binary(y, x, groups=groups) if len(data) else np.nan
    rho = 0.0 if not np.isfinite(rho) else float(rho)
    frames = []
    for column in units:
        sizes = data.assign(_x=x, _x2=x**2).groupby(column)[["_x", "_x2"]].sum()
        sizes = sizes[sizes["_x"] > 0]
        frames.append(
            pd.DataFrame(
                {
                    "level": column.removesuffix("_id"),
                    "unit": sizes.index.astype("str"),
                    "design_effect": 1 + (sizes["_x2"] / sizes["_x"] - 1) * rho,
                }
            )
        )
    if not frames:
        return rho, pd.DataFrame(columns=["level", "unit", "design_effect"])
    return rho, pd.concat(frames, ignore_index=True)
