"""Helpers shared by the metric modules: threshold comparisons, the week formula, patient joins."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hipdata.protocol import TOLERANCE

SESSION_KEYS = ["patient_id", "date"]
FAMILY_SESSION_KEYS = ["patient_id", "date", "family"]


def at_least(values: pd.Series, threshold: float) -> pd.Series:
    """``values >= threshold`` allowing :data:`TOLERANCE` for decimal scores (NaN -> False)."""
    return values >= threshold - TOLERANCE


def at_most(values: pd.Series, threshold: float) -> pd.Series:
    """``values <= threshold`` allowing :data:`TOLERANCE` for decimal scores (NaN -> False)."""
    return values <= threshold + TOLERANCE


def days_between(later: pd.Series, earlier: pd.Series) -> pd.Series:
    """Whole days from ``earlier`` to ``later`` (float64, NaN where either date is missing)."""
    return (later - earlier).dt.days.astype("float64")


def week_of(dates: pd.Series, start_dates: pd.Series) -> pd.Series:
    """CONTRACT §4 week: ``floor((date - start_date).days / 7)``; the 7 days before start are -1."""
    return np.floor(days_between(dates, start_dates) / 7).astype("int64")


def attach_patients(
    frame: pd.DataFrame, patients: pd.DataFrame, columns: list[str]
) -> pd.DataFrame:
    """Add patient columns (e.g. ``start_date``, ``clinic_id``) to rows keyed by ``patient_id``.

    Raises
    ------
    ValueError
        When a row names a patient missing from ``patients`` (the loader quarantines such rows,
        so this only happens with hand-made frames).
    """
    known = frame["patient_id"].isin(patients["patient_id"])
    if not known.all():
        unknown = sorted(frame.loc[~known, "patient_id"].astype(str).unique())
        raise ValueError(f"rows refer to patients missing from the patients table: {unknown}")
    added = [c for c in columns if c not in frame.columns]
    ids = pd.Index(patients["patient_id"])
    if ids.is_unique:
        # a left many-to-one join as one hash lookup per row and a take per added column: no
        # merge (which factorizes both key columns and copies every column of ``frame``)
        position = ids.get_indexer(frame["patient_id"])
        extra = text_as_str(patients[added]).reset_index(drop=True)
        out = frame.reset_index(drop=True)
        taken = {c: extra[c].take(position).reset_index(drop=True) for c in added}
        return out.assign(**taken) if taken else out
    return frame.merge(
        text_as_str(patients[["patient_id", *added]]),
        on="patient_id",
        how="left",
        validate="many_to_one",
    )


def text_as_str(frame: pd.DataFrame) -> pd.DataFrame:
    """Give ``object`` text columns (e.g. an all-empty ``clinician_id``) pandas' ``str`` dtype,
    so every output table types them alike and Parquet round-trips them."""
    text = [c for c in frame.columns if frame[c].dtype == object]
    return frame.astype(dict.fromkeys(text, "str")) if text else frame


def safe_ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """``numerator / denominator`` as float64, NaN where the denominator is 0 or missing."""
    numerator = numerator.astype("float64")
    denominator = denominator.astype("float64")
    return (numerator / denominator.where(denominator != 0)).astype("float64")
