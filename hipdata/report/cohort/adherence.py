"""Section 7 of the cohort report: adherence."""

from __future__ import annotations

import pandas as pd

from hipdata.analysis.adherence import completion
from hipdata.disclosure import (
    SECONDARY_MARKER,
    primary_marker,
    share_cells,
    suppress,
    suppression_note,
)
from hipdata.plots.progress import MAX_PATIENT_DOTS, plot_adherence
from hipdata.report.cohort.common import ALL_CLINICS, new_figure
from hipdata.report.cohort.context import CohortContext
from hipdata.report.document import Document
from hipdata.report.format import format_count, format_interval

# ------------------------------------------------------------------------------------------------
# 7. adherence
# ------------------------------------------------------------------------------------------------
_ADHERENCE_FIGURES = (
    ("attendance", "Attendance (sessions / planned)"),
    ("pain_threshold_adherence", "Pain-threshold adherence (sessions within the limit)"),
    ("dose_adherence", "Dose adherence (performed / prescribed)"),
    ("activity_weeks_met_share", "Activity weeks meeting the WHO target"),
)


def adherence_table(ctx: CohortContext) -> pd.DataFrame:
    """Adherence figures by clinic: median [IQR] over patients, completion as n (%)."""
    k = ctx.k
    summary = ctx.tables["patient_summary"]
    columns = [*ctx.clinics, ALL_CLINICS]
    rows = []
    for column, label in _ADHERENCE_FIGURES:
        values = summary[["clinic_id", column]].assign(
            clinic_id=summary["clinic_id"].astype(str),
            value=pd.to_numeric(summary[column]).astype("float64"),
        )
        groups = {c: values.loc[values["clinic_id"] == c, "value"].dropna() for c in ctx.clinics}
        groups[ALL_CLINICS] = values["value"].dropna()
        recorded = pd.Series({c: float(len(g)) for c, g in groups.items()})
        shown, _ = suppress(recorded, [(ALL_CLINICS, list(ctx.clinics))], k=k)
        cells = {}
        for c, group in groups.items():
            if len(group) < k or shown[c] in (primary_marker(k), SECONDARY_MARKER):
                cells[c] = SECONDARY_MARKER
            else:
                cells[c] = (
                    f"{100 * group.median():.0f}% [{100 * group.quantile(0.25):.0f}, "
                    f"{100 * group.quantile(0.75):.0f}]"
                )
        rows.append({"Figure": f"{label}, median [IQR]", **cells})
        rows.append({"Figure": "    patients with a value", **shown.to_dict()})
    result = completion(
        summary,
        ctx.ds.patients,
        by="clinic_id",
        threshold=ctx.protocol.completion_attendance,
    ).set_index("clinic_id")
    result = result.reindex(ctx.clinics).fillna(0)
    judged = result["n_discharged"] - result["n_attendance_missing"]
    completed = result["n_completed"]
    judged.loc[ALL_CLINICS] = judged.sum()
    completed.loc[ALL_CLINICS] = completed.sum()
    cells = share_cells(completed, judged, k=k, total=ALL_CLINICS)
    rows.append(
        {
            "Figure": (
                f"Completed (attendance >= {100 * ctx.protocol.completion_attendance:g}%), "
                "n (% of discharged)"
            ),
            **cells["numerator"].to_dict(),
        }
    )
    rows.append({"Figure": "    discharged patients", **cells["denominator"].to_dict()})
    return pd.DataFrame(rows, columns=["Figure", *columns])


def adherence_text(ctx: CohortContext) -> str:
    """Attendance, completion (:func:`completion`), pain-threshold and dose adherence, activity.

    Each figure is described only when at least ``k`` patients have it; completion says it is
    not available when nobody has been discharged.
    """
    k = ctx.k
    summary = ctx.tables["patient_summary"]
    overall = completion(
        summary, ctx.ds.patients, by=None, threshold=ctx.protocol.completion_attendance
    )
    # no row when nobody has been discharged yet (pilots, interim analyses)
    overall = overall.iloc[0] if len(overall) else None
    attendance = summary["attendance"].dropna()
    pain_ok = summary["pain_threshold_adherence"].dropna()
    dose = summary["dose_adherence"].dropna()
    activity = summary["activity_weeks_met_share"].dropna()
    parts = []
    if len(attendance) >= k:
        parts.append(
            f"Patients attended a median of {100 * attendance.median():.0f}% of their planned "
            f"sessions (IQR {100 * attendance.quantile(0.25):.0f}% to "
            f"{100 * attendance.quantile(0.75):.0f}%)."
        )
    judged = 0 if overall is None else overall["n_discharged"] - overall["n_attendance_missing"]
    if overall is None:
        parts.append("Completion is not available: no patient has been discharged yet.")
    elif judged >= k and overall["n_completed"] >= k and judged - overall["n_completed"] >= k:
        parts.append(
            f"{format_count(overall['n_completed'], k)} of {format_count(judged, k)} discharged "
            f"patients ({100 * overall['completion_rate']:.0f}%, 95% CI "
            f"{format_interval(overall['ci_low'], overall['ci_high'], percent=True)}) completed "
            f"the programme (attendance of at least "
            f"{100 * ctx.protocol.completion_attendance:g}%)."
        )
    if len(pain_ok) >= k:
        parts.append(
            f"In a typical patient's sessions pain stayed within the "
            f"{ctx.protocol.pain_threshold:g}/10 limit {100 * pain_ok.median():.0f}% of the time."
        )
    if len(dose) >= k:
        parts.append(
            f"Patients performed a median of {100 * dose.median():.0f}% of their prescribed dose."
        )
    if len(activity) >= k:
        parts.append(
            f"The WHO activity target ({ctx.protocol.who_cardio_min:g} min of cardio and "
            f"{ctx.protocol.who_strength_sessions} strength sessions a week) was met in a mean "
            f"{100 * activity.mean():.0f}% of a patient's recorded activity weeks."
        )
    return " ".join(parts) or "Too few patients to describe adherence."


#: How a grouping of the attendance figure is named (other columns: "<column> group").
_GROUP_NOUNS = {"clinic_id": ("clinic", "Clinics"), "clinician_id": ("clinician", "Clinicians")}


def _group_nouns(by: str) -> tuple[str, str]:
    return _GROUP_NOUNS.get(by, (f"{by} group", "Groups"))


def attendance_groups(summary: pd.DataFrame, *, k: int, by: str = "clinic_id") -> pd.DataFrame:
    """The patient summary rows of the groups with at least ``k`` patients with attendance."""
    groups = summary[by].astype(str)
    counts = summary.groupby(groups)["attendance"].count()
    large = counts.index[counts >= k]
    return summary.loc[groups.isin(large)]


def attendance_unavailable(k: int, by: str = "clinic_id") -> str:
    """Said instead of the attendance figure when no group has ``k`` patients."""
    return (
        f"Attendance figure not available: no {_group_nouns(by)[0]} has {k} or more patients "
        "with attendance known."
    )


def attendance_caption(k: int, by: str = "clinic_id", patients: int | None = None) -> str:
    """The attendance figure's caption; ``patients``: how many the figure draws (above
    :data:`~hipdata.plots.progress.MAX_PATIENT_DOTS` the figure has no dots)."""
    one, many = _group_nouns(by)
    dots = (
        "dots: patients"
        if patients is None or patients <= MAX_PATIENT_DOTS
        else f"no dot per patient above {MAX_PATIENT_DOTS:,} patients"
    )
    return (
        f"Attendance per {one} (box: median and IQR; {dots}). The dashed line "
        f"marks completion. {many} with fewer than {k} patients are not drawn."
    )


ADHERENCE_CAPTION = "Adherence by clinic."


def adherence_note(k: int) -> str:
    """The adherence table's note."""
    return (
        "Median [IQR] over patients with the figure. Completion counts discharged patients "
        "only. " + suppression_note(k)
    )


def section_adherence(ctx: CohortContext, doc: Document) -> None:
    """Section 7: attendance distribution, completion, pain-threshold and dose adherence, activity."""
    k = ctx.k
    doc.paragraph(adherence_text(ctx))
    shown = attendance_groups(ctx.tables["patient_summary"], k=k)
    if shown.empty:
        doc.paragraph(attendance_unavailable(k))
    else:
        figure, ax = new_figure(7.0, 3.6)
        plot_adherence(
            data=shown, by="clinic_id", threshold=ctx.protocol.completion_attendance, ax=ax
        )
        patients = int(shown["attendance"].notna().sum())
        doc.figure(figure, caption=attendance_caption(k, patients=patients))
    doc.table(adherence_table(ctx), caption=ADHERENCE_CAPTION, note=adherence_note(k))


# ------------------------------------------------------------------------------------------------
