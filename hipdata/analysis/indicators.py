"""The audit indicators' registry: what each figure counts and how a report defines it.

Every indicator of the quarterly audit (CONTRACT §5 ``audit_indicators``, §6) is listed in
:data:`INDICATORS` with its label, kind (count, proportion, mean), cohort (session or episode),
the additive quantities it is built from and a plain-language definition;
:func:`indicator_definitions` fills in a :class:`~hipdata.protocol.Protocol`'s values for a
report's appendix. The table itself is :func:`hipdata.analysis.audit.audit_indicators`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from hipdata.outcome_measures import MEASURES
from hipdata.protocol import Protocol

__all__ = [
    "INDICATORS",
    "SUM_COUNTS",
    "Indicator",
    "all_quantities",
    "definition_parameters",
    "indicator_definitions",
]


@dataclass(frozen=True)
class Indicator:
    """One audit indicator: how it is computed and how a report describes it.

    ``numerator``, ``denominator`` and ``complement`` name the additive quantities the figure is
    built from (``complement`` = denominator - numerator, for proportions). For a mean the
    numerator is the sum and the denominator the number of episodes.
    """

    name: str
    label: str
    kind: str  # count / proportion / mean
    cohort: str  # session / episode
    numerator: str
    denominator: str | None
    complement: str | None
    template: str

    def definition_text(self, protocol: Protocol | None = None, measures=None) -> str:
        """The definition with ``protocol``'s values filled in (default: the published one)."""
        return self.template.format(**definition_parameters(protocol, measures))

    @property
    def definition(self) -> str:
        """The definition with the protocol's default parameter values."""
        return self.definition_text()


_EPISODES = "episodes discharged in the quarter"
_INDICATOR_LIST = (
    Indicator("sessions", "Sessions", "count", "session", "sessions", None, None,
              "Exercise sessions (one patient on one date) dated in the quarter."),
    Indicator("active_patients", "Active patients", "count", "session", "active_patients",
              None, None, "Patients with at least one exercise session dated in the quarter."),
    Indicator("pain_threshold_adherence", "Pain-threshold adherence", "proportion", "session",
              "sessions_no_flare", "sessions_flare_known", "sessions_flare",
              "Share of the quarter's sessions with both pains recorded (during exercise and in "
              "the 24 h after) in which both stayed at or below {pain_threshold:g}/10."),
    Indicator("flare_rate", "Flare rate", "proportion", "session",
              "sessions_flare", "sessions_flare_known", "sessions_no_flare",
              "Share of the quarter's sessions with both pains recorded in which a pain (during "
              "exercise or in the 24 h after) exceeded {pain_threshold:g}/10."),
    Indicator("pain_24h_recorded", "Pain 24 h after recorded", "proportion", "session",
              "sessions_pain_24h_recorded", "sessions", "sessions_pain_24h_missing",
              "Share of the quarter's sessions with the pain in the 24 h after recorded."),
    Indicator("progression_events", "Progressions", "count", "session", "progression_events",
              None, None,
              "Progressions dated in the quarter: moves up a level or up in load at the same "
              "level, per exercise family."),
    Indicator("on_criteria_share", "Progressions on criteria", "proportion", "session",
              "progressions_on_criteria", "progression_events", "progressions_off_criteria",
              "Share of the quarter's progressions made after a session that met the target "
              "({criterion_sets} sets of >= {criterion_reps} reps or >= {criterion_hold_s:g} s "
              "holds, pain <= {pain_threshold:g}/10 during and 24 h after); sessions with pain "
              "not recorded count in the denominator."),
    Indicator("early_progression_share", "Early progressions", "proportion", "session",
              "progressions_early", "progression_events", "progressions_not_early",
              "Share of the quarter's progressions made after a session that did not meet the "
              "target ({criterion_sets} sets of >= {criterion_reps} reps or >= "
              "{criterion_hold_s:g} s holds, pain <= {pain_threshold:g}/10)."),
    Indicator("episodes_discharged", "Patients discharged", "count", "episode",
              "episodes_discharged", None, None, "Episodes of care discharged in the quarter."),
    Indicator("attendance", "Attendance", "mean", "episode", "attendance_sum",
              "episodes_attendance_known", None,
              "Mean over " + _EPISODES + " of sessions attended / planned sessions (planned "
              "sessions per week x weeks in care)."),
    Indicator("completion", "Completion", "proportion", "episode", "episodes_completed",
              "episodes_attendance_known", "episodes_not_completed",
              "Share of " + _EPISODES + " whose attendance was at least "
              "{completion_attendance:.0%} of planned sessions."),
    Indicator("dose_adherence", "Dose adherence", "mean", "episode", "dose_adherence_sum",
              "episodes_dose_known", None,
              "Mean over " + _EPISODES + " with a prescription of the patient's mean performed / "
              "prescribed dose per exercise per session (not capped)."),
    Indicator("held_back_share", "Held back", "proportion", "episode", "episodes_held_back",
              "episodes_discharged", "episodes_not_held_back",
              "Share of " + _EPISODES + " with at least one run in which the target was met and "
              "{held_back_sessions} or more further sessions followed at the same level and load."),
    Indicator("activity_target_met", "Activity target met", "mean", "episode",
              "activity_share_sum", "episodes_activity_known", None,
              "Mean over " + _EPISODES + " with activity recorded of the share of recorded weeks "
              "meeting the WHO target (>= {who_cardio_min:g} min cardio and >= "
              "{who_strength_sessions:g} strength sessions)."),
    Indicator("followup_questionnaire", "Follow-up questionnaire", "proportion", "episode",
              "episodes_followup", "episodes_discharged", "episodes_no_followup",
              "Share of " + _EPISODES + " with a follow-up score on any outcome measure (from "
              "{followup_from} to {followup_to} days around discharge)."),
    Indicator("nprs_responder", "NPRS responders", "proportion", "episode", "nprs_responders",
              "nprs_pairs", "nprs_non_responders",
              "Share of " + _EPISODES + " with NPRS at baseline and follow-up whose pain fell by "
              ">= {nprs_mcid_points:g} points {responder_rule} >= {nprs_mcid_pct:g} %."),
    Indicator("nprs_improvement", "NPRS improvement", "mean", "episode",
              "nprs_improvement_sum", "nprs_pairs", None,
              "Mean fall in NPRS pain (0-10; positive = better) from baseline to follow-up over "
              + _EPISODES + " with both scores."),
    Indicator("referral_injection_surgery", "Referred for injection or surgery", "proportion",
              "episode", "episodes_referred", "episodes_discharged", "episodes_not_referred",
              "Share of " + _EPISODES + " discharged as referred_injection or referred_surgery, "
              "or with an injection or surgical_referral treatment recorded."),
    Indicator("manual_therapy", "Manual therapy delivered", "proportion", "episode",
              "episodes_manual_therapy", "episodes_discharged", "episodes_no_manual_therapy",
              "Share of " + _EPISODES + " with at least one soft_tissue or joint_mobilisation "
              "treatment recorded."),
    Indicator("education", "Education delivered", "proportion", "episode",
              "episodes_education", "episodes_discharged", "episodes_no_education",
              "Share of " + _EPISODES + " with at least one education_* treatment recorded "
              "(activity, imaging, injection and surgery)."),
)  # fmt: skip

#: Every audit indicator by name, in report order.
INDICATORS: dict[str, Indicator] = {i.name: i for i in _INDICATOR_LIST}

#: Sum quantities (of means) and the count each is suppressed with.
SUM_COUNTS = {
    "attendance_sum": "episodes_attendance_known",
    "dose_adherence_sum": "episodes_dose_known",
    "activity_share_sum": "episodes_activity_known",
    "nprs_improvement_sum": "nprs_pairs",
}


def definition_parameters(protocol: Protocol | None = None, measures=None) -> dict:
    """The parameter values the definitions cite, from ``protocol`` (default: the published one).

    ``measures`` (an outcome-measure registry, default the shipped one) gives the NPRS MCID.
    """
    protocol = Protocol() if protocol is None else protocol
    nprs = (measures or MEASURES)["nprs"]
    followup = protocol.followup_window_days
    return {
        "pain_threshold": protocol.pain_threshold,
        "criterion_sets": protocol.criterion_sets,
        "criterion_reps": protocol.criterion_reps,
        "criterion_hold_s": protocol.criterion_hold_s,
        "held_back_sessions": protocol.held_back_sessions,
        "who_cardio_min": protocol.who_cardio_min,
        "who_strength_sessions": protocol.who_strength_sessions,
        "completion_attendance": protocol.completion_attendance,
        "nprs_mcid_points": nprs.mcid_points,
        "nprs_mcid_pct": nprs.mcid_pct,
        "responder_rule": protocol.responder_rule,
        "followup_from": f"{followup[0]:+d}",
        "followup_to": f"{followup[1]:+d}",
    }


def indicator_definitions(protocol: Protocol | None = None, *, measures=None) -> pd.DataFrame:
    """The definitions appendix: one row per indicator with the protocol's values cited.

    Parameters
    ----------
    protocol : Protocol, optional
        The protocol the metric tables were computed with (default: the published one).
    measures : dict, optional
        The outcome-measure registry (default: the shipped one).

    Returns
    -------
    DataFrame
        Columns ``indicator, label, kind, cohort, definition``.

    Examples
    --------
    >>> from hipdata.protocol import Protocol
    >>> table = indicator_definitions(Protocol(pain_threshold=2)).set_index("indicator")
    >>> "2/10" in table.loc["flare_rate", "definition"]
    True
    """
    values = definition_parameters(protocol, measures)
    return pd.DataFrame(
        [
            {
                "indicator": i.name,
                "label": i.label,
                "kind": i.kind,
                "cohort": i.cohort,
                "definition": i.template.format(**values),
            }
            for i in INDICATORS.values()
        ]
    )


def all_quantities() -> list[str]:
    """Every additive quantity the indicators are built from, in registry order."""
    names: list[str] = []
    for indicator in INDICATORS.values():
        for quantity in (indicator.numerator, indicator.denominator, indicator.complement):
            if quantity is not None and quantity not in names:
                names.append(quantity)
    return names
