"""Funnel-plot limits, overdispersion and the funnel table (hipdata.report.funnel).

Reference: Spiegelhalter DJ. Funnel plots for comparing institutional performance. Stat Med 2005;
24:1185-1202 (appendix A.1.1: interpolated binomial limits; section 5: overdispersion).
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text
from scipy.stats import binom

from hipdata.report.funnel import (
    FUNNEL_LEVELS,
    funnel_limits_mean,
    funnel_limits_proportion,
    funnel_table,
    overdispersion,
    plot_funnel,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def spiegelhalter_limit(p0: float, n: int, prob: float) -> float:
    """The appendix's definition, written out directly: scan r = 0..n for the first F(r) >= P."""
    cdf = [binom.cdf(r, n, p0) for r in range(n + 1)]
    r_p = next(r for r in range(n + 1) if cdf[r] >= prob)
    cdf_before = cdf[r_p - 1] if r_p > 0 else 0.0
    alpha = (cdf[r_p] - prob) / (cdf[r_p] - cdf_before)
    return min(max((r_p - alpha) / n, 0.0), 1.0)


@pytest.mark.parametrize(("p0", "n"), [(0.8, 20), (0.5, 50), (0.9, 100), (0.3, 7), (0.05, 400)])
def test_proportion_limits_match_the_direct_definition(p0, n):
    limits = funnel_limits_proportion(p0, [n]).iloc[0]
    for level in FUNNEL_LEVELS:
        label = f"{100 * level:g}"
        expected_lower = spiegelhalter_limit(p0, n, (1 - level) / 2)
        expected_upper = spiegelhalter_limit(p0, n, (1 + level) / 2)
        assert limits[f"lower_{label}"] == pytest.approx(expected_lower, abs=1e-12)
        assert limits[f"upper_{label}"] == pytest.approx(expected_upper, abs=1e-12)


def test_proportion_limits_by_hand():
    # Binomial(7, 0.3) CDF: F(4) = 0.9712045, F(5) = 0.9962092. Upper 95 % limit, P = 0.975:
    # r_P = 5, alpha = (0.9962092 - 0.975) / (0.9962092 - 0.9712045) = 0.848207,
    # limit = (5 - 0.848207) / 7 = 0.593113.
    # Lower, P = 0.025: F(0) = 0.0823543 >= P, so r_P = 0 and (0 - alpha) / 7 < 0 -> clipped to 0.
    small = funnel_limits_proportion(0.3, [7]).iloc[0]
    assert small["upper_95"] == pytest.approx(0.593113, abs=1e-6)
    assert small["lower_95"] == 0.0
    # Binomial(50, 0.5): F(31) = 0.96755, F(32) = 0.98358 -> upper 95 %: r_P = 32,
    # alpha = (0.98358 - 0.975) / (0.98358 - 0.96755) = 0.5353, limit = (32 - 0.5353) / 50 = 0.6293.
    # Lower, P = 0.025: by symmetry F(17) = 1 - F(32) = 0.01642, F(18) = 1 - F(31) = 0.03245 ->
    # r_P = 18, alpha = (0.03245 - 0.025) / (0.03245 - 0.01642) = 0.4647,
    # limit = (18 - 0.4647) / 50 = 0.3507.
    half = funnel_limits_proportion(0.5, [50]).iloc[0]
    assert half["upper_95"] == pytest.approx(0.6293, abs=1e-4)
    assert half["lower_95"] == pytest.approx(0.3507, abs=1e-4)


def test_proportion_limits_are_vectorised_and_narrow_with_n():
    n = np.array([10, 40, 160, 640])
    limits = funnel_limits_proportion(0.7, n)
    assert list(limits["n"]) == list(n)
    widths = limits["upper_95"] - limits["lower_95"]
    assert (np.diff(widths) < 0).all()
    assert (limits["upper_99.8"] >= limits["upper_95"]).all()
    assert (limits["lower_99.8"] <= limits["lower_95"]).all()


def test_proportion_limits_reject_bad_input():
    with pytest.raises(ValueError, match="p0"):
        funnel_limits_proportion(1.0, [10])
    with pytest.raises(ValueError, match="whole numbers"):
        funnel_limits_proportion(0.5, [10.5])
    assert funnel_limits_proportion(0.5, [0])["upper_95"].isna().all()


def test_mean_limits_by_hand():
    # sd / sqrt(n) = 1.5 / 5 = 0.3; z(0.975) = 1.959964 -> 2 ± 0.587989;
    # z(0.999) = 3.090232 -> 2 ± 0.927070.
    limits = funnel_limits_mean(2.0, 1.5, [25]).iloc[0]
    assert limits["lower_95"] == pytest.approx(1.412011, abs=1e-6)
    assert limits["upper_95"] == pytest.approx(2.587989, abs=1e-6)
    assert limits["lower_99.8"] == pytest.approx(1.072930, abs=1e-6)
    assert limits["upper_99.8"] == pytest.approx(2.927070, abs=1e-6)


def test_overdispersion_by_hand():
    # Target 0.5, n = 100 for every unit -> s = sqrt(0.25 / 100) = 0.05; observed = 0.5 + 0.05 z.
    z = np.array([-4, -2, -1, -1, 0, 0, 0, 1, 1, 2, 5], dtype=float)
    # k = 11: the 10th percentile sits at sorted position 10 * 0.1 = 1 -> -2, the 90th at
    # position 9 -> 2. Winsorised: [-2, -2, -1, -1, 0, 0, 0, 1, 1, 2, 2];
    # sum of squares = 4 + 4 + 1 + 1 + 1 + 1 + 4 + 4 = 20 -> phi = 20 / 11 = 1.818182.
    # tau2: w = 1 / 0.0025 = 400 each; sum w = 4400, sum w^2 / sum w = 400 -> denominator 4000;
    # k phi - (k - 1) = 20 - 10 = 10 -> tau2 = 10 / 4000 = 0.0025.
    result = overdispersion(0.5 + 0.05 * z, 0.5, np.full(11, 100))
    assert result.phi == pytest.approx(20 / 11, rel=1e-9)
    assert result.tau2 == pytest.approx(0.0025, rel=1e-9)
    assert result.n_units == 11
    assert result.inflation == pytest.approx(math.sqrt(20 / 11))


def test_overdispersion_below_one_does_not_shrink_limits():
    # z = [1, -1, 0.5, -0.5] with no Winsorising -> phi = (1 + 1 + 0.25 + 0.25) / 4 = 0.625;
    # k phi = 2.5 <= k - 1 = 3 -> tau2 = 0.
    z = np.array([1.0, -1.0, 0.5, -0.5])
    result = overdispersion(0.5 + 0.05 * z, 0.5, np.full(4, 100), winsor=0.0)
    assert result.phi == pytest.approx(0.625)
    assert result.tau2 == 0.0
    assert result.inflation == 1.0


def test_overdispersion_for_means_uses_sd():
    # sd = 2, n = 16 -> s = 0.5; observed 11, 9, 10 around 10 -> z = 2, -2, 0 -> phi = 8 / 3.
    result = overdispersion([11.0, 9.0, 10.0], 10.0, [16, 16, 16], sd=2.0, winsor=0.0)
    assert result.phi == pytest.approx(8 / 3)


def planted_units() -> pd.DataFrame:
    # Target 0.5 and n = 100: the limits are about 0.5 ± 1.96 * 0.05 = [0.40, 0.60] (95 %) and
    # 0.5 ± 3.09 * 0.05 = [0.35, 0.65] (99.8 %) (exactly: 0.4000/0.6000 and 0.3450/0.6550 per the
    # direct definition). The planted proportions sit clearly inside or outside those bands.
    return pd.DataFrame(
        {
            "clinic_id": ["A", "B", "C", "D", "E", "F"],
            "met": [50, 62, 70, 39, 30, 0],
            "sessions": [100, 100, 100, 100, 100, 0],
        }
    )


def test_funnel_table_flags_planted_units():
    table = funnel_table(
        planted_units(), numerator="met", denominator="sessions", unit="clinic_id", target=0.5
    )
    flags = dict(zip(table["clinic_id"], table["flag"], strict=True))
    assert flags["A"] == "within"
    assert flags["B"] == "above 95%"
    assert flags["C"] == "above 99.8%"
    assert flags["D"] == "below 95%"
    assert flags["E"] == "below 99.8%"
    assert pd.isna(flags["F"])  # no denominator, no value
    row_b = table.set_index("clinic_id").loc["B"]
    assert row_b["value"] == pytest.approx(0.62)
    assert row_b["upper_95"] == pytest.approx(spiegelhalter_limit(0.5, 100, 0.975))


def test_funnel_table_sums_rows_per_unit_and_pools_the_target():
    quarters = pd.DataFrame(
        {
            "clinic_id": ["A", "A", "B"],
            "met": [10, 20, 45],
            "sessions": [20, 30, 50],
        }
    )
    table = funnel_table(quarters, numerator="met", denominator="sessions", unit="clinic_id")
    # A: 30 / 50 = 0.6; B: 45 / 50 = 0.9; pooled target (30 + 45) / (50 + 50) = 0.75.
    assert list(table["clinic_id"]) == ["A", "B"]
    assert table["value"].tolist() == pytest.approx([0.6, 0.9])
    assert table["target"].tolist() == pytest.approx([0.75, 0.75])


def test_funnel_table_multiplicative_adjustment_widens_limits_by_sqrt_phi():
    units = pd.DataFrame(
        {
            "clinic_id": list("ABCDEFGHIJK"),
            "sessions": [100] * 11,
            # z = (met/100 - 0.5) / 0.05 = [-4, -2, -1, -1, 0, 0, 0, 1, 1, 2, 5] -> phi = 20/11
            # (see test_overdispersion_by_hand).
            "met": [30, 40, 45, 45, 50, 50, 50, 55, 55, 60, 75],
        }
    )
    plain = funnel_table(
        units, numerator="met", denominator="sessions", unit="clinic_id", target=0.5
    )
    adjusted = funnel_table(
        units,
        numerator="met",
        denominator="sessions",
        unit="clinic_id",
        target=0.5,
        adjust="multiplicative",
    )
    inflation = math.sqrt(20 / 11)
    expected = 0.5 + inflation * (plain["upper_95"] - 0.5)
    assert adjusted["upper_95"].tolist() == pytest.approx(expected.tolist())
    assert adjusted.attrs["overdispersion"].phi == pytest.approx(20 / 11)
    additive = funnel_table(
        units,
        numerator="met",
        denominator="sessions",
        unit="clinic_id",
        target=0.5,
        adjust="additive",
    )
    # 0.5 + 1.959964 * sqrt(0.0025 + tau2 0.0025) = 0.5 + 1.959964 * 0.070711 = 0.638590
    assert additive["upper_95"].iloc[0] == pytest.approx(0.638590, abs=1e-6)


def test_funnel_table_rejects_numerator_above_denominator():
    bad = pd.DataFrame({"clinic_id": ["A"], "met": [11], "sessions": [10]})
    with pytest.raises(ValueError, match="'A'"):
        funnel_table(bad, numerator="met", denominator="sessions", unit="clinic_id")


def test_plot_funnel_draws_and_labels_outliers_only():
    ax = plot_funnel(
        data=planted_units(),
        numerator="met",
        denominator="sessions",
        unit="clinic_id",
        target=0.5,
        title="Pain-threshold adherence",
    )
    labels = sorted(text.get_text() for text in ax.texts)
    assert labels == ["B", "C", "D", "E"]  # units beyond the 95 % limits; A within, F no data
    assert ax.get_title() == "Pain-threshold adherence"
    # target line plus upper and lower curves for each of the two levels
    assert len(ax.get_lines()) >= 5


def test_plot_funnel_labels_do_not_overlap():
    # Five outliers at nearly the same place: their labels must be pushed apart.
    crowded = pd.DataFrame(
        {
            "clinic_id": [f"C{i:02d}" for i in range(8)],
            "met": [95, 95, 96, 96, 97, 50, 52, 51],
            "sessions": [100, 101, 100, 102, 101, 100, 100, 100],
        }
    )
    ax = plot_funnel(
        data=crowded, numerator="met", denominator="sessions", unit="clinic_id", target=0.5
    )
    ax.figure.canvas.draw()
    renderer = ax.figure.canvas.get_renderer()
    # Text.get_window_extent: the label's own box, without the leader line of the annotation.
    boxes = [Text.get_window_extent(text, renderer) for text in ax.texts]
    assert len(boxes) == 5
    for i, first in enumerate(boxes):
        for second in boxes[i + 1 :]:
            assert not first.overlaps(second)


def test_plot_funnel_refuses_patient_labels_and_draws_on_given_axes():
    counts = planted_units().rename(columns={"clinic_id": "patient_id"})
    with pytest.raises(ValueError, match="patient"):
        plot_funnel(data=counts, numerator="met", denominator="sessions", unit="patient_id")
    _, ax = plt.subplots()
    returned = plot_funnel(data=counts, numerator="met", denominator="sessions", ax=ax)
    assert returned is ax
    assert len(ax.texts) == 0  # no unit column -> nothing labelled
