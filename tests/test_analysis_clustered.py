"""Patient-clustered ratio estimator, ICC and design effect (hipdata.analysis.clustered).

The reference values are computed by hand below; R's ``survey`` package (not installed here)
gives the same with ``svyratio(~y, ~x, svydesign(ids = ~patient, data = d))``, whose variance is
the with-replacement linearisation ``m / (m - 1) * sum (y_i - R x_i)^2 / X^2``. In base R:
``R <- sum(y) / sum(x); m <- length(x); sqrt(m / (m - 1) * sum((y - R * x)^2) / sum(x)^2)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hipdata.analysis.clustered import (
    cluster_ratio,
    clustered_mean,
    design_effect,
    icc_binary,
)
from hipdata.analysis.intervals import t_interval
from hipdata.analysis.trajectories import weekly_pain


def example_totals() -> pd.DataFrame:
    # Five patients' sessions within the pain threshold (y) out of sessions with both pains (x).
    return pd.DataFrame(
        {
            "patient": ["p1", "p2", "p3", "p4", "p5"],
            "y": [9, 2, 5, 0, 6],
            "x": [10, 8, 5, 3, 6],
        }
    )


def test_cluster_ratio_by_hand():
    # R = 22 / 32 = 0.6875. Residuals y - R x: 9 - 6.875 = 2.125, 2 - 5.5 = -3.5,
    # 5 - 3.4375 = 1.5625, 0 - 2.0625 = -2.0625, 6 - 4.125 = 1.875.
    # Sum of squares = 4.515625 + 12.25 + 2.44140625 + 4.25390625 + 3.515625 = 26.9765625.
    # var = 5/4 * 26.9765625 / 32^2 = 0.032930374 -> se = 0.181467.
    # t(0.975, 4) = 2.776445 -> 0.6875 +/- 0.503834 = [0.183666, 1.191334] -> clipped at 1.
    # Binomial variance 0.6875 * 0.3125 / 32 = 0.0067138672 -> design effect 4.904830.
    # R base (see module docstring): R = 0.6875, se = 0.1814672812, lower = 0.1836660554.
    table = cluster_ratio(example_totals(), numerator="y", denominator="x")
    row = table.iloc[0]
    assert row["clusters"] == 5
    assert row["estimate"] == pytest.approx(0.6875)
    assert row["se"] == pytest.approx(0.181467, abs=1e-6)
    assert row["ci_low"] == pytest.approx(0.183666, abs=1e-6)
    assert row["ci_high"] == 1.0
    assert row["design_effect"] == pytest.approx(4.904830, abs=1e-6)


def test_cluster_ratio_by_group_and_single_cluster():
    totals = example_totals().assign(clinic=["A", "A", "B", "B", "C"])
    table = cluster_ratio(totals, numerator="y", denominator="x", by="clinic")
    assert list(table["clinic"]) == ["A", "B", "C"]
    # A: R = 11/18; residuals 9 - 10*11/18 = 2.888889, 2 - 8*11/18 = -2.888889;
    # var = 2/1 * 2 * 8.345679 / 324 = 0.103033 -> se 0.320988
    assert table["se"].iloc[0] == pytest.approx(0.320988, abs=1e-6)
    assert np.isnan(table["se"].iloc[2])  # one patient: no clustered variance


def test_clustered_mean_without_clustering_is_the_t_interval():
    rng = np.random.default_rng(3)
    values = rng.normal(4, 2, size=25)
    records = pd.DataFrame({"id": np.arange(25), "pain": values})
    table = clustered_mean(records, "pain", cluster="id")
    low, high = t_interval([values.mean()], [values.std(ddof=1)], [25])
    assert table["ci_low"].iloc[0] == pytest.approx(low[0])
    assert table["ci_high"].iloc[0] == pytest.approx(high[0])
    assert table["design_effect"].iloc[0] == pytest.approx(1.0)


def test_weekly_pain_clusters_sessions_of_one_patient():
    # Patient a has three sessions in week 0 at pain 6, b and c one each at 2 and 4.
    sessions = pd.DataFrame(
        {
            "patient_id": ["a", "a", "a", "b", "c"],
            "week": 0,
            "max_pain_during": [6.0, 6.0, 6.0, 2.0, 4.0],
            "pain_24h": [6.0, 6.0, 6.0, 2.0, 4.0],
        }
    )
    table = weekly_pain(sessions, measures=["pain_24h"])
    row = table.iloc[0]
    # mean 24 / 5 = 4.8; residuals: a 18 - 14.4 = 3.6, b 2 - 4.8 = -2.8, c 4 - 4.8 = -0.8;
    # var = 3/2 * (12.96 + 7.84 + 0.64) / 25 = 1.2864 -> se 1.134196; t(0.975, 2) = 4.302653
    t = stats.t.ppf(0.975, 2)
    assert row["n"] == 5
    assert row["mean"] == pytest.approx(4.8)
    assert row["ci_low"] == pytest.approx(4.8 - t * 1.134196, abs=1e-5)
    # wider than treating the five sessions as independent (sd 1.788854, t(0.975, 4))
    naive = stats.t.ppf(0.975, 4) * 1.788854 / np.sqrt(5)
    assert row["ci_high"] - row["mean"] > naive


def test_icc_and_design_effect_by_hand():
    # p_i = 1, 0, 0.5 with 4 records each: MSB = 4 (0.25 + 0.25) / 2 = 1; MSW = 4 * 0.25 / 9;
    # n0 = (12 - 48 / 12) / 2 = 4 -> rho = (1 - 1/9) / (1 + 3/9) = 2/3.
    assert icc_binary([4, 0, 2], [4, 4, 4]) == pytest.approx(2 / 3)
    # no between-patient variation beyond chance -> 0 (truncated)
    assert icc_binary([2, 2, 2], [4, 4, 4]) == 0.0
    # 1 + (sum x^2 / sum x - 1) rho = 1 + (56 / 12 - 1) * 0.1
    assert design_effect([2, 4, 6], 0.1) == pytest.approx(1 + (56 / 12 - 1) * 0.1)


def test_icc_within_groups_ignores_differences_between_groups():
    # Group a: patients at 3/6 and 3/6 (no clustering); group b: 6/6 and 6/6. Ignoring groups,
    # the patients differ (p_i = 0.5, 0.5, 1, 1): MSB = 6 * 4 * 0.0625 / 3 = 0.5, MSW = 12 * 0.25
    # / 20 = 0.15, n0 = (24 - 144 / 24) / 3 = 6 -> rho = 0.35 / 1.25 = 0.28. Within groups every
    # patient equals its group's share: MSB = 0 -> rho truncated at 0.
    y, x = [3, 3, 6, 6], [6, 6, 6, 6]
    assert icc_binary(y, x) == pytest.approx(0.28)
    assert icc_binary(y, x, groups=["a", "a", "b", "b"]) == 0.0
