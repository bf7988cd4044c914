"""Tests for hipdata.analysis.outcomes and the outcome-change plot."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402

from hipdata.analysis.outcomes import (  # noqa: E402
    adherence_outcome_association,
    followup_completeness,
    mean_change,
    outcome_mixed_model,
    responder_rates,
    responder_sensitivity,
)
from hipdata.plots.pain import plot_outcome_change  # noqa: E402

OUTCOME_CHANGE_COLUMNS = [
    "patient_id",
    "measure",
    "baseline",
    "followup",
    "improvement",
    "pct_improvement",
    "responder",
]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def patients() -> pd.DataFrame:
    # P1-P3 in clinic C1, P4-P6 in C2; P6 is still in care.
    return pd.DataFrame(
        {
            "patient_id": ["P1", "P2", "P3", "P4", "P5", "P6"],
            "clinic_id": ["C1", "C1", "C1", "C2", "C2", "C2"],
            "start_date": pd.to_datetime(["2026-01-05"] * 6),
            "discharge_date": pd.to_datetime(["2026-03-02"] * 5 + [None]),
        }
    )


@pytest.fixture
def outcome_change() -> pd.DataFrame:
    # NPRS (lower is better, so improvement = baseline - followup; responder: >= 2 points or 30 %)
    #   P1 6 -> 2: +4 (66.7 %) yes     P2 5 -> 4: +1 (20 %) no     P3 8 -> 5: +3 (37.5 %) yes
    #   P4 4 -> 3: +1 (25 %) no        P5 7 -> (no follow-up)     P6 6 -> (in care)
    # HOOS Pain (higher is better): P1 50 -> 70: +20 yes
    return pd.DataFrame(
        {
            "patient_id": ["P1", "P2", "P3", "P4", "P5", "P6", "P1"],
            "measure": ["nprs"] * 6 + ["hoos_pain"],
            "baseline": [6.0, 5.0, 8.0, 4.0, 7.0, 6.0, 50.0],
            "followup": [2.0, 4.0, 5.0, 3.0, np.nan, np.nan, 70.0],
            "improvement": [4.0, 1.0, 3.0, 1.0, np.nan, np.nan, 20.0],
            "pct_improvement": [66.7, 20.0, 37.5, 25.0, np.nan, np.nan, 40.0],
            "responder": pd.array([True, False, True, False, None, None, True], dtype="boolean"),
        }
    )[OUTCOME_CHANGE_COLUMNS]


# --- responder rates -----------------------------------------------------------------------


def test_responder_rates_counts_and_wilson_interval(outcome_change):
    table = responder_rates(outcome_change).set_index("measure")
    nprs = table.loc["nprs"]
    # 2 responders among 4 with both scores; 2 with no follow-up (P5, P6)
    assert (nprs["n_patients"], nprs["n_followup"], nprs["missing_followup"]) == (6, 4, 2)
    assert nprs["responders"] == 2
    assert nprs["responder_rate"] == 0.5
    # Wilson 2/4, z = 1.959964: centre (2 + 1.920729) / 7.841459 = 0.5,
    # half 1.959964 / 7.841459 x sqrt(2 x 2 / 4 + 0.960365) = 0.349961 -> (0.150039, 0.849961)
    assert (nprs["ci_low"], nprs["ci_high"]) == pytest.approx((0.150039, 0.849961), abs=1e-6)
    assert table.loc["hoos_pain", "responders"] == 1


def test_responder_sensitivity_complete_case_and_bounds(outcome_change, patients):
    table = responder_sensitivity(outcome_change, patients=patients)
    nprs = table.loc[table["measure"] == "nprs"].set_index("scenario")
    # eligible: NPRS baseline and discharged = P1-P5 (P6 in care is not due a follow-up);
    # followed up P1-P4 with 2 responders; P5 missing
    assert nprs[["n_eligible", "n_followup", "n_missing", "responders"]].iloc[0].tolist() == [
        5,
        4,
        1,
        2,
    ]
    assert nprs["numerator"].tolist() == [2, 2, 3]
    assert nprs["denominator"].tolist() == [4, 5, 5]
    assert nprs["rate"].tolist() == pytest.approx([0.5, 0.4, 0.6])
    # complete case = responder_rates' Wilson 2/4 (0.150039, 0.849961); bounds: Wilson 2/5,
    # z = 1.959964: centre (2 + 1.920729) / 8.841459 = 0.443448, half 1.959964 / 8.841459 x
    # sqrt(2 x 3 / 5 + 0.960365) = 0.221679 x 1.469818 = 0.325827 -> (0.117621, 0.769275);
    # 3/5 mirrors it
    assert nprs.loc["complete_case", ["ci_low", "ci_high"]].tolist() == pytest.approx(
        [0.150039, 0.849961], abs=1e-6
    )
    assert nprs.loc["missing_non_responder", ["ci_low", "ci_high"]].tolist() == pytest.approx(
        [0.117621, 0.769275], abs=1e-5
    )
    assert nprs.loc["missing_responder", ["ci_low", "ci_high"]].tolist() == pytest.approx(
        [1 - 0.769275, 1 - 0.117621], abs=1e-5
    )
    # without patients (discharge unknown) P6 counts as eligible and missing
    assert responder_sensitivity(outcome_change).query("measure == 'nprs'")[
        "denominator"
    ].tolist() == [4, 6, 6]
    by_clinic = responder_sensitivity(outcome_change, by="clinic_id", patients=patients)
    c1 = by_clinic.query("measure == 'nprs' and clinic_id == 'C1'")
    assert c1["numerator"].tolist() == [2, 2, 2] and c1["denominator"].tolist() == [3, 3, 3]


def test_responder_rates_8_of_10_matches_wilson_formula():
    change = pd.DataFrame(
        {
            "patient_id": [f"P{i}" for i in range(10)],
            "measure": "hoos_pain",
            "responder": pd.array([True] * 8 + [False] * 2, dtype="boolean"),
        }
    )
    row = responder_rates(change).iloc[0]
    # Wilson 8/10: centre 9.920729 / 13.841459 = 0.716738, half 0.141600 x 1.600114 = 0.226576
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert row["responder_rate"] == 0.8


def test_responder_rates_by_clinic_from_patients(outcome_change, patients):
    table = responder_rates(outcome_change, by="clinic_id", patients=patients)
    nprs = table.loc[table["measure"] == "nprs"].set_index("clinic_id")
    # C1: P1-P3 all paired, 2 responders; C2: only P4 paired, not a responder
    assert nprs.loc["C1", ["n_followup", "responders"]].tolist() == [3, 2]
    assert nprs.loc["C2", ["n_patients", "n_followup", "missing_followup"]].tolist() == [3, 1, 2]
    # Wilson 0/1: centre 1.920729 / 4.841459 = 0.396725, half 1.959964 / 4.841459 x
    # sqrt(0.960365) = 0.396725 -> (0, 0.793450)
    assert (nprs.loc["C2", "ci_low"], nprs.loc["C2", "ci_high"]) == pytest.approx(
        (0.0, 0.793450), abs=1e-6
    )


def test_responder_rates_by_needs_the_column(outcome_change):
    with pytest.raises(ValueError, match="clinic_id"):
        responder_rates(outcome_change, by="clinic_id")


# --- mean change and completeness ----------------------------------------------------------


def test_mean_change_t_interval(outcome_change):
    table = mean_change(outcome_change).set_index("measure")
    nprs = table.loc["nprs"]
    # improvements 4, 1, 3, 1: mean 2.25; squared deviations 3.0625 + 1.5625 + 0.5625 + 1.5625
    # = 6.75, / 3 = 2.25 -> sd 1.5; t(0.975, 3) = 3.182446 (t table): half 3.182446 x 1.5 / 2
    # = 2.386835 -> (-0.136835, 4.636835). Baselines 6 5 8 4 -> 5.75; follow-ups 2 4 5 3 -> 3.5
    assert (nprs["n"], nprs["missing_followup"]) == (4, 2)
    assert nprs["mean_improvement"] == pytest.approx(2.25)
    assert nprs["sd_improvement"] == pytest.approx(1.5)
    assert (nprs["ci_low"], nprs["ci_high"]) == pytest.approx((-0.136835, 4.636835), abs=1e-6)
    assert (nprs["mean_baseline"], nprs["mean_followup"]) == (5.75, 3.5)
    assert table.loc["hoos_pain", "n"] == 1
    assert math.isnan(table.loc["hoos_pain", "ci_low"])


def test_followup_completeness_excludes_patients_in_care(outcome_change, patients):
    nprs = followup_completeness(outcome_change, patients=patients).set_index("measure").loc["nprs"]
    # 6 with a baseline, P6 still in care -> 5 expected; 4 have both -> 4 / 5
    assert nprs["n_patients"] == 6
    assert nprs["in_care"] == 1
    assert (nprs["with_baseline"], nprs["with_followup"], nprs["with_both"]) == (6, 4, 4)
    assert nprs["expected_followup"] == 5
    assert nprs["followup_share"] == pytest.approx(0.8)
    # without patients discharge is unknown: 4 / 6
    unknown = followup_completeness(outcome_change).set_index("measure").loc["nprs"]
    assert unknown["followup_share"] == pytest.approx(4 / 6)


# --- adherence association (planted slope) -------------------------------------------------


def simulated_cohort(seed: int = 2026, n: int = 400, attendance_effect: float = 2.0):
    """Patients whose NPRS improvement = 0.5 + effect x attendance + 0.4 baseline - 0.01 age
    + 0.3 [male] + heteroscedastic noise; five patients have no age recorded."""
    rng = np.random.default_rng(seed)
    ids = [f"P{i:04d}" for i in range(n)]
    attendance = rng.uniform(0.3, 1.2, n)
    baseline = rng.uniform(3, 9, n)
    age = rng.integers(20, 80, n)
    sex = rng.choice(["F", "M"], n)
    noise = rng.normal(0, 1, n) * (0.5 + attendance)
    improvement = (
        0.5
        + attendance_effect * attendance
        + 0.4 * baseline
        - 0.01 * age
        + 0.3 * (sex == "M")
        + noise
    )
    patients = pd.DataFrame(
        {
            "patient_id": ids,
            "clinic_id": "C1",
            "sex": sex,
            "age_years": pd.array(age, dtype="Int64"),
        }
    )
    patients.loc[:4, "age_years"] = pd.NA
    summary = pd.DataFrame({"patient_id": ids, "clinic_id": "C1", "attendance": attendance})
    change = pd.DataFrame(
        {
            "patient_id": ids,
            "measure": "nprs",
            "baseline": baseline,
            "followup": baseline - improvement,
            "improvement": improvement,
            "pct_improvement": 100 * improvement / baseline,
            "responder": pd.array(improvement >= 2, dtype="boolean"),
        }
    )
    return change, summary, patients


def test_adherence_association_recovers_planted_slope():
    change, summary, patients = simulated_cohort()
    table = adherence_outcome_association(change, summary, patients)
    assert list(table.columns) == [
        "term",
        "estimate",
        "std_error",
        "ci_low",
        "ci_high",
        "p_value",
        "n",
    ]
    assert list(table["term"]) == ["Intercept", "sex[T.M]", "attendance", "baseline", "age_years"]
    row = table.set_index("term").loc["attendance"]
    assert row["ci_low"] <= 2.0 <= row["ci_high"]  # planted attendance effect
    assert row["std_error"] > 0
    baseline = table.set_index("term").loc["baseline"]
    assert baseline["ci_low"] <= 0.4 <= baseline["ci_high"]
    assert (table["n"] == 395).all()  # 400 minus the five without age
    assert "5 of 400 patients" in table.attrs["notes"][0]


def test_adherence_association_refuses_too_few_patients():
    change, summary, patients = simulated_cohort(n=50)
    with pytest.raises(ValueError, match="too few patients"):
        adherence_outcome_association(change, summary, patients, measure="hoos_pain")


# --- outcome mixed model (planted change) --------------------------------------------------


def test_outcome_mixed_model_recovers_planted_weekly_change():
    # 80 patients, NPRS at day -3, 42 and 84; score = 6.5 + u_i - 0.3 x weeks + e, u ~ N(0, 1),
    # e ~ N(0, 0.8); a third of the 6- and 12-week scores are missing (nothing carried forward).
    rng = np.random.default_rng(42)
    n = 80
    ids = np.array([f"P{i:03d}" for i in range(n)])
    start = pd.Timestamp("2026-01-05") + pd.to_timedelta(rng.integers(0, 60, n), unit="D")
    days = np.tile([-3, 42, 84], n)
    patient = np.repeat(np.arange(n), 3)
    score = 6.5 + rng.normal(0, 1, n)[patient] - 0.3 * days / 7 + rng.normal(0, 0.8, days.size)
    keep = (days < 0) | (rng.random(days.size) > 1 / 3)
    outcomes = pd.DataFrame(
        {
            "patient_id": ids[patient],
            "date": start[patient] + pd.to_timedelta(days, unit="D"),
            "measure": "nprs",
            "score": score,
        }
    ).loc[keep]
    other = outcomes.assign(measure="hoos_pain", score=50.0)
    patients = pd.DataFrame({"patient_id": ids, "start_date": start})
    fit = outcome_mixed_model(pd.concat([outcomes, other]), patients, measure="nprs")
    slope = fit.summary.set_index("term").loc["weeks_since_start"]
    assert slope["ci_low"] <= -0.3 <= slope["ci_high"]
    assert fit.random_effects == "intercept"
    assert (fit.n_obs, fit.n_groups) == (int(keep.sum()), n)
    assert fit.converged


# --- plot ----------------------------------------------------------------------------------


def test_plot_outcome_change_histogram(outcome_change):
    fig, ax = plt.subplots()
    returned = plot_outcome_change(data=outcome_change, measure="nprs", ax=ax, bins=4)
    assert returned is ax
    assert len(ax.patches) == 4  # four histogram bars
    assert sum(p.get_height() for p in ax.patches) == 4  # four patients with both scores
    mcid = [line for line in ax.lines if line.get_label().startswith("MCID")]
    assert len(mcid) == 1
    assert list(mcid[0].get_xdata()) == [2.0, 2.0]  # NPRS MCID: 2 points
    assert "Responders: 2/4 (50 %)" in ax.get_title()


def test_plot_outcome_change_paired(outcome_change):
    ax = plot_outcome_change(data=outcome_change, measure="nprs", kind="paired")
    segments = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(segments) == 1
    assert len(segments[0].get_segments()) == 4
    mean_line = [line for line in ax.lines if line.get_label() == "Mean"][0]
    assert list(mean_line.get_ydata()) == [5.75, 3.5]


# --- HC3 at leverage 1, sex "unknown" --------------------------------------------------------

# twelve patients; the last is the only one with sex X, so its leverage is exactly 1
HC3_FIXTURE = {
    "improvement": [1.2, 2.5, 0.3, 3.1, 2.2, 1.8, 0.9, 2.7, 1.5, 3.4, 2.0, 0.6],
    "attendance": [0.5, 0.9, 0.3, 1.0, 0.8, 0.7, 0.4, 0.95, 0.6, 1.1, 0.75, 0.35],
    "sex": list("FMFMFMFMFMFX"),
}


def _hc3_tables(sex: list[str]):
    ids = [f"P{i:02d}" for i in range(12)]
    change = pd.DataFrame(
        {"patient_id": ids, "measure": "nprs", "improvement": HC3_FIXTURE["improvement"]}
    )
    summary = pd.DataFrame({"patient_id": ids, "attendance": HC3_FIXTURE["attendance"]})
    patients = pd.DataFrame({"patient_id": ids, "sex": sex})
    return change, summary, patients


def test_hc3_with_a_level_held_by_one_patient_is_nan_with_a_warning():
    # R 4.2.2 sandwich 3.0: d <- data.frame(y, att, sex); f <- lm(y ~ att + sex, d)
    # hatvalues(f)[12] == 1; sqrt(diag(vcovHC(f, type = "HC3"))) is NaN for every term, with
    # "HC3 covariances become numerically unstable if hat values are close to 1"; coef(f):
    # (Intercept) -0.73814340970, att 3.73995834573, sexM -0.04001785183, sexX 0.02915798869.
    # statsmodels' HC3 gave sex[T.X] an SE of 4.25 here (0/0 evaluated in floating point).
    change, summary, patients = _hc3_tables(HC3_FIXTURE["sex"])
    with pytest.warns(RuntimeWarning, match="leverage 1"):
        table = adherence_outcome_association(
            change, summary, patients, covariates=("sex",)
        ).set_index("term")
    assert table["estimate"].to_dict() == pytest.approx(
        {
            "Intercept": -0.73814340970,
            "attendance": 3.73995834573,
            "sex[T.M]": -0.04001785183,
            "sex[T.X]": 0.02915798869,
        },
        abs=1e-9,
    )
    assert table[["std_error", "ci_low", "ci_high", "p_value"]].isna().all().all()
    assert any("leverage 1" in note for note in table.attrs["notes"])


def test_sex_unknown_is_missing_in_the_association_model():
    # The X patient recorded as "unknown" instead: missing (as in Table 1), so 11 patients and
    # a clean HC3 fit. R 4.2.2: lm(y ~ att + sex, d[1:11, ]); sqrt(diag(vcovHC(f, "HC3"))):
    # (Intercept) 0.14819481676, att 0.21621748849, sexM 0.08073925132 (coef att 3.73995834573)
    sex = [*HC3_FIXTURE["sex"][:11], "unknown"]
    change, summary, patients = _hc3_tables(sex)
    table = adherence_outcome_association(change, summary, patients, covariates=("sex",))
    table = table.set_index("term")
    assert list(table.index) == ["Intercept", "sex[T.M]", "attendance"]
    assert (table["n"] == 11).all()
    assert table.loc["attendance", "estimate"] == pytest.approx(3.73995834573, abs=1e-9)
    assert table["std_error"].to_dict() == pytest.approx(
        {"Intercept": 0.14819481676, "attendance": 0.21621748849, "sex[T.M]": 0.08073925132},
        abs=1e-9,
    )
    assert "1 of 12 patients" in table.attrs["notes"][0]
