"""Quarterly audit indicators per network, clinic and clinician (CONTRACT §5 ``audit_indicators``, §6).

Cohorts
-------
- **Session indicators** count what is dated in the quarter: sessions by their date, progression
  events (``up`` and ``load_up``) by the date of the later session.
- **Episode indicators** count the episodes of care *discharged* in the quarter, so each episode
  is judged once, when it is complete. ``active_patients`` (patients with a session in the
  quarter) is a session indicator.
- A patient belongs to their ``clinic_id`` and ``clinician_id`` (``ds.patients``); the network is
  all clinics together. A patient without a clinician counts for the clinic and the network only.

Every indicator is listed in :data:`INDICATORS` with its label, kind and a plain-language
definition; :func:`indicator_definitions` fills in the parameter values for a report's appendix.

Suppression
-----------
Each figure is built from additive counts (*quantities*: ``sessions``, ``sessions_flare``,
``episodes_completed``, ...). A count from 1 to ``k - 1`` is suppressed; for a proportion the
complement (denominator - numerator) is a count the published pair reveals, so it is suppressed
by the same rule. Secondary suppression (:func:`hipdata.disclosure.protect_cells`) then
protects every additive line: clinicians within their clinic, clinics within the network, and
``denominator = numerator + complement`` within a unit. A mean's sum is suppressed with its count.
A row is suppressed when its numerator or its denominator is; it then has numerator,
denominator and value empty and ``suppressed`` True.

What a reader may learn from the display is part of the protection: for count indicators a
suppressed cell may be shown as ``"<k"`` (a count 1..k-1) or ``"*"`` (neutral: any count), and
the secondary suppression allows for that. The whole quarter is then attacked as one integer
program (every line at once and the orderings of :data:`ORDERED_QUANTITIES`), and cells are
added until no small count is pinned (see ``protect_cells(k=...)``); a ``"<k"`` that the
markers alone would pin is shown ``"*"`` instead (``relaxed``). For proportions and means it assumes
only that a suppressed figure is hidden: show those with one neutral marker
(:func:`format_audit` does).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hipdata.dataset import Dataset
from hipdata.disclosure import SECONDARY_MARKER, protect_cells, small_count_mask
from hipdata.outcome_measures import MEASURES
from hipdata.protocol import (
    COMPLETION_ATTENDANCE,
    CRITERION_HOLD_S,
    CRITERION_REPS,
    CRITERION_SETS,
    FOLLOWUP_WINDOW_DAYS,
    HELD_BACK_SESSIONS,
    PAIN_THRESHOLD,
    SUPPRESSION_K,
    TOLERANCE,
    WHO_CARDIO_MIN,
    WHO_STRENGTH_SESSIONS,
    Protocol,
)

AUDIT_COLUMNS = [
    "level",
    "unit",
    "quarter",
    "indicator",
    "numerator",
    "denominator",
    "value",
    "suppressed",
]
LEVELS = ("network", "clinic", "clinician")
NETWORK_UNIT = "all"
#: ``discharge_reason`` values and ``treatments`` codes that count as a referral.
REFERRAL_REASONS = ("referred_injection", "referred_surgery")
REFERRAL_TREATMENTS = ("injection", "surgical_referral")
MANUAL_THERAPY_TREATMENTS = ("soft_tissue", "joint_mobilisation")
EDUCATION_PREFIX = "education_"
PROGRESSION_KINDS = ("up", "load_up")


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

    def definition_text(self, **params) -> str:
        """The definition with parameter values filled in (defaults from the protocol)."""
        return self.template.format(**{**definition_parameters(), **params})

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
              ">= {nprs_mcid_points:g} points or >= {nprs_mcid_pct:g} %."),
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
_SUM_COUNTS = {
    "attendance_sum": "episodes_attendance_known",
    "dose_adherence_sum": "episodes_dose_known",
    "activity_share_sum": "episodes_activity_known",
    "nprs_improvement_sum": "nprs_pairs",
}


def definition_parameters(**params) -> dict:
    """The parameter values the definitions cite: protocol defaults updated with ``params``.

    Accepts the keywords of :func:`hipdata.metrics.compute_all` (``measures`` gives the NPRS
    MCID, ``followup_window_days`` the follow-up window) and ``completion_attendance``.
    """
    nprs = (params.get("measures") or MEASURES)["nprs"]
    followup = params.get("followup_window_days", FOLLOWUP_WINDOW_DAYS)
    values = {
        "pain_threshold": PAIN_THRESHOLD,
        "criterion_sets": CRITERION_SETS,
        "criterion_reps": CRITERION_REPS,
        "criterion_hold_s": CRITERION_HOLD_S,
        "held_back_sessions": HELD_BACK_SESSIONS,
        "who_cardio_min": WHO_CARDIO_MIN,
        "who_strength_sessions": WHO_STRENGTH_SESSIONS,
        "completion_attendance": COMPLETION_ATTENDANCE,
        "nprs_mcid_points": nprs.mcid_points,
        "nprs_mcid_pct": nprs.mcid_pct,
        "followup_from": f"{followup[0]:+d}",
        "followup_to": f"{followup[1]:+d}",
    }
    values.update(
        {k: v for k, v in params.items() if k not in ("measures", "followup_window_days")}
    )
    return values


_KNOWN_PARAMS = set(Protocol.names()) | {"measures"}


def indicator_definitions(**params) -> pd.DataFrame:
    """The definitions appendix: one row per indicator with the parameter values cited.

    Parameters
    ----------
    **params
        The parameters the metric tables were computed with (keywords of
        :func:`hipdata.metrics.compute_all`) and ``completion_attendance``.

    Returns
    -------
    DataFrame
        Columns ``indicator, label, kind, cohort, definition``.
    """
    values = definition_parameters(**params)
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


# --- quarters ---------------------------------------------------------------------------------


def quarter_of(dates: pd.Series) -> pd.Series:
    """Calendar quarter of each date as ``2026Q3`` (CONTRACT §4)."""
    return dates.dt.to_period("Q").astype("str")


def _dataset_dates(ds: Dataset) -> pd.Series:
    return pd.concat(
        [
            ds.sets["date"],
            ds.patients["start_date"],
            ds.patients["discharge_date"],
            ds.activity["date"],
            ds.outcomes["date"],
            ds.treatments["date"],
        ],
        ignore_index=True,
    )


def latest_complete_quarter(
    ds_or_dates: Dataset | Iterable, today: str | pd.Timestamp | None = None
) -> str:
    """The latest calendar quarter fully covered by the data, as ``2026Q2``.

    Rule: the last quarter whose final day is on or before the last date in the data (any date
    of any table of a Dataset: sessions, start and discharge dates, activity, outcomes,
    treatments). When ``today`` is given, the quarter must also have ended before ``today``
    (its final day < today), so a quarter still running is never called complete.

    Parameters
    ----------
    ds_or_dates : Dataset or iterable of dates
    today : date-like, optional

    Returns
    -------
    str

    Examples
    --------
    >>> latest_complete_quarter(["2026-01-10", "2026-06-30"])
    '2026Q2'
    >>> latest_complete_quarter(["2026-01-10", "2026-06-29"])
    '2026Q1'
    """
    if isinstance(ds_or_dates, Dataset):
        dates = _dataset_dates(ds_or_dates)
    else:
        dates = pd.Series(pd.to_datetime(list(ds_or_dates)))
    dates = pd.to_datetime(dates).dropna()
    if dates.empty:
        raise ValueError("no dates in the data: cannot tell which quarter is complete")
    last = dates.max().normalize()
    if today is not None:
        last = min(last, pd.Timestamp(today).normalize() - pd.Timedelta(days=1))
    quarter = last.to_period("Q")
    if last < quarter.end_time.normalize():
        quarter = quarter - 1
    return str(quarter)


def previous_quarters(quarter: str, n: int = 4) -> list[str]:
    """The ``n`` quarters before ``quarter``, oldest first (``quarter`` itself excluded).

    Examples
    --------
    >>> previous_quarters("2026Q2", 3)
    ['2025Q3', '2025Q4', '2026Q1']
    """
    period = pd.Period(quarter, freq="Q")
    return [str(period - i) for i in range(n, 0, -1)]


# --- quantities -------------------------------------------------------------------------------


def _melt(wide: pd.DataFrame) -> pd.DataFrame:
    """Per-record quantity columns -> long rows ``patient_id, quarter, quantity, value``."""
    long = wide.melt(id_vars=["patient_id", "quarter"], var_name="quantity", value_name="value")
    return long.astype({"value": "float64"})


def _session_quantities(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    sessions = tables["sessions"]
    # CONTRACT §4/§6: the session pain shares are complete case, over sessions with both pains
    # recorded (with both recorded, flare False means both <= the threshold)
    recorded = sessions["max_pain_during"].notna() & sessions["pain_24h"].notna()
    flare = sessions["flare"].astype("boolean").where(recorded)
    quarter = quarter_of(sessions["date"])
    per_session = pd.DataFrame(
        {
            "patient_id": sessions["patient_id"].astype("str"),
            "quarter": quarter,
            "sessions": 1,
            "sessions_flare_known": recorded,
            "sessions_no_flare": flare.eq(False).fillna(False),
            "sessions_flare": flare.eq(True).fillna(False),
            "sessions_pain_24h_recorded": sessions["pain_24h"].notna(),
            "sessions_pain_24h_missing": sessions["pain_24h"].isna(),
        }
    )
    active = per_session[["patient_id", "quarter"]].drop_duplicates().assign(active_patients=1)

    events = tables["progressions"]
    events = events[events["kind"].isin(PROGRESSION_KINDS)]
    criterion = events["criterion_before"].astype("str")
    per_event = pd.DataFrame(
        {
            "patient_id": events["patient_id"].astype("str"),
            "quarter": quarter_of(events["date"]),
            "progression_events": 1,
            "progressions_on_criteria": criterion.eq("met"),
            "progressions_off_criteria": criterion.ne("met"),
            "progressions_early": criterion.eq("not_met"),
            "progressions_not_early": criterion.ne("not_met"),
        }
    )
    return pd.concat([_melt(per_session), _melt(active), _melt(per_event)], ignore_index=True)


def _episode_quantities(
    ds: Dataset, tables: dict[str, pd.DataFrame], *, completion_attendance: float
) -> pd.DataFrame:
    patients = ds.patients[ds.patients["discharge_date"].notna()]
    summary = tables["patient_summary"]
    episodes = patients[["patient_id", "discharge_date", "discharge_reason"]].merge(
        summary[
            [
                "patient_id",
                "attendance",
                "dose_adherence",
                "held_back_episodes",
                "activity_weeks_met_share",
            ]
        ],
        on="patient_id",
        how="left",
        validate="one_to_one",
    )
    patient_id = episodes["patient_id"]

    treatments = ds.treatments

    def has_treatment(codes_match: pd.Series) -> pd.Series:
        with_code = set(treatments.loc[codes_match, "patient_id"].astype("str"))
        return patient_id.isin(with_code)

    codes = treatments["treatment"].astype("str")
    referred = episodes["discharge_reason"].isin(REFERRAL_REASONS).fillna(False) | has_treatment(
        codes.isin(REFERRAL_TREATMENTS)
    )
    manual = has_treatment(codes.isin(MANUAL_THERAPY_TREATMENTS))
    education = has_treatment(codes.str.startswith(EDUCATION_PREFIX))

    change = tables["outcome_change"]
    followup = patient_id.isin(set(change.loc[change["followup"].notna(), "patient_id"]))
    nprs = change[(change["measure"] == "nprs") & change["improvement"].notna()]
    nprs = nprs.drop_duplicates("patient_id").set_index("patient_id")
    nprs_improvement = patient_id.map(nprs["improvement"])
    nprs_responder = patient_id.map(nprs["responder"]).astype("boolean").fillna(False).astype(bool)

    attendance = episodes["attendance"]
    completed = attendance >= completion_attendance - TOLERANCE
    held_back = episodes["held_back_episodes"].fillna(0) >= 1
    per_episode = pd.DataFrame(
        {
            "patient_id": patient_id.astype("str"),
            "quarter": quarter_of(episodes["discharge_date"]),
            "episodes_discharged": 1,
            "episodes_attendance_known": attendance.notna(),
            "attendance_sum": attendance.fillna(0.0),
            "episodes_completed": completed,
            "episodes_not_completed": attendance.notna() & ~completed,
            "episodes_dose_known": episodes["dose_adherence"].notna(),
            "dose_adherence_sum": episodes["dose_adherence"].fillna(0.0),
            "episodes_held_back": held_back,
            "episodes_not_held_back": ~held_back,
            "episodes_activity_known": episodes["activity_weeks_met_share"].notna(),
            "activity_share_sum": episodes["activity_weeks_met_share"].fillna(0.0),
            "episodes_followup": followup,
            "episodes_no_followup": ~followup,
            "nprs_pairs": nprs_improvement.notna(),
            "nprs_responders": nprs_improvement.notna() & nprs_responder,
            "nprs_non_responders": nprs_improvement.notna() & ~nprs_responder,
            "nprs_improvement_sum": nprs_improvement.fillna(0.0),
            "episodes_referred": referred,
            "episodes_not_referred": ~referred,
            "episodes_manual_therapy": manual,
            "episodes_no_manual_therapy": ~manual,
            "episodes_education": education,
            "episodes_no_education": ~education,
        }
    )
    return _melt(per_episode)


def _all_quantities() -> list[str]:
    names: list[str] = []
    for indicator in INDICATORS.values():
        for quantity in (indicator.numerator, indicator.denominator, indicator.complement):
            if quantity is not None and quantity not in names:
                names.append(quantity)
    return names


# --- units ------------------------------------------------------------------------------------


def _patient_nodes(patients: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Which nodes each patient counts in, and the node table (node, level, unit, parent).

    A clinician seen in one clinic is a child of that clinic. Patients without a clinician, and
    those of a clinician seen in several clinics, form a hidden part of their clinic (never
    published; it keeps the clinic = sum of clinicians equation honest).
    """
    patients = patients[["patient_id", "clinic_id", "clinician_id"]].astype(
        {"patient_id": "str", "clinic_id": "str"}
    )
    clinician = patients["clinician_id"]
    has_clinician = clinician.notna()
    clinics_per_clinician = patients[has_clinician].groupby("clinician_id")["clinic_id"].nunique()
    single = clinician.map(clinics_per_clinician).eq(1).fillna(False)

    clinic_node = "clinic:" + patients["clinic_id"]
    clinician_node = "clinician:" + clinician.astype("str")
    hidden_node = "hidden:" + patients["clinic_id"]
    membership = pd.concat(
        [
            pd.DataFrame({"patient_id": patients["patient_id"], "node": "network:all"}),
            pd.DataFrame({"patient_id": patients["patient_id"], "node": clinic_node}),
            pd.DataFrame({"patient_id": patients["patient_id"], "node": clinician_node})[
                has_clinician
            ],
            pd.DataFrame({"patient_id": patients["patient_id"], "node": hidden_node})[~single],
        ],
        ignore_index=True,
    )
    nodes = pd.concat(
        [
            pd.DataFrame(
                {"node": ["network:all"], "level": "network", "unit": NETWORK_UNIT, "parent": None}
            ),
            pd.DataFrame(
                {
                    "node": clinic_node,
                    "level": "clinic",
                    "unit": patients["clinic_id"],
                    "parent": "network:all",
                }
            ),
            pd.DataFrame(
                {
                    "node": clinician_node,
                    "level": "clinician",
                    "unit": clinician.astype("str"),
                    "parent": clinic_node.where(single),
                }
            )[has_clinician],
            pd.DataFrame(
                {"node": hidden_node, "level": "hidden", "unit": "", "parent": clinic_node}
            )[~single],
        ],
        ignore_index=True,
    ).drop_duplicates("node")
    return membership, nodes.reset_index(drop=True)


# --- suppression ------------------------------------------------------------------------------


def _suppress(cells: pd.DataFrame, nodes: pd.DataFrame, *, k: int) -> pd.Series:
    """Primary and secondary suppression of the quarter x node x quantity cells."""
    is_sum = cells["quantity"].isin(_SUM_COUNTS)
    base = cells["quantity"].map(_SUM_COUNTS).fillna(cells["quantity"])
    keyed = cells.set_index(["quarter", "node", "quantity"])["value"]
    size = pd.Series(
        keyed.reindex(
            pd.MultiIndex.from_arrays([cells["quarter"], cells["node"], base])
        ).to_numpy(),
        index=cells.index,
    )
    level = cells["node"].map(nodes.set_index("node")["level"])
    hidden = level.eq("hidden") & (size != 0)
    primary = small_count_mask(cells["value"], k=k) & ~is_sum
    # A count published as a count indicator may be shown as "<k" (primary) or "*" (secondary),
    # so a reader knows 1..k-1 or >= k; other quantities are only known to be >= 0 (sums: any).
    shown_as_count = cells["quantity"].isin(
        [i.numerator for i in INDICATORS.values() if i.kind == "count"]
    ) & ~level.eq("hidden")
    lo = np.where(is_sum, -np.inf, 0.0)
    engine_cells = pd.DataFrame(
        {
            "value": cells["value"],
            "suppressed": primary,
            "lo": np.where(shown_as_count & primary, 1.0, lo),
            "hi": np.where(shown_as_count & primary, k - 1.0, np.inf),
            # "*" is neutral: a hidden count may be small (a relaxed "<k") or not
            "secondary_lo": lo,
            "secondary_hi": np.inf,
            "size": size.where(~level.eq("hidden"), 0.0),
            "hidden": hidden,
            "link": cells["quarter"] + "|" + cells["node"] + "|" + base,
        }
    )
    cell_id = pd.Series(
        cells.index, index=pd.MultiIndex.from_frame(cells[["quarter", "node", "quantity"]])
    )

    # clinicians within their clinic (and its hidden part), clinics within the network
    parent = cells["node"].map(nodes.set_index("node")["parent"])
    members = cells.assign(parent=parent)[parent.notna()]
    members = members.assign(
        line="h|" + members["quarter"] + "|" + members["quantity"] + "|" + members["parent"],
        cell=members.index,
        sign=1,
    )
    totals = members[["line", "quarter", "parent", "quantity"]].drop_duplicates("line")
    totals = totals.assign(
        cell=cell_id.reindex(
            pd.MultiIndex.from_frame(totals[["quarter", "parent", "quantity"]])
        ).to_numpy(),
        sign=-1,
    )

    # denominator = numerator + complement within each published unit
    parts = [
        (i.denominator, i.numerator, i.complement)
        for i in INDICATORS.values()
        if i.complement is not None
    ]
    partition = pd.DataFrame(parts, columns=["denominator", "numerator", "complement"])
    partition = partition.drop_duplicates().reset_index(drop=True)
    partition["key"] = partition.index.astype("str")
    roles = partition.melt(id_vars="key", var_name="role", value_name="quantity")
    published = cells[~level.eq("hidden")]
    split = published.assign(cell=published.index).merge(roles, on="quantity")
    split = split.assign(
        line="p|" + split["quarter"] + "|" + split["node"] + "|" + split["key"],
        sign=np.where(split["role"] == "denominator", -1, 1),
    )

    lines = pd.concat(
        [
            members[["line", "cell", "sign"]],
            totals[["line", "cell", "sign"]],
            split[["line", "cell", "sign"]],
        ],
        ignore_index=True,
    )
    lines["line"] = lines["line"].astype("category").cat.codes
    # what every reader also knows: a count within a unit never exceeds the count it is part of
    engine_cells["protect"] = primary & ~is_sum
    engine_cells["integer"] = ~is_sum
    result = protect_cells(engine_cells, lines, inequalities=_inequalities(cells, cell_id), k=k)
    return result[["suppressed", "relaxed"]]


#: Logical constraints within a unit and quarter: (smaller, larger) quantities.
ORDERED_QUANTITIES = (
    ("nprs_pairs", "episodes_followup"),
    ("episodes_followup", "episodes_discharged"),
    ("episodes_attendance_known", "episodes_discharged"),
    ("episodes_dose_known", "episodes_discharged"),
    ("episodes_activity_known", "episodes_discharged"),
    ("active_patients", "sessions"),
    ("sessions_flare_known", "sessions"),
)


def _inequalities(cells: pd.DataFrame, cell_id: pd.Series) -> pd.DataFrame:
    """Cell pairs ``(smaller, larger)`` of :data:`ORDERED_QUANTITIES` in every quarter and node.

    Only pairs the data satisfy are kept (all of them, when the definitions hold), so the
    attacker's program is never made infeasible by a definition that differs at the edges.
    """
    keys = cells[["quarter", "node"]].drop_duplicates()
    parts = []
    for smaller, larger in ORDERED_QUANTITIES:
        small_id = cell_id.reindex(pd.MultiIndex.from_frame(keys.assign(q=smaller))).to_numpy()
        large_id = cell_id.reindex(pd.MultiIndex.from_frame(keys.assign(q=larger))).to_numpy()
        parts.append(pd.DataFrame({"smaller": small_id, "larger": large_id}))
    pairs = pd.concat(parts, ignore_index=True).dropna()
    value = cells["value"]
    holds = value.reindex(pairs["smaller"]).to_numpy() <= value.reindex(pairs["larger"]).to_numpy()
    return pairs[holds].astype("int64").reset_index(drop=True)


# --- the table --------------------------------------------------------------------------------


def audit_indicators(
    ds: Dataset,
    tables: dict[str, pd.DataFrame],
    *,
    quarters: Iterable[str] | None = None,
    k: int = SUPPRESSION_K,
    completion_attendance: float = COMPLETION_ATTENDANCE,
    **params,
) -> pd.DataFrame:
    """Quarterly audit indicators per network, clinic and clinician, with suppression.

    Parameters
    ----------
    ds : Dataset
        The cohort (``patients`` give each episode's clinic, clinician, discharge date and
        reason; ``treatments`` the manual therapy, education and referrals delivered).
    tables : dict of str to DataFrame
        The metric tables of :func:`hipdata.metrics.compute_all`; uses ``sessions``,
        ``progressions``, ``patient_summary`` and ``outcome_change``.
    quarters : iterable of str, optional
        Quarters to report (``"2026Q3"``). Default: every quarter from the first to the last in
        which a session, progression or discharge is dated.
    k : int
        Small-cell threshold: counts 1..k-1 are suppressed.
    completion_attendance : float
        Attendance (share of planned sessions) at or above which an episode is completed.
    **params
        The parameters the tables were computed with (keywords of
        :func:`hipdata.metrics.compute_all`); used only in :func:`indicator_definitions`, and
        checked here so that a misspelt name fails loudly.

    Returns
    -------
    DataFrame
        Columns ``level, unit, quarter, indicator, numerator, denominator, value, suppressed``:
        one row per level x unit x quarter x indicator (every unit in ``ds.patients`` for every
        quarter). Counts: numerator = the count, denominator empty, value = the count.
        Proportions: numerator / denominator (value empty when the denominator is 0). Means:
        numerator = the sum, denominator = the number of episodes, value = the mean. Suppressed
        rows have numerator, denominator and value empty.

    Notes
    -----
    Referrals count an episode discharged as ``referred_injection`` / ``referred_surgery`` *or*
    having an ``injection`` / ``surgical_referral`` treatment row (either source suffices, since
    clinics record one or the other). Treatments count for their patient's episode whatever
    their date. The NPRS indicators use ``outcome_change`` rows of measure ``nprs``.
    """
    unknown = set(params) - _KNOWN_PARAMS
    if unknown:
        raise TypeError(
            f"audit_indicators() got unexpected parameters {sorted(unknown)}; "
            f"known: {sorted(_KNOWN_PARAMS | {'completion_attendance', 'k', 'quarters'})}"
        )
    contributions = pd.concat(
        [
            _session_quantities(tables),
            _episode_quantities(ds, tables, completion_attendance=completion_attendance),
        ],
        ignore_index=True,
    )
    if quarters is None:
        present = contributions["quarter"].dropna()
        if present.empty:
            quarters = []
        else:
            span = pd.period_range(min(present), max(present), freq="Q")
            quarters = [str(q) for q in span]
    quarters = [str(q) for q in quarters]
    contributions = contributions[contributions["quarter"].isin(quarters)]

    membership, nodes = _patient_nodes(ds.patients)
    sums = (
        contributions.merge(membership, on="patient_id")
        .groupby(["quarter", "node", "quantity"])["value"]
        .sum()
    )
    grid = pd.MultiIndex.from_product(
        [quarters, nodes["node"], _all_quantities()], names=["quarter", "node", "quantity"]
    )
    cells = sums.reindex(grid, fill_value=0.0).reset_index()
    if len(cells):
        decision = _suppress(cells, nodes, k=k)
        cells["suppressed"] = decision["suppressed"].astype(bool).to_numpy()
        cells["relaxed"] = decision["relaxed"].astype(bool).to_numpy()
    else:
        cells["suppressed"], cells["relaxed"] = False, False

    return _indicator_rows(cells, nodes, k=k)


def patient_contributions(
    ds: Dataset,
    tables: dict[str, pd.DataFrame],
    *,
    quarters: Iterable[str],
    completion_attendance: float = COMPLETION_ATTENDANCE,
) -> pd.DataFrame:
    """Each patient's share of every audit quantity, per quarter (before any suppression).

    The additive counts the audit indicators are built from, per patient instead of per unit:
    what patient-clustered statistics (design effects, clustered intervals) need. Internal to
    the audit: never published.

    Returns
    -------
    DataFrame
        ``patient_id, clinic_id, clinician_id, quarter`` and one column per quantity
        (``sessions_no_flare``, ``sessions_flare_known``, ...), 0 where the patient has none.
    """
    contributions = pd.concat(
        [
            _session_quantities(tables),
            _episode_quantities(ds, tables, completion_attendance=completion_attendance),
        ],
        ignore_index=True,
    )
    contributions = contributions[contributions["quarter"].isin([str(q) for q in quarters])]
    wide = contributions.pivot_table(
        index=["patient_id", "quarter"], columns="quantity", values="value", aggfunc="sum"
    )
    wide = wide.reindex(columns=_all_quantities()).fillna(0.0).reset_index()
    wide.columns.name = None
    units = ds.patients[["patient_id", "clinic_id", "clinician_id"]].astype({"patient_id": "str"})
    return units.merge(wide, on="patient_id", how="inner")


def _indicator_rows(cells: pd.DataFrame, nodes: pd.DataFrame, *, k: int) -> pd.DataFrame:
    registry = pd.DataFrame(
        [(i.name, i.kind, i.numerator, i.denominator) for i in INDICATORS.values()],
        columns=["indicator", "kind", "numerator_q", "denominator_q"],
    )
    registry["order"] = np.arange(len(registry))
    published = nodes[nodes["level"].isin(LEVELS)]
    value_of = cells.set_index(["quarter", "node", "quantity"])[["value", "suppressed", "relaxed"]]
    rows = (
        pd.DataFrame({"quarter": cells["quarter"].unique()})
        .merge(published, how="cross")
        .merge(registry, how="cross")
    )
    num = value_of.reindex(pd.MultiIndex.from_frame(rows[["quarter", "node", "numerator_q"]]))
    den = value_of.reindex(pd.MultiIndex.from_frame(rows[["quarter", "node", "denominator_q"]]))
    numerator = num["value"].to_numpy(dtype="float64")
    denominator = den["value"].to_numpy(dtype="float64")
    suppressed = num["suppressed"].fillna(False).to_numpy(dtype=bool) | den["suppressed"].fillna(
        False
    ).to_numpy(dtype=bool)
    is_count = rows["kind"].eq("count").to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(denominator > 0, numerator / denominator, np.nan)
    value = np.where(is_count, numerator, ratio)
    out = pd.DataFrame(
        {
            "level": rows["level"].astype("str"),
            "unit": rows["unit"].astype("str"),
            "quarter": rows["quarter"].astype("str"),
            "indicator": rows["indicator"].astype("str"),
            "numerator": np.where(suppressed, np.nan, numerator),
            "denominator": np.where(suppressed | is_count, np.nan, denominator),
            "value": np.where(suppressed, np.nan, value),
            "suppressed": suppressed,
        }
    )
    out["_level"] = out["level"].map({name: i for i, name in enumerate(LEVELS)})
    out["_order"] = rows["order"].to_numpy()
    relaxed = num["relaxed"].fillna(False).to_numpy(dtype=bool)
    out["_small"] = (
        suppressed & is_count & ~relaxed & small_count_mask(pd.Series(numerator), k=k).to_numpy()
    )
    out = out.sort_values(["quarter", "_level", "unit", "_order"], kind="stable")
    table = out[AUDIT_COLUMNS].reset_index(drop=True)
    # which hidden counts are themselves small (shown "<k") rather than hidden to protect another
    # cell (shown "*"); kept out of the columns so the CSV never carries it
    table.attrs["small_count"] = pd.Series(out["_small"].to_numpy(), index=table.index)
    return table


def format_audit(
    audit: pd.DataFrame, *, decimals: int = 1, marker: str = SECONDARY_MARKER
) -> pd.DataFrame:
    """Display strings for an audit table, with the suppression decision already made.

    Counts and denominators are whole numbers, proportions percentages with ``decimals``,
    means (and their sums) with ``decimals + 1``. A suppressed row shows ``marker`` in all three
    columns: one neutral marker, since a row may be hidden to protect another (``"<k"`` would
    claim a small count and tell a reader more than the protection assumes).

    Parameters
    ----------
    audit : DataFrame
        The output of :func:`audit_indicators`.
    decimals : int
        Decimals of percentages.
    marker : str
        Display of a suppressed figure.

    Returns
    -------
    DataFrame
        ``audit`` with ``numerator``, ``denominator`` and ``value`` as strings (empty where the
        figure is empty).
    """
    kind = audit["indicator"].map({name: i.kind for name, i in INDICATORS.items()})

    def text(values: pd.Series, pattern: str) -> pd.Series:
        return values.map(lambda v: "" if pd.isna(v) else pattern.format(v))

    mean_pattern = f"{{:.{decimals + 1}f}}"
    numerator = text(audit["numerator"], "{:.0f}").where(
        kind.ne("mean"), text(audit["numerator"], mean_pattern)
    )
    value = (
        text(audit["value"], "{:.0f}")
        .where(kind.eq("count"), text(audit["value"] * 100, f"{{:.{decimals}f}}%"))
        .where(kind.ne("mean"), text(audit["value"], mean_pattern))
    )
    shown = audit.assign(
        numerator=numerator, denominator=text(audit["denominator"], "{:.0f}"), value=value
    )
    hidden = audit["suppressed"].to_numpy()
    shown.loc[hidden, ["numerator", "denominator", "value"]] = marker
    return shown
