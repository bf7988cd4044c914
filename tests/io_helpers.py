"""Small hand-made input folders for the loader tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

TODAY = "2026-11-27"

PATIENTS = pd.DataFrame(
    {
        "patient_id": ["P1", "P2"],
        "clinic_id": ["C1", "C2"],
        "clinician_id": ["T1", "T2"],
        "sex": ["F", "M"],
        "age_years": ["54", "37"],
        "start_date": ["2026-03-02", "2026-03-09"],
        "discharge_date": ["2026-05-25", ""],
        "discharge_reason": ["completed", ""],
        "planned_sessions_per_week": ["2", ""],
    }
)

# Set-level layout: P1 does 3 sets of bridges at 20 kg and 2 side-plank holds.
SETS = pd.DataFrame(
    {
        "patient_id": ["P1", "P1", "P1", "P1", "P1", "P2"],
        "date": ["2026-03-02"] * 5 + ["2026-03-10"],
        "exercise": ["bridge_loaded"] * 3 + ["side_plank"] * 2 + ["squat_comfortable"],
        "set": ["1", "2", "3", "1", "2", "1"],
        "reps": ["10", "10", "8", "", "", "12"],
        "hold_s": ["", "", "", "25", "30", ""],
        "load_kg": ["20", "20", "20", "", "", ""],
        "pain_during": ["2", "2", "2", "1", "1", "4"],
        "pain_24h": ["3", "3", "3", "3", "3", ""],
    }
)

# The same content in the exercise-level layout: one row per exercise per session.
EXERCISES = pd.DataFrame(
    {
        "patient_id": ["P1", "P1", "P2"],
        "date": ["2026-03-02", "2026-03-02", "2026-03-10"],
        "exercise": ["bridge_loaded", "side_plank", "squat_comfortable"],
        "sets": ["3", "2", "1"],
        "reps": ["10/10/8", "", "12"],
        "hold_s": ["", "25/30", ""],
        "load_kg": ["20", "", ""],
        "pain_during": ["2", "1", "4"],
        "pain_24h": ["3", "3", ""],
    }
)


def write_folder(
    folder: Path,
    *,
    patients: pd.DataFrame = PATIENTS,
    exercises: pd.DataFrame = SETS,
    extra: dict[str, pd.DataFrame] | None = None,
    sep: str = ",",
    encoding: str = "utf-8",
) -> Path:
    """Write the tables as CSV text exactly as given (all cells are strings)."""
    folder.mkdir(parents=True, exist_ok=True)
    tables = {"patients": patients, "exercises": exercises, **(extra or {})}
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False, sep=sep, encoding=encoding)
    return folder


def with_row(frame: pd.DataFrame, **values) -> pd.DataFrame:
    """The frame plus one row: a copy of its first row with ``values`` changed."""
    row = frame.iloc[[0]].copy()
    for column, value in values.items():
        row[column] = value
    return pd.concat([frame, row], ignore_index=True)


def lookalike_ids(tables: dict, names) -> None:
    """Rename the patients of a synthetic cohort's ``tables`` (in place, in the tables
    ``names``) to unicode and look-alike ids: ``Ü-0``, ``p001``, ``P2``, ``Ü-3``, ... (their
    text order differs from the generator's)."""
    renamed = {
        old: (f"Ü-{i}" if i % 3 == 0 else f"p{i:03d}" if i % 3 == 1 else f"P{i}")
        for i, old in enumerate(tables["patients"]["patient_id"])
    }
    for name in names:
        if name in tables:
            tables[name]["patient_id"] = tables[name]["patient_id"].map(renamed)


def shuffled_dataset(tables: dict, rng):
    """A Dataset from a synthetic cohort's ``tables`` (changed in place) with the rows of each
    table in a random order: what the metrics must not depend on."""
    import hipdata

    for name in ("exercises", "activity", "outcomes", "patients"):
        tables[name] = tables[name].iloc[rng.permutation(len(tables[name]))]
    return hipdata.Dataset.from_frames(
        tables["patients"],
        tables["exercises"],
        activity=tables["activity"],
        outcomes=tables["outcomes"],
    )
