"""Tests of the synthetic cohort generator: its tables follow CONTRACT §1 and its planted effects
can be recovered from the tables alone, with small pandas computations written here
independently of ``hipdata.metrics``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from hipdata.catalogue import load_catalogue
from hipdata.outcome_measures import MEASURES
from hipdata.protocol import (
    BASELINE_WINDOW_DAYS,
    CRITERION_HOLD_S,
    CRITERION_REPS,
    CRITERION_SETS,
    FAMILIES,
    FOLLOWUP_WINDOW_DAYS,
    HELD_BACK_SESSIONS,
    PAIN_THRESHOLD,
)
from hipdata.synth import (
    EXERCISE_COLUMNS,
    TABLES,
    Planted,
    SynthCohort,
    generate,
    write_cohort,
)

N_PATIENTS = 300
SEED = 20261127
DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"


@pytest.fixture(scope="module")
def cohort() -> SynthCohort:
    return generate(N_PATIENTS, seed=SEED)


@pytest.fixture(scope="module")
def catalogue() -> pd.DataFrame:
    return load_catalogue()


@pytest.fixture(scope="module")
def family_sessions(cohort, catalogue) -> pd.DataFrame:
    """One row per patient x family x date with level, top load, volume load and criterion.

    Written here from CONTRACT §4 (one exercise per family session in the generator, but the
    computation below keeps only the sets at the highest level, as the contract says).
    """
    sets = cohort.tables["exercises"].merge(
        catalogue[["id", "family", "level", "dose"]].rename(columns={"id": "exercise"}),
        on="exercise",
    )
    sets["load"] = sets["load_kg"].fillna(0.0)
    sets["volume"] = sets["reps"].astype(float).fillna(0.0) * sets["load"]
    key = ["patient_id", "family", "date"]
    sets = sets[sets["level"] == sets.groupby(key)["level"].transform("max")]
    reached = np.where(
        sets["dose"] == "reps",
        sets["reps"].astype(float) >= CRITERION_REPS,
        sets["hold_s"].astype(float) >= CRITERION_HOLD_S,
    )
    table = (
        sets.assign(reached=reached)
        .groupby(key)
        .agg(
            level=("level", "max"),
            top_load=("load", "max"),
            volume=("volume", "sum"),
            sets_reached=("reached", "sum"),
            worst_during=("pain_during", "max"),
            pain_24h=("pain_24h", "max"),
        )
        .reset_index()
    )
    during = table["worst_during"].astype(float)
    after = table["pain_24h"].astype(float)
    fails = (
        (table["sets_reached"] < CRITERION_SETS)
        | (during > PAIN_THRESHOLD)
        | (after > PAIN_THRESHOLD)
    )
    unknown = during.isna() | after.isna()
    table["criterion"] = np.where(fails, "not_met", np.where(unknown, "unknown", "met"))
    table = table.sort_values(key, ignore_index=True)
    previous = table.groupby(["patient_id", "family"])[["level", "top_load", "volume", "criterion"]]
    previous = previous.shift()
    table["prev_level"] = previous["level"]
    table["prev_load"] = previous["top_load"]
    table["prev_criterion"] = previous["criterion"]
    table["volume_change_pct"] = np.where(
        previous["volume"] > 0,
        100 * (table["volume"] - previous["volume"]) / previous["volume"],
        np.nan,
    )
    return table


def test_same_seed_same_tables_other_seed_differs():
    first, second = generate(80, seed=11), generate(80, seed=11)
    assert first.truth == second.truth
    for name in TABLES:
        pd.testing.assert_frame_equal(first.tables[name], second.tables[name])
    other = generate(80, seed=12)
    assert not other.tables["exercises"].equals(first.tables["exercises"])


def test_tables_have_contract_columns(cohort):
    assert list(cohort.tables["exercises"].columns) == EXERCISE_COLUMNS
    assert set(cohort.tables["patients"].columns) >= {
        "patient_id",
        "clinic_id",
        "clinician_id",
        "sex",
        "age_years",
        "condition",
        "athlete",
        "start_date",
        "discharge_date",
        "discharge_reason",
        "planned_sessions_per_week",
    }
    assert list(cohort.tables["activity"].columns) == [
        "patient_id",
        "date",
        "cardio_min",
        "strength_sessions",
    ]
    assert list(cohort.tables["outcomes"].columns) == ["patient_id", "date", "measure", "score"]
    assert list(cohort.tables["treatments"].columns) == ["patient_id", "date", "treatment"]


def test_patients_are_plausible(cohort):
    patients = cohort.tables["patients"]
    assert patients["patient_id"].is_unique
    assert patients["patient_id"].str.fullmatch(r"P\d{5}").all()
    assert patients["clinic_id"].str.fullmatch(r"C\d{2}").all()
    # Every clinician belongs to one clinic, whose id prefixes theirs.
    assert (patients["clinician_id"].str[:3] == patients["clinic_id"]).all()
    assert patients.groupby("clinician_id")["clinic_id"].nunique().max() == 1
    assert patients["clinic_id"].nunique() == 4
    assert patients["age_years"].between(18, 85).all()
    assert set(patients["sex"]) <= {"F", "M", "X", "unknown"}
    assert set(patients["planned_sessions_per_week"]) <= {1, 2, 3}
    reasons = {"completed", "dropped_out", "referred_surgery", "referred_injection", "other"}
    assert set(patients["discharge_reason"].dropna()) <= reasons
    in_care = patients["discharge_date"].isna()
    assert in_care.any() and (~in_care).any()
    assert patients.loc[in_care, "discharge_reason"].isna().all()
    assert (patients["discharge_date"].dropna() >= patients["start_date"][~in_care]).all()
    quarters = patients["start_date"].dt.to_period("Q").nunique()
    assert quarters >= 4


def test_dates_inside_the_period(cohort):
    start, end = pd.Timestamp(cohort.truth["start"]), pd.Timestamp(cohort.truth["end"])
    patients = cohort.tables["patients"].set_index("patient_id")
    for name in ("exercises", "activity", "treatments"):
        dates = cohort.tables[name]["date"]
        assert dates.between(start, end).all(), name
        # ... and never before the patient's own start (CONTRACT allows 7 days; none are used).
        own_start = cohort.tables[name]["patient_id"].map(patients["start_date"])
        assert (dates >= own_start).all(), name
    assert patients["start_date"].between(start, end).all()
    assert (patients["discharge_date"].dropna() <= end).all()
    assert (cohort.tables["outcomes"]["date"] <= end).all()


def test_outcomes_fall_in_the_contract_windows(cohort):
    outcomes = cohort.tables["outcomes"].merge(cohort.tables["patients"], on="patient_id")
    first = outcomes.groupby(["patient_id", "measure"])["date"].transform("min")
    baseline = outcomes[outcomes["date"] == first]
    followup = outcomes[outcomes["date"] != first]
    offset = (baseline["date"] - baseline["start_date"]).dt.days
    assert offset.between(*BASELINE_WINDOW_DAYS).all()
    offset = (followup["date"] - followup["discharge_date"]).dt.days
    assert offset.between(*FOLLOWUP_WINDOW_DAYS).all()
    for name, scores in outcomes.groupby("measure")["score"]:
        assert scores.between(MEASURES[name].low, MEASURES[name].high).all(), name
    assert set(outcomes["measure"]) == set(cohort.truth["attendance_effect"])


def test_exercises_use_the_catalogue(cohort, catalogue):
    exercises = cohort.tables["exercises"]
    assert set(exercises["exercise"]) <= set(catalogue["id"])
    families = exercises["exercise"].map(catalogue.set_index("id")["family"])
    assert set(families) == set(FAMILIES)
    # Every exercise of every ladder is reached somewhere in a 300-patient cohort.
    assert set(exercises["exercise"]) == set(catalogue["id"])
    assert not exercises.duplicated(["patient_id", "date", "exercise", "set"]).any()


def test_set_values_in_range(cohort, catalogue):
    exercises = cohort.tables["exercises"]
    dose = exercises["exercise"].map(catalogue.set_index("id")["dose"])
    assert exercises["reps"][dose == "reps"].between(6, 12).all()
    assert exercises["reps"][dose == "hold"].isna().all()
    assert exercises["hold_s"][dose == "hold"].between(10, 35).all()
    assert (
        exercises.loc[exercises["exercise"] == "side_lying_adduction", "hold_s"].between(2, 3).all()
    )
    assert exercises["set"].between(1, CRITERION_SETS).all()
    for column in ("pain_during", "pain_24h"):
        assert exercises[column].dropna().between(0, 10).all()
    # pain_24h is a session value: one distinct recorded value per session at most.
    assert exercises.groupby(["patient_id", "date"])["pain_24h"].nunique().max() == 1
    loaded = exercises["load_kg"].notna()
    assert set(exercises.loc[loaded, "exercise"]) == set(cohort.truth["loaded_exercises"])
    assert (exercises.loc[loaded, "load_kg"] > 0).all()
    # Flares happen.
    assert (exercises["pain_24h"].dropna() > PAIN_THRESHOLD).mean() > 0.05


def test_pain_24h_missing_rate_recovered(cohort):
    sessions = cohort.tables["exercises"].groupby(["patient_id", "date"])["pain_24h"].max()
    rate = cohort.truth["pain_24h_missing_rate"]
    # Each session is left empty independently with probability `rate`: the share is binomial,
    # standard error sqrt(rate (1 - rate) / n) (about 0.005 for ~4 600 sessions). Four standard
    # errors fail a correct generator with probability < 1e-4.
    tolerance = 4 * np.sqrt(rate * (1 - rate) / len(sessions))
    assert abs(sessions.isna().mean() - rate) < tolerance


def test_early_clinician_progresses_least_on_criteria(cohort, family_sessions):
    table = family_sessions
    same_level = table["level"] == table["prev_level"]
    progression = (table["level"] > table["prev_level"]) | (
        same_level & (table["top_load"] > table["prev_load"])
    )
    events = table[progression].merge(
        cohort.tables["patients"][["patient_id", "clinician_id"]], on="patient_id"
    )
    share_met = (events["prev_criterion"] == "met").groupby(events["clinician_id"]).mean()
    assert share_met.idxmin() == cohort.truth["early_clinician"]
    # "say 40 % of their progressions" on criteria not met: planted at 0.3 per session not met.
    early_not_met = (
        events.loc[events["clinician_id"] == cohort.truth["early_clinician"], "prev_criterion"]
        .eq("not_met")
        .mean()
    )
    assert 0.25 < early_not_met < 0.6


def test_held_back_clinician_holds_back_most(cohort, family_sessions):
    table = family_sessions.copy()
    new_run = (table["level"] != table["prev_level"]) | (table["top_load"] != table["prev_load"])
    table["run"] = new_run.groupby([table["patient_id"], table["family"]]).cumsum()
    run_key = ["patient_id", "family", "run"]
    table["position"] = table.groupby(run_key).cumcount()
    table["run_length"] = table.groupby(run_key)["position"].transform("size")
    met = (
        table[table["criterion"] == "met"]
        .groupby(run_key)
        .agg(first_met=("position", "min"), run_length=("run_length", "first"))
    )
    met["held_back"] = met["run_length"] - 1 - met["first_met"] >= HELD_BACK_SESSIONS
    met = met.reset_index().merge(
        cohort.tables["patients"][["patient_id", "clinician_id"]], on="patient_id"
    )
    share = met.groupby("clinician_id")["held_back"].mean()
    assert share.idxmax() == cohort.truth["held_back_clinician"]


def _session_pain(cohort, family_sessions) -> pd.DataFrame:
    """Per session: pain_24h, the largest family volume change (%) and the CONTRACT §4 week."""
    sessions = (
        family_sessions.groupby(["patient_id", "date"])
        .agg(largest=("volume_change_pct", "max"), pain_24h=("pain_24h", "max"))
        .astype(float)
        .reset_index()
    )
    start = sessions["patient_id"].map(
        cohort.tables["patients"].set_index("patient_id")["start_date"]
    )
    sessions["week"] = (sessions["date"] - start).dt.days // 7
    return sessions


def test_dose_response_slope_recovered(cohort, family_sessions):
    # The generator plants latent pain_24h = intercept + slope_patient x week + dose x largest / 10
    # + noise. The volume changes drift with the week of care (progression follows falling pain),
    # so the planted dose slope is the one adjusted for week; patients are their own controls
    # (fixed effects) and errors are clustered by patient (each has their own weekly slope).
    sessions = _session_pain(cohort, family_sessions).dropna()
    sessions["dose"] = sessions["largest"] / 10
    fit = smf.ols("pain_24h ~ dose + week + C(patient_id)", sessions).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(sessions["patient_id"])[0]}
    )
    planted = cohort.truth["dose_response_per_10pct"]
    assert abs(fit.params["dose"] - planted) < 3 * fit.bse["dose"]


def test_pain_24h_falls_over_care_at_the_planted_rate(cohort, family_sessions):
    # Take the planted dose-response out (the generator counts a session without any volume change
    # as 0 %), then the within-patient slope on week is the planted mean weekly change: each
    # patient's slope is planted + Normal(0, sd), independent of their calendar, so patient fixed
    # effects with patient-clustered errors estimate the mean. Rounding to whole points adds noise;
    # clipping at 0 touches few sessions (2.5 - 0.1 x 15 weeks leaves 1.0 point of room).
    sessions = _session_pain(cohort, family_sessions).dropna(subset=["pain_24h"])
    dose = cohort.truth["dose_response_per_10pct"]
    sessions["adjusted"] = sessions["pain_24h"] - dose * sessions["largest"].fillna(0.0) / 10
    fit = smf.ols("adjusted ~ week + C(patient_id)", sessions).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(sessions["patient_id"])[0]}
    )
    planted = cohort.truth["pain_24h_weekly_change"]
    assert planted < 0
    assert abs(fit.params["week"] - planted) < 3 * fit.bse["week"]


def test_pain_during_falls_more_mildly(cohort):
    sets = cohort.tables["exercises"].dropna(subset=["pain_during"])
    start = sets["patient_id"].map(cohort.tables["patients"].set_index("patient_id")["start_date"])
    data = pd.DataFrame(
        {
            "patient_id": sets["patient_id"],
            "pain": sets["pain_during"].astype(float),
            "week": (sets["date"] - start).dt.days // 7,
        }
    )
    fit = smf.ols("pain ~ week + C(patient_id)", data).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(data["patient_id"])[0]}
    )
    planted = cohort.truth["pain_during_weekly_change"]
    slope, se = fit.params["week"], fit.bse["week"]
    # Latent pain_during starts near 1/10, so clipping at 0 flattens the fall late in care: the
    # recorded slope lies between the planted one and zero, and it is milder than pain_24h's.
    assert cohort.truth["pain_24h_weekly_change"] < planted < 0
    assert planted - 3 * se < slope < 0
    assert fit.conf_int().loc["week", 1] < 0


def test_time_trend_has_its_own_random_stream():
    """Switching the planted time trend off changes pain only: every other draw is the seed's."""
    flat = Planted(
        pain_24h_weekly_change=0.0, pain_24h_weekly_change_sd=0.0, pain_during_weekly_change=0.0
    )
    trended, untrended = generate(60, seed=5), generate(60, seed=5, planted=flat)
    for name in ("patients", "activity", "outcomes", "treatments"):
        pd.testing.assert_frame_equal(trended.tables[name], untrended.tables[name])
    assert trended.truth["realised"]["sessions"] == untrended.truth["realised"]["sessions"]
    assert untrended.truth["pain_24h_weekly_change"] == 0.0
    assert trended.truth["pain_24h_weekly_change"] == Planted().pain_24h_weekly_change


def test_attendance_improves_nprs(cohort):
    patients = cohort.tables["patients"].set_index("patient_id")
    sessions = cohort.tables["exercises"].groupby("patient_id")["date"].nunique()
    weeks = np.maximum(1.0, (patients["discharge_date"] - patients["start_date"]).dt.days / 7)
    attendance = sessions / (patients["planned_sessions_per_week"] * weeks)
    nprs = cohort.tables["outcomes"].query("measure == 'nprs'").sort_values("date")
    scores = nprs.groupby("patient_id")["score"]
    paired = scores.size() == 2
    improvement = (scores.first() - scores.last())[paired]  # lower NPRS is better
    data = pd.DataFrame({"improvement": improvement, "attendance": attendance}).dropna()
    fit = sm.OLS(data["improvement"], sm.add_constant(data["attendance"])).fit()
    planted = cohort.truth["attendance_effect_nprs"]
    assert fit.params["attendance"] > 0
    assert abs(fit.params["attendance"] - planted) < 3 * fit.bse["attendance"]
    # The planted follow-up missing rate, among discharged patients (binomial, 4 SE).
    discharged = patients["discharge_date"].notna()
    missing = 1 - paired.reindex(patients.index[discharged], fill_value=False).mean()
    rate = cohort.truth["followup_missing_rate"]
    assert abs(missing - rate) < 4 * np.sqrt(rate * (1 - rate) / discharged.sum())


def test_referrals_match_discharge_reason(cohort):
    patients = cohort.tables["patients"].set_index("patient_id")
    treatments = cohort.tables["treatments"]
    for treatment, reason in (
        ("surgical_referral", "referred_surgery"),
        ("injection", "referred_injection"),
    ):
        given = set(treatments.loc[treatments["treatment"] == treatment, "patient_id"])
        assert given == set(patients.index[patients["discharge_reason"] == reason])
    assert set(treatments["treatment"]) == {
        "soft_tissue",
        "joint_mobilisation",
        "education_activity",
        "education_imaging",
        "education_injection_surgery",
        "injection",
        "surgical_referral",
    }


def test_activity_some_weeks_meet_the_who_target(cohort):
    activity = cohort.tables["activity"]
    assert activity["patient_id"].nunique() > 0.6 * N_PATIENTS
    assert (activity["cardio_min"] >= 0).all()
    assert ((activity["cardio_min"] >= 150) & (activity["strength_sessions"] >= 2)).any()


def test_truth_records_the_shared_keys(cohort):
    for key in (
        "early_clinician",
        "held_back_clinician",
        "pain_24h_missing_rate",
        "dose_response_per_10pct",
        "pain_24h_weekly_change",
        "pain_24h_weekly_change_sd",
        "pain_during_weekly_change",
        "attendance_effect_nprs",
        "attendance_effect_hoos_pain",
        "followup_missing_rate",
    ):
        assert key in cohort.truth
    clinicians = set(cohort.tables["patients"]["clinician_id"])
    assert {cohort.truth["early_clinician"], cohort.truth["held_back_clinician"]} <= clinicians
    json.dumps(cohort.truth)  # serialisable


def test_write_round_trip(tmp_path):
    cohort = write_cohort(tmp_path, n_patients=40, seed=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{name}.csv" for name in TABLES] + ["ground_truth.json"]
    )
    exercises = pd.read_csv(tmp_path / "exercises.csv", dtype=str, keep_default_na=False)
    assert list(exercises.columns) == EXERCISE_COLUMNS
    assert exercises["date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    assert not exercises["reps"].str.contains(r"\.").any()  # whole numbers stay whole
    patients = pd.read_csv(tmp_path / "patients.csv", dtype=str, keep_default_na=False)
    in_care = cohort.tables["patients"]["discharge_date"].isna().to_numpy()
    assert (patients["discharge_date"][in_care] == "").all()
    truth = json.loads((tmp_path / "ground_truth.json").read_text(encoding="utf-8"))
    assert truth == cohort.truth


def test_shipped_demo_is_reproducible(tmp_path):
    """data/demo is exactly what its README's command makes."""
    write_cohort(tmp_path, n_patients=300, seed=SEED)
    for name in [f"{table}.csv" for table in TABLES] + ["ground_truth.json"]:
        assert (tmp_path / name).read_bytes() == (DEMO / name).read_bytes(), name
