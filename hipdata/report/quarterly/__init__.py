"""The quarterly clinic audit: indicator tables, funnel plots and trends as a :class:`Document`.

- :mod:`~hipdata.report.quarterly.context` -- :class:`AuditContext` (``AuditContext.build(ds,
  protocol, *, k, quarter, clinic, ...)`` on a loaded Dataset).
- :mod:`~hipdata.report.quarterly.tables` -- formatted indicator tables, funnel and case-mix
  tables, and :func:`export` of the PDF and CSVs.
- :mod:`~hipdata.report.quarterly.figures` -- the figures, drawn with :mod:`hipdata.plots`.
- :mod:`~hipdata.report.quarterly.sections` -- each section's text, and
  :func:`build_audit_report`.

The statistics live in :mod:`hipdata.analysis` (``audit``, ``indicators``, ``funnel``,
``casemix``); the notebook ``notebooks/quarterly_audit.ipynb`` shows them cell by cell.
"""

from hipdata.report.quarterly.context import (
    OVERDISPERSION_CHOICES,
    POOLED_QUARTERS,
    TRENDS_QUARTERS,
    AuditContext,
    as_protocol,
)
from hipdata.report.quarterly.figures import casemix_figure, funnel_figure, trends_figure
from hipdata.report.quarterly.sections import (
    SECTIONS,
    build_audit_report,
    casemix_text,
    clinic_table,
    clinician_tables,
    funnel_text,
    new_document,
    section_casemix,
    section_clinicians,
    section_clinics,
    section_data_quality,
    section_definitions,
    section_funnels,
    section_summary,
    section_trends,
)
from hipdata.report.quarterly.tables import (
    CASEMIX_INDICATORS,
    FUNNEL_INDICATORS,
    FUNNEL_TABLE_INDICATORS,
    TREND_INDICATORS,
    casemix,
    casemix_calibration_table,
    casemix_model_table,
    export,
    format_indicator,
    funnels,
    indicator_table,
    network_interval,
    trend_table,
)

__all__ = [
    "CASEMIX_INDICATORS",
    "FUNNEL_INDICATORS",
    "FUNNEL_TABLE_INDICATORS",
    "OVERDISPERSION_CHOICES",
    "POOLED_QUARTERS",
    "SECTIONS",
    "TREND_INDICATORS",
    "TRENDS_QUARTERS",
    "AuditContext",
    "as_protocol",
    "build_audit_report",
    "casemix",
    "casemix_calibration_table",
    "casemix_figure",
    "casemix_model_table",
    "casemix_text",
    "clinic_table",
    "clinician_tables",
    "export",
    "format_indicator",
    "funnel_figure",
    "funnel_text",
    "funnels",
    "indicator_table",
    "network_interval",
    "new_document",
    "section_casemix",
    "section_clinicians",
    "section_clinics",
    "section_data_quality",
    "section_definitions",
    "section_funnels",
    "section_summary",
    "section_trends",
    "trend_table",
    "trends_figure",
]
