"""One Protocol from the command line: --protocol FILE.toml and the common flags, validated once,
given to compute_all, to the report notebooks (papermill parameter ``protocol``) and cited in the
summary line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from hipdata.cli import app
from hipdata.errors import DataError
from hipdata.protocol import Protocol

runner = CliRunner()


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    from hipdata.synth import write_cohort

    folder = tmp_path_factory.mktemp("protocol") / "data"
    write_cohort(folder, 30, seed=5)
    return folder


def test_from_file_reads_overrides_and_keeps_the_rest(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text(
        'pain_threshold = 2\nresponder_rule = "and"\nfollowup_window_days = [-14, 45]\n'
    )
    protocol = Protocol.from_file(path)
    assert protocol == Protocol(
        pain_threshold=2, responder_rule="and", followup_window_days=(-14, 45)
    )
    assert protocol.criterion_sets == Protocol().criterion_sets  # left out: published value
    # a [protocol] table is the same file
    table = tmp_path / "table.toml"
    table.write_text("[protocol]\npain_threshold = 2\n")
    assert Protocol.from_file(table) == Protocol(pain_threshold=2)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pain_treshold = 2\n", "unknown protocol field(s) pain_treshold"),
        ("pain_threshold = 12\n", "pain_threshold must lie in 0..10"),
        ('responder_rule = "maybe"\n', "responder_rule must be one of"),
        ("baseline_window_days = [7, -30]\n", "first <= last"),
        ('pain_threshold = "three"\n', "pain_threshold"),
        ("pain_threshold = \n", "not a TOML file"),
    ],
)
def test_from_file_names_the_file_and_the_field(tmp_path, text, message):
    path = tmp_path / "study.toml"
    path.write_text(text)
    with pytest.raises(DataError) as caught:
        Protocol.from_file(path)
    assert message in str(caught.value) and str(path) in str(caught.value)


def test_overrides_round_trip_through_json():
    protocol = Protocol(pain_threshold=2.5, baseline_window_days=(-14, 7), responder_rule="and")
    parameter = json.loads(json.dumps(protocol.overrides()))  # what papermill carries
    assert parameter == {
        "pain_threshold": 2.5,
        "baseline_window_days": [-14, 7],
        "responder_rule": "and",
    }
    assert Protocol(**parameter) == protocol
    assert Protocol().overrides() == {}


def _text(result) -> str:
    """The command's output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def _percent(output: str, label: str) -> int:
    match = re.search(rf"{re.escape(label)} (\d+)%", output)
    assert match, output
    return int(match.group(1))


def test_metrics_uses_the_protocol_and_cites_it(cohort, tmp_path):
    from hipdata import load
    from hipdata.metrics import compute_all

    default = runner.invoke(app, ["metrics", str(cohort), "--out", str(tmp_path / "a")])
    strict = runner.invoke(
        app,
        ["metrics", str(cohort), "--out", str(tmp_path / "b"), "--pain-threshold", "2"],
    )
    assert default.exit_code == 0 and strict.exit_code == 0, strict.output
    assert "sessions within 3/10 pain" in _text(default)
    assert "sessions within 2/10 pain" in _text(strict)
    assert "changed: pain_threshold" in _text(strict) and "published protocol" in _text(default)
    # the folder records the protocol its tables were computed with
    recorded = pd.read_csv(tmp_path / "b" / "protocol.csv").set_index("field")
    assert recorded.loc["pain_threshold", "value"] == "2.0"
    assert bool(recorded.loc["pain_threshold", "changed"])
    assert recorded.loc["baseline_window_days", "value"] == "[-30, 7]"
    assert recorded["changed"].astype(bool).sum() == 1
    # the written table is compute_all's with the same protocol
    sessions = pd.read_csv(tmp_path / "b" / "sessions.csv")
    expected = compute_all(load(cohort), Protocol(pain_threshold=2))["sessions"]
    pd.testing.assert_series_equal(
        sessions["flare"].astype("boolean"),
        expected["flare"].astype("boolean").reset_index(drop=True),
        check_names=False,
    )
    # the printed share, recomputed by hand from the table: sessions with both pains recorded
    # and neither above 2 (CONTRACT §4, complete case)
    both = sessions.dropna(subset=["max_pain_during", "pain_24h"])
    within = ((both["max_pain_during"] <= 2) & (both["pain_24h"] <= 2)).mean()
    assert _percent(_text(strict), "sessions within 2/10 pain") == round(within * 100)
    assert _percent(_text(strict), "sessions within 2/10 pain") < _percent(
        _text(default), "sessions within 3/10 pain"
    )


def test_protocol_file_and_flag_agree(cohort, tmp_path):
    path = tmp_path / "study.toml"
    path.write_text('responder_rule = "and"\n')
    by_file = runner.invoke(
        app, ["metrics", str(cohort), "--out", str(tmp_path / "a"), "--protocol", str(path)]
    )
    by_flag = runner.invoke(
        app, ["metrics", str(cohort), "--out", str(tmp_path / "b"), "--responder-rule", "and"]
    )
    assert by_file.exit_code == 0 and by_flag.exit_code == 0, by_file.output
    assert "NPRS responders (rule 'and')" in _text(by_file)
    a = pd.read_csv(tmp_path / "a" / "outcome_change.csv")
    b = pd.read_csv(tmp_path / "b" / "outcome_change.csv")
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--pain-threshold", "11"], "--pain-threshold"),
        (["--responder-rule", "either"], "--responder-rule"),
    ],
)
def test_bad_protocol_flag_is_one_message_before_any_work(cohort, tmp_path, arguments, message):
    out = tmp_path / "out"
    result = runner.invoke(app, ["metrics", str(cohort), "--out", str(out), *arguments])
    assert result.exit_code == 2
    assert message in _text(result) and "Traceback" not in _text(result)
    assert not out.exists()


def test_bad_protocol_file_stops_every_command(cohort, tmp_path):
    path = tmp_path / "study.toml"
    path.write_text("pain_threshold = -1\n")
    for command in (
        ["validate", str(cohort)],
        ["metrics", str(cohort), "--out", str(tmp_path / "m")],
        ["report", "cohort", "--data", str(cohort), "--out", str(tmp_path / "c")],
        ["report", "audit", "--data", str(cohort), "--out", str(tmp_path / "a")],
        ["demo", "--data", str(cohort), "--out", str(tmp_path / "d")],
    ):
        result = runner.invoke(app, [*command, "--protocol", str(path)])
        assert result.exit_code == 2, (command, _text(result))
        assert "pain_threshold must lie in 0..10" in _text(result)
    assert not [p for p in tmp_path.iterdir() if p.name in {"m", "c", "a", "d"}]


def test_papermill_accepts_a_parameter_the_notebook_does_not_declare(tmp_path):
    """Until the report notebooks declare ``protocol``, papermill injects it anyway: a warning,
    not a failure, and the notebook's own parameters still take the passed values."""
    import nbformat
    import papermill

    notebook = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell("responder_rule = 'or'")
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [parameters, nbformat.v4.new_code_cell("print(responder_rule, protocol)")]
    notebook.metadata["kernelspec"] = {"name": "python3", "language": "python"}
    source = tmp_path / "in.ipynb"
    nbformat.write(notebook, str(source))
    papermill.execute_notebook(
        str(source),
        str(tmp_path / "out.ipynb"),
        parameters={"responder_rule": "and", "protocol": {"pain_threshold": 2}},
        kernel_name="python3",
        progress_bar=False,
    )
    executed = nbformat.read(str(tmp_path / "out.ipynb"), as_version=4)
    assert executed.cells[-1].outputs[0]["text"] == "and {'pain_threshold': 2}\n"


def test_report_parameters_carry_the_protocol(monkeypatch, cohort, tmp_path):
    """The report commands pass ``protocol`` (overrides) and nothing else of the protocol: both
    notebooks read it (the cohort notebook's older ``responder_rule`` parameter is gone)."""
    from hipdata.report import run

    seen = {}

    def fake_run_report(kind, *, data, out, parameters, generated, progress):
        seen[kind] = parameters
        protocol = Protocol(**parameters["protocol"]).as_dict()
        return {"paths": {}, "load_report": [], "protocol": protocol}

    monkeypatch.setattr(run, "run_report", fake_run_report)
    path = tmp_path / "study.toml"
    path.write_text("pain_threshold = 2\n")
    common = ["--data", str(cohort), "--out", str(tmp_path / "out"), "--protocol", str(path)]
    cohort_run = runner.invoke(app, ["report", "cohort", *common, "--responder-rule", "and"])
    audit_run = runner.invoke(app, ["report", "audit", *common])
    assert cohort_run.exit_code == 0 and audit_run.exit_code == 0, cohort_run.output
    assert seen["cohort"]["protocol"] == {"pain_threshold": 2, "responder_rule": "and"}
    assert "responder_rule" not in seen["cohort"]
    assert seen["audit"]["protocol"] == {"pain_threshold": 2}
    assert "responder_rule" not in seen["audit"]
    assert "Protocol: pain <= 2/10" in _text(audit_run)


def test_report_warns_when_the_notebook_did_not_record_the_protocol(monkeypatch, cohort, tmp_path):
    from hipdata.report import run

    def old_notebook(kind, *, data, out, parameters, generated, progress):
        return {"paths": {}, "load_report": [], "protocol": None}

    monkeypatch.setattr(run, "run_report", old_notebook)
    common = ["--data", str(cohort), "--out", str(tmp_path / "out")]
    changed = runner.invoke(app, ["report", "audit", *common, "--pain-threshold", "2"])
    published = runner.invoke(app, ["report", "audit", *common])
    assert changed.exit_code == 0 and published.exit_code == 0, changed.output
    assert "did not record the protocol it used" in _text(changed)
    assert "{'pain_threshold': 2.0}" in _text(changed)
    assert "warning" not in published.output and "Protocol:" not in published.output


def test_manifest_records_the_protocol(tmp_path):
    from hipdata.report.run import write_manifest

    write_manifest(tmp_path, "cohort_report", protocol=Protocol(pain_threshold=2))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["protocol"]["pain_threshold"] == 2
    assert manifest["protocol"]["baseline_window_days"] == [-30, 7]
    assert Protocol(**manifest["protocol"]) == Protocol(pain_threshold=2)
