"""Figures of progress through care: volume, ladder levels, pain response, funnel, adherence.

Every function follows seaborn's conventions: keyword-only arguments, the data as ``data=``, an
optional ``ax=`` to draw into (a new figure otherwise), and the Axes returned so that a notebook
or a report can compose several panels. Axis labels carry units and are written for clinicians.

Inputs are the contract's tables or the outputs of :mod:`hipdata.analysis`:

========================== ================================================================
function                   data
========================== ================================================================
plot_volume_progression    ``weekly_load``
plot_level_progression     ``weekly_load``
plot_pain_response         :func:`hipdata.analysis.response.pain_response_curve`
plot_ladder_funnel         :func:`hipdata.analysis.progression.ladder_funnel`
plot_time_to_progression   :func:`hipdata.analysis.progression.time_to_next_level` (``.table``)
plot_cumulative_incidence  :func:`hipdata.analysis.progression.progression_incidence`
plot_adherence             ``patient_summary``
========================== ================================================================
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator, PercentFormatter

from hipdata.protocol import COMPLETION_ATTENDANCE, FAMILIES, PAIN_THRESHOLD

_Y_LABELS = {
    "volume_load_kg": "Weekly volume load (kg; reps x load)",
    "total_reps": "Weekly total reps",
    "tut_s": "Weekly time under tension (s)",
    "sets": "Weekly sets",
}
_PAIN_COLOUR = "#1f4e79"
_FLARE_COLOUR = "#c0504d"
_THRESHOLD_COLOUR = "#7f7f7f"
ALL_PATIENTS = "All patients"
#: Most median lines drawn with their IQR band by default.
MAX_BANDS = 3
#: Patients above which :func:`plot_adherence` draws the boxes without a dot per patient: the
#: dots no longer show anything a box does not, and each is an object in the report's vector
#: figure (70 000 dots took minutes to embed in the PDF).
MAX_PATIENT_DOTS = 2000


def family_label(family: str) -> str:
    """A family id as clinicians read it: ``trunk_variations`` -> ``Trunk variations``."""
    return str(family).replace("_", " ").capitalize()


def family_colours(families: Sequence[str] = FAMILIES) -> dict[str, tuple]:
    """One colour-blind-safe colour per family, the same in every figure."""
    palette = sns.color_palette("colorblind", n_colors=len(families))
    return dict(zip(families, palette, strict=True))


def _axes(ax: Axes | None) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    return ax


def _ordered_families(present: pd.Series, families: Sequence[str] | None) -> list[str]:
    seen = set(present.dropna().unique())
    if families is not None:
        return [f for f in families if f in seen]
    return [f for f in FAMILIES if f in seen] + sorted(seen - set(FAMILIES))


def _colour_of(family: str) -> tuple:
    colours = family_colours()
    return colours.get(family, (0.3, 0.3, 0.3))


def _weekly_band(
    frame: pd.DataFrame, *, keys: list[str], value: str, min_patients: int
) -> pd.DataFrame:
    """Median and quartiles of ``value`` across patients per ``keys`` (weeks with enough data)."""
    grouped = frame.groupby(keys)[value]
    band = pd.DataFrame(
        {
            "n_patients": grouped.count(),
            "median": grouped.median(),
            "q1": grouped.quantile(0.25),
            "q3": grouped.quantile(0.75),
        }
    ).reset_index()
    return band.loc[band["n_patients"] >= min_patients]


def _draw_bands(
    ax: Axes,
    band: pd.DataFrame,
    *,
    hue: str | None,
    families: Sequence[str] | None,
    iqr: bool | None,
) -> bool:
    """Median lines with IQR bands (by default only for up to MAX_BANDS lines); shaded?"""
    if hue is None:
        ax.plot(band["week"], band["median"], color=_PAIN_COLOUR, marker="o", ms=3, label="Median")
        if iqr is not False:
            ax.fill_between(
                band["week"], band["q1"], band["q3"], color=_PAIN_COLOUR, alpha=0.2, label="IQR"
            )
        return iqr is not False
    drawn = _ordered_families(band[hue], families)
    shade = len(drawn) <= MAX_BANDS if iqr is None else iqr
    for family in drawn:
        part = band.loc[band[hue] == family].sort_values("week")
        colour = _colour_of(family)
        ax.plot(
            part["week"], part["median"], color=colour, marker="o", ms=3, label=family_label(family)
        )
        if shade:
            ax.fill_between(part["week"], part["q1"], part["q3"], color=colour, alpha=0.15)
    return shade


def _across_patients(shaded: bool) -> str:
    return "\nmedian across patients" + (" (band: IQR)" if shaded else "")


def _finish_week_axis(ax: Axes, *, ylabel: str, legend_title: str | None) -> None:
    ax.set_xlabel("Week of care (week 0 = first 7 days)")
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=12))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(title=legend_title, fontsize="small", frameon=False, loc="best")
    sns.despine(ax=ax)


def plot_volume_progression(
    *,
    data: pd.DataFrame,
    y: str = "volume_load_kg",
    hue: str | None = "family",
    families: Sequence[str] | None = None,
    min_patients: int = 1,
    iqr: bool | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Weekly training volume by week of care: median across patients, with its IQR.

    Parameters
    ----------
    data : DataFrame
        The ``weekly_load`` table (patient_id, week, family and ``y``).
    y : str
        ``volume_load_kg`` (default), ``total_reps``, ``tut_s`` or ``sets``.
    hue : str or None
        ``"family"`` for one line per family; None to sum each patient's week over families
        and draw one line.
    families : sequence of str, optional
        Families to draw (default: all present, in the protocol's order).
    min_patients : int
        Weeks with fewer patients are not drawn (thin tails are noisy).
    iqr : bool, optional
        Shade the interquartile range; by default only when at most three lines are drawn
        (more overlapping bands are unreadable).
    ax : Axes, optional
        Where to draw.

    Returns
    -------
    Axes
    """
    ax = _axes(ax)
    frame = data if families is None else data.loc[data["family"].isin(list(families))]
    if hue is None:
        per_week = frame.groupby(["patient_id", "week"], as_index=False)[y].sum()
        band = _weekly_band(per_week, keys=["week"], value=y, min_patients=min_patients)
    else:
        band = _weekly_band(frame, keys=[hue, "week"], value=y, min_patients=min_patients)
    shaded = _draw_bands(ax, band, hue=hue, families=families, iqr=iqr)
    ax.set_ylim(bottom=0)
    _finish_week_axis(
        ax,
        ylabel=_Y_LABELS.get(y, y) + _across_patients(shaded),
        legend_title="Family" if hue else None,
    )
    return ax


def plot_level_progression(
    *,
    data: pd.DataFrame,
    hue: str | None = "family",
    families: Sequence[str] | None = None,
    min_patients: int = 1,
    iqr: bool | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Highest ladder level worked at, by week of care: median across patients, with its IQR.

    Parameters
    ----------
    data : DataFrame
        The ``weekly_load`` table (patient_id, week, family, top_level).
    hue : str or None
        ``"family"`` for one line per family; None for the patient's highest level over all
        families.
    families : sequence of str, optional
        Families to draw.
    min_patients : int
        Weeks with fewer patients are not drawn.
    iqr : bool, optional
        Shade the interquartile range (default: only when at most three lines are drawn).
    ax : Axes, optional
        Where to draw.

    Returns
    -------
    Axes
    """
    ax = _axes(ax)
    frame = data if families is None else data.loc[data["family"].isin(list(families))]
    if hue is None:
        per_week = frame.groupby(["patient_id", "week"], as_index=False)["top_level"].max()
        band = _weekly_band(per_week, keys=["week"], value="top_level", min_patients=min_patients)
    else:
        band = _weekly_band(frame, keys=[hue, "week"], value="top_level", min_patients=min_patients)
    shaded = _draw_bands(ax, band, hue=hue, families=families, iqr=iqr)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(bottom=0.5)
    _finish_week_axis(
        ax,
        ylabel="Highest ladder level that week" + _across_patients(shaded),
        legend_title="Family" if hue else None,
    )
    return ax


def plot_pain_response(
    *,
    data: pd.DataFrame,
    pain_threshold: float = PAIN_THRESHOLD,
    show_flare: bool = True,
    ax: Axes | None = None,
) -> Axes:
    """Pain in the 24 h after a session, and the flare rate, by how much volume rose.

    Mean pain_24h with its confidence interval on the left axis (0-10, with the pain limit drawn
    as a dashed line); the share of flare sessions with its Wilson interval on the right axis.
    Each bin's number of family sessions is written under its label.

    Parameters
    ----------
    data : DataFrame
        Output of :func:`hipdata.analysis.response.pain_response_curve`.
    pain_threshold : float
        The protocol's pain limit (drawn as a reference line).
    show_flare : bool
        Draw the flare rate on a second y axis.
    ax : Axes, optional
        Where to draw.

    Returns
    -------
    Axes
        The pain axis (the flare axis is its twin).
    """
    ax = _axes(ax)
    x = np.arange(len(data))
    mean = data["pain_24h_mean"].to_numpy(dtype="float64")
    errors = np.vstack(
        [
            mean - data["pain_24h_ci_low"].to_numpy(dtype="float64"),
            data["pain_24h_ci_high"].to_numpy(dtype="float64") - mean,
        ]
    )
    offset = 0.08 if show_flare else 0.0
    ax.errorbar(
        x - offset,
        mean,
        yerr=np.nan_to_num(errors),
        color=_PAIN_COLOUR,
        marker="o",
        capsize=3,
        label="Pain 24 h after (mean, 95 % CI)",
    )
    ax.axhline(
        pain_threshold,
        color=_THRESHOLD_COLOUR,
        linestyle="--",
        linewidth=1,
        label=f"Pain limit {pain_threshold:g}/10",
    )
    ax.set_ylim(0, 10)
    ax.set_ylabel("Pain in the 24 h after (0-10)", color=_PAIN_COLOUR)
    tick_labels = data["volume_change_bin"] + "\nn=" + data["n"].astype(str)
    ax.set_xticks(x, list(tick_labels))
    ax.set_xlabel("Change in the exercise family's volume load since its previous session")
    handles, labels = ax.get_legend_handles_labels()
    if show_flare:
        flare_ax = ax.twinx()
        rate = data["flare_rate"].to_numpy(dtype="float64") * 100
        flare_errors = np.vstack(
            [
                rate - data["flare_ci_low"].to_numpy(dtype="float64") * 100,
                data["flare_ci_high"].to_numpy(dtype="float64") * 100 - rate,
            ]
        )
        flare_ax.errorbar(
            x + offset,
            rate,
            yerr=np.nan_to_num(flare_errors),
            color=_FLARE_COLOUR,
            marker="s",
            linestyle=":",
            capsize=3,
            label="Flare sessions (%, 95 % CI)",
        )
        flare_ax.set_ylim(0, 100)
        flare_ax.yaxis.set_major_formatter(PercentFormatter(100))
        flare_ax.set_ylabel(
            f"Sessions with pain > {pain_threshold:g}/10 (flare, %)", color=_FLARE_COLOUR
        )
        more_handles, more_labels = flare_ax.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    ax.legend(handles, labels, fontsize="small", frameon=False, loc="upper left")
    return ax


def plot_ladder_funnel(
    *,
    data: pd.DataFrame,
    families: Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Share of patients reaching each level of each exercise ladder.

    Parameters
    ----------
    data : DataFrame
        Output of :func:`hipdata.analysis.progression.ladder_funnel`.
    families : sequence of str, optional
        Families to draw (default: all with patients, in the protocol's order).
    ax : Axes, optional
        Where to draw.

    Returns
    -------
    Axes
    """
    ax = _axes(ax)
    frame = data.loc[data["n_patients"] > 0]
    for family in _ordered_families(frame["family"], families):
        part = frame.loc[frame["family"] == family].sort_values("level")
        n = int(part["n_patients"].max())
        ax.plot(
            part["level"],
            part["share_reached"] * 100,
            marker="o",
            color=_colour_of(family),
            label=f"{family_label(family)} (n={n})",
        )
    ax.set_xlabel("Ladder level (1 = easiest)")
    ax.set_ylabel("Patients who reached the level (%)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_formatter(PercentFormatter(100))
    ax.set_ylim(0, 105)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(title="Family (patients)", fontsize="small", frameon=False, loc="lower left")
    sns.despine(ax=ax)
    return ax


def plot_time_to_progression(
    *,
    data,
    families: Sequence[str] | None = None,
    ci: bool = True,
    ax: Axes | None = None,
) -> Axes:
    """Kaplan-Meier curves of the time from reaching a level to working above it.

    Parameters
    ----------
    data : DataFrame or TimeToProgression
        :func:`hipdata.analysis.progression.time_to_next_level` or its ``table``. With a
        ``level`` column, one curve per family and level.
    families : sequence of str, optional
        Families to draw.
    ci : bool
        Shade the pointwise confidence band.
    ax : Axes, optional
        Where to draw.

    Returns
    -------
    Axes
    """
    ax = _axes(ax)
    table = getattr(data, "table", data)
    by_level = "level" in table.columns
    for family in _ordered_families(table["family"], families):
        part = table.loc[table["family"] == family]
        groups = part.groupby("level", sort=True) if by_level else [(None, part)]
        for level, curve in groups:
            curve = curve.sort_values("time_days")
            colour = _colour_of(family)
            label = family_label(family) + (f", level {level}" if by_level else "")
            ax.step(
                curve["time_days"],
                curve["survival"] * 100,
                where="post",
                color=colour,
                label=f"{label} (n={int(curve['at_risk'].iloc[0])})",
            )
            if ci:
                ax.fill_between(
                    curve["time_days"],
                    curve["ci_low"] * 100,
                    curve["ci_high"] * 100,
                    step="post",
                    color=colour,
                    alpha=0.12,
                )
    ax.set_xlabel("Days since the first session at a level")
    ax.set_ylabel("Not yet progressed to a higher level (%)")
    ax.yaxis.set_major_formatter(PercentFormatter(100))
    ax.set_ylim(0, 102)
    ax.set_xlim(left=0)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(title="Family (spells)", fontsize="small", frameon=False, loc="upper right")
    sns.despine(ax=ax)
    return ax


def plot_cumulative_incidence(
    *,
    data: pd.DataFrame,
    families: Sequence[str] | None = None,
    km: bool = True,
    ax: Axes | None = None,
) -> Axes:
    """Cumulative incidence of progression (Aalen-Johansen), with 1 - Kaplan-Meier beside it.

    Solid steps: the share of spells that have moved up a level by each day, with discharge for
    surgery or drop-out as a competing event. Dashed steps (``km=True``): 1 - Kaplan-Meier, with
    those discharges censored; the gap between the two is what treating them as censoring adds.

    Parameters
    ----------
    data : DataFrame
        :func:`hipdata.analysis.progression.progression_incidence`.
    families : sequence of str, optional
        Families to draw.
    km : bool
        Also draw 1 - Kaplan-Meier (dashed).
    ax : Axes, optional
        Where to draw.

    Returns
    -------
    Axes
    """
    ax = _axes(ax)
    for family in _ordered_families(data["family"], families):
        curve = data.loc[data["family"] == family].sort_values("time_days")
        colour = _colour_of(family)
        ax.step(
            curve["time_days"],
            curve["cif_progression"] * 100,
            where="post",
            color=colour,
            label=f"{family_label(family)} (n={int(curve['at_risk'].iloc[0])})",
        )
        if km:
            ax.step(
                curve["time_days"],
                curve["km_progression"] * 100,
                where="post",
                color=colour,
                linestyle="--",
                linewidth=0.9,
            )
    if km and len(data):
        ax.plot([], [], color="grey", label="Aalen-Johansen (competing discharge)")
        ax.plot([], [], color="grey", linestyle="--", label="1 - Kaplan-Meier (censored)")
    ax.set_xlabel("Days since the first session at a level")
    ax.set_ylabel("Progressed to a higher level (%)")
    ax.yaxis.set_major_formatter(PercentFormatter(100))
    ax.set_ylim(0, 102)
    ax.set_xlim(left=0)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(title="Family (spells)", fontsize="small", frameon=False, loc="lower right")
    sns.despine(ax=ax)
    return ax


def plot_adherence(
    *,
    data: pd.DataFrame,
    by: str | None = "clinic_id",
    column: str = "attendance",
    threshold: float = COMPLETION_ATTENDANCE,
    max_dots: int = MAX_PATIENT_DOTS,
    ax: Axes | None = None,
) -> Axes:
    """Distribution of attendance per clinic, with the completion line.

    Groups are drawn as horizontal box plots with every patient as a dot (up to ``max_dots``
    patients; more are drawn as boxes only), so long clinic names never overlap. The dashed line
    marks the completion threshold (75 % of planned sessions).

    Parameters
    ----------
    data : DataFrame
        The ``patient_summary`` table.
    by : str or None
        Grouping column (``clinic_id``, ``clinician_id``); None for one box.
    column : str
        A ratio column (``attendance``, ``dose_adherence``, ...), drawn as a percentage.
    threshold : float
        The completion threshold, as a ratio.
    max_dots : int
        Most patients drawn as dots (:data:`MAX_PATIENT_DOTS`); above it, boxes only.
    ax : Axes, optional
        Where to draw.

    Returns
    -------
    Axes
    """
    ax = _axes(ax)
    frame = data.dropna(subset=[column])
    frame = frame.assign(
        percent=frame[column] * 100,
        group=(
            ALL_PATIENTS
            if by is None
            else frame[by].astype("object").fillna("not recorded").astype(str)
        ),
    )
    order = sorted(frame["group"].unique())
    if not order:  # nothing to draw (matplotlib refuses an empty box plot)
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        return ax
    position = frame["group"].map({group: i for i, group in enumerate(order)})
    values = [frame.loc[frame["group"] == group, "percent"].to_numpy() for group in order]
    ax.boxplot(
        values,
        positions=range(len(order)),
        orientation="horizontal",
        widths=0.6,
        showfliers=False,
        patch_artist=True,
        boxprops={"facecolor": "#dbe5f1", "edgecolor": "#4d4d4d"},
        medianprops={"color": "#4d4d4d"},
    )
    if len(frame) <= max_dots:
        # fixed-seed jitter: the same data always give the same figure (reproducible reports);
        # above the boxes (zorder 2), so that the patients inside the IQR are not hidden
        jitter = np.random.default_rng(0).uniform(-0.18, 0.18, size=len(frame))
        ax.scatter(
            frame["percent"], position + jitter, s=9, color=_PAIN_COLOUR, alpha=0.6, zorder=3
        )
    counts = frame.groupby("group").size().reindex(order)
    ax.set_yticks(range(len(order)), [f"{g} (n={n})" for g, n in counts.items()])
    ax.set_ylabel("" if by is None else by.removesuffix("_id").replace("_", " ").capitalize())
    ax.axvline(
        threshold * 100,
        color=_FLARE_COLOUR,
        linestyle="--",
        linewidth=1,
        label=f"Completion: {threshold * 100:g} % of planned sessions",
    )
    ax.xaxis.set_major_formatter(PercentFormatter(100))
    ax.set_xlim(left=0)
    label = "Attendance" if column == "attendance" else column.replace("_", " ").capitalize()
    ax.set_xlabel(f"{label} (% of planned sessions)" if column == "attendance" else f"{label} (%)")
    # above the plot, so that it never hides a box
    ax.legend(fontsize="small", frameon=False, loc="lower right", bbox_to_anchor=(1.0, 1.0))
    sns.despine(ax=ax)
    return ax
