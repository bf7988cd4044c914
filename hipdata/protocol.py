"""The protocol's numbers, named once.

Every threshold and window that a metric, a report or a test uses is defined here with the
protocol's default (``PROTOCOL.md``, ``CONTRACT.md`` §4). Functions take them as keyword
parameters defaulting to these values; nothing else in the package writes the numbers as
literals. :class:`Protocol` bundles them into the one object that reports and the CLI pass on.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass

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


#: How the outcome responder rule combines the two MCIDs (CONTRACT §4).
RESPONDER_RULES = ("or", "and")


@dataclass(frozen=True)
class Protocol:
    """The protocol's parameters as one value: from the CLI or a notebook to every table.

    Each field defaults to the module constant of the same meaning, so ``Protocol()`` is the
    published protocol (``PROTOCOL.md``). A study that deviates states it once, e.g.
    ``Protocol(pain_threshold=2)``, and passes the object on: :func:`hipdata.metrics.compute_all`,
    both reports' contexts and their definitions read it, so no figure and no sentence can use
    another value. The object is immutable; :meth:`replace` returns a changed copy.

    Parameters
    ----------
    pain_threshold : float
        Pain during exercise and in the 24 h after may not exceed this (0-10 scale).
    criterion_sets, criterion_reps, criterion_hold_s : int, float, float
        The progression criterion: ``criterion_sets`` sets of at least ``criterion_reps`` reps
        (reps exercises) or of holds of at least ``criterion_hold_s`` seconds.
    criterion_reps_max, criterion_hold_max_s : int, float
        Upper ends of the protocol's ranges (8-10 reps, 20-30 s), cited in reports only.
    held_back_sessions : int
        Sessions after the first criterion-met session before a run counts as held back.
    completion_attendance : float
        Attendance share (of planned sessions) that counts as completing the programme.
    who_cardio_min, who_strength_sessions : float
        The WHO weekly activity target.
    baseline_window_days, followup_window_days : (int, int)
        Outcome windows, days relative to start and to discharge.
    responder_rule : {"or", "and"}
        ``"or"``: either MCID (points or percentage of baseline) makes a responder; ``"and"``:
        both are needed.

    Examples
    --------
    >>> Protocol().pain_threshold
    3.0
    >>> Protocol(pain_threshold=2).replace(responder_rule="and").responder_rule
    'and'
    >>> Protocol(pain_threshold=12)
    Traceback (most recent call last):
    ...
    ValueError: Protocol: pain_threshold must lie in 0..10 (a 0-10 pain score), got 12
    """

    pain_threshold: float = PAIN_THRESHOLD
    criterion_sets: int = CRITERION_SETS
    criterion_reps: float = CRITERION_REPS
    criterion_reps_max: float = CRITERION_REPS_MAX
    criterion_hold_s: float = CRITERION_HOLD_S
    criterion_hold_max_s: float = CRITERION_HOLD_MAX_S
    held_back_sessions: int = HELD_BACK_SESSIONS
    completion_attendance: float = COMPLETION_ATTENDANCE
    who_cardio_min: float = WHO_CARDIO_MIN
    who_strength_sessions: float = WHO_STRENGTH_SESSIONS
    baseline_window_days: tuple[int, int] = BASELINE_WINDOW_DAYS
    followup_window_days: tuple[int, int] = FOLLOWUP_WINDOW_DAYS
    responder_rule: str = "or"

    def __post_init__(self) -> None:
        def bad(name: str, rule: str) -> ValueError:
            return ValueError(f"Protocol: {name} must {rule}, got {getattr(self, name)!r}")

        for name in self.names():
            value = getattr(self, name)
            if name == "responder_rule" or name.endswith("_window_days"):
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise bad(name, "be a number")
        if not 0 <= self.pain_threshold <= 10:
            raise bad("pain_threshold", "lie in 0..10 (a 0-10 pain score)")
        for name in ("criterion_sets", "held_back_sessions"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise bad(name, "be a whole number of at least 1")
        for name in ("criterion_reps", "criterion_hold_s", "who_cardio_min"):
            if not getattr(self, name) > 0:
                raise bad(name, "be positive")
        if self.criterion_reps_max < self.criterion_reps:
            raise bad("criterion_reps_max", "be at least criterion_reps")
        if self.criterion_hold_max_s < self.criterion_hold_s:
            raise bad("criterion_hold_max_s", "be at least criterion_hold_s")
        if not 0 < self.completion_attendance <= 1:
            raise bad("completion_attendance", "be a share in (0, 1]")
        if not self.who_strength_sessions >= 0:
            raise bad("who_strength_sessions", "be zero or more")
        for name in ("baseline_window_days", "followup_window_days"):
            window = tuple(getattr(self, name))
            if len(window) != 2 or window[0] > window[1]:
                raise bad(name, "be a (first, last) pair of days with first <= last")
            object.__setattr__(self, name, (int(window[0]), int(window[1])))
        if self.responder_rule not in RESPONDER_RULES:
            raise bad("responder_rule", f"be one of {RESPONDER_RULES}")

    def replace(self, **changes) -> Protocol:
        """A copy with ``changes`` applied (validated like a new object)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The field names, in order (what a report's or the CLI's options may set)."""
        return tuple(field.name for field in dataclasses.fields(cls))

    def as_dict(self) -> dict:
        """The fields as a plain dict (for a manifest or a notebook's parameters)."""
        return dataclasses.asdict(self)

    def overrides(self) -> dict:
        """The fields that differ from the published protocol, JSON-ready (windows as lists).

        This is the ``protocol`` parameter the command line gives a report notebook, which turns
        it back into the same object with ``Protocol(**protocol)``.

        >>> Protocol(pain_threshold=2, baseline_window_days=(-14, 7)).overrides()
        {'pain_threshold': 2, 'baseline_window_days': [-14, 7]}
        >>> Protocol(**Protocol(responder_rule="and").overrides()) == Protocol(responder_rule="and")
        True
        """
        published = Protocol()
        return {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in self.as_dict().items()
            if value != getattr(published, name)
        }

    @classmethod
    def from_file(cls, path) -> Protocol:
        """Read a study's protocol from a TOML file of field overrides.

        The file sets any of :meth:`names` at its top level (or inside a ``[protocol]`` table);
        fields it leaves out keep the published protocol's values. Windows are two-element
        arrays. An unknown name, a wrong type or a value the protocol forbids raises
        :class:`~hipdata.errors.DataError` naming the file, the field and the fix::

            # study.toml: a stricter pain rule and both MCIDs for a responder
            pain_threshold = 2
            responder_rule = "and"
            followup_window_days = [-14, 45]

        Parameters
        ----------
        path : str or Path
            The TOML file.

        Returns
        -------
        Protocol
        """
        import tomllib
        from pathlib import Path

        from hipdata.errors import DataError

        path = Path(path)
        try:
            with path.open("rb") as handle:
                values = tomllib.load(handle)
        except tomllib.TOMLDecodeError as exc:
            raise DataError(
                f"not a TOML file ({exc})", file=str(path), fix="write one `name = value` a line"
            ) from None
        if set(values) == {"protocol"} and isinstance(values["protocol"], dict):
            values = values["protocol"]
        unknown = sorted(set(values) - set(cls.names()))
        if unknown:
            raise DataError(
                f"unknown protocol field(s) {', '.join(unknown)}",
                file=str(path),
                fix=f"use only {', '.join(cls.names())}",
            )
        try:
            return cls(**{name: cls._plain(value) for name, value in values.items()})
        except (TypeError, ValueError) as exc:
            raise DataError(
                str(exc), file=str(path), fix="correct the value (see docs/protocol.md)"
            ) from None

    @staticmethod
    def _plain(value):
        """A TOML value as the dataclass expects it (arrays as tuples)."""
        return tuple(value) if isinstance(value, list) else value
