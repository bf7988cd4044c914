"""Quarterly audit report: disclosure in every shown table, PDF content, reproducibility, CLI."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd
import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

import hipdata
from hipdata.cli import app
from hipdata.report import quarterly
from hipdata.report.document import Table

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"
GENERATED = "2026-11-27"
SECTION_TITLES = [
    "Summary, 2026Q3",
    "Indicators by clinic",
    "Indicators by clinician",
    "Trends across quarters",
    "Funnel plots",
    "Data quality",
    "Definitions",
]


@pytest.fixture(scope="module")
def demo():
    return hipdata.load(DEMO, today=GENERATED)


@pytest.fixture(scope="module")
def ctx(demo):
    return quarterly.AuditContext.build(demo, generated=GENERATED)


@pytest.fixture(scope="module")
def doc(ctx):
    return quarterly.build_audit_report(ctx)


def shown_counts(cell: str) -> list[int]:
    """The counts a cell shows: a plain count, 'a/b' pairs and 'n=b'."""
    cell = cell.replace(",", "")
    if re.fullmatch(r"\d+", cell):
        return [int(cell)]
    pairs = re.findall(r"\((\d+)/(\d+)\)", cell)
    counts = [int(x) for pair in pairs for x in pair]
    counts += [int(n) for n in re.findall(r"n=(\d+)", cell)]
    return counts


def test_latest_complete_quarter_is_the_default(ctx):
    # the demo's last date is in October 2026, so 2026Q3 is the last complete quarter
    assert ctx.quarter == "2026Q3"
    assert ctx.quarters == ["2025Q3", "2025Q4", "2026Q1", "2026Q2", "2026Q3"]


def test_no_table_shows_a_small_count(doc):
    tables = [block.data for block in doc.blocks if isinstance(block, Table)]
    assert len(tables) >= 6
    for table in tables:
        for cell in table.drop(columns="Indicator").to_numpy().ravel():
            counts = shown_counts(str(cell))
            assert not any(1 <= c <= 4 for c in counts), cell


def test_no_patient_identifier_in_the_document(doc, demo):
    text = doc.text()
    for patient_id in demo.patients["patient_id"]:
        assert patient_id not in text


def test_shown_numbers_match_the_indicator_table(ctx, doc):
    # the network's session count in the clinic table is the indicator's value, recomputed here
    # from the sessions table independently: sessions dated in 2026Q3
    sessions = ctx.tables["sessions"]
    in_quarter = sessions["date"].dt.to_period("Q").astype(str).eq("2026Q3").sum()
    clinic_table = next(b.data for b in doc.blocks if isinstance(b, Table))
    shown = clinic_table.set_index("Indicator").loc["Sessions", "Network"]
    assert shown == f"{in_quarter:,}"


def test_export_matches_contract_columns_and_hides_suppressed_values(ctx, tmp_path, doc):
    paths = quarterly.export(ctx, doc, tmp_path)
    table = pd.read_csv(paths["audit_indicators"], dtype=str, keep_default_na=False)
    assert list(table.columns) == [
        "level",
        "unit",
        "quarter",
        "indicator",
        "numerator",
        "denominator",
        "value",
        "suppressed",
    ]
    hidden = table[table["suppressed"] == "true"]
    assert len(hidden) > 0
    assert (hidden[["numerator", "denominator", "value"]] == "").all().all()
    assert set(table["suppressed"]) == {"true", "false"}


def test_pdf_has_sections_no_ids_and_is_reproducible(ctx, doc, demo):
    first = doc.to_pdf().to_bytes()
    second = quarterly.build_audit_report(ctx).to_pdf().to_bytes()
    assert first == second
    reader = PdfReader(io.BytesIO(first))
    assert len(reader.pages) >= 5
    text = "\n".join(page.extract_text() for page in reader.pages)
    for title in SECTION_TITLES:
        assert title in text
    assert not any(pid in text for pid in demo.patients["patient_id"])
    assert "Page 1 of" in text


def test_one_clinic_report_shows_only_that_clinic(demo):
    ctx = quarterly.AuditContext.build(demo, clinic="C01", generated=GENERATED)
    doc = quarterly.build_audit_report(ctx)
    tables = [b.data for b in doc.blocks if isinstance(b, Table)]
    headers = {column for table in tables for column in table.columns}
    assert "C01" in headers and "C02" not in headers
    exported = ctx.indicators_for_export()
    assert set(exported.loc[exported["level"] == "clinic", "unit"]) == {"C01"}


def test_unknown_clinic_and_bad_quarter_are_clear_errors(demo):
    with pytest.raises(hipdata.DataError, match="clinic 'C99' is not in the data"):
        quarterly.AuditContext.build(demo, clinic="C99")
    with pytest.raises(hipdata.DataError, match="not a quarter"):
        quarterly.AuditContext.build(demo, quarter="Q3-2026")


def test_cli_report_audit_end_to_end(tmp_path):
    result = CliRunner().invoke(
        app,
        ["report", "audit", "--data", str(DEMO), "--out", str(tmp_path), "--generated", GENERATED],
    )
    assert result.exit_code == 0, result.output
    # issue 10: every output name carries the quarter and the clinic (here all clinics), so that
    # one quarter's or clinic's run no longer overwrites another's audit_indicators.csv
    pdf = tmp_path / "audit_2026Q3_all.pdf"
    assert pdf.is_file() and (tmp_path / "audit_2026Q3_all.html").is_file()
    assert (tmp_path / "audit_indicators_2026Q3_all.csv").is_file()
    html = (tmp_path / "audit_2026Q3_all.html").read_text(encoding="utf-8")
    assert "P00001" not in html and "Indicators by clinic" in html
    # nothing half-written or temporary is left beside the outputs
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [
            "audit_2026Q3_all.pdf",
            "audit_2026Q3_all.html",
            "audit_indicators_2026Q3_all.csv",
        ]
    )
    # a second run with the same inputs and date gives the same PDF bytes
    again = tmp_path / "again"
    CliRunner().invoke(
        app, ["report", "audit", "--data", str(DEMO), "--out", str(again), "--generated", GENERATED]
    )
    assert (again / pdf.name).read_bytes() == pdf.read_bytes()


def test_overdispersion_option_is_stated_in_the_report(demo):
    ctx = quarterly.AuditContext.build(demo, generated=GENERATED, overdispersion=True)
    doc = quarterly.new_document(ctx)
    quarterly.section_funnels(ctx, doc)
    assert "widened for overdispersion" in doc.text()
