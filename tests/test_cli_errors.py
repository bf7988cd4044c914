"""Every OS error is one clear message (issue 10 item 6), and the report command prints the load
summary and warns when many rows were quarantined (item 4).

A read-only or full disk cannot be made by a test running as an ordinary process (and root
ignores file modes), so those are simulated where the OS would raise: at the staging folder (read
only: ``EROFS``/``EACCES``) and in the middle of a table's write (full: ``ENOSPC``). A real
read-only folder is used too when the tests do not run as root.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hipdata.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    from hipdata.synth import write_cohort

    folder = tmp_path_factory.mktemp("errors") / "data"
    write_cohort(folder, 20, seed=9)
    return folder


def _one_clear_message(result, *needles: str) -> str:
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "Error:" not in text.replace("OSError", "")
    assert "hipdata: cannot read or write a file" in text
    for needle in needles:
        assert needle in text, text
    return text


def _previous_run(out: Path) -> dict[str, bytes]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "sets.csv").write_bytes(b"previous,run\n")
    return {p.name: p.read_bytes() for p in out.iterdir()}


def _unchanged(out: Path, before: dict[str, bytes]) -> None:
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert after == before  # no scratch file, no staging folder, previous outputs intact


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_read_only_output_folder(cohort, tmp_path, monkeypatch, code):
    import tempfile

    out = tmp_path / "out"
    before = _previous_run(out)

    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code), str(out))

    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    result = runner.invoke(app, ["metrics", str(cohort), "--out", str(out)])
    _one_clear_message(result, os.strerror(code), str(out), "writable")
    _unchanged(out, before)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file modes")
def test_real_read_only_output_folder(cohort, tmp_path):
    out = tmp_path / "out"
    before = _previous_run(out)
    out.chmod(0o555)
    try:
        result = runner.invoke(app, ["metrics", str(cohort), "--out", str(out)])
        _one_clear_message(result, "Permission denied")
    finally:
        out.chmod(0o755)
    _unchanged(out, before)


def test_full_disk_in_the_middle_of_a_table(cohort, tmp_path, monkeypatch):
    from hipdata.io import writers

    out = tmp_path / "out"
    before = _previous_run(out)
    real = writers._to_csv
    calls = []

    def fill_up(frame, target):
        calls.append(target)
        if len(calls) == 3:  # the third table: half written, then the disk is full
            Path(target).write_text("half a table")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))
        real(frame, target)

    monkeypatch.setattr(writers, "_to_csv", fill_up)
    result = runner.invoke(app, ["metrics", str(cohort), "--out", str(out)])
    _one_clear_message(result, "No space left on device", "free space")
    _unchanged(out, before)


@pytest.mark.parametrize("command", ["metrics", "validate", "report-cohort", "report-audit"])
def test_output_folder_that_is_a_file_or_below_one(cohort, tmp_path, command):
    target = tmp_path / "taken"
    target.write_text("a file, not a folder")
    for out in (target, target / "below"):
        arguments = {
            "metrics": ["metrics", str(cohort), "--out", str(out)],
            "validate": ["validate", str(cohort), "--out", str(out)],
            "report-cohort": ["report", "cohort", "--data", str(cohort), "--out", str(out)],
            "report-audit": ["report", "audit", "--data", str(cohort), "--out", str(out)],
        }[command]
        result = runner.invoke(app, arguments)
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        text = " ".join(result.output.split())
        assert "a file" in text or "Not a directory" in text, text
        assert target.read_text() == "a file, not a folder"


def test_missing_data_folder_is_one_message(tmp_path):
    result = runner.invoke(app, ["metrics", str(tmp_path / "nowhere"), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "nowhere" in " ".join(result.output.split())


def test_os_error_inside_the_report_kernel_is_one_message(cohort, tmp_path, monkeypatch):
    from papermill.exceptions import PapermillExecutionError

    from hipdata.report import run

    def kernel_fails(kind, **_):
        raise PapermillExecutionError(
            4, 4, "doc.to_pdf().save(path)", "OSError", "[Errno 28] No space left on device", []
        )

    monkeypatch.setattr(run, "run_report", kernel_fails)
    result = runner.invoke(
        app, ["report", "cohort", "--data", str(cohort), "--out", str(tmp_path / "out")]
    )
    _one_clear_message(result, "No space left on device")


def test_report_prints_the_load_summary_and_warns(cohort, tmp_path, monkeypatch):
    from hipdata.report import run

    load_report = [
        # 1 000 rows read, 150 quarantined (15 % > QUARANTINE_WARNING_SHARE = 5 %)
        {"source_file": "exercises.csv", "table": "sets", "rows_read": 900, "rows_kept": 760,
         "rows_quarantined": 140},
        {"source_file": "patients.csv", "table": "patients", "rows_read": 100, "rows_kept": 90,
         "rows_quarantined": 10},
    ]  # fmt: skip

    def fake(kind, **_):
        return {"paths": {}, "load_report": load_report, "protocol": {}}

    monkeypatch.setattr(run, "run_report", fake)
    result = runner.invoke(
        app, ["report", "audit", "--data", str(cohort), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Rows per file" in text and "exercises.csv" in text
    assert "warning: 150 of 1,000 input rows (15%) were quarantined" in text
    # below the share: no warning
    load_report[0]["rows_quarantined"], load_report[1]["rows_quarantined"] = 30, 10
    quiet = runner.invoke(
        app, ["report", "audit", "--data", str(cohort), "--out", str(tmp_path / "out")]
    )
    assert quiet.exit_code == 0 and "warning:" not in quiet.output  # 40 of 1 000 = 4 %


def test_same_input_options_on_every_loading_command():
    """validate, metrics, report, demo: dayfirst, pain_scale, catalogue, measures and the
    protocol. The import commands write a data folder and do not load one: they take
    --dayfirst and --catalogue (dates and exercise names are read there); the pain scale and the
    measures are applied when that folder is loaded (redcap reads --measures, being outcomes)."""
    import inspect

    from hipdata import cli

    loading = {"dayfirst", "pain_scale", "catalogue", "measures"}
    protocol = {"protocol_file", "pain_threshold", "responder_rule"}
    for command in (cli.validate, cli.metrics, cli.report_audit, cli.report_cohort):
        assert loading <= set(inspect.signature(command).parameters), command.__name__
    for command in (cli.metrics, cli.report_audit, cli.report_cohort, cli.demo):
        assert protocol <= set(inspect.signature(command).parameters), command.__name__
    for command in (cli.import_strong, cli.import_hevy, cli.import_fitnotes, cli.import_redcap):
        assert {"dayfirst", "catalogue"} <= set(inspect.signature(command).parameters)
    assert "measures" in inspect.signature(cli.import_redcap).parameters
