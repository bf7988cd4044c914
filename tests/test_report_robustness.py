"""Both reports render on degenerate and hostile cohorts (issue 10, items 5 and 6).

Each cohort is the synthetic generator's output trimmed with pandas and written to a tmp folder:
nobody discharged, no outcomes / activity / treatments file, one clinic, one clinician, one
patient, one quarter of data, a clinic without sessions in the audited quarter, every pain value
missing, only hold exercises. The report builders run directly (papermill is exercised on two of
them through the CLI), and every document is laid out to PDF bytes, so a crash anywhere in a
section or in the layout fails the test.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

import hipdata
from hipdata.catalogue import load_catalogue
from hipdata.cli import app
from hipdata.report import cohort, quarterly
from hipdata.report.document import Table
from hipdata.synth import generate

TODAY = "2026-11-27"
GENERATED = "2026-11-27"
#: The quarter the audit defaults to on the generator's default period (data end 2026-10-31).
QUARTER = "2026Q3"
QUARTER_START, QUARTER_END = pd.Timestamp("2026-07-01"), pd.Timestamp("2026-09-30")
DATED = ("exercises", "activity", "outcomes", "treatments")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def base() -> dict[str, pd.DataFrame]:
    return generate(60, seed=11).tables


def _keep_patients(tables: dict, keep: pd.Series) -> dict:
    patients = tables["patients"][keep]
    ids = set(patients["patient_id"])
    out = {"patients": patients}
    for name in DATED:
        out[name] = tables[name][tables[name]["patient_id"].isin(ids)]
    return out


def nobody_discharged(t):
    patients = t["patients"].assign(discharge_date=pd.NaT, discharge_reason=None)
    return {**t, "patients": patients}


def no_outcomes(t):
    return {name: frame for name, frame in t.items() if name != "outcomes"}


def no_activity(t):
    return {name: frame for name, frame in t.items() if name != "activity"}


def no_treatments(t):
    return {name: frame for name, frame in t.items() if name != "treatments"}


def one_clinic(t):
    return _keep_patients(t, t["patients"]["clinic_id"].eq("C01"))


def one_clinician(t):
    first = sorted(t["patients"]["clinician_id"])[0]
    return _keep_patients(t, t["patients"]["clinician_id"].eq(first))


def one_patient(t):
    discharged = t["patients"][t["patients"]["discharge_date"].notna()]
    return _keep_patients(t, t["patients"]["patient_id"].eq(discharged["patient_id"].iloc[0]))


def one_quarter(t):
    """Care started in 2026Q2 and nothing dated outside 2026Q2."""
    low, high = pd.Timestamp("2026-04-01"), pd.Timestamp("2026-06-30")
    starts = pd.to_datetime(t["patients"]["start_date"])
    out = _keep_patients(t, starts.between(low, high))
    discharge = pd.to_datetime(out["patients"]["discharge_date"])
    late = discharge > high
    out["patients"] = out["patients"].assign(
        discharge_date=discharge.where(~late),
        discharge_reason=out["patients"]["discharge_reason"].where(~late),
    )
    for name in DATED:
        dates = pd.to_datetime(out[name]["date"])
        out[name] = out[name][dates.between(low, high)]
    return out


def clinic_without_sessions_in_quarter(t):
    clinic_of = t["patients"].set_index("patient_id")["clinic_id"]
    exercises = t["exercises"]
    dates = pd.to_datetime(exercises["date"])
    drop = exercises["patient_id"].map(clinic_of).eq("C02") & dates.between(
        QUARTER_START, QUARTER_END
    )
    return {**t, "exercises": exercises[~drop]}


def no_pain(t):
    return {**t, "exercises": t["exercises"].assign(pain_during=None, pain_24h=None)}


def only_holds(t):
    catalogue = load_catalogue()
    holds = set(catalogue.loc[catalogue["dose"].eq("hold"), "id"])
    exercises = t["exercises"]
    return {**t, "exercises": exercises[exercises["exercise"].isin(holds)]}


CASES = {
    "nobody_discharged": nobody_discharged,
    "no_outcomes": no_outcomes,
    "no_activity": no_activity,
    "no_treatments": no_treatments,
    "one_clinic": one_clinic,
    "one_clinician": one_clinician,
    "one_patient": one_patient,
    "one_quarter": one_quarter,
    "clinic_without_sessions": clinic_without_sessions_in_quarter,
    "no_pain": no_pain,
    "only_holds": only_holds,
}


def write_folder(tables: dict, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False, date_format="%Y-%m-%d")
    return folder


def pdf_text(doc) -> str:
    reader = PdfReader(io.BytesIO(doc.to_pdf().to_bytes()))
    return "\n".join(page.extract_text() for page in reader.pages)


@pytest.fixture(scope="module", params=list(CASES))
def case(request, base, tmp_path_factory):
    folder = write_folder(CASES[request.param](base), tmp_path_factory.mktemp(request.param))
    return request.param, hipdata.load(folder, today=TODAY), folder


def test_cohort_report_renders(case):
    name, ds, _ = case
    doc = cohort.build_cohort_report(ds, generated=GENERATED, show=False)
    text = pdf_text(doc)
    for title in cohort.SECTION_TITLES.values():
        assert title in text, (name, title)
    # the sections say what is missing instead of failing
    notes = {
        "nobody_discharged": "Completion is not available: no patient has been discharged yet.",
        "no_outcomes": "No outcome questionnaires were recorded for these patients.",
    }
    if name in notes:
        assert notes[name] in doc.text()


def test_audit_report_renders(case):
    name, ds, _ = case
    ctx = quarterly.AuditContext.build(ds, generated=GENERATED)  # the default quarter
    doc = quarterly.build_audit_report(ctx)
    text = pdf_text(doc)
    assert "Indicators by clinic" in text and "Definitions" in text
    if name == "clinic_without_sessions":
        assert ctx.quarter == QUARTER
        # C02 is still a column of the clinic table; its session count for the quarter is 0
        table = next(b.data for b in doc.blocks if isinstance(b, Table))
        sessions = table.loc[table["Indicator"].str.startswith("Sessions"), "C02"]
        assert sessions.iloc[0] == "0"


# -- through the command line (papermill), two of the degenerate cohorts ------------------------


def test_cli_renders_a_cohort_nobody_discharged(base, tmp_path):
    folder = write_folder(nobody_discharged(base), tmp_path / "data")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        ["report", "cohort", "--data", str(folder), "--out", str(out), "--generated", GENERATED],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["cohort_report.html", "cohort_report.pdf"]
    # the load summary and per-section progress are printed
    assert "Rows per file" in result.output
    assert "running the cohort notebook: 7. Adherence" in result.output
    page = (out / "cohort_report.html").read_text(encoding="utf-8")
    assert str(folder) not in page and str(out) not in page  # no absolute paths


# -- hostile data: markup in ids, free text, a "/" in a clinic id ------------------------------

SCRIPT = "<script>alert(9)</script>"
IMG = '<img src=x onerror="alert(9)">'
FREE_TEXT = "jane doe (p00017) dob 1961-03-04"


def hostile(t):
    renamed = {"C01": SCRIPT, "C02": IMG, "C03": "C/01"}
    patients = t["patients"].copy()
    patients["clinician_id"] = patients["clinician_id"].str.replace(
        r"^(C0[123])", lambda m: renamed[m.group(1)], regex=True
    )
    patients["clinic_id"] = patients["clinic_id"].replace(renamed)
    patients.loc[patients.index[:6], "condition"] = FREE_TEXT
    return {**t, "patients": patients}


@pytest.fixture(scope="module")
def hostile_ds(base, tmp_path_factory):
    folder = write_folder(hostile(base), tmp_path_factory.mktemp("hostile"))
    return hipdata.load(folder, today=TODAY)


def _assert_clean(doc):
    from hipdata.report.document import block_html

    shown = "".join(block_html(block) or "" for block in doc.blocks)
    assert SCRIPT not in shown and "<img" not in shown and "<script" not in shown
    assert "&lt;script&gt;alert(9)&lt;/script&gt;" in shown  # escaped, still readable
    assert FREE_TEXT not in doc.text() and "p00017" not in doc.text()


def test_hostile_ids_are_escaped_and_free_text_is_never_printed(hostile_ds):
    doc = cohort.build_cohort_report(hostile_ds, generated=GENERATED, show=False)
    _assert_clean(doc)
    # the six free-text conditions are counted with "Other" in Table 1
    table_one = next(b.data for b in doc.blocks if isinstance(b, Table) and "SMD" in b.data)
    assert not table_one["Characteristic"].str.contains("jane").any()
    ctx = quarterly.AuditContext.build(hostile_ds, quarter=QUARTER, generated=GENERATED)
    _assert_clean(quarterly.build_audit_report(ctx))


def test_clinic_id_with_a_slash_gets_a_safe_file_name(hostile_ds, tmp_path):
    ctx = quarterly.AuditContext.build(
        hostile_ds, quarter=QUARTER, clinic="C/01", generated=GENERATED
    )
    doc = quarterly.build_audit_report(ctx)
    written = quarterly.export(ctx, doc, tmp_path)
    # safe_name: "/" -> "-", plus 6 hex digits of SHA-256("C/01") so ids cannot collide
    assert written["pdf"].name == "audit_2026Q3_C-01-7cae20.pdf"
    assert written["audit_indicators"].name == "audit_indicators_2026Q3_C-01-7cae20.csv"
    assert written["pdf"].parent == tmp_path


def test_cli_audit_html_never_carries_raw_markup(base, tmp_path):
    folder = write_folder(hostile(base), tmp_path / "data")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["report", "audit", "--data", str(folder), "--out", str(out), "--generated", GENERATED]
    )
    assert result.exit_code == 0, result.output
    page = (out / "audit_2026Q3_all.html").read_text(encoding="utf-8")
    assert SCRIPT not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(9)&lt;/script&gt;" in page
    assert str(folder) not in page and str(out) not in page  # no absolute paths
