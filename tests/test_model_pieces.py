"""The pain-trajectory model from per-patient pieces equals the model of all the sessions.

``hipdata metrics`` in chunks (hipdata/metrics/chunked.py) has each worker hand over its
patients' :func:`pain_trajectory_pieces`; the parent fits from them. Every number of the fit
must be the one-process fit's, bit for bit, whatever the parts: one patient per part, parts in
any order, a part without sessions, missing pain, unicode ids, ties in the pain scores.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from hipdata.analysis.trajectories import (
    fit_pain_trajectory,
    fit_pain_trajectory_pieces,
    pain_trajectory_pieces,
)


def _sessions(n_patients: int, seed: int, *, slope_sd: float = 0.2, ids=None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = ids or [f"P{i:04d}" for i in range(n_patients)]
    sizes = rng.integers(2, 9, len(ids))
    pid = np.repeat(ids, sizes)
    week = np.concatenate([np.sort(rng.integers(0, 12, n)) for n in sizes])
    codes = np.repeat(np.arange(len(ids)), sizes)
    pain = (
        4
        + rng.normal(0, 1.2, len(ids))[codes]
        + (-0.25 + rng.normal(0, slope_sd, len(ids))[codes]) * week
        + rng.normal(0, 1, len(pid))
    )
    pain = np.clip(np.round(pain), 0, 10)  # whole scores: many ties
    pain[rng.random(len(pid)) < 0.1] = np.nan
    return pd.DataFrame({"patient_id": pd.array(pid, dtype="str"), "week": week, "pain_24h": pain})


def _parts(sessions: pd.DataFrame, n: int, *, shuffle: bool = False) -> list[pd.DataFrame]:
    ids = np.sort(sessions["patient_id"].unique())
    groups = np.array_split(ids, n)
    parts = [sessions[sessions["patient_id"].isin(g)] for g in groups]
    if shuffle:
        parts = parts[::-1]
    return parts


def _assert_same_fit(one, two) -> None:
    assert_frame_equal(one.table(), two.table(), check_exact=True)
    assert one.warnings == two.warnings
    assert str(one.summary()) == str(two.summary())
    assert (one.n_obs, one.n_groups, one.n_dropped) == (two.n_obs, two.n_groups, two.n_dropped)
    assert one.reml_criterion == two.reml_criterion and one.method == two.method
    for a, b in zip(one.candidates.itertuples(), two.candidates.itertuples(), strict=True):
        assert a.reml_criterion == b.reml_criterion and a.singular == b.singular
        assert a.result.theta.tobytes() == b.result.theta.tobytes()
        assert_frame_equal(a.result.random_effects, b.result.random_effects, check_exact=True)
        assert_frame_equal(a.result.cov_params_fe, b.result.cov_params_fe, check_exact=True)


@pytest.mark.parametrize("random_slope", [True, False])
@pytest.mark.parametrize(
    "case",
    ["slopes", "no_slopes", "unicode", "one_patient_per_part", "shuffled_parts", "two_patients"],
)
def test_pieces_fit_equals_the_fit_of_all_sessions(case, random_slope):
    n, parts, shuffle = 120, 4, False
    sessions = _sessions(n, seed=7, slope_sd=0.0 if case == "no_slopes" else 0.25)
    if case == "unicode":
        ids = [f"Ü{i}-é ⅷ" for i in range(40)] + [f"z{i}" for i in range(40)]
        sessions = _sessions(80, seed=8, ids=ids)
    if case == "one_patient_per_part":
        sessions, parts = _sessions(12, seed=9), 12
    if case == "shuffled_parts":
        shuffle = True
    if case == "two_patients":
        sessions, parts = _sessions(2, seed=10), 2
    one = fit_pain_trajectory(sessions, random_slope=random_slope)
    pieces = [
        pain_trajectory_pieces(part, random_slope=random_slope)
        for part in _parts(sessions, parts, shuffle=shuffle)
    ]
    # the rows of the parts in the order given: with shuffled parts, compare with the fit of
    # the sessions in that order (the per-patient sums do not depend on it; the totals may)
    if shuffle:
        one = fit_pain_trajectory(
            pd.concat(_parts(sessions, parts, shuffle=True), ignore_index=True),
            random_slope=random_slope,
        )
    _assert_same_fit(one, fit_pain_trajectory_pieces(pieces, random_slope=random_slope))


def test_a_part_without_sessions_or_pain_changes_nothing():
    sessions = _sessions(30, seed=11)
    no_pain = sessions[sessions["patient_id"] == "P0000"].assign(pain_24h=np.nan)
    rest = sessions[sessions["patient_id"] != "P0000"]
    empty = sessions.iloc[:0]
    one = fit_pain_trajectory(pd.concat([no_pain, rest], ignore_index=True))
    pieces = [pain_trajectory_pieces(frame) for frame in (empty, no_pain, rest)]
    fit = fit_pain_trajectory_pieces(pieces)
    _assert_same_fit(one, fit)
    assert fit.n_dropped == one.n_dropped >= len(no_pain)


def test_pieces_errors_are_the_fit_errors():
    sessions = _sessions(5, seed=12)
    alone = sessions[sessions["patient_id"] == "P0001"]
    with pytest.raises(ValueError, match="at least two groups in column 'patient_id'; found 1"):
        fit_pain_trajectory(alone)
    with pytest.raises(ValueError, match="at least two groups in column 'patient_id'; found 1"):
        fit_pain_trajectory_pieces([pain_trajectory_pieces(alone)])
    # a patient split between two parts cannot be combined exactly: refused
    assert (sessions["patient_id"] == "P0000").sum() >= 2
    split = [sessions.iloc[:1], sessions.iloc[1:]]  # P0000's sessions in both parts
    with pytest.raises(ValueError, match="more than one part"):
        fit_pain_trajectory_pieces([pain_trajectory_pieces(part) for part in split])


def test_predict_works_from_pieces():
    sessions = _sessions(40, seed=13)
    one = fit_pain_trajectory(sessions)
    fit = fit_pain_trajectory_pieces([pain_trajectory_pieces(p) for p in _parts(sessions, 3)])
    new = pd.DataFrame({"week": [0.0, 4.0, 10.0]})
    assert fit.predict(new).tolist() == one.predict(new).tolist()
