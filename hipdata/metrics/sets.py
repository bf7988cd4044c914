"""The ``sets`` table (CONTRACT §5): one row per set, with week, volume load and time under tension."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hipdata.dataset import Dataset
from hipdata.metrics._common import attach_patients, coded, sort_order, text_as_str, week_of

SETS_COLUMNS = [
    "patient_id",
    "date",
    "week",
    "exercise",
    "family",
    "level",
    "set",
    "reps",
    "hold_s",
    "load_kg",
    "volume_load_kg",
    "tut_s",
    "pain_during",
    "pain_24h",
]
#: Kept after the contract's columns: the dose (for the criterion), the prescription (for dose
#: adherence) and the source row (to trace a figure back to the file).
SETS_EXTRA_COLUMNS = [
    "dose",
    "prescribed_sets",
    "prescribed_reps",
    "prescribed_hold_s",
    "set_type",
    "source_file",
    "source_row",
]


def set_volume_load_kg(reps: pd.Series, load_kg: pd.Series) -> pd.Series:
    """Volume load of a set: ``reps x load_kg``, 0 without reps (an empty load is already 0)."""
    return reps.fillna(0.0) * load_kg.fillna(0.0)


def set_tut_s(reps: pd.Series, hold_s: pd.Series) -> pd.Series:
    """Time under tension of a set: ``hold_s x reps``, ``hold_s`` for a pure hold, 0 without hold."""
    return pd.Series(np.where(hold_s.notna(), hold_s * reps.fillna(1.0), 0.0), index=hold_s.index)


#: Text columns of the sets table that the metrics carry as :func:`coded` categoricals: the
#: group-by and sort keys. The other text columns (``dose``, ``set_type``, ``source_file``) are
#: only compared with a constant and carried to the output, so they stay text: a take in the
#: sort costs less than coding them (a hash per row) and turning them back at the end.
SETS_CODED_COLUMNS = ["patient_id", "exercise", "family"]


def _sets_table(sets: pd.DataFrame, patients: pd.DataFrame) -> pd.DataFrame:
    """The sets table with its text columns as sorted categoricals (see :func:`coded`); the
    public :func:`sets_table` is this through :func:`text_as_str`."""
    table = coded(sets, [c for c in SETS_CODED_COLUMNS if c in sets.columns])
    keys = ["patient_id", "date", "family", "level", "exercise", "set"]
    order = sort_order(table, keys)
    if order is not None:
        # sorted first, then the derived columns are computed on the sorted rows (each is a
        # row-wise formula, so the values are the same): no unsorted copy of them to take;
        # rows already in order (e.g. files written sorted) are not copied at all
        in_order = bool((order[1:] > order[:-1]).all())
        table = (table if in_order else table.take(order)).reset_index(drop=True)
    table = attach_patients(table, patients, ["start_date"])
    table["week"] = week_of(table["date"], table["start_date"])
    table["load_kg"] = table["load_kg"].fillna(0.0)
    table["volume_load_kg"] = set_volume_load_kg(table["reps"], table["load_kg"])
    table["tut_s"] = set_tut_s(table["reps"], table["hold_s"])
    if order is None:
        table = table.sort_values(keys)
    return table[SETS_COLUMNS + SETS_EXTRA_COLUMNS].reset_index(drop=True)


def sets_table(ds: Dataset) -> pd.DataFrame:
    """One row per set, with the derived columns of CONTRACT §4.

    - ``week`` = ``floor((date - start_date).days / 7)`` (sessions in the 7 days before start are
      week -1);
    - ``load_kg``: an empty load is 0 (body weight or band);
    - ``volume_load_kg`` = ``reps x load_kg`` (0 without reps);
    - ``tut_s`` = ``hold_s x reps`` when both are given, ``hold_s`` for a pure hold, 0 without a hold.

    Parameters
    ----------
    ds : Dataset
        The loaded cohort.

    Returns
    -------
    DataFrame
        The §5 columns ``patient_id, date, week, exercise, family, level, set, reps, hold_s,
        load_kg, volume_load_kg, tut_s, pain_during, pain_24h``, then ``dose``, the prescription
        columns, ``set_type`` and ``source_file, source_row``; ordered by patient, date, family, level, exercise
        and set.

    Examples
    --------
    >>> import pandas as pd
    >>> from hipdata import Dataset
    >>> ds = Dataset.from_frames(
    ...     pd.DataFrame({"patient_id": ["P1"], "clinic_id": ["C1"], "start_date": ["2026-01-05"]}),
    ...     pd.DataFrame({"patient_id": ["P1"], "date": ["2026-01-13"], "exercise": ["bridge_loaded"],
    ...                   "set": [1], "reps": [10], "load_kg": [20.0]}))
    >>> sets_table(ds)[["week", "volume_load_kg", "tut_s"]].to_dict("records")
    [{'week': 1, 'volume_load_kg': 200.0, 'tut_s': 0.0}]
    """
    return text_as_str(_sets_table(ds.sets, ds.patients))
