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

Every indicator is listed in :data:`~hipdata.analysis.indicators.INDICATORS` with its label, kind
and a plain-language definition. Figures too small to publish are suppressed across the whole
published set (:mod:`hipdata.analysis.audit_suppression`). With ``pooled``, the table also holds
each unit's figures over the last ``pooled`` quarters together (a rolling year), so that a
clinician with few discharges a quarter still has figures to show; the pooled cells are in the
same suppression as the quarters they sum.

Examples
--------
>>> import hipdata
>>> from hipdata.metrics import compute_all
>>> ds = hipdata.load("data/demo")  # doctest: +SKIP
>>> table = audit_indicators(ds, compute_all(ds), quarters=["2026Q3"])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from hipdata.analysis.audit_suppression import NETWORK_UNIT, patient_nodes, suppress_cells
from hipdata.analysis.indicators import INDICATORS, all_quantities
from hipdata.dataset import Dataset
from hipdata.disclosure import small_count_mask
from hipdata.protocol import SUPPRESSION_K, TOLERANCE, Protocol

__all__ = [
    "AUDIT_COLUMNS",
    "LEVELS",
    "NETWORK_UNIT",
    "audit_indicators",
    "latest_complete_quarter",
    "patient_contributions",
    "pooled_label",
    "previous_quarters",
    "quarter_of",
]

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
#: ``discharge_reason`` values and ``treatments`` codes that count as a referral.
REFERRAL_REASONS = ("referred_injection", "referred_surgery")
REFERRAL_TREATMENTS = ("injection", "surgical_referral")
MANUAL_THERAPY_TREATMENTS = ("soft_tissue", "joint_mobilisation")
EDUCATION_PREFIX = "education_"
PROGRESSION_KINDS = ("up", "load_up")


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


_KEYS = ["patient_id", "quarter"]


def _per_patient_quarter(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Per-record quantity columns summed per ``patient_id, quarter`` (one row per pair).

    The per-record quantities summed here are counts (whole numbers), so the sums are exact
    whatever the order; it keeps the audit's group-bys at one row per patient and quarter
    instead of one per session.
    """
    sums = [frame.groupby(_KEYS, sort=False).sum() for frame in frames]
    return pd.concat(sums, axis=1).fillna(0).reset_index()


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
    active = per_session[_KEYS].drop_duplicates().assign(active_patients=1)

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
    return _per_patient_quarter([per_session, active, per_event])


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
    return per_episode


# --- the table --------------------------------------------------------------------------------


def pooled_label(quarters: Iterable[str]) -> str:
    """The period label of quarters pooled together: ``"2025Q4-2026Q3"``.

    >>> pooled_label(["2025Q4", "2026Q1", "2026Q2", "2026Q3"])
    '2025Q4-2026Q3'
    """
    quarters = [str(q) for q in quarters]
    return f"{quarters[0]}-{quarters[-1]}"


#: Indicators not shown for pooled quarters: a count of distinct patients does not add up over
#: quarters (a patient active in two quarters is one patient).
NOT_POOLED = ("active_patients",)


def _contributions(
    ds: Dataset, tables: dict[str, pd.DataFrame], protocol: Protocol
) -> pd.DataFrame:
    """Every quantity per record, wide: ``patient_id, quarter`` and one float column each.

    The session and progression counts summed per patient and quarter come first, then one
    row per discharged episode (its quarter is the discharge's), 0 where a row has no part in a
    quantity. Summing a column over the rows of a unit and quarter gives the unit's cell; the
    episode sums (attendance, NPRS improvement, ...) are added in the episodes' order.
    """
    quantities = all_quantities()
    parts = [
        _session_quantities(tables),
        _episode_quantities(ds, tables, completion_attendance=protocol.completion_attendance),
    ]
    wide = pd.concat(
        [
            part[_KEYS].join(part.reindex(columns=quantities).astype("float64").fillna(0.0))
            for part in parts
        ],
        ignore_index=True,
    )
    return wide


def audit_indicators(
    ds: Dataset,
    tables: dict[str, pd.DataFrame],
    *,
    quarters: Iterable[str] | None = None,
    k: int = SUPPRESSION_K,
    protocol: Protocol | None = None,
    pooled: int = 0,
    clinician_quarters: Iterable[str] | None = None,
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
        Quarters to report (``"2026Q3"``), oldest first. Default: every quarter from the first
        to the last in which a session, progression or discharge is dated.
    k : int
        Small-cell threshold: counts 1..k-1 are suppressed (1: nothing is suppressed).
    protocol : Protocol, optional
        The protocol the tables were computed with; its ``completion_attendance`` defines a
        completed episode (default: the published protocol).
    pooled : int
        With 2 or more, also the last ``pooled`` quarters of ``quarters`` together, as rows
        whose ``quarter`` is the period's :func:`pooled_label` (every indicator but
        :data:`NOT_POOLED`). Their cells are linked to the quarters they sum in the suppression.
    clinician_quarters : iterable of str, optional
        Quarters whose clinician rows are published (default: all). With pooled rows, a
        clinician's earlier quarters beside the pooled figure would give the audited quarter's
        figure by difference, so a report publishes clinicians for its quarter and the pooled
        period only, and far fewer cells need hiding. The pooled period's clinician rows are
        always published.

    Returns
    -------
    DataFrame
        Columns ``level, unit, quarter, indicator, numerator, denominator, value, suppressed``:
        one row per level x unit x quarter x indicator (every unit in ``ds.patients`` for every
        quarter; then the pooled period's rows). Counts: numerator = the count, denominator
        empty, value = the count. Proportions: numerator / denominator (value empty when the
        denominator is 0). Means: numerator = the sum, denominator = the number of episodes,
        value = the mean. Suppressed rows have numerator, denominator and value empty.
        ``attrs["small_count"]`` (bool, on the index) tells a suppressed count that is itself
        small (may be shown ``"<k"``) from one hidden to protect another (shown ``"*"``);
        ``attrs["pooled"]`` maps the pooled period's label to its quarters.

    Notes
    -----
    Referrals count an episode discharged as ``referred_injection`` / ``referred_surgery`` *or*
    having an ``injection`` / ``surgical_referral`` treatment row (either source suffices, since
    clinics record one or the other). Treatments count for their patient's episode whatever
    their date. The NPRS indicators use ``outcome_change`` rows of measure ``nprs``.
    """
    protocol = Protocol() if protocol is None else protocol
    return _indicators_from(
        _contributions(ds, tables, protocol),
        ds,
        quarters=quarters,
        k=k,
        pooled=pooled,
        clinician_quarters=clinician_quarters,
    )


def _indicators_from(
    contributions: pd.DataFrame,
    ds: Dataset,
    *,
    quarters: Iterable[str] | None,
    k: int,
    pooled: int,
    clinician_quarters: Iterable[str] | None,
) -> pd.DataFrame:
    """:func:`audit_indicators` from the records of :func:`_contributions` (computed once by
    the quarterly report for its indicators and its patient-level statistics)."""
    if quarters is None:
        present = contributions["quarter"].dropna()
        if present.empty:
            quarters = []
        else:
            span = pd.period_range(min(present), max(present), freq="Q")
            quarters = [str(q) for q in span]
    quarters = [str(q) for q in quarters]
    windows = (
        {pooled_label(quarters[-pooled:]): quarters[-pooled:]} if pooled > 1 and quarters else {}
    )
    contributions = contributions[contributions["quarter"].isin(quarters)]

    membership, nodes = patient_nodes(ds.patients)
    sums = (
        contributions.merge(membership, on="patient_id")
        .groupby(["quarter", "node"])[all_quantities()]
        .sum()
        .rename_axis(columns="quantity")
        .stack()
        .rename("value")
    )
    grid = pd.MultiIndex.from_product(
        [quarters, nodes["node"], all_quantities()], names=["quarter", "node", "quantity"]
    )
    cells = sums.reindex(grid, fill_value=0.0).reset_index()
    for label, window in windows.items():
        part = cells[cells["quarter"].isin(window)]
        total = part.groupby(["node", "quantity"], sort=False)["value"].sum().reset_index()
        cells = pd.concat([cells, total.assign(quarter=label)[cells.columns]], ignore_index=True)
    unpublished = None
    if clinician_quarters is not None:
        shown = {str(q) for q in clinician_quarters} | set(windows)
        level = cells["node"].map(nodes.set_index("node")["level"])
        unpublished = level.eq("clinician") & ~cells["quarter"].isin(shown)
    if len(cells):
        decision = _suppress(cells, nodes, k=k, windows=windows, unpublished=unpublished)
        cells["suppressed"] = decision["suppressed"].astype(bool).to_numpy()
        cells["relaxed"] = decision["relaxed"].astype(bool).to_numpy()
    else:
        cells["suppressed"], cells["relaxed"] = False, False

    table = _indicator_rows(cells, nodes, k=k, periods=quarters + list(windows))
    drop = table["quarter"].isin(windows) & table["indicator"].isin(NOT_POOLED)
    if clinician_quarters is not None:
        drop |= table["level"].eq("clinician") & ~table["quarter"].isin(shown)
    if drop.any():
        small = table.attrs["small_count"][~drop].reset_index(drop=True)
        table = table[~drop].reset_index(drop=True)
        table.attrs["small_count"] = small
    table.attrs["pooled"] = windows
    return table


def _suppress(
    cells: pd.DataFrame,
    nodes: pd.DataFrame,
    *,
    k: int,
    windows: dict[str, list[str]],
    unpublished: pd.Series | None,
) -> pd.DataFrame:
    """:func:`suppress_cells` over quarters and pooled periods together.

    Should the solver fail on the linked system (HiGHS has called a consistent system with
    pooled periods infeasible on a one-clinician cohort), no pooled figure is published: the
    pooled cells are all hidden (shown ``"*"``) and the quarters are protected on their own.
    """
    try:
        return suppress_cells(cells, nodes, k=k, pooled=windows, unpublished=unpublished)
    except RuntimeError:
        if not windows:
            raise
    quarterly = ~cells["quarter"].isin(windows)
    decision = suppress_cells(
        cells[quarterly],
        nodes,
        k=k,
        unpublished=None if unpublished is None else unpublished[quarterly],
    )
    return decision.reindex(cells.index).fillna(True).astype(bool)


def patient_contributions(
    ds: Dataset,
    tables: dict[str, pd.DataFrame],
    *,
    quarters: Iterable[str],
    protocol: Protocol | None = None,
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
    protocol = Protocol() if protocol is None else protocol
    return _patient_contributions_from(_contributions(ds, tables, protocol), ds, quarters=quarters)


def _patient_contributions_from(
    contributions: pd.DataFrame, ds: Dataset, *, quarters: Iterable[str]
) -> pd.DataFrame:
    """:func:`patient_contributions` from the records of :func:`_contributions`."""
    contributions = contributions[contributions["quarter"].isin([str(q) for q in quarters])]
    wide = contributions.groupby(_KEYS)[all_quantities()].sum().reset_index()
    units = ds.patients[["patient_id", "clinic_id", "clinician_id"]].astype({"patient_id": "str"})
    return units.merge(wide, on="patient_id", how="inner")


def _indicator_rows(
    cells: pd.DataFrame, nodes: pd.DataFrame, *, k: int, periods: list[str]
) -> pd.DataFrame:
    registry = pd.DataFrame(
        [(i.name, i.kind, i.numerator, i.denominator) for i in INDICATORS.values()],
        columns=["indicator", "kind", "numerator_q", "denominator_q"],
    )
    registry["order"] = np.arange(len(registry))
    published = nodes[nodes["level"].isin(LEVELS)]
    value_of = cells.set_index(["quarter", "node", "quantity"])[["value", "suppressed", "relaxed"]]
    rows = (
        pd.DataFrame({"quarter": pd.unique(cells["quarter"])})
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
    out["_period"] = out["quarter"].map({period: i for i, period in enumerate(periods)})
    out["_level"] = out["level"].map({name: i for i, name in enumerate(LEVELS)})
    out["_order"] = rows["order"].to_numpy()
    relaxed = num["relaxed"].fillna(False).to_numpy(dtype=bool)
    out["_small"] = (
        suppressed & is_count & ~relaxed & small_count_mask(pd.Series(numerator), k=k).to_numpy()
    )
    out = out.sort_values(["_period", "_level", "unit", "_order"], kind="stable")
    table = out[AUDIT_COLUMNS].reset_index(drop=True)
    # which hidden counts are themselves small (shown "<k") rather than hidden to protect another
    # cell (shown "*"); kept out of the columns so the CSV never carries it
    table.attrs["small_count"] = pd.Series(out["_small"].to_numpy(), index=table.index)
    return table
