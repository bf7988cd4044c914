"""Session 6's fast paths of ``compute_all`` give exactly what the expressions they replace give.

Each replaced expression is kept in the code as the general path; here each fast path is
compared with it on edge data (empty frames, one patient, missing values, ties, dates before
1970 and not at midnight, unicode ids, shuffled rows), and ``compute_all`` as a whole with these
fast paths switched off, on hostile cohorts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hipdata
from hipdata.metrics import _common, compute_all
from hipdata.metrics import compute as compute_module
from hipdata.metrics import family as family_module
from hipdata.metrics import outcomes as outcomes_module
from hipdata.metrics import progression as progression_module
from hipdata.metrics import sessions as sessions_module
from hipdata.metrics._common import agg_by, days_between, group_codes, nested_groups, week_of
from hipdata.metrics.family import _weeks_of_family_sessions
from hipdata.metrics.outcomes import _join_registry
from hipdata.metrics.sessions import quarter_label
from hipdata.metrics.sets import _sets_table
from hipdata.outcome_measures import MEASURES
from hipdata.synth import generate
from tests.io_helpers import lookalike_ids, shuffled_dataset


def _plain_week_of(dates: pd.Series, start_dates: pd.Series) -> pd.Series:
    # the expression week_of replaces (CONTRACT §4)
    return np.floor(days_between(dates, start_dates) / 7).astype("int64")


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_week_of_on_ticks_equals_the_timedelta_expression(unit):
    rng = np.random.default_rng(3)
    n = 5000
    start = pd.Timestamp("1965-03-01") + pd.to_timedelta(rng.integers(0, 40_000, n), "D")
    # whole days, plus times of day (hostile hand-made frames): before, on and after the start
    offset = pd.to_timedelta(rng.integers(-30, 400, n), "D") + pd.to_timedelta(
        rng.choice([0, 0, 1, 3_599, 86_399], n), "s"
    )
    dates = pd.Series(start + offset, name="date").astype(f"datetime64[{unit}]")
    starts = pd.Series(start, name="start_date").astype(f"datetime64[{unit}]")
    fast = week_of(dates, starts)
    assert _common._whole_weeks(dates, starts) is not None  # the fast path was taken
    pd.testing.assert_series_equal(fast, _plain_week_of(dates, starts), check_exact=True)
    # the 7 days before start are week -1 (hand-checked: -1 day -> -1, -7 -> -1, -8 -> -2)
    day = pd.Series(pd.to_datetime(["2026-01-04", "2025-12-29", "2025-12-28", "2026-01-12"]))
    assert week_of(day, pd.Series(pd.Timestamp("2026-01-05"), index=day.index)).tolist() == [
        -1,
        -1,
        -2,
        1,
    ]


def test_week_of_falls_back_where_the_ticks_cannot_be_used():
    dates = pd.Series(pd.to_datetime(["2026-01-05", "2026-02-01"]))
    starts = pd.Series(pd.to_datetime(["2026-01-01", "2026-01-01"]))
    empty = dates.iloc[:0]
    pd.testing.assert_series_equal(
        week_of(empty, starts.iloc[:0]), _plain_week_of(empty, starts.iloc[:0]), check_exact=True
    )
    # a missing date: the general path (which raises, as before: a week needs a date)
    with_nat = pd.Series([pd.Timestamp("2026-01-05"), pd.NaT])
    assert _common._whole_weeks(with_nat, starts) is None
    with pytest.raises(ValueError):
        week_of(with_nat, starts)
    # other units on the two sides, or other indexes (aligned by pandas): the general path
    assert _common._whole_weeks(dates, starts.astype("datetime64[s]")) is None
    shifted = starts.set_axis([1, 2])
    assert _common._whole_weeks(dates, shifted) is None
    with pytest.raises(ValueError):  # aligned on the union of the indexes: a week of NaT
        week_of(dates, shifted)


def _keys_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "patient_id": pd.Series(rng.choice(["P1", "p2", "Ä3", "P10"], n), dtype="str"),
            "date": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 9, n), "D"),
            "level": rng.integers(1, 4, n),
            "flag": rng.random(n) < 0.5,
            "x": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
        }
    )
    frame = _common.coded(frame, ["patient_id"])
    return frame.sort_values(["patient_id", "date"], kind="stable").reset_index(drop=True)


@pytest.mark.parametrize("n", [0, 1, 7, 500])
def test_agg_by_size_and_integer_first_equal_the_group_by(n):
    frame = _keys_frame(n, n)
    keys = ["patient_id", "date"]
    named = {
        "rows": ("level", "size"),
        "first_level": ("level", "first"),
        "first_flag": ("flag", "first"),
        "first_x": ("x", "first"),  # a float with missing values: pandas' own first
        "top": ("level", "max"),
    }
    fast = agg_by(frame, keys, **named)
    plain = frame.groupby(keys, sort=True, observed=True).agg(**named).reset_index()
    pd.testing.assert_frame_equal(fast, plain, check_exact=True)


def _hostile_dataset(seed: int, *, n_patients: int = 60, shuffle: bool = True):
    """A synthetic cohort made hostile: unicode and look-alike ids, the rows shuffled, pain and
    dose cells emptied, warm-ups, an exercise logged twice in a session, scores tied."""
    cohort = generate(n_patients, seed=seed)
    tables = {name: table.copy() for name, table in cohort.tables.items()}
    rng = np.random.default_rng(seed)
    lookalike_ids(tables, ("patients", "exercises", "activity", "outcomes"))
    sets = tables["exercises"]
    sets["set_type"] = np.where(rng.random(len(sets)) < 0.15, "warmup", "work")
    for column in ("reps", "pain_during", "pain_24h", "hold_s", "prescribed_reps", "load_kg"):
        sets.loc[rng.random(len(sets)) < 0.05, column] = np.nan
    outcomes = tables["outcomes"]
    tables["outcomes"] = pd.concat([outcomes, outcomes.assign(score=outcomes["score"] + 1)])
    if shuffle:
        return shuffled_dataset(tables, rng)
    return hipdata.Dataset.from_frames(
        tables["patients"],
        tables["exercises"],
        activity=tables["activity"],
        outcomes=tables["outcomes"],
    )


@pytest.fixture(scope="module")
def hostile():
    return _hostile_dataset(5)


def test_weekly_groups_from_family_sessions_equal_the_groups_of_the_rows(hostile):
    sets = _sets_table(hostile.sets, hostile.patients)
    _, family_groups = nested_groups(sets, _common.FAMILY_SESSION_KEYS, [2, 3])
    keys = ["patient_id", "week", "family"]
    fast = _weeks_of_family_sessions(sets, keys, family_groups)
    plain = group_codes(sets, keys)
    assert fast is not None and plain is not None
    np.testing.assert_array_equal(fast.codes, plain.codes)
    np.testing.assert_array_equal(fast.first, plain.first)
    # one patient, one row; no rows: the rows' own groups
    one = sets.iloc[:1].reset_index(drop=True)
    _, one_groups = nested_groups(one, _common.FAMILY_SESSION_KEYS, [2, 3])
    single = _weeks_of_family_sessions(one, keys, one_groups)
    np.testing.assert_array_equal(single.codes, [0])
    np.testing.assert_array_equal(single.first, [0])
    assert _weeks_of_family_sessions(sets.iloc[:0], keys, family_groups) is None
    assert _weeks_of_family_sessions(sets, keys, None) is None


def test_weekly_groups_need_one_week_per_family_session(hostile):
    sets = _sets_table(hostile.sets, hostile.patients)
    _, family_groups = nested_groups(sets, _common.FAMILY_SESSION_KEYS, [2, 3])
    broken = sets.assign(week=sets["week"].to_numpy() + (np.arange(len(sets)) % 2))
    assert (
        _weeks_of_family_sessions(broken, ["patient_id", "week", "family"], family_groups) is None
    )


def _registry(measures) -> pd.DataFrame:
    return pd.DataFrame(
        [(m.name, m.higher_is_better, m.mcid_points, m.mcid_pct) for m in measures],
        columns=["measure", "higher_is_better", "mcid_points", "mcid_pct"],
    ).astype({"measure": "str", "mcid_points": "float64", "mcid_pct": "float64"})


def _plain_join(table, registry):
    # the expression _join_registry replaces
    joined = table.merge(registry, on="measure", how="left", validate="many_to_one")
    return joined, joined["higher_is_better"].map({True: 1.0, False: -1.0}).astype("float64")


@pytest.mark.parametrize("which", ["all", "none", "one"])
def test_join_registry_equals_the_merge(which):
    measures = list(MEASURES.values())
    registry = _registry({"all": measures, "none": [], "one": measures[:1]}[which])
    names = [m.name for m in measures] + ["custom_x", "Ümlaut"]
    table = pd.DataFrame(
        {
            "patient_id": pd.Series([f"P{i}" for i in range(3 * len(names))], dtype="str"),
            "measure": pd.Series(names * 3, dtype="str"),
            "baseline": np.arange(3 * len(names), dtype="float64"),
        }
    )
    fast, fast_direction = _join_registry(table, registry)
    plain, plain_direction = _plain_join(table, registry)
    pd.testing.assert_series_equal(fast_direction, plain_direction, check_exact=True)
    for column in ("patient_id", "measure", "baseline", "mcid_points", "mcid_pct"):
        pd.testing.assert_series_equal(fast[column], plain[column], check_exact=True)
    # nprs is lower-is-better with MCID 2 points / 30 % (CONTRACT §4), where it is known
    nprs = fast["measure"] == "nprs"
    expected = -1.0 if which != "none" and "nprs" in set(registry["measure"]) else np.nan
    assert np.array_equal(fast_direction[nprs].unique(), [expected], equal_nan=True)


def test_join_registry_with_a_measure_named_twice_raises_like_the_merge():
    measures = list(MEASURES.values())
    registry = _registry([measures[0], measures[0]])
    table = pd.DataFrame({"measure": pd.Series([measures[0].name], dtype="str")})
    with pytest.raises(pd.errors.MergeError):
        _join_registry(table, registry)


def test_quarter_label_equals_the_categorical_as_text():
    dates = pd.Series(
        pd.to_datetime(["1969-12-31", "1970-01-01", "2026-03-31", "2026-04-01", None, "2026-12-31"])
    )
    labels = quarter_label(dates)
    assert labels.tolist()[:4] == ["1969Q4", "1970Q1", "2026Q1", "2026Q2"]
    assert pd.isna(labels.iloc[4]) and labels.iloc[5] == "2026Q4"
    assert labels.dtype == pd.Series(["x"], dtype="str").dtype
    assert quarter_label(dates.iloc[:0]).dtype == labels.dtype


def _fast_paths_off(patch) -> None:
    """Every fast path of this file replaced by the expression it stands for."""

    def plain_reduction(frame, grouped, groups, column, how):
        return getattr(grouped[column], how)().array

    def family_without_sessions(*args, sessions=None, **kwargs):
        return family_module._family_sessions_from_sets(*args, **kwargs)

    def categorical_astype(values):
        return values.astype("str")

    patch.setattr(_common, "_whole_weeks", lambda dates, start_dates: None)
    patch.setattr(_common, "_reduction", plain_reduction)
    patch.setattr(family_module, "_weeks_of_family_sessions", lambda *a: None)
    patch.setattr(compute_module, "_family_sessions_from_sets", family_without_sessions)
    patch.setattr(outcomes_module, "_join_registry", _plain_join)
    patch.setattr(sessions_module, "_categorical_as_str", categorical_astype)
    patch.setattr(progression_module, "_categorical_as_str", categorical_astype)


@pytest.mark.parametrize(
    "cohort",
    ["hostile", "sorted", "one_patient", "no_sets"],
)
def test_compute_all_equals_these_fast_paths_off(cohort, hostile, monkeypatch):
    if cohort == "hostile":
        ds = hostile
    elif cohort == "sorted":
        ds = _hostile_dataset(8, shuffle=False)
    else:
        ds = _hostile_dataset(9, n_patients=3)
        keep = ds.patients["patient_id"].iloc[:1]
        if cohort == "no_sets":
            ds = hipdata.Dataset.from_frames(
                ds.patients[ds.patients["patient_id"].isin(keep)],
                ds.sets.iloc[:0],
                outcomes=ds.outcomes[ds.outcomes["patient_id"].isin(keep)],
            )
        else:
            ds = hipdata.Dataset.from_frames(
                ds.patients[ds.patients["patient_id"].isin(keep)],
                ds.sets[ds.sets["patient_id"].isin(keep)],
                activity=ds.activity[ds.activity["patient_id"].isin(keep)],
                outcomes=ds.outcomes[ds.outcomes["patient_id"].isin(keep)],
            )
    fast = compute_all(ds)
    with monkeypatch.context() as patch:
        _fast_paths_off(patch)
        plain = compute_all(ds)
    assert len(fast["sets"]) == len(ds.sets)
    for name in fast:
        pd.testing.assert_frame_equal(fast[name], plain[name], check_exact=True, obj=name)
