"""Audit indicators across quarters: keyword-only, ``data=`` and ``ax=``, returning the Axes.

>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import pandas as pd
>>> rows = pd.DataFrame({"level": ["network"] * 2 + ["clinic"] * 2, "unit": ["all"] * 2 + ["C01"] * 2,
...                      "quarter": ["2026Q1", "2026Q2"] * 2, "value": [0.8, 0.85, 0.7, None]})
>>> ax = plot_indicator_trend(data=rows, quarters=["2026Q1", "2026Q2"])
>>> [line.get_label() for line in ax.get_lines()]
['C01', 'Network']
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import PercentFormatter

__all__ = ["plot_indicator_trend"]

#: Size (pt) of tick labels: 7 pt is the smallest text a printed A4 page may carry.
TICK_PT = 7.0


def plot_indicator_trend(
    *,
    data: pd.DataFrame,
    quarters: Sequence[str] | None = None,
    highlight: str | None = None,
    percent: bool = True,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """One indicator across quarters: a line per unit, the network in bold black.

    Rows without a value (suppressed, or no denominator) are left out, so a line has a gap where
    a quarter could not be published.

    Parameters
    ----------
    data : DataFrame
        Rows of :func:`hipdata.analysis.audit.audit_indicators` for one indicator: ``level``,
        ``unit``, ``quarter``, ``value``.
    quarters : sequence of str, optional
        The x axis, oldest first (default: the quarters in ``data``, sorted).
    highlight : str, optional
        A quarter to shade (the quarter audited).
    percent : bool
        Values are shares, shown as percentages on a 0-100 % axis.
    title : str, optional
        Axes title.
    ax : Axes, optional
        Axes to draw on; default a new figure's.

    Returns
    -------
    Axes
        Lines labelled by unit (``"Network"`` for the network), for a shared legend.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(3.2, 2.4), layout="constrained")
    quarters = sorted(data["quarter"].unique()) if quarters is None else list(quarters)
    positions = {q: i for i, q in enumerate(quarters)}
    shown = data[data["value"].notna() & data["quarter"].isin(positions)]
    for (level, unit), line in shown.groupby(["level", "unit"], sort=True):
        style = (
            {"color": "black", "linewidth": 2.2, "zorder": 3}
            if level == "network"
            else {"linewidth": 1.2, "alpha": 0.8}
        )
        ax.plot(
            line["quarter"].map(positions),
            line["value"],
            marker="o",
            markersize=3,
            label="Network" if level == "network" else str(unit),
            **style,
        )
    if highlight in positions:
        at = positions[highlight]
        ax.axvspan(at - 0.4, at + 0.4, color="0.92", zorder=0)
    if title:
        ax.set_title(title)
    if percent:
        ax.set_ylim(0, max(1.05, ax.get_ylim()[1]))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_xticks(range(len(quarters)), quarters, rotation=45, fontsize=TICK_PT)
    ax.tick_params(axis="y", labelsize=TICK_PT)
    ax.grid(axis="y", color="0.9")
    return ax
