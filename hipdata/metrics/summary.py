"""The ``patient_summary`` table (CONTRACT §5): one row per patient episode of care."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hipdata.dataset import Dataset
from hipdata.metrics._common import (
    Groups,
    agg_by,
    at_least,
    attach_patients,
    days_between,
    refine,
    safe_ratio,
    text_as_str,
    week_of,
)
from hipdata.metrics.family import _family_sessions_from_sets
from hipdata.metrics.progression import FORWARD_KINDS, _held_back_from, _progressions_from
from hipdata.metrics.sessions import _sessions_from_sets
from hipdata.metrics.sets import _sets_table
from hipdata.protocol import (
    CRITERION_HOLD_S,
    CRITERION_REPS,
    CRITERION_SETS,
    FAMILIES,
    HELD_BACK_SESSIONS,
    PAIN_THRESHOLD,
    WHO_CARDIO_MIN,
    WHO_STRENGTH_SESSIONS,
)

PATIENT_SUMMARY_COLUMNS = [
    "patient_id",
    "clinic_id",
    "clinician_id",
    "weeks_in_care",
    "sessions",
    "planned_sessions",
    "attendance",
    "pain_threshold_adherence",
    "flare_sessions",
    "pain_missing_sessions",
    "dose_adherence",
    "on_criteria_share",
    "early_progressions",
    "held_back_episodes",
    *[f"top_level_{family}" for family in FAMILIES],
    "activity_weeks_met_share",
]
#: Kept after the contract's columns: the episode's dates and the numerators / denominators behind
#: the shares, which the quarterly audit needs (CONTRACT §6).
PATIENT_SUMMARY_EXTRA_COLUMNS = [
    "start_date",
    "discharge_date",
    "discharge_reason",
    "pain_recorded_sessions",
    "dose_units",
    "forward_progressions",
    "on_criteria_progressions",
    "activity_weeks",
    "activity_weeks_met",
]


def weeks_in_care(
    start_date: pd.Series, discharge_date: pd.Series, last_session: pd.Series
) -> pd.Series:
    """CONTRACT §4 weeks in care: ``max(1, days / 7)``, unrounded, from start to discharge or,
    while in care, to the last session (NaN for a patient in care with no session)."""
    end = discharge_date.fillna(last_session)
    return np.maximum(1.0, days_between(end, start_date) / 7).astype("float64")


def dose_units(sets: pd.DataFrame, *, session_groups: Groups | None = None) -> pd.DataFrame:
    """Dose adherence per unit (one exercise in one session) with a prescription.

    The prescription is read once per unit (a prescription repeated on the unit's set rows counts
    once: the first value recorded is used). Prescribed = ``prescribed_sets`` (default: the sets
    done) x ``prescribed_reps`` or, without prescribed reps, x ``prescribed_hold_s``; performed =
    the unit's total reps, or (for a hold prescription) its time under tension. Warm-up sets
    (``set_type`` ``warmup``) are left out. Units without a prescription, or with a prescription
    of 0, are left out.

    ``session_groups`` are the sessions' groups of ``sets`` (:func:`group_codes`) when already
    made (inside :func:`hipdata.metrics.compute_all`); they only save time.

    Returns
    -------
    DataFrame
        ``patient_id, date, exercise, prescribed, performed, dose_adherence``.
    """
    keep = (sets["set_type"] != "warmup").to_numpy()
    units_of = None if session_groups is None else refine(session_groups, sets["exercise"])
    needed = ["patient_id", "date", "exercise", "set", "reps", "tut_s"]
    needed += ["prescribed_sets", "prescribed_reps", "prescribed_hold_s"]
    # warm-ups are neither prescribed nor dose (only the columns needed are kept: no copy of the
    # whole sets table)
    if keep.all():  # no warm-ups: no filtered copy
        sets = sets[needed]
    else:
        sets = sets.loc[keep, needed]
        units_of = None if units_of is None else units_of.subset(keep)
    units = agg_by(
        sets,
        ["patient_id", "date", "exercise"],
        groups=units_of,
        sets_done=("set", "size"),
        total_reps=("reps", "sum"),
        tut_s=("tut_s", "sum"),
        prescribed_sets=("prescribed_sets", "first"),
        prescribed_reps=("prescribed_reps", "first"),
        prescribed_hold_s=("prescribed_hold_s", "first"),
    )
    columns = ["patient_id", "date", "exercise", "prescribed", "performed", "dose_adherence"]
    by_arrays = _dose_by_arrays(units, columns)
    if by_arrays is not None:
        return by_arrays
    by_reps = units["prescribed_reps"].notna()
    per_set = units["prescribed_reps"].where(by_reps, units["prescribed_hold_s"])
    units["prescribed"] = units["prescribed_sets"].fillna(units["sets_done"]) * per_set
    units["performed"] = units["total_reps"].where(by_reps, units["tut_s"])
    units["dose_adherence"] = safe_ratio(units["performed"], units["prescribed"])
    units = units[units["dose_adherence"].notna()]
    return units[columns].reset_index(drop=True)


def _dose_by_arrays(units: pd.DataFrame, columns: list[str]) -> pd.DataFrame | None:
    """The end of :func:`dose_units` (prescribed, performed, their ratio, units without a ratio
    dropped) on the float64 arrays: the same IEEE operations as the Series expressions, without
    a Series per step; None when a column is not float64 (the caller then uses the Series)."""
    floats = ["prescribed_sets", "prescribed_reps", "prescribed_hold_s", "total_reps", "tut_s"]
    if not all(units[c].dtype == "float64" for c in floats):
        return None
    prescribed_sets, prescribed_reps, prescribed_hold_s, total_reps, tut_s = (
        units[c].to_numpy() for c in floats
    )
    by_reps = ~np.isnan(prescribed_reps)
    per_set = np.where(by_reps, prescribed_reps, prescribed_hold_s)
    sets_done = units["sets_done"].to_numpy().astype("float64")
    prescribed = np.where(np.isnan(prescribed_sets), sets_done, prescribed_sets) * per_set
    performed = np.where(by_reps, total_reps, tut_s)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = performed / np.where(prescribed != 0, prescribed, np.nan)
    kept = np.flatnonzero(~np.isnan(ratio))
    out = units[columns[:3]].take(kept).reset_index(drop=True)
    return out.assign(
        prescribed=prescribed[kept], performed=performed[kept], dose_adherence=ratio[kept]
    )


def activity_weeks(
    activity: pd.DataFrame,
    sessions: pd.DataFrame,
    patients: pd.DataFrame,
    *,
    who_cardio_min: float = WHO_CARDIO_MIN,
    who_strength_sessions: float = WHO_STRENGTH_SESSIONS,
) -> pd.DataFrame:
    """Per patient week with at least one activity row: was the WHO target met (CONTRACT §4)?

    ``cardio_min`` summed >= ``who_cardio_min`` and strength sessions >= ``who_strength_sessions``,
    where strength sessions are the recorded ``strength_sessions`` summed when any row of that
    week records them, else the patient's exercise sessions that week.

    Returns
    -------
    DataFrame
        ``patient_id, week, cardio_min, strength_sessions, strength_recorded, met``.
    """
    rows = attach_patients(activity, patients, ["start_date"])
    rows["patient_id"] = rows["patient_id"].astype("str")
    rows["week"] = week_of(rows["date"], rows["start_date"])
    weeks = (
        rows.groupby(["patient_id", "week"], sort=True)
        .agg(
            cardio_min=("cardio_min", "sum"),
            recorded_strength=("strength_sessions", "sum"),
            strength_rows=("strength_sessions", "count"),
        )
        .reset_index()
    )
    exercise_sessions = (
        sessions.groupby(["patient_id", "week"], sort=False, observed=True)
        .size()
        .rename("exercise_sessions")
        .reset_index()
    )
    exercise_sessions["patient_id"] = exercise_sessions["patient_id"].astype("str")
    weeks = weeks.merge(exercise_sessions, on=["patient_id", "week"], how="left")
    weeks["strength_recorded"] = weeks["strength_rows"] > 0
    weeks["strength_sessions"] = (
        weeks["recorded_strength"]
        .where(weeks["strength_recorded"], weeks["exercise_sessions"].fillna(0))
        .astype("float64")
    )
    weeks["met"] = at_least(weeks["cardio_min"], who_cardio_min) & at_least(
        weeks["strength_sessions"], who_strength_sessions
    )
    return weeks[
        ["patient_id", "week", "cardio_min", "strength_sessions", "strength_recorded", "met"]
    ].reset_index(drop=True)


def _count(frame: pd.DataFrame, name: str) -> pd.Series:
    return _by_text_id(frame.groupby("patient_id", observed=True).size().rename(name))


def _by_text_id(per_patient: pd.Series) -> pd.Series:
    """A per-patient result indexed by the patient id as text (a coded id's group-by gives a
    categorical index), so that it joins the patients table's ``str`` ids."""
    return per_patient.set_axis(per_patient.index.astype("str"))


def _patient_summary_from(
    ds: Dataset,
    sets: pd.DataFrame,
    sessions: pd.DataFrame,
    family_table: pd.DataFrame,
    progression_events: pd.DataFrame,
    held_back: pd.DataFrame,
    *,
    who_cardio_min: float,
    who_strength_sessions: float,
    session_groups: Groups | None = None,
) -> pd.DataFrame:
    patients = ds.patients
    table = patients[
        [
            "patient_id",
            "clinic_id",
            "clinician_id",
            "start_date",
            "discharge_date",
            "discharge_reason",
            "planned_sessions_per_week",
        ]
    ]
    table = text_as_str(table).set_index("patient_id")

    # CONTRACT §4: pain-threshold adherence is complete case (both pains recorded)
    recorded = sessions[sessions["max_pain_during"].notna() & sessions["pain_24h"].notna()]
    forward = progression_events[progression_events["kind"].isin(FORWARD_KINDS)]
    units = dose_units(sets, session_groups=session_groups)
    unique_ids = table.index.is_unique and not table.index.hasnans
    weeks = None
    if unique_ids:
        weeks = _activity_week_flags(
            ds.activity,
            sessions,
            table,
            who_cardio_min=who_cardio_min,
            who_strength_sessions=who_strength_sessions,
        )
    if weeks is None:
        weeks = activity_weeks(
            ds.activity,
            sessions,
            patients,
            who_cardio_min=who_cardio_min,
            who_strength_sessions=who_strength_sessions,
        )
    if unique_ids:
        table = _per_patient_by_position(
            table, sessions, recorded, forward, units, held_back, weeks
        )
    else:
        table = _per_patient_joined(table, sessions, recorded, forward, units, held_back, weeks)

    table["weeks_in_care"] = weeks_in_care(
        table["start_date"], table["discharge_date"], table["last_session"]
    )
    table["planned_sessions"] = table["planned_sessions_per_week"] * table["weeks_in_care"]
    table["attendance"] = safe_ratio(table["sessions"], table["planned_sessions"])
    if sets.empty:  # no exercise data at all (outcome-only data): attendance is unknown, not 0
        table["attendance"] = np.nan
    table["pain_threshold_adherence"] = safe_ratio(
        table["pain_within_sessions"], table["pain_recorded_sessions"]
    )
    table["pain_missing_sessions"] = table["sessions"] - table["pain_recorded_sessions"]
    table["on_criteria_share"] = safe_ratio(
        table["on_criteria_progressions"], table["forward_progressions"]
    )
    table["activity_weeks_met_share"] = safe_ratio(
        table["activity_weeks_met"], table["activity_weeks"]
    )
    table["dose_adherence"] = table["dose_adherence"].astype("float64")

    top_levels = None
    if unique_ids:
        top_levels = _top_levels_by_position(table.index, family_table)
    if top_levels is None:
        top_levels = _top_levels_joined(table.index, family_table)
    table = table.assign(**top_levels)
    top_columns = list(top_levels)

    extra_top = [c for c in top_columns if c not in PATIENT_SUMMARY_COLUMNS]
    table = table.reset_index()
    return table[PATIENT_SUMMARY_COLUMNS + PATIENT_SUMMARY_EXTRA_COLUMNS + extra_top]


def _per_patient_joined(table, sessions, recorded, forward, units, held_back, weeks):
    """The per-patient counts and aggregates of :func:`_patient_summary_from`, as group-bys by
    text id joined to ``table`` (indexed by ``patient_id``): the general path (any ids)."""
    per_patient = sessions.groupby("patient_id", observed=True)
    parts = [
        _by_text_id(per_patient.size().rename("sessions")),
        _by_text_id(per_patient["date"].max().rename("last_session")),
        _count(recorded, "pain_recorded_sessions"),
        # with both pains recorded, flare False is "both <= pain_threshold"
        _count(recorded[recorded["flare"] == False], "pain_within_sessions"),  # noqa: E712
        _count(sessions[sessions["flare"] == True], "flare_sessions"),  # noqa: E712
        _by_text_id(units.groupby("patient_id", observed=True)["dose_adherence"].mean()),
        _count(units, "dose_units"),
        _count(forward, "forward_progressions"),
        _count(forward[forward["criterion_before"] == "met"], "on_criteria_progressions"),
        _count(forward[forward["criterion_before"] == "not_met"], "early_progressions"),
        _count(held_back, "held_back_episodes"),
        _count(weeks, "activity_weeks"),
        _count(weeks[weeks["met"]], "activity_weeks_met"),
    ]
    table = table.join(parts, how="left")
    counts = [c for c in table.columns if c in _COUNT_COLUMNS]
    table[counts] = table[counts].fillna(0).astype("int64")
    return table


#: The per-patient counts of :func:`_patient_summary_from` (0 for a patient without rows).
_COUNT_COLUMNS = (
    "sessions",
    "pain_recorded_sessions",
    "pain_within_sessions",
    "flare_sessions",
    "dose_units",
    "forward_progressions",
    "on_criteria_progressions",
    "early_progressions",
    "held_back_episodes",
    "activity_weeks",
    "activity_weeks_met",
)


def patient_positions(ids: pd.Index, keys: pd.Series) -> np.ndarray:
    """The position in ``ids`` (unique patient ids) of each row's ``keys`` value, -1 where
    absent; a categorical ``keys`` is looked up once per category."""
    if isinstance(keys.dtype, pd.CategoricalDtype):
        categories = keys.cat.categories
        if len(categories) == 0:
            return np.full(len(keys), -1, dtype="int64")
        by_category = ids.get_indexer(categories.astype("str")).astype("int64")
        codes = keys.cat.codes.to_numpy()
        return np.where(codes >= 0, by_category[codes], -1)
    return ids.get_indexer(keys).astype("int64")


def _per_patient_by_position(table, sessions, recorded, forward, units, held_back, weeks):
    """:func:`_per_patient_joined` when ``table``'s ``patient_id`` index is unique and
    complete: every row is placed by its patient's position in ``table`` (one lookup per
    distinct id) and counts are ``bincount``s; the mean and the maximum are the general path's
    group-bys (pandas' mean of the same rows grouped by another key can differ in the last
    bit), placed by position instead of joined."""
    ids = table.index
    n = len(ids)

    def count(frame: pd.DataFrame, keep=None) -> np.ndarray:
        position = patient_positions(ids, frame["patient_id"])
        if keep is not None:
            position = position[np.asarray(keep, dtype=bool)]
        return np.bincount(position[position >= 0], minlength=n).astype("int64")

    def per_patient(frame: pd.DataFrame, column: str, how: str) -> pd.Series:
        # the general path's group-by itself (its sums depend on the row order pandas
        # reduces in), its result placed by position
        reduced = getattr(frame.groupby("patient_id", observed=True)[column], how)()
        position = patient_positions(ids, reduced.index.to_series())
        known = position >= 0
        placed = reduced[known].set_axis(position[known])
        return placed.reindex(pd.RangeIndex(n)).set_axis(ids)

    flare = sessions["flare"]
    recorded_flare = recorded["flare"]
    met_weeks = weeks["met"].to_numpy(dtype=bool)
    criterion_before = forward["criterion_before"]
    columns = {
        "sessions": count(sessions),
        "last_session": per_patient(sessions, "date", "max"),
        "pain_recorded_sessions": count(recorded),
        # with both pains recorded, flare False is "both <= pain_threshold"
        "pain_within_sessions": count(recorded, (recorded_flare == False).fillna(False)),  # noqa: E712
        "flare_sessions": count(sessions, (flare == True).fillna(False)),  # noqa: E712
        "dose_adherence": per_patient(units, "dose_adherence", "mean"),
        "dose_units": count(units),
        "forward_progressions": count(forward),
        "on_criteria_progressions": count(forward, (criterion_before == "met").fillna(False)),
        "early_progressions": count(forward, (criterion_before == "not_met").fillna(False)),
        "held_back_episodes": count(held_back),
        "activity_weeks": count(weeks),
        "activity_weeks_met": count(weeks, met_weeks),
    }
    return table.assign(**columns)


def _top_levels_joined(ids: pd.Index, family_table: pd.DataFrame) -> dict[str, pd.Series]:
    """``top_level_<family>`` columns (nullable ``Int64``) aligned on ``ids``: the highest level
    of each patient and family, every family of :data:`FAMILIES` first, then the others in text
    order (the general path: a group-by, ``unstack`` and join)."""
    top_levels = family_table.groupby(["patient_id", "family"], observed=True)["level"].max()
    top_levels.index = pd.MultiIndex.from_arrays(
        [top_levels.index.get_level_values(k).astype("str") for k in (0, 1)],
        names=["patient_id", "family"],
    )
    top_levels = top_levels.unstack("family")
    families = list(FAMILIES) + sorted(set(top_levels.columns) - set(FAMILIES))
    top_levels = top_levels.reindex(columns=families)
    top_levels.columns = [f"top_level_{family}" for family in families]
    joined = pd.DataFrame(index=ids).join(top_levels, how="left")
    return {c: joined[c].astype("Int64") for c in top_levels.columns}


def _top_levels_by_position(ids: pd.Index, family_table: pd.DataFrame) -> dict | None:
    """:func:`_top_levels_joined` for unique ``ids`` and a categorical ``family`` without missing
    values: the maximum level of each (patient position, family code) pair by ``np.maximum.at``
    on a patients x families grid (None otherwise, or when that grid would be large)."""
    family = family_table["family"]
    level = family_table["level"]
    if not isinstance(family.dtype, pd.CategoricalDtype) or level.dtype != "int64":
        return None
    family_codes = family.cat.codes.to_numpy().astype("int64")
    if (family_codes < 0).any():
        return None
    names = [str(name) for name in family.cat.categories]
    width = max(len(names), 1)
    n = len(ids)
    if n * width > 4 * len(family_table) + 4 * n + 1024:
        return None
    position = patient_positions(ids, family_table["patient_id"])
    # the families with rows (a group-by with observed=True keeps only those)
    observed = np.zeros(width, dtype=bool)
    observed[family_codes] = True
    known = position >= 0
    cell = position[known] * width + family_codes[known]
    top = np.full(n * width, np.iinfo("int64").min, dtype="int64")
    np.maximum.at(top, cell, level.to_numpy()[known])
    present = np.zeros(n * width, dtype=bool)
    present[cell] = True
    top = top.reshape(n, width)
    present = present.reshape(n, width)
    code_of = {name: code for code, name in enumerate(names) if observed[code]}
    families = list(FAMILIES) + sorted(set(code_of) - set(FAMILIES))
    columns = {}
    for name in families:
        code = code_of.get(name)
        if code is None:
            values, missing = np.zeros(n, dtype="int64"), np.ones(n, dtype=bool)
        else:
            values, missing = np.where(present[:, code], top[:, code], 0), ~present[:, code]
        column = f"top_level_{name}"
        columns[column] = pd.Series(pd.arrays.IntegerArray(values, missing), index=ids, name=column)
    return columns


def _activity_week_flags(
    activity: pd.DataFrame,
    sessions: pd.DataFrame,
    table: pd.DataFrame,
    *,
    who_cardio_min: float,
    who_strength_sessions: float,
) -> pd.DataFrame | None:
    """The ``patient_id`` and ``met`` columns of :func:`activity_weeks` (one row per patient
    week with activity), for ``table`` indexed by unique patient ids: a patient week is one
    integer, the patient's rank in text order x week, not a group-by of text ids and a merge.
    The integers rank the patient weeks as the group-by of :func:`activity_weeks` does, so
    pandas sums the same rows with the same group codes (the same floating-point sums: its
    group sums depend on the codes' order). ``patient_id`` holds codes into ``table.index``.
    None when a row names a patient missing from ``table`` (:func:`activity_weeks` raises)."""
    ids = table.index
    position = patient_positions(ids, activity["patient_id"])
    if (position < 0).any():
        return None
    start = table["start_date"].reset_index(drop=True).take(position).set_axis(activity.index)
    week = week_of(activity["date"], start).to_numpy()
    # the patients' ranks in text order (the order a group-by sorts text ids in)
    by_text = np.asarray(ids.argsort(), dtype="int64")
    rank = np.empty(len(ids), dtype="int64")
    rank[by_text] = np.arange(len(ids))
    session_rank = rank[patient_positions(ids, sessions["patient_id"])]
    session_week = sessions["week"].to_numpy().astype("int64")
    if len(week) == 0:
        return _weeks_frame(ids, position, np.zeros(0, dtype=bool))
    low = min(int(week.min()), int(session_week.min()) if len(session_week) else 0)
    high = max(int(week.max()), int(session_week.max()) if len(session_week) else 0)
    width = high - low + 1
    key = rank[position] * width + (week - low)
    by_week = activity[["cardio_min", "strength_sessions"]].groupby(key, sort=True)
    cardio_min = by_week["cardio_min"].sum()
    recorded_strength = by_week["strength_sessions"].sum().to_numpy()
    strength_rows = by_week["strength_sessions"].count().to_numpy()
    week_keys = cardio_min.index.to_numpy()
    # exercise sessions of each patient week (0 where none)
    session_keys, session_counts = np.unique(
        session_rank * width + (session_week - low), return_counts=True
    )
    if len(session_keys):
        at = np.minimum(np.searchsorted(session_keys, week_keys), len(session_keys) - 1)
        exercise_sessions = np.where(session_keys[at] == week_keys, session_counts[at], 0)
    else:  # no exercise session at all
        exercise_sessions = np.zeros(len(week_keys), dtype="int64")
    strength_sessions = pd.Series(
        np.where(strength_rows > 0, recorded_strength, exercise_sessions).astype("float64")
    )
    met = at_least(cardio_min.reset_index(drop=True), who_cardio_min) & at_least(
        strength_sessions, who_strength_sessions
    )
    return _weeks_frame(ids, by_text[week_keys // width], met.to_numpy(dtype=bool))


def _weeks_frame(ids: pd.Index, position: np.ndarray, met: np.ndarray) -> pd.DataFrame:
    # patient_id as codes into ``ids`` (so patient_positions reads the positions back)
    patient = pd.Categorical.from_codes(position, categories=ids, validate=False)
    return pd.DataFrame({"patient_id": patient, "met": met})


def patient_summary(
    ds: Dataset,
    *,
    pain_threshold: float = PAIN_THRESHOLD,
    criterion_sets: int = CRITERION_SETS,
    criterion_reps: float = CRITERION_REPS,
    criterion_hold_s: float = CRITERION_HOLD_S,
    held_back_sessions: int = HELD_BACK_SESSIONS,
    who_cardio_min: float = WHO_CARDIO_MIN,
    who_strength_sessions: float = WHO_STRENGTH_SESSIONS,
) -> pd.DataFrame:
    """One row per patient of ``ds.patients`` (even without sessions), CONTRACT §4-5.

    - ``weeks_in_care`` = ``max(1, days / 7)`` from start to discharge (or, in care, to the last
      session; empty for a patient in care without sessions); ``planned_sessions`` =
      ``planned_sessions_per_week x weeks_in_care``; ``attendance`` = sessions / planned;
    - ``pain_threshold_adherence``: among sessions with both pains recorded (``max_pain_during``
      and ``pain_24h``), the share with both ``<= pain_threshold`` (complete case; empty when no
      session has both); ``pain_missing_sessions`` counts sessions missing either pain;
      ``flare_sessions`` counts sessions with flare True (a recorded pain above the threshold);
    - ``dose_adherence``: mean over units (one exercise in one session) of performed / prescribed
      (see :func:`dose_units`); not capped; empty without prescriptions;
    - ``on_criteria_share``: among ``up`` and ``load_up`` events, the share whose
      ``criterion_before`` is ``met`` (``unknown`` in the denominator; empty without such events);
      ``early_progressions``: such events with ``criterion_before`` ``not_met``;
    - ``held_back_episodes``: see :func:`held_back_episodes`, summed over families;
    - ``top_level_<family>``: highest level done, for every family of
      :data:`hipdata.protocol.FAMILIES` (empty where never done; a clinic's extra families get a
      column at the end);
    - ``activity_weeks_met_share`` = weeks meeting the WHO target / weeks with activity rows
      (see :func:`activity_weeks`); empty without activity.

    Parameters
    ----------
    ds : Dataset
        The loaded cohort.
    pain_threshold, criterion_sets, criterion_reps, criterion_hold_s
        Thresholds of flare and criterion (see :func:`hipdata.metrics.family_sessions`).
    held_back_sessions : int
        See :func:`held_back_episodes`.
    who_cardio_min, who_strength_sessions
        The weekly physical-activity target (WHO: 150 min, 2 strength sessions).

    Returns
    -------
    DataFrame
        The §5 columns, then ``start_date, discharge_date, discharge_reason,
        pain_recorded_sessions, dose_units, forward_progressions, on_criteria_progressions,
        activity_weeks, activity_weeks_met`` (the counts behind the shares), in the order of
        ``ds.patients``.

    Examples
    --------
    >>> import pandas as pd
    >>> from hipdata import Dataset
    >>> ds = Dataset.from_frames(
    ...     pd.DataFrame({"patient_id": ["P1", "P2"], "clinic_id": "C1",
    ...                   "start_date": "2026-01-05", "discharge_date": ["2026-01-26", None]}),
    ...     pd.DataFrame({"patient_id": "P1", "date": ["2026-01-05", "2026-01-12"],
    ...                   "exercise": "bridge", "set": 1, "reps": 10}))
    >>> patient_summary(ds)[["sessions", "weeks_in_care", "attendance"]].to_dict("records")
    [{'sessions': 2, 'weeks_in_care': 3.0, 'attendance': 0.3333333333333333}, \
{'sessions': 0, 'weeks_in_care': nan, 'attendance': nan}]
    """
    sets = _sets_table(ds.sets, ds.patients)
    sessions = _sessions_from_sets(sets, ds.patients, pain_threshold=pain_threshold)
    family_table = _family_sessions_from_sets(
        sets,
        ds.patients,
        pain_threshold=pain_threshold,
        criterion_sets=criterion_sets,
        criterion_reps=criterion_reps,
        criterion_hold_s=criterion_hold_s,
    )
    return _patient_summary_from(
        ds,
        sets,
        sessions,
        family_table,
        _progressions_from(family_table),
        _held_back_from(family_table, held_back_sessions=held_back_sessions),
        who_cardio_min=who_cardio_min,
        who_strength_sessions=who_strength_sessions,
    )
