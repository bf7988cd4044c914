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
