"""The metrics' integer-coded paths give exactly what plain pandas on the text keys gives.

Inside :func:`hipdata.metrics.compute_all` the text keys are sorted categoricals
(``_common.coded``) and the group-bys on the sorted sets table read their groups off the row
order (``_common.group_codes`` / ``agg_by``). Each is compared with the plain pandas expression
it replaces (the reference): ``groupby(keys, sort=True).agg``, ``astype("str")``, the string
concatenation of the quarter label, the ``np.select`` of the flare; and the whole of
``compute_all`` with both paths switched off (text keys, plain ``groupby``), on a synthetic
cohort of about 10^5 set rows with shuffled rows and missing values, with the ids as ``str`` and
as ``category`` (a loader may hand over either).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from hipdata.metrics import _common, compute_all
from hipdata.metrics._common import agg_by, coded, group_codes, sort_order, text_as_str
from hipdata.metrics.family import criterion
from hipdata.metrics.sessions import flare, quarter_label
from hipdata.synth import generate
from tests.io_helpers import shuffled_dataset


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "p": pd.Series(rng.choice(["P10", "P2", "p1", "Ä3"], n), dtype="str"),
            "d": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 6, n), unit="D"),
            "w": rng.integers(-1, 3, n),
            "e": pd.Series(rng.choice(["bridge", "clam", "Squat", "side_plank"], n), dtype="str"),
            "v": rng.normal(size=n),
        }
    )
    frame.loc[rng.random(n) < 0.2, "v"] = np.nan
    return frame


AGGREGATIONS = {
    "total": ("v", "sum"),
    "top": ("v", "max"),
    "low": ("v", "min"),
    "kinds": ("e", "nunique"),
    "rows": ("v", "size"),
    "first": ("v", "first"),
    "days": ("d", "nunique"),
}


@pytest.mark.parametrize("order", [["p", "d", "e"], ["p", "w", "d"], ["e", "p"], ["v"]])
@pytest.mark.parametrize("keys", [["p", "d"], ["p", "d", "e"], ["p", "w", "e"], ["p"], ["e", "p"]])
def test_agg_by_equals_groupby_agg(order, keys):
    frame = coded(_frame(3000, 5), ["p", "e"]).sort_values(order, kind="stable")
    frame = frame.reset_index(drop=True)
    reference = frame.groupby(keys, sort=True, observed=True).agg(**AGGREGATIONS).reset_index()
    pd.testing.assert_frame_equal(agg_by(frame, keys, **AGGREGATIONS), reference, check_exact=True)
    groups = group_codes(frame, keys)
    if groups is not None:  # the row order allowed it: same groups as pandas' ngroup
        expected = frame.groupby(keys, sort=True, observed=True).ngroup().to_numpy()
        np.testing.assert_array_equal(np.asarray(groups.grouper.codes), expected)


@pytest.mark.parametrize("keys", [["p", "d", "w", "e"], ["d", "p"], ["e", "w", "p", "d"]])
def test_sort_order_equals_sort_values(keys):
    frame = _frame(4000, 3)
    shuffled = coded(frame, ["p", "e"]).iloc[np.random.default_rng(4).permutation(len(frame))]
    order = sort_order(shuffled, keys)
    assert order is not None
    pd.testing.assert_frame_equal(shuffled.take(order), shuffled.sort_values(keys))
    # and the text keys sort the rows the same way
    assert (frame.loc[shuffled.index].sort_values(keys).index == shuffled.index[order]).all()
    # nanosecond dates too; times of day, floats and missing keys are left to sort_values
    as_ns = shuffled.assign(d=shuffled["d"].astype("datetime64[ns]"))
    pd.testing.assert_frame_equal(as_ns.take(sort_order(as_ns, keys)), as_ns.sort_values(keys))
    assert sort_order(shuffled.assign(d=shuffled["d"] + pd.Timedelta(days=1)), keys) is not None
    assert sort_order(shuffled.assign(d=shuffled["d"] + pd.Timedelta(minutes=1)), keys) is None
    assert sort_order(shuffled, ["p", "v"]) is None


def test_group_codes_needs_sorted_complete_keys():
    frame = coded(_frame(200, 2), ["p", "e"]).sort_values(["p", "d"]).reset_index(drop=True)
    assert group_codes(frame, ["p", "d"]) is not None
    assert group_codes(frame.iloc[::-1], ["p", "d"]) is None  # not sorted
    assert group_codes(frame, ["d", "p"]) is None
    with_missing = frame.assign(p=frame["p"].astype("str").where(frame.index != 3, None))
    assert group_codes(coded(with_missing, ["p"]), ["p", "d"]) is None  # missing key
    assert group_codes(frame, ["p", "v"]) is None  # a float key


def test_coded_sorts_like_text_and_turns_back():
    text = pd.Series(["b", "B", None, "a", "Ä", "a10", "a9"], dtype="str", name="x")
    codes = coded(text.to_frame(), ["x"])["x"]
    # categories in the order sort_values puts the text in, missing last
    assert codes.sort_values().astype("str").tolist()[:-1] == text.sort_values().tolist()[:-1]
    pd.testing.assert_series_equal(text_as_str(codes.to_frame())["x"], text)
    pd.testing.assert_series_equal(text_as_str(codes.to_frame())["x"], codes.astype("str"))
    # an unsorted categorical from a loader gets sorted categories and keeps its values
    loaded = pd.Series(pd.Categorical(["b", "a", "c"], categories=["c", "b", "a"]), name="y")
    again = coded(loaded.to_frame(), ["y"])["y"]
    assert list(again.cat.categories) == ["a", "b", "c"]
    assert again.astype("str").tolist() == ["b", "a", "c"]


def test_quarter_flare_criterion_equal_their_plain_expressions():
    rng = np.random.default_rng(8)
    dates = pd.Series(
        pd.Timestamp("2025-11-20") + pd.to_timedelta(rng.integers(0, 400, 500), unit="D"),
        index=rng.permutation(500),
    )
    plain_quarter = dates.dt.year.astype("string") + "Q" + dates.dt.quarter.astype("string")
    pd.testing.assert_series_equal(quarter_label(dates), plain_quarter.astype("str"))

    pain = pd.Series(rng.choice([np.nan, 0.0, 2.5, 3.0, 3.0 + 1e-12, 4.0], 500))
    after = pd.Series(rng.choice([np.nan, 1.0, 3.0, 7.0], 500))
    over = (pain.notna() & (pain > 3 + 1e-9)) | (after.notna() & (after > 3 + 1e-9))
    known = pain.notna() & after.notna()
    plain_flare = pd.Series(np.select([over, known], [True, False], default=None), dtype="object")
    pd.testing.assert_series_equal(flare(pain, after), plain_flare.astype("boolean"))

    on_target = pd.Series(rng.integers(0, 5, 500))
    not_met = (on_target < 3 - 1e-9) | (pain > 3 + 1e-9) | (after > 3 + 1e-9)
    unknown = pain.isna() | after.isna()
    plain = np.select([not_met, unknown], ["not_met", "unknown"], default="met")
    pd.testing.assert_series_equal(criterion(on_target, pain, after), pd.Series(plain, dtype="str"))


@pytest.fixture(scope="module")
def shuffled_cohort():
    """About 10^5 set rows (700 patients), rows of every table shuffled, 5 % of the dose and
    pain cells emptied."""
    cohort = generate(700, seed=7)
    tables = {name: table.copy() for name, table in cohort.tables.items()}
    rng = np.random.default_rng(7)
    sets = tables["exercises"]
    for column in ("reps", "load_kg", "pain_during", "pain_24h", "hold_s", "prescribed_reps"):
        sets.loc[rng.random(len(sets)) < 0.05, column] = np.nan
    return shuffled_dataset(tables, rng)


def _plain(monkeypatch):
    """Switch the coded paths off: text keys stay text, every group-by is pandas' and every
    join a merge."""
    import hipdata.metrics.family as family
    import hipdata.metrics.sets as sets

    def identity(frame, columns):
        return frame

    monkeypatch.setattr(_common, "coded", identity)
    monkeypatch.setattr(sets, "coded", identity)
    monkeypatch.setattr(_common, "group_codes", lambda frame, keys: None)
    monkeypatch.setattr(family, "group_codes", lambda frame, keys: None)
    # and the one-to-one merges of aligned tables stay merges
    monkeypatch.setattr(family, "same_keys", lambda left, right, keys: False)


def test_compute_all_equals_plain_pandas_on_text_keys(shuffled_cohort, monkeypatch):
    assert len(shuffled_cohort.sets) > 90_000
    fast = compute_all(shuffled_cohort)
    with monkeypatch.context() as patch:
        _plain(patch)
        plain = compute_all(shuffled_cohort)
    assert list(fast) == list(plain)
    for name in fast:
        pd.testing.assert_frame_equal(fast[name], plain[name], check_exact=True, obj=name)
        text = [c for c in fast[name].columns if fast[name][c].dtype == "str"]
        assert "patient_id" in text  # the documented dtype, never a categorical


def test_compute_all_equal_with_categorical_ids(shuffled_cohort):
    as_category = dataclasses.replace(shuffled_cohort)
    for name in ("patients", "sets", "activity", "outcomes"):
        frame = getattr(as_category, name).copy()
        for column in ("patient_id", "clinic_id", "clinician_id", "exercise", "family"):
            if column in frame.columns:
                frame[column] = frame[column].astype("category")
        setattr(as_category, name, frame)
    fast = compute_all(shuffled_cohort)
    coded_in = compute_all(as_category)
    for name in fast:
        pd.testing.assert_frame_equal(coded_in[name], fast[name], check_exact=True, obj=name)
