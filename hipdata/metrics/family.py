"""Family sessions (with the progression criterion) and the ``weekly_load`` table (CONTRACT §4-5)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hipdata.dataset import Dataset
from hipdata.metrics._common import (
    FAMILY_SESSION_KEYS,
    SESSION_KEYS,
    agg_by,
    at_least,
    at_most,
    attach_patients,
    group_codes,
    grouper_for,
    safe_ratio,
    same_keys,
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
) -> pd.DataFrame:
    groups = group_codes(sets, FAMILY_SESSION_KEYS)
    whole_family = agg_by(
        sets,
        FAMILY_SESSION_KEYS,
        groups=groups,
        week=("week", "first"),
        total_reps=("reps", "sum"),
        volume_load_kg=("volume_load_kg", "sum"),
        tut_s=("tut_s", "sum"),
    )
    session_pain_24h = agg_by(sets, SESSION_KEYS, pain_24h=("pain_24h", "max"))

    by_family_session = grouper_for(sets, FAMILY_SESSION_KEYS, groups)
    top_level = sets.groupby(by_family_session, sort=False, observed=True)["level"].transform("max")
    needed = [*FAMILY_SESSION_KEYS, "level", "load_kg", "set", "pain_during"]
    needed += ["dose", "reps", "hold_s", "set_type"]
    at_level = sets.loc[(sets["level"] == top_level).to_numpy(), needed]  # no copy of the rest
    # Each set is judged on its own exercise's catalogue dose: a reps exercise done with a hold
    # per rep is still judged on reps. Exercises of one family at one level pool their sets.
    on_target = ((at_level["dose"] == "reps") & at_least(at_level["reps"], criterion_reps)) | (
        (at_level["dose"] == "hold") & at_least(at_level["hold_s"], criterion_hold_s)
    )
    # warm-up sets never count towards the criterion's sets (their pain still counts)
    on_target &= at_level["set_type"] != "warmup"
    level_part = agg_by(
        at_level.assign(on_target=on_target.astype("int64")),
        FAMILY_SESSION_KEYS,
        level=("level", "first"),
        top_load_kg=("load_kg", "max"),
        sets=("set", "size"),
        # "the worst pain_during of those sets": all sets at the level, like the column.
        max_pain_during=("pain_during", "max"),
        sets_on_target=("on_target", "sum"),
    )

    if same_keys(whole_family, level_part, FAMILY_SESSION_KEYS):
        # one row per family session in both, in the same order: the inner merge is a concat
        table = pd.concat([whole_family, level_part.drop(columns=FAMILY_SESSION_KEYS)], axis=1)
    else:
        table = whole_family.merge(level_part, on=FAMILY_SESSION_KEYS, validate="one_to_one")
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
    table = table.sort_values(["patient_id", "family", "date"])
    previous_volume = table.groupby(["patient_id", "family"], observed=True)[
        "volume_load_kg"
    ].shift()
    table["volume_change_pct"] = 100 * safe_ratio(
        table["volume_load_kg"] - previous_volume, previous_volume
    )
    table = table.sort_values(FAMILY_SESSION_KEYS)
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


def _weekly_load_from(sets: pd.DataFrame) -> pd.DataFrame:
    keys = ["patient_id", "week", "family"]
    groups = group_codes(sets, keys)
    table = agg_by(
        sets,
        keys,
        groups=groups,
        sessions=("date", "nunique"),
        sets=("set", "size"),
        total_reps=("reps", "sum"),
        volume_load_kg=("volume_load_kg", "sum"),
        tut_s=("tut_s", "sum"),
        top_level=("level", "max"),
    )
    top_level = sets.groupby(grouper_for(sets, keys, groups), sort=False, observed=True)[
        "level"
    ].transform("max")
    top_load = agg_by(
        sets.loc[(sets["level"] == top_level).to_numpy(), [*keys, "load_kg"]],
        keys,
        top_load_kg=("load_kg", "max"),
    )
    previous = table[keys + ["volume_load_kg"]].rename(
        columns={"volume_load_kg": "previous_volume_load_kg"}
    )
    previous["week"] = previous["week"] + 1
    if same_keys(table, top_load, keys):  # every group has sets at its top level: aligned
        table["top_load_kg"] = top_load["top_load_kg"].to_numpy()
    else:
        table = table.merge(top_load, on=keys, how="left", validate="one_to_one")
    table = table.merge(previous, on=keys, how="left", validate="one_to_one")
    table["volume_change_pct"] = 100 * safe_ratio(
        table["volume_load_kg"] - table["previous_volume_load_kg"],
        table["previous_volume_load_kg"],
    )
    for column in ("week", "sessions", "sets", "top_level"):
        table[column] = table[column].astype("int64")
    for column in ("total_reps", "volume_load_kg", "tut_s", "top_load_kg", "volume_change_pct"):
        table[column] = table[column].astype("float64")
    return table[WEEKLY_LOAD_COLUMNS].reset_index(drop=True)


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
