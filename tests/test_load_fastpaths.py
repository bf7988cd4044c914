"""The loader's coded fast paths give exactly what the plain per-row expressions give.

Each fast path of ``hipdata/io/loader.py`` (rules decided once per distinct text and spread by
codes, duplicate keys on integer codes, the sort on one integer key, the sets table built by one
``take`` and not re-typed by ``Dataset.from_frames``) is compared with the straightforward
expression it replaces, on hand-made hostile cells and on a synthetic cohort with planted
problems.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hipdata
from hipdata.catalogue import apply_loaded_variants, load_catalogue, resolve_exercises
from hipdata.dataset import Dataset
from hipdata.io import loader
from hipdata.io.frames import frame_cells
from hipdata.io.readers import RawTable, coded_cells
from hipdata.synth import generate


def _checked(cells: dict[str, list[str]]) -> loader._Checked:
    frame = pd.DataFrame(cells, dtype="str")
    raw = RawTable(Path("t.csv"), frame, np.arange(len(frame), dtype=np.int64) + 2)
    return loader._Checked(raw, "exercises", {c: c for c in cells}, [])


def _coded(texts: list[str], extra: list[str]) -> pd.Series:
    """Coded cells whose categories also hold texts no row has (as the CSV reader's header)."""
    distinct = list(dict.fromkeys(extra + texts))
    codes = np.array([distinct.index(t) for t in texts])
    return coded_cells(codes, distinct)


NUMBER_CELLS = ["10", "", "abc", "3,5", "1.234,5", "-4", "250", "10", "7.5", "", "1e3", "0"]


@pytest.mark.parametrize(
    "rules",
    [
        {"low": 0, "high": 200, "whole": True},
        {"low": 1, "high": 50, "whole": False},
        {"high": 5},
        {},
    ],
)
def test_coded_number_checks_equal_the_per_row_rules(rules):
    # fast path: the coded column (with an unused "reps" category, the CSV reader's header)
    fast = _checked({"reps": NUMBER_CELLS})
    fast.raw.cells["reps"] = _coded(NUMBER_CELLS, ["reps"])
    got = loader._check_number(fast, "reps", label="reps", **rules)
    # reference: the per-row path (plain text cells through the parser and the Series rules)
    plain = _checked({"reps": NUMBER_CELLS})
    expected = loader._check_number(plain, "reps", label="reps", cells=plain.cells("reps"), **rules)
    pd.testing.assert_series_equal(got, expected)
    pd.testing.assert_frame_equal(fast.quarantine(), plain.quarantine())
    # abc and 1.234,5 always; with rules also at least one of -4, 250, 3,5 / 7.5 / 1e3
    assert len(plain.quarantine()) >= (3 if rules else 2)


def test_absent_number_column_is_all_missing_and_flags_nothing():
    checked = _checked({"reps": ["1", "2"]})
    got = loader._check_number(checked, "prescribed_sets", low=0, high=50, whole=True)
    assert got.isna().all() and got.dtype == "float64" and len(got) == 2
    assert not checked.problems
    # the coded cells of an absent column are the empty text on every row
    coded = checked.coded("prescribed_sets")
    assert list(coded.cat.categories) == [""] and (coded == "").all()


def test_isin_on_objects_equals_series_isin():
    values = pd.Series(["P1", "P2", "", "P3", "p1"], dtype="str")
    pool = pd.Index(["P3", "P1", "P9"], dtype="str")
    np.testing.assert_array_equal(loader._isin(values, pool), values.isin(pool).to_numpy())
    np.testing.assert_array_equal(loader._isin(values, []), np.zeros(5, bool))


def test_duplicate_keys_on_codes_equal_text_keys():
    ids = ["P1", "P2", "P1", "P1", "P2", "P3", "P1"]
    dates = pd.to_datetime(["2026-01-05"] * 3 + ["2026-01-06", "2026-01-05", "NaT", "2026-01-05"])
    exercise = ["bridge", "bridge", "bridge", "bridge", "bridge", "clam", "clam"]
    codes_ids, _ = pd.factorize(pd.Series(ids))
    codes_ex = np.array([0, 0, 0, 0, 0, -1, 1])  # -1: an unresolved exercise
    by_text = _checked({"patient_id": ids})
    loader._flag_duplicates(
        by_text,
        pd.DataFrame({"patient_id": pd.Series(ids, dtype="str"), "date": dates, "e": exercise}),
        "patient, date and exercise",
    )
    by_code = _checked({"patient_id": ids})
    loader._flag_duplicates(
        by_code,
        pd.DataFrame({"patient_id": codes_ids.astype(np.int16), "date": dates, "e": codes_ex}),
        "patient, date and exercise",
    )
    expected = by_text.quarantine()
    # rows 4 and 6 (positions 2 and 4) repeat rows 2 and 3: hand-checked
    assert expected["source_row"].tolist() == [4, 6]
    assert expected["reason"].str.startswith("duplicate of row").all()
    pd.testing.assert_frame_equal(by_code.quarantine(), expected)


@pytest.mark.parametrize("case", ["midnight", "time_of_day", "rows_not_increasing"])
def test_kept_order_equals_the_multi_key_sort(case):
    rng = np.random.default_rng(3)
    n = 400
    patient = rng.integers(0, 20, n)
    days = pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 30, n), unit="D")
    dates = days.to_numpy().astype("datetime64[ns]")
    source_row = np.arange(n, dtype=np.int64) + 2
    if case == "time_of_day":
        dates[::7] = dates[::7] + np.timedelta64(3, "h")
    if case == "rows_not_increasing":
        source_row = rng.permutation(source_row)
    key = pd.DataFrame({"patient": patient, "date": dates, "source_row": source_row})
    expected = key.sort_values(list(key.columns), kind="stable").index.to_numpy()
    np.testing.assert_array_equal(loader._kept_order(patient, dates, source_row), expected)


@pytest.fixture(scope="module")
def hostile_folder(tmp_path_factory):
    tables = {name: frame.copy() for name, frame in generate(25, seed=8).tables.items()}
    ex = tables["exercises"]
    ex.loc[0, "patient_id"] = "NOBODY"  # unknown patient
    ex.loc[1, "exercise"] = "moon walk"  # unknown exercise
    ex.loc[2, "exercise"] = "Hip Thrust"  # an alias, loaded: the loaded variant
    ex.loc[2, "load_kg"] = 20.0
    ex.loc[3, "exercise"] = "bridge"  # the id written, loaded: left as written
    ex.loc[3, "load_kg"] = 20.0
    ex.loc[4, "reps"] = -1
    ex.loc[5, "date"] = pd.Timestamp("2020-01-01")  # long before the start date
    ex = pd.concat([ex, ex.iloc[[10, 11]]], ignore_index=True)  # duplicates
    tables["exercises"] = ex.sample(frac=1, random_state=2).reset_index(drop=True)  # shuffled
    patients = tables["patients"]
    patients.loc[1, "age_years"] = 7  # quarantined patient: its sets are quarantined too
    folder = tmp_path_factory.mktemp("hostile_fast")
    for name, frame in tables.items():
        frame_cells(frame).to_csv(folder / f"{name}.csv", index=False)
    return folder, tables


def test_loaded_sets_equal_from_frames_typing(hostile_folder):
    folder, _ = hostile_folder
    ds = hipdata.load(folder, today="2027-01-01")
    assert len(ds.quarantine) >= 8
    # reference: the same rows re-typed and re-joined with the catalogue by from_frames
    expected = Dataset.from_frames(
        ds.patients.iloc[:0], ds.sets, catalogue=ds.catalogue, validate=False
    ).sets
    pd.testing.assert_frame_equal(ds.sets, expected)


def test_sets_exercise_and_order_equal_the_per_row_definition(hostile_folder):
    folder, tables = hostile_folder
    ds = hipdata.load(folder, today="2027-01-01")
    catalogue = load_catalogue()
    ex = frame_cells(tables["exercises"])
    names = ex["exercise"].astype(str).str.strip()
    load = pd.to_numeric(ex["load_kg"].replace("", np.nan)).fillna(0.0)
    # reference: resolve and move to the loaded variant row by row
    exercise = apply_loaded_variants(names, resolve_exercises(names, catalogue), load, catalogue)
    kept = ds.sets.set_index("source_row")["exercise"]
    expected = exercise.set_axis(ex.index + 2).reindex(kept.index)
    assert (kept.to_numpy() == expected.to_numpy()).all()
    assert "bridge_loaded" in set(kept) and "moon walk" not in set(kept)
    # order: patient, date, source row, set (the plain sort)
    order = ds.sets.sort_values(["patient_id", "date", "source_row", "set"], kind="stable")
    pd.testing.assert_frame_equal(ds.sets, order.reset_index(drop=True))
