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


# ------------------------------------------------------------------------------------------------
# the definitions, worded once (both reports' appendices and the notebook read them from here)
# ------------------------------------------------------------------------------------------------
#: How each Kaplan-Meier interval type (R ``survfit`` ``conf.type``) is named in a report.
KM_CI_TEXT = {
    "log-log": "log-log transformed (R survfit conf.type 'log-log'; R's default is 'log')",
    "log": "log transformed (R survfit's default conf.type 'log')",
    "plain": "plain (untransformed, clipped to 0-100%)",
}
#: How each competing discharge reason reads in a sentence.
DISCHARGE_REASON_TEXT = {"referred_surgery": "a surgery referral", "dropped_out": "drop-out"}
#: How each ``responder_rule`` reads in a report.
RESPONDER_RULE_TEXT = {"or": "either MCID suffices", "and": "both MCIDs needed"}


def definitions(
    protocol: Protocol | None = None,
    measures: dict | None = None,
    *,
    k: int = SUPPRESSION_K,
    km_conf_type: str = "log-log",
):
    """Every definition a report uses, worded with the values of ``protocol``.

    Parameters
    ----------
    protocol : Protocol, optional
        The parameters behind the report (default ``Protocol()``).
    measures : dict of str to Measure, optional
        The study's outcome measures (one responder definition each; default the shipped ones).
    k : int
        The report's suppression threshold (1: internal, no suppression).
    km_conf_type : {"log-log", "log", "plain"}
        The Kaplan-Meier interval type used.

    Returns
    -------
    DataFrame
        ``Term, Definition``, one row per definition.

    Examples
    --------
    >>> table = definitions(Protocol(pain_threshold=2)).set_index("Term")["Definition"]
    >>> table["Pain limit"]
    "Pain during exercise and in the 24 h after at most 2/10 (the protocol's rule)."
    """
    import pandas as pd

    from hipdata.analysis.progression import COMPETING_DISCHARGE_REASONS
    from hipdata.analysis.response import DOSE_RESPONSE_STEP_PCT
    from hipdata.disclosure import SECONDARY_MARKER, primary_marker, suppression_note
    from hipdata.outcome_measures import MEASURES

    p = Protocol() if protocol is None else protocol
    measures = MEASURES if measures is None else measures
    limit = f"{p.pain_threshold:g}/10"
    base_lo, base_hi = p.baseline_window_days
    fu_lo, fu_hi = p.followup_window_days
    rows = [
        (
            "Week of care",
            "floor((date - start_date) / 7 days); week 0 is the first 7 days of care.",
        ),
        (
            "Session",
            "All exercise rows of one patient on one date; exercise rows may precede the start of "
            f"care by at most {PRE_START_DAYS} days.",
        ),
        (
            "Pain limit",
            f"Pain during exercise and in the 24 h after at most {limit} (the protocol's rule).",
        ),
        (
            "Flare",
            f"A session with pain during exercise or in the 24 h after above {limit}; unknown when "
            "pain was not recorded.",
        ),
        (
            "Progression criterion",
            f"At one ladder level: at least {p.criterion_sets} sets of at least "
            f"{p.criterion_reps:g} reps (target {p.criterion_reps:g}-{p.criterion_reps_max:g}) "
            f"or holds of at least {p.criterion_hold_s:g} s (target "
            f"{p.criterion_hold_s:g}-{p.criterion_hold_max_s:g} s), with pain during and in the "
            f"24 h after at most {limit}.",
        ),
        (
            "On criteria / early progression",
            "A move up a level or load whose previous session met / did not meet the criterion.",
        ),
        (
            "Held-back episode",
            f"A run at one level and load in which the first session meeting the criterion is "
            f"followed by {p.held_back_sessions} or more further sessions.",
        ),
        (
            "Volume load",
            "reps x load_kg per set (0 for body weight or band); total reps are shown beside it.",
        ),
        (
            "Attendance",
            "Sessions / (planned sessions per week x weeks in care); weeks in care = "
            "max(1, days / 7) from start to discharge (or last session while in care).",
        ),
        (
            "Completion",
            f"A discharged patient with attendance of at least "
            f"{100 * p.completion_attendance:g}% of planned sessions.",
        ),
        (
            "Pain-threshold adherence",
            f"Sessions with both pains (during and 24 h after) within {limit} / sessions with "
            "both pains recorded.",
        ),
        (
            "Dose adherence",
            "Mean over exercises in sessions of performed / prescribed reps (or time under "
            "tension); not capped.",
        ),
        (
            "Activity target",
            f"A week with at least {p.who_cardio_min:g} min of cardio and "
            f"{p.who_strength_sessions:g} strength sessions (WHO); share of weeks with activity "
            "recorded.",
        ),
        (
            "Baseline score",
            f"The score closest to the start of care within {base_lo:+d} to {base_hi:+d} days "
            "(ties: the earlier).",
        ),
        (
            "Follow-up score",
            f"The latest score within {fu_lo:+d} to {fu_hi:+d} days of discharge, after the "
            "baseline; none while in care.",
        ),
    ]
    for measure in measures.values():
        direction = "higher" if measure.higher_is_better else "lower"
        rule = f"improvement of at least {measure.mcid_points:g} points"
        if measure.mcid_pct is not None:
            rule += f" {p.responder_rule} {measure.mcid_pct:g}% of baseline"
        rows.append(
            (
                f"Responder: {measure.label or measure.name}",
                f"{rule} (range {measure.low:g} to {measure.high:g}, {direction} is better; "
                f"MCID source: {measure.source or 'not given'}).",
            )
        )
    competing = " or ".join(DISCHARGE_REASON_TEXT.get(r, r) for r in COMPETING_DISCHARGE_REASONS)
    rows += [
        (
            "Outcome mixed model",
            "score ~ weeks since start, random intercept per patient (REML), on every score: no "
            "patient is dropped for a missing follow-up and nothing is carried forward.",
        ),
        (
            "Pain mixed model",
            "pain_24h ~ week with a random intercept and slope per patient (REML, at lme4's "
            "optimum); refitted with a random intercept only when that optimum is singular.",
        ),
        (
            "Responder sensitivity",
            "Among discharged patients with a baseline: complete case (responders / patients "
            "with a follow-up); bounds counting every missing follow-up as a non-responder "
            "(lower) or a responder (upper).",
        ),
        (
            "Dose-response slope",
            f"OLS of a session's pain_24h on its largest family volume change per "
            f"{DOSE_RESPONSE_STEP_PCT:g}%, standard errors clustered by patient (pooled); split "
            "into within- and between-patient slopes by a mixed model with the patient-centred "
            "dose and the patient's mean dose, random intercept per patient (REML).",
        ),
        (
            "Time to next level",
            "Kaplan-Meier, from the first session at a level to the first session at a higher "
            "level; censored at discharge (or last session while in care); pointwise CIs "
            f"{KM_CI_TEXT[km_conf_type]}.",
        ),
        (
            "Cumulative incidence of progression",
            f"Aalen-Johansen: discharge for {competing} before moving up is a competing event; "
            "other discharges and patients in care are censored.",
        ),
        (
            "SMD",
            "Standardised mean difference: |difference in means| / pooled SD; for categories, "
            "Yang & Dalton's multivariate form. The largest over pairs of clinics is shown.",
        ),
        ("Confidence intervals", "95%: Wilson for shares, t for means, Wald for model effects."),
        (
            "Small-cell suppression",
            suppression_note(k)
            if k <= 1
            else f"Counts from 1 to {k - 1} are shown as {primary_marker(k)}; cells that "
            f"would let a reader work them out are shown as {SECONDARY_MARKER}; shares and means "
            f"over fewer than {k} patients are not shown; figures leave such groups out.",
        ),
    ]
    return pd.DataFrame(rows, columns=["Term", "Definition"])
