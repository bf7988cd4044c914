"""Tests for hipdata.analysis.progression and the ladder / volume / time-to-progression plots."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from hipdata.analysis.progression import (  # noqa: E402
    aalen_johansen,
    km_interval,
    ladder_funnel,
    progression_incidence,
    progression_rates,
    progression_spells,
    time_to_next_level,
)
from hipdata.plots.progress import (  # noqa: E402
    plot_cumulative_incidence,
    plot_ladder_funnel,
    plot_level_progression,
    plot_time_to_progression,
    plot_volume_progression,
)

START = pd.Timestamp("2026-01-05")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def family_sessions_frame(rows: list[tuple]) -> pd.DataFrame:
    """family_sessions (shared columns) from (patient, day, family, level) tuples."""
    frame = pd.DataFrame(rows, columns=["patient_id", "day", "family", "level"])
    frame["date"] = START + pd.to_timedelta(frame["day"], unit="D")
    return frame.assign(
        clinic_id="A",
        clinician_id="T1",
        week=frame["day"] // 7,
        top_load_kg=0.0,
        sets=3,
        total_reps=30.0,
        volume_load_kg=0.0,
        tut_s=0.0,
        max_pain_during=1.0,
        pain_24h=1.0,
        criterion="met",
        volume_change_pct=np.nan,
    )[
        [
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
    ]


# --------------------------------------------------------------------------------------------
# ladder_funnel
# --------------------------------------------------------------------------------------------
@pytest.fixture
def funnel_sessions() -> pd.DataFrame:
    return family_sessions_frame(
        [
            ("P1", 0, "hop", 1),
            ("P1", 3, "hop", 2),
            ("P1", 6, "hop", 3),  # P1 top hop level 3
            ("P1", 0, "trunk", 1),  # P1 top trunk level 1
            ("P2", 0, "hop", 1),
            ("P2", 3, "hop", 2),
            ("P2", 6, "hop", 1),  # regressed: top level is still 2
            ("P3", 0, "hop", 1),  # top 1
            ("P4", 0, "hop", 2),  # started at level 2: reaching 2 counts, and so does 1
        ]
    )


def test_ladder_funnel_shares(funnel_sessions):
    funnel = ladder_funnel(funnel_sessions, families=["hop", "trunk", "adductors"])
    hop = funnel.loc[funnel["family"] == "hop"]
    # hop ladder has 3 levels; top levels 3, 2, 1, 2 -> reached L1: 4, L2: 3, L3: 1 of 4
    assert hop["level"].tolist() == [1, 2, 3]
    assert hop["n_patients"].tolist() == [4, 4, 4]
    assert hop["n_reached"].tolist() == [4, 3, 1]
    assert hop["share_reached"].tolist() == [1.0, 0.75, 0.25]
    assert (hop["ci_low"] <= hop["share_reached"]).all()
    trunk = funnel.loc[funnel["family"] == "trunk"]  # 2 levels; P1 only, top 1
    assert trunk["n_reached"].tolist() == [1, 0]
    adductors = funnel.loc[funnel["family"] == "adductors"]  # nobody: 5 levels, empty shares
    assert adductors["level"].tolist() == [1, 2, 3, 4, 5]
    assert (adductors["n_patients"] == 0).all() and adductors["share_reached"].isna().all()
    assert funnel["family"].drop_duplicates().tolist() == ["hop", "trunk", "adductors"]


def test_ladder_funnel_from_patient_summary_matches(funnel_sessions):
    summary = pd.DataFrame(
        {
            "patient_id": ["P1", "P2", "P3", "P4"],
            "top_level_hop": [3.0, 2.0, 1.0, 2.0],
            "top_level_trunk": [1.0, np.nan, np.nan, np.nan],
        }
    )
    from_summary = ladder_funnel(summary, families=["hop", "trunk"])
    from_sessions = ladder_funnel(funnel_sessions, families=["hop", "trunk"])
    pd.testing.assert_frame_equal(from_summary, from_sessions)


# --------------------------------------------------------------------------------------------
# time_to_next_level
# --------------------------------------------------------------------------------------------
@pytest.fixture
def km_data() -> tuple[pd.DataFrame, pd.DataFrame]:
    # Six trunk level-1 spells starting on day 0 (trunk level 2 is the top: no spell there).
    sessions = family_sessions_frame(
        [
            ("P1", 0, "trunk", 1),
            ("P1", 3, "trunk", 2),  # event at 3
            ("P2", 0, "trunk", 1),
            ("P2", 2, "trunk", 1),  # discharged day 5 -> censored at 5
            ("P3", 0, "trunk", 1),
            ("P3", 5, "trunk", 2),  # event at 5
            ("P4", 0, "trunk", 1),
            ("P4", 7, "extensors", 1),  # in care; last session (any family) day 7 -> censored 7
            ("P5", 0, "trunk", 1),
            ("P5", 4, "trunk", 1),
            ("P5", 8, "trunk", 2),  # event at 8
            ("P6", 0, "trunk", 1),  # discharged day 10 -> censored at 10
        ]
    )
    patients = pd.DataFrame(
        {
            "patient_id": ["P1", "P2", "P3", "P4", "P5", "P6"],
            "discharge_date": [
                START + pd.Timedelta(days=20),
                START + pd.Timedelta(days=5),
                pd.NaT,
                pd.NaT,
                pd.NaT,
                START + pd.Timedelta(days=10),
            ],
        }
    )
    return sessions, patients


def test_time_to_next_level_matches_hand_product_limit(km_data):
    sessions, patients = km_data
    result = time_to_next_level(sessions, patients, families=["trunk"])
    # times: 3 event, 5 censored, 5 event, 7 censored, 8 event, 10 censored
    # t=3: at risk 6, 1 event -> S = 5/6 = 0.8333
    # t=5: at risk 5 (a censoring at 5 is still at risk), 1 event -> S = 5/6 * 4/5 = 0.6667
    # t=8: at risk 2 (P5, P6), 1 event -> S = 0.6667 * 1/2 = 0.3333
    table = result.table
    assert table["time_days"].tolist() == [0.0, 3.0, 5.0, 8.0]
    assert table["survival"].tolist() == pytest.approx([1.0, 5 / 6, 4 / 6, 2 / 6])
    assert table["at_risk"].tolist() == [6, 6, 5, 2]
    assert table["events"].tolist() == [0, 1, 1, 1]
    # Greenwood at t=3: se = S sqrt(1 / (6 x 5)) = 0.152145; log-log interval:
    # theta = ln(-ln 0.8333) = -1.701983, se_theta = 0.152145 / (0.8333 x 0.182322) = 1.001386
    # low = exp(-exp(theta + 1.959964 se_theta)) = 0.27312, high = exp(-exp(theta - ...)) = 0.97471
    first = table.iloc[1]
    assert first["ci_low"] == pytest.approx(0.27312, abs=1e-4)
    assert first["ci_high"] == pytest.approx(0.97471, abs=1e-4)
    # median: the first time S <= 0.5 -> day 8
    medians = result.medians.iloc[0]
    assert (medians["family"], medians["n_spells"], medians["n_events"]) == ("trunk", 6, 3)
    assert medians["median_days"] == 8.0
    spells = result.spells.set_index("patient_id")
    assert spells.loc["P4", "time_days"] == 7 and not spells.loc["P4", "progressed"]


def test_progression_spells_skip_and_top_level():
    # hop has 3 levels: 1 (day 0) -> 3 (day 4) -> 2 (day 6), discharged day 9
    sessions = family_sessions_frame(
        [("P1", 0, "hop", 1), ("P1", 4, "hop", 3), ("P1", 6, "hop", 2)]
    )
    patients = pd.DataFrame(
        {"patient_id": ["P1"], "discharge_date": [START + pd.Timedelta(days=9)]}
    )
    spells = progression_spells(sessions, patients, families=["hop"]).set_index("level")
    # level 1: first higher session is level 3 on day 4 -> event at 4
    # level 2: started day 6; the level-3 session came before -> censored at discharge, 9 - 6 = 3
    # level 3: top of the ladder -> no spell
    assert spells.index.tolist() == [1, 2]
    assert spells["time_days"].tolist() == [4, 3]
    assert spells["progressed"].tolist() == [True, False]


# R 4.2.2 survival: survfit(Surv(c(3,5,5,7,8,10), c(1,0,1,0,1,0)) ~ 1, conf.type = ...)
# rows at t = 3, 5, 8 (lower, upper)
R_KM_BOUNDS = {
    "log-log": [(0.27312284993, 0.9747124267), (0.19461663681, 0.9044341643),
                (0.01368487751, 0.7548440446)],
    "log": [(0.58265479548, 1.0), (0.37860646089, 1.0), (0.07460412276, 1.0)],
    "plain": [(0.5351343094, 1.0), (0.2894714220, 1.0), (0.0, 0.8323157399)],
}  # fmt: skip


@pytest.mark.parametrize("conf_type", ["log-log", "log", "plain"])
def test_km_interval_types_match_r_survfit(km_data, conf_type):
    sessions, patients = km_data
    result = time_to_next_level(sessions, patients, families=["trunk"], conf_type=conf_type)
    table = result.table.iloc[1:]  # the day-0 row is added by hipdata
    bounds = np.array(R_KM_BOUNDS[conf_type])
    assert table["ci_low"].to_numpy() == pytest.approx(bounds[:, 0], abs=1e-9)
    assert table["ci_high"].to_numpy() == pytest.approx(bounds[:, 1], abs=1e-9)
    assert result.table.attrs["conf_type"] == conf_type


def test_km_interval_default_is_log_log_and_rejects_unknown_types():
    low, high = km_interval(np.array([5 / 6]), np.array([5 / 6 * np.sqrt(1 / 30)]), alpha=0.05)
    assert (low[0], high[0]) == pytest.approx(R_KM_BOUNDS["log-log"][0], abs=1e-9)
    with pytest.raises(ValueError, match="conf_type"):
        km_interval(np.array([0.5]), np.array([0.1]), alpha=0.05, conf_type="logit")


def test_time_to_next_level_table_is_in_time_order_within_each_family():
    # Regression (issue 7, item 3): the table was sorted on family alone with an unstable sort,
    # which scrambled the rows of a curve once a family had more than a handful of times.
    rng = np.random.default_rng(7)
    rows = []
    for i in range(80):
        for family in ("hop", "trunk"):
            rows.append((f"P{i}", 0, family, 1))
            rows.append((f"P{i}", int(rng.integers(1, 60)), family, 2))
    sessions = family_sessions_frame(rows)
    patients = pd.DataFrame({"patient_id": [f"P{i}" for i in range(80)], "discharge_date": pd.NaT})
    for by_level in (False, True):
        table = time_to_next_level(
            sessions, patients, families=["trunk", "hop"], by_level=by_level
        ).table
        keys = ["family", "level"] if by_level else ["family"]
        assert table["family"].drop_duplicates().tolist() == ["trunk", "hop"]
        assert table.groupby(keys)["time_days"].apply(lambda t: t.is_monotonic_increasing).all()
        assert (table.groupby(keys)["time_days"].diff().dropna() > 0).all()
        assert table.groupby(keys)["survival"].apply(lambda s: s.is_monotonic_decreasing).all()


def test_time_to_next_level_by_level(km_data):
    sessions, patients = km_data
    result = time_to_next_level(sessions, patients, families=["trunk"], by_level=True)
    assert result.medians[["family", "level"]].values.tolist() == [["trunk", 1]]
    assert "level" in result.table.columns


# --------------------------------------------------------------------------------------------
# progression_rates
# --------------------------------------------------------------------------------------------
def test_progression_rates_unknown_in_denominator():
    patients = pd.DataFrame(
        {
            "patient_id": ["P1", "P2", "P3", "P4"],
            "clinic_id": ["A", "A", "A", "A"],
            "clinician_id": ["T1", "T1", "T2", None],
        }
    )
    progressions = pd.DataFrame(
        {
            "patient_id": ["P1"] * 5 + ["P2", "P3"],
            "kind": ["up", "load_up", "up", "down", "load_down", "load_up", "up"],
            "criterion_before": ["met", "unknown", "not_met", "met", "not_met", "met", "not_met"],
        }
    )
    summary = pd.DataFrame(
        {"patient_id": ["P1", "P2", "P3", "P4"], "held_back_episodes": [1, 2, 0, np.nan]}
    )
    rates = progression_rates(progressions, patients, patient_summary=summary).set_index(
        "clinician_id"
    )
    # T1: up/load_up events of P1 (met, unknown, not_met) and P2 (met) -> 4 events, 2 met
    # on-criteria share 2 / 4 = 0.5 (2 / 3 if unknown were wrongly dropped); early 1 / 4
    t1 = rates.loc["T1"]
    assert (t1["n_patients"], t1["n_up"], t1["n_load_up"], t1["n_events"]) == (2, 2, 2, 4)
    assert (t1["n_met"], t1["n_unknown"], t1["n_early"]) == (2, 1, 1)
    assert t1["on_criteria_share"] == 0.5 and t1["early_share"] == 0.25
    assert t1["held_back_episodes"] == 3
    t2 = rates.loc["T2"]
    assert (t2["n_events"], t2["n_met"], t2["n_early"], t2["early_share"]) == (1, 0, 1, 1.0)
    none = rates.loc["not recorded"]  # P4: no clinician, no events
    assert none["n_patients"] == 1 and none["n_events"] == 0
    assert np.isnan(none["on_criteria_share"]) and np.isnan(none["held_back_episodes"])
    by_clinic = progression_rates(progressions, patients, by="clinic_id").set_index("clinic_id")
    assert by_clinic.loc["A", "n_events"] == 5 and by_clinic.loc["A", "n_met"] == 2


# --------------------------------------------------------------------------------------------
# plots
# --------------------------------------------------------------------------------------------
@pytest.fixture
def weekly_load() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient_id": ["P1", "P1", "P1", "P2", "P2", "P1"],
            "week": [0, 1, 2, 0, 1, 0],
            "family": ["extensors"] * 5 + ["squat"],
            "sessions": [2, 2, 1, 2, 2, 2],
            "sets": [6, 6, 3, 6, 6, 6],
            "total_reps": [60.0, 60.0, 30.0, 48.0, 60.0, 60.0],
            "volume_load_kg": [0.0, 300.0, 200.0, 0.0, 400.0, 0.0],
            "tut_s": [0.0] * 6,
            "top_level": [1, 2, 2, 1, 2, 1],
            "top_load_kg": [0.0, 5.0, 6.0, 0.0, 10.0, 0.0],
            "volume_change_pct": [np.nan, np.nan, -33.3, np.nan, np.nan, np.nan],
        }
    )


@pytest.mark.parametrize("hue", ["family", None])
def test_plot_volume_and_level_progression_draw(weekly_load, hue):
    ax = plot_volume_progression(data=weekly_load, hue=hue)
    assert isinstance(ax, matplotlib.axes.Axes) and len(ax.lines) > 0
    assert len(ax.collections) > 0  # the IQR band (one or two lines: shaded by default)
    ax = plot_volume_progression(data=weekly_load, y="total_reps", hue=hue)
    assert "reps" in ax.get_ylabel()
    ax = plot_level_progression(data=weekly_load, hue=hue, iqr=False)
    assert isinstance(ax, matplotlib.axes.Axes) and len(ax.lines) > 0
    assert len(ax.collections) == 0


def test_plot_ladder_funnel_and_time_to_progression_draw(funnel_sessions, km_data):
    ax = plot_ladder_funnel(data=ladder_funnel(funnel_sessions))
    assert isinstance(ax, matplotlib.axes.Axes)
    assert len(ax.lines) == 2  # hop and trunk; families without patients are not drawn
    sessions, patients = km_data
    _, given_ax = plt.subplots()
    ax = plot_time_to_progression(data=time_to_next_level(sessions, patients), ax=given_ax)
    assert ax is given_ax and len(ax.lines) > 0 and len(ax.collections) > 0


# --------------------------------------------------------------------------------------------
# competing risks: Aalen-Johansen cumulative incidence
# --------------------------------------------------------------------------------------------
def test_aalen_johansen_hand_worked_and_r_survfit():
    # times 3 P, 5 C, 5 P, 7 censored, 8 P, 10 C (P progression, C competing), by hand:
    # t=3: n=6, F1 = 1/6, S = 5/6; t=5: n=5, F1 += 5/6 x 1/5 -> 1/3, F2 = 1/6, S = 1/2
    # t=8: n=2, F1 += 1/2 x 1/2 -> 7/12; t=10: n=1, F2 += 1/4 -> 5/12, S = 0
    # R 4.2.2 survival: survfit(Surv(t, factor(s, 0:2)) ~ 1)$pstate gives the same
    table = aalen_johansen([3, 5, 5, 7, 8, 10], [1, 2, 1, 0, 1, 2])
    assert table["time"].tolist() == [3, 5, 7, 8, 10]
    assert table["at_risk"].tolist() == [6, 5, 3, 2, 1]
    assert table["cif"].tolist() == pytest.approx([1 / 6, 1 / 3, 1 / 3, 7 / 12, 7 / 12])
    assert table["cif_competing"].tolist() == pytest.approx([0, 1 / 6, 1 / 6, 1 / 6, 5 / 12])
    assert table["event_free"].tolist() == pytest.approx([5 / 6, 1 / 2, 1 / 2, 1 / 4, 0])


def test_aalen_johansen_with_ties_matches_r_survfit():
    time = [2, 2, 3, 4, 4, 4, 6, 7, 7, 9, 10, 12, 12, 12, 15, 18, 20, 21, 25, 30]
    cause = [1, 2, 0, 1, 1, 2, 0, 1, 2, 1, 0, 2, 1, 1, 0, 1, 2, 0, 1, 0]
    # R 4.2.2 survival: survfit(Surv(time, factor(cause, 0:2)) ~ 1): n.risk, pstate[, 2:3]
    r_at_risk = [20, 18, 17, 14, 13, 11, 10, 9, 6, 5, 4, 3, 2, 1]
    r_cif = [0.05, 0.05, 0.1558823529, 0.1558823529, 0.2128959276, 0.2699095023,
             0.2699095023, 0.3966063348, 0.3966063348, 0.4726244344, 0.4726244344,
             0.4726244344, 0.5866515837, 0.5866515837]  # fmt: skip
    r_competing = [0.05, 0.05, 0.1029411765, 0.1029411765, 0.1599547511, 0.1599547511,
                   0.1599547511, 0.2233031674, 0.2233031674, 0.2233031674, 0.2993212670,
                   0.2993212670, 0.2993212670, 0.2993212670]  # fmt: skip
    table = aalen_johansen(time, cause)
    assert table["at_risk"].tolist() == r_at_risk
    assert table["cif"].to_numpy() == pytest.approx(r_cif, abs=1e-9)
    assert table["cif_competing"].to_numpy() == pytest.approx(r_competing, abs=1e-9)
    with pytest.raises(ValueError, match="cause"):
        aalen_johansen([1, 2], [1, 3])


def test_progression_incidence_counts_surgery_and_drop_out_as_competing(km_data):
    sessions, patients = km_data
    # P2 (no event, discharged day 5) dropped out; P6 (discharged day 10) referred for surgery;
    # P4 in care stays censored at 7: the hand-worked example above.
    patients = patients.assign(
        discharge_reason=["completed", "dropped_out", None, None, None, "referred_surgery"]
    )
    spells = progression_spells(sessions, patients, families=["trunk"]).set_index("patient_id")
    assert spells["outcome"].to_dict() == {
        "P1": "progressed",
        "P2": "competing",
        "P3": "progressed",
        "P4": "censored",
        "P5": "progressed",
        "P6": "competing",
    }
    table = progression_incidence(sessions, patients, families=["trunk"])
    assert table["time_days"].tolist() == [0, 3, 5, 7, 8, 10]
    assert table["cif_progression"].tolist() == pytest.approx(
        [0, 1 / 6, 1 / 3, 1 / 3, 7 / 12, 7 / 12]
    )
    # 1 - KM with competing discharges censored (the earlier hand-worked KM): 1 - 1/3 at day 8
    assert table["km_progression"].iloc[4] == pytest.approx(2 / 3)
    assert (table["km_progression"] >= table["cif_progression"] - 1e-12).all()
    # without discharge reasons nothing competes and the two agree
    plain = progression_incidence(sessions, patients.drop(columns="discharge_reason"))
    assert plain["cif_progression"].to_numpy() == pytest.approx(plain["km_progression"].to_numpy())


def test_plot_cumulative_incidence_draws_both_curves(km_data):
    sessions, patients = km_data
    patients = patients.assign(discharge_reason=[None, "dropped_out", None, None, None, None])
    table = progression_incidence(sessions, patients, families=["trunk"])
    ax = plot_cumulative_incidence(data=table)
    solid, dashed = ax.lines[0], ax.lines[1]
    assert solid.get_linestyle() == "-" and dashed.get_linestyle() == "--"
    # the last step of each curve is its final value in %: AJ below 1 - KM
    assert solid.get_ydata()[-1] == pytest.approx(100 * table["cif_progression"].iloc[-1])
    assert dashed.get_ydata()[-1] >= solid.get_ydata()[-1]
    assert "Days" in ax.get_xlabel()
