"""A synthetic cohort with known, planted effects: demo data and ground truth for the tests.

:func:`generate` simulates what a network of clinics would export (CONTRACT §1: ``patients``,
``exercises`` in the set-level layout, ``activity``, ``outcomes``, ``treatments``) and records every
parameter it planted in ``truth``, so that an analysis can be checked against the answer it should
find:

- **progression on criteria** (CONTRACT §4): most clinicians move a patient up a ladder, or add load,
  after a family session that met the criterion; one clinician (``truth["early_clinician"]``) also
  progresses often when it was *not* met; another (``truth["held_back_clinician"]``) usually keeps
  patients 3-5 further sessions at a level after they first meet it.
- **dose-response**: a session's ``pain_24h`` rises by ``dose_response_per_10pct`` points per 10 % of
  the session's largest family ``volume_change_pct`` (the family's volume load against the same
  patient's previous session of that family, computed exactly as the metric does).
- **pain falling over care**: latent ``pain_24h`` changes by each patient's own slope per CONTRACT
  §4 week (``pain_24h_weekly_change`` on average, between-patient sd
  ``pain_24h_weekly_change_sd``), latent ``pain_during`` by ``pain_during_weekly_change``. Volume
  changes grow over care, so a dose-response slope fitted without week is biased towards zero by
  ``pain_24h_weekly_change`` x (slope of week on dose), and a trajectory slope without the dose
  term is the planted fall plus the dose drift.
- **attendance**: NPRS and the questionnaires improve more with attendance (sessions / planned
  sessions, CONTRACT §4), by ``attendance_effect[measure]`` per 1.0 of attendance.
- **missing data**: ``pain_24h`` is missing for a planted share of sessions, follow-up
  questionnaires for a planted share of discharged patients.

Everything is vectorised over patients. The one sequential part is the ladder: a progression
depends on the criterion of the *previous* family session, which depends on that session's pain,
which depends on its volume change. It is simulated as a Markov chain with one loop over the
session ordinal (the k-th session of every patient at once), bounded by the longest episode
(3 sessions a week for at most 16 weeks), never over patients or individual sessions.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hipdata.catalogue import load_catalogue
from hipdata.outcome_measures import MEASURES
from hipdata.protocol import (
    CRITERION_HOLD_MAX_S,
    CRITERION_HOLD_S,
    CRITERION_REPS,
    CRITERION_REPS_MAX,
    CRITERION_SETS,
    FAMILIES,
    PAIN_THRESHOLD,
)

TABLES = ("patients", "exercises", "activity", "outcomes", "treatments")
EXERCISE_COLUMNS = [
    "patient_id",
    "date",
    "exercise",
    "set",
    "reps",
    "hold_s",
    "load_kg",
    "pain_during",
    "pain_24h",
    "prescribed_sets",
    "prescribed_reps",
    "prescribed_hold_s",
]
CONDITIONS = ("hip_oa", "fai_syndrome", "gtps", "groin_adductor", "other")
#: Loaded exercises: (lowest first load, highest first load, smallest step, largest step) in kg.
#: Every other exercise is body weight or band: its load_kg is left empty.
LOADED_EXERCISES = {
    "side_lying_adduction_loaded": (1, 3, 1, 1),
    "hip_hike_loaded": (4, 8, 1, 2),
    "bridge_loaded": (10, 20, 2, 5),
    "single_leg_deadlift": (4, 12, 2, 4),
    "squat_deep": (4, 10, 2, 4),
    "split_squat": (4, 10, 1, 2),
}
#: Reps exercises done with a short hold on every rep (seconds, inclusive range).
HOLD_PER_REP_S = {"side_lying_adduction": (2, 3)}
#: The prescription on most rows: 3 x 10 reps (``CRITERION_REPS_MAX``) or 3 x 30 s
#: (``CRITERION_HOLD_MAX_S``); on the other rows the prescription is left empty.
PRESCRIBED_REPS = CRITERION_REPS_MAX


@dataclass(frozen=True)
class Planted:
    """The parameters :func:`generate` plants; all of them are copied into ``truth``.

    Probabilities are per family session unless said otherwise. Outcome parameters are in the
    measure's own points, signed so that positive improvement is better.
    """

    #: pain_24h points per 10 % of the session's largest family volume change.
    dose_response_per_10pct: float = 0.2
    #: pain_24h = intercept + weekly change x week + slope x largest change / 10
    #: + Normal(0, noise_sd), rounded, 0-10.
    pain_24h_intercept: float = 2.5
    pain_24h_noise_sd: float = 0.8
    #: Time trend of pain_24h: each patient's latent pain_24h changes by their own slope per
    #: CONTRACT §4 week of care (``floor(days since start / 7)``), the slope being
    #: ``pain_24h_weekly_change`` + Normal(0, ``pain_24h_weekly_change_sd``) per patient, so pain
    #: after sessions falls over a typical course of care (about 1.4 points over 14 weeks).
    pain_24h_weekly_change: float = -0.1
    pain_24h_weekly_change_sd: float = 0.03
    #: A milder fall of latent pain_during, the same for every patient, per week of care.
    pain_during_weekly_change: float = -0.04
    #: Share of sessions whose pain_24h is left empty (at random).
    pain_24h_missing_rate: float = 0.12
    #: Share of exercises-in-a-session whose pain_during is left empty (all their sets).
    pain_during_missing_rate: float = 0.02
    #: pain_during = mean + patient effect + session effect + set noise (sds), rounded, 0-10.
    pain_during_mean: float = 1.0
    pain_during_patient_sd: float = 0.6
    pain_during_session_sd: float = 0.7
    pain_during_set_sd: float = 0.4
    #: Chance to progress (up a level or add load) after a session that truly met the criterion.
    progression_prob_met: float = 0.8
    #: Chance to progress after a session that did not meet it: most clinicians ...
    progression_prob_not_met: float = 0.03
    #: ... and the early clinician.
    early_progression_prob_not_met: float = 0.3
    #: The held-back clinician: share of runs held back once the criterion is first met, and
    #: the range (inclusive) of further sessions kept at the level.
    held_back_prob: float = 0.85
    held_back_sessions: tuple[int, int] = (3, 5)
    #: Where both are possible, share of progressions that change level rather than load.
    up_rather_than_load: float = 0.4
    #: Chance to step back (load down, else level down) after a flare session.
    regression_prob_after_flare: float = 0.1
    #: Chance that a family session's sets reach the dose target: base + step per session
    #: already done at this level and load, capped.
    dose_target_base: float = 0.3
    dose_target_step: float = 0.15
    dose_target_max: float = 0.9
    #: Share of patients who drop out, and their mean attendance probability vs the others'.
    dropout_rate: float = 0.2
    attendance_beta_completers: tuple[float, float] = (6.0, 2.0)
    attendance_beta_dropouts: tuple[float, float] = (3.0, 3.0)
    #: Outcomes: improvement = intercept + attendance_effect x attendance + Normal(0, sd).
    attendance_effect: dict = field(
        default_factory=lambda: {
            "nprs": 3.0,
            "hoos_pain": 20.0,
            "hoos_symptoms": 15.0,
            "hoos_adl": 14.0,
            "hoos_sport": 18.0,
            "hoos_qol": 16.0,
            "ihot12": 20.0,
        }
    )
    improvement_intercept: dict = field(
        default_factory=lambda: {
            "nprs": 0.5,
            "hoos_pain": 4.0,
            "hoos_symptoms": 3.0,
            "hoos_adl": 3.0,
            "hoos_sport": 4.0,
            "hoos_qol": 4.0,
            "ihot12": 5.0,
        }
    )
    improvement_sd: dict = field(
        default_factory=lambda: {
            "nprs": 1.2,
            "hoos_pain": 10.0,
            "hoos_symptoms": 10.0,
            "hoos_adl": 10.0,
            "hoos_sport": 12.0,
            "hoos_qol": 10.0,
            "ihot12": 12.0,
        }
    )
    #: Baseline (mean, sd) of each measure.
    baseline: dict = field(
        default_factory=lambda: {
            "nprs": (5.8, 1.5),
            "hoos_pain": (52.0, 15.0),
            "hoos_symptoms": (55.0, 15.0),
            "hoos_adl": (62.0, 15.0),
            "hoos_sport": (40.0, 18.0),
            "hoos_qol": (38.0, 15.0),
            "ihot12": (42.0, 16.0),
        }
    )
    #: Share of discharged patients without any follow-up questionnaire.
    followup_missing_rate: float = 0.2
    #: Share of patients whose clinic records NPRS only (no HOOS / iHOT-12).
    nprs_only_rate: float = 0.1
    #: Share of patients with an activity log, and of their weeks with a row.
    activity_patient_rate: float = 0.8
    activity_week_rate: float = 0.75


@dataclass
class SynthCohort:
    """A generated cohort: input-format tables and the parameters planted in them.

    ``tables`` maps ``patients, exercises, activity, outcomes, treatments`` to DataFrames with the
    columns of CONTRACT §1 (dates as ``datetime64``; :meth:`write` writes them as ``YYYY-MM-DD``).
    ``truth`` is JSON-serialisable.
    """

    tables: dict[str, pd.DataFrame]
    truth: dict

    def write(self, folder: str | Path) -> Path:
        """Write ``<table>.csv`` (UTF-8, comma separated) and ``ground_truth.json`` to ``folder``."""
        # formula-safe text, as every CSV written; the text is pandas' to_csv's, written by Arrow
        from hipdata.io.writers import neutralise_text, write_csv_text

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name, table in self.tables.items():
            safe = table.copy(deep=False)
            for position in range(safe.shape[1]):
                safe.isetitem(position, neutralise_text(safe.iloc[:, position]))
            write_csv_text(safe, folder / f"{name}.csv", float_format="%.10g")
        with open(folder / "ground_truth.json", "w", encoding="utf-8") as handle:
            json.dump(self.truth, handle, indent=2)
            handle.write("\n")
        return folder


def write_cohort(folder: str | Path, n_patients: int = 300, seed: int = 20261127) -> SynthCohort:
    """Generate a cohort with :func:`generate` defaults and write it to ``folder`` (for the CLI)."""
    cohort = generate(n_patients, seed=seed)
    cohort.write(folder)
    return cohort


def generate(
    n_patients: int = 300,
    *,
    seed: int = 20261127,
    n_clinics: int = 4,
    start: str = "2025-07-01",
    end: str = "2026-10-31",
    clinicians_per_clinic: int = 3,
    planted: Planted | None = None,
) -> SynthCohort:
    """Simulate a multi-clinic hip-pain cohort with planted effects.

    Parameters
    ----------
    n_patients : int
        Episodes of care (one per patient).
    seed : int
        Seed of the ``numpy.random.Generator``; the same seed gives identical tables.
    n_clinics : int
        Clinics ``C01``, ``C02``, ... with ``clinicians_per_clinic`` clinicians each
        (``C01-T1``, ...). At least 2, so the two special clinicians work in different clinics.
    start, end : str
        ISO dates. Care starts between ``start`` and six weeks before ``end``; nothing is dated
        after ``end`` (patients still in care then have an empty discharge_date).
    planted : Planted, optional
        The planted parameters (defaults: :class:`Planted`).

    Returns
    -------
    SynthCohort
        ``tables`` (input format, CONTRACT §1) and ``truth`` (every planted parameter plus the
        special clinicians' ids and a few realised counts).

    Examples
    --------
    >>> cohort = generate(20, seed=1)
    >>> sorted(cohort.tables)
    ['activity', 'exercises', 'outcomes', 'patients', 'treatments']
    >>> cohort.truth["early_clinician"] != cohort.truth["held_back_clinician"]
    True
    """
    if n_patients < 1:
        raise ValueError("n_patients must be at least 1")
    if n_clinics < 2:
        raise ValueError("n_clinics must be at least 2 (the special clinicians work apart)")
    planted = Planted() if planted is None else planted
    rng = np.random.default_rng(seed)
    start_day = pd.Timestamp(start)
    end_day = pd.Timestamp(end)
    if (end_day - start_day).days < 8 * 7:
        raise ValueError("the period from start to end must span at least 8 weeks")

    patients, internals = _patients(
        rng, n_patients, n_clinics, clinicians_per_clinic, planted, start_day, end_day
    )
    sessions = _sessions(rng, internals, end_day)
    patients = _discharge(rng, patients, internals, sessions, end_day)
    # The patients' pain slopes come from a stream of their own (spawned from the seed), so that
    # changing the time-trend parameters leaves every other draw of the seed as it was.
    trend_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    internals["pain_24h_slope"] = planted.pain_24h_weekly_change + trend_rng.normal(
        0.0, planted.pain_24h_weekly_change_sd, size=n_patients
    )
    exercises, realised = _exercises(rng, internals, sessions, planted)
    activity = _activity(rng, patients, sessions, planted, end_day)
    outcomes, attendance = _outcomes(rng, patients, sessions, planted, end_day)
    treatments = _treatments(rng, patients, sessions)

    exercises.insert(0, "patient_id", _take_text(patients["patient_id"], exercises.pop("patient")))
    exercises.insert(1, "date", exercises.pop("date"))

    truth = {
        "generator": "hipdata.synth.generate",
        "seed": int(seed),
        "n_patients": int(n_patients),
        "n_clinics": int(n_clinics),
        "clinicians_per_clinic": int(clinicians_per_clinic),
        "start": start_day.strftime("%Y-%m-%d"),
        "end": end_day.strftime("%Y-%m-%d"),
        "early_clinician": internals["early_clinician"],
        "held_back_clinician": internals["held_back_clinician"],
        **_jsonable(asdict(planted)),
        "attendance_effect_nprs": planted.attendance_effect["nprs"],
        "attendance_effect_hoos_pain": planted.attendance_effect["hoos_pain"],
        "loaded_exercises": {k: list(v) for k, v in LOADED_EXERCISES.items()},
        "realised": {
            "sessions": int(len(sessions["patient"])),
            "set_rows": int(len(exercises)),
            "patients_in_care_at_end": int(patients["discharge_date"].isna().sum()),
            "mean_attendance_discharged": float(np.nanmean(attendance))
            if np.isfinite(attendance).any()
            else None,
            **realised,
        },
    }
    tables = {
        "patients": patients,
        "exercises": exercises[EXERCISE_COLUMNS],
        "activity": activity,
        "outcomes": outcomes,
        "treatments": treatments,
    }
    return SynthCohort(tables=tables, truth=truth)


# --------------------------------------------------------------------------------------------
# patients and the session calendar


def _patients(rng, n, n_clinics, per_clinic, planted, start_day, end_day):
    clinics = np.array([f"C{c + 1:02d}" for c in range(n_clinics)])
    clinicians = np.array([f"{c}-T{t + 1}" for c in clinics for t in range(per_clinic)])
    clinician_clinic = np.repeat(np.arange(n_clinics), per_clinic)
    special_clinics = rng.choice(n_clinics, size=2, replace=False)
    special = special_clinics * per_clinic + rng.integers(0, per_clinic, size=2)
    clinician = rng.integers(0, len(clinicians), size=n)
    clinician_type = np.zeros(n, dtype=np.int8)  # 0 ordinary, 1 early, 2 held back
    clinician_type[clinician == special[0]] = 1
    clinician_type[clinician == special[1]] = 2

    condition = rng.choice(len(CONDITIONS), size=n, p=[0.35, 0.25, 0.2, 0.12, 0.08])
    age_low = np.array([50, 18, 35, 18, 18])[condition]
    age_high = np.array([85, 50, 75, 45, 85])[condition]
    age = rng.integers(age_low, age_high + 1)
    athlete = rng.random(n) < np.array([0.03, 0.4, 0.05, 0.6, 0.1])[condition]
    sex = rng.choice(np.array(["F", "M", "X", "unknown"]), size=n, p=[0.55, 0.42, 0.01, 0.02])

    last_start = (end_day - start_day).days - 6 * 7
    start_offset = rng.integers(0, last_start + 1, size=n)
    start_date = start_day + pd.to_timedelta(start_offset, unit="D")
    sessions_per_week = rng.choice([1, 2, 3], size=n, p=[0.2, 0.5, 0.3])
    planned_weeks = rng.integers(6, 17, size=n)
    dropout = rng.random(n) < planted.dropout_rate
    dropout_week = np.where(dropout, rng.integers(1, planned_weeks), planned_weeks + 1)
    attend_prob = np.where(
        dropout,
        rng.beta(*planted.attendance_beta_dropouts, size=n),
        rng.beta(*planted.attendance_beta_completers, size=n),
    )
    # Non-dropouts who finish are discharged for one of the other reasons.
    other_reason = rng.choice(
        np.array(["completed", "referred_surgery", "referred_injection", "other"]),
        size=n,
        p=[0.8, 0.07, 0.06, 0.07],
    )
    reason = np.where(dropout, "dropped_out", other_reason)

    # Which families each patient's programme holds, by condition and athlete status.
    family_prob = np.tile([0.55, 0.75, 0.8, 0.45, 0.45, 0.3, 0.55, 0.2], (n, 1))
    family_prob[condition == CONDITIONS.index("groin_adductor"), 0] = 0.95
    family_prob[condition == CONDITIONS.index("fai_syndrome"), 3] = 0.7
    family_prob[athlete, 7] = 0.6
    programme = rng.random((n, len(FAMILIES))) < family_prob
    too_small = programme.sum(axis=1) < 2
    programme[too_small, 1] = True
    programme[too_small, 2] = True

    patients = pd.DataFrame(
        {
            "patient_id": pd.array([f"P{i + 1:05d}" for i in range(n)], dtype="str"),
            "clinic_id": pd.array(clinics[clinician_clinic[clinician]], dtype="str"),
            "clinician_id": pd.array(clinicians[clinician], dtype="str"),
            "sex": pd.array(sex, dtype="str"),
            "age_years": age.astype("int64"),
            "condition": pd.array(np.array(CONDITIONS)[condition], dtype="str"),
            "athlete": athlete,
            "start_date": start_date.to_numpy().astype("datetime64[ns]"),
        }
    )
    internals = {
        "n": n,
        "start_offset": start_offset,
        "start_day": start_day,
        "sessions_per_week": sessions_per_week,
        "planned_weeks": planned_weeks,
        "dropout": dropout,
        "dropout_week": dropout_week,
        "attend_prob": attend_prob,
        "reason": reason,
        "programme": programme,
        "athlete": athlete,
        "clinician_type": clinician_type,
        "early_clinician": str(clinicians[special[0]]),
        "held_back_clinician": str(clinicians[special[1]]),
    }
    return patients, internals


def _sessions(rng, internals, end_day):
    """Attended sessions: patient index, day since start, ordinal; sorted by patient and day."""
    per_week = internals["sessions_per_week"]
    slots = internals["planned_weeks"] * per_week
    patient = np.repeat(np.arange(internals["n"]), slots)
    first_slot = np.repeat(np.cumsum(slots) - slots, slots)
    slot = np.arange(len(patient)) - first_slot
    week = slot // per_week[patient]
    # Weekday offsets for 1, 2 or 3 sessions a week.
    offsets = np.array([[0, 0, 0], [0, 3, 0], [0, 2, 4]])
    day = 7 * week + offsets[per_week[patient] - 1, slot % per_week[patient]]
    attended = rng.random(len(patient)) < internals["attend_prob"][patient]
    attended[slot == 0] = True  # every episode starts with an assessment session
    before_dropout = week < internals["dropout_week"][patient]
    start_offset = internals["start_offset"]
    last_day = (end_day - internals["start_day"]).days
    not_future = start_offset[patient] + day <= last_day
    keep = attended & before_dropout & not_future
    patient, day = patient[keep], day[keep]
    first = np.searchsorted(patient, patient, side="left")
    return {"patient": patient, "day": day, "ordinal": np.arange(len(patient)) - first}


def _discharge(rng, patients, internals, sessions, end_day):
    n = internals["n"]
    last_session_day = np.zeros(n, dtype=np.int64)
    np.maximum.at(last_session_day, sessions["patient"], sessions["day"])
    completed_day = 7 * internals["planned_weeks"] - 1
    # Drop-outs are discharged after two to four weeks of no-shows.
    dropout_day = last_session_day + rng.integers(14, 29, size=n)
    discharge_day = np.where(internals["dropout"], dropout_day, completed_day)
    in_care = internals["start_offset"] + discharge_day > (end_day - internals["start_day"]).days
    discharge = patients["start_date"] + pd.to_timedelta(discharge_day, unit="D")
    patients = patients.assign(
        discharge_date=discharge.mask(in_care),
        discharge_reason=pd.array(internals["reason"], dtype="str"),
        planned_sessions_per_week=internals["sessions_per_week"].astype("int64"),
    )
    patients.loc[in_care, "discharge_reason"] = pd.NA
    internals["in_care"] = in_care
    internals["discharge_day"] = np.where(in_care, -1, discharge_day)
    return patients


# --------------------------------------------------------------------------------------------
# the exercise ladder: one step per session ordinal, vectorised over patients and families


def _ladder_tables(catalogue):
    """Lookup arrays indexed [family, level] (level 1-based; column 0 unused)."""
    n_fam = len(FAMILIES)
    max_level = np.zeros(n_fam, dtype=np.int64)
    top = int(catalogue["level"].max())
    exercise = np.full((n_fam, top + 1), "", dtype=object)
    is_hold = np.zeros((n_fam, top + 1), dtype=bool)
    loaded = np.zeros((n_fam, top + 1), dtype=bool)
    load_range = np.zeros((n_fam, top + 1, 4))
    rep_hold = np.zeros((n_fam, top + 1, 2))
    variants = {}
    for f, family in enumerate(FAMILIES):  # a loop over the 8 families
        rows = catalogue[catalogue["family"] == family].sort_values(["level", "id"])
        max_level[f] = rows["level"].max()
        variants[f] = rows["id"].tolist()
        for ex_id, level, dose in rows[["id", "level", "dose"]].itertuples(index=False):
            if exercise[f, level] == "":
                exercise[f, level] = ex_id
            is_hold[f, level] = dose == "hold"
            if ex_id in LOADED_EXERCISES:
                loaded[f, level] = True
                load_range[f, level] = LOADED_EXERCISES[ex_id]
            if ex_id in HOLD_PER_REP_S:
                rep_hold[f, level] = HOLD_PER_REP_S[ex_id]
    return max_level, exercise, is_hold, loaded, load_range, rep_hold, variants


def _exercises(rng, internals, sessions, planted):
    catalogue = load_catalogue()
    max_level, exercise_at, is_hold, loaded, load_range, rep_hold, variants = _ladder_tables(
        catalogue
    )
    n, n_fam = internals["n"], len(FAMILIES)
    fam = np.arange(n_fam)
    variation = FAMILIES.index("trunk_variations")
    s_patient, s_ordinal = sessions["patient"], sessions["ordinal"]
    n_sessions = len(s_patient)

    # Families done in each session: the programme's, each skipped now and then, never none.
    done_all = internals["programme"][s_patient] & (rng.random((n_sessions, n_fam)) < 0.85)
    none = ~done_all.any(axis=1)
    done_all[none, np.argmax(internals["programme"][s_patient[none]], axis=1)] = True

    # Ladder state per patient and family.
    start_up = (rng.random((n, n_fam)) < np.where(internals["athlete"], 0.5, 0.25)[:, None]) & (
        max_level[None, :] >= 2
    )
    level = 1 + start_up.astype(np.int64)
    load = _first_load(rng, level, fam, loaded, load_range)
    run_len = np.zeros((n, n_fam), dtype=np.int64)
    first_met = np.full((n, n_fam), -1, dtype=np.int64)
    hold_target = np.zeros((n, n_fam), dtype=np.int64)
    prev_volume = np.zeros((n, n_fam))
    has_prev = np.zeros((n, n_fam), dtype=bool)
    prev_met = np.zeros((n, n_fam), dtype=bool)
    prev_flare = np.zeros((n, n_fam), dtype=bool)
    patient_pain = rng.normal(0.0, planted.pain_during_patient_sd, size=n)
    clinician_type = internals["clinician_type"]
    lo_hold, hi_hold = planted.held_back_sessions

    order = np.argsort(s_ordinal, kind="stable")
    bounds = np.searchsorted(s_ordinal[order], np.arange(s_ordinal.max() + 2))
    pain_24h_true = np.zeros(n_sessions)
    units = []
    for step in range(len(bounds) - 1):  # one step per session ordinal (at most ~48)
        rows = order[bounds[step] : bounds[step + 1]]
        m = len(rows)
        p = s_patient[rows]
        done = done_all[rows]
        lvl, ld = level[p], load[p]
        ctype = clinician_type[p][:, None]
        u = rng.random((m, n_fam, 6))

        # Progression from the previous family session's (true) criterion.
        further = run_len[p] - 1 - first_met[p]
        held = (ctype == 2) & (first_met[p] >= 0) & (further < hold_target[p])
        p_not_met = np.where(
            ctype == 1, planted.early_progression_prob_not_met, planted.progression_prob_not_met
        )
        p_progress = np.where(
            prev_met[p], np.where(held, 0.0, planted.progression_prob_met), p_not_met
        )
        active = done & has_prev[p]
        progress = active & (u[..., 0] < p_progress)
        can_up = lvl < max_level[None, :]
        can_load = loaded[fam[None, :], lvl]
        go_up = progress & can_up & (~can_load | (u[..., 1] < planted.up_rather_than_load))
        go_load = progress & can_load & ~go_up
        regress = (
            active & ~progress & prev_flare[p] & (u[..., 2] < planted.regression_prob_after_flare)
        )
        step_kg = _load_step(rng, fam, lvl, load_range, (m, n_fam))
        lowest = load_range[fam[None, :], lvl, 0]
        load_down = regress & can_load & (ld - step_kg >= lowest)
        level_down = regress & ~load_down & (lvl > 1)
        new_lvl = lvl + go_up - level_down
        new_load = np.where(go_load, ld + step_kg, np.where(load_down, ld - step_kg, ld))
        moved = go_up | level_down
        fresh = _first_load(rng, new_lvl, fam, loaded, load_range)
        new_load = np.where(moved, fresh, new_load)
        changed = moved | go_load | load_down
        new_run = np.where(changed | ~has_prev[p], 1, run_len[p] + 1)

        # The sets of this session: reach the dose target or not.
        hold_dose = is_hold[fam[None, :], new_lvl]
        p_target = np.minimum(
            planted.dose_target_base + planted.dose_target_step * (new_run - 1),
            planted.dose_target_max,
        )
        on_target = u[..., 3] < p_target
        n_sets = np.where(~on_target & (u[..., 4] < 0.5), CRITERION_SETS - 1, CRITERION_SETS)
        reps = _amounts(rng, on_target, n_sets, CRITERION_REPS, 6, 12, (m, n_fam))
        holds = _amounts(
            rng,
            on_target,
            n_sets,
            int(CRITERION_HOLD_S),
            10,
            int(CRITERION_HOLD_MAX_S) + 5,
            (m, n_fam),
        )
        in_set = np.arange(CRITERION_SETS)[None, None, :] < n_sets[..., None]
        volume = np.where(hold_dose, 0.0, (reps * in_set).sum(axis=2) * new_load)
        valid = done & has_prev[p] & (prev_volume[p] > 0)
        change = np.where(
            valid, 100.0 * (volume - prev_volume[p]) / np.where(valid, prev_volume[p], 1), np.nan
        )
        largest = np.where(valid, change, -np.inf).max(axis=1)
        largest = np.where(np.isfinite(largest), largest, np.nan)

        # Pain: pain_24h from the dose-response, pain_during per set.
        week = sessions["day"][rows] // 7  # CONTRACT §4 week of care
        latent_24h = (
            planted.pain_24h_intercept
            + internals["pain_24h_slope"][p] * week
            + planted.dose_response_per_10pct * np.nan_to_num(largest) / 10.0
            + rng.normal(0.0, planted.pain_24h_noise_sd, size=m)
        )
        pain_24h = np.clip(np.rint(latent_24h), 0, 10)
        latent_during = (
            planted.pain_during_mean
            + planted.pain_during_weekly_change * week[:, None, None]
            + patient_pain[p][:, None, None]
            + rng.normal(0.0, planted.pain_during_session_sd, size=(m, n_fam, 1))
            + rng.normal(0.0, planted.pain_during_set_sd, size=(m, n_fam, CRITERION_SETS))
        )
        pain_during = np.clip(np.rint(latent_during), 0, 10)
        worst_during = np.where(in_set, pain_during, 0).max(axis=2)
        session_flare = (np.where(done, worst_during, 0).max(axis=1) > PAIN_THRESHOLD) | (
            pain_24h > PAIN_THRESHOLD
        )
        met = on_target & (worst_during <= PAIN_THRESHOLD) & (pain_24h <= PAIN_THRESHOLD)[:, None]

        # Update the state of the families done this session.
        run_first_met = np.where(changed | ~has_prev[p], -1, first_met[p])
        newly_met = met & (run_first_met < 0)
        target = np.where(
            u[..., 5] < planted.held_back_prob, rng.integers(lo_hold, hi_hold + 1, (m, n_fam)), 0
        )
        pi, fi = np.nonzero(done)
        pp = p[pi]
        level[pp, fi] = new_lvl[pi, fi]
        load[pp, fi] = new_load[pi, fi]
        run_len[pp, fi] = new_run[pi, fi]
        first_met[pp, fi] = np.where(newly_met, new_run - 1, run_first_met)[pi, fi]
        hold_target[pp, fi] = np.where(newly_met, target, hold_target[p])[pi, fi]
        prev_volume[pp, fi] = volume[pi, fi]
        has_prev[pp, fi] = True
        prev_met[pp, fi] = met[pi, fi]
        prev_flare[pp, fi] = session_flare[pi]
        pain_24h_true[rows] = pain_24h

        variant = rng.integers(0, len(variants[variation]), size=len(pi))
        units.append(
            {
                "session": rows[pi],
                "family": fi,
                "level": new_lvl[pi, fi],
                "variant": variant,
                "load": new_load[pi, fi],
                "n_sets": n_sets[pi, fi],
                "hold_dose": hold_dose[pi, fi],
                "reps": reps[pi, fi],
                "holds": holds[pi, fi],
                "pain_during": pain_during[pi, fi],
                "criterion_met": met[pi, fi],
            }
        )

    unit = {key: np.concatenate([u[key] for u in units]) for key in units[0]}
    order = np.lexsort((unit["family"], unit["session"]))
    unit = {key: value[order] for key, value in unit.items()}
    exercises = _set_rows(
        rng,
        unit,
        sessions,
        internals,
        planted,
        pain_24h_true,
        exercise_at,
        variants,
        loaded,
        rep_hold,
        variation,
    )
    realised = {
        "family_sessions": int(len(unit["session"])),
        "family_sessions_criterion_met_true": int(unit["criterion_met"].sum()),
    }
    return exercises, realised


def _first_load(rng, level, fam, loaded, load_range):
    """A first load for a (new) loaded level, 0 for body-weight and band levels."""
    low = load_range[fam[None, :], level, 0]
    high = load_range[fam[None, :], level, 1]
    draw = low + np.floor(rng.random(level.shape) * (high - low + 1))
    return np.where(loaded[fam[None, :], level], draw, 0.0)


def _load_step(rng, fam, level, load_range, shape):
    low = load_range[fam[None, :], level, 2]
    high = load_range[fam[None, :], level, 3]
    return low + np.floor(rng.random(shape) * (high - low + 1))


def _amounts(rng, on_target, n_sets, target, low, high, shape):
    """Reps (or hold seconds) per set slot: all >= target when on target, else one short set.

    A unit off target with the full number of sets gets one set below the target, so that the
    criterion fails on that set; one with fewer sets fails on the count already.
    """
    full = rng.integers(target, high + 1, size=(*shape, CRITERION_SETS))
    loose = rng.integers(low, high + 1, size=(*shape, CRITERION_SETS))
    short = rng.integers(low, target, size=shape)
    short_slot = rng.integers(0, CRITERION_SETS, size=shape)
    amounts = np.where(on_target[..., None], full, loose)
    force = ~on_target & (n_sets == CRITERION_SETS)
    slot_hit = np.arange(CRITERION_SETS)[None, None, :] == short_slot[..., None]
    return np.where(force[..., None] & slot_hit, short[..., None], amounts)


def _set_rows(
    rng,
    unit,
    sessions,
    internals,
    planted,
    pain_24h_true,
    exercise_at,
    variants,
    loaded,
    rep_hold,
    variation,
):
    """Expand exercise units to one row per set, with missing pain and prescriptions."""
    n_units = len(unit["session"])
    family, level = unit["family"], unit["level"]
    # exercise ids as codes into a vocabulary of the catalogue's ids (text is made once, in Arrow)
    vocabulary = pd.Index(pd.unique(np.concatenate([exercise_at.ravel(), variants[variation]])))
    code_at = vocabulary.get_indexer(exercise_at.ravel()).reshape(exercise_at.shape)
    variation_codes = vocabulary.get_indexer(variants[variation])
    is_variation = family == variation
    exercise = np.where(
        is_variation,
        variation_codes[unit["variant"] % len(variation_codes)],
        code_at[family, level],
    )
    prescribed = rng.random(n_units) < 0.9
    pain_during_missing = rng.random(n_units) < planted.pain_during_missing_rate
    per_rep_low, per_rep_high = rep_hold[family, level, 0], rep_hold[family, level, 1]
    per_rep_hold = per_rep_low + np.floor(rng.random(n_units) * (per_rep_high - per_rep_low + 1))
    session_missing = rng.random(len(pain_24h_true)) < planted.pain_24h_missing_rate

    # One column at a time, each temporary freed once its column is made (15 M rows at 10^5
    # patients: every row-length temporary is 120 MB).
    row_unit = np.repeat(np.arange(n_units), unit["n_sets"])
    set_index = np.arange(len(row_unit)) - np.repeat(
        np.cumsum(unit["n_sets"]) - unit["n_sets"], unit["n_sets"]
    )
    columns = {}
    session = unit["session"][row_unit]
    patient = sessions["patient"][session]
    day = internals["start_offset"][patient] + sessions["day"][session]
    columns["patient"] = patient
    columns["date"] = (
        (internals["start_day"] + pd.to_timedelta(day, unit="D"))
        .to_numpy()
        .astype("datetime64[ns]")
    )
    del day, patient
    columns["exercise"] = _take_text(pd.Series(vocabulary, dtype="str"), exercise[row_unit])
    columns["set"] = (set_index + 1).astype("int64")
    hold_dose = unit["hold_dose"][row_unit]
    columns["reps"] = _whole(np.where(hold_dose, np.nan, unit["reps"][row_unit, set_index]))
    hold_s = np.where(hold_dose, unit["holds"][row_unit, set_index], np.nan)
    per_rep = (per_rep_high[row_unit] > 0) & ~hold_dose
    columns["hold_s"] = _whole(np.where(per_rep, per_rep_hold[row_unit], hold_s))
    del hold_s, per_rep
    is_loaded = loaded[family, level][row_unit]
    columns["load_kg"] = np.where(is_loaded, unit["load"][row_unit], np.nan)
    del is_loaded
    columns["pain_during"] = _whole(
        np.where(pain_during_missing[row_unit], np.nan, unit["pain_during"][row_unit, set_index])
    )
    columns["pain_24h"] = _whole(np.where(session_missing, np.nan, pain_24h_true)[session])
    del session, set_index
    row_prescribed = prescribed[row_unit]
    del row_unit
    columns["prescribed_sets"] = _whole(np.where(row_prescribed, CRITERION_SETS, np.nan))
    columns["prescribed_reps"] = _whole(
        np.where(row_prescribed & ~hold_dose, PRESCRIBED_REPS, np.nan)
    )
    columns["prescribed_hold_s"] = _whole(
        np.where(row_prescribed & hold_dose, CRITERION_HOLD_MAX_S, np.nan)
    )
    return pd.DataFrame(columns, copy=False)


def _whole(values: np.ndarray) -> pd.arrays.IntegerArray:
    """Whole numbers held as floats (NaN missing) as an ``Int64`` array."""
    missing = np.isnan(values)
    return pd.arrays.IntegerArray(np.where(missing, 0, values).astype(np.int64), missing)


# --------------------------------------------------------------------------------------------
# activity, outcomes, treatments


def _activity(rng, patients, sessions, planted, end_day):
    n = len(patients)
    start = patients["start_date"].to_numpy()
    last_session = np.zeros(n, dtype=np.int64)
    np.maximum.at(last_session, sessions["patient"], sessions["day"])
    care_days = (
        (patients["discharge_date"] - patients["start_date"]).dt.days.fillna(
            pd.Series(last_session, index=patients.index)
        )
    ).to_numpy(dtype=np.int64)
    n_weeks = care_days // 7 + 1
    logs = rng.random(n) < planted.activity_patient_rate
    cardio_mean = rng.normal(120.0, 50.0, size=n)
    strength_rate = rng.uniform(0.5, 3.0, size=n)
    records_strength = rng.random(n) < 0.8

    patient = np.repeat(np.arange(n), np.where(logs, n_weeks, 0))
    week = np.arange(len(patient)) - np.searchsorted(patient, patient, side="left")
    date = start[patient] + (7 * week).astype("timedelta64[D]")
    keep = (rng.random(len(patient)) < planted.activity_week_rate) & (
        date <= np.datetime64(end_day)
    )
    patient, date = patient[keep], date[keep]
    cardio = np.maximum(0.0, np.rint(cardio_mean[patient] + rng.normal(0, 40.0, len(patient))))
    strength = rng.poisson(strength_rate[patient]).astype(float)
    strength = np.where(records_strength[patient], strength, np.nan)
    return pd.DataFrame(
        {
            "patient_id": _take_text(patients["patient_id"], patient),
            "date": date.astype("datetime64[ns]"),
            "cardio_min": cardio.astype("int64"),
            "strength_sessions": pd.array(strength, dtype="Float64").astype("Int64"),
        }
    )


def _attendance(patients, sessions):
    """CONTRACT §4 attendance of discharged patients (NaN while in care)."""
    n = len(patients)
    count = np.bincount(sessions["patient"], minlength=n)
    days = (patients["discharge_date"] - patients["start_date"]).dt.days.to_numpy(dtype=float)
    weeks = np.maximum(1.0, days / 7.0)
    planned = patients["planned_sessions_per_week"].to_numpy(dtype=float) * weeks
    return count / planned


def _outcomes(rng, patients, sessions, planted, end_day):
    n = len(patients)
    attendance = _attendance(patients, sessions)
    start = patients["start_date"].to_numpy()
    discharge = patients["discharge_date"].to_numpy()
    baseline_date = start + rng.integers(-10, 4, size=n).astype("timedelta64[D]")
    followup_date = np.minimum(
        discharge + rng.integers(-7, 15, size=n).astype("timedelta64[D]"),
        np.datetime64(end_day),
    )
    has_followup = ~pd.isna(discharge) & (rng.random(n) >= planted.followup_missing_rate)
    nprs_only = rng.random(n) < planted.nprs_only_rate

    frames = []
    for measure_name, effect in planted.attendance_effect.items():  # seven measures
        measure = MEASURES[measure_name]
        decimals = 0 if measure_name == "nprs" else 1
        mean, sd = planted.baseline[measure_name]
        base = np.round(np.clip(rng.normal(mean, sd, n), measure.low, measure.high), decimals)
        improvement = (
            planted.improvement_intercept[measure_name]
            + effect * np.nan_to_num(attendance)
            + rng.normal(0.0, planted.improvement_sd[measure_name], n)
        )
        sign = 1.0 if measure.higher_is_better else -1.0
        follow = np.round(np.clip(base + sign * improvement, measure.low, measure.high), decimals)
        recorded = np.ones(n, dtype=bool) if measure_name == "nprs" else ~nprs_only
        for when, score, present in (
            (baseline_date, base, recorded),
            (followup_date, follow, recorded & has_followup),
        ):
            frames.append(
                pd.DataFrame(
                    {
                        "patient": np.flatnonzero(present),
                        "date": when[present].astype("datetime64[ns]"),
                        "measure": measure_name,
                        "score": score[present],
                    }
                )
            )
    outcomes = pd.concat(frames, ignore_index=True)
    outcomes = outcomes.sort_values(["patient", "date", "measure"], kind="stable")
    outcomes.insert(
        0,
        "patient_id",
        _take_text(patients["patient_id"], outcomes.pop("patient")),
    )
    outcomes["measure"] = outcomes["measure"].astype("str")
    return outcomes.reset_index(drop=True), np.where(pd.isna(discharge), np.nan, attendance)


def _treatments(rng, patients, sessions):
    s_patient, s_ordinal = sessions["patient"], sessions["ordinal"]
    s_date = patients["start_date"].to_numpy()[s_patient] + sessions["day"].astype("timedelta64[D]")
    n_sessions = len(s_patient)
    reason = patients["discharge_reason"].fillna("").to_numpy()
    referred = np.isin(reason, ["referred_surgery", "referred_injection"])
    u = rng.random((n_sessions, 5))
    first = s_ordinal == 0
    early = s_ordinal <= 1
    picks = {
        "soft_tissue": u[:, 0] < 0.25,
        "joint_mobilisation": u[:, 1] < 0.12,
        "education_activity": first & (u[:, 2] < 0.85),
        "education_imaging": early & (u[:, 3] < 0.25),
        "education_injection_surgery": (u[:, 4] < np.where(referred[s_patient], 0.3, 0.02)),
    }
    frames = [
        pd.DataFrame({"patient": s_patient[mask], "date": s_date[mask], "treatment": name})
        for name, mask in picks.items()
    ]
    discharge = patients["discharge_date"].to_numpy()
    for name, why in (
        ("surgical_referral", "referred_surgery"),
        ("injection", "referred_injection"),
    ):
        mask = reason == why
        frames.append(
            pd.DataFrame(
                {"patient": np.flatnonzero(mask), "date": discharge[mask], "treatment": name}
            )
        )
    treatments = pd.concat(frames, ignore_index=True)
    treatments = treatments.sort_values(["patient", "date", "treatment"], kind="stable")
    treatments.insert(
        0,
        "patient_id",
        _take_text(patients["patient_id"], treatments.pop("patient")),
    )
    treatments["date"] = treatments["date"].astype("datetime64[ns]")
    treatments["treatment"] = treatments["treatment"].astype("str")
    return treatments.reset_index(drop=True)


def _take_text(values: pd.Series, indices: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """``values[indices]`` as a ``str`` array, taken in Arrow (no Python string per row)."""
    import pyarrow as pa

    taken = pa.array(values.astype("str").array).take(pa.array(np.asarray(indices)))
    return pd.array(taken, dtype="str")


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
