"""Identities that must hold between the tables on any data (a seeded random cohort)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hipdata import Dataset, load_catalogue
from hipdata.metrics import compute_all


def random_ds(seed: int, n_patients: int = 40) -> Dataset:
    rng = np.random.default_rng(seed)
    catalogue = load_catalogue()
    ids = [f"P{i:03d}" for i in range(n_patients)]
    starts = pd.Timestamp("2026-01-05") + pd.to_timedelta(rng.integers(0, 60, n_patients), "D")
    patients = pd.DataFrame({"patient_id": ids, "clinic_id": "C1", "start_date": starts})
    # units = one exercise in one session, each with 1-4 sets, so that criteria are reachable
    n_units = 1200
    units = pd.DataFrame(
        {
            "patient_id": rng.choice(ids, n_units),
            "day": rng.integers(-7, 60, n_units),
            "exercise": rng.choice(catalogue["id"], n_units),
            "n_sets": rng.integers(1, 5, n_units),
        }
    ).drop_duplicates(["patient_id", "day", "exercise"])
    sets = units.loc[units.index.repeat(units["n_sets"])].reset_index(drop=True)
    sets["set"] = sets.groupby(["patient_id", "day", "exercise"]).cumcount() + 1
    n_rows = len(sets)
    sets["reps"] = np.where(rng.random(n_rows) < 0.9, rng.integers(6, 14, n_rows), np.nan)
    sets["hold_s"] = np.where(rng.random(n_rows) < 0.5, rng.integers(15, 40, n_rows), np.nan)
    sets["load_kg"] = np.where(rng.random(n_rows) < 0.5, rng.choice([2.5, 5, 10], n_rows), np.nan)
    sets["pain_during"] = np.where(rng.random(n_rows) < 0.9, rng.integers(0, 5, n_rows), np.nan)
    sets["pain_24h"] = np.where(rng.random(n_rows) < 0.8, rng.integers(0, 5, n_rows), np.nan)
    sets = sets.merge(patients[["patient_id", "start_date"]], on="patient_id")
    sets["date"] = sets["start_date"] + pd.to_timedelta(sets["day"], "D")
    return Dataset.from_frames(patients, sets.drop(columns=["day", "start_date", "n_sets"]))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_tables_agree_with_each_other(seed):
    ds = random_ds(seed)
    t = compute_all(ds)
    sets, sessions, family = t["sets"], t["sessions"], t["family_sessions"]
    # every set is counted once at each level of aggregation
    assert sessions["n_sets"].sum() == len(sets) == t["weekly_load"]["sets"].sum()
    for column, set_column in (("total_reps", "reps"), ("volume_load_kg",) * 2, ("tut_s",) * 2):
        total = sets[set_column].sum()
        assert np.isclose(sessions[column].sum(), total)
        assert np.isclose(family[column].sum(), total)
        assert np.isclose(t["weekly_load"][column].sum(), total)
    assert t["weekly_load"]["sessions"].sum() == len(family)
    assert t["patient_summary"]["sessions"].sum() == len(sessions)
    # criterion met only with the target reached and pain recorded and inside the limit
    met = family[family["criterion"] == "met"]
    assert (met["sets_on_target"] >= 3).all()
    assert (met[["max_pain_during", "pain_24h"]] <= 3).all().all()
    unknown = family[family["criterion"] == "unknown"]
    assert unknown[["max_pain_during", "pain_24h"]].isna().any(axis=1).all()
    # every event changes level or load, and its kind says which way
    events = t["progressions"]
    level_up = events["to_level"] > events["from_level"]
    level_down = events["to_level"] < events["from_level"]
    load_up = (events["to_level"] == events["from_level"]) & (
        events["to_load_kg"] > events["from_load_kg"]
    )
    expected_kind = np.select(
        [level_up, level_down, load_up], ["up", "down", "load_up"], default="load_down"
    )
    assert (events["kind"] == expected_kind).all()
    assert (events["sessions_at_level"] >= 1).all() and (events["days_at_level"] >= 1).all()
    # there are at most (family sessions - patient x family pairs) events
    pairs = family[["patient_id", "family"]].drop_duplicates()
    assert len(events) <= len(family) - len(pairs)
    # flare counts add up per patient
    summary = t["patient_summary"]
    known = summary["sessions"] - summary["pain_missing_sessions"]
    assert (summary["flare_sessions"] <= summary["sessions"]).all()
    # complete case (CONTRACT §4): pain_missing_sessions = sessions missing either pain
    assert (summary["pain_recorded_sessions"] == known).all()
