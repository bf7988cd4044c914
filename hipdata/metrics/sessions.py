"""The ``sessions`` table (CONTRACT §5): one row per patient and date, with the flare flag."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hipdata.dataset import Dataset
from hipdata.metrics._common import (
    SESSION_KEYS,
    Groups,
    _categorical_as_str,
    agg_by,
    at_most,
    attach_patients,
    distinct_per_group,
    group_codes,
    text_as_str,
    week_of,
)
from hipdata.metrics.sets import _sets_table
from hipdata.protocol import PAIN_THRESHOLD

SESSIONS_COLUMNS = [
    "patient_id",
    "clinic_id",
    "date",
    "week",
    "quarter",
    "n_exercises",
    "n_sets",
    "total_reps",
    "volume_load_kg",
    "tut_s",
    "max_pain_during",
    "pain_24h",
    "flare",
]
#: Kept after the contract's columns: the clinician, for per-clinician audits.
SESSIONS_EXTRA_COLUMNS = ["clinician_id"]


def quarter_label(dates: pd.Series) -> pd.Series:
    """Calendar quarter of each date, as ``2026Q3``.

    The label is built once per distinct quarter and spread to the rows by integer codes.
    """
    if dates.dtype.kind == "M" and isinstance(dates.dtype, np.dtype):
        # year * 4 + quarter - 1 from the months since 1970 (floor division and a
        # non-negative remainder, so dates before 1970 too), without the ``.dt`` fields
        months = dates.to_numpy().astype("datetime64[M]")
        known = ~np.isnat(months)
        months = months.view("int64")
        number = (1970 + months // 12) * 4 + (months % 12) // 3
    else:
        number = (dates.dt.year * 4 + dates.dt.quarter - 1).to_numpy(
            dtype="float64", na_value=np.nan
        )
        known = ~np.isnan(number)
    codes = np.full(len(number), -1, dtype="int64")
    uniques, codes[known] = np.unique(number[known].astype("int64"), return_inverse=True)
    labels = [f"{q // 4}Q{q % 4 + 1}" for q in uniques.tolist()]
    quarters = pd.Categorical.from_codes(codes, categories=pd.Index(labels, dtype="str"))
    # one take of the labels by the codes (``astype("str")`` builds a Python object per row)
    return _categorical_as_str(pd.Series(quarters, index=dates.index))


def flare(
    max_pain_during: pd.Series, pain_24h: pd.Series, *, pain_threshold: float = PAIN_THRESHOLD
) -> pd.Series:
    """CONTRACT §4 flare: True when any recorded pain > threshold; False when both are recorded
    and <= threshold; missing otherwise. Returns a nullable ``boolean`` Series."""
    over = (max_pain_during.notna() & ~at_most(max_pain_during, pain_threshold)) | (
        pain_24h.notna() & ~at_most(pain_24h, pain_threshold)
    )
    both_known = max_pain_during.notna() & pain_24h.notna()
    over = over.to_numpy(dtype=bool)
    unknown = ~(over | both_known.to_numpy(dtype=bool))
    return pd.Series(pd.arrays.BooleanArray(over, unknown), index=max_pain_during.index)


def _sessions_from_sets(
    sets: pd.DataFrame,
    patients: pd.DataFrame,
    *,
    pain_threshold: float,
    groups: Groups | None = None,
) -> pd.DataFrame:
    """The sessions table with coded text columns; ``groups`` are the sessions' groups of
    ``sets`` (:func:`group_codes`) when already made."""
    if groups is None:
        groups = group_codes(sets, SESSION_KEYS)
    # distinct exercises per session counted on a bitmap of (session, exercise code) pairs
    n_exercises = None if groups is None else distinct_per_group(groups, sets["exercise"])
    table = agg_by(
        sets,
        SESSION_KEYS,
        groups=groups,
        **({} if n_exercises is not None else {"n_exercises": ("exercise", "nunique")}),
        n_sets=("set", "size"),
        total_reps=("reps", "sum"),
        volume_load_kg=("volume_load_kg", "sum"),
        tut_s=("tut_s", "sum"),
        max_pain_during=("pain_during", "max"),
        pain_24h=("pain_24h", "max"),
    )
    if n_exercises is not None:
        table.insert(len(SESSION_KEYS), "n_exercises", n_exercises)
    table = attach_patients(
        table, patients, ["clinic_id", "clinician_id", "start_date"], as_codes=True
    )
    table["week"] = week_of(table["date"], table["start_date"])
    table["quarter"] = quarter_label(table["date"])
    table["flare"] = flare(
        table["max_pain_during"], table["pain_24h"], pain_threshold=pain_threshold
    )
    for column in ("n_exercises", "n_sets"):
        table[column] = table[column].astype("int64")
    for column in ("total_reps", "volume_load_kg", "tut_s", "max_pain_during", "pain_24h"):
        table[column] = table[column].astype("float64")
    return table[SESSIONS_COLUMNS + SESSIONS_EXTRA_COLUMNS].reset_index(drop=True)


def sessions_table(ds: Dataset, *, pain_threshold: float = PAIN_THRESHOLD) -> pd.DataFrame:
    """One row per session (all rows of one patient on one date).

    ``max_pain_during`` and ``pain_24h`` are the maxima of the values the session's rows record
    (empty when none records one); ``flare`` is True when either is > ``pain_threshold``, False
    when both are recorded and <= it, missing otherwise (CONTRACT §4). ``quarter`` is the
    calendar quarter of the date (``2026Q3``); ``clinic_id`` comes from the patient.

    Parameters
    ----------
    ds : Dataset
        The loaded cohort.
    pain_threshold : float
        The pain limit on the 0-10 scale (protocol: 3/10); inclusive, with 1e-9 tolerance.

    Returns
    -------
    DataFrame
        The §5 columns ``patient_id, clinic_id, date, week, quarter, n_exercises, n_sets,
        total_reps, volume_load_kg, tut_s, max_pain_during, pain_24h, flare`` (nullable
        ``boolean``), then ``clinician_id``.

    Examples
    --------
    >>> import pandas as pd
    >>> from hipdata import Dataset
    >>> ds = Dataset.from_frames(
    ...     pd.DataFrame({"patient_id": ["P1"], "clinic_id": ["C1"], "start_date": ["2026-07-01"]}),
    ...     pd.DataFrame({"patient_id": ["P1"], "date": ["2026-07-02"], "exercise": ["bridge"],
    ...                   "set": [1], "reps": [10], "pain_during": [2.0], "pain_24h": [4.0]}))
    >>> row = sessions_table(ds).iloc[0]
    >>> (row["quarter"], bool(row["flare"]))
    ('2026Q3', True)
    """
    sets = _sets_table(ds.sets, ds.patients)
    return text_as_str(_sessions_from_sets(sets, ds.patients, pain_threshold=pain_threshold))
