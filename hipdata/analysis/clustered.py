"""Shares and means of records clustered within patients: ratio estimator, ICC, design effect.

Sessions, progressions and weekly pain scores are records of patients; records of one patient
are alike, so treating them as independent makes intervals and funnel limits too narrow. This
module treats the patient as the sampling unit (the cluster) and the record-level share or mean
as a *ratio estimator* ``R = sum_i y_i / sum_i x_i`` over patients ``i`` (``y_i`` the patient's
numerator total, e.g. sessions within the pain threshold, ``x_i`` the denominator total, e.g.
sessions with both pains recorded).

Variance (Taylor linearisation, with-replacement sampling of patients: what R's ``survey``
package computes for ``svyratio(~y, ~x, svydesign(ids = ~patient, data = d))``)::

    var(R) = m / (m - 1) * sum_i (y_i - R x_i)^2 / X^2,   X = sum_i x_i,  m = patients

and the interval ``R +/- t(1 - alpha / 2, m - 1) * se``, clipped to [0, 1] for shares. The
design effect is ``var(R)`` over the variance the same records would have if independent (for a
share ``R (1 - R) / X``).

For funnel limits the module also gives the ANOVA intra-cluster correlation of a binary record
(Donner 1986) and Kish's design effect for unequal cluster sizes, ``1 + (sum x_i^2 / X - 1) rho``.

Examples
--------
>>> import pandas as pd
>>> totals = pd.DataFrame({"patient": ["a", "b", "c"], "y": [3, 1, 4], "x": [4, 4, 4]})
>>> table = cluster_ratio(totals, numerator="y", denominator="x")
>>> round(float(table["estimate"].iloc[0]), 4), round(float(table["se"].iloc[0]), 4)
(0.6667, 0.2205)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from hipdata.analysis._confidence import accepts_ci


def _keys(by: str | Sequence[str] | None) -> list[str]:
    return [] if by is None else ([by] if isinstance(by, str) else list(by))


@accepts_ci
def cluster_ratio(
    totals: pd.DataFrame,
    *,
    numerator: str,
    denominator: str,
    by: str | Sequence[str] | None = None,
    alpha: float = 0.05,
    share: bool = True,
) -> pd.DataFrame:
    """Ratio estimator with a patient-clustered (linearisation) interval, per group.

    Parameters
    ----------
    totals : DataFrame
        One row per cluster (patient) and group: the cluster's ``numerator`` total ``y_i`` and
        ``denominator`` total ``x_i``. Clusters with ``x_i = 0`` add nothing to the estimate and
        are not counted in ``clusters``.
    numerator, denominator : str
        Column names of ``y_i`` and ``x_i``.
    by : str or list of str, optional
        Grouping columns (e.g. clinic); one estimate overall when None.
    alpha : float
        1 - confidence level (``ci=`` level is a deprecated alias).
    share : bool
        The records are 0/1 (a share): clip the interval to [0, 1] and give the design effect
        against the binomial variance ``R (1 - R) / X``.

    Returns
    -------
    DataFrame
        ``[by...], clusters, numerator, denominator, estimate, se, ci_low, ci_high`` and, for
        shares, ``design_effect``. ``se`` and the interval are empty with fewer than 2 clusters.

    Notes
    -----
    ``var(R) = m / (m - 1) * sum_i (y_i - R x_i)^2 / X^2`` (module docstring); ``t`` with
    ``m - 1`` degrees of freedom, as R's ``confint(svyratio(...), df = degf(design))``.
    """
    keys = _keys(by)
    data = totals[totals[denominator] > 0]
    y = data[numerator].astype("float64")
    x = data[denominator].astype("float64")
    frame = data[keys].assign(_y=y, _x=x) if keys else pd.DataFrame({"_y": y, "_x": x})
    frame["_g"] = 0 if not keys else frame.groupby(keys, sort=True, observed=True).ngroup()
    sums = frame.groupby("_g")[["_y", "_x"]].sum()
    ratio = sums["_y"] / sums["_x"]
    residual = frame["_y"] - frame["_g"].map(ratio) * frame["_x"]
    m = frame.groupby("_g").size().astype("float64")
    sq = (residual**2).groupby(frame["_g"]).sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = (m / (m - 1)) * sq / sums["_x"] ** 2
    variance = variance.where(m >= 2)
    se = np.sqrt(variance)
    from scipy import stats  # here, not at the top: `hipdata metrics` imports this module

    t = pd.Series(stats.t.ppf(1 - alpha / 2, np.maximum(m - 1, 1)), index=m.index).where(m >= 2)
    low, high = ratio - t * se, ratio + t * se
    if share:
        low, high = low.clip(lower=0.0), high.clip(upper=1.0)
    out = pd.DataFrame(
        {
            "clusters": m.astype("int64"),
            "numerator": sums["_y"],
            "denominator": sums["_x"],
            "estimate": ratio,
            "se": se,
            "ci_low": low,
            "ci_high": high,
        }
    )
    if share:
        with np.errstate(divide="ignore", invalid="ignore"):
            binomial = ratio * (1 - ratio) / sums["_x"]
            out["design_effect"] = (variance / binomial).where(binomial > 0)
    if keys:
        labels = frame.drop_duplicates("_g").set_index("_g")[keys]
        out = labels.join(out)
    return out.reset_index(drop=True)


@accepts_ci
def clustered_mean(
    records: pd.DataFrame,
    value: str,
    *,
    cluster: str,
    by: str | Sequence[str] | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Mean of ``value`` over records, with an interval clustered on ``cluster`` (a patient).

    The mean over records is the ratio estimator with ``y_i`` = the cluster's sum of ``value``
    and ``x_i`` = its number of non-missing values (:func:`cluster_ratio`, ``share=False``). The
    design effect is ``var(R)`` over ``s^2 / n`` (``s`` the record-level standard deviation).

    Returns
    -------
    DataFrame
        ``[by...], n (records), clusters, mean, se, ci_low, ci_high, design_effect``.

    Examples
    --------
    >>> records = pd.DataFrame({"p": ["a", "a", "b", "c"], "pain": [2.0, 4.0, 1.0, 5.0]})
    >>> clustered_mean(records, "pain", cluster="p")[["n", "clusters", "mean"]]
       n  clusters  mean
    0  4         3   3.0
    """
    keys = _keys(by)
    present = records.loc[records[value].notna(), [*keys, cluster, value]]
    present = present.astype({value: "float64"})
    totals = (
        present.groupby([*keys, cluster], sort=True, observed=True, dropna=False)[value]
        .agg(_sum="sum", _count="count")
        .reset_index()
    )
    table = cluster_ratio(
        totals, numerator="_sum", denominator="_count", by=keys or None, alpha=alpha, share=False
    )
    if keys:
        sd = present.groupby(keys, sort=True, observed=True, dropna=False)[value].std()
        sd = table[keys].merge(sd.rename("_sd").reset_index(), on=keys, how="left")["_sd"]
    else:
        sd = pd.Series([present[value].std()] * len(table))
    with np.errstate(divide="ignore", invalid="ignore"):
        srs = sd.to_numpy() ** 2 / table["denominator"].to_numpy()
        deff = np.where(srs > 0, table["se"].to_numpy() ** 2 / srs, np.nan)
    out = table.rename(columns={"denominator": "n", "estimate": "mean"})
    out["n"] = out["n"].astype("int64")
    out["design_effect"] = deff
    return out[[*keys, "n", "clusters", "mean", "se", "ci_low", "ci_high", "design_effect"]]


def icc_binary(y, x, groups=None) -> float:
    """ANOVA intra-cluster correlation of 0/1 records from cluster totals (Donner 1986).

    With ``N = sum x_i``, ``m`` clusters, ``p_i = y_i / x_i`` and ``p = sum y_i / N``::

        MSB = sum x_i (p_i - p)^2 / (m - 1)
        MSW = sum x_i p_i (1 - p_i) / (N - m)
        n0  = (N - sum x_i^2 / N) / (m - 1)
        rho = (MSB - MSW) / (MSB + (n0 - 1) MSW)

    truncated at 0 (a negative estimate means no clustering). With ``groups`` (e.g. each
    patient's clinician), the between-cluster terms are pooled within groups, so that
    differences *between* groups (what a funnel plot looks for) do not count as clustering:
    ``p`` becomes the group's share ``p_g``, ``m - 1`` becomes ``m - G`` and ``sum x_i^2 / N``
    becomes ``sum_g sum_(i in g) x_i^2 / N_g``. NaN with too few clusters or records.

    Examples
    --------
    >>> round(icc_binary([4, 0, 2], [4, 4, 4]), 4)  # MSB 1, MSW 1/9, n0 4: (8/9) / (4/3)
    0.6667
    >>> icc_binary([4, 0, 4, 0], [4, 4, 4, 4], groups=["a", "a", "b", "b"])  # all between patients
    1.0
    """
    y = np.asarray(y, dtype="float64")
    x = np.asarray(x, dtype="float64")
    g = np.zeros(len(x), dtype=int) if groups is None else pd.factorize(np.asarray(groups))[0]
    keep = x > 0
    y, x, g = y[keep], x[keep], g[keep]
    m, total = len(x), x.sum()
    n_groups = len(np.unique(g))
    if m - n_groups < 1 or total <= m:
        return float("nan")
    group_y = np.bincount(g, weights=y)
    group_x = np.bincount(g, weights=x)
    p_i = y / x
    p_g = (group_y / group_x)[g]
    msb = np.sum(x * (p_i - p_g) ** 2) / (m - n_groups)
    msw = np.sum(x * p_i * (1 - p_i)) / (total - m)
    n0 = (total - np.sum(np.bincount(g, weights=x**2) / group_x)) / (m - n_groups)
    denominator = msb + (n0 - 1) * msw
    if denominator <= 0:
        return 0.0
    return float(min(1.0, max(0.0, (msb - msw) / denominator)))


def design_effect(x, rho: float) -> float:
    """Kish's design effect for clusters of unequal size: ``1 + (sum x_i^2 / sum x_i - 1) rho``.

    Examples
    --------
    >>> design_effect([2, 4, 6], 0.1)  # sum x^2 / sum x = 56 / 12 = 4.667
    1.3666666666666667
    """
    x = np.asarray(x, dtype="float64")
    x = x[x > 0]
    if not len(x) or not np.isfinite(rho):
        return 1.0
    return float(1 + (np.sum(x**2) / np.sum(x) - 1) * rho)
