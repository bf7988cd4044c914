"""Confidence intervals the analyses share: Wilson for proportions, Student t for means."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from hipdata.analysis._confidence import accepts_ci


@accepts_ci
def wilson_ci(count, nobs, *, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for ``count`` successes out of ``nobs``, element-wise.

    Empty groups (``nobs == 0``) get NaN bounds instead of a division warning. The bound at
    the edge of the range is exact: 0 successes give a lower bound of exactly 0 and ``nobs``
    successes an upper bound of exactly 1 (the formula gives these values; floating point
    leaves residues such as 3.5e-18 that would print as a positive bound).

    Examples
    --------
    >>> low, high = wilson_ci([3, 0], [10, 0])
    >>> round(float(low[0]), 4), round(float(high[0]), 4), bool(np.isnan(low[1]))
    (0.1078, 0.6032, True)
    >>> low, high = wilson_ci([0, 7], [7, 7])
    >>> float(low[0]), float(high[1])
    (0.0, 1.0)
    """
    count = np.asarray(count, dtype="float64")
    nobs = np.asarray(nobs, dtype="float64")
    low = np.full(np.broadcast(count, nobs).shape, np.nan)
    high = low.copy()
    known = nobs > 0
    if known.any():
        low[known], high[known] = proportion_confint(
            count[known], nobs[known], alpha=alpha, method="wilson"
        )
    low = np.where(known & (count == 0), 0.0, low)
    high = np.where(known & (count == nobs), 1.0, high)
    return low, high


@accepts_ci
def t_interval(mean, sd, n, *, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Student-t interval ``mean +/- t(1 - alpha/2, n - 1) * sd / sqrt(n)``, element-wise.

    Groups with fewer than two values get NaN bounds.

    Examples
    --------
    >>> low, high = t_interval([2.0], [1.0], [4])  # t(0.975, 3) = 3.1824
    >>> round(float(low[0]), 4), round(float(high[0]), 4)
    (0.4088, 3.5912)
    """
    mean = np.asarray(mean, dtype="float64")
    sd = np.asarray(sd, dtype="float64")
    n = np.asarray(n, dtype="float64")
    enough = n >= 2
    half = np.full(np.broadcast(mean, sd, n).shape, np.nan)
    half[enough] = stats.t.ppf(1 - alpha / 2, n[enough] - 1) * sd[enough] / np.sqrt(n[enough])
    return mean - half, mean + half


@accepts_ci
def t_mean_ci(
    data: pd.DataFrame, value: str, *, by: str | Sequence[str] | None = None, alpha: float = 0.05
) -> pd.DataFrame:
    """Mean of ``value`` per group with a t-based confidence interval (:func:`t_interval`).

    Over the non-missing values (sd with ``n - 1`` in the denominator); the interval is empty
    when ``n < 2``. Groups with no value are left out.

    Returns
    -------
    DataFrame
        ``[by...], n, mean, sd, ci_low, ci_high``.
    """
    keys = [] if by is None else ([by] if isinstance(by, str) else list(by))
    present = data.loc[data[value].notna(), [*keys, value]]
    if keys:
        grouped = present.groupby(keys, sort=True, observed=True, dropna=False)[value]
        table = grouped.agg(n="count", mean="mean", sd="std").reset_index()
    else:
        values = present[value]
        table = pd.DataFrame({"n": [values.count()], "mean": [values.mean()], "sd": [values.std()]})
        table = table.loc[table["n"] > 0]
    table["n"] = table["n"].astype("int64")
    table["ci_low"], table["ci_high"] = t_interval(
        table["mean"], table["sd"], table["n"], alpha=alpha
    )
    return table.reset_index(drop=True)
