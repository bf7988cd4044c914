"""Adherence across patients: distributions per clinic, completion, and the activity target.

- :func:`adherence_distribution` — n, mean, sd, median, quartiles, min and max of a
  ``patient_summary`` column (attendance by default) per clinic or clinician;
- :func:`completion` — the share of *discharged* episodes with attendance >= 75 % of planned
  sessions (ESCAPE-pain definition), with Wilson intervals;
- :func:`activity_target_summary` — how often the WHO activity target (150 min cardio and
  2 strength sessions a week) was met.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hipdata.analysis.intervals import wilson_ci
from hipdata.protocol import (
    COMPLETION_ATTENDANCE,
    TOLERANCE,
    WHO_CARDIO_MIN,
    WHO_STRENGTH_SESSIONS,
)

#: Label for patients whose grouping column (clinic_id, clinician_id) is empty.
MISSING_GROUP = "not recorded"
#: Group label of the single row returned when ``by=None``.
ALL_GROUP = "all"

_DISTRIBUTION_COLUMNS = ["n", "n_missing", "mean", "sd", "median", "q1", "q3", "iqr", "min", "max"]


def _group_labels(frame: pd.DataFrame, by: str | None) -> pd.Series:
    """The grouping column as text, empty values labelled; one ``"all"`` group when by is None."""
    if by is None:
        return pd.Series(ALL_GROUP, index=frame.index, dtype="str", name="group")
    return frame[by].astype("object").fillna(MISSING_GROUP).astype("str")


def _membership(
    data: pd.DataFrame, patients: pd.DataFrame | None, by: str | None, columns: list[str]
) -> pd.DataFrame:
    """``data[columns]`` with the grouping column, taken from ``patients`` when given."""
    if by is None or patients is None:
        if by is not None and by not in data.columns:
            raise ValueError(f"the table has no column {by!r}; pass patients= to group by it")
        frame = data[[*columns, *([by] if by else [])]].copy()
    else:
        frame = data[columns].merge(
            patients[["patient_id", by]].drop_duplicates("patient_id"),
            on="patient_id",
            how="left",
        )
    frame["group"] = _group_labels(frame, by)
    return frame


def _describe(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    grouped = frame.groupby("group")[column]
    table = pd.DataFrame(
        {
            "n": grouped.count(),
            "n_missing": grouped.size() - grouped.count(),
            "mean": grouped.mean(),
            "sd": grouped.std(),
            "median": grouped.median(),
            "q1": grouped.quantile(0.25),
            "q3": grouped.quantile(0.75),
            "min": grouped.min(),
            "max": grouped.max(),
        }
    )
    table["iqr"] = table["q3"] - table["q1"]
    return table[_DISTRIBUTION_COLUMNS]


def adherence_distribution(
    patient_summary: pd.DataFrame,
    *,
    by: str | None = "clinic_id",
    column: str = "attendance",
) -> pd.DataFrame:
    """Distribution of a patient-level adherence figure per group.

    Quartiles are pandas' linear-interpolation quantiles (type 7, as R's default). Patients with
    the figure missing are counted in ``n_missing`` and left out of the statistics.

    Parameters
    ----------
    patient_summary : DataFrame
        The ``patient_summary`` table.
    by : str or None
        Grouping column (``clinic_id``, ``clinician_id``); None for one row over everyone.
    column : str
        The figure: ``attendance``, ``dose_adherence``, ``pain_threshold_adherence``, ...

    Returns
    -------
    DataFrame
        ``<by> (or group), measure, n, n_missing, mean, sd, median, q1, q3, iqr, min, max``.

    Examples
    --------
    >>> summary = pd.DataFrame({"clinic_id": ["A", "A", "A"], "attendance": [0.5, 1.0, 0.75]})
    >>> adherence_distribution(summary)[["clinic_id", "n", "median", "iqr"]].to_dict("records")
    [{'clinic_id': 'A', 'n': 3, 'median': 0.75, 'iqr': 0.25}]
    """
    frame = _membership(patient_summary, None, by, [column])
    table = _describe(frame, column).rename_axis(by or "group").reset_index()
    table.insert(1, "measure", column)
    return table


def completion(
    patient_summary: pd.DataFrame,
    patients: pd.DataFrame,
    *,
    by: str | None = "clinic_id",
    threshold: float = COMPLETION_ATTENDANCE,
    tolerance: float = TOLERANCE,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Share of discharged episodes that completed the programme.

    An episode *completed* when its attendance (sessions / planned sessions) is >= ``threshold``
    (inclusive, within ``tolerance``). Only episodes with a ``discharge_date`` count: an episode
    still in care is not yet judged. Discharged episodes without an attendance figure are
    counted in ``n_attendance_missing`` and left out of the denominator.

    Parameters
    ----------
    patient_summary : DataFrame
        The ``patient_summary`` table (patient_id, attendance).
    patients : DataFrame
        The patients table (patient_id, discharge_date, and the ``by`` column), which decides
        who is discharged and which group they belong to.
    by : str or None
        Grouping column of ``patients``; None for one row over everyone.
    threshold : float
        Attendance needed to complete (default 0.75, ESCAPE-pain).
    tolerance : float
        Slack for attendance on the threshold.
    alpha : float
        1 - confidence level of the Wilson interval.

    Returns
    -------
    DataFrame
        ``<by> (or group), n_discharged, n_attendance_missing, n_completed, completion_rate,
        ci_low, ci_high``.

    Examples
    --------
    >>> patients = pd.DataFrame({"patient_id": ["P1", "P2", "P3"], "clinic_id": ["A"] * 3,
    ...     "discharge_date": pd.to_datetime(["2026-03-01", "2026-03-01", None])})
    >>> summary = pd.DataFrame({"patient_id": ["P1", "P2", "P3"],
    ...                         "attendance": [0.75, 0.5, 1.0]})
    >>> completion(summary, patients)[["n_discharged", "n_completed"]].iloc[0].tolist()
    [2, 1]
    """
    discharged = patients.loc[patients["discharge_date"].notna()]
    frame = discharged[["patient_id", *([by] if by else [])]].drop_duplicates("patient_id")
    frame = frame.merge(
        patient_summary[["patient_id", "attendance"]].drop_duplicates("patient_id"),
        on="patient_id",
        how="left",
    )
    frame["group"] = _group_labels(frame, by)
    frame["completed"] = frame["attendance"] >= threshold - tolerance
    grouped = frame.groupby("group")
    table = pd.DataFrame(
        {
            "n_discharged": grouped.size(),
            "n_attendance_missing": grouped.size() - grouped["attendance"].count(),
            "n_completed": grouped["completed"].sum().astype("int64"),
        }
    )
    judged = table["n_discharged"] - table["n_attendance_missing"]
    table["completion_rate"] = table["n_completed"] / judged.where(judged > 0)
    table["ci_low"], table["ci_high"] = wilson_ci(table["n_completed"], judged, alpha=alpha)
    return table.rename_axis(by or "group").reset_index()


def activity_target_summary(
    data: pd.DataFrame,
    *,
    by: str | None = "clinic_id",
    patients: pd.DataFrame | None = None,
    cardio_min: float = WHO_CARDIO_MIN,
    strength_sessions: float = WHO_STRENGTH_SESSIONS,
    tolerance: float = TOLERANCE,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """How often the weekly activity target was met, per group.

    Two inputs are accepted:

    - ``patient_summary`` (``activity_weeks_met_share``): per group, the distribution of the
      patients' share of activity weeks meeting the target (as :func:`adherence_distribution`),
      plus ``n_without_activity`` (patients with no activity week);
    - a weekly activity table, one row per patient week with ``target_met`` (bool) or with
      ``cardio_min`` and ``strength_sessions`` (the target is then met when cardio_min >=
      ``cardio_min`` and strength_sessions >= ``strength_sessions``, CONTRACT §4): per group,
      ``n_patients``, ``n_weeks``, ``n_weeks_met``, ``weeks_met_share`` with a Wilson interval
      (weeks of one patient treated as independent).

    Parameters
    ----------
    data : DataFrame
        ``patient_summary`` or a weekly activity table (patient_id and the columns above).
    by : str or None
        Grouping column (taken from ``patients`` when given, else from ``data``); None for one row.
    patients : DataFrame, optional
        The patients table, for the grouping column.
    cardio_min, strength_sessions : float
        The WHO weekly target (150 min, 2 sessions).
    tolerance : float
        Slack for values on the target.
    alpha : float
        1 - confidence level of the Wilson interval.

    Returns
    -------
    DataFrame
        One row per group, columns as described above.

    Examples
    --------
    >>> weeks = pd.DataFrame({"patient_id": ["P1", "P1", "P2"], "clinic_id": ["A"] * 3,
    ...     "cardio_min": [150.0, 200.0, 90.0], "strength_sessions": [2, 1, 3]})
    >>> activity_target_summary(weeks)[["n_weeks", "n_weeks_met"]].iloc[0].tolist()
    [3, 1]
    """
    if "activity_weeks_met_share" in data.columns:
        frame = _membership(data, patients, by, ["patient_id", "activity_weeks_met_share"])
        table = _describe(frame, "activity_weeks_met_share").rename(
            columns={"n": "n_patients", "n_missing": "n_without_activity"}
        )
        return table.rename_axis(by or "group").reset_index()

    if "target_met" in data.columns:
        weeks = data.assign(target_met=data["target_met"].astype("boolean"))
    elif {"cardio_min", "strength_sessions"} <= set(data.columns):
        weeks = data.assign(
            target_met=(data["cardio_min"] >= cardio_min - tolerance)
            & (data["strength_sessions"] >= strength_sessions - tolerance)
        )
    else:
        raise ValueError(
            "activity_target_summary needs patient_summary (activity_weeks_met_share) or a "
            "weekly table with target_met, or with cardio_min and strength_sessions"
        )
    frame = _membership(weeks, patients, by, ["patient_id", "target_met"])
    frame["target_met"] = frame["target_met"].astype("Float64").to_numpy("float64", na_value=np.nan)
    grouped = frame.groupby("group")
    table = pd.DataFrame(
        {
            "n_patients": grouped["patient_id"].nunique(),
            "n_weeks": grouped["target_met"].count().astype("int64"),
            "n_weeks_met": grouped["target_met"].sum().astype("int64"),
        }
    )
    table["weeks_met_share"] = table["n_weeks_met"] / table["n_weeks"].where(table["n_weeks"] > 0)
    table["ci_low"], table["ci_high"] = wilson_ci(
        table["n_weeks_met"], table["n_weeks"], alpha=alpha
    )
    return table.rename_axis(by or "group").reset_index()
