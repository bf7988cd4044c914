"""The REML fit does not depend on BLAS threads, its cache, or which block code computes it.

Issue 11 (session 6): the sums over groups and rows were BLAS products (``x.T @ x``, ``y @ y``,
``cx.T @ wx``); OpenBLAS splits long dot products between its threads and adds the partial sums,
so the pain-trajectory model's last bits depended on the machine's cores (or
``OPENBLAS_NUM_THREADS``): the 10^7 cohort's estimates differed in every printed digit
(``pain_trajectory_model`` at full precision) between 1 and 2 threads. They are numpy's
pairwise sums now.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from hipdata.analysis import _reml
from hipdata.analysis.models import _design
from hipdata.analysis.trajectories import fit_pain_trajectory

FIT_SCRIPT = """
import json, sys
import numpy as np, pandas as pd
from hipdata.analysis.trajectories import fit_pain_trajectory
rng = np.random.default_rng(5)
n_pat, n_sess = 12000, 3
week = np.tile(np.arange(n_sess), n_pat).astype(float)
pain = (4 + rng.normal(0, 1.2, n_pat).repeat(n_sess) + (-0.3 + rng.normal(0, 0.2, n_pat)
        .repeat(n_sess)) * week + rng.normal(0, 1, n_pat * n_sess))
sessions = pd.DataFrame({"patient_id": np.repeat([f"P{i:05d}" for i in range(n_pat)], n_sess),
                         "week": week, "pain_24h": pain})
fit = fit_pain_trajectory(sessions)
table = fit.table()
print(json.dumps({"values": [float(v).hex() for v in table["estimate"]]
                  + [float(v).hex() for v in table["std_error"].dropna()]
                  + [float(fit.reml_criterion).hex()], "model": fit.selection}))
"""


def _fit_with_threads(threads: int) -> dict:
    env = {
        **os.environ,
        "OPENBLAS_NUM_THREADS": str(threads),
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
    }
    done = subprocess.run(
        [sys.executable, "-c", FIT_SCRIPT], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def test_fit_is_bit_identical_with_one_or_several_blas_threads():
    # 12 000 patients x 3 sessions: long enough sums (36 000 rows, 12 000 groups) that OpenBLAS
    # threads its dot products; before the fix the 1- and 4-thread estimates differed in their
    # last bits.
    one, several = _fit_with_threads(1), _fit_with_threads(4)
    assert one["model"] == several["model"]
    assert one["values"] == several["values"]


def _stats(seed: int = 3, n_groups: int = 40, q: int = 2):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 7, n_groups)
    codes = np.repeat(np.arange(n_groups), sizes)
    week = rng.integers(0, 12, len(codes)).astype(float)
    y = 3 + rng.normal(0, 1, n_groups)[codes] - 0.2 * week + rng.normal(0, 1, len(codes))
    x = np.column_stack([np.ones(len(codes)), week])
    z = x[:, :q]
    return _reml.sufficient_stats(y, x, z, codes, n_groups)


@pytest.mark.parametrize("q", [1, 2])
def test_cached_values_are_the_computed_values(q):
    theta = np.array([0.7, -0.1, 0.3])[: q * (q + 1) // 2]
    cached = _stats(q=q)
    first = _reml.deviance_and_gradient(cached, theta)
    grad = first[1]
    grad[:] = 99.0  # a caller that writes into the gradient does not change the cache
    again = _reml.deviance_and_gradient(cached, theta)
    fresh = _reml.deviance_and_gradient(_stats(q=q), theta)
    assert again[0] == fresh[0] and again[1].tobytes() == fresh[1].tobytes()
    # the criterion alone, served from the gradient's computation, is the one computed alone
    assert _reml.deviance(cached, theta) == _reml.deviance(_stats(q=q), theta) == fresh[0]
    assert _reml.deviance(cached, theta + 0.25) == _reml.deviance(_stats(q=q), theta + 0.25)


@pytest.mark.parametrize("q", [1, 2])
def test_block_code_agrees_with_the_general_code_and_the_dense_formula(q, monkeypatch):
    stats = _stats(q=q)
    theta = np.array([0.7, -0.1, 0.3])[: q * (q + 1) // 2]
    fast = _reml._solve(stats, theta, full=True)
    fast_grad = _reml._solve(stats, theta, full=False, gradient=True)[1]
    monkeypatch.setitem(_reml.__dict__, "_blocks_q1", _reml._blocks_general)
    monkeypatch.setitem(_reml.__dict__, "_blocks_q2", _reml._blocks_general)
    general = _reml._solve(_stats(q=q), theta, full=True)
    general_grad = _reml._solve(_stats(q=q), theta, full=False, gradient=True)[1]
    assert fast.deviance == pytest.approx(general.deviance, rel=1e-13)
    np.testing.assert_allclose(fast.beta, general.beta, rtol=1e-12)
    np.testing.assert_allclose(fast_grad, general_grad, rtol=1e-9, atol=1e-10)
    # the dense formula (Bates et al. 2015, eq. 34-36): V = Z Lambda Lambda' Z' + I per group
    rng = np.random.default_rng(3)
    sizes = rng.integers(1, 7, 40)
    codes = np.repeat(np.arange(40), sizes)
    week = rng.integers(0, 12, len(codes)).astype(float)
    y = 3 + rng.normal(0, 1, 40)[codes] - 0.2 * week + rng.normal(0, 1, len(codes))
    x = np.column_stack([np.ones(len(codes)), week])
    z = x[:, :q]
    lam = _reml.lambda_of(theta, q)
    v = np.eye(len(y))
    for g in range(40):
        rows = np.flatnonzero(codes == g)
        v[np.ix_(rows, rows)] += z[rows] @ lam @ lam.T @ z[rows].T
    v_inv = np.linalg.inv(v)
    xvx = x.T @ v_inv @ x
    beta = np.linalg.solve(xvx, x.T @ v_inv @ y)
    resid = y - x @ beta
    n, p = x.shape
    r2 = resid @ v_inv @ resid
    dense = (
        np.linalg.slogdet(v)[1]
        + np.linalg.slogdet(xvx)[1]
        + (n - p) * (1 + np.log(2 * np.pi * r2 / (n - p)))
    )
    assert fast.deviance == pytest.approx(dense, rel=1e-11)
    np.testing.assert_allclose(fast.beta, beta, rtol=1e-10)


def test_one_group_two_groups_and_unicode_ids_fit_as_before():
    sessions = pd.DataFrame(
        {
            "patient_id": ["Ünï-1"] * 4 + ["Zoë 2"] * 3 + ["ⅷ"] * 2,
            "week": [0, 1, 2, 3, 0, 1, 1, 0, 5],
            "pain_24h": [5.0, 4.0, np.nan, 3.0, 6.0, 6.0, 5.0, 2.0, 2.0],
        }
    )
    fit = fit_pain_trajectory(sessions)
    assert fit.n_obs == 8 and fit.n_dropped == 1 and fit.n_groups == 3
    design = _design(sessions.astype({"week": float}), "pain_24h ~ week", "~week", "patient_id")
    assert list(design.levels) == sorted({"Ünï-1", "Zoë 2", "ⅷ"})
    with pytest.raises(ValueError, match="at least two groups"):
        fit_pain_trajectory(sessions[sessions["patient_id"] == "ⅷ"])
