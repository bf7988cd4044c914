"""Funnel-plot limits, overdispersion and the funnel table (hipdata.analysis.funnel, hipdata.plots.funnel).

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

from hipdata.analysis.funnel import (
    FUNNEL_LEVELS,
    funnel_limits_mean,
    funnel_limits_proportion,
    funnel_table,
    overdispersion,
)
from hipdata.plots.funnel import plot_funnel


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
    # Flag names follow funnel.csv (issue 7): "above_95" instead of "above 95%". Exact tails at
    # n = 100, p0 = 0.5 (scipy.stats.binom): P(Y >= 62) = 0.0105, P(Y >= 70) = 3.9e-5,
    # P(Y <= 39) = 0.0176, P(Y <= 30) = 3.9e-5, so the planted flags stand.
    assert flags["A"] == "within"
    assert flags["B"] == "above_95"
    assert flags["C"] == "above_99.8"
    assert flags["D"] == "below_95"
    assert flags["E"] == "below_99.8"
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
    # Issue 7 changed the multiplicative limits to Spiegelhalter's normal form
    # target +/- z sqrt(phi t (1 - t) / n) (they used to inflate the exact limits by sqrt(phi)).
    # k phi = 20 > chi2(10) 95 % point 18.307 (p = 0.029), so the adjustment applies:
    # 0.5 + 1.959964 * sqrt(20 / 11 * 0.25 / 100) = 0.5 + 1.959964 * 0.0674200 = 0.632141.
    assert adjusted["upper_95"].tolist() == pytest.approx([0.632141] * 11, abs=1e-6)
    assert plain["upper_95"].iloc[0] < adjusted["upper_95"].iloc[0]
    assert adjusted.attrs["overdispersion"].phi == pytest.approx(20 / 11)
    assert adjusted.attrs["overdispersion"].present
    additive = funnel_table(
        units,
        numerator="met",
        denominator="sessions",
        unit="clinic_id",
        target=0.5,
        adjust="additive",
    )
    # Issue 7: the additive model works on the arcsine scale, as FunnelPlotR does:
    # z_i = (asin(sqrt(p_i)) - pi/4) / (1 / (2 sqrt(100))) =
    # [-4.115168, -2.013579, -1.001674 x2, 0 x3, 1.001674 x2, 2.013579, 5.235988];
    # winsorised at +/-2.013579 (sorted positions 1 and 9): sum z^2 = 4 * 2.013579^2 +
    # 4 * 1.001674^2 = 20.231410 -> phi = 1.839219; w = 400 each -> sum w - sum w^2 / sum w =
    # 4000 -> tau2 = (20.231410 - 10) / 4000 = 0.00255785; chi2(10) p = 0.0271 -> applied.
    # upper_95 = sin^2(pi/4 + 1.959964 sqrt(0.0025 + 0.00255785)) = 0.637591.
    dispersion = additive.attrs["overdispersion"]
    assert dispersion.scale == "arcsine"
    assert dispersion.phi == pytest.approx(1.839219, abs=1e-6)
    assert dispersion.tau2 == pytest.approx(0.00255785, abs=1e-8)
    assert dispersion.p_value == pytest.approx(0.027138, abs=1e-5)
    assert additive["upper_95"].iloc[0] == pytest.approx(0.637591, abs=1e-6)


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


# --- issue 7: exact flags, overdispersion gating, means ---------------------------------------


def test_reproducer_eight_of_eight_against_080_is_within():
    # Issue 7 item 2: the demo drew C02 red "beyond 99.8 %" for 8/8 NPRS responders against a
    # target of 0.80, though P(Y = 8) = 0.8^8 = 0.16777 is far above both one-sided tails.
    counts = pd.DataFrame({"clinic_id": ["C02"], "met": [8], "pairs": [8]})
    table = funnel_table(counts, numerator="met", denominator="pairs", unit="clinic_id", target=0.8)
    row = table.iloc[0]
    assert row["flag"] == "within"
    assert row["p_value"] == pytest.approx(0.8**8, rel=1e-12)
    # the interpolated line sits below 100 % (r = 8, alpha = (1 - 0.999) / 0.8^8): drawing only
    assert row["upper_99.8"] < 1.0


@pytest.mark.parametrize(
    ("y", "n", "p0", "upper", "lower"),
    [
        # P(Y >= 9 | 10, 0.5) = (10 + 1) / 1024 = 0.0107421875; P(Y <= 9) = 1 - 1/1024
        (9, 10, 0.5, 11 / 1024, 1023 / 1024),
        # P(Y <= 1 | 20, 0.3) = 0.7^20 + 20 * 0.3 * 0.7^19 = 0.000797923 + 0.006839337
        (1, 20, 0.3, 1 - 0.7**20, 0.7**20 + 20 * 0.3 * 0.7**19),
        # P(Y >= 5 | 5, 0.8) = 0.8^5 = 0.32768; P(Y <= 5) = 1
        (5, 5, 0.8, 0.8**5, 1.0),
        # P(Y >= 0) = 1; P(Y <= 0 | 4, 0.9) = 0.1^4
        (0, 4, 0.9, 1.0, 0.1**4),
    ],
)
def test_binomial_tails_by_hand(y, n, p0, upper, lower):
    from hipdata.analysis.funnel import binomial_tails

    got_upper, got_lower = binomial_tails(y, n, p0)
    assert got_upper[0] == pytest.approx(upper, rel=1e-10)
    assert got_lower[0] == pytest.approx(lower, rel=1e-10)


def test_exact_flags_at_the_boundary():
    # n = 10, p0 = 0.5: P(Y >= 9) = 0.01074 <= 0.025 -> above_95; P(Y >= 8) = 56/1024 = 0.0547 ->
    # within; P(Y >= 10) = 1/1024 = 0.000977 <= 0.001 -> above_99.8.
    counts = pd.DataFrame({"u": ["a", "b", "c"], "y": [8, 9, 10], "n": [10, 10, 10]})
    table = funnel_table(counts, numerator="y", denominator="n", unit="u", target=0.5)
    assert list(table["flag"]) == ["within", "above_95", "above_99.8"]
    assert table["p_value"].tolist() == pytest.approx([56 / 1024, 11 / 1024, 1 / 1024])


def test_no_unit_is_flagged_whose_exact_tail_is_above_the_level():
    # Property over every possible outcome of small and large units, several targets: the flag
    # agrees with the tail probability computed independently by scipy.stats.binom.
    rng = np.random.default_rng(7)
    for p0 in (0.05, 0.3, 0.5, 0.8, 0.97):
        n = rng.integers(1, 120, size=300)
        y = (rng.random(300) * (n + 1)).astype(int).clip(0, n)
        counts = pd.DataFrame({"u": np.arange(300), "y": y, "n": n})
        table = funnel_table(counts, numerator="y", denominator="n", unit="u", target=p0)
        upper = binom.sf(y - 1, n, p0)  # P(Y >= y)
        lower = binom.cdf(y, n, p0)  # P(Y <= y)
        flag = table["flag"].to_numpy()
        assert not np.any(np.char.startswith(flag.astype(str), "above_95") & (upper > 0.025))
        assert not np.any(np.char.startswith(flag.astype(str), "below_95") & (lower > 0.025))
        assert not np.any((flag == "above_99.8") & (upper > 0.001))
        assert not np.any((flag == "below_99.8") & (lower > 0.001))
        # and every unit whose tail reaches a level is flagged at least there
        assert np.all(flag[(upper <= 0.001)] == "above_99.8")
        assert np.all(np.isin(flag[(upper <= 0.025)], ["above_95", "above_99.8"]))


def test_design_effect_widens_and_reaches_the_exact_test_at_one():
    counts = pd.DataFrame({"u": ["a"], "y": [62], "n": [100]})
    plain = funnel_table(counts, numerator="y", denominator="n", unit="u", target=0.5)
    clustered = funnel_table(
        counts, numerator="y", denominator="n", unit="u", target=0.5, design_effect=2.0
    )
    # deff 2: effective 31 of 50 -> P(Y >= 31 | 50, 0.5) = 0.0595 (binom.sf(30, 50, 0.5))
    assert plain["flag"].iloc[0] == "above_95"
    assert clustered["flag"].iloc[0] == "within"
    assert clustered["p_value"].iloc[0] == pytest.approx(binom.sf(30, 50, 0.5), rel=1e-9)
    assert clustered["upper_95"].iloc[0] == pytest.approx(spiegelhalter_limit(0.5, 50, 0.975))


def test_overdispersion_is_not_applied_without_evidence_or_with_few_units():
    # 11 units near the target: k phi below the chi2 point -> exact limits stand.
    units = pd.DataFrame(
        {"u": list("ABCDEFGHIJK"), "y": [49, 50, 51, 52, 48, 50, 50, 47, 53, 50, 50], "n": 100}
    )
    plain = funnel_table(units, numerator="y", denominator="n", unit="u", target=0.5)
    adjusted = funnel_table(
        units, numerator="y", denominator="n", unit="u", target=0.5, adjust="additive"
    )
    assert not adjusted.attrs["overdispersion"].present
    assert adjusted["upper_95"].tolist() == plain["upper_95"].tolist()
    assert "No overdispersion" in adjusted.attrs["overdispersion_note"]
    # 4 wildly spread units: a warning, and the estimate is not applied
    few = pd.DataFrame({"u": list("ABCD"), "y": [20, 80, 35, 65], "n": 100})
    with pytest.warns(UserWarning, match="too few"):
        table = funnel_table(
            few, numerator="y", denominator="n", unit="u", target=0.5, adjust="multiplicative"
        )
    assert not table.attrs["overdispersion"].present
    # exact flags: P(Y <= 20) ~ 5.6e-10, P(Y <= 35) = 0.00176 (binom.cdf(35, 100, 0.5))
    assert list(table["flag"]) == ["below_99.8", "above_99.8", "below_95", "above_95"]


def test_funnel_table_of_means_by_hand():
    # sd 2, target 10, n = 16 -> se 0.5. Unit a: mean 11.2 -> z = 2.4, P(Z >= 2.4) = 0.0082 ->
    # above_95. Unit b: mean 8.4 -> z = -3.2, P(Z <= -3.2) = 0.000687 -> below_99.8.
    sums = pd.DataFrame({"u": ["a", "b", "c"], "total": [16 * 11.2, 16 * 8.4, 160.0], "n": 16})
    table = funnel_table(
        sums, numerator="total", denominator="n", unit="u", target=10.0, kind="mean", sd=2.0
    )
    assert list(table["flag"]) == ["above_95", "below_99.8", "within"]
    assert table["p_value"].iloc[0] == pytest.approx(0.0081975, abs=1e-6)
    assert table["upper_95"].iloc[0] == pytest.approx(10 + 1.959964 * 0.5, abs=1e-6)


def test_funnel_table_of_means_with_a_design_effect():
    # sd 2, n 16, deff 4 -> se = 2 sqrt(4 / 16) = 1: mean 12 -> z = 2, P(Z >= 2) = 0.02275
    sums = pd.DataFrame({"u": ["a"], "total": [16 * 12.0], "n": [16]})
    table = funnel_table(
        sums,
        numerator="total",
        denominator="n",
        unit="u",
        target=10.0,
        kind="mean",
        sd=2.0,
        design_effect=4.0,
    )
    assert table["p_value"].iloc[0] == pytest.approx(0.0227501, abs=1e-6)
    assert table["flag"].iloc[0] == "above_95"
    assert table["upper_95"].iloc[0] == pytest.approx(10 + 1.959964, abs=1e-6)
