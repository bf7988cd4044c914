"""Sections 1-2 of the cohort report: patient flow and Table 1."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hipdata.analysis.balance import table_one
from hipdata.analysis.flow import FLOW_LINES, FLOW_STAGES, patient_flow
from hipdata.disclosure import suppress, suppression_note
from hipdata.report.cohort.context import CohortContext
from hipdata.report.document import Document
from hipdata.report.format import DASH, format_count

__all__ = [
    "patient_flow_table",
    "patient_flow_text",
    "section_patient_flow",
    "section_table_one",
    "table_one_caption",
    "table_one_note",
    "table_one_text",
]

#: How each grouping of Table 1 is named in a sentence (other columns: their own name).
GROUP_NOUNS = {
    "clinic_id": ("clinic", "clinics"),
    "clinician_id": ("clinician", "clinicians"),
    "condition": ("condition", "conditions"),
    "sex": ("sex", "sexes"),
}


def _nouns(by: str) -> tuple[str, str]:
    return GROUP_NOUNS.get(by, (f"{by} group", f"{by} groups"))


# ------------------------------------------------------------------------------------------------
# 1. patient flow
# ------------------------------------------------------------------------------------------------
def patient_flow_table(flow: pd.DataFrame, *, k: int) -> pd.DataFrame:
    """The patient flow (:func:`hipdata.analysis.flow.patient_flow`) for display.

    Stage, patients (suppressed with the flow's lines) and share of the stage above (of the
    discharged patients for the follow-up rows).
    """
    flow = flow.set_index("stage")
    display, mask = suppress(flow["n"], FLOW_LINES, k=k)
    discharged = flow.at["treated", "n"] - flow.at["in_care", "n"]
    rows = []
    for stage, row in flow.iterrows():
        parent = None if pd.isna(row["parent"]) else row["parent"]
        denominator = discharged if stage in ("followup", "no_followup") else None
        if denominator is None and parent is not None:
            denominator = flow.at[parent, "n"]
        parent_hidden = bool(mask[parent]) if parent is not None else False
        if stage in ("followup", "no_followup"):
            parent_hidden = parent_hidden or bool(mask["in_care"])
        share = (
            ""
            if parent is None or mask[stage] or parent_hidden or not denominator
            else f"{100 * row['n'] / denominator:.0f}%"
        )
        indent = "" if parent is None else ("    " if parent == "enrolled" else "        ")
        rows.append({"Stage": indent + row["label"], "Patients": display[stage], "Share": share})
    return pd.DataFrame(rows)


def patient_flow_text(flow: pd.DataFrame, table: pd.DataFrame, *, k: int) -> str:
    """The flow in words, quoting the displayed (suppressed) counts of ``table``."""
    n = flow.set_index("stage")["n"]
    by_key = dict(zip([stage[0] for stage in FLOW_STAGES], table["Patients"], strict=True))
    discharged = n["treated"] - n["in_care"]
    parts = [
        f"Of {by_key['enrolled']} patients enrolled, {by_key['treated']} had at least one "
        f"exercise session."
    ]
    if n["treated"] >= k and n["completed"] >= k:
        parts.append(
            f"{by_key['completed']} of the treated ({100 * n['completed'] / n['treated']:.0f}%)"
            f" completed care, {by_key['dropped_out']} dropped out and {by_key['referred']} were "
            f"referred for an injection or surgery; {by_key['in_care']} were still in care."
        )
    if discharged >= k and n["followup"] >= k and not table["Share"].iloc[-2] == "":
        parts.append(
            f"A follow-up questionnaire is available for {by_key['followup']} of the discharged "
            f"patients ({100 * n['followup'] / discharged:.0f}%); the others are reported as "
            "missing, never imputed."
        )
    return " ".join(parts)


#: The flow table's note (before the suppression legend).
FLOW_NOTE = (
    "Shares are of the stage above (follow-up: of the discharged patients). Each treated "
    "patient is in exactly one discharge row. "
)


def section_patient_flow(ctx: CohortContext, doc: Document) -> None:
    """Section 1: enrolled -> treated -> discharge reasons -> follow-up available."""
    flow = patient_flow(ctx.tables)
    table = patient_flow_table(flow, k=ctx.k)
    doc.paragraph(patient_flow_text(flow, table, k=ctx.k))
    doc.table(table, caption="Patient flow.", note=FLOW_NOTE + suppression_note(ctx.k))


# ------------------------------------------------------------------------------------------------
# 2. Table 1
# ------------------------------------------------------------------------------------------------
def table_one_text(table: pd.DataFrame, *, k: int, by: str = "clinic_id") -> str:
    """Table 1 in words: the number of patients and groups, and the largest imbalances."""
    one, many = _nouns(by)
    groups = [c for c in table.columns if c not in ("Characteristic", "All", "SMD")]
    smd = pd.to_numeric(table["SMD"].replace(DASH, np.nan), errors="coerce")
    labelled = table.assign(smd=smd).dropna(subset=["smd"])
    imbalanced = labelled.loc[labelled["smd"] >= 0.1]
    n = table.set_index("Characteristic").at["Patients", "All"]
    text = f"The report covers {n} patients in {len(groups)} {many}. "
    if imbalanced.empty:
        return text + (
            f"No characteristic differs between {many} by a standardised mean difference of 0.1 "
            f"or more, so the {many}' case mixes look alike."
        )
    worst = imbalanced.sort_values("smd", ascending=False).head(3)
    listed = ", ".join(
        f"{row.Characteristic.split(',')[0].strip().lower()} (SMD {row.smd:.2f})"
        for row in worst.itertuples()
    )
    return text + (
        f"{len(imbalanced)} of {len(labelled)} characteristics differ between at least two "
        f"{many} by an SMD of 0.1 or more, most of all {listed}; comparisons between {many} "
        "should allow for these differences in case mix."
    )


def table_one_caption(by: str = "clinic_id") -> str:
    """``"Patient characteristics at the start of care, by clinic."``"""
    return f"Patient characteristics at the start of care, by {_nouns(by)[0]}."


def table_one_note(*, k: int, by: str = "clinic_id") -> str:
    """What Table 1's shares and SMDs are, and the suppression legend."""
    one, many = _nouns(by)
    return (
        f"Shares are of the {one}'s patients (missing values included). SMD: the largest "
        f"standardised mean difference between two {many} (categorical: Yang & Dalton); "
        "baseline scores are the questionnaires closest to the start of care. "
        + suppression_note(k)
    )


def section_table_one(ctx: CohortContext, doc: Document, *, by: str = "clinic_id") -> None:
    """Section 2: Table 1 by ``by`` (default clinic), with a reading of the largest imbalances."""
    table = table_one(ctx.tables, by=by, k=ctx.k, measures=ctx.measures)
    doc.paragraph(table_one_text(table, k=ctx.k, by=by))
    # portrait pages wrap every label and interval of the six columns
    doc.table(
        table, caption=table_one_caption(by), note=table_one_note(k=ctx.k, by=by), landscape=True
    )


def patients_text(ctx: CohortContext) -> str:
    """``"300"``: the report's patients as printed (primary suppression)."""
    return format_count(len(ctx.ds.patients), ctx.k)
