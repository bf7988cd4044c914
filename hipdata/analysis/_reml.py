"""Exact profiled REML for a linear mixed model with one grouping factor (lme4's formulation).

The model is ``y = X beta + Z b + e`` with, per group ``i``, ``b_i ~ N(0, sigma^2 Lambda Lambda')``
and ``e ~ N(0, sigma^2 I)``, where ``Lambda`` is the ``q x q`` lower-triangular *relative*
covariance factor whose elements are the parameter vector ``theta`` (column-major lower triangle,
as lme4 orders it; diagonal elements bounded below by 0). Bates, Maechler, Bolker & Walker (2015),
"Fitting linear mixed-effects models using lme4", J Stat Softw 67(1), section 3, give the profiled
REML criterion

    -2 l_R(theta) = log|L_theta|^2 + log|R_X|^2 + (n - p) (1 + log(2 pi r^2(theta) / (n - p)))

with ``L_theta L_theta' = Lambda' Z'Z Lambda + I``, ``R_X' R_X`` the Schur complement of the
fixed effects and ``r^2`` the penalised residual sum of squares. With one grouping factor
``L_theta`` is block diagonal, so every term is a sum over groups of ``q x q`` (q = 1 or 2 in
practice) computations on the per-group sufficient statistics ``Z_i'Z_i, Z_i'X_i, Z_i'y_i`` and
the totals ``X'X, X'y, y'y``. They are built once with ``np.bincount`` and the criterion is then
evaluated for all groups at once, so the cost of one evaluation is linear in the number of groups
and independent of the number of observations. Every sum over groups or rows is numpy's own
(pairwise) sum, never a BLAS product, so the fit does not depend on the number of threads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LOG_2PI = float(np.log(2 * np.pi))
#: scipy methods given the analytic gradient (the others are derivative-free).
GRADIENT_METHODS = ("L-BFGS-B", "TNC")
#: scipy methods that honour bounds (the diagonal of Lambda must stay >= 0).
BOUNDED_METHODS = ("L-BFGS-B", "TNC", "Nelder-Mead", "Powell")
#: Values tried for a diagonal element of theta that a gradient method left on its bound of 0.
PROBE_STEPS = (0.01, 0.1, 0.5, 1.0)


@dataclass
class SufficientStats:
    """Per-group cross-products of one grouping factor's design (see the module docstring)."""

    ztz: np.ndarray  # (q, q, G)
    ztx: np.ndarray  # (q, G, p)
    zty: np.ndarray  # (q, G)
    xtx: np.ndarray  # (p, p)
    xty: np.ndarray  # (p,)
    yty: float
    n_obs: int
    #: Criterion values (and gradients) already computed, by theta's bytes (see :func:`deviance`).
    cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def ztx_columns(self) -> list[list[np.ndarray]]:
        """``ztx[a, :, b]`` as contiguous 1-D arrays, ``[a][b]`` (built once).

        The ``q x G x p`` layout puts the ``p`` (2) fixed-effect columns innermost, which makes
        numpy's elementwise loops run over 2 elements at a time; the per-group steps work on
        these columns instead.
        """
        columns = self.cache.get("ztx_columns")
        if columns is None:
            columns = [
                [np.ascontiguousarray(self.ztx[a, :, b]) for b in range(self.p)]
                for a in range(self.q)
            ]
            self.cache["ztx_columns"] = columns
        return columns

    @property
    def q(self) -> int:
        return self.ztz.shape[0]

    @property
    def p(self) -> int:
        return self.xtx.shape[0]

    @property
    def n_groups(self) -> int:
        return self.ztz.shape[2]


def sufficient_stats(
    y: np.ndarray, x: np.ndarray, z: np.ndarray, codes: np.ndarray, n_groups: int
) -> SufficientStats:
    """Per-group sums of products, vectorised (one ``bincount`` per pair of columns), and the
    totals over all rows (:func:`totals`)."""
    ztz, ztx, zty = group_stats(y, x, z, codes, n_groups)
    xtx, xty, yty = totals(y, x)
    return SufficientStats(ztz=ztz, ztx=ztx, zty=zty, xtx=xtx, xty=xty, yty=yty, n_obs=len(y))


def group_stats(y: np.ndarray, x: np.ndarray, z: np.ndarray, codes: np.ndarray, n_groups: int):
    """``Z_i'Z_i`` (q, q, G), ``Z_i'X_i`` (q, G, p) and ``Z_i'y_i`` (q, G) of every group.

    Each is ``np.bincount`` of the rows' products, which adds a group's rows one after the
    other in row order: a group's sums depend on its own rows only, so the statistics of groups
    computed in separate pieces (the chunks of ``hipdata metrics``) are those of one run.
    """
    q, p = z.shape[1], x.shape[1]

    def group_sum(values: np.ndarray) -> np.ndarray:
        return np.bincount(codes, weights=values, minlength=n_groups)

    ztz = np.empty((q, q, n_groups))
    for a in range(q):
        for b in range(a, q):
            ztz[a, b] = ztz[b, a] = group_sum(z[:, a] * z[:, b])
    ztx = np.empty((q, n_groups, p))
    for a in range(q):
        for b in range(p):
            ztx[a, :, b] = group_sum(z[:, a] * x[:, b])
    zty = np.stack([group_sum(z[:, a] * y) for a in range(q)])
    return ztz, ztx, zty


def totals(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """``X'X``, ``X'y`` and ``y'y`` over all rows, by numpy's (pairwise) sums of products."""
    columns = [x[:, b] for b in range(x.shape[1])]
    return _cross(columns, columns), _cross_vector(columns, y), _dot(y, y)


# The sums over groups (and rows) below are numpy's pairwise sums of elementwise products, not
# BLAS products: OpenBLAS splits long dot products between its threads and adds the partial
# sums, so their last bits depended on the number of threads (the machine's cores or
# OMP_NUM_THREADS), and its idle threads spun on the other core.
def _dot(left: np.ndarray, right: np.ndarray) -> float:
    return float(np.sum(left * right))


def _cross(left: list[np.ndarray], right: list[np.ndarray]) -> np.ndarray:
    """``L'R`` of two matrices given as lists of columns."""
    return np.array([[_dot(a, b) for b in right] for a in left]).reshape(len(left), len(right))


def _cross_vector(columns: list[np.ndarray], vector: np.ndarray) -> np.ndarray:
    """``C'v`` of a matrix given as a list of columns."""
    return np.array([_dot(column, vector) for column in columns])


def _times(columns: list[np.ndarray], vector: np.ndarray) -> np.ndarray:
    """``C v`` of a matrix given as a list of columns, row by row."""
    return sum(column * vector[b] for b, column in enumerate(columns))


def theta_index(q: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of each element of ``theta`` in ``Lambda`` (lme4's column-major order)."""
    rows, cols = [], []
    for col in range(q):
        for row in range(col, q):
            rows.append(row)
            cols.append(col)
    return np.array(rows), np.array(cols)


def theta_lower_bounds(q: int) -> np.ndarray:
    """0 for the diagonal elements of ``Lambda``, minus infinity for the others (as lme4)."""
    rows, cols = theta_index(q)
    return np.where(rows == cols, 0.0, -np.inf)


def lambda_of(theta: np.ndarray, q: int) -> np.ndarray:
    rows, cols = theta_index(q)
    factor = np.zeros((q, q))
    factor[rows, cols] = theta
    return factor


@dataclass
class Solution:
    """Everything the profiled criterion determines at one ``theta``."""

    theta: np.ndarray
    deviance: float  # -2 REML log-likelihood (lme4's REML criterion)
    beta: np.ndarray
    beta_cov_unscaled: np.ndarray  # (R_X' R_X)^-1
    sigma2: float
    lam: np.ndarray
    u: np.ndarray  # (G, q) spherical random effects; b_i = Lambda u_i


def _solve(stats: SufficientStats, theta: np.ndarray, *, full: bool, gradient: bool = False):
    q, p = stats.q, stats.p
    lam = lambda_of(theta, q)
    blocks = {1: _blocks_q1, 2: _blocks_q2}.get(q, _blocks_general)
    cx, cy, logdet_m, wx, wy, inverse = blocks(stats, lam)
    if not np.isfinite(logdet_m):
        return None
    # Schur complement of the fixed effects and the profiled right-hand side, summed over groups
    schur = stats.xtx - sum(_cross(cx[a], wx[a]) for a in range(q))
    rhs = stats.xty - sum(_cross_vector(cx[a], wy[a]) for a in range(q))
    r0 = stats.yty - sum(_dot(cy[a], wy[a]) for a in range(q))
    try:
        chol = np.linalg.cholesky(schur)
    except np.linalg.LinAlgError:
        return None
    beta = np.linalg.solve(schur, rhs)
    r2 = r0 - _dot(rhs, beta)
    dof = stats.n_obs - p
    if not r2 > 0 or dof <= 0:
        return None
    deviance = (
        logdet_m + 2 * float(np.sum(np.log(np.diag(chol)))) + dof * (1 + LOG_2PI + np.log(r2 / dof))
    )
    if not (full or gradient):
        return deviance
    u = [wy[a] - _times(wx[a], beta) for a in range(q)]  # spherical random effects per group
    if gradient:
        return deviance, _gradient(stats, lam, wx, u, inverse, schur, beta, r2, dof)
    return Solution(
        theta=np.asarray(theta, dtype=float).copy(),
        deviance=float(deviance),
        beta=beta,
        beta_cov_unscaled=np.linalg.inv(schur),
        sigma2=r2 / dof,
        lam=lam,
        u=np.stack(u, axis=1),
    )


def _gradient(stats, lam, wx, u, inverse, schur, beta, r2, dof) -> np.ndarray:
    """Analytic gradient of the profiled criterion in theta.

    With ``Lambda_k = dLambda/dtheta_k = E_rc`` (a 1 at row r, column c), ``S_i = Z_i'Z_i``,
    ``W_i = M_i^-1 Lambda' Z_i'X_i`` and ``A`` the Schur complement:
    ``d log|M_i| = 2 (M_i^-1 Lambda' S_i)[c, r]``;
    ``d log|A| = -2 sum_i H_i[r] A^-1 W_i[c]'`` with ``H_i = Z_i'X_i - S_i Lambda W_i``;
    ``d r^2 = -2 sum_i res_i[r] u_i[c]`` with ``res_i = Z_i'(y_i - X_i beta - Z_i Lambda u_i)``
    (the envelope theorem: beta and u minimise the penalised residual sum of squares).
    """
    q = lam.shape[0]
    s = stats.ztz
    # (S_i Lambda)[r, j]
    sl = [[sum(s[r, m] * lam[m, j] for m in range(q)) for j in range(q)] for r in range(q)]
    a_inv = np.linalg.inv(schur)
    rows, cols = theta_index(q)
    grad = np.empty(len(rows))
    for k, (r, c) in enumerate(zip(rows, cols, strict=True)):
        d_logdet_m = 2 * float(np.sum(sum(inverse[c][m] * sl[r][m] for m in range(q))))
        h_r = [
            column - sum(sl[r][j] * wx[j][b] for j in range(q))
            for b, column in enumerate(stats.ztx_columns[r])
        ]
        d_logdet_a = -2 * float(np.sum(a_inv * _cross(h_r, wx[c])))
        res_r = (
            stats.zty[r]
            - _times(stats.ztx_columns[r], beta)
            - sum(sl[r][j] * u[j] for j in range(q))
        )
        d_r2 = -2 * _dot(res_r, u[c])
        grad[k] = d_logdet_m + d_logdet_a + dof * d_r2 / r2
    return grad


# Per group: M_i = Lambda' Z_i'Z_i Lambda + I; cx_i = Lambda' Z_i'X_i, cy_i = Lambda' Z_i'y_i;
# wx_i = M_i^-1 cx_i, wy_i = M_i^-1 cy_i; logdet_m = sum_i log|M_i|. Arrays are indexed
# [random-effect row][fixed-effect column] (cx, wx) or [random-effect row] (cy, wy), each a
# vector over the groups, so that each step is one vectorised operation over all groups.
def _blocks_q1(stats: SufficientStats, lam: np.ndarray):
    l11 = lam[0, 0]
    det = l11 * l11 * stats.ztz[0, 0] + 1.0
    cx = [[l11 * column for column in stats.ztx_columns[0]]]
    cy = [l11 * stats.zty[0]]
    wx = [[column / det for column in cx[0]]]
    wy = [cy[0] / det]
    return cx, cy, float(np.sum(np.log(det))), wx, wy, [[1.0 / det]]


def _blocks_q2(stats: SufficientStats, lam: np.ndarray):
    l11, l21, l22 = lam[0, 0], lam[1, 0], lam[1, 1]
    s00, s01, s11 = stats.ztz[0, 0], stats.ztz[0, 1], stats.ztz[1, 1]
    b00 = s00 * l11 + s01 * l21
    b10 = s01 * l11 + s11 * l21
    m00 = l11 * b00 + l21 * b10 + 1.0
    m01 = (l11 * s01 + l21 * s11) * l22
    m11 = l22 * l22 * s11 + 1.0
    det = m00 * m11 - m01 * m01
    if np.any(det <= 0):
        return None, None, np.inf, None, None, None
    i00, i01, i11 = m11 / det, -m01 / det, m00 / det
    z0, z1 = stats.ztx_columns
    cx0 = [l11 * a + l21 * b for a, b in zip(z0, z1, strict=True)]
    cx1 = [l22 * b for b in z1]
    wx0 = [i00 * a + i01 * b for a, b in zip(cx0, cx1, strict=True)]
    wx1 = [i01 * a + i11 * b for a, b in zip(cx0, cx1, strict=True)]
    cy = [l11 * stats.zty[0] + l21 * stats.zty[1], l22 * stats.zty[1]]
    wy = [i00 * cy[0] + i01 * cy[1], i01 * cy[0] + i11 * cy[1]]
    return [cx0, cx1], cy, float(np.sum(np.log(det))), [wx0, wx1], wy, [[i00, i01], [i01, i11]]


def _blocks_general(stats: SufficientStats, lam: np.ndarray):
    q = lam.shape[0]
    ztz = np.moveaxis(stats.ztz, 2, 0)  # (G, q, q)
    m = lam.T @ ztz @ lam + np.eye(q)
    sign, logdet = np.linalg.slogdet(m)
    if np.any(sign <= 0):
        return None, None, np.inf, None, None, None
    inv = np.linalg.inv(m)
    cx_g = lam.T @ np.moveaxis(stats.ztx, 0, 1)  # (G, q, p)
    cy_g = stats.zty.T @ lam  # (G, q)
    wx_g = inv @ cx_g
    wy_g = (inv @ cy_g[:, :, None])[:, :, 0]
    p = stats.p
    cx = [[cx_g[:, a, b] for b in range(p)] for a in range(q)]
    cy = [cy_g[:, a] for a in range(q)]
    wx = [[wx_g[:, a, b] for b in range(p)] for a in range(q)]
    wy = [wy_g[:, a] for a in range(q)]
    inverse = [[inv[:, a, b] for b in range(q)] for a in range(q)]
    return cx, cy, float(np.sum(logdet)), wx, wy, inverse


def deviance(stats: SufficientStats, theta: np.ndarray) -> float:
    """The profiled REML criterion at ``theta`` (``inf`` where it is not defined).

    The optimisers come back to points already evaluated (a run's start and end, the probes, the
    next optimiser's start); each value is computed once per ``stats`` and kept in its
    :attr:`SufficientStats.cache` (the computation is deterministic: the same bits either way).
    """
    theta = np.asarray(theta, dtype=float)
    key = theta.tobytes()
    cached = stats.cache.get(("deviance", key))
    if cached is None:
        with_gradient = stats.cache.get(("gradient", key))
        if with_gradient is not None:
            return with_gradient[0]  # the same computation, before the gradient's
        value = _solve(stats, theta, full=False)
        cached = np.inf if value is None or not np.isfinite(value) else float(value)
        stats.cache[("deviance", key)] = cached
    return cached


def deviance_and_gradient(stats: SufficientStats, theta: np.ndarray):
    """The criterion and its analytic gradient at ``theta`` (``inf`` and zeros where undefined;
    computed once per point, as :func:`deviance`)."""
    theta = np.asarray(theta, dtype=float)
    key = theta.tobytes()
    cached = stats.cache.get(("gradient", key))
    if cached is None:
        value = _solve(stats, theta, full=False, gradient=True)
        if value is None or not np.isfinite(value[0]):
            cached = (np.inf, np.zeros_like(theta))
        else:
            cached = (float(value[0]), value[1])
        stats.cache[("gradient", key)] = cached
    return cached[0], cached[1].copy()


def solution(stats: SufficientStats, theta: np.ndarray) -> Solution:
    """Fixed effects, variance components and random effects at ``theta``."""
    result = _solve(stats, np.asarray(theta, dtype=float), full=True)
    if result is None:
        raise ValueError("the REML criterion is not defined at this theta")
    return result


@dataclass
class Run:
    """One optimiser run from one start."""

    method: str
    start: np.ndarray
    theta: np.ndarray
    deviance: float
    success: bool
    evaluations: int


def minimise(
    stats: SufficientStats,
    starts: list[np.ndarray],
    methods: tuple[str, ...],
    *,
    polish: bool = False,
) -> list[Run]:
    """Minimise the criterion over ``theta`` with every method from every start.

    Diagonal elements of ``Lambda`` are bounded below by 0 (``L-BFGS-B``, ``Powell`` and
    ``Nelder-Mead`` take the bounds). With ``polish``, the best point found is refined once more
    by each method from there. Every run is returned; the caller keeps the lowest criterion.
    """
    from scipy import optimize  # here: the statistics alone (a worker's) need no scipy

    lower = theta_lower_bounds(stats.q)
    bounds = optimize.Bounds(lower, np.full_like(lower, np.inf))

    def objective(theta):
        return deviance(stats, theta)

    runs: list[Run] = []

    def run(method: str, start: np.ndarray, depth: int = 0) -> None:
        start = np.maximum(np.asarray(start, dtype=float), lower)
        value = objective(start)
        if not np.isfinite(value):
            return
        # relative tolerances: the criterion grows with n, its float precision with it
        options = {
            "L-BFGS-B": {"ftol": 1e-13, "gtol": 1e-7, "maxiter": 2000},
            "Nelder-Mead": {"xatol": 1e-7, "fatol": 1e-11 * max(1.0, abs(value)), "maxiter": 4000},
            "Powell": {"xtol": 1e-7, "ftol": 1e-12, "maxiter": 4000},
        }
        if method in GRADIENT_METHODS:  # the analytic gradient
            found = optimize.minimize(
                lambda theta: deviance_and_gradient(stats, theta),
                start,
                jac=True,
                method=method,
                bounds=bounds,
                options=options.get(method, {}),
            )
        else:
            found = optimize.minimize(
                objective, start, method=method, bounds=bounds, options=options.get(method, {})
            )
        theta = np.maximum(np.asarray(found.x, dtype=float), lower)
        value = objective(theta)
        runs.append(Run(method, start, theta, value, bool(found.success), int(found.nfev)))
        if method in GRADIENT_METHODS and depth < 3:
            # The criterion is even in a diagonal element of theta around 0, so its gradient
            # there is 0 and a gradient method can stop on the bound although the criterion falls
            # further out; probe along each such element and restart from a lower point.
            probes = []
            for j in np.flatnonzero(np.isfinite(lower) & (theta <= lower)):
                for step in PROBE_STEPS:
                    probe = theta.copy()
                    probe[j] = step
                    probes.append((objective(probe), probe))
            better = [pair for pair in probes if pair[0] < value - 1e-9 * max(1.0, abs(value))]
            if better:
                run(method, min(better, key=lambda pair: pair[0])[1], depth + 1)

    for start in starts:
        for method in methods:
            run(method, start)
    if polish and runs:
        best = min(runs, key=lambda r: r.deviance)
        for method in methods:
            run(method, best.theta)
    return runs
