"""Tests for hipdata.analysis.response and plots.progress.plot_pain_response."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from hipdata.analysis.intervals import t_interval, wilson_ci  # noqa: E402
from hipdata.analysis.response import (  # noqa: E402
    dose_response_slope,
    dose_response_within_between,
    pain_response_curve,
    relative_load_curve,
)
from hipdata.plots.progress import plot_pain_response  # noqa: E402

FAMILY_SESSION_COLUMNS = [
    "patient_id",
    "clinic_id",
    "clinician_id",
    "date",
    "week",
    "family",
    "level",
    "top_load_kg",
    "sets",
    "total_reps",
    "volume_load_kg",
    "tut_s",
    "max_pain_during",
    "pain_24h",
    "criterion",
    "volume_change_pct",
]
START = pd.Timestamp("2026-01-05")
# t quantiles used in the hand working below (any t table): t(0.975, 1) = 12.7062,
# t(0.975, 2) = 4.3027.
T_975_DF1 = 12.7062
T_975_DF2 = 4.3027


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def family_sessions_frame(rows: list[tuple]) -> pd.DataFrame:
    """family_sessions with the shared columns from (patient, day, family, max_pain_during,
    pain_24h, volume_change_pct[, top_load_kg]) tuples; other columns get plausible fillers."""
    frame = pd.DataFrame(
        [r if len(r) == 7 else (*r, 10.0) for r in rows],
        columns=[
            "patient_id",
            "day",
            "family",
            "max_pain_during",
            "pain_24h",
            "volume_change_pct",
            "top_load_kg",
        ],
    )
    frame["date"] = START + pd.to_timedelta(frame["day"], unit="D")
    frame["week"] = frame["day"] // 7
    frame["clinic_id"] = "A"
    frame["clinician_id"] = "T1"
    frame["level"] = 2
    frame["sets"] = 3
    frame["total_reps"] = 30.0
    frame["volume_load_kg"] = 30.0 * frame["top_load_kg"]
    frame["tut_s"] = 0.0
    frame["criterion"] = "unknown"
    return frame[FAMILY_SESSION_COLUMNS]


# --------------------------------------------------------------------------------------------
# interval helpers
# --------------------------------------------------------------------------------------------
def test_wilson_ci_matches_hand_computed_interval():
    # Wilson, 1 of 2, z = 1.959964: centre = (0.5 + z^2/4) / (1 + z^2/2) = 0.5,
    # half = z * sqrt(0.5*0.5/2 + z^2/16) / (1 + z^2/2) = 1.959964 * 0.604228 / 2.920729 = 0.405467
    low, high = wilson_ci([1, 0], [2, 0])
    assert low[0] == pytest.approx(0.5 - 0.405467, abs=1e-5)
    assert high[0] == pytest.approx(0.5 + 0.405467, abs=1e-5)
    assert np.isnan(low[1]) and np.isnan(high[1])


def test_mean_t_ci_needs_two_values():
    # mean 3, sd sqrt(2), n 2: half width = t(0.975, 1) * sqrt(2) / sqrt(2) = 12.7062
    low, high = t_interval([3.0, 5.0], [np.sqrt(2), np.nan], [2, 1])
    assert low[0] == pytest.approx(3 - T_975_DF1, abs=1e-3)
    assert high[0] == pytest.approx(3 + T_975_DF1, abs=1e-3)
    assert np.isnan(low[1])


# --------------------------------------------------------------------------------------------
# pain_response_curve
# --------------------------------------------------------------------------------------------
@pytest.fixture
def response_sessions() -> pd.DataFrame:
    # (patient, day, family, max_pain_during, pain_24h, volume_change_pct)
    return family_sessions_frame(
        [
            ("P1", 0, "extensors", 1.0, 1.0, np.nan),  # first of family: excluded
            ("P1", 0, "adductors", 5.0, 1.0, np.nan),  # first of family: excluded
            ("P1", 2, "extensors", 1.0, 2.0, 0.0),  # exactly 0 % -> "<= 0 %"; flare False
            ("P1", 4, "extensors", 2.0, 3.0, 10.0),  # exactly 10 % -> "0-10 %"
            ("P1", 4, "adductors", 4.0, 3.0, 10.000000001),  # 10 % within tolerance -> "0-10 %"
            ("P1", 7, "extensors", 2.0, np.nan, 25.0),  # exactly 25 % -> "10-25 %"; flare unknown
            ("P1", 9, "extensors", 3.0, 3.0, 50.0),  # exactly 50 % -> "25-50 %"; 3/10 is no flare
            ("P1", 11, "extensors", 2.0, 5.0, 60.0),  # "> 50 %"; flare True
            ("P2", 0, "extensors", 0.0, 0.0, np.nan),  # first of family: excluded
            ("P2", 2, "extensors", 0.0, 0.0, np.nan),  # previous volume 0: excluded
            ("P2", 4, "extensors", np.nan, 4.0, -20.0),  # "<= 0 %"; flare True from pain_24h
        ]
    )


def test_pain_response_curve_bins_at_edges(response_sessions):
    curve = pain_response_curve(response_sessions).set_index("volume_change_bin")
    assert list(curve.index) == ["<= 0 %", "0-10 %", "10-25 %", "25-50 %", "> 50 %"]
    assert curve["n"].tolist() == [2, 2, 1, 1, 1]
    assert curve["n_patients"].tolist() == [2, 1, 1, 1, 1]
    assert curve["bin_low_pct"].tolist()[1:] == [0.0, 10.0, 25.0, 50.0]
    # excluded: P1 extensors day 0, P1 adductors day 0, P2 day 0 (no previous); P2 day 2 (prev 0)
    assert curve.attrs["excluded_no_previous"] == 3
    assert curve.attrs["excluded_no_previous_volume"] == 1


def test_pain_response_curve_pain_and_flare(response_sessions):
    curve = pain_response_curve(response_sessions).set_index("volume_change_bin")
    # "<= 0 %": pain_24h 2 and 4 -> mean 3, sd sqrt(2), half width t(.975,1) * sqrt2/sqrt2
    row = curve.loc["<= 0 %"]
    assert row["pain_24h_mean"] == pytest.approx(3.0)
    assert row["pain_24h_ci_low"] == pytest.approx(3 - T_975_DF1, abs=1e-3)
    assert row["pain_24h_ci_high"] == pytest.approx(3 + T_975_DF1, abs=1e-3)
    # flares: P1 day 2 (pain 1 and 2) False; P2 day 4 (pain_24h 4) True -> 1 of 2
    assert (row["flare_known"], row["flare_count"], row["flare_rate"]) == (2, 1, 0.5)
    assert row["flare_ci_low"] == pytest.approx(0.094533, abs=1e-5)
    # "0-10 %": both family sessions of P1 day 4; the session's max_pain_during is 4 (adductors)
    # so the extensors family session (its own max 2, pain_24h 3) is a flare too -> 2 of 2
    row = curve.loc["0-10 %"]
    assert (row["flare_known"], row["flare_count"]) == (2, 2)
    assert row["pain_24h_mean"] == pytest.approx(3.0)
    # "10-25 %": pain_24h missing -> no mean, flare unknown -> no rate
    row = curve.loc["10-25 %"]
    assert row["pain_24h_n"] == 0 and np.isnan(row["pain_24h_mean"])
    assert row["flare_known"] == 0 and np.isnan(row["flare_rate"])
    # "25-50 %": pain exactly 3/10 is inside the limit (inclusive) -> no flare
    assert curve.loc["25-50 %", "flare_count"] == 0
    assert curve.loc["> 50 %", "flare_rate"] == 1.0


def test_pain_response_curve_uses_sessions_flare_when_given(response_sessions):
    # the sessions table knows that P1's day-2 session flared (e.g. a lower-level set hurt 6/10)
    sessions = pd.DataFrame(
        {
            "patient_id": ["P1", "P1", "P1", "P1", "P1", "P2", "P2", "P2"],
            "date": START + pd.to_timedelta([0, 2, 4, 7, 9, 0, 2, 4], unit="D"),
            "flare": pd.array([True, True, True, None, False, False, False, True], "boolean"),
        }
    )
    curve = pain_response_curve(response_sessions, sessions=sessions).set_index("volume_change_bin")
    assert curve.loc["<= 0 %", "flare_count"] == 2  # P1 day 2 now True, P2 day 4 True


def test_pain_response_curve_custom_bins_and_threshold(response_sessions):
    curve = pain_response_curve(response_sessions, bins=(-np.inf, 20, np.inf), pain_threshold=2)
    assert curve["volume_change_bin"].tolist() == ["<= 20 %", "> 20 %"]
    # <= 20: P1 d2 (pain 1/2 -> not > 2), P1 d4 x2 (3 > 2), P2 d4 (4 > 2) -> 3 flares of 4
    assert curve["flare_count"].tolist() == [3, 2]  # > 20: d7 (2, NaN -> unknown), d9, d11
    assert curve["flare_known"].tolist() == [4, 2]


# --------------------------------------------------------------------------------------------
# relative_load_curve
# --------------------------------------------------------------------------------------------
def test_relative_load_curve_cumulative_max_on_sets():
    # (patient, day, exercise, load_kg, pain_during); pain_during is per exercise and session
    rows = [
        ("P1", 0, "bridge_loaded", 20.0, 2.0),  # set 1 -> top so far 20 -> 1.0
        ("P1", 0, "bridge_loaded", 20.0, 2.0),  # set 2, same unit
        ("P1", 0, "bridge", 0.0, 1.0),  # body weight: excluded
        ("P1", 2, "bridge_loaded", 10.0, 1.0),  # 10 / 20 = 0.5 -> "0-50 %" (right-closed)
        ("P1", 4, "bridge_loaded", 30.0, 4.0),  # the day's own top counts: 30 / 30 = 1.0
        ("P1", 4, "bridge_loaded", 15.0, 4.0),  # 15 / 30 = 0.5 -> "0-50 %"
        ("P1", 7, "bridge_loaded", 0.0, 3.0),  # load 0: excluded
        ("P1", 7, "bridge_loaded", 24.0, 3.0),  # 24 / 30 = 0.8 -> "70-80 %"
        ("P2", 0, "bridge_loaded", 40.0, 6.0),  # 1.0
        ("P2", 2, "bridge_loaded", 28.0, 5.0),  # 28 / 40 = 0.7 -> "50-70 %"
    ]
    sets = pd.DataFrame(rows, columns=["patient_id", "day", "exercise", "load_kg", "pain_during"])
    sets["date"] = START + pd.to_timedelta(sets["day"], unit="D")
    curve = relative_load_curve(sets).set_index("relative_load_bin")
    assert list(curve.index) == ["0-50 %", "50-70 %", "70-80 %", "80-90 %", "90-100 %"]
    assert curve["n"].tolist() == [2, 1, 1, 0, 3]
    assert curve.attrs["excluded_zero_load"] == 2
    # "0-50 %": pains 1 and 4 -> 2.5; "90-100 %": pains 2, 4, 6 -> mean 4, sd 2,
    # half width t(.975, 2) * 2 / sqrt(3) = 4.3027 * 1.1547 = 4.9683
    assert curve.loc["0-50 %", "pain_during_mean"] == pytest.approx(2.5)
    top = curve.loc["90-100 %"]
    assert top["n_patients"] == 2
    assert top["pain_during_mean"] == pytest.approx(4.0)
    assert top["pain_during_ci_high"] == pytest.approx(4 + T_975_DF2 * 2 / np.sqrt(3), abs=1e-3)


def test_relative_load_curve_on_family_sessions_and_quantile_bins():
    # extensors top loads 10, 20, 15 -> top so far 10, 20, 20 -> 1.0, 1.0, 0.75
    frame = family_sessions_frame(
        [
            ("P1", 0, "extensors", 1.0, 1.0, np.nan, 10.0),
            ("P1", 2, "extensors", 3.0, 1.0, 100.0, 20.0),
            ("P1", 4, "extensors", 2.0, 1.0, -25.0, 15.0),
        ]
    )
    curve = relative_load_curve(frame).set_index("relative_load_bin")
    assert curve.loc["70-80 %", "n"] == 1
    assert curve.loc["90-100 %", "pain_during_mean"] == pytest.approx(2.0)  # (1 + 3) / 2
    assert curve.attrs["unit"] == "family"
    halves = relative_load_curve(frame, bins=2)
    assert halves["n"].sum() == 3


def test_relative_load_curve_rejects_other_tables():
    with pytest.raises(ValueError, match="sets table"):
        relative_load_curve(pd.DataFrame({"patient_id": ["P1"]}))


# --------------------------------------------------------------------------------------------
# dose_response_slope
# --------------------------------------------------------------------------------------------
def test_dose_response_slope_uses_the_largest_change_per_session():
    # pain_24h = 1 + 0.5 * largest / 10 exactly; the other family's smaller or missing change
    # must be ignored, and P3's only session (no change in any family) left out.
    rows = [
        ("P1", 2, "extensors", 1.0, 1.0 + 0.5 * 4.0, 40.0),
        ("P1", 2, "adductors", 1.0, 1.0 + 0.5 * 4.0, 10.0),
        ("P1", 4, "extensors", 1.0, 1.0 + 0.5 * 0.0, 0.0),
        ("P2", 2, "extensors", 1.0, 1.0 + 0.5 * 2.0, 20.0),
        ("P2", 2, "squat", 1.0, 1.0 + 0.5 * 2.0, np.nan),
        ("P2", 4, "extensors", 1.0, 1.0 + 0.5 * -1.0, -10.0),
        ("P3", 0, "extensors", 1.0, 9.0, np.nan),
    ]
    result = dose_response_slope(family_sessions_frame(rows))
    assert result["estimate"] == pytest.approx(0.5)
    assert result["intercept"] == pytest.approx(1.0)
    assert (result["n_sessions"], result["n_patients"]) == (4, 2)


def test_dose_response_slope_too_little_data_is_nan():
    rows = [("P1", 2, "extensors", 1.0, 2.0, 40.0), ("P1", 4, "extensors", 1.0, 2.0, 10.0)]
    result = dose_response_slope(family_sessions_frame(rows))
    assert np.isnan(result["estimate"]) and result["n_sessions"] == 2


def test_dose_response_slope_recovers_planted_slope():
    # Planted: pain_24h = 2 + patient effect + 0.4 * largest_change / 10 + session noise (sd 1),
    # the same value for every family session of a session.
    planted = 0.4
    rng = np.random.default_rng(20260105)
    n_patients, n_sessions, families = 120, 12, ["extensors", "adductors", "squat"]
    patient = np.repeat([f"P{i:03d}" for i in range(n_patients)], n_sessions * len(families))
    day = np.tile(np.repeat(np.arange(n_sessions) * 3, len(families)), n_patients)
    change = rng.uniform(-30, 80, size=patient.size)
    change[day == 0] = np.nan  # first session of every family has no previous one
    change[rng.random(patient.size) < 0.2] = np.nan  # and some previous sessions had no volume
    rows = pd.DataFrame(
        {
            "patient_id": patient,
            "day": day,
            "family": np.tile(families, n_patients * n_sessions),
            "max_pain_during": 1.0,
            "volume_change_pct": change,
        }
    )
    per_session = rows.groupby(["patient_id", "day"], as_index=False)["volume_change_pct"].max()
    patient_effect = pd.Series(rng.normal(0, 1, n_patients), index=np.unique(patient))
    per_session["pain_24h"] = (
        2
        + per_session["patient_id"].map(patient_effect)
        + planted * per_session["volume_change_pct"].fillna(0) / 10
        + rng.normal(0, 1, len(per_session))
    )
    rows = rows.merge(per_session.drop(columns="volume_change_pct"), on=["patient_id", "day"])
    fs = family_sessions_frame(
        list(
            rows[
                ["patient_id", "day", "family", "max_pain_during", "pain_24h", "volume_change_pct"]
            ].itertuples(index=False, name=None)
        )
    )
    result = dose_response_slope(fs)
    assert result["ci_low"] <= planted <= result["ci_high"]
    assert result["std_error"] < 0.05
    assert result["n_patients"] == n_patients
    # sessions with at least one family change, as planted
    assert result["n_sessions"] == int(per_session["volume_change_pct"].notna().sum())


# --- within- and between-patient parts --------------------------------------------------------

# 8 patients x 5 sessions (one family per session): volume change (%) and pain_24h
DR_CHANGES = [
    24,
    1,
    14,
    16,
    29,
    21,
    39,
    24,
    13,
    32,
    7,
    -8,
    28,
    3,
    25,
    24,
    32,
    43,
    17,
    1,
    27,
    16,
    21,
    16,
    -20,
    -6,
    6,
    10,
    8,
    17,
    20,
    -23,
    8,
    -14,
    -18,
    8,
    16,
    43,
    4,
    36,
]
DR_PAINS = [4.1, 3.4, 4.1, 2.9, 4.5, 2.0, 2.1, 2.2, 0.4, 1.5, 0.7, 1.1, 2.0, 1.7, 1.9, 2.1, 3.1,
            2.3, 1.9, 2.1, 3.3, 2.7, 1.7, 2.9, 1.6, 3.4, 3.1, 3.8, 3.4, 4.5, 5.3, 3.4, 3.6, 3.9,
            3.3, 0.2, 2.4, 0.9, 1.5, 2.2]  # fmt: skip


def test_dose_response_within_between_matches_lme4():
    rows = [
        (f"P{i // 5}", 3 * (i % 5) + 1, "extensors", 1.0, pain, float(change))
        for i, (change, pain) in enumerate(zip(DR_CHANGES, DR_PAINS, strict=True))
    ]
    table = dose_response_within_between(family_sessions_frame(rows)).set_index("part")
    # R 4.2.2 lme4 1.1: x = change / 10; m = ave(x, patient); w = x - m
    # lmer(pain ~ w + m + (1 | patient), REML = TRUE): w 0.2554798832 (SE 0.0707788256),
    # m -0.6614691995 (SE 0.3264257070); m - w = -0.9169491 (SE 0.3340111); not singular
    assert table.loc["within", "estimate"] == pytest.approx(0.2554798832, rel=1e-3)
    assert table.loc["within", "std_error"] == pytest.approx(0.0707788256, rel=1e-3)
    assert table.loc["between", "estimate"] == pytest.approx(-0.6614691995, rel=1e-3)
    assert table.loc["between", "std_error"] == pytest.approx(0.3264257070, rel=1e-3)
    assert table.loc["between_minus_within", "estimate"] == pytest.approx(-0.9169491, rel=1e-3)
    assert table.loc["between_minus_within", "std_error"] == pytest.approx(0.3340111, rel=1e-3)
    assert table.attrs["random_effects"] == "intercept"
    assert (table.attrs["n_sessions"], table.attrs["n_patients"]) == (40, 8)
    assert (
        table.loc["pooled", "estimate"]
        == dose_response_slope(family_sessions_frame(rows))["estimate"]
    )


def test_dose_response_within_between_recovers_planted_slopes():
    # Planted: within a patient, pain rises 0.5 per 10 % bigger step than their own usual step;
    # between patients, a usual step 10 % bigger goes with pain 0.3 LOWER (e.g. less irritable
    # hips are progressed faster). The pooled slope mixes the two and matches neither.
    within, between = 0.5, -0.3
    rng = np.random.default_rng(2026)
    n_patients, n_sessions = 150, 12
    usual = rng.uniform(0, 60, n_patients)
    patient = np.repeat(np.arange(n_patients), n_sessions)
    change = usual[patient] + rng.normal(0, 15, patient.size)
    frame = pd.DataFrame({"patient": patient, "change": change})
    mean = frame.groupby("patient")["change"].transform("mean")
    pain = (
        3.0
        + within * (change - mean) / 10
        + between * mean / 10
        + rng.normal(0, 0.8, n_patients)[patient]
        + rng.normal(0, 0.7, patient.size)
    )
    rows = [
        (f"P{p:03d}", 3 * (i % n_sessions) + 1, "squat", 1.0, y, x)
        for i, (p, x, y) in enumerate(zip(patient, change, pain, strict=True))
    ]
    table = dose_response_within_between(family_sessions_frame(rows)).set_index("part")
    # SEs here are about 0.011 (within) and 0.036 (between): recovered to within about 3 SE
    assert table.loc["within", "estimate"] == pytest.approx(within, abs=0.04)
    assert table.loc["between", "estimate"] == pytest.approx(between, abs=0.1)
    assert table.loc["within", "std_error"] < 0.02
    difference = table.loc["between_minus_within"]
    assert difference["ci_high"] < 0  # the two parts differ, and the data say so
    pooled = table.loc["pooled", "estimate"]
    assert between + 0.05 < pooled < within - 0.05


def test_dose_response_within_between_too_little_data():
    rows = [("P1", 2, "extensors", 1.0, 2.0, 40.0), ("P1", 4, "extensors", 1.0, 2.0, 10.0)]
    table = dose_response_within_between(family_sessions_frame(rows))
    assert table["estimate"].isna().all()
    assert "too few" in table.attrs["warnings"][0]


# --------------------------------------------------------------------------------------------
# plot
# --------------------------------------------------------------------------------------------
def test_plot_pain_response_draws_and_labels_do_not_overlap(response_sessions):
    curve = pain_response_curve(response_sessions)
    ax = plot_pain_response(data=curve)
    assert isinstance(ax, matplotlib.axes.Axes)
    assert len(ax.lines) > 0
    assert any(line.get_ydata()[0] == 3.0 for line in ax.lines)  # the 3/10 limit
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.get_xticklabels() if t.get_text()]
    assert len(boxes) == 5
    assert all(a.x1 <= b.x0 for a, b in zip(boxes, boxes[1:], strict=False))


def test_wilson_bounds_at_the_edges_are_exact():
    # Regression (issue 7, item 4): statsmodels' Wilson lower bound for 0/n can be a residue
    # such as 3.5e-18; the formula gives exactly 0 (and an upper bound of exactly 1 for n/n).
    n = np.arange(1, 401)
    low, high = wilson_ci(np.zeros_like(n), n)
    assert (low == 0.0).all() and (high > 0).all()
    low, high = wilson_ci(n, n)
    assert (high == 1.0).all() and (low < 1).all()
    # inside the range nothing changes: 3/10, z = 1.959964: centre 0.492071 / 1.384146 =
    # 0.355505, half-width 1.416011 x sqrt(0.021 + 0.0096036) = 0.247716
    low, high = wilson_ci([3], [10])
    assert (low[0], high[0]) == pytest.approx((0.107789, 0.603221), abs=1e-5)
