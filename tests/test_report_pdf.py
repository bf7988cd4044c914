"""The PDF report builder (hipdata.report.pdf): text, tables, figures, reproducibility, saving."""

from __future__ import annotations

import datetime as dt
import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from pypdf import PdfReader

from hipdata.report import pdf as pdf_module
from hipdata.report.pdf import ReportPDF

GENERATED = dt.date(2026, 7, 1)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def page_texts(pdf_bytes: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf_bytes)).pages]


def long_table(n_rows: int = 120) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Clinic code": [f"C{i:03d}" for i in range(n_rows)],
            "Sessions held": [str(10 * i) for i in range(n_rows)],
            "Adherence share": [f"{i % 100}.0%" for i in range(n_rows)],
        }
    )


def build_report(generated: dt.date = GENERATED) -> ReportPDF:
    report = ReportPDF("Quarterly audit – network", generated=generated)
    report.title_block(
        "Quarterly audit",
        "Network, 2026Q2",
        {"Quarter": "2026Q2", "Input data hash": "sha256:0123abcd", "Pain limit": "≤ 3/10"},
    )
    report.heading("Summary of care")
    report.paragraph("Pain stayed ≤ 3/10 in 84 % of sessions – café séance ≥ 2 per week.")
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot([0, 1, 2], [3, 2, 1])
    ax.set_xlabel("Weeks in care")
    report.figure(fig, caption="Mean pain by week.")
    report.heading("Indicators by clinic", level=2)
    report.table(long_table(), caption="Indicators.", note="Counts 1–4 shown as <5.")
    report.definitions({"Flare": "Any recorded pain > 3/10."})
    return report


@pytest.fixture(scope="module")
def report_bytes() -> bytes:
    return build_report().to_bytes()


def test_text_is_unicode_and_extractable(report_bytes):
    text = "\n".join(page_texts(report_bytes))
    for expected in ("Quarterly audit", "Summary of care", "Indicators by clinic", "≤ 3/10"):
        assert expected in text
    assert "café séance ≥ 2" in text
    assert "Counts 1–4" in text
    assert "Table 1. Indicators." in text
    assert "Figure 1. Mean pain by week." in text


def test_figure_is_vector_with_selectable_text(report_bytes):
    # svg.fonttype="none" keeps the axis label as text, drawn in the embedded DejaVu Sans.
    assert "Weeks in care" in page_texts(report_bytes)[0]
    fonts = set()
    for page in PdfReader(io.BytesIO(report_bytes)).pages:
        for font in page["/Resources"]["/Font"].values():
            fonts.add(str(font.get_object()["/BaseFont"]))
    assert fonts and all("DejaVuSans" in name for name in fonts)


def test_page_numbers_and_running_header(report_bytes):
    texts = page_texts(report_bytes)
    n_pages = len(texts)
    assert n_pages == len(PdfReader(io.BytesIO(report_bytes)).pages) > 1
    for number, text in enumerate(texts, start=1):
        assert f"Page {number} of {n_pages}" in text
    # The title block is on page 1; later pages carry the title as a running header.
    for text in texts[1:]:
        assert text.startswith("Quarterly audit – network")


def test_long_table_repeats_headers_on_every_page():
    report = ReportPDF("Long table", generated=GENERATED)
    report.table(long_table(120))
    texts = page_texts(report.to_bytes())
    assert len(texts) >= 3  # 120 rows at ~6 mm each do not fit on two A4 pages
    for text in texts:
        assert "Clinic code" in text
        assert "Sessions held" in text
        assert "Adherence share" in text
    # every row printed once, none lost at a page break
    all_text = "\n".join(texts)
    for i in (0, 59, 119):
        assert all_text.count(f"C{i:03d}") == 1


def test_same_content_gives_identical_bytes_and_the_date_is_the_generated_one():
    first = build_report().to_bytes()
    second = build_report().to_bytes()
    assert first == second
    later = build_report(generated=dt.date(2026, 10, 1)).to_bytes()
    assert later != first
    creation = PdfReader(io.BytesIO(first)).metadata.creation_date
    assert creation.date() == GENERATED


def test_heading_near_page_foot_moves_to_next_page():
    report = ReportPDF("Orphans", generated=GENERATED)
    # Fill the first page until less than HEADING_KEEP_MM remains above the bottom margin.
    pdf = report.pdf
    while pdf.get_y() < pdf.page_break_trigger - pdf_module.HEADING_KEEP_MM + 5:
        report.paragraph("Filler line.")
    assert report.page_count == 1
    report.heading("Orphan check")
    report.paragraph("The section's text.")
    texts = page_texts(report.to_bytes())
    assert "Orphan check" not in texts[0]
    assert "Orphan check" in texts[1]


def test_landscape_page_for_a_wide_table():
    report = ReportPDF("Wide", generated=GENERATED)
    report.paragraph("Portrait first page.")
    report.page_break(orientation="landscape")
    report.table(pd.DataFrame({f"column {j}": [str(j)] for j in range(14)}))
    pages = PdfReader(io.BytesIO(report.to_bytes())).pages
    assert pages[0].mediabox.width < pages[0].mediabox.height
    assert pages[1].mediabox.width > pages[1].mediabox.height


def test_numeric_columns_are_right_aligned():
    frame = pd.DataFrame(
        {"Clinic": ["C01", "C02"], "Flares": ["<5", "12 (4.5%)"], "Share": ["84%", "–"]}
    )
    report = ReportPDF("Align", generated=GENERATED)
    assert report._column_alignment(
        frame, [["C01", "<5", "84%"], ["C02", "12 (4.5%)", "–"]], "auto"
    ) == (
        "LEFT",
        "RIGHT",
        "RIGHT",
    )


def test_save_is_atomic(tmp_path):
    target = tmp_path / "audit.pdf"
    saved = build_report().save(target)
    assert saved == target
    assert [p.name for p in tmp_path.iterdir()] == ["audit.pdf"]  # no temporary file left
    assert target.read_bytes() == build_report().to_bytes()


def test_interrupted_save_leaves_nothing_at_the_target(tmp_path, monkeypatch):
    def fail_midway(descriptor):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(pdf_module.os, "fsync", fail_midway)
    target = tmp_path / "audit.pdf"
    with pytest.raises(OSError, match="simulated"):
        build_report().save(target)
    assert list(tmp_path.iterdir()) == []  # neither the PDF nor the temporary file


def test_interrupted_save_keeps_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "audit.pdf"
    target.write_bytes(b"previous report")

    def fail_midway(descriptor):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(pdf_module.os, "fsync", fail_midway)
    with pytest.raises(OSError):
        build_report().save(target)
    assert target.read_bytes() == b"previous report"
    assert [p.name for p in tmp_path.iterdir()] == ["audit.pdf"]


def test_generated_must_be_a_date():
    with pytest.raises(TypeError, match="generated"):
        ReportPDF("x", generated="2026-07-01")


def test_a_wide_fraction_wraps_at_its_slash_not_inside_a_number():
    # registry-size counts in a six-column table: the share "83% (155,808/187,423)" is wider
    # than its column, so it must wrap after the slash; "(7/9)" fits and stays as written
    wide = "83% (155,808/187,423)"
    frame = pd.DataFrame(
        {"Indicator": ["Pain-threshold adherence", "Flare rate"]}
        | {f"Clinic {i}": [wide, "78% (7/9)"] for i in range(5)}
    )
    report = ReportPDF("Audit", generated=GENERATED)
    report.table(frame, caption="Indicators.")
    text = page_texts(report.to_bytes())[0]
    lines = text.splitlines()
    assert not any(line.rstrip().endswith("187,42") for line in lines), text
    assert text.count("187,423)") == 5
    assert text.count("(7/9)") == 5


def test_fractions_that_fit_are_left_as_written():
    rows = [["83% (155,808/187,423)", "(7/9)"]]
    measure = len  # one unit per character
    unchanged = pdf_module._break_wide_fractions(rows, pd.Series([40.0, 40.0]).to_numpy(), measure)
    assert unchanged == rows
    broken = pdf_module._break_wide_fractions(rows, pd.Series([10.0, 10.0]).to_numpy(), measure)
    assert broken == [["83% (155,808/ 187,423)", "(7/9)"]]
