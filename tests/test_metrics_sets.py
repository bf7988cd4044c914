"""sets_table: week, load, volume load and time under tension (CONTRACT §4)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hipdata import Dataset
from hipdata.metrics import SETS_COLUMNS, sets_table

NaN = np.nan
START = "2026-01-05"


def one_patient_ds(rows: list[dict]) -> Dataset:
    patients = pd.DataFrame({"patient_id": ["P1"], "clinic_id": ["C1"], "start_date": [START]})
    sets = pd.DataFrame(rows).assign(patient_id="P1")
    return Dataset.from_frames(patients, sets)


def test_week_volume_load_and_tut_by_hand():
    ds = one_patient_ds(
        [
            # 2025-12-29 is start - 7 days: floor(-7 / 7) = -1
            {"date": "2025-12-29", "exercise": "bridge", "set": 1, "reps": 10},
            # 2026-01-01 is start - 4 days: floor(-4 / 7) = -1 (week -1, counted like any other)
            {"date": "2026-01-01", "exercise": "bridge", "set": 1, "reps": 10},
            # day 6: floor(6 / 7) = 0; volume 10 x 12.5 = 125; no hold -> tut 0
            {
                "date": "2026-01-11",
                "exercise": "bridge_loaded",
                "set": 1,
                "reps": 10,
                "load_kg": 12.5,
            },
            # day 7: week 1; reps with a 3 s hold per rep: volume 10 x 2 = 20, tut 3 x 10 = 30
            {
                "date": "2026-01-12",
                "exercise": "side_lying_adduction",
                "set": 1,
                "reps": 10,
                "hold_s": 3.0,
                "load_kg": 2.0,
            },
            # day 24: floor(24 / 7) = 3; pure hold: volume 0 (no reps), tut = hold_s = 25
            {"date": "2026-01-29", "exercise": "side_plank", "set": 1, "hold_s": 25.0},
        ]
    )
    table = sets_table(ds)
    assert list(table.columns[: len(SETS_COLUMNS)]) == SETS_COLUMNS
    assert table["week"].tolist() == [-1, -1, 0, 1, 3]
    # empty load -> 0 in the sets table too (body weight or band)
    assert table["load_kg"].tolist() == [0.0, 0.0, 12.5, 2.0, 0.0]
    assert table["volume_load_kg"].tolist() == [0.0, 0.0, 125.0, 20.0, 0.0]
    assert table["tut_s"].tolist() == [0.0, 0.0, 0.0, 30.0, 25.0]
    assert table["family"].tolist() == ["extensors", "extensors", "extensors", "adductors", "trunk"]
    assert table["level"].tolist() == [1, 1, 2, 1, 2]
    assert table["week"].dtype == "int64"
    assert pd.api.types.is_datetime64_dtype(table["date"])


def test_reps_without_load_have_no_volume_but_keep_their_reps():
    # body-weight bridge: 12 reps x 0 kg = 0 kg volume; the reps stay as recorded
    table = sets_table(
        one_patient_ds([{"date": START, "exercise": "bridge", "set": 1, "reps": 12}])
    )
    assert table.loc[0, "volume_load_kg"] == 0.0
    assert table.loc[0, "reps"] == 12.0


def test_hold_with_zero_reps_has_no_time_under_tension():
    # hold_s x reps = 20 x 0 = 0 (both given, so the product applies)
    table = sets_table(
        one_patient_ds(
            [{"date": START, "exercise": "side_plank", "set": 1, "reps": 0, "hold_s": 20.0}]
        )
    )
    assert table.loc[0, "tut_s"] == 0.0


def test_rows_of_unknown_patients_are_an_error():
    patients = pd.DataFrame({"patient_id": ["P1"], "clinic_id": ["C1"], "start_date": [START]})
    sets = pd.DataFrame(
        {"patient_id": ["P9"], "date": [START], "exercise": ["bridge"], "set": [1], "reps": [10]}
    )
    with pytest.raises(ValueError, match="P9"):
        # validate=False: validation would quarantine P9; this checks sets_table's own guard
        sets_table(Dataset.from_frames(patients, sets, validate=False))
