"""Reports: figures and tables turned into reproducible PDF documents.

- :mod:`hipdata.report.pdf` -- a small report-building layer on fpdf2 (:class:`ReportPDF`):
  title block, headings, paragraphs, tables that repeat their headers across pages, matplotlib
  figures embedded as vector SVG, atomic and byte-reproducible saving.
- :mod:`hipdata.report.funnel` -- Spiegelhalter (2005) funnel plots: exact binomial and normal
  control limits, overdispersion, a per-unit funnel table and :func:`plot_funnel`.
- :mod:`hipdata.report.audit` and :mod:`hipdata.disclosure` -- the quarterly clinic audit
  indicators and their small-cell suppression.
- :mod:`hipdata.report.document` -- a report as blocks, shown in a notebook and saved as PDF.
- :mod:`hipdata.report.quarterly` and :mod:`hipdata.report.cohort` -- the two reports' sections.
- :mod:`hipdata.report.run` -- runs a report notebook with papermill, writes PDF and HTML.
"""
