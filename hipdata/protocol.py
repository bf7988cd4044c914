"""The protocol's numbers, named once.

Every threshold and window that a metric, a report or a test uses is defined here with the
protocol's default (``PROTOCOL.md``, ``CONTRACT.md`` §4). Functions take them as keyword
parameters defaulting to these values; nothing else in the package writes the numbers as
literals.
"""

from __future__ import annotations

#: The "3/10 rule": pain during exercise and in the 24 h after may not exceed this (0-10 scale).
PAIN_THRESHOLD = 3.0
#: Progression target for a reps exercise: this many sets ...
CRITERION_SETS = 3
#: ... each with at least this many reps (the protocol's 8-10; no upper bound is applied).
CRITERION_REPS = 8
#: Upper end of the protocol's rep range, shown in reports only.
CRITERION_REPS_MAX = 10
#: Progression target for a hold exercise: sets of at least this many seconds.
CRITERION_HOLD_S = 20.0
#: Upper end of the protocol's hold range, shown in reports only.
CRITERION_HOLD_MAX_S = 30.0
#: A run whose first criterion-met session is followed by this many further sessions is "held back".
HELD_BACK_SESSIONS = 3
#: Completion: attendance at or above this share of planned sessions (ESCAPE-pain definition).
COMPLETION_ATTENDANCE = 0.75
#: Planned sessions per week when a patient row gives none.
DEFAULT_PLANNED_SESSIONS_PER_WEEK = 2.0
#: WHO physical-activity target per week.
WHO_CARDIO_MIN = 150.0
WHO_STRENGTH_SESSIONS = 2
#: Exercise rows may precede start_date by at most this many days.
PRE_START_DAYS = 7
#: Outcome windows (days relative to start / discharge).
BASELINE_WINDOW_DAYS = (-30, 7)
FOLLOWUP_WINDOW_DAYS = (-14, 30)
#: Small-cell suppression: counts 1..k-1 are shown as "<k".
SUPPRESSION_K = 5
#: Tolerance for threshold comparisons on decimal scores.
TOLERANCE = 1e-9
#: Pounds to kilograms (exact, by definition of the avoirdupois pound).
LB_TO_KG = 0.45359237

#: The exercise families of CONTRACT §3, in report order.
FAMILIES = (
    "adductors",
    "abductors",
    "extensors",
    "flexors",
    "trunk",
    "trunk_variations",
    "squat",
    "hop",
)
