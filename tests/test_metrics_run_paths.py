"""The metrics' run-based fast paths give exactly what the plain pandas expressions give.

Inside :func:`hipdata.metrics.compute_all` the sessions and family sessions of the sorted sets
table are numbered once (``_common.nested_groups``) and reused: filtered (``Groups.subset``),
split by a further categorical key (``_common.refine``), counted (``distinct_per_group``
instead of ``nunique``; the weekly ``sessions`` as family sessions per week), and the joins on
neighbouring rows are binary searches or shifts of packed keys (the previous week's volume, the
previous family session's volume, the baseline / follow-up choice of ``outcome_change``). Each
is compared here with the expression it replaces, on frames built to hit the edge cases (groups
a filter empties, ties, missing values, unsorted input); and ``compute_all`` as a whole with
every fast path switched off, on a synthetic cohort with warm-up sets and tied outcome scores.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import hipdata
from hipdata.metrics import _common, compute_all
from hipdata.metrics import family as family_module
from hipdata.metrics import outcomes as outcomes_module
from hipdata.metrics._common import (
    agg_by,
    attach_patients,
    coded,
    distinct_per_group,
    group_codes,
    nested_groups,
    refine,
)
from hipdata.metrics.family import _previous_in_family, _previous_week_volume
from hipdata.synth import generate
from tests.io_helpers import shuffled_dataset


def _sorted_frame(n: int, seed: int) -> pd.DataFrame:
    """Rows sorted by patient, date, family (coded), with repeated keys, like the sets table."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "patient_id": pd.Series(rng.choice(["P10", "P2", "p1", "Ä3"], n), dtype="str"),
            "date": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 20, n), "D"),
            "family": pd.Series(rng.choice(["bridge", "clam", "squat"], n), dtype="str"),
            "exercise": pd.Series(rng.choice(["b1", "b2", "c1", "Sq"], n), dtype="str"),
            "set_type": pd.Series(rng.choice(["work", "warmup"], n, p=[0.7, 0.3]), dtype="str"),
            "v": rng.normal(size=n),
        }
    )
    frame.loc[rng.random(n) < 0.1, "exercise"] = np.nan
    frame = coded(frame, ["patient_id", "family", "exercise"])
    return frame.sort_values(["patient_id", "date", "family"], kind="stable").reset_index(drop=True)


def _assert_same_groups(fast, reference) -> None:
    assert fast is not None and reference is not None
    np.testing.assert_array_equal(fast.codes, reference.codes)
    np.testing.assert_array_equal(fast.first, reference.first)


def test_nested_groups_equal_group_codes_of_each_prefix():
    frame = _sorted_frame(3000, 1)
    keys = ["patient_id", "date", "family"]
    sessions, family_sessions = nested_groups(frame, keys, [2, 3])
    _assert_same_groups(sessions, group_codes(frame, keys[:2]))
    _assert_same_groups(family_sessions, group_codes(frame, keys))
    # an unsorted frame falls back to group_codes (None here: not sorted)
    shuffled = frame.sample(frac=1, random_state=2).reset_index(drop=True)
    assert nested_groups(shuffled, keys, [2, 3]) == [None, None]


def test_subset_equals_the_groups_of_the_filtered_frame():
    frame = _sorted_frame(3000, 3)
    keys = ["patient_id", "date", "family"]
    groups = group_codes(frame, keys)
    # warm-ups only: many groups lose every row
    for keep in (frame["set_type"] == "warmup", frame["set_type"] != "warmup", frame["v"] > 1.5):
        keep = keep.to_numpy()
        subset = groups.subset(keep)
        filtered = frame.loc[keep].reset_index(drop=True)
        _assert_same_groups(subset, group_codes(filtered, keys))
        pd.testing.assert_frame_equal(
            agg_by(filtered, keys, groups=subset, total=("v", "sum"), rows=("v", "size")),
            filtered.groupby(keys, sort=True, observed=True)
            .agg(total=("v", "sum"), rows=("v", "size"))
            .reset_index(),
            check_exact=True,
        )


def test_refine_splits_groups_by_a_categorical_like_group_codes():
    frame = _sorted_frame(3000, 4).dropna(subset=["exercise"]).reset_index(drop=True)
    sessions = group_codes(frame, ["patient_id", "date"])
    _assert_same_groups(
        refine(sessions, frame["exercise"]),
        group_codes(frame, ["patient_id", "date", "exercise"]),
    )
    # a missing code or a text column: no refinement (the caller groups the usual way)
    holey = _sorted_frame(3000, 4)
    assert refine(group_codes(holey, ["patient_id", "date"]), holey["exercise"]) is None
    assert refine(sessions, frame["set_type"]) is None


def test_distinct_per_group_equals_nunique():
    frame = _sorted_frame(3000, 5)  # 10 % of the exercises missing: not counted
    keys = ["patient_id", "date"]
    groups = group_codes(frame, keys)
    counts = distinct_per_group(groups, frame["exercise"])
    reference = frame.groupby(keys, sort=True, observed=True)["exercise"].nunique()
    np.testing.assert_array_equal(counts, reference.to_numpy())
    assert counts.dtype == np.int64
    assert distinct_per_group(groups, frame["set_type"]) is None  # not categorical


def _weekly_like(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = pd.DataFrame(
        {
            "patient_id": rng.choice(["P1", "P2", "P3", "Q"], 400),
            "week": rng.integers(-1, 8, 400),
            "family": rng.choice(["bridge", "clam", "squat"], 400),
        }
    ).drop_duplicates()
    rows["volume_load_kg"] = rng.choice([0.0, 10.0, 12.5, np.nan], len(rows))
    table = coded(rows.astype({"patient_id": "str", "family": "str"}), ["patient_id", "family"])
    return table.sort_values(["patient_id", "week", "family"]).reset_index(drop=True)


def test_previous_week_volume_equals_the_self_merge():
    keys = ["patient_id", "week", "family"]
    for seed in range(5):
        table = _weekly_like(seed)
        previous = table[keys + ["volume_load_kg"]].rename(
            columns={"volume_load_kg": "previous_volume_load_kg"}
        )
        previous["week"] = previous["week"] + 1
        merged = table.merge(previous, on=keys, how="left", validate="one_to_one")
        fast = _previous_week_volume(table, keys)
        np.testing.assert_array_equal(fast, merged["previous_volume_load_kg"].to_numpy())
    # text keys or unsorted rows: the caller merges
    assert _previous_week_volume(_common.text_as_str(table), keys) is None
    assert _previous_week_volume(table.iloc[::-1], keys) is None


def test_previous_in_family_equals_sort_and_grouped_shift():
    for seed in range(3):
        frame = _sorted_frame(2000, seed).drop_duplicates(["patient_id", "date", "family"])
        frame = frame.rename(columns={"v": "volume_load_kg"})
        frame = frame.sample(frac=1, random_state=seed)  # any row order, any index
        ordered = frame.sort_values(["patient_id", "family", "date"])
        reference = ordered.groupby(["patient_id", "family"], observed=True)[
            "volume_load_kg"
        ].shift()
        fast = _previous_in_family(frame)
        pd.testing.assert_series_equal(
            fast.loc[frame.index], reference.loc[frame.index], check_exact=True
        )


def _tied_outcomes_dataset(seed: int):
    """Scores with ties: equal distance before / after start, the same date twice, scores on
    both sides of the baseline, ids as text and a measure missing from the registry."""
    rng = np.random.default_rng(seed)
    patients = pd.DataFrame(
        {
            "patient_id": [f"P{i}" for i in range(40)],
            "clinic_id": "C1",
            "start_date": "2026-01-10",
            "discharge_date": ["2026-03-10" if i % 3 else None for i in range(40)],
        }
    )
    n = 600
    start = pd.Timestamp("2026-01-10")
    # -7 and +7 are equally close to the start; discharge is day 59 after start
    offsets = rng.choice([-40, -7, -7, 0, 7, 7, 12, 45, 50, 59, 70, 70, 95], n)
    outcomes = pd.DataFrame(
        {
            "patient_id": rng.choice(patients["patient_id"], n),
            "date": (start + pd.to_timedelta(offsets, "D")).strftime("%Y-%m-%d"),
            "measure": rng.choice(["nprs", "hoos_pain", "custom_x"], n),
            "score": rng.integers(0, 10, n).astype(float),
        }
    )
    sets = pd.DataFrame(
        {"patient_id": "P0", "date": "2026-01-10", "exercise": "bridge", "set": 1, "reps": 10},
        index=[0],
    )
    ds = hipdata.Dataset.from_frames(patients, sets, outcomes=outcomes)
    # the loader keeps one score per patient, measure and date; a hand-made dataset may have
    # two (ties broken by row order): add a second score on every date, rows shuffled
    scores = pd.concat([ds.outcomes, ds.outcomes.assign(score=ds.outcomes["score"] + 1)])
    return dataclasses.replace(ds, outcomes=scores.sample(frac=1, random_state=seed))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_outcome_change_by_codes_equals_the_merges(seed, monkeypatch):
    ds = _tied_outcomes_dataset(seed)
    fast = hipdata.metrics.outcome_change(ds)
    monkeypatch.setattr(outcomes_module, "_baseline_followup_by_codes", lambda *a: None)
    plain = hipdata.metrics.outcome_change(ds)
    assert fast["baseline"].notna().sum() > 20 and fast["followup"].notna().sum() > 10
    pd.testing.assert_frame_equal(fast, plain, check_exact=True)


def test_attach_patients_on_text_ids_names_the_unknown():
    patients = pd.DataFrame({"patient_id": pd.Series(["P1", "P2"], dtype="str"), "x": [1, 2]})
    rows = pd.DataFrame({"patient_id": pd.Series(["P2", "P9", "P1"], dtype="str")})
    with pytest.raises(ValueError, match="P9"):
        attach_patients(rows, patients, ["x"])
    known = rows.iloc[[0, 2]]
    assert attach_patients(known, patients, ["x"])["x"].tolist() == [2, 1]


@pytest.fixture(scope="module")
def warmup_cohort():
    """About 3 x 10^4 set rows with a fifth of the sets marked warm-up (whole units of them, so
    dose units and criterion sets vanish), rows shuffled, 5 % of the pain and dose cells
    emptied, and every outcome score duplicated on the same date."""
    cohort = generate(200, seed=11)
    tables = {name: table.copy() for name, table in cohort.tables.items()}
    rng = np.random.default_rng(11)
    sets = tables["exercises"]
    sets["set_type"] = np.where(rng.random(len(sets)) < 0.2, "warmup", "work")
    first_sets = sets["set"] == 1
    sets.loc[first_sets & (rng.random(len(sets)) < 0.3), "set_type"] = "warmup"
    for column in ("reps", "pain_during", "pain_24h", "hold_s", "prescribed_reps"):
        sets.loc[rng.random(len(sets)) < 0.05, column] = np.nan
    outcomes = tables["outcomes"]
    tables["outcomes"] = pd.concat([outcomes, outcomes.assign(score=outcomes["score"] + 1)])
    return shuffled_dataset(tables, rng)


def test_compute_all_equals_every_fast_path_off(warmup_cohort, monkeypatch):
    ds = warmup_cohort
    assert (ds.sets["set_type"] == "warmup").mean() > 0.15
    fast = compute_all(ds)
    with monkeypatch.context() as patch:
        import hipdata.metrics.sets as sets_module

        patch.setattr(_common, "coded", lambda frame, columns: frame)
        patch.setattr(sets_module, "coded", lambda frame, columns: frame)
        patch.setattr(_common, "group_codes", lambda frame, keys: None)
        patch.setattr(family_module, "group_codes", lambda frame, keys: None)
        patch.setattr(family_module, "same_keys", lambda left, right, keys: False)
        patch.setattr(family_module, "_previous_in_family", lambda table: None)
        patch.setattr(family_module, "_previous_week_volume", lambda table, keys: None)
        patch.setattr(outcomes_module, "_baseline_followup_by_codes", lambda *a: None)
        plain = compute_all(ds)
    for name in fast:
        pd.testing.assert_frame_equal(fast[name], plain[name], check_exact=True, obj=name)


def test_runs_by_packed_sort_equal_the_grouped_runs(warmup_cohort):
    from hipdata.metrics.compute import _family_sessions_from_sets, _sets_table
    from hipdata.metrics.progression import (
        _held_back_from,
        _progressions_from,
        _runs,
        _runs_grouped,
    )

    sets = _sets_table(warmup_cohort.sets, warmup_cohort.patients)
    family = _family_sessions_from_sets(
        sets,
        warmup_cohort.patients,
        pain_threshold=3,
        criterion_sets=3,
        criterion_reps=8,
        criterion_hold_s=20,
    )
    shuffled = family.sample(frac=1, random_state=3)  # any row order in
    fast, grouped = _runs(shuffled), _runs_grouped(shuffled)
    assert "first_of_family" in fast  # the fast path ran
    pd.testing.assert_frame_equal(fast[list(grouped.columns)], grouped, check_exact=True)
    assert fast["run_open"].any() and (~fast["run_open"]).any()
    pd.testing.assert_frame_equal(
        _progressions_from(shuffled, runs=fast),
        _progressions_from(shuffled, runs=grouped),
        check_exact=True,
    )
    held_back = _held_back_from(shuffled, held_back_sessions=3, runs=fast)
    assert len(held_back) > 10 and held_back["run_open"].any()
    pd.testing.assert_frame_equal(
        held_back,
        _held_back_from(shuffled, held_back_sessions=3, runs=grouped),
        check_exact=True,
    )
    # with 1 further session, more (and shorter) episodes
    pd.testing.assert_frame_equal(
        _held_back_from(shuffled, held_back_sessions=1, runs=fast),
        _held_back_from(shuffled, held_back_sessions=1, runs=grouped),
        check_exact=True,
    )


def test_level_columns_by_masks_equal_the_at_level_filter(warmup_cohort):
    """``level, top_load_kg, sets, max_pain_during, sets_on_target`` of the family sessions
    (aggregated over all rows with the rows below the top level masked) equal the group-by of
    the filtered rows at the top level (the plain definition)."""
    from hipdata.metrics.compute import _family_sessions_from_sets, _sets_table

    coded_sets = _sets_table(warmup_cohort.sets, warmup_cohort.patients)
    sets = _common.text_as_str(coded_sets)
    keys = ["patient_id", "date", "family"]
    table = _family_sessions_from_sets(
        coded_sets,  # the coded path (groups read off the rows)
        warmup_cohort.patients,
        pain_threshold=3,
        criterion_sets=3,
        criterion_reps=8,
        criterion_hold_s=20,
    )
    top_level = sets.groupby(keys)["level"].transform("max")
    at_level = sets[sets["level"] == top_level]
    on_target = (
        ((at_level["dose"] == "reps") & (at_level["reps"] >= 8 - 1e-9))
        | ((at_level["dose"] == "hold") & (at_level["hold_s"] >= 20 - 1e-9))
    ) & (at_level["set_type"] != "warmup")
    plain = (
        at_level.assign(on_target=on_target.astype("int64"))
        .groupby(keys, sort=True)
        .agg(
            level=("level", "first"),
            top_load_kg=("load_kg", "max"),
            sets=("set", "size"),
            max_pain_during=("pain_during", "max"),
            sets_on_target=("on_target", "sum"),
        )
        .reset_index()
    )
    assert (plain["sets_on_target"] < plain["sets"]).any()  # warm-ups and short sets present
    columns = ["level", "top_load_kg", "sets", "max_pain_during", "sets_on_target"]
    pd.testing.assert_frame_equal(
        _common.text_as_str(table)[keys + columns], plain[keys + columns], check_exact=True
    )


def test_weekly_top_load_and_sessions_equal_their_plain_definitions(warmup_cohort):
    """``top_load_kg`` (masked maximum) = the maximum load of the filtered sets at the week's
    top level; ``sessions`` (family sessions counted per week) = distinct dates."""
    sets = hipdata.metrics.sets_table(warmup_cohort)
    keys = ["patient_id", "week", "family"]
    top_level = sets.groupby(keys)["level"].transform("max")
    plain = (
        sets.groupby(keys, sort=True)
        .agg(sessions=("date", "nunique"))
        .join(sets[sets["level"] == top_level].groupby(keys).agg(top_load_kg=("load_kg", "max")))
        .reset_index()
    )
    fast = hipdata.metrics.weekly_load(warmup_cohort)
    assert (plain["sessions"] > 1).any()
    pd.testing.assert_frame_equal(fast[plain.columns], plain, check_exact=True)


@pytest.mark.parametrize("run_length", [1, 3, 50])
def test_factorize_sorted_equals_pandas_factorize(run_length):
    rng = np.random.default_rng(run_length)
    heads = rng.choice(["P10", "P2", "p1", "Ä3", "", "P2 "], 400).astype(object)
    heads[rng.random(400) < 0.05] = None  # missing values: code -1, never a run of them
    values = pd.Series(np.repeat(heads, run_length), dtype="str")
    codes, uniques = _common.factorize_sorted(values)
    expected_codes, expected_uniques = pd.factorize(values, sort=True)
    np.testing.assert_array_equal(codes, expected_codes)
    pd.testing.assert_index_equal(uniques, expected_uniques)
    # object and categorical columns take pandas' path
    codes, _ = _common.factorize_sorted(values.astype(object))
    np.testing.assert_array_equal(codes, expected_codes)


def test_sets_already_in_order_give_the_same_tables(warmup_cohort):
    """Set rows that arrive sorted (no copy is made of them) give the same tables as shuffled
    ones, whatever their index."""
    keys = ["patient_id", "date", "family", "level", "exercise", "set"]
    in_order = warmup_cohort.sets.sort_values(keys, kind="stable")
    in_order.index = range(7, 7 + len(in_order))
    sorted_ds = dataclasses.replace(warmup_cohort, sets=in_order)
    fast, reference = compute_all(sorted_ds), compute_all(warmup_cohort)
    for name in fast:
        pd.testing.assert_frame_equal(fast[name], reference[name], check_exact=True, obj=name)
