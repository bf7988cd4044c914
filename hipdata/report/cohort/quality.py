"""Section 10 of the cohort report (data quality) and the appendix (definitions)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hipdata.analysis.outcomes import followup_completeness
from hipdata.disclosure import format_share, suppress, suppression_note
from hipdata.protocol import definitions
from hipdata.report.cohort.common import measures_present
from hipdata.report.cohort.context import CohortContext
from hipdata.report.cohort.outcomes import outcome_fits
from hipdata.report.cohort.training import pain_trajectory_fit
from hipdata.report.document import Document
from hipdata.report.format import DASH, format_count, scrub_small_numbers


# ------------------------------------------------------------------------------------------------
# 10. data quality
# ------------------------------------------------------------------------------------------------
def reason_category(reasons: pd.Series) -> pd.Series:
    """A quarantine reason without its particulars: quoted values, row numbers, ids removed.

    ``"unknown exercise 'copenhagen plnk'; did you mean ..."`` -> ``"unknown exercise"``;
    ``"duplicate of row 12 (same patient, date, exercise, set)"`` -> ``"duplicate of row #"``.
    """
    text = reasons.astype("str")
    text = text.str.replace(r"'[^']*'|\"[^\"]*\"", "", regex=True)
    text = text.str.split(r"[:;(]", n=1, regex=True).str[0]
    text = text.str.replace(r"\b[A-Za-z]*\d[\w\-]*", "#", regex=True)
    return text.str.replace(r"\s+", " ", regex=True).str.strip(" ,.-")


def quarantine_table(ctx: CohortContext, top: int = 5) -> pd.DataFrame:
    """Rows read, kept and quarantined per table, with the top reasons (counts only)."""
    k = ctx.k
    report = ctx.ds.load_report
    quarantine = ctx.ds.quarantine
    rows = []
    for record in report.itertuples():
        part = quarantine.loc[quarantine["source_file"] == record.source_file]
        categories = reason_category(part["reason"]).value_counts()
        shown = categories.head(top)
        rest = categories.iloc[top:].sum()
        values = pd.Series(
            {
                "read": record.rows_read,
                "kept": record.rows_kept,
                "quarantined": record.rows_quarantined,
                **{f"reason|{name}": count for name, count in shown.items()},
                **({"reason|other reasons": rest} if rest else {}),
            },
            dtype="float64",
        )
        reasons = [name for name in values.index if name.startswith("reason|")]
        lines = [("read", ["kept", "quarantined"])]
        if reasons:
            lines.append(("quarantined", reasons))
        display, _ = suppress(values, lines, k=k)
        rows.append(
            {
                "Table": record.table,
                "Rows read": display["read"],
                "Kept": display["kept"],
                "Quarantined": display["quarantined"],
                "Top reasons": "; ".join(
                    f"{name.removeprefix('reason|')} ({display[name]})" for name in reasons
                )
                or DASH,
            }
        )
    return pd.DataFrame(rows, columns=["Table", "Rows read", "Kept", "Quarantined", "Top reasons"])


def followup_table(ctx: CohortContext) -> pd.DataFrame:
    """Per measure: discharged patients with a baseline, follow-up present and missing, in care."""
    k = ctx.k
    completeness = followup_completeness(
        ctx.tables["outcome_change"], patients=ctx.ds.patients
    ).set_index("measure")
    rows = []
    for name in measures_present(ctx):
        row = completeness.loc[name]
        values = pd.Series(
            {
                "expected": row["expected_followup"],
                "both": row["with_both"],
                "missing": row["expected_followup"] - row["with_both"],
                "in_care": row["in_care"],
            },
            dtype="float64",
        )
        display, mask = suppress(values, [("expected", ["both", "missing"])], k=k)
        rows.append(
            {
                "Measure": ctx.measures[name].label or name,
                "Discharged with a baseline": display["expected"],
                "Follow-up present": format_share(
                    display["both"],
                    bool(mask["both"] or mask["missing"]),
                    row["with_both"],
                    row["expected_followup"],
                    bool(mask["expected"]),
                ),
                "Follow-up missing": format_share(
                    display["missing"],
                    bool(mask["both"] or mask["missing"]),
                    values["missing"],
                    row["expected_followup"],
                    bool(mask["expected"]),
                ),
                "Still in care": display["in_care"],
            }
        )
    return pd.DataFrame(rows)


def section_data_quality(ctx: CohortContext, doc: Document) -> None:
    """Section 10: quarantined rows, missing pain_24h, missing follow-up, model remarks."""
    k = ctx.k
    sessions = ctx.tables["sessions"]
    quarantined = int(ctx.ds.load_report["rows_quarantined"].sum())
    read = int(ctx.ds.load_report["rows_read"].sum())
    pain_missing = sessions["pain_24h"].isna().mean() if len(sessions) else np.nan
    during_missing = sessions["max_pain_during"].isna().mean() if len(sessions) else np.nan
    remarks = [
        f"{format_count(quarantined, k)} of {format_count(read, k)} input rows were quarantined "
        "(whole input, before the report's filters); the table below gives the reasons.",
        f"Pain in the 24 h after is missing for {100 * pain_missing:.0f}% of "
        f"{len(sessions):,} sessions, and pain during exercise for "
        f"{100 * during_missing:.0f}%. Sessions without pain_24h leave the pain model and count "
        "as 'unknown' for the pain limit.",
    ]
    followup = followup_table(ctx)
    if not followup.empty:
        remarks.append(
            "Follow-up questionnaires missing among discharged patients with a baseline: "
            + "; ".join(
                f"{row['Measure']} {row['Follow-up missing']}" for _, row in followup.iterrows()
            )
            + "."
        )
    model_remarks = []
    try:
        model_remarks += [f"Pain model: {w}" for w in pain_trajectory_fit(ctx).warnings]
    except ValueError as error:
        model_remarks.append(f"Pain model not fitted: {error}")
    for name, fit in outcome_fits(ctx).items():
        label = ctx.measures[name].label or name
        if isinstance(fit, str):
            model_remarks.append(f"{label} model not fitted: {fit}")
        else:
            model_remarks += [f"{label} model: {w}" for w in fit.warnings]
    remarks += [scrub_small_numbers(r, k) for r in model_remarks] or [
        "Every mixed model converged cleanly with the random effects asked for."
    ]
    doc.bullets(remarks)
    doc.table(
        quarantine_table(ctx),
        caption="Input rows read, kept and quarantined per table.",
        note="Reasons are grouped into categories (values and row numbers removed). "
        + suppression_note(k),
    )
    if not followup.empty:
        doc.table(
            followup,
            caption="Follow-up questionnaires among discharged patients with a baseline score.",
            note=suppression_note(k),
        )


# ------------------------------------------------------------------------------------------------


# ------------------------------------------------------------------------------------------------
# appendix: definitions
# ------------------------------------------------------------------------------------------------
def definitions_table(ctx: CohortContext):
    """The definitions used, with this report's parameter values (:func:`hipdata.protocol.definitions`)."""
    return definitions(ctx.protocol, ctx.measures, k=ctx.k, km_conf_type=ctx.km_conf_type)


def section_definitions(ctx: CohortContext, doc: Document) -> None:
    """Appendix: every definition, with this report's parameter values."""
    doc.definitions(definitions_table(ctx), caption="Definitions and parameters used.")
