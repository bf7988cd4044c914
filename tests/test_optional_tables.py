"""Only patients is required: outcome-only and exercise-only folders load and give metrics."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

import hipdata
from hipdata.metrics import compute_all

DEMO = Path(__file__).parents[1] / "data" / "demo"


@pytest.fixture(scope="module")
def demo_tables():
    return compute_all(hipdata.load(DEMO))


def _subset(tmp_path, tables):
    for name in ("patients", *tables):
        shutil.copy(DEMO / f"{name}.csv", tmp_path / f"{name}.csv")
    return hipdata.load(tmp_path)


def test_outcome_only_folder(tmp_path, demo_tables):
    ds = _subset(tmp_path, ["outcomes"])
    assert ds.sets.empty
    assert ds.load_report["table"].tolist() == ["patients", "outcomes"]
    tables = compute_all(ds)
    # outcome change needs only patients and outcomes: identical to the full demo's
    pd.testing.assert_frame_equal(tables["outcome_change"], demo_tables["outcome_change"])
    summary = tables["patient_summary"]
    assert len(summary) == len(demo_tables["patient_summary"]) == 300
    assert (summary["sessions"] == 0).all()
    assert summary["attendance"].isna().all()  # unknown without exercise data, not 0
    # weeks in care need only the patients table (discharged patients)
    discharged = summary["discharge_date"].notna()
    pd.testing.assert_series_equal(
        summary.loc[discharged, "weeks_in_care"],
        demo_tables["patient_summary"].loc[discharged, "weeks_in_care"],
    )
    for table in ("sets", "sessions", "weekly_load", "progressions"):
        assert tables[table].empty


def test_exercise_only_folder(tmp_path, demo_tables):
    ds = _subset(tmp_path, ["exercises"])
    tables = compute_all(ds)
    assert tables["outcome_change"].empty
    for table in ("sets", "sessions", "weekly_load", "progressions"):
        pd.testing.assert_frame_equal(tables[table], demo_tables[table])
    summary = tables["patient_summary"]
    full = demo_tables["patient_summary"]
    same = [c for c in summary.columns if not c.startswith("activity_weeks")]
    pd.testing.assert_frame_equal(summary[same], full[same])
    assert summary["activity_weeks_met_share"].isna().all()  # no activity table
