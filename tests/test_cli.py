"""The command line as a user runs it: metrics, synth, catalogue."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from hipdata.cli import app
from hipdata.metrics import CONTRACT_COLUMNS

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"
runner = CliRunner()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_metrics_writes_every_table_with_the_contract_columns(tmp_path, fmt):
    result = runner.invoke(app, ["metrics", str(DEMO), "--out", str(tmp_path), "--format", fmt])
    assert result.exit_code == 0, result.output
    read = pd.read_csv if fmt == "csv" else pd.read_parquet
    for table, columns in CONTRACT_COLUMNS.items():
        if table == "family_sessions":
            continue  # an intermediate table, not one of the contract's outputs
        frame = read(tmp_path / f"{table}.{fmt}")
        assert list(frame.columns[: len(columns)]) == list(columns), table
    model = read(tmp_path / f"pain_trajectory_model.{fmt}")
    assert {"Intercept", "week", "sd(Residual)"} <= set(model["term"])
    # which model was finally fitted and why (issue 7): one value, repeated on every row
    assert model["model"].nunique() == 1
    assert (
        model["model"].iloc[0].startswith(("random intercept and slope", "random intercept only"))
    )
    assert (tmp_path / f"quarantine.{fmt}").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
    assert "progressions on criteria" in result.output


def test_metrics_csv_formats_dates_and_booleans(tmp_path):
    runner.invoke(app, ["metrics", str(DEMO), "--out", str(tmp_path)])
    sessions = pd.read_csv(tmp_path / "sessions.csv", dtype=str, keep_default_na=False)
    assert sessions["date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    assert set(sessions["flare"]) <= {"true", "false", ""}
    assert sessions["quarter"].str.fullmatch(r"\d{4}Q[1-4]").all()


def test_metrics_rejects_unknown_format(tmp_path):
    result = runner.invoke(app, ["metrics", str(DEMO), "--out", str(tmp_path), "--format", "xls"])
    assert result.exit_code == 2
    assert "unknown format" in result.output


def test_synth_command_writes_a_loadable_cohort(tmp_path):
    result = runner.invoke(app, ["synth", str(tmp_path), "--patients", "40", "--seed", "3"])
    assert result.exit_code == 0, result.output
    truth = json.loads((tmp_path / "ground_truth.json").read_text())
    assert truth["n_patients"] == 40 and truth["seed"] == 3
    validated = runner.invoke(app, ["validate", str(tmp_path)])
    assert validated.exit_code == 0 and "0 rows quarantined" in validated.output


def test_catalogue_command_lists_ladders_and_aliases():
    result = runner.invoke(app, ["catalogue"])
    assert result.exit_code == 0
    for text in ("copenhagen_short_lever", "single_leg_deadlift", "hip thrust"):
        assert text in result.output


# -- issue 10: shared input options, version, checks, OS errors, interrupted runs ---------------


def small_cohort(folder: Path, seed: int = 3) -> Path:
    from hipdata.synth import write_cohort

    write_cohort(folder, 25, seed=seed)
    return folder


def test_version():
    import hipdata

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"hipdata {hipdata.__version__}"


@pytest.mark.parametrize("k", ["2", "1", "-3"])
def test_k_below_three_is_refused(tmp_path, k):
    result = runner.invoke(
        app, ["report", "audit", "--data", str(DEMO), "--out", str(tmp_path), "--k", k]
    )
    assert result.exit_code == 2
    assert "--k" in result.output and "3" in result.output
    assert not list(tmp_path.iterdir())


def test_audience_internal_switches_suppression_off_only_there():
    from hipdata.errors import DataError
    from hipdata.report.run import audience_k

    assert audience_k("external", 5) == 5 and audience_k("internal", 5) == 1
    with pytest.raises(DataError, match="k = 2 would show small counts"):
        audience_k("external", 2)
    with pytest.raises(DataError, match="unknown audience"):
        audience_k("public", 5)


def test_internal_banner_on_every_pdf_page():
    import datetime as dt
    import io

    from pypdf import PdfReader

    from hipdata.report.document import Document
    from hipdata.report.run import INTERNAL_BANNER

    doc = Document("Audit", "all clinics", {}, dt.date(2026, 11, 27), show=False)
    doc.banner = INTERNAL_BANNER
    for i in range(60):
        doc.paragraph(f"Paragraph {i} " + "text " * 60)
    pages = PdfReader(io.BytesIO(doc.to_pdf().to_bytes())).pages
    assert len(pages) > 2
    assert all("internal — not for circulation" in page.extract_text() for page in pages)


def test_same_input_options_on_every_command():
    import inspect

    from hipdata import cli

    options = {"dayfirst", "pain_scale", "catalogue", "measures"}
    for command in (cli.validate, cli.metrics, cli.report_audit, cli.report_cohort):
        assert options <= set(inspect.signature(command).parameters), command.__name__


def test_measures_file_registers_a_measure(tmp_path):
    folder = small_cohort(tmp_path / "data")
    outcomes = pd.read_csv(folder / "outcomes.csv")
    # one row for each of 4 patients (one per patient and date, so no duplicates)
    extra = outcomes.drop_duplicates("patient_id").head(4)
    extra = extra.assign(measure="Oswestry", score=[40, 38, 20, 22])
    pd.concat([outcomes, extra]).to_csv(folder / "outcomes.csv", index=False)
    measures = tmp_path / "measures.csv"
    measures.write_text(
        "name,low,high,higher_is_better,mcid_points,label,aliases\n"
        "odi,0,100,false,10,Oswestry Disability Index,oswestry|odi\n"
    )
    without = runner.invoke(app, ["validate", str(folder), "--out", str(tmp_path / "a")])
    with_file = runner.invoke(
        app, ["validate", str(folder), "--measures", str(measures), "--out", str(tmp_path / "b")]
    )
    assert without.exit_code == 0 and with_file.exit_code == 0, with_file.output
    # the 4 Oswestry rows are quarantined as an unknown measure without the file, kept with it
    quarantined_a = pd.read_csv(tmp_path / "a" / "quarantine.csv")
    quarantined_b = pd.read_csv(tmp_path / "b" / "quarantine.csv")
    assert len(quarantined_a) - len(quarantined_b) == 4
    bad = tmp_path / "bad.csv"
    bad.write_text("measure,min,max,better,mcid\nodi,0,100,sideways,10\n")
    result = runner.invoke(app, ["validate", str(folder), "--measures", str(bad)])
    assert result.exit_code == 2 and "better/direction 'sideways' must be" in result.output


def test_many_quarantined_rows_give_a_warning(tmp_path):
    folder = small_cohort(tmp_path / "data")
    exercises = pd.read_csv(folder / "exercises.csv")
    exercises.loc[exercises.index[::5], "pain_24h"] = 11  # 20 % of rows outside 0-10
    exercises.to_csv(folder / "exercises.csv", index=False)
    result = runner.invoke(app, ["metrics", str(folder), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "Rows per file" in result.output
    assert "warning:" in result.output and "were quarantined" in result.output


def test_output_folder_that_is_a_file_is_one_clear_message(tmp_path):
    folder = small_cohort(tmp_path / "data")
    target = tmp_path / "taken"
    target.write_text("a file, not a folder")
    result = runner.invoke(app, ["metrics", str(folder), "--out", str(target)])
    assert result.exit_code == 2
    assert "cannot read or write a file" in result.output
    assert "Traceback" not in result.output
    assert target.read_text() == "a file, not a folder"


def test_metrics_leaves_no_staging_folder(tmp_path):
    folder = small_cohort(tmp_path / "data")
    out = tmp_path / "out"
    assert runner.invoke(app, ["metrics", str(folder), "--out", str(out)]).exit_code == 0
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert (out / "sets.csv").is_file() and (out / "quarantine.csv").is_file()


def _hipdata() -> str:
    import sys

    return str(Path(sys.executable).parent / "hipdata")


def _wait_for_staging(out: Path, process, timeout: float = 300.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if any(p.name.startswith(".hipdata-run-") for p in out.iterdir()):
            return True
        time.sleep(0.02)
    return False


def test_sigterm_during_metrics_leaves_one_complete_set(tmp_path):
    import signal
    import subprocess

    out = tmp_path / "out"
    old_data = small_cohort(tmp_path / "old", seed=3)
    new_data = small_cohort(tmp_path / "new", seed=4)
    assert runner.invoke(app, ["metrics", str(old_data), "--out", str(out)]).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    process = subprocess.Popen(
        [_hipdata(), "metrics", str(new_data), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert _wait_for_staging(out, process)  # the tables are being written
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 130 and b"interrupted" in err, err.decode()
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(after) == sorted(before)  # no staging folder, no .tmp file
    # all tables come from one run: the previous set, or (signal held during the final renames)
    # the new set as a complete run writes it; never new sets.csv beside old tables
    complete = tmp_path / "complete"  # the new set as an uninterrupted run (same process kind)
    subprocess.run([_hipdata(), "metrics", str(new_data), "--out", str(complete)], check=True)
    new = {p.name: p.read_bytes() for p in complete.iterdir()}
    assert after in (before, new)


def test_sigterm_during_a_report_keeps_the_previous_outputs(tmp_path):
    import signal
    import subprocess
    import time

    out = tmp_path / "out"
    out.mkdir()
    (out / "cohort_report.pdf").write_bytes(b"%PDF- previous complete run")
    process = subprocess.Popen(
        [_hipdata(), "report", "cohort", "--data", str(DEMO), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert _wait_for_staging(out, process)
    time.sleep(3)  # the kernel is running the notebook
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err.decode()
    assert b"interrupted; previous outputs are unchanged" in err
    assert [p.name for p in out.iterdir()] == ["cohort_report.pdf"]
    assert (out / "cohort_report.pdf").read_bytes() == b"%PDF- previous complete run"


def test_report_notebook_copies_the_packaged_notebook(tmp_path):
    import json

    result = runner.invoke(app, ["report", "notebook", "audit", str(tmp_path)])
    assert result.exit_code == 0, result.output
    notebook = json.loads((tmp_path / "quarterly_audit.ipynb").read_text(encoding="utf-8"))
    assert "parameters" in notebook["cells"][1]["metadata"]["tags"]
    again = runner.invoke(app, ["report", "notebook", "audit", str(tmp_path)])
    assert again.exit_code == 2 and "already there" in again.output
