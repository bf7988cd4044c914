"""All the contract's tables in one pass, sharing intermediate results."""

from __future__ import annotations

import pandas as pd

from hipdata.dataset import Dataset
from hipdata.metrics._common import FAMILY_SESSION_KEYS, nested_groups, text_as_str
from hipdata.metrics.family import _family_sessions_from_sets, _weekly_load_from
from hipdata.metrics.outcomes import outcome_change
from hipdata.metrics.progression import _held_back_from, _progressions_from, _runs
from hipdata.metrics.sessions import _sessions_from_sets
from hipdata.metrics.sets import _sets_table
from hipdata.metrics.summary import _patient_summary_from
from hipdata.outcome_measures import Measure
from hipdata.protocol import Protocol

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
    protocol: Protocol | None = None,
    *,
    measures: dict[str, Measure] | None = None,
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
    protocol : Protocol, optional
        The thresholds and windows behind every table (:class:`hipdata.protocol.Protocol`);
        default ``Protocol()``, the published protocol.
    measures : dict of str to Measure, optional
        The study's outcome measures (default: those the dataset was loaded with, else the
        shipped ones); see :func:`outcome_change`.

    Returns
    -------
    dict of str to DataFrame
        Keys ``sets, sessions, family_sessions, weekly_load, progressions, patient_summary,
        outcome_change``.
    """
    p = Protocol() if protocol is None else protocol
    if not isinstance(p, Protocol):
        raise TypeError(f"protocol must be a hipdata.Protocol, got {type(p).__name__}")
    # Inside, the text keys (patient, exercise, family, ...) are categoricals with sorted
    # categories, so every group-by, sort and merge below works on integer codes; each table is
    # turned back into the documented text dtypes (``str``) once, at the end.
    sets = _sets_table(ds.sets, ds.patients)
    # the sets table is sorted by patient, date, family, ...: its sessions and family sessions
    # are runs of rows, numbered once here for every table below
    session_groups, family_groups = nested_groups(sets, FAMILY_SESSION_KEYS, [2, 3])
    sessions = _sessions_from_sets(
        sets, ds.patients, pain_threshold=p.pain_threshold, groups=session_groups
    )
    family_table = _family_sessions_from_sets(
        sets,
        ds.patients,
        groups=family_groups,
        session_groups=session_groups,
        pain_threshold=p.pain_threshold,
        criterion_sets=p.criterion_sets,
        criterion_reps=p.criterion_reps,
        criterion_hold_s=p.criterion_hold_s,
        sessions=sessions,
    )
    runs = _runs(family_table)
    progression_events = _progressions_from(family_table, runs=runs)
    summary = _patient_summary_from(
        ds,
        sets,
        sessions,
        family_table,
        progression_events,
        _held_back_from(family_table, held_back_sessions=p.held_back_sessions, runs=runs),
        who_cardio_min=p.who_cardio_min,
        who_strength_sessions=p.who_strength_sessions,
        session_groups=session_groups,
    )
    del runs
    tables = {
        "sets": sets,
        "sessions": sessions,
        "family_sessions": family_table,
        "weekly_load": _weekly_load_from(sets, family_groups),
        "progressions": progression_events,
        "patient_summary": summary,
        "outcome_change": outcome_change(
            ds,
            measures=measures,
            baseline_window_days=p.baseline_window_days,
            followup_window_days=p.followup_window_days,
            responder_rule=p.responder_rule,
        ),
    }
    return {name: text_as_str(table) for name, table in tables.items()}
