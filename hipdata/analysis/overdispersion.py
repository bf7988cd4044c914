"""Overdispersion of units around a funnel plot's target (Spiegelhalter 2005, section 5).

Units (clinics, clinicians) often vary more than chance allows. :func:`overdispersion` estimates
the multiplicative factor phi and the additive between-unit variance tau2 from Winsorised
z-scores and tests for it; :func:`hipdata.analysis.funnel.funnel_table` widens its limits with
them when the test finds it.

Reference: Spiegelhalter DJ. Handling over-dispersion of performance indicators. *Quality and
Safety in Health Care* 2005; 14:347-351.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["OVERDISPERSION_TEST_LEVEL", "WINSOR_SHARE", "Overdispersion", "overdispersion"]

#: Share of z-scores pulled in at each end before estimating overdispersion (Spiegelhalter 2005,
#: section 5.1: a 10 % Winsorised estimate).
WINSOR_SHARE = 0.1
#: Level of the chi-squared test of no overdispersion (k phi against chi2 on k - 1 df).
OVERDISPERSION_TEST_LEVEL = 0.05


def _as_denominators(n) -> np.ndarray:
    n = np.atleast_1d(np.asarray(n, dtype=float))
    finite = n[np.isfinite(n)]
    if (finite < 0).any() or (finite != np.round(finite)).any():
        bad = finite[(finite < 0) | (finite != np.round(finite))][0]
        raise ValueError(
            f"denominators must be whole numbers >= 0 (a count of patients or sessions), got {bad}"
        )
    return n


@dataclass(frozen=True)
class Overdispersion:
    """Overdispersion of units around a target (Spiegelhalter 2005, section 5).

    Attributes
    ----------
    phi : float
        Overdispersion factor: mean of the squared Winsorised z-scores.
    tau2 : float
        Additive between-unit variance on the z-scores' scale (0 when ``k phi <= k - 1``).
    n_units : int
        Number of units with a z-score (``k``).
    winsor : float
        Share of z-scores Winsorised at each end.
    scale : str
        ``"normal"`` (z on the indicator's own scale) or ``"arcsine"`` (proportions on the
        variance-stabilised ``asin(sqrt(p))`` scale).
    p_value : float
        Test of no overdispersion: ``P(chi2(k - 1) >= k phi)``.
    present : bool
        Overdispersion found: ``p_value < test_level``.
    """

    phi: float
    tau2: float
    n_units: int
    winsor: float
    scale: str = "normal"
    p_value: float = float("nan")
    present: bool = False

    @property
    def inflation(self) -> float:
        """Factor applied to the limits' distance from the target: sqrt(phi) when phi > 1."""
        return float(np.sqrt(self.phi)) if self.phi > 1 else 1.0


def overdispersion(
    observed,
    target,
    n,
    *,
    sd: float | None = None,
    winsor: float = WINSOR_SHARE,
    scale: str = "normal",
    design_effect=1.0,
    test_level: float = OVERDISPERSION_TEST_LEVEL,
) -> Overdispersion:
    """Estimate and test overdispersion from Winsorised z-scores (Spiegelhalter 2005, section 5).

    Each unit's z-score is ``z_i = (y_i - t) / s_i``:

    - ``scale="normal"``: ``s_i = sqrt(deff_i t (1 - t) / n_i)`` for proportions, or
      ``sd sqrt(deff_i / n_i)`` for means when ``sd`` is given;
    - ``scale="arcsine"`` (proportions): ``y_i = asin(sqrt(p_i))``, ``t = asin(sqrt(p0))``,
      ``s_i = sqrt(deff_i / (4 n_i))`` (the variance-stabilised scale FunnelPlotR uses).

    The z-scores below their ``winsor`` quantile are raised to it and those above the
    ``1 - winsor`` quantile lowered to it (quantiles by linear interpolation, R's type 7). Then

    - ``phi = sum(z_w^2) / k`` over the ``k`` units (multiplicative model);
    - ``tau2 = (k phi - (k - 1)) / (sum(w) - sum(w^2) / sum(w))`` with ``w_i = 1 / s_i^2``,
      0 when ``k phi <= k - 1`` (additive random-effects model);
    - the test of no overdispersion compares ``k phi`` with a chi-squared distribution on
      ``k - 1`` degrees of freedom (the target is estimated from the units): ``present`` when
      ``P(chi2(k - 1) >= k phi) < test_level``.

    Units with ``n`` = 0 or a missing value are ignored.

    Parameters
    ----------
    observed : array-like
        Each unit's indicator (a proportion, or a mean when ``sd`` is given).
    target : float or array-like
        Target proportion or mean.
    n : array-like
        Each unit's denominator.
    sd : float, optional
        Standard deviation of one observation, for means.
    winsor : float
        Share Winsorised at each end, in [0, 0.5).
    scale : {"normal", "arcsine"}
        Scale of the z-scores.
    design_effect : float or array-like
        Variance inflation of each unit's records for clustering (1: independent records).
    test_level : float
        Level of the overdispersion test.

    Returns
    -------
    Overdispersion

    Examples
    --------
    >>> result = overdispersion([0.6, 0.4, 0.5], 0.5, [100, 100, 100], winsor=0.0)
    >>> round(result.phi, 6)  # z = 2, -2, 0 -> (4 + 4 + 0) / 3
    2.666667
    """
    if not 0 <= winsor < 0.5:
        raise ValueError(f"winsor must be in [0, 0.5), got {winsor}")
    if scale not in ("normal", "arcsine"):
        raise ValueError(f"scale must be 'normal' or 'arcsine', got {scale!r}")
    observed, target, n, deff = np.broadcast_arrays(
        np.asarray(observed, dtype=float),
        np.asarray(target, dtype=float),
        _as_denominators(n),
        np.asarray(design_effect, dtype=float),
    )
    n_valid = np.where(n > 0, n, np.nan)
    if scale == "arcsine":
        with np.errstate(invalid="ignore"):
            observed = np.arcsin(np.sqrt(observed))
            target = np.arcsin(np.sqrt(target))
        variance = deff / (4 * n_valid)
    elif sd is None:
        variance = deff * target * (1 - target) / n_valid
    else:
        variance = deff * sd**2 / n_valid
    standard_error = np.sqrt(variance)
    usable = np.isfinite(observed) & np.isfinite(standard_error) & (standard_error > 0)
    k = int(usable.sum())
    if k == 0:
        return Overdispersion(phi=np.nan, tau2=np.nan, n_units=0, winsor=winsor, scale=scale)
    z = (observed[usable] - target[usable]) / standard_error[usable]
    low, high = np.quantile(z, [winsor, 1 - winsor])
    z_winsorised = np.clip(z, low, high)
    phi = float(np.sum(z_winsorised**2) / k)
    weight = 1 / variance[usable]
    tau2_denominator = weight.sum() - (weight**2).sum() / weight.sum()
    if k * phi > k - 1 and tau2_denominator > 0:
        tau2 = float((k * phi - (k - 1)) / tau2_denominator)
    else:
        tau2 = 0.0
    p_value = float(stats.chi2.sf(k * phi, k - 1)) if k > 1 else float("nan")
    return Overdispersion(
        phi=phi,
        tau2=tau2,
        n_units=k,
        winsor=winsor,
        scale=scale,
        p_value=p_value,
        present=bool(p_value < test_level),
    )
