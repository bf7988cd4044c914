"""The speed-ups of the load and metrics paths give exactly what the straightforward code gives.

Each fast path is compared with the plain pandas expression it replaces (the reference), on a
synthetic cohort and on hand-made edge cases: missing values, shuffled rows, unknown keys.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hipdata.catalogue import base_exercise, exercise_keys, load_catalogue, normalise_name
from hipdata.io.readers import column_key, map_distinct
from hipdata.metrics._common import attach_patients, text_as_str
from hipdata.synth import generate


@pytest.fixture(scope="module")
def cohort():
    return generate(40, seed=11)


def test_map_distinct_equals_series_map():
    cells = pd.Series(["Kg", " LBS", "Kg", "", "kg", "lbs"], index=[5, 3, 9, 1, 0, 2], dtype="str")
    pd.testing.assert_series_equal(map_distinct(cells, column_key), cells.map(column_key))
    # missing values reach the function like in Series.map (here: turned into "nan")
    with_na = pd.Series(["a", None, "B", None], dtype=object, name="unit")
    pd.testing.assert_series_equal(map_distinct(with_na, column_key), with_na.map(column_key))
    empty = pd.Series([], dtype="str")
    pd.testing.assert_series_equal(map_distinct(empty, column_key), empty.map(column_key))


def test_exercise_name_helpers_equal_their_per_row_definition(cohort):
    catalogue = load_catalogue()
    names = cohort.tables["exercises"]["exercise"]
    names = pd.concat([names, pd.Series(["  Side-lying Hip_ADDUCTION ", None, "not a thing"])])
    names = names.reset_index(drop=True)
    keys = exercise_keys(names, catalogue)
    # reference: the unloaded id where the name resolves, else the normalised name, row by row
    from hipdata.catalogue import loaded_variants, resolve_exercises

    back = {loaded: plain for plain, loaded in loaded_variants(catalogue).items()}
    resolved = resolve_exercises(names, catalogue)
    expected = [
        back.get(r, r) if isinstance(r, str) else normalise_name("" if pd.isna(n) else str(n))
        for n, r in zip(names, resolved, strict=True)
    ]
    assert keys.tolist() == expected
    assert keys.index.equals(names.index)
    with_na = pd.Series(["bridge_loaded", None, "bridge"], dtype=object)
    pd.testing.assert_series_equal(
        base_exercise(with_na, catalogue), with_na.map(lambda e: back.get(e, e))
    )


def reference_attach(frame, patients, columns):
    """The straightforward join the index lookup replaces."""
    added = [c for c in columns if c not in frame.columns]
    return frame.merge(
        text_as_str(patients[["patient_id", *added]]),
        on="patient_id",
        how="left",
        validate="many_to_one",
    )


def test_attach_patients_equals_a_left_merge(cohort):
    import hipdata

    ds = hipdata.Dataset.from_frames(cohort.tables["patients"], cohort.tables["exercises"])
    rng = np.random.default_rng(3)
    sets = ds.sets.iloc[rng.permutation(len(ds.sets))]  # shuffled, index not a range
    patients = ds.patients.iloc[::-1]
    for columns in (["start_date"], ["clinic_id", "clinician_id", "start_date"], []):
        pd.testing.assert_frame_equal(
            attach_patients(sets, patients, columns), reference_attach(sets, patients, columns)
        )
    # a column the frame already has is not added twice
    with_clinic = sets.assign(clinic_id="X")
    pd.testing.assert_frame_equal(
        attach_patients(with_clinic, patients, ["clinic_id", "start_date"]),
        reference_attach(with_clinic, patients, ["clinic_id", "start_date"]),
    )


def test_attach_patients_rejects_unknown_and_duplicate_patients(cohort):
    import hipdata

    ds = hipdata.Dataset.from_frames(cohort.tables["patients"], cohort.tables["exercises"])
    with pytest.raises(ValueError, match="missing from the patients table"):
        attach_patients(ds.sets, ds.patients.iloc[1:], ["start_date"])
    doubled = pd.concat([ds.patients, ds.patients.iloc[:1]])
    with pytest.raises(pd.errors.MergeError):
        attach_patients(ds.sets, doubled, ["start_date"])
