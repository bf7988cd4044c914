"""Section 6 of the cohort report: progression along the exercise ladders."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hipdata.analysis.progression import (
    COMPETING_DISCHARGE_REASONS,
    ladder_funnel,
    progression_incidence,
    progression_rates,
    time_to_next_level,
)
from hipdata.disclosure import SECONDARY_MARKER, share_cells, suppress, suppression_note
from hipdata.plots.progress import (
    family_label,
    plot_cumulative_incidence,
    plot_ladder_funnel,
    plot_time_to_progression,
)
from hipdata.protocol import DISCHARGE_REASON_TEXT, KM_CI_TEXT
from hipdata.report.cohort.common import ALL_CLINICS, new_figure
from hipdata.report.cohort.context import CohortContext
from hipdata.report.document import Document
from hipdata.report.format import DASH, format_count


# ------------------------------------------------------------------------------------------------
# 6. progression
# ------------------------------------------------------------------------------------------------
def ladder_funnel_table(ctx: CohortContext) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ladder funnel for display, and the funnel with suppressed points set to NaN.

    A family's count of patients who reached level L and the count who reached L + 1 give the
    number whose top level is L; those differences are protected as well (lines ``reached(L) =
    top(L) + reached(L + 1)``). Families with fewer than ``k`` patients are left out.
    """
    k = ctx.k
    funnel = ladder_funnel(ctx.tables["family_sessions"], catalogue=ctx.ds.catalogue)
    funnel = funnel.loc[funnel["n_patients"] >= k].reset_index(drop=True)
    values: dict[str, float] = {}
    lines = []
    for family, part in funnel.groupby("family", sort=False):
        reached = part.set_index("level")["n_reached"]
        levels = list(reached.index)
        for level in levels:
            values[f"reached|{family}|{level}"] = float(reached[level])
            following = reached.get(level + 1, 0)
            values[f"top|{family}|{level}"] = float(reached[level] - following)
            members = [f"top|{family}|{level}"]
            if level + 1 in reached.index:
                members.append(f"reached|{family}|{level + 1}")
            lines.append((f"reached|{family}|{level}", members))
    display, mask = suppress(pd.Series(values, dtype="float64"), lines, k=k)
    keys = "reached|" + funnel["family"] + "|" + funnel["level"].astype(str)
    hidden = mask.reindex(keys).to_numpy(dtype=bool)
    plotted = funnel.assign(share_reached=funnel["share_reached"].where(~hidden))
    cells = [
        display[key] if hide else f"{display[key]} ({100 * share:.0f}%)"
        for key, hide, share in zip(keys, hidden, funnel["share_reached"], strict=True)
    ]
    wide = (
        funnel.assign(cell=cells, Family=funnel["family"].map(family_label))
        .pivot(index="Family", columns="level", values="cell")
        .reindex([family_label(f) for f in funnel["family"].unique()])
        .fillna("")
    )
    wide.columns = [f"Level {level}" for level in wide.columns]
    patients = funnel.groupby("family", sort=False)["n_patients"].first()
    wide.insert(0, "Patients", [format_count(v, k) for v in patients.to_numpy()])
    return wide.reset_index(), plotted


def km_medians_table(ctx: CohortContext, medians: pd.DataFrame) -> pd.DataFrame:
    """Median days to the next level per family, with spell and event counts suppressed."""
    k = ctx.k
    medians = medians.loc[medians["n_spells"] >= k].set_index("family")
    if medians.empty:
        return pd.DataFrame(columns=["Family", "Spells", "Progressed", "Median days (95% CI)"])
    cells = share_cells(medians["n_events"], medians["n_spells"], k=k)
    rows = []
    for family, row in medians.iterrows():
        median = "not reached" if pd.isna(row["median_days"]) else f"{row['median_days']:.0f} d"
        low = DASH if pd.isna(row["ci_low"]) else f"{row['ci_low']:.0f}"
        high = "not reached" if pd.isna(row["ci_high"]) else f"{row['ci_high']:.0f}"
        rows.append(
            {
                "Family": family_label(family),
                "Spells": cells.at[family, "denominator"],
                "Progressed": cells.at[family, "numerator"],
                "Median days (95% CI)": median
                if cells.at[family, "hidden"]
                else f"{median} ({low} to {high})",
            }
        )
    return pd.DataFrame(rows)


def _truncate_at_risk(table: pd.DataFrame, k: int) -> pd.DataFrame:
    """Kaplan-Meier rows while at least ``k`` spells are at risk (families with >= k spells)."""
    return table.loc[table["at_risk"] >= k]


#: Days at which the cumulative incidence table reads the curves (4, 8 and 12 weeks).
INCIDENCE_DAYS = (28, 56, 84)


def progression_incidence_fit(ctx: CohortContext) -> pd.DataFrame:
    """:func:`progression_incidence` of the report's cohort (computed once per context)."""
    return ctx.cached(
        "progression_incidence",
        lambda: progression_incidence(
            ctx.tables["family_sessions"], ctx.ds.patients, catalogue=ctx.ds.catalogue
        ),
    )


def _at_risk_from(curve: pd.DataFrame, day: float) -> int:
    """Spells still at risk at ``day`` (0 when the curve ended before it)."""
    later = curve.loc[curve["time_days"] >= day, "at_risk"]
    return int(later.iloc[0]) if len(later) else 0


def _curve_at(curve: pd.DataFrame, day: float, column: str) -> float:
    """A step curve's value at ``day`` (the last row at or before it)."""
    before = curve.loc[curve["time_days"] <= day, column]
    return float(before.iloc[-1]) if len(before) else np.nan


def cumulative_incidence_table(ctx: CohortContext, incidence: pd.DataFrame) -> pd.DataFrame:
    """Per family: spells by how they ended, and progression by 4, 8 and 12 weeks (AJ vs 1 - KM).

    Counts of progressed / competing / censored spells are suppressed together (their sum is the
    spells); a curve's value is shown only while at least ``k`` spells are still at risk.
    """
    k = ctx.k
    rows = []
    for family, curve in incidence.groupby("family", sort=False):
        spells = int(curve["at_risk"].iloc[0])
        if spells < k:
            continue
        values = pd.Series(
            {
                "spells": spells,
                "progressed": curve["events"].sum(),
                "competing": curve["competing_events"].sum(),
                "censored": curve["censored"].sum(),
            },
            dtype="float64",
        )
        display, _ = suppress(values, [("spells", ["progressed", "competing", "censored"])], k=k)
        row = {
            "Family": family_label(family),
            "Spells": display["spells"],
            "Progressed": display["progressed"],
            "Competing discharge": display["competing"],
            "Censored": display["censored"],
        }
        for day in INCIDENCE_DAYS:
            enough = _at_risk_from(curve, day) >= k
            aj = _curve_at(curve, day, "cif_progression")
            km = _curve_at(curve, day, "km_progression")
            row[f"Day {day}: AJ (1 - KM)"] = (
                f"{100 * aj:.0f}% ({100 * km:.0f}%)" if enough else SECONDARY_MARKER
            )
        rows.append(row)
    return pd.DataFrame(rows)


def progression_by_clinic_table(ctx: CohortContext) -> pd.DataFrame:
    """Per clinic: forward progressions, share on criteria, early progressions, held back."""
    k = ctx.k
    rates = progression_rates(
        ctx.tables["progressions"],
        ctx.ds.patients,
        by="clinic_id",
        patient_summary=ctx.tables["patient_summary"],
    ).set_index("clinic_id")
    rates = rates.reindex(ctx.clinics).fillna(0)
    total = rates.sum(numeric_only=True)
    rates.loc[ALL_CLINICS] = total
    on = share_cells(rates["n_met"], rates["n_events"], k=k, total=ALL_CLINICS)
    early = share_cells(rates["n_early"], rates["n_events"], k=k, total=ALL_CLINICS)
    held = rates["held_back_episodes"].astype("float64")
    held_values = pd.Series(held.to_numpy(), index=[str(i) for i in held.index])
    held_display, _ = suppress(held_values, [(ALL_CLINICS, [c for c in ctx.clinics])], k=k)
    patients = rates["n_patients"]
    patients_display, _ = suppress(
        pd.Series(patients.to_numpy(), index=[str(i) for i in patients.index]),
        [(ALL_CLINICS, list(ctx.clinics))],
        k=k,
    )
    return pd.DataFrame(
        {
            "Clinic": list(rates.index),
            "Patients": patients_display.to_numpy(),
            "Moves up (level or load)": on["denominator"].to_numpy(),
            "On criteria, n (%)": on["numerator"].to_numpy(),
            "Early, n (%)": early["numerator"].to_numpy(),
            "Held-back episodes": held_display.to_numpy(),
        }
    )


def progression_text(funnel_plotted: pd.DataFrame, medians: pd.DataFrame, *, k: int) -> str:
    """The ladders in words: where the top was reached most and least often, KM medians.

    ``funnel_plotted`` is :func:`ladder_funnel_table`'s second table (suppressed points NaN);
    ``medians`` the ``medians`` of :func:`hipdata.analysis.progression.time_to_next_level`.
    """
    # each family's top level, described only where that point itself is shown
    tops = funnel_plotted.sort_values("level").groupby("family", sort=False).tail(1)
    tops = tops.dropna(subset=["share_reached"]).set_index("family")
    medians = medians.loc[medians["n_spells"] >= k]
    text = []
    if not tops.empty:
        multi = tops.loc[tops["level"] > 1]
        if not multi.empty:
            best = multi.sort_values("share_reached").iloc[-1]
            worst = multi.sort_values("share_reached").iloc[0]
            text.append(
                f"The top of the ladder was reached most often in "
                f"{family_label(best.name).lower()} ({100 * best['share_reached']:.0f}% of the "
                f"patients who did that family reached level {int(best['level'])}) and least "
                f"often in {family_label(worst.name).lower()} "
                f"({100 * worst['share_reached']:.0f}% reached level {int(worst['level'])})."
            )
    if not medians.empty and medians["median_days"].notna().any():
        fastest = medians.sort_values("median_days").iloc[0]
        slowest = medians.sort_values("median_days").iloc[-1]
        text.append(
            f"Half of the patients moved up a level within {fastest['median_days']:.0f} days in "
            f"{family_label(fastest['family']).lower()} and within "
            f"{slowest['median_days']:.0f} days in {family_label(slowest['family']).lower()} "
            "(Kaplan-Meier medians; patients still at a level at discharge are censored)."
        )
    return " ".join(text) or "Too few patients on the ladders to describe progression."


def funnel_caption(k: int) -> str:
    """The ladder funnel figure's caption."""
    return (
        "Share of the patients doing each family who reached each ladder level. Families "
        f"with fewer than {k} patients, and levels where fewer than {k} patients reached or "
        "stopped, are not drawn."
    )


FUNNEL_CAPTION = "Patients reaching each ladder level, n (% of the family's patients)."


def km_curves_shown(ttp, *, k: int) -> pd.DataFrame:
    """Kaplan-Meier curves to draw: families with ``k`` spells, while ``k`` remain at risk."""
    medians = ttp.medians.loc[ttp.medians["n_spells"] >= k]
    return _truncate_at_risk(ttp.table.loc[ttp.table["family"].isin(medians["family"])], k)


def km_caption(k: int, conf_type: str = "log-log") -> str:
    """The Kaplan-Meier figure's caption (with the interval type)."""
    return (
        "Kaplan-Meier estimate of the days from a patient's first session at a level to their "
        "first session at a higher level (levels of a family pooled; 95% pointwise CIs, "
        f"{KM_CI_TEXT[conf_type]}). "
        f"Curves stop where fewer than {k} spells remain at risk; families with fewer than "
        f"{k} spells are not drawn."
    )


KM_CAPTION = "Time to the next ladder level per family."
KM_NOTE = "A spell is a patient's time at one level of a family. "


def progression_by_clinic_text(by_clinic: pd.DataFrame) -> str:
    """The all-clinics row of :func:`progression_by_clinic_table` in words."""
    all_row = by_clinic.iloc[-1]
    return (
        f"Across clinics, {all_row['On criteria, n (%)']} of {all_row['Moves up (level or load)']}"
        f" moves up a level or load followed a session that met the progression criterion; "
        f"{all_row['Early, n (%)']} came before the criterion was met (early progressions)."
    )


BY_CLINIC_CAPTION = "Progression decisions by clinic."


def progression_by_clinic_note(ctx: CohortContext) -> str:
    """The by-clinic table's note (the protocol's held-back rule, suppression)."""
    return (
        "On criteria: the session before the move met the criterion (unknown counts in the "
        f"denominator); early: it did not. Held back: runs with {ctx.protocol.held_back_sessions}"
        " or more sessions after the criterion was first met. " + suppression_note(ctx.k)
    )


def section_progression(ctx: CohortContext, doc: Document) -> None:
    """Section 6: ladder funnel, Kaplan-Meier time to the next level, progression by clinic."""
    k = ctx.k
    funnel_display, funnel_plotted = ladder_funnel_table(ctx)
    ttp = ctx.cached(
        "time_to_progression",
        lambda: time_to_next_level(
            ctx.tables["family_sessions"],
            ctx.ds.patients,
            catalogue=ctx.ds.catalogue,
            conf_type=ctx.km_conf_type,
        ),
    )
    doc.paragraph(progression_text(funnel_plotted, ttp.medians, k=k))
    figure, ax = new_figure(7.0, 4.2)
    plot_ladder_funnel(data=funnel_plotted, ax=ax)
    doc.figure(figure, caption=funnel_caption(k))
    doc.table(funnel_display, caption=FUNNEL_CAPTION, note=suppression_note(k))
    figure, ax = new_figure(7.0, 4.4)
    plot_time_to_progression(data=km_curves_shown(ttp, k=k), ax=ax)
    doc.figure(figure, caption=km_caption(k, ctx.km_conf_type))
    doc.table(
        km_medians_table(ctx, ttp.medians), caption=KM_CAPTION, note=KM_NOTE + suppression_note(k)
    )
    progression_competing_risks(ctx, doc)
    by_clinic = progression_by_clinic_table(ctx)
    doc.paragraph(progression_by_clinic_text(by_clinic))
    doc.table(by_clinic, caption=BY_CLINIC_CAPTION, note=progression_by_clinic_note(ctx))


def progression_competing_risks(ctx: CohortContext, doc: Document) -> None:
    """Cumulative incidence of progression with competing discharge, beside Kaplan-Meier.

    Aalen-Johansen (:func:`progression_incidence_fit`): a paragraph, a figure and a table; nothing
    when no family has enough spells.
    """
    k = ctx.k
    incidence = progression_incidence_fit(ctx)
    table = cumulative_incidence_table(ctx, incidence)
    if table.empty:
        return
    reasons = " or ".join(DISCHARGE_REASON_TEXT.get(r, r) for r in COMPETING_DISCHARGE_REASONS)
    spells = incidence.groupby("family", sort=False)["at_risk"].first()
    shown = incidence.loc[incidence["family"].isin(spells.index[spells >= k])]
    last_day = INCIDENCE_DAYS[-1]
    gaps = [
        100 * (_curve_at(c, last_day, "km_progression") - _curve_at(c, last_day, "cif_progression"))
        for _, c in shown.groupby("family", sort=False)
        if _at_risk_from(c, last_day) >= k
    ]
    gap_text = (
        f" By day {last_day} the two differ by up to {max(gaps):.0f} percentage points."
        if gaps
        else ""
    )
    doc.paragraph(
        f"Kaplan-Meier treats a patient discharged for {reasons} before moving up as if they "
        "could still move up later, so 1 - Kaplan-Meier overstates how many spells end in "
        "progression. The cumulative incidence (Aalen-Johansen) counts those discharges as "
        "competing events: it is the share of spells that had actually moved up by each day."
        + gap_text
    )
    figure, ax = new_figure(7.0, 4.4)
    plot_cumulative_incidence(data=_truncate_at_risk(shown, k), ax=ax)
    doc.figure(
        figure,
        caption=(
            "Cumulative incidence of moving up a level (solid, Aalen-Johansen; discharge for "
            f"{reasons} is a competing event) and 1 - Kaplan-Meier with those discharges censored "
            f"(dashed). Curves stop where fewer than {k} spells remain at risk."
        ),
    )
    doc.table(
        table,
        caption="How spells ended, and the share progressed by 4, 8 and 12 weeks.",
        note=(
            f"Competing discharge: {reasons} before moving up; censored: still in care, or "
            "discharged for another reason. AJ: Aalen-Johansen cumulative incidence; in "
            f"brackets 1 - Kaplan-Meier. Point estimates. {SECONDARY_MARKER} where fewer than "
            f"{k} spells remain at risk. " + suppression_note(k)
        ),
    )


# ------------------------------------------------------------------------------------------------
