"""The researcher's cohort report on the shipped demo cohort: sections, disclosure control, PDF,
patient flow and the notebook (papermill)."""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from pypdf import PdfReader

import hipdata
from hipdata.metrics import compute_all
from hipdata.report import cohort
from hipdata.report.document import Table

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo"
NOTEBOOK = ROOT / "hipdata" / "report" / "notebooks" / "cohort_report.ipynb"
GENERATED = dt.date(2026, 11, 27)
K = 5
# a cell that states a whole count: "62", "4,610", "62 (48%)"
COUNT_CELL = re.compile(r"^\s*(\d{1,3}(?:,\d{3})*|\d+)(?:\s*\(\d+%\))?\s*$")


@pytest.fixture(scope="module")
def demo():
    ds = hipdata.load(DEMO, today="2026-11-27")
    return ds, compute_all(ds)


@pytest.fixture(scope="module")
def doc(demo):
    ds, tables = demo
    return cohort.build_cohort_report(ds, tables, generated=GENERATED, show=False)


@pytest.fixture(scope="module")
def small_doc(demo):
    """One clinic and a late start: a small cohort with many counts below k."""
    ds, tables = demo
    return cohort.build_cohort_report(
        ds, tables, clinics=["C03"], start="2026-05-01", generated=GENERATED, show=False
    )


@pytest.fixture(scope="module")
def pdf_bytes(doc, tmp_path_factory):
    path = tmp_path_factory.mktemp("pdf") / "cohort.pdf"
    doc.save_pdf(path)
    return path.read_bytes()


def _tables(document) -> list[pd.DataFrame]:
    return [block.data for block in document.blocks if isinstance(block, Table)]


def test_every_section_heading_is_present(doc):
    headings = [block.text for block in doc.blocks if type(block).__name__ == "Heading"]
    assert headings == list(cohort.SECTION_TITLES.values())


def test_title_block_names_folder_version_hash_and_parameters(doc, demo):
    ds, _ = demo
    assert doc.fields["Data source"] == "demo"  # the folder's name, not its path
    assert doc.fields["Input hash"] == ds.input_hash[:12]
    assert doc.fields["hipdata version"] == hipdata.__version__
    assert doc.fields["Generated"] == "2026-11-27"
    assert "3/10" in doc.fields["Parameters"] and "k = 5" in doc.fields["Parameters"]
    assert str(ROOT) not in doc.text()


@pytest.mark.parametrize("which", ["doc", "small_doc"])
def test_no_patient_id_or_date_of_birth_appears(which, request, demo):
    document = request.getfixturevalue(which)
    ds, _ = demo
    text = document.text()
    leaked = [pid for pid in ds.patients["patient_id"] if pid in text]
    assert leaked == []
    assert "birth" not in text.lower()


@pytest.mark.parametrize("which", ["doc", "small_doc"])
def test_no_table_shows_a_count_from_1_to_k_minus_1(which, request):
    document = request.getfixturevalue(which)
    shown = []
    for table in _tables(document):
        for cell in table.astype(str).to_numpy().ravel():
            match = COUNT_CELL.match(cell)
            if match:
                shown.append(int(match.group(1).replace(",", "")))
    assert shown, "the tables show counts"
    assert [n for n in shown if 1 <= n <= K - 1] == []


def test_small_cohort_shows_suppression_markers(small_doc):
    cells = np.concatenate([t.astype(str).to_numpy().ravel() for t in _tables(small_doc)])
    assert "<5" in cells and "*" in cells


def test_patient_flow_adds_up_against_the_patients_table(demo):
    ds, tables = demo
    ctx = cohort.make_context(ds, tables)
    flow = cohort.patient_flow(ctx).set_index("stage")["n"]
    patients = ds.patients
    # independent counts: treated = has a row in the exercise sets; discharge reason as recorded
    treated = patients["patient_id"].isin(ds.sets["patient_id"])
    discharged = patients["discharge_date"].notna()
    reason = patients["discharge_reason"]
    assert flow["enrolled"] == len(patients) == 300
    assert flow["treated"] == treated.sum()
    assert flow["not_treated"] == (~treated).sum()
    assert flow["completed"] == (treated & discharged & (reason == "completed")).sum()
    assert flow["dropped_out"] == (treated & discharged & (reason == "dropped_out")).sum()
    assert (
        flow["referred"]
        == (treated & discharged & reason.isin(["referred_injection", "referred_surgery"])).sum()
    )
    assert flow["in_care"] == (treated & ~discharged).sum()
    parts = ["completed", "dropped_out", "referred", "other", "in_care"]
    assert flow[parts].sum() == flow["treated"]
    assert flow["followup"] + flow["no_followup"] == flow["treated"] - flow["in_care"]
    assert flow["treated"] + flow["not_treated"] == flow["enrolled"]
    # the displayed table shows the same (all demo flow counts are 0 or >= 5)
    shown = cohort.patient_flow_table(ctx)["Patients"].str.replace(",", "").astype(int)
    assert shown.tolist() == flow.tolist()


def test_filters_restrict_patients_by_clinic_and_start_date(demo):
    ds, tables = demo
    ctx = cohort.make_context(ds, tables, clinics=["C03"], start="2026-05-01")
    patients = ds.patients
    expected = (patients["clinic_id"] == "C03") & (patients["start_date"] >= "2026-05-01")
    assert len(ctx.ds.patients) == expected.sum()
    assert set(ctx.tables["sessions"]["patient_id"]) <= set(ctx.ds.patients["patient_id"])
    assert ctx.clinics == ["C03"]


def test_pdf_has_the_sections_more_than_three_pages_and_is_reproducible(doc, demo, pdf_bytes):
    reader = PdfReader(io.BytesIO(pdf_bytes))
    assert len(reader.pages) > 3
    text = re.sub(r"\s+", " ", " ".join(page.extract_text() for page in reader.pages))
    for title in cohort.SECTION_TITLES.values():
        assert title in text
    ds, tables = demo
    again = cohort.build_cohort_report(ds, tables, generated=GENERATED, show=False)
    assert again.to_pdf().to_bytes() == pdf_bytes


def test_smd_formulas():
    # continuous: |1 - 0| / sqrt((1 + 1) / 2) = 1
    assert cohort.smd_continuous(1.0, 1.0, 0.0, 1.0) == pytest.approx(1.0)
    # binary: |0.5 - 0.7| / sqrt((0.5 * 0.5 + 0.7 * 0.3) / 2) = 0.2 / sqrt(0.23) = 0.417029
    assert cohort.smd_categorical([0.5, 0.5], [0.3, 0.7]) == pytest.approx(0.2 / np.sqrt(0.23))


def test_quarantine_reasons_lose_their_particulars():
    reasons = pd.Series(
        [
            "unknown exercise 'copenhagen plnk'; did you mean copenhagen_long_lever?",
            "duplicate of row 12 (same patient, date, exercise, set)",
            "unknown patient id (not in the patients table)",
            "patient is quarantined in the patients table: patients.csv row 5 (P00007)",
        ]
    )
    assert cohort.reason_category(reasons).tolist() == [
        "unknown exercise",
        "duplicate of row #",
        "unknown patient id",
        "patient is quarantined in the patients table",
    ]


def test_notebook_runs_with_papermill_and_writes_the_pdf(tmp_path):
    import papermill

    pdf = tmp_path / "notebook.pdf"
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(tmp_path / "out.ipynb"),
        parameters={"pdf_path": str(pdf), "generated": "2026-11-27"},
        kernel_name="python3",
        cwd=str(NOTEBOOK.parent),
        execution_timeout=120,
        progress_bar=False,
    )
    assert pdf.read_bytes()[:5] == b"%PDF-"


def test_notebook_is_committed_without_outputs():
    import nbformat

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert "parameters" in code[0].metadata.get("tags", [])
    assert notebook.metadata["kernelspec"]["name"] == "python3"
