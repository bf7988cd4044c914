"""The audit's figures, drawn at their printed size with :mod:`hipdata.plots`.

Each figure is drawn at the width it has on the A4 page (80 mm per panel, 160 mm at most), so a
font size here is the printed size: nothing is below 7 pt. Each function returns the figure and
its caption; a panel with nothing to show is left out and the caption says why.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from hipdata.analysis.funnel import FUNNEL_LEVELS, expected_chance_flags
from hipdata.analysis.indicators import INDICATORS
from hipdata.plots.funnel import figure_legend, plot_casemix_funnel, plot_funnel
from hipdata.plots.trends import plot_indicator_trend
from hipdata.report.quarterly.context import AuditContext
from hipdata.report.quarterly.tables import FUNNEL_DENOMINATORS, TREND_INDICATORS, flag_count

#: Printed width of one funnel panel (mm); two panels fill the text width.
PANEL_MM = 80.0
#: Printed font sizes (pt): body text of the figures, and titles.
FIGURE_PT = 8.0
TITLE_PT = 9.0
_MM = 1 / 25.4
_STYLE = {
    "font.size": FIGURE_PT,
    "axes.titlesize": FIGURE_PT,
    "axes.labelsize": FIGURE_PT,
    "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5,
    "legend.fontsize": 7.5,
}
_LEVELS = ("clinic", "clinician")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def trends_figure(ctx: AuditContext, indicators: Sequence[str] = TREND_INDICATORS) -> Figure:
    """Small multiples of indicators across the report's quarters: the network and each clinic
    in scope (suppressed points left out), the audited quarter shaded."""
    rows = ctx.indicators[ctx.indicators["indicator"].isin(indicators)]
    rows = rows[rows["level"].eq("network") | (rows["level"].eq("clinic") & ctx.in_scope(rows))]
    rows = rows[~rows["suppressed"]]
    columns = min(3, len(indicators))
    n_rows = -(-len(indicators) // columns)
    with plt.rc_context(_STYLE):
        fig, axes = plt.subplots(
            n_rows, columns, figsize=(160 * _MM, 58 * _MM * n_rows + 12 * _MM), squeeze=False
        )
        for ax, indicator in zip(axes.flat, indicators, strict=False):
            plot_indicator_trend(
                data=rows[rows["indicator"].eq(indicator)],
                quarters=ctx.quarters,
                highlight=ctx.quarter,
                title=INDICATORS[indicator].label,
                ax=ax,
            )
        for ax in axes.flat[len(indicators) :]:
            ax.remove()
        entries: dict = {}  # every unit once, from whichever panel shows it
        for ax in axes.flat[: len(indicators)]:
            for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
                entries.setdefault(label, handle)
        if entries:
            fig.legend(
                list(entries.values()),
                list(entries),
                loc="lower center",
                ncol=min(6, len(entries)),
                frameon=False,
            )
        fig.tight_layout(rect=(0, 0.08 / n_rows, 1, 1))
    return fig


def funnel_figure(ctx: AuditContext, funnel, indicator: str) -> tuple[Figure | None, str]:
    """Funnel plots of ``indicator`` by clinic and by clinician, from rows of
    :func:`~hipdata.report.quarterly.tables.funnels`; ``(None, caption)`` when no level has a
    unit to plot."""
    label = INDICATORS[indicator].label
    rows = funnel[funnel["indicator"].eq(indicator)]
    levels = [level for level in _LEVELS if rows["level"].eq(level).any()]
    published = ctx.rows(indicator=indicator)
    omitted = {
        level: int(published["level"].eq(level).sum() - rows["level"].eq(level).sum())
        for level in _LEVELS
    }
    missing = [f"no {level} has figures to plot" for level in _LEVELS if level not in levels]
    if not levels:
        return None, f"{label}: too few units to draw a funnel plot this quarter."
    notes = funnel.attrs.get("notes", {})
    counts, extra = [], []
    with plt.rc_context(_STYLE):
        fig, axes = plt.subplots(
            1, len(levels), figsize=(PANEL_MM * _MM * len(levels), 78 * _MM), squeeze=False
        )
        for ax, level in zip(axes[0], levels, strict=True):
            part = rows[rows["level"].eq(level)]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # the caption gives the note
                plot_funnel(
                    data=part,
                    numerator="numerator",
                    denominator="denominator",
                    unit="unit",
                    target=float(part["target"].iloc[0]),
                    ax=ax,
                    title=f"by {level}",
                    adjust=ctx.overdispersion,
                    design_effect="design_effect",
                    labelled=ctx.labelled,
                    legend=False,
                )
            ax.set_ylabel(label)
            ax.set_xlabel(FUNNEL_DENOMINATORS.get(indicator, "Denominator"))
            counts.append(
                f"{_count(len(part), level)} plotted, {flag_count(part, FUNNEL_LEVELS[0])} flagged at "
                f"95 % (about {expected_chance_flags(len(part)):.1f} expected by chance alone), "
                f"{flag_count(part, FUNNEL_LEVELS[-1])} at 99.8 %"
            )
            note = notes.get((indicator, level), {})
            if np.isfinite(note.get("icc", np.nan)) and note["icc"] > 0 and level == levels[0]:
                extra.append(
                    f"Sessions clustered within patients: intra-patient correlation "
                    f"{note['icc']:.2f} across the network."
                )
            if note.get("overdispersion"):
                extra.append(f"By {level}: {note['overdispersion']}")
        fig.suptitle(f"{label}, {ctx.quarter}", fontsize=TITLE_PT)
        figure_legend(fig, axes[0], ncol=4 if len(levels) > 1 else 2)
        fig.tight_layout(rect=(0, 0.14, 1, 1))
    if any(omitted.values()):
        extra.append(
            f"Left out as too small or without data: {omitted['clinic']} clinic(s), "
            f"{omitted['clinician']} clinician(s)."
        )
    if missing:
        extra.append("No " + " and no ".join(m.removeprefix("no ") for m in missing) + ".")
    caption = f"{label}: funnel plots. " + "; ".join(counts) + ". " + " ".join(extra)
    return fig, caption


def casemix_figure(ctx: AuditContext, result: dict, indicator: str) -> tuple[Figure, str]:
    """Case-mix adjusted funnels of ``indicator`` by clinic and clinician (levels with units)."""
    label = INDICATORS[indicator].label
    fit = result["fits"][indicator]
    rows = result["table"][result["table"]["indicator"].eq(indicator)]
    levels = [level for level in _LEVELS if rows["level"].eq(level).any()]
    counts = []
    with plt.rc_context(_STYLE):
        fig, axes = plt.subplots(
            1, len(levels), figsize=(PANEL_MM * _MM * len(levels), 78 * _MM), squeeze=False
        )
        for ax, level in zip(axes[0], levels, strict=True):
            part = rows[rows["level"].eq(level)]
            plot_casemix_funnel(
                data=part,
                kind="ratio" if indicator == "nprs_responder" else "difference",
                ax=ax,
                rate=float(fit.observed.mean()),
                sigma=fit.sigma,
                labelled=ctx.labelled,
                title=f"by {level}",
                legend=False,
            )
            counts.append(
                f"{_count(len(part), level)} plotted, {flag_count(part, FUNNEL_LEVELS[0])} flagged "
                f"at 95 % (about {expected_chance_flags(len(part)):.1f} expected by chance)"
            )
        fig.suptitle(f"{label}, case-mix adjusted, {ctx.quarter}", fontsize=TITLE_PT)
        figure_legend(fig, axes[0], ncol=4 if len(levels) > 1 else 2)
        fig.tight_layout(rect=(0, 0.14, 1, 1))
    missing = [level for level in _LEVELS if level not in levels]
    tail = f" No {' or '.join(missing)} has figures to plot." if missing else ""
    return fig, f"{label}, case-mix adjusted funnel. " + "; ".join(counts) + "." + tail
