"""Funnel plots of clinics or clinicians (Spiegelhalter 2005): keyword-only, ``data=`` and ``ax=``.

The statistics (limits, exact tails, flags, overdispersion) are in :mod:`hipdata.analysis.funnel`;
these functions draw them and return the Axes.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator, PercentFormatter

from hipdata.analysis.funnel import (
    FLAG_WITHIN,
    FUNNEL_LEVELS,
    MIN_UNITS_OVERDISPERSION,
    WINSOR_SHARE,
    _adjusted_limits,
    _check_levels,
    funnel_limits_mean,
    funnel_limits_proportion,
    funnel_table,
    level_label,
)

__all__ = ["figure_legend", "plot_casemix_funnel", "plot_funnel"]

#: Font size (pt) of legends and unit labels: 7 pt is the smallest a printed A4 page may carry.
LABEL_PT = 7.5


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


def _draw_limits(ax: Axes, grid, curves: pd.DataFrame, levels: Sequence[float]) -> None:
    """The control limits at each level: dashed for the first, solid for the last, dotted between."""
    styles = {levels[0]: "--", levels[-1]: "-"}
    for level in levels:
        label = level_label(level)
        line_style = styles.get(level, ":")
        ax.plot(grid, curves[f"upper_{label}"], line_style, color="0.35", lw=1.0)
        ax.plot(grid, curves[f"lower_{label}"], line_style, color="0.35", lw=1.0)
        ax.plot([], [], line_style, color="0.35", lw=1.0, label=f"{label}% limits")


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
    kind: str = "proportion",
    sd: float | None = None,
    design_effect: float | str = 1.0,
    line_design_effect: float | None = None,
    min_units: int = MIN_UNITS_OVERDISPERSION,
    labelled=None,
    legend: bool = True,
    label_size: float = LABEL_PT,
) -> Axes:
    """Funnel plot of a proportion (or a mean) by clinic or clinician.

    Points are the units of :func:`funnel_table`; the horizontal line is the target; the curves
    are the control limits over a grid of denominators (dashed: the inner level, solid: the outer),
    drawn for reading only. Units are coloured by their flag from exact tail probabilities, so a
    unit at a small denominator may sit just past a curve and still be within (its colour says
    so). Flagged units are labelled by ``unit`` with ``label_outliers``.

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
    levels, adjust, winsor, kind, sd, design_effect, min_units
        As in :func:`funnel_table`.
    line_design_effect : float, optional
        Design effect at which the curves are drawn (default: the units' median).
    labelled : collection, optional
        Only these units may be labelled (others are drawn unlabelled, e.g. other clinics'
        clinicians in a one-clinic report).
    legend : bool
        Draw the legend, outside the axes on the right (off the data and the axis labels);
        False leaves it to the caller (e.g. one legend for a figure of several panels, from
        :func:`figure_legend`).
    label_size : float
        Font size (pt) of the unit labels.

    Returns
    -------
    Axes
        The x axis counts (whole-number ticks).
    """
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
        kind=kind,
        sd=sd,
        design_effect=design_effect,
        min_units=min_units,
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
    if line_design_effect is None:
        line_design_effect = float(table["design_effect"].median())
    curves = _adjusted_limits(
        kind,
        p0,
        grid,
        levels=levels,
        adjust=adjust,
        dispersion=table.attrs["overdispersion"],
        design_effect=line_design_effect,
        sd=sd,
    )
    _draw_limits(ax, grid, curves, levels)
    target_label = f"Target {100 * p0:.1f}%" if kind == "proportion" else f"Target {p0:.2f}"
    ax.axhline(p0, color="0.1", lw=1.0, label=target_label)

    inner = level_label(levels[0])
    outer = level_label(levels[-1])
    outside = table["flag"].ne(FLAG_WITHIN)
    beyond_outer = table["flag"].str.endswith(f"_{outer}") if len(levels) > 1 else ~outside
    groups = [
        (~outside, "tab:blue", "Not flagged"),
        (outside & ~beyond_outer, "tab:orange", f"Flagged at {inner}%"),
        (outside & beyond_outer, "tab:red", f"Flagged at {outer}%"),
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
    if kind == "proportion":
        ax.set_ylim(max(low - pad, -0.02), min(high + pad, 1.02))
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
    else:
        ax.set_ylim(low - pad, high + pad)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(f"Denominator ({denominator})")
    ax.set_ylabel(f"{numerator} / {denominator}")
    if legend:
        _legend_outside(ax)
    if title:
        ax.set_title(title)
    if labelled is not None:
        outside_labelled = outside & table[unit_column].isin(list(labelled))
    else:
        outside_labelled = outside
    if label_outliers and unit is not None and outside_labelled.any():
        labelled = table[outside_labelled]
        _label_without_overlap(
            ax,
            labelled[denominator].to_numpy(dtype=float),
            labelled["value"].to_numpy(dtype=float),
            [str(label) for label in labelled[unit_column]],
            fontsize=label_size,
        )
    return ax


def plot_casemix_funnel(
    *,
    data: pd.DataFrame,
    kind: str,
    ax: Axes | None = None,
    rate: float | None = None,
    sigma: float | None = None,
    levels: Sequence[float] = FUNNEL_LEVELS,
    labelled=None,
    title: str | None = None,
    legend: bool = True,
    label_size: float = LABEL_PT,
) -> Axes:
    """Funnel plot of a case-mix adjusted comparison (:func:`~hipdata.analysis.casemix.casemix_comparison`).

    ``kind="ratio"``: observed / expected responders against the expected count, target 1; the
    curves are binomial limits at the network rate ``rate`` (``n = E / rate`` episodes), for
    reading only (flags come from each unit's Poisson-binomial tails). ``kind="difference"``:
    observed - expected mean against the number of episodes (whole-number ticks), target 0,
    curves ``+/- z sigma / sqrt(n)``. ``legend`` and ``label_size`` as in :func:`plot_funnel`.
    """
    levels = _check_levels(levels)
    data = data[data["flag"].notna()]
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.6), layout="constrained")
    if not len(data):
        ax.set_title(title or "")
        return ax
    if kind == "ratio":
        x = data["expected"].to_numpy(dtype=float)
        y = data["ratio"].to_numpy(dtype=float)
        centre = 1.0
        # a unit of n episodes at the network rate expects E = n * rate responders; its limits
        # are the binomial limit counts over E (smooth in n by Spiegelhalter's interpolation)
        n_grid = np.unique(
            np.round(np.linspace(max(1.0, 0.8 * x.min() / rate), 1.05 * x.max() / rate, 300))
        )
        curves = funnel_limits_proportion(rate, n_grid, levels=levels)
        for column in curves.columns.drop(["n", "target"]):
            curves[column] = curves[column] / rate
        grid = n_grid * rate
        x_label = "Expected responders (from the case mix)"
        y_label = "Observed / expected responders"
    else:
        x = data["episodes"].to_numpy(dtype=float)
        y = data["difference"].to_numpy(dtype=float)
        centre = 0.0
        grid = np.unique(np.round(np.linspace(max(1.0, 0.8 * x.min()), 1.05 * x.max(), 200)))
        curves = funnel_limits_mean(0.0, sigma, grid, levels=levels)
        x_label = "Episodes with NPRS at baseline and follow-up"
        y_label = "Observed - expected improvement (points)"
    _draw_limits(ax, grid, curves, levels)
    ax.axhline(centre, color="0.1", lw=1.0, label="As expected")
    flag = data["flag"].astype(str)
    outer = level_label(levels[-1])
    beyond_outer = flag.str.endswith(f"_{outer}").to_numpy()
    outside = flag.ne(FLAG_WITHIN).to_numpy()
    inner = level_label(levels[0])
    for members, colour, label in [
        (~outside, "tab:blue", "Not flagged"),
        (outside & ~beyond_outer, "tab:orange", f"Flagged at {inner}%"),
        (outside & beyond_outer, "tab:red", f"Flagged at {outer}%"),
    ]:
        if members.any():
            ax.scatter(x[members], y[members], s=24, color=colour, zorder=3, label=label)
    low = min(np.nanmin(y), np.nanmin(curves[f"lower_{outer}"]))
    high = max(np.nanmax(y), np.nanmax(curves[f"upper_{outer}"]))
    pad = 0.1 * max(high - low, 0.1)
    ax.set_ylim(low - pad, high + pad)
    ax.set_xlim(0, 1.08 * x.max())
    if kind != "ratio":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    if legend:
        _legend_outside(ax)
    if title:
        ax.set_title(title)
    names = data["unit"].astype(str).to_numpy()
    show = outside & (np.isin(names, list(labelled)) if labelled is not None else True)
    if show.any():
        _label_without_overlap(ax, x[show], y[show], list(names[show]), fontsize=label_size)
    return ax


def _legend_outside(ax: Axes) -> None:
    ax.legend(fontsize=LABEL_PT, frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1.0))


def figure_legend(fig, axes, *, fontsize: float = LABEL_PT, ncol: int = 3) -> None:
    """One legend for the figure's funnel panels, below them (every entry once).

    Leave room for it with ``fig.tight_layout(rect=(0, bottom, 1, 1))``.
    """
    entries: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    if not entries:
        return
    fig.legend(
        list(entries.values()),
        list(entries),
        loc="lower center",
        ncol=min(ncol, len(entries)),
        fontsize=fontsize,
        frameon=False,
    )
