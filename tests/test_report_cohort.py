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
from hipdata.analysis.balance import patient_characteristics, smd_categorical, smd_continuous
from hipdata.analysis.flow import patient_flow
from hipdata.analysis.outcomes import responder_sensitivity
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
    return cohort.build_cohort_report(ds, tables=tables, generated=GENERATED, show=False)


@pytest.fixture(scope="module")
def small_doc(demo):
    """One clinic and a late start: a small cohort with many counts below k."""
    ds, tables = demo
    return cohort.build_cohort_report(
        ds, tables=tables, clinics=["C03"], start="2026-05-01", generated=GENERATED, show=False
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
    ctx = cohort.CohortContext.build(ds, tables=tables)
    flow = patient_flow(ctx.tables).set_index("stage")["n"]
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
    shown = (
        cohort.patient_flow_table(patient_flow(ctx.tables), k=ctx.k)["Patients"]
        .str.replace(",", "")
        .astype(int)
    )
    assert shown.tolist() == flow.tolist()


def test_filters_restrict_patients_by_clinic_and_start_date(demo):
    ds, tables = demo
    ctx = cohort.CohortContext.build(ds, tables=tables, clinics=["C03"], start="2026-05-01")
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
    again = cohort.build_cohort_report(ds, tables=tables, generated=GENERATED, show=False)
    assert again.to_pdf().to_bytes() == pdf_bytes


def test_smd_formulas():
    # continuous: |1 - 0| / sqrt((1 + 1) / 2) = 1
    assert smd_continuous(1.0, 1.0, 0.0, 1.0) == pytest.approx(1.0)
    # binary: |0.5 - 0.7| / sqrt((0.5 * 0.5 + 0.7 * 0.3) / 2) = 0.2 / sqrt(0.23) = 0.417029
    assert smd_categorical([0.5, 0.5], [0.3, 0.7]) == pytest.approx(0.2 / np.sqrt(0.23))


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


# --- issue 7: responder sensitivity, within/between dose response, competing risks, one sex rule


def _percent(cell: str) -> float:
    return float(cell.split("%")[0])


def test_responder_sensitivity_table_brackets_the_complete_case_rate(demo):
    ds, tables = demo
    ctx = cohort.CohortContext.build(ds, tables=tables)
    table = cohort.responder_sensitivity_table(ctx).set_index("Measure")
    nprs = table.loc["NPRS pain (0-10)"]
    rates = responder_sensitivity(tables["outcome_change"], patients=ds.patients)
    expected = rates.query("measure == 'nprs'").set_index("scenario")["rate"]
    assert _percent(nprs["Complete case"]) == round(100 * expected["complete_case"])
    assert _percent(nprs["Lower bound"]) == round(100 * expected["missing_non_responder"])
    assert _percent(nprs["Upper bound"]) == round(100 * expected["missing_responder"])
    assert (
        _percent(nprs["Lower bound"])
        <= _percent(nprs["Complete case"])
        <= _percent(nprs["Upper bound"])
    )
    # the primary estimate sits beside the rates
    assert nprs["Mixed model: change per month (primary)"].startswith("-")


def test_responder_sensitivity_rows_are_hidden_with_a_small_cell(demo):
    ds, tables = demo
    ctx = cohort.CohortContext.build(ds, tables=tables, clinics=["C03"], start="2026-05-01")
    table = cohort.responder_sensitivity_table(ctx)
    counts = responder_sensitivity(ctx.tables["outcome_change"], patients=ctx.ds.patients)
    first = counts.drop_duplicates("measure").set_index("measure")
    cells = first[["n_followup", "n_missing", "responders"]].assign(
        non_responders=first["n_followup"] - first["responders"]
    )
    small = ((cells >= 1) & (cells <= K - 1)).any(axis=1)
    assert small.any(), "the small cohort has a measure with a small cell"
    hidden = table.set_index("Measure")["Complete case"].eq("*")
    labels = {name: ctx.measures[name].label or name for name in first.index}
    assert all(hidden[labels[name]] for name in first.index[small])


def test_responder_rule_and_is_passed_to_the_metrics_and_stated(demo):
    ds, _ = demo
    either = cohort.CohortContext.build(ds)
    both = cohort.CohortContext.build(ds, hipdata.Protocol(responder_rule="and"))
    n_either = int(either.tables["outcome_change"]["responder"].sum())
    n_both = int(both.tables["outcome_change"]["responder"].sum())
    assert n_both < n_either  # "and" needs both MCIDs: never more responders
    assert "both MCIDs needed" in cohort.parameters_text(both)
    assert "either MCID suffices" in cohort.parameters_text(either)


def test_km_interval_type_is_a_report_parameter_and_is_stated(demo):
    ds, tables = demo
    ctx = cohort.CohortContext.build(ds, tables=tables, km_conf_type="log")
    doc = cohort.new_document(ctx, generated=GENERATED, show=False)
    cohort.section_progression(ctx, doc)
    ttp = ctx.results["time_to_progression"]
    assert ttp.table.attrs["conf_type"] == "log"
    captions = " ".join(getattr(block, "caption", "") or "" for block in doc.blocks)
    assert "R survfit's default conf.type 'log'" in captions
    definitions = cohort.definitions_table(ctx).set_index("Term")["Definition"]
    assert "log transformed" in definitions["Time to next level"]


def test_progression_section_reports_cumulative_incidence_beside_km(doc, demo):
    ds, tables = demo
    ctx = cohort.CohortContext.build(ds, tables=tables)
    incidence = cohort.progression_incidence_fit(ctx)
    # competing discharges exist in the demo, and AJ never exceeds 1 - KM
    assert incidence["competing_events"].sum() > 0
    assert (incidence["cif_progression"] <= incidence["km_progression"] + 1e-12).all()
    table = cohort.cumulative_incidence_table(ctx, incidence)
    assert "Day 28: AJ (1 - KM)" in table.columns
    assert "Aalen-Johansen" in doc.text()
    captions = [getattr(block, "caption", "") for block in doc.blocks]
    assert any("Cumulative incidence of moving up a level" in c for c in captions)


def test_pain_response_section_reports_within_and_between_slopes(doc):
    text = doc.text()
    assert "Within patients" in text and "Between patients" in text
    table = next(t for t in _tables(doc) if "Slope per step" in t.columns)
    assert table["Slope per step"].str.startswith("Within").any()


def test_sex_unknown_is_missing_in_table_one_and_the_association(demo):
    ds, tables = demo
    ctx = cohort.CohortContext.build(ds, tables=tables)
    unknown = set(ds.patients.loc[ds.patients["sex"] == "unknown", "patient_id"])
    assert unknown, "the demo has patients whose sex is 'unknown'"
    frame, _, _ = patient_characteristics(ctx.ds.patients, ctx.tables["outcome_change"])
    assert frame.loc[list(unknown), "sex"].isna().all()  # Table 1: "Not recorded"
    raw, _ = cohort.association_table(ctx)
    change = tables["outcome_change"]
    nprs = change.loc[(change["measure"] == "nprs") & change["improvement"].notna()]
    data = nprs.merge(ds.patients, on="patient_id").merge(
        tables["patient_summary"][["patient_id", "attendance"]], on="patient_id"
    )
    complete = data.dropna(subset=["baseline", "age_years", "sex", "attendance"])
    complete = complete.loc[complete["sex"] != "unknown"]
    sizes = complete["sex"].value_counts()
    complete = complete.loc[complete["sex"].isin(sizes.index[sizes >= K])]
    assert int(raw["n"].iloc[0]) == len(complete)
