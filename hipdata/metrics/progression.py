"""Progression events, runs at a level and held-back episodes (CONTRACT §4)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hipdata.dataset import Dataset
from hipdata.metrics._common import (
    _categorical_as_str,
    _is_text_categorical,
    days_between,
    sort_order,
    text_as_str,
)
from hipdata.metrics.family import _family_sessions_from_sets
from hipdata.metrics.sets import _sets_table
from hipdata.protocol import (
    CRITERION_HOLD_S,
    CRITERION_REPS,
    CRITERION_SETS,
    HELD_BACK_SESSIONS,
    PAIN_THRESHOLD,
    TOLERANCE,
)

PROGRESSIONS_COLUMNS = [
    "patient_id",
    "family",
    "date",
    "from_level",
    "to_level",
    "from_load_kg",
    "to_load_kg",
    "kind",
    "criterion_before",
    "sessions_at_level",
    "days_at_level",
]
#: Kept after the contract's columns: the patient's clinic and clinician, for audits.
PROGRESSIONS_EXTRA_COLUMNS = ["clinic_id", "clinician_id"]

HELD_BACK_COLUMNS = [
    "patient_id",
    "family",
    "level",
    "top_load_kg",
    "run_start",
    "first_met_date",
    "run_end",
    "sessions_after_met",
    "run_open",
]
#: Progression kinds that move a patient forward (the on-criteria share and early progressions).
FORWARD_KINDS = ("up", "load_up")
#: The progression kinds: level up / down, load up / down at the same level.
_KIND_LABELS = pd.Index(["up", "down", "load_up", "load_down"], dtype="str")


def _runs(family_table: pd.DataFrame) -> pd.DataFrame:
    """Family sessions ordered by patient, family and date, with their run.

    A run is a maximal sequence of consecutive family sessions (same patient and family) with the
    same level and top load (top loads equal within 1e-9 kg). Adds ``previous_*`` columns for the
    session before in the same patient and family, ``run_id``, ``run_position`` (0-based),
    ``run_length``, ``run_start`` and ``run_open`` (the run is the last of its patient and family).
    """
    keys = ["patient_id", "family", "date"]
    order = sort_order(family_table, keys) if len(family_table) else None
    coded_ids = all(isinstance(family_table[k].dtype, pd.CategoricalDtype) for k in keys[:2])
    if order is None or not coded_ids:
        return _runs_grouped(family_table)
    # one packed sort of the coded keys; a (patient, family) is then a run of rows, so a shift
    # within it is a shift of the column with its first row emptied, and the runs at a level
    # (within a family, by date) are runs of rows too, read off their starts
    table = family_table.take(order).reset_index(drop=True)
    patient = table["patient_id"].cat.codes.to_numpy()
    family = table["family"].cat.codes.to_numpy()
    first_of_family = np.r_[True, (patient[1:] != patient[:-1]) | (family[1:] != family[:-1])]
    for column in ("level", "top_load_kg", "criterion", "date"):
        table[f"previous_{column}"] = table[column].shift().mask(first_of_family)
    level_change = ~first_of_family & (table["level"] != table["previous_level"]).to_numpy()
    load_change = (
        ~first_of_family
        & ((table["top_load_kg"] - table["previous_top_load_kg"]).abs() > TOLERANCE).to_numpy()
    )
    table["level_change"] = level_change
    table["load_change"] = load_change & ~level_change
    new_run = first_of_family | level_change | load_change
    run_id = np.cumsum(new_run)
    table["run_id"] = run_id
    starts = np.flatnonzero(new_run)
    run = run_id - 1
    table["run_position"] = np.arange(len(table)) - starts[run]
    table["run_length"] = np.diff(np.r_[starts, len(table)])[run]
    # dates rise within a (patient, family), so a run's earliest date is its first row's
    table["run_start"] = table["date"].to_numpy()[starts][run]
    family_starts = np.flatnonzero(first_of_family)
    family_last = np.r_[family_starts[1:] - 1, len(table) - 1]
    last_run = run_id[family_last][np.cumsum(first_of_family) - 1]
    table["run_open"] = run_id == last_run
    table["first_of_family"] = first_of_family
    return table


def _runs_grouped(family_table: pd.DataFrame) -> pd.DataFrame:
    """:func:`_runs` by pandas group-bys (any key dtypes, missing keys)."""
    table = family_table.sort_values(["patient_id", "family", "date"]).reset_index(drop=True)
    by_family = table.groupby(["patient_id", "family"], sort=False, observed=True)
    for column in ("level", "top_load_kg", "criterion", "date"):
        table[f"previous_{column}"] = by_family[column].shift()
    first_of_family = table["previous_level"].isna()
    level_change = ~first_of_family & (table["level"] != table["previous_level"])
    load_change = ~first_of_family & (
        (table["top_load_kg"] - table["previous_top_load_kg"]).abs() > TOLERANCE
    )
    table["level_change"] = level_change
    table["load_change"] = load_change & ~level_change
    table["run_id"] = (first_of_family | level_change | load_change).cumsum()
    by_run = table.groupby("run_id", sort=False)
    table["run_position"] = by_run.cumcount()
    table["run_length"] = by_run["date"].transform("size")
    table["run_start"] = by_run["date"].transform("min")
    last_run = table.groupby(["patient_id", "family"], sort=False, observed=True)[
        "run_id"
    ].transform("max")
    table["run_open"] = table["run_id"] == last_run
    return table


def _progressions_from(
    family_table: pd.DataFrame, *, runs: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Progression events of ``family_table``; ``runs`` is its :func:`_runs` when already made."""
    table = (_runs(family_table) if runs is None else runs).copy(deep=False)
    if "first_of_family" in table:  # sorted by patient, family, date with coded ids
        first_of_family = table["first_of_family"].to_numpy()
        table["sessions_at_level"] = table["run_position"].shift().mask(first_of_family) + 1
        table["previous_run_start"] = table["run_start"].shift().mask(first_of_family)
    else:
        by_family = table.groupby(["patient_id", "family"], sort=False, observed=True)
        table["sessions_at_level"] = by_family["run_position"].shift() + 1
        table["previous_run_start"] = by_family["run_start"].shift()
    # only the columns the events need are filtered (not every column of the runs)
    needed = [
        *PROGRESSIONS_COLUMNS[:3],
        *PROGRESSIONS_EXTRA_COLUMNS,
        "level",
        "previous_level",
        "top_load_kg",
        "previous_top_load_kg",
        "previous_criterion",
        "level_change",
        "sessions_at_level",
        "previous_run_start",
    ]
    events = table.loc[(table["level_change"] | table["load_change"]).to_numpy(), needed]
    going_up = np.where(
        events["level_change"],
        events["level"] > events["previous_level"],
        events["top_load_kg"] > events["previous_top_load_kg"],
    )
    # the kind as codes into its four labels, turned into text by one take (the same ``str``
    # values as ``np.where`` of the labels and ``astype("str")``, without a Python object each)
    kind_codes = np.where(
        events["level_change"].to_numpy(dtype=bool),
        np.where(going_up, 0, 1),
        np.where(going_up, 2, 3),
    ).astype("int8")
    events["kind"] = _categorical_as_str(
        pd.Series(
            pd.Categorical.from_codes(kind_codes, categories=_KIND_LABELS, validate=False),
            index=events.index,
        )
    )
    events = events.rename(
        columns={
            "previous_level": "from_level",
            "level": "to_level",
            "previous_top_load_kg": "from_load_kg",
            "top_load_kg": "to_load_kg",
            "previous_criterion": "criterion_before",
        }
    )
    events["days_at_level"] = days_between(events["date"], events["previous_run_start"])
    for column in ("from_level", "to_level", "sessions_at_level", "days_at_level"):
        events[column] = events[column].astype("int64")
    for column in ("from_load_kg", "to_load_kg"):
        events[column] = events[column].astype("float64")
    before = events["criterion_before"]
    events["criterion_before"] = (
        _categorical_as_str(before) if _is_text_categorical(before.dtype) else before.astype("str")
    )
    order = sort_order(events, ["patient_id", "date", "family"])
    if order is None:
        events = events.sort_values(["patient_id", "date", "family"])
    else:
        events = events.take(order)
    return events[PROGRESSIONS_COLUMNS + PROGRESSIONS_EXTRA_COLUMNS].reset_index(drop=True)


def progressions(
    ds: Dataset,
    *,
    pain_threshold: float = PAIN_THRESHOLD,
    criterion_sets: int = CRITERION_SETS,
    criterion_reps: float = CRITERION_REPS,
    criterion_hold_s: float = CRITERION_HOLD_S,
) -> pd.DataFrame:
    """Progression events between consecutive family sessions (CONTRACT §4).

    For a patient and family, ordered by date, an event is a change of level between one family
    session and the next (``up``, ``down``) or, at the same level, a change of top load
    (``load_up``, ``load_down``). The event is dated on the later session; ``from_load_kg`` /
    ``to_load_kg`` are the two sessions' top loads (for level changes too). A *run* is a maximal
    sequence of consecutive family sessions with the same level and top load:
    ``criterion_before`` is the criterion of the earlier session (see :func:`family_sessions`),
    ``sessions_at_level`` the length of the run ending with it and ``days_at_level`` the days
    from that run's first session to the event's date.

    Parameters
    ----------
    ds : Dataset
        The loaded cohort.
    pain_threshold, criterion_sets, criterion_reps, criterion_hold_s
        Thresholds of the criterion (see :func:`hipdata.metrics.family_sessions`).

    Returns
    -------
    DataFrame
        ``patient_id, family, date, from_level, to_level, from_load_kg, to_load_kg, kind,
        criterion_before, sessions_at_level, days_at_level``, then ``clinic_id, clinician_id``.

    Examples
    --------
    >>> import pandas as pd
    >>> from hipdata import Dataset
    >>> ds = Dataset.from_frames(
    ...     pd.DataFrame({"patient_id": ["P1"], "clinic_id": ["C1"], "start_date": ["2026-01-05"]}),
    ...     pd.DataFrame({"patient_id": "P1", "date": ["2026-01-05", "2026-01-08", "2026-01-12"],
    ...                   "exercise": ["bridge", "bridge", "bridge_loaded"], "set": 1,
    ...                   "reps": 10}))
    >>> progressions(ds)[["kind", "sessions_at_level", "days_at_level"]].to_dict("records")
    [{'kind': 'up', 'sessions_at_level': 2, 'days_at_level': 7}]
    """
    family_table = _family_sessions_from_sets(
        _sets_table(ds.sets, ds.patients),
        ds.patients,
        pain_threshold=pain_threshold,
        criterion_sets=criterion_sets,
        criterion_reps=criterion_reps,
        criterion_hold_s=criterion_hold_s,
    )
    return text_as_str(_progressions_from(family_table))


def _held_back_from(
    family_table: pd.DataFrame, *, held_back_sessions: int, runs: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Held-back episodes of ``family_table``; ``runs`` is its :func:`_runs` when already made."""
    table = (_runs(family_table) if runs is None else runs).copy(deep=False)
    met_position = table["run_position"].where(table["criterion"] == "met")
    if "first_of_family" in table and len(table):
        # runs are consecutive rows numbered 1, 2, ... (see _runs) and dates rise within a
        # run: its earliest met position by a reduction over the runs, its end its last date
        starts = np.flatnonzero(table["run_position"].to_numpy() == 0)
        run = table["run_id"].to_numpy() - 1
        earliest = np.fmin.reduceat(met_position.to_numpy(dtype="float64"), starts)
        table["first_met_position"] = earliest[run]
        last = np.r_[starts[1:] - 1, len(table) - 1]
        table["run_end"] = table["date"].to_numpy()[last][run]
    else:
        table["first_met_position"] = met_position.groupby(table["run_id"]).transform("min")
        table["run_end"] = table.groupby("run_id", sort=False)["date"].transform("max")
    table["sessions_after_met"] = table["run_length"] - 1 - table["first_met_position"]
    # only the columns the episodes need are filtered (not every column of the runs)
    needed = [c for c in HELD_BACK_COLUMNS if c not in ("first_met_date",)] + ["date"]
    first_met = table.loc[(table["run_position"] == table["first_met_position"]).to_numpy(), needed]
    episodes = first_met[first_met["sessions_after_met"] >= held_back_sessions].rename(
        columns={"date": "first_met_date"}
    )
    episodes = episodes.astype({"sessions_after_met": "int64", "run_open": "bool"})
    episodes = episodes.sort_values(["patient_id", "family", "run_start"])
    return episodes[HELD_BACK_COLUMNS].reset_index(drop=True)


def held_back_episodes(
    ds: Dataset,
    *,
    held_back_sessions: int = HELD_BACK_SESSIONS,
    pain_threshold: float = PAIN_THRESHOLD,
    criterion_sets: int = CRITERION_SETS,
    criterion_reps: float = CRITERION_REPS,
    criterion_hold_s: float = CRITERION_HOLD_S,
) -> pd.DataFrame:
    """Held-back episodes: runs in which the first ``met`` session is followed by
    ``held_back_sessions`` or more further sessions of the same run (CONTRACT §4).

    One episode per run at most; a still-open run (the last run of its patient and family, with no
    progression event after it yet) counts too. A patient's count in
    :func:`patient_summary` is the number of rows here, summed over families.

    Parameters
    ----------
    ds : Dataset
        The loaded cohort.
    held_back_sessions : int
        Further sessions after the first ``met`` one that make a run "held back" (protocol: 3).
    pain_threshold, criterion_sets, criterion_reps, criterion_hold_s
        Thresholds of the criterion (see :func:`hipdata.metrics.family_sessions`).

    Returns
    -------
    DataFrame
        One row per episode: ``patient_id, family, level, top_load_kg, run_start,
        first_met_date, run_end, sessions_after_met, run_open``.

    Examples
    --------
    >>> import pandas as pd
    >>> from hipdata import Dataset
    >>> dates = pd.date_range("2026-01-05", periods=4, freq="2D").repeat(3)
    >>> ds = Dataset.from_frames(
    ...     pd.DataFrame({"patient_id": ["P1"], "clinic_id": ["C1"], "start_date": ["2026-01-05"]}),
    ...     pd.DataFrame({"patient_id": "P1", "date": dates, "exercise": "bridge",
    ...                   "set": [1, 2, 3] * 4, "reps": 10, "pain_during": 1.0, "pain_24h": 1.0}))
    >>> held_back_episodes(ds)[["sessions_after_met", "run_open"]].to_dict("records")
    [{'sessions_after_met': 3, 'run_open': True}]
    """
    family_table = _family_sessions_from_sets(
        _sets_table(ds.sets, ds.patients),
        ds.patients,
        pain_threshold=pain_threshold,
        criterion_sets=criterion_sets,
        criterion_reps=criterion_reps,
        criterion_hold_s=criterion_hold_s,
    )
    return text_as_str(_held_back_from(family_table, held_back_sessions=held_back_sessions))
