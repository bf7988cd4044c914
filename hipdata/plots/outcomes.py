"""Outcome plots: the distribution of improvement in a measure, with its MCID."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from hipdata.outcome_measures import Measure

__all__ = ["improvement_bins", "plot_improvement"]


def improvement_bins(values: pd.Series, measure: Measure) -> np.ndarray:
    """Histogram edges for improvement in ``measure``: 1 point on a 0-10 scale, 5 on wider
    scales, 0.05 on a 0-1 or 0-2 scale, aligned on multiples of the width."""
    span = measure.high - measure.low
    width = 0.05 if span <= 2 else (1.0 if span <= 10 else 5.0)
    values = pd.Series(values, dtype="float64").dropna()
    low = np.floor(values.min() / width) * width if len(values) else 0.0
    high = np.ceil(values.max() / width) * width + width if len(values) else width
    return np.arange(low, high + width / 2, width)


def plot_improvement(
    *,
    data: pd.DataFrame,
    measure: Measure,
    min_patients: int = 1,
    ax: Axes | None = None,
) -> Axes:
    """Histogram of improvement (positive = better) in one measure, with its MCID and zero.

    Parameters
    ----------
    data : DataFrame
        The ``outcome_change`` table (rows of other measures are left out).
    measure : Measure
        The measure (its name, label, range and ``mcid_points``).
    min_patients : int
        Bars with 1..min_patients-1 patients are not drawn (small-cell suppression); empty bins
        stay empty. ``ax.hipdata_dropped`` holds the number of bars left out.
    ax : Axes, optional
        Axes to draw on (default: the current axes).

    Returns
    -------
    Axes
    """
    ax = plt.gca() if ax is None else ax
    rows = data.loc[data["measure"] == measure.name, "improvement"]
    values = pd.to_numeric(rows).dropna().astype("float64")
    edges = improvement_bins(values, measure)
    counts, edges = np.histogram(values, bins=edges)
    keep = (counts == 0) | (counts >= min_patients)
    ax.bar(
        edges[:-1][keep],
        counts[keep],
        width=edges[1] - edges[0],
        align="edge",
        color="#1f4e79",
        alpha=0.75,
        edgecolor="white",
    )
    ax.axvline(
        measure.mcid_points,
        color="tab:green",
        linestyle="--",
        label=f"MCID {measure.mcid_points:g} points",
    )
    ax.axvline(0.0, color="grey", linestyle=":", label="No change")
    ax.set_xlabel(f"Improvement in {measure.label or measure.name} (positive = better)")
    ax.set_ylabel("Patients")
    ax.legend(fontsize="small", frameon=False, loc="upper left")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.hipdata_dropped = int((~keep).sum())
    return ax
