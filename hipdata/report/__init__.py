"""Reports: figures and tables turned into reproducible PDF documents.

- :mod:`hipdata.report.pdf` -- a small report-building layer on fpdf2 (:class:`ReportPDF`):
  title block, headings, paragraphs, tables that repeat their headers across pages, matplotlib
  figures embedded as vector SVG, atomic and byte-reproducible saving.
- The audit's statistics live in :mod:`hipdata.analysis` (``audit``, ``indicators``,
  ``audit_suppression``, ``funnel``) and its figures in :mod:`hipdata.plots` (``funnel``,
  ``trends``); small-cell suppression in :mod:`hipdata.disclosure`.
- :mod:`hipdata.report.document` -- a report as blocks, shown in a notebook and saved as PDF.
- :mod:`hipdata.report.quarterly` (a package: context, tables, figures, sections) and
  :mod:`hipdata.report.cohort` -- the two reports.
- :mod:`hipdata.report.run` -- runs a report notebook with papermill, writes PDF and HTML.
"""
