"""All the contract's tables in one pass, sharing intermediate results."""

from __future__ import annotations

import inspect

import pandas as pd

from hipdata.dataset import Dataset
from hipdata.metrics.family import _family_sessions_from_sets, _weekly_load_from
from hipdata.metrics.outcomes import outcome_change
from hipdata.metrics.progression import _held_back_from, _progressions_from
from hipdata.metrics.sessions import _sessions_from_sets
from hipdata.metrics.sets import _sets_table
from hipdata.metrics.summary import _patient_summary_from
from hipdata.outcome_measures import Measure
from hipdata.protocol import (
    BASELINE_WINDOW_DAYS,
    CRITERION_HOLD_S,
    CRITERION_REPS,
    CRITERION_SETS,
    FOLLOWUP_WINDOW_DAYS,
    HELD_BACK_SESSIONS,
    PAIN_THRESHOLD,
    WHO_CARDIO_MIN,
    WHO_STRENGTH_SESSIONS,
)

#: The keys of :func:`compute_all`, in the order they are computed and written.
TABLE_NAMES = (
    "sets",
    "sessions",
    "family_sessions",
    "weekly_load",
    "progressions",
    "patient_summary",
    "outcome_change",
)


def compute_all(
    ds: Dataset,
    *,
    pain_threshold: float = PAIN_THRESHOLD,
    criterion_sets: int = CRITERION_SETS,
    criterion_reps: float = CRITERION_REPS,
    criterion_hold_s: float = CRITERION_HOLD_S,
    held_back_sessions: int = HELD_BACK_SESSIONS,
    who_cardio_min: float = WHO_CARDIO_MIN,
    who_strength_sessions: float = WHO_STRENGTH_SESSIONS,
    measures: dict[str, Measure] | None = None,
    baseline_window_days: tuple[int, int] = BASELINE_WINDOW_DAYS,
    followup_window_days: tuple[int, int] = FOLLOWUP_WINDOW_DAYS,
    responder_rule: str = "or",
) -> dict[str, pd.DataFrame]:
    """Compute every table of CONTRACT §5 (plus ``family_sessions``) from one dataset.

    Each table equals what its own function returns with the same parameters
    (:func:`sets_table`, :func:`sessions_table`, :func:`family_sessions`, :func:`weekly_load`,
    :func:`progressions`, :func:`patient_summary`, :func:`outcome_change`); computing them together
    only avoids repeating the shared steps.

    Parameters
    ----------
    ds : Dataset
        The loaded cohort.
    pain_threshold, criterion_sets, criterion_reps, criterion_hold_s, held_back_sessions,
    who_cardio_min, who_strength_sessions, measures, baseline_window_days, followup_window_days,
    responder_rule
        As in the individual functions; defaults from :mod:`hipdata.protocol`.

    Returns
    -------
    dict of str to DataFrame
        Keys ``sets, sessions, family_sessions, weekly_load, progressions, patient_summary,
        outcome_change``.
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
    progression_events = _progressions_from(family_table)
    summary = _patient_summary_from(
        ds,
        sets,
        sessions,
        family_table,
        progression_events,
        _held_back_from(family_table, held_back_sessions=held_back_sessions),
        who_cardio_min=who_cardio_min,
        who_strength_sessions=who_strength_sessions,
    )
    return {
        "sets": sets,
        "sessions": sessions,
        "family_sessions": family_table,
        "weekly_load": _weekly_load_from(sets),
        "progressions": progression_events,
        "patient_summary": summary,
        "outcome_change": outcome_change(
            ds,
            measures=measures,
            baseline_window_days=baseline_window_days,
            followup_window_days=followup_window_days,
            responder_rule=responder_rule,
        ),
    }


#: The keyword parameters of :func:`compute_all` (the thresholds and windows behind every table);
#: reports use it to pass their parameters on and to reject misspelt ones.
METRIC_PARAMETERS = tuple(
    name for name in inspect.signature(compute_all).parameters if name != "ds"
)
