"""Family sessions (with the progression criterion) and the ``weekly_load`` table (CONTRACT §4-5)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hipdata.dataset import Dataset
from hipdata.metrics._common import (
    FAMILY_SESSION_KEYS,
    SESSION_KEYS,
    Groups,
    _range_categorical,
    agg_by,
    at_least,
    at_most,
    attach_patients,
    group_by,
    group_codes,
    safe_ratio,
    same_keys,
    sort_order,
    sorted_runs,
    text_as_str,
)
from hipdata.metrics.sets import _sets_table
from hipdata.protocol import CRITERION_HOLD_S, CRITERION_REPS, CRITERION_SETS, PAIN_THRESHOLD

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
#: Kept after the agreed columns: how many sets at the level reached the dose target.
FAMILY_SESSION_EXTRA_COLUMNS = ["sets_on_target"]

WEEKLY_LOAD_COLUMNS = [
    "patient_id",
    "week",
    "family",
    "sessions",
    "sets",
    "total_reps",
    "volume_load_kg",
    "tut_s",
    "top_level",
    "top_load_kg",
    "volume_change_pct",
]

CRITERION_VALUES = ("met", "not_met", "unknown")


def criterion(
    sets_on_target: pd.Series,
    max_pain_during: pd.Series,
    pain_24h: pd.Series,
    *,
    criterion_sets: int = CRITERION_SETS,
    pain_threshold: float = PAIN_THRESHOLD,
) -> pd.Series:
    """Combine the three conditions of the progression criterion into met / not_met / unknown.

    Any condition false -> ``not_met``; otherwise any condition unknown (pain not recorded) ->
    ``unknown``; otherwise ``met``. The dose condition is never unknown: a set without the
    recorded reps (or hold) simply does not count towards the target.
    """
    return _criterion_coded(
        sets_on_target,
        max_pain_during,
        pain_24h,
        criterion_sets=criterion_sets,
        pain_threshold=pain_threshold,
    ).astype("str")


def _criterion_coded(
    sets_on_target: pd.Series,
    max_pain_during: pd.Series,
    pain_24h: pd.Series,
    *,
    criterion_sets: int,
    pain_threshold: float,
) -> pd.Series:
    """:func:`criterion` as a categorical (categories ``met, not_met, unknown``), for inside the
    metrics; ``astype("str")`` gives :func:`criterion`'s values."""
    dose_ok = at_least(sets_on_target, criterion_sets)
    during_over = max_pain_during.notna() & ~at_most(max_pain_during, pain_threshold)
    after_over = pain_24h.notna() & ~at_most(pain_24h, pain_threshold)
    not_met = ~dose_ok | during_over | after_over
    unknown = max_pain_during.isna() | pain_24h.isna()
    codes = np.select([not_met, unknown], [1, 2], default=0).astype("int8")
    labels = pd.Categorical.from_codes(codes, categories=pd.Index(CRITERION_VALUES, dtype="str"))
    return pd.Series(labels, index=sets_on_target.index)


def _family_sessions_from_sets(
    sets: pd.DataFrame,
    patients: pd.DataFrame,
    *,
    pain_threshold: float,
    criterion_sets: int,
    criterion_reps: float,
    criterion_hold_s: float,
    groups: Groups | None = None,
    session_groups: Groups | None = None,
    sessions: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The family sessions with coded text columns; ``groups`` and ``session_groups`` are the
    family sessions' and sessions' groups of ``sets`` (:func:`group_codes`) when already made,
    ``sessions`` the sessions table made from the same ``sets`` and ``session_groups`` (its
    ``pain_24h`` is the maximum this function needs: not computed twice)."""
    if groups is None:
        groups = group_codes(sets, FAMILY_SESSION_KEYS)
    if sessions is not None and sessions["pain_24h"].dtype == sets["pain_24h"].dtype:
        session_pain_24h = sessions[[*SESSION_KEYS, "pain_24h"]]
    else:
        session_pain_24h = agg_by(
            sets, SESSION_KEYS, groups=session_groups, pain_24h=("pain_24h", "max")
        )

    if groups is None:
        top_level = group_by(sets, FAMILY_SESSION_KEYS)["level"].transform("max")
    else:  # the family session's highest level, spread to its rows by their group codes
        top = group_by(sets, FAMILY_SESSION_KEYS, groups)["level"].max().to_numpy()
        top_level = top[groups.codes]
    at_level = (sets["level"] == top_level).to_numpy()
    # Each set is judged on its own exercise's catalogue dose: a reps exercise done with a hold
    # per rep is still judged on reps. Exercises of one family at one level pool their sets.
    on_target = ((sets["dose"] == "reps") & at_least(sets["reps"], criterion_reps)) | (
        (sets["dose"] == "hold") & at_least(sets["hold_s"], criterion_hold_s)
    )
    # warm-up sets never count towards the criterion's sets (their pain still counts)
    on_target &= sets["set_type"] != "warmup"
    # The columns "at the level" aggregate only the sets at the top level: the other rows'
    # values are masked (NaN for max, 0 for counts), which gives the aggregates of the filtered
    # rows without a copy of them (every family session has sets at its top level).
    table = agg_by(
        sets[[*FAMILY_SESSION_KEYS, "week", "reps", "volume_load_kg", "tut_s"]].assign(
            at_level_load_kg=sets["load_kg"].where(at_level),
            at_level_set=at_level.astype("int64"),
            at_level_pain_during=sets["pain_during"].where(at_level),
            on_target=(on_target.to_numpy() & at_level).astype("int64"),
            level=top_level,
        ),
        FAMILY_SESSION_KEYS,
        groups=groups,
        week=("week", "first"),
        total_reps=("reps", "sum"),
        volume_load_kg=("volume_load_kg", "sum"),
        tut_s=("tut_s", "sum"),
        level=("level", "first"),
        top_load_kg=("at_level_load_kg", "max"),
        sets=("at_level_set", "sum"),
        # "the worst pain_during of those sets": all sets at the level, like the column.
        max_pain_during=("at_level_pain_during", "max"),
        sets_on_target=("on_target", "sum"),
    )
    sessions_of = sorted_runs(table, SESSION_KEYS)
    if sessions_of is not None and same_keys(
        table[SESSION_KEYS].iloc[sessions_of[1]].reset_index(drop=True),
        session_pain_24h,
        SESSION_KEYS,
    ):
        # the family sessions' sessions, in order, are the rows of session_pain_24h: a take
        pain = session_pain_24h["pain_24h"].to_numpy()[sessions_of[0]]
        table["pain_24h"] = pain
    else:
        table = table.merge(session_pain_24h, on=SESSION_KEYS, how="left", validate="many_to_one")
    table = attach_patients(table, patients, ["clinic_id", "clinician_id"], as_codes=True)
    table["criterion"] = _criterion_coded(
        table["sets_on_target"],
        table["max_pain_during"],
        table["pain_24h"],
        criterion_sets=criterion_sets,
        pain_threshold=pain_threshold,
    )
    previous_volume = _previous_in_family(table)
    if previous_volume is None:
        table = table.sort_values(["patient_id", "family", "date"])
        previous_volume = table.groupby(["patient_id", "family"], observed=True)[
            "volume_load_kg"
        ].shift()
    table["volume_change_pct"] = 100 * safe_ratio(
        table["volume_load_kg"] - previous_volume, previous_volume
    )
    order = sort_order(table, FAMILY_SESSION_KEYS)
    if order is None:
        table = table.sort_values(FAMILY_SESSION_KEYS)
    elif len(order) and not (order == np.arange(len(order))).all():
        table = table.take(order)  # (rows already in order, as after agg_by, are not copied)
    for column in ("week", "level", "sets", "sets_on_target"):
        table[column] = table[column].astype("int64")
    for column in (
        "top_load_kg",
        "total_reps",
        "volume_load_kg",
        "tut_s",
        "max_pain_during",
        "pain_24h",
        "volume_change_pct",
    ):
        table[column] = table[column].astype("float64")
    return table[FAMILY_SESSION_COLUMNS + FAMILY_SESSION_EXTRA_COLUMNS].reset_index(drop=True)


def _previous_in_family(table: pd.DataFrame) -> pd.Series | None:
    """``table.sort_values(["patient_id", "family", "date"]).groupby(["patient_id", "family"],
    observed=True)["volume_load_kg"].shift()`` (aligned on ``table``'s index), from one packed
    sort of coded keys: the previous row in that order, when it has the same patient and family.
    None when the keys cannot be packed (see :func:`sort_order`)."""
    keys = ["patient_id", "family", "date"]
    order = sort_order(table, keys)
    if order is None:
        return None
    patient = table["patient_id"].cat.codes.to_numpy()[order]
    family = table["family"].cat.codes.to_numpy()[order]
    volume = table["volume_load_kg"].to_numpy(dtype="float64", na_value=np.nan)[order]
    shifted = np.full(len(order), np.nan)
    same = (patient[1:] == patient[:-1]) & (family[1:] == family[:-1])
    shifted[1:] = np.where(same, volume[:-1], np.nan)
    previous = np.empty(len(order))
    previous[order] = shifted
    return pd.Series(previous, index=table.index, name="volume_load_kg")


def family_sessions(
    ds: Dataset,
    *,
    pain_threshold: float = PAIN_THRESHOLD,
    criterion_sets: int = CRITERION_SETS,
    criterion_reps: float = CRITERION_REPS,
    criterion_hold_s: float = CRITERION_HOLD_S,
) -> pd.DataFrame:
    """One row per family session (the rows of one exercise family in one session).

    - ``level``: the highest level done that session in that family; ``top_load_kg`` the highest
      ``load_kg`` of any set at that level; ``sets`` the number of sets at that level;
    - ``total_reps``, ``volume_load_kg``, ``tut_s``: over all the family's sets that session;
    - ``max_pain_during``: the worst ``pain_during`` recorded on the sets at that level;
      ``pain_24h``: the session's (the maximum over all its rows, every family);
    - ``criterion`` (CONTRACT §4), judged on *all* the sets at that level: at least
      ``criterion_sets`` sets on target (reps dose: ``reps >= criterion_reps``; hold dose:
      ``hold_s >= criterion_hold_s``; each set by its exercise's catalogue dose, so two exercises
      of one family at one level pool their sets; warm-up sets are never on target),
      ``max_pain_during <= pain_threshold`` and
      ``pain_24h <= pain_threshold``. Any condition false -> ``not_met``; else any pain not
      recorded -> ``unknown``; else ``met``. "The worst pain_during of those sets" is read as the
      worst over *all* sets at the level (not only the sets on target): a painful extra set
      means the level is not yet tolerated. A pain value counts as recorded when any set at the
      level records one (as for the session's ``max_pain_during``);
    - ``volume_change_pct`` = 100 x (volume - previous family session's volume) / previous
      volume, for the same patient and family; NaN for the first one or when the previous
      volume is 0.

    Parameters
    ----------
    ds : Dataset
        The loaded cohort.
    pain_threshold, criterion_sets, criterion_reps, criterion_hold_s
        The criterion's thresholds (protocol: 3/10, 3 sets, 8 reps, 20 s); inclusive, with 1e-9
        tolerance.

    Returns
    -------
    DataFrame
        ``patient_id, clinic_id, clinician_id, date, week, family, level, top_load_kg, sets,
        total_reps, volume_load_kg, tut_s, max_pain_during, pain_24h, criterion,
        volume_change_pct``, then ``sets_on_target``; ordered by patient, date and family.

    Examples
    --------
    >>> import pandas as pd
    >>> from hipdata import Dataset
    >>> ds = Dataset.from_frames(
    ...     pd.DataFrame({"patient_id": ["P1"], "clinic_id": ["C1"], "start_date": ["2026-01-05"]}),
    ...     pd.DataFrame({"patient_id": "P1", "date": "2026-01-05", "exercise": "bridge",
    ...                   "set": [1, 2, 3], "reps": [10, 9, 8], "pain_during": 2.0, "pain_24h": 3.0}))
    >>> family_sessions(ds)[["level", "sets", "criterion"]].to_dict("records")
    [{'level': 1, 'sets': 3, 'criterion': 'met'}]
    """
    table = _family_sessions_from_sets(
        _sets_table(ds.sets, ds.patients),
        ds.patients,
        pain_threshold=pain_threshold,
        criterion_sets=criterion_sets,
        criterion_reps=criterion_reps,
        criterion_hold_s=criterion_hold_s,
    )
    return text_as_str(table)


def _weekly_load_from(sets: pd.DataFrame, family_groups: Groups | None = None) -> pd.DataFrame:
    """The weekly load table with coded text columns; ``family_groups`` are the family
    sessions' groups of ``sets`` (:func:`group_codes`) when already made."""
    keys = ["patient_id", "week", "family"]
    groups = _weeks_of_family_sessions(sets, keys, family_groups)
    if groups is None:
        groups = group_codes(sets, keys)
    if family_groups is None and groups is not None:
        family_groups = group_codes(sets, FAMILY_SESSION_KEYS)
    counted = groups is not None and family_groups is not None
    if groups is None:
        top_level = sets.groupby(keys, sort=False, observed=True)["level"].transform("max")
    else:  # the week's highest level, spread to its rows by their group codes
        top = group_by(sets, keys, groups)["level"].max().to_numpy()
        top_level = top[groups.codes]
    # top_load_kg: the highest load of the sets at the week's top level (the other rows masked)
    at_top = sets["load_kg"].where((sets["level"] == top_level).to_numpy())
    table = agg_by(
        sets[[*keys, "date", "set", "reps", "volume_load_kg", "tut_s", "level"]].assign(
            at_top_load_kg=at_top
        ),
        keys,
        groups=groups,
        # a family session (patient, date, family) lies in one week: the distinct dates of a
        # (patient, week, family) are its family sessions, counted by their first rows
        **({} if counted else {"sessions": ("date", "nunique")}),
        sets=("set", "size"),
        total_reps=("reps", "sum"),
        volume_load_kg=("volume_load_kg", "sum"),
        tut_s=("tut_s", "sum"),
        top_level=("level", "max"),
        top_load_kg=("at_top_load_kg", "max"),
    )
    if counted:
        sessions = np.bincount(groups.codes[family_groups.first], minlength=groups.n_groups)
        table.insert(len(keys), "sessions", sessions.astype("int64"))
    previous_volume = _previous_week_volume(table, keys)
    if previous_volume is None:
        previous = table[keys + ["volume_load_kg"]].rename(
            columns={"volume_load_kg": "previous_volume_load_kg"}
        )
        previous["week"] = previous["week"] + 1
        table = table.merge(previous, on=keys, how="left", validate="one_to_one")
    else:
        table["previous_volume_load_kg"] = previous_volume
    table["volume_change_pct"] = 100 * safe_ratio(
        table["volume_load_kg"] - table["previous_volume_load_kg"],
        table["previous_volume_load_kg"],
    )
    for column in ("week", "sessions", "sets", "top_level"):
        table[column] = table[column].astype("int64")
    for column in ("total_reps", "volume_load_kg", "tut_s", "top_load_kg", "volume_change_pct"):
        table[column] = table[column].astype("float64")
    return table[WEEKLY_LOAD_COLUMNS].reset_index(drop=True)


def _weeks_of_family_sessions(
    sets: pd.DataFrame, keys: list[str], family_groups: Groups | None
) -> Groups | None:
    """:func:`group_codes` of ``sets`` by ``keys`` (patient, week, family), worked out on one
    row per family session instead of one per set: a family session (patient, date, family)
    lies in one week, so the weekly groups are groups of family sessions. The family sessions'
    keys are grouped (:func:`group_codes`) and the groups spread to the rows: the same codes
    (dense ranks in key order) and the same first rows (a group's first family session holds
    its first row). None unless ``family_groups`` are runs of consecutive rows with one week
    each (the caller then groups the rows)."""
    if family_groups is None or len(sets) == 0:
        return None
    codes = family_groups.codes
    first = family_groups.first
    if not ((codes[1:] >= codes[:-1]).all() and (first[1:] > first[:-1]).all()):
        return None
    week = sets["week"].to_numpy()
    if week.dtype != "int64" or not (week == week[first][codes]).all():
        return None
    heads = sets[keys].take(first).reset_index(drop=True)
    weekly = group_codes(heads, keys)
    if weekly is None:
        return None
    return Groups(_range_categorical(weekly.codes[codes], weekly.n_groups), first[weekly.first])


def _previous_week_volume(table: pd.DataFrame, keys: list[str]) -> np.ndarray | None:
    """The ``volume_load_kg`` of the row with the same patient and family and week - 1 (NaN
    where there is none): the left merge of ``table`` with itself shifted by one week, as a
    binary search of packed keys. ``table`` must be sorted by ``keys`` (patient, week, family)
    with one row per key, the ids coded; else None (the caller merges)."""
    patient, week, family = (table[k] for k in keys)
    if not (
        isinstance(patient.dtype, pd.CategoricalDtype)
        and isinstance(family.dtype, pd.CategoricalDtype)
        and week.dtype == "int64"
    ):
        return None
    patient = patient.cat.codes.to_numpy().astype("int64")
    family = family.cat.codes.to_numpy().astype("int64")
    week = week.to_numpy()
    if len(table) == 0 or (patient < 0).any() or (family < 0).any():
        return None
    low = int(week.min())
    weeks = int(week.max()) - low + 1
    families = max(int(family.max()) + 1, 1)
    if (int(patient.max()) + 1) * weeks * families >= 2**62:
        return None
    packed = (patient * weeks + (week - low)) * families + family
    if not (packed[1:] > packed[:-1]).all():  # not sorted, or a key twice
        return None
    target = packed - families  # the same patient and family, a week earlier
    position = np.searchsorted(packed, target).clip(max=len(packed) - 1)
    found = (packed[position] == target) & (week > low)
    volume = table["volume_load_kg"].to_numpy(dtype="float64", na_value=np.nan)
    return np.where(found, volume[position], np.nan)


def weekly_load(ds: Dataset) -> pd.DataFrame:
    """One row per patient x week x family with sets (CONTRACT §4 weekly load).

    ``sessions`` = family sessions that week (dates with sets of the family); ``sets``, ``total_reps``, ``volume_load_kg`` and
    ``tut_s`` sum all the family's sets that week (every level); ``top_level`` is the week's
    highest level and ``top_load_kg`` the highest load at it; ``volume_change_pct`` = 100 x
    (volume - volume of week - 1) / volume of week - 1, empty when week - 1 has no row (a gap
    week) or no volume.

    Parameters
    ----------
    ds : Dataset
        The loaded cohort.

    Returns
    -------
    DataFrame
        ``patient_id, week, family, sessions, sets, total_reps, volume_load_kg, tut_s,
        top_level, top_load_kg, volume_change_pct``, ordered by patient, week and family.

    Examples
    --------
    >>> import pandas as pd
    >>> from hipdata import Dataset
    >>> ds = Dataset.from_frames(
    ...     pd.DataFrame({"patient_id": ["P1"], "clinic_id": ["C1"], "start_date": ["2026-01-05"]}),
    ...     pd.DataFrame({"patient_id": "P1", "date": ["2026-01-05", "2026-01-12"],
    ...                   "exercise": "bridge_loaded", "set": 1, "reps": 10,
    ...                   "load_kg": [10.0, 15.0]}))
    >>> weekly_load(ds)["volume_change_pct"].tolist()
    [nan, 50.0]
    """
    return text_as_str(_weekly_load_from(_sets_table(ds.sets, ds.patients)))
