"""The cohort notebook is adaptable: a researcher edits a cell and the PDF shows the change.

The notebook is read with nbformat, the Table 1 cell's grouping is changed from clinic to sex (as a
researcher would type it), and papermill runs it on the demo cohort. The PDF's text must then
hold Table 1 by sex (its caption and the sex groups as columns) and no longer the by-clinic
caption; the executed notebook's HTML must show every section heading once.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from pypdf import PdfReader

from hipdata.report.cohort import SECTION_TITLES

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "hipdata" / "report" / "notebooks" / "cohort_report.ipynb"
BY_CLINIC = 'by = "clinic_id"'


def _text(pdf: Path) -> str:
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in PdfReader(pdf).pages))


@pytest.fixture(scope="module")
def edited_run(tmp_path_factory):
    import nbformat
    import papermill

    folder = tmp_path_factory.mktemp("notebook")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    cells = [cell for cell in notebook.cells if BY_CLINIC in cell.source]
    assert len(cells) == 1, "one cell sets Table 1's grouping"
    cells[0].source = cells[0].source.replace(BY_CLINIC, 'by = "sex"')
    edited = folder / "edited.ipynb"
    nbformat.write(notebook, edited)
    pdf = folder / "cohort.pdf"
    papermill.execute_notebook(
        str(edited),
        str(folder / "out.ipynb"),
        parameters={"pdf_path": str(pdf), "generated": "2026-11-27"},
        kernel_name="python3",
        cwd=str(NOTEBOOK.parent),
        execution_timeout=300,
        progress_bar=False,
    )
    return pdf, folder / "out.ipynb"


def test_editing_the_grouping_cell_changes_table_one_in_the_pdf(edited_run):
    pdf, _ = edited_run
    text = _text(pdf)
    assert "Patient characteristics at the start of care, by sex." in text
    assert "Patient characteristics at the start of care, by clinic." not in text
    # the sex groups are the columns now (header row of Table 1), and the prose follows them
    assert re.search(r"Characteristic Female Male .*All SMD", text)
    assert "patients in 3 sexes" in text or "patients in 4 sexes" in text
    # the rest of the report is still there
    for title in SECTION_TITLES.values():
        assert title in text


def test_every_section_heading_appears_once_in_the_notebook_html(edited_run):
    import nbformat
    from nbconvert import HTMLExporter

    _, executed = edited_run
    page, _ = HTMLExporter().from_notebook_node(nbformat.read(executed, as_version=4))
    headings = re.findall(r"<h[1-6][^>]*>(.*?)(?:<a|</h[1-6]>)", page)
    texts = Counter(re.sub(r"<[^>]+>", "", h).strip() for h in headings)
    for title in SECTION_TITLES.values():
        assert texts[title] == 1, (title, texts[title])
    ids = Counter(re.findall(r'<h[1-6] id="([^"]+)"', page))
    assert [i for i, n in ids.items() if n > 1] == []
