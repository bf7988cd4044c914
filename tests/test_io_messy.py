"""About 1 000 bad rows of every kind mixed into the demo cohort: each is reported with its reason
and the counts reconcile, through the library and through `hipdata validate`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import hipdata
from hipdata.cli import app

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"
TODAY = "2026-11-27"

# kind -> (column, new value (or a function of the row), reason fragment)
EXERCISE_KINDS = {
    "ambiguous_date": ("date", "03/04/2026", "ambiguous date"),
    "impossible_date": ("date", "2026-02-30", "impossible date"),
    "future_date": ("date", "2027-01-15", "in the future"),
    "too_early": ("date", "early", "days before the patient's start_date"),
    "unknown_patient": ("patient_id", "PX9999", "unknown patient id"),
    "empty_patient": ("patient_id", "", "patient id is empty"),
    "unknown_exercise": ("exercise", "copenhagen plnk", "unknown exercise; did you mean"),
    "pain_high": ("pain_during", "12", "outside the 0-10 scale"),
    "pain_negative": ("pain_24h", "-2", "outside the 0-10 scale"),
    "reps_text": ("reps", "abc", "not a number"),
    "reps_negative": ("reps", "-4", "reps below 0"),
    "hold_impossible": ("hold_s", "900", "hold_s above 600"),
    "load_negative": ("load_kg", "-3", "load_kg below 0"),
}
PER_KIND = 70
DUPLICATES = 90


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("messy")
    rng = np.random.default_rng(7)
    tables = {
        path.stem: pd.read_csv(path, dtype=str, keep_default_na=False)
        for path in DEMO.glob("*.csv")
    }
    exercises = tables["exercises"]
    starts = tables["patients"].set_index("patient_id")["start_date"]
    rows = rng.choice(len(exercises), size=PER_KIND * len(EXERCISE_KINDS), replace=False)
    expected = []
    for number, (column, value, reason) in enumerate(EXERCISE_KINDS.values()):
        chosen = rows[number * PER_KIND : (number + 1) * PER_KIND]
        if value == "early":
            ids = exercises.loc[chosen, "patient_id"]
            early = pd.to_datetime(ids.map(starts)) - pd.Timedelta(days=30)
            exercises.loc[chosen, column] = early.dt.strftime("%Y-%m-%d").to_numpy()
        else:
            exercises.loc[chosen, column] = value
        expected += [("exercises.csv", row + 2, column, reason) for row in chosen]
    clean = np.setdiff1d(np.arange(len(exercises)), rows)
    copies = rng.choice(clean, size=DUPLICATES, replace=False)
    first_rows = copies + 2
    exercises = pd.concat([exercises, exercises.loc[copies]], ignore_index=True)
    copy_rows = np.arange(len(exercises) - DUPLICATES, len(exercises)) + 2
    expected += [
        ("exercises.csv", int(row), "set", f"duplicate of row {first}")
        for row, first in zip(copy_rows, first_rows, strict=True)
    ]
    tables["exercises"] = exercises
    outcomes = tables["outcomes"]
    nprs = outcomes.index[outcomes["measure"] == "nprs"][:20]
    outcomes.loc[nprs, "score"] = "11"
    expected += [("outcomes.csv", row + 2, "score", "outside the measure's range") for row in nprs]
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder, pd.DataFrame(expected, columns=["source_file", "source_row", "column", "reason"])


def test_every_planted_bad_row_is_reported_with_its_reason(messy):
    folder, expected = messy
    assert len(expected) >= 1000
    ds = hipdata.load(folder, today=TODAY)
    found = expected.merge(
        ds.quarantine, on=["source_file", "source_row"], how="left", suffixes=("", "_found")
    )
    assert found["reason_found"].notna().all(), found[found["reason_found"].isna()]
    assert (found["column"] == found["column_found"]).all()
    matches = [
        want in got for want, got in zip(found["reason"], found["reason_found"], strict=True)
    ]
    assert all(matches), found[~np.array(matches)]
    # nothing else was quarantined, and every file reconciles
    assert len(ds.quarantine) == len(expected)
    report = ds.load_report
    assert (report["rows_read"] == report["rows_kept"] + report["rows_quarantined"]).all()


def test_validate_cli_reports_and_writes_the_quarantine(messy, tmp_path):
    folder, expected = messy
    result = CliRunner().invoke(app, ["validate", str(folder), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "Top quarantine reasons" in result.output
    assert "ambiguous date" in result.output
    written = pd.read_csv(tmp_path / "quarantine.csv")
    assert len(written) == len(expected)


def test_validate_cli_prints_file_errors_without_traceback(tmp_path):
    (tmp_path / "patients.csv").write_text("patient_id\nP1\n")
    result = CliRunner().invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
