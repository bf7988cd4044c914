"""The researcher's cohort report: one :class:`~hipdata.report.document.Document`, section by section.

:func:`build_cohort_report` makes the whole report. The notebook ``notebooks/cohort_report.ipynb``
builds the same document cell by cell from the public API: :meth:`CohortContext.build`, then per
section a table from :mod:`hipdata.analysis` (e.g. :func:`hipdata.analysis.balance.table_one`),
its text, its figure, each added to the document; so changing a grouping or a model in a cell
changes the PDF.

=============================  ===================================================================
section (module)               contents
=============================  ===================================================================
1-2 (:mod:`.population`)       patient flow; Table 1 by clinic (or any grouping), SMDs
3-5 (:mod:`.training`)         weekly volume and ladder level; pain over weeks (mixed model);
                               pain response to rises in volume (dose-response slope)
6 (:mod:`.progression`)        ladder funnel, Kaplan-Meier and Aalen-Johansen, on-criteria moves
7 (:mod:`.adherence`)          attendance, completion, pain-threshold and dose adherence, activity
8-9 (:mod:`.outcomes`)         responders (Wilson), sensitivity bounds, outcome mixed models;
                               improvement against attendance (OLS, HC3)
10, appendix (:mod:`.quality`) quarantine, missing pain and follow-up; definitions
=============================  ===================================================================

Disclosure control (:mod:`hipdata.disclosure`)
----------------------------------------------
- No patient id, date of birth or free text appears: tables hold aggregates only, quarantine
  reasons are shown as generalised categories (quoted values and numbers removed).
- Every count from 1 to ``k - 1`` is shown as ``"<k"``; counts a reader could work out from the
  published totals are suppressed too (``"*"``, :func:`hipdata.disclosure.suppress`). A share's
  complement (denominator minus numerator) is a count the published pair reveals, so it obeys the
  same rule. Percentages and means over a suppressed count, or over fewer than ``k`` patients,
  are shown as ``"*"``.
- Figures leave out groups, weeks and bins with fewer than ``k`` patients (captions say so), and
  Kaplan-Meier curves stop where fewer than ``k`` spells remain at risk.
- Counts inside sentences follow the same primary rule.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from hipdata.dataset import Dataset
from hipdata.protocol import SUPPRESSION_K, Protocol
from hipdata.report.cohort.adherence import (
    ADHERENCE_CAPTION,
    adherence_note,
    adherence_table,
    adherence_text,
    attendance_caption,
    attendance_groups,
    attendance_unavailable,
    section_adherence,
)
from hipdata.report.cohort.common import (
    ALL_CLINICS,
    DAYS_PER_MONTH,
    REPORT_TITLE,
    SECTION_TITLES,
    new_figure,
)
from hipdata.report.cohort.context import CohortContext, new_document, parameters_text
from hipdata.report.cohort.outcomes import (
    NO_OUTCOMES,
    OUTCOME_CAPTION,
    OUTCOME_MODEL_CAPTION,
    SENSITIVITY_CAPTION,
    SENSITIVITY_TEXT,
    association_table,
    improvement_caption,
    outcome_fits,
    outcome_model_note,
    outcome_model_table,
    outcome_remarks,
    outcome_table,
    outcome_table_note,
    outcomes_text,
    primary_measure,
    responder_sensitivity_table,
    section_association,
    section_outcomes,
    sensitivity_note,
)
from hipdata.report.cohort.population import (
    FLOW_NOTE,
    patient_flow_table,
    patient_flow_text,
    section_patient_flow,
    section_table_one,
    table_one_caption,
    table_one_note,
    table_one_text,
)
from hipdata.report.cohort.progression import (
    BY_CLINIC_CAPTION,
    FUNNEL_CAPTION,
    KM_CAPTION,
    KM_NOTE,
    cumulative_incidence_table,
    funnel_caption,
    km_caption,
    km_curves_shown,
    km_medians_table,
    ladder_funnel_table,
    progression_by_clinic_note,
    progression_by_clinic_table,
    progression_by_clinic_text,
    progression_competing_risks,
    progression_incidence_fit,
    progression_text,
    section_progression,
)
from hipdata.report.cohort.quality import (
    definitions_table,
    followup_table,
    quarantine_table,
    reason_category,
    section_data_quality,
    section_definitions,
)
from hipdata.report.cohort.training import (
    PAIN_FORMULA,
    PAIN_MODEL_NOTE,
    dose_response_parts_caption,
    dose_response_parts_note,
    dose_response_parts_table,
    dose_response_parts_text,
    level_caption,
    level_text,
    model_remarks,
    model_table,
    pain_model_caption,
    pain_response_bins,
    pain_response_caption,
    pain_response_figure,
    pain_response_text,
    pain_trajectory_caption,
    pain_trajectory_figure,
    pain_trajectory_fit,
    pain_trajectory_model,
    pain_trajectory_text,
    pain_trajectory_weeks,
    section_dose_volume,
    section_pain_response,
    section_pain_trajectory,
    volume_caption,
    volume_text,
    weekly_volume,
)
from hipdata.report.document import Document, Heading

__all__ = [
    "ADHERENCE_CAPTION",
    "ALL_CLINICS",
    "BY_CLINIC_CAPTION",
    "DAYS_PER_MONTH",
    "REPORT_TITLE",
    "SECTIONS",
    "SECTION_TITLES",
    "FLOW_NOTE",
    "FUNNEL_CAPTION",
    "KM_CAPTION",
    "KM_NOTE",
    "NO_OUTCOMES",
    "OUTCOME_CAPTION",
    "OUTCOME_MODEL_CAPTION",
    "SENSITIVITY_CAPTION",
    "SENSITIVITY_TEXT",
    "PAIN_FORMULA",
    "PAIN_MODEL_NOTE",
    "CohortContext",
    "adherence_note",
    "adherence_table",
    "adherence_text",
    "association_table",
    "attendance_caption",
    "attendance_groups",
    "attendance_unavailable",
    "build_cohort_report",
    "cumulative_incidence_table",
    "definitions_table",
    "dose_response_parts_caption",
    "dose_response_parts_note",
    "dose_response_parts_table",
    "dose_response_parts_text",
    "export",
    "followup_table",
    "funnel_caption",
    "improvement_caption",
    "km_caption",
    "km_curves_shown",
    "km_medians_table",
    "level_caption",
    "level_text",
    "ladder_funnel_table",
    "model_remarks",
    "model_table",
    "new_document",
    "new_figure",
    "outcome_fits",
    "outcome_model_note",
    "outcome_model_table",
    "outcome_remarks",
    "outcome_table",
    "outcome_table_note",
    "outcomes_text",
    "pain_model_caption",
    "pain_response_bins",
    "pain_response_caption",
    "pain_response_figure",
    "pain_response_text",
    "pain_trajectory_caption",
    "pain_trajectory_figure",
    "pain_trajectory_fit",
    "pain_trajectory_model",
    "pain_trajectory_text",
    "pain_trajectory_weeks",
    "parameters_text",
    "patient_flow_table",
    "patient_flow_text",
    "primary_measure",
    "progression_by_clinic_note",
    "progression_by_clinic_table",
    "progression_by_clinic_text",
    "progression_competing_risks",
    "progression_incidence_fit",
    "progression_text",
    "quarantine_table",
    "reason_category",
    "responder_sensitivity_table",
    "section_heading",
    "sensitivity_note",
    "table_one_caption",
    "table_one_note",
    "table_one_text",
    "volume_caption",
    "volume_text",
    "weekly_volume",
]

#: The sections in report order, by their key in :data:`SECTION_TITLES`.
SECTIONS = {
    "patient_flow": section_patient_flow,
    "table_one": section_table_one,
    "dose_volume": section_dose_volume,
    "pain_trajectory": section_pain_trajectory,
    "pain_response": section_pain_response,
    "progression": section_progression,
    "adherence": section_adherence,
    "outcomes": section_outcomes,
    "association": section_association,
    "data_quality": section_data_quality,
    "definitions": section_definitions,
}


def section_heading(doc: Document, key: str) -> None:
    """Add a section's heading to the PDF without showing it in the notebook.

    In the notebook each section's heading is its Markdown cell (so the HTML has it once, and
    ``hipdata report`` names the section it is running); the PDF gets the same words here.
    """
    doc.blocks.append(Heading(SECTION_TITLES[key]))


def build_cohort_report(
    ds: Dataset,
    protocol: Protocol | dict | None = None,
    *,
    tables: dict[str, pd.DataFrame] | None = None,
    start=None,
    end=None,
    clinics: Sequence[str] | None = None,
    k: int = SUPPRESSION_K,
    measures=None,
    km_conf_type: str = "log-log",
    generated: dt.date | None = None,
    show: bool | None = None,
) -> Document:
    """The researcher's cohort report as a :class:`Document` (``doc.save_pdf(path)`` for the PDF).

    Parameters
    ----------
    ds : Dataset
        The loaded cohort.
    protocol : Protocol or dict, optional
        The protocol's parameters (default ``Protocol()``).
    tables : dict, optional
        Its :func:`hipdata.metrics.compute_all` tables (computed when omitted).
    start, end : date-like, optional
        Date range on ``start_date`` (inclusive).
    clinics : sequence of str, optional
        Clinics to report (default all).
    k : int
        Small-cell suppression threshold.
    measures, km_conf_type
        As :meth:`CohortContext.build`.
    generated : date, optional
        Generation date (default today); the same date gives a byte-identical PDF.
    show : bool, optional
        Display blocks as they are added (default: in a notebook only).

    Returns
    -------
    Document

    Examples
    --------
    >>> import hipdata  # doctest: +SKIP
    >>> doc = build_cohort_report(hipdata.load("data/demo"))  # doctest: +SKIP
    >>> doc.save_pdf("cohort.pdf")  # doctest: +SKIP
    """
    ctx = CohortContext.build(
        ds,
        protocol,
        k=k,
        start=start,
        end=end,
        clinics=clinics,
        measures=measures,
        km_conf_type=km_conf_type,
        tables=tables,
    )
    doc = new_document(ctx, generated=generated, show=show)
    for key, section in SECTIONS.items():
        doc.heading(SECTION_TITLES[key])
        section(ctx, doc)
    return doc


def export(ctx: CohortContext, doc: Document, output_dir: str | Path) -> dict[str, Path]:
    """Write ``cohort_report.pdf`` (atomically) and the run manifest for :mod:`hipdata.report.run`."""
    from hipdata.report.run import write_manifest

    pdf = doc.save_pdf(Path(output_dir) / "cohort_report.pdf")
    write_manifest(
        output_dir, "cohort_report", load_report=ctx.ds.load_report, protocol=ctx.protocol
    )
    return {"pdf": pdf}
