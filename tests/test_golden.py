"""Golden snapshots of what the demo's readers see: both reports' text and the audit's CSVs.

``hipdata demo`` runs on the shipped demo cohort, then the text of each PDF (every page, as
pypdf extracts it) and the audit's published CSVs are compared with the files in
``tests/golden/``. A restructuring of the report code must leave them unchanged; a change that is
meant (a fix, a new sentence) is made by regenerating the snapshots and saying why in the commit
message::

    HIPDATA_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden.py

Only the report date varies from run to run; it is replaced by ``<generated>``.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

from hipdata.cli import app

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo"
GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("HIPDATA_UPDATE_GOLDEN") == "1"

#: The demo's outputs under snapshot: reports as text, and the audit's published tables.
REPORTS = ("cohort_report.pdf", "audit_2026Q3_all.pdf")
TABLES = (
    "audit_indicators_2026Q3_all.csv",
    "funnel_2026Q3_all.csv",
    "casemix_2026Q3_all.csv",
    "casemix_model_2026Q3_all.csv",
    "casemix_calibration_2026Q3_all.csv",
    "audit_pooled_2026Q3_all.csv",
)


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("golden") / "demo"
    result = CliRunner().invoke(app, ["demo", "--data", str(DEMO), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def pdf_text(path: Path) -> str:
    """Every page's text, whitespace collapsed per line, the report date masked."""
    lines = []
    for number, page in enumerate(PdfReader(path).pages, start=1):
        lines.append(f"--- page {number} ---")
        for line in page.extract_text().splitlines():
            line = " ".join(line.split())
            if line:
                lines.append(line)
    text = "\n".join(lines) + "\n"
    today = r"\d{4}-\d{2}-\d{2}"
    return re.sub(rf"(Generated:?\s*){today}", r"\1<generated>", text)


def check(name: str, actual: str) -> None:
    golden = GOLDEN / f"{name}.txt"
    if UPDATE:
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(actual, encoding="utf-8")
        return
    expected = golden.read_text(encoding="utf-8")
    if actual != expected:
        diff = difflib.unified_diff(
            expected.splitlines(), actual.splitlines(), "golden", "now", lineterm="", n=1
        )
        shown = "\n".join(list(diff)[:80])
        pytest.fail(f"{name} differs from tests/golden/{name}.txt:\n{shown}")


@pytest.mark.parametrize("report", REPORTS)
def test_report_text_equals_its_snapshot(demo_out, report):
    check(report, pdf_text(demo_out / report))


@pytest.mark.parametrize("table", TABLES)
def test_published_table_equals_its_snapshot(demo_out, table):
    check(table, (demo_out / table).read_text(encoding="utf-8"))


def test_the_masked_date_is_the_only_variable_text(demo_out):
    """The mask must not hide anything but the report date (one per report's title block)."""
    for report in REPORTS:
        assert pdf_text(demo_out / report).count("<generated>") >= 1, report
