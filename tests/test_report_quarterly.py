"""Quarterly audit report: disclosure in every shown table, PDF content, reproducibility, CLI."""

from __future__ import annotations

import io
import re
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

import hipdata
from hipdata.analysis.audit import audit_indicators
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
    "Case-mix adjusted outcomes",
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
    # indicator tables; the case-mix tables (issue 7) are checked on their count columns, since
    # model tables hold deciles 1-10 and coefficients, which are not counts of patients
    indicator_tables = [table for table in tables if "Indicator" in table.columns]
    assert len(indicator_tables) >= 6
    for table in indicator_tables:
        for cell in table.drop(columns="Indicator").to_numpy().ravel():
            counts = shown_counts(str(cell))
            assert not any(1 <= c <= 4 for c in counts), cell
    casemix_tables = [table for table in tables if "Episodes" in table.columns]
    assert casemix_tables
    for table in casemix_tables:
        assert not table["Episodes"].astype(int).between(1, 4).any()
        if "O / E" in table.columns:
            assert not table["Observed"].astype(int).between(1, 4).any()


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
    # (issue 7 adds the funnel and case-mix tables to the outputs)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [
            "audit_2026Q3_all.pdf",
            "audit_2026Q3_all.html",
            "audit_indicators_2026Q3_all.csv",
            "funnel_2026Q3_all.csv",
            "casemix_2026Q3_all.csv",
            "casemix_model_2026Q3_all.csv",
            "casemix_calibration_2026Q3_all.csv",
            "audit_pooled_2026Q3_all.csv",
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


# --- issue 7: funnel.csv and casemix.csv --------------------------------------------------------

FLAGS = {"within", "above_95", "below_95", "above_99.8", "below_99.8"}


def test_demo_reproducer_c02_eight_of_eight_responders_is_within(ctx):
    # Issue 7 item 2: C02 had 8/8 NPRS responders against the network's 80 % and was drawn red
    # "beyond 99.8 %"; P(Y = 8 | 8, 0.8) = 0.8^8 = 0.1678, so it is within. Since issue 10's
    # pooled clinician rows, the demo hides C02's quarter figure (a complementary suppression
    # that keeps the pooled rows from revealing a small count), so the same counts go through
    # the same funnel table here.
    from hipdata.analysis.funnel import funnel_table

    network = ctx.network_value("nprs_responder")
    assert network["value"] == pytest.approx(0.8)
    truth = audit_indicators(ctx.ds, ctx.tables, quarters=[ctx.quarter], k=1)
    c02 = truth[truth["unit"].eq("C02") & truth["indicator"].eq("nprs_responder")].iloc[0]
    assert [c02["numerator"], c02["denominator"]] == [8, 8]
    row = funnel_table(
        pd.DataFrame({"unit": ["C02"], "numerator": [8], "denominator": [8]}),
        numerator="numerator",
        denominator="denominator",
        unit="unit",
        target=float(network["value"]),
    ).set_index("unit")
    assert row.loc["C02", "target"] == pytest.approx(0.8)
    assert row.loc["C02", "p_value"] == pytest.approx(0.8**8)
    assert row.loc["C02", "flag"] == "within"


def test_funnel_csv_repeats_only_published_figures(ctx, doc, tmp_path):
    paths = quarterly.export(ctx, doc, tmp_path)
    funnel = pd.read_csv(paths["funnel"])
    assert list(funnel.columns[:9]) == [
        "level", "unit", "quarter", "indicator", "numerator", "denominator", "value", "target",
        "p_value",
    ]  # fmt: skip
    assert {"lower_95", "upper_95", "lower_99.8", "upper_99.8", "flag"} <= set(funnel.columns)
    assert set(funnel["flag"]) <= FLAGS
    audit = pd.read_csv(paths["audit_indicators"])
    merged = funnel.merge(
        audit, on=["level", "unit", "quarter", "indicator"], suffixes=("", "_audit")
    )
    assert len(merged) == len(funnel)  # every funnel row is an audit row
    assert not merged["suppressed"].any()  # ... that is published
    assert (merged["numerator"] == merged["numerator_audit"]).all()
    assert (merged["denominator"] == merged["denominator_audit"]).all()
    # flags agree with the one-sided p-value (no unit flagged above its level)
    flagged_95 = funnel["flag"].ne("within")
    assert (funnel.loc[flagged_95, "p_value"] <= 0.025).all()
    assert (funnel.loc[funnel["flag"].str.endswith("99.8"), "p_value"] <= 0.001).all()
    assert (funnel.loc[~flagged_95, "p_value"] > 0.025).all()
    # session shares carry a design effect for sessions clustered within patients
    sessions = funnel[funnel["indicator"].eq("on_criteria_share")]
    assert (sessions["design_effect"] > 1).all()
    assert (funnel.loc[funnel["indicator"].eq("nprs_responder"), "design_effect"] == 1).all()


def test_casemix_csv_repeats_only_published_figures(ctx, doc, tmp_path):
    paths = quarterly.export(ctx, doc, tmp_path)
    casemix = pd.read_csv(paths["casemix"])
    audit = pd.read_csv(paths["audit_indicators"])
    assert set(casemix["indicator"]) <= {"nprs_responder", "nprs_improvement"}
    assert set(casemix["flag"]) <= FLAGS
    merged = casemix.merge(
        audit, on=["level", "unit", "quarter", "indicator"], suffixes=("", "_audit")
    )
    assert len(merged) == len(casemix)
    assert not merged["suppressed"].any()
    assert (merged["episodes"] == merged["denominator"]).all()
    responders = merged[merged["indicator"].eq("nprs_responder")]
    assert (responders["observed"] == responders["numerator"]).all()
    means = merged[merged["indicator"].eq("nprs_improvement")]
    assert means["observed"].to_numpy() == pytest.approx(means["value"].to_numpy())
    model = pd.read_csv(paths["casemix_model"])
    assert list(model.columns) == ["indicator", "term", "estimate", "std_error"]
    c = model.loc[model["term"].eq("c_statistic"), "estimate"]
    assert len(c) == 1 and 0.5 < c.iloc[0] <= 1
    calibration = pd.read_csv(paths["casemix_calibration"])
    assert "episodes" not in calibration.columns


def test_pooled_clinician_rows_sum_their_four_quarters(ctx, demo):
    # the pooled period is the quarter and the three before it
    assert ctx.pooled == "2025Q4-2026Q3"
    pooled = ctx.indicators[ctx.indicators["quarter"].eq(ctx.pooled)]
    assert set(pooled["level"]) == {"network", "clinic", "clinician"}
    assert "active_patients" not in set(pooled["indicator"])  # distinct patients do not add up
    # independently: discharges per clinician from the patients table, 2025Q4 to 2026Q3
    patients = demo.patients
    quarter = patients["discharge_date"].dt.to_period("Q").astype("str")
    window = quarter.isin(["2025Q4", "2026Q1", "2026Q2", "2026Q3"])
    expected = patients[window].groupby("clinician_id").size()
    shown = pooled[pooled["level"].eq("clinician") & pooled["indicator"].eq("episodes_discharged")]
    published = shown[~shown["suppressed"]].set_index("unit")["value"]
    assert len(published) > 0
    for unit, value in published.items():
        assert value == expected[unit]
    # clinicians are published for the audited quarter only (and pooled): their earlier
    # quarters beside the pooled figure would give the quarter's figure by difference
    clinicians = ctx.indicators[ctx.indicators["level"].eq("clinician")]
    assert set(clinicians["quarter"]) == {ctx.quarter, ctx.pooled}


def test_pooled_tables_are_in_the_document_and_show_no_small_count(doc):
    tables = [b for b in doc.blocks if isinstance(b, Table) and "pooled" in (b.caption or "")]
    assert len(tables) == 4  # one per clinic
    for table in tables:
        assert "Active patients" not in set(table.data["Indicator"])
        for cell in table.data.drop(columns="Indicator").to_numpy().ravel():
            assert not any(1 <= c <= 4 for c in shown_counts(str(cell))), cell


def test_context_takes_a_protocol_and_a_loaded_dataset(demo):
    strict = quarterly.AuditContext.build(demo, {"pain_threshold": 2}, generated=GENERATED)
    assert strict.protocol == hipdata.Protocol(pain_threshold=2)
    doc = quarterly.new_document(strict)
    quarterly.section_definitions(strict, doc)
    assert "2/10" in doc.text() and "3/10" not in doc.text()
    with pytest.raises(hipdata.DataError, match="pain_treshold"):
        quarterly.AuditContext.build(demo, {"pain_treshold": 2})
    with pytest.raises(TypeError, match="loaded Dataset"):
        quarterly.AuditContext.build(str(DEMO))


def test_analysis_and_plots_never_import_the_report_layer():
    import pathlib

    root = pathlib.Path(hipdata.__file__).parent
    for folder in ("analysis", "plots"):
        for path in (root / folder).glob("*.py"):
            text = path.read_text(encoding="utf-8")
            assert not re.search(r"^\s*(from|import) hipdata\.report", text, re.M), path


def test_funnel_figures_have_no_empty_panel_and_say_so(ctx):
    from hipdata.report.quarterly.figures import funnel_figure

    funnel = quarterly.funnels(ctx)
    fig, caption = funnel_figure(ctx, funnel, "nprs_responder")
    # demo 2026Q3: no clinician has published NPRS responders, so one panel, and the caption
    # says why there is no second one
    assert len(fig.axes) == 1
    assert "No clinician has figures to plot." in caption
    ax = fig.axes[0]
    assert ax.get_legend() is None and fig.legends  # one legend, off the axes
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert all(float(t).is_integer() for t in ticks)  # a count of patients
    # drawn at its printed width (80 mm a panel): every text at least 7 pt on A4
    assert fig.get_figwidth() * 25.4 == pytest.approx(80.0)
    texts = [t for t in fig.findobj(plt.Text) if t.get_text()]
    assert min(t.get_fontsize() for t in texts) >= 7


def test_funnel_pages_give_units_and_chance_flags(doc):
    from hipdata.report.document import FigureBlock

    captions = [b.caption for b in doc.blocks if isinstance(b, FigureBlock) and b.caption]
    adherence = next(c for c in captions if c.startswith("Pain-threshold adherence: funnel"))
    # demo 2026Q3: 4 clinics and 12 clinicians published -> 0.05 x 4 = 0.2, 0.05 x 12 = 0.6
    assert "4 clinics plotted, 0 flagged at 95 % (about 0.2 expected by chance alone)" in adherence
    assert "12 clinicians plotted" in adherence and "about 0.6 expected" in adherence
