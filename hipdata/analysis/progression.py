"""Progression along the exercise ladders: how far patients got, how long it took, and on what.

- :func:`ladder_funnel` — per family, the share of patients who reached each level;
- :func:`time_to_next_level` — Kaplan-Meier time from the first session at a level to the first
  session at a higher level (statsmodels ``SurvfuncRight``);
- :func:`progression_incidence` — the cumulative incidence of progression when discharge for
  surgery or drop-out is a competing event (Aalen-Johansen, :func:`aalen_johansen`);
- :func:`progression_rates` — per clinician or clinic, progression events made on criteria,
  early progressions and held-back episodes (CONTRACT §4).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.duration.survfunc import SurvfuncRight

from hipdata.analysis.intervals import wilson_ci
from hipdata.catalogue import load_catalogue
from hipdata.protocol import FAMILIES

#: Label for patients whose grouping column (clinician_id, clinic_id) is empty.
MISSING_GROUP = "not recorded"
#: Progression events that move a patient on (CONTRACT §4, on-criteria share).
FORWARD_KINDS = ("up", "load_up")

_TOP_LEVEL_PREFIX = "top_level_"
#: Discharge reasons that end a spell with a competing event rather than censoring it.
COMPETING_DISCHARGE_REASONS = ("referred_surgery", "dropped_out")
#: ``outcome`` values of a progression spell.
SPELL_OUTCOMES = ("progressed", "competing", "censored")


def _family_max_levels(
    catalogue: pd.DataFrame | None, observed: pd.DataFrame, families: Sequence[str]
) -> pd.Series:
    """Highest level per family: the catalogue's, or higher if the data went higher."""
    catalogue = load_catalogue() if catalogue is None else catalogue
    by_catalogue = catalogue.groupby("family")["level"].max()
    by_data = observed.groupby("family")["level"].max()
    combined = pd.concat([by_catalogue, by_data], axis=1).max(axis=1)
    return combined.reindex(list(families)).dropna().astype("int64")


# --------------------------------------------------------------------------------------------
# ladder funnel
# --------------------------------------------------------------------------------------------
def ladder_funnel(
    data: pd.DataFrame,
    *,
    families: Sequence[str] = FAMILIES,
    catalogue: pd.DataFrame | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Per family, how many of the patients who did it reached each level.

    A patient *reached* level L of a family when their top level in that family is >= L. The
    denominator is the patients with any session of the family, so level 1 is always 100 %.
    Levels run from 1 to the family's top level in the catalogue (or higher if the data did).

    Parameters
    ----------
    data : DataFrame
        ``family_sessions`` (patient_id, family, level) or ``patient_summary`` (patient_id and
        the ``top_level_<family>`` columns).
    families : sequence of str
        Families to report, in this order.
    catalogue : DataFrame, optional
        The exercise catalogue (default: the shipped one) giving each ladder's length.
    alpha : float
        1 - confidence level of the Wilson intervals.

    Returns
    -------
    DataFrame
        ``family, level, n_patients, n_reached, share_reached, ci_low, ci_high``; families with no
        patient have ``n_patients`` 0 and empty shares.

    Examples
    --------
    >>> fs = pd.DataFrame({"patient_id": ["P1", "P1", "P2"], "family": ["trunk"] * 3,
    ...                    "level": [1, 2, 1]})
    >>> ladder_funnel(fs, families=["trunk"])[["level", "n_reached", "share_reached"]].to_dict(
    ...     "list")
    {'level': [1, 2], 'n_reached': [2, 1], 'share_reached': [1.0, 0.5]}
    """
    top_columns = [c for c in data.columns if c.startswith(_TOP_LEVEL_PREFIX)]
    if {"family", "level"} <= set(data.columns):
        top = data.groupby(["patient_id", "family"], as_index=False)["level"].max()
    elif top_columns:
        top = (
            data.melt(id_vars="patient_id", value_vars=top_columns, var_name="family")
            .dropna(subset=["value"])
            .rename(columns={"value": "level"})
        )
        top["family"] = top["family"].str.removeprefix(_TOP_LEVEL_PREFIX)
    else:
        raise ValueError(
            "ladder_funnel needs family_sessions (family, level) or patient_summary "
            "(top_level_<family> columns)"
        )
    top["level"] = top["level"].astype("int64")
    top = top.loc[top["family"].isin(list(families))]

    max_levels = _family_max_levels(catalogue, top, families)
    grid = (
        max_levels.rename("max_level")
        .rename_axis("family")
        .reset_index()
        .assign(level=lambda g: g["max_level"].map(lambda m: list(range(1, m + 1))))
        .explode("level")
        .drop(columns="max_level")
        .astype({"level": "int64"})
    )
    pairs = grid.merge(top.rename(columns={"level": "top_level"}), on="family", how="left")
    pairs["reached"] = pairs["top_level"] >= pairs["level"]
    table = pairs.groupby(["family", "level"], as_index=False, sort=False).agg(
        n_patients=("patient_id", "nunique"), n_reached=("reached", "sum")
    )
    table["n_reached"] = table["n_reached"].astype("int64")
    table["share_reached"] = table["n_reached"] / table["n_patients"].where(table["n_patients"] > 0)
    table["ci_low"], table["ci_high"] = wilson_ci(
        table["n_reached"], table["n_patients"], alpha=alpha
    )
    return table.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# time to the next level
# --------------------------------------------------------------------------------------------
class TimeToProgression(NamedTuple):
    """Kaplan-Meier time to the next level: curves, medians and the spells behind them."""

    #: family[, level], time_days, survival, ci_low, ci_high, at_risk, events
    table: pd.DataFrame
    #: family[, level], n_spells, n_events, median_days, ci_low, ci_high
    medians: pd.DataFrame
    #: one row per patient x family x level: start, end, time_days, progressed
    spells: pd.DataFrame


def progression_spells(
    family_sessions: pd.DataFrame,
    patients: pd.DataFrame,
    *,
    families: Sequence[str] = FAMILIES,
    catalogue: pd.DataFrame | None = None,
    competing_reasons: Sequence[str] = COMPETING_DISCHARGE_REASONS,
) -> pd.DataFrame:
    """One row per patient x family x level below the top of the ladder, for survival analysis.

    ``start`` is the first session at the level; the spell ends with an event (``progressed``)
    at the first later session of the family at a higher level, else it ends at the patient's
    ``discharge_date`` or, while in care, at their last session (any family).
    ``time_days`` = end - start in days (never negative). Top-of-ladder levels and ladders with a
    single level (trunk_variations) have nowhere to go and are left out.

    ``outcome`` says how the spell ended: ``"progressed"``; ``"competing"`` when the patient was
    discharged before progressing with a ``discharge_reason`` in ``competing_reasons`` (default
    referral for surgery and drop-out: events that end the chance of progressing, not
    independent censoring); otherwise ``"censored"`` (still in care, completed, other reasons or
    no reason recorded).

    Returns
    -------
    DataFrame
        ``patient_id, family, level, start, end, time_days, progressed, outcome``.
    """
    sessions = family_sessions.loc[
        family_sessions["family"].isin(list(families)), ["patient_id", "family", "level", "date"]
    ]
    max_levels = _family_max_levels(catalogue, sessions, families)
    spells = sessions.groupby(["patient_id", "family", "level"], as_index=False)["date"].min()
    spells = spells.rename(columns={"date": "start"})
    spells = spells.loc[spells["level"] < spells["family"].map(max_levels)]

    later = sessions.rename(columns={"level": "later_level", "date": "later_date"})
    candidates = spells.merge(later, on=["patient_id", "family"])
    candidates = candidates.loc[
        (candidates["later_date"] > candidates["start"])
        & (candidates["later_level"] > candidates["level"])
    ]
    first_higher = (
        candidates.groupby(["patient_id", "family", "level"], as_index=False)["later_date"]
        .min()
        .rename(columns={"later_date": "event_date"})
    )
    spells = spells.merge(first_higher, on=["patient_id", "family", "level"], how="left")

    last_session = family_sessions.groupby("patient_id")["date"].max().rename("last_session")
    discharge = (
        patients.drop_duplicates("patient_id").set_index("patient_id").reindex(last_session.index)
    )
    censor = discharge["discharge_date"].fillna(last_session).rename("censor_date")
    reason = (
        discharge["discharge_reason"]
        if "discharge_reason" in discharge.columns
        else pd.Series(pd.NA, index=discharge.index, dtype="object")
    )
    competing = (discharge["discharge_date"].notna() & reason.isin(list(competing_reasons))).rename(
        "competing_end"
    )
    spells = spells.merge(censor, left_on="patient_id", right_index=True, how="left")
    spells = spells.merge(competing, left_on="patient_id", right_index=True, how="left")
    spells["progressed"] = spells["event_date"].notna()
    spells["end"] = spells["event_date"].fillna(spells["censor_date"])
    spells["time_days"] = (spells["end"] - spells["start"]).dt.days.clip(lower=0).astype("int64")
    spells["outcome"] = np.select(
        [spells["progressed"], spells["competing_end"].fillna(False).astype(bool)],
        ["progressed", "competing"],
        default="censored",
    )
    return spells[
        ["patient_id", "family", "level", "start", "end", "time_days", "progressed", "outcome"]
    ].reset_index(drop=True)


#: Kaplan-Meier pointwise interval types (R ``survfit(conf.type=...)`` names).
KM_CONF_TYPES = ("log-log", "log", "plain")
#: statsmodels ``quantile_ci`` transform matching each interval type, for the median's interval.
_QUANTILE_CI_METHOD = {"log-log": "cloglog", "log": "log", "plain": "linear"}


def km_interval(
    survival: np.ndarray, se: np.ndarray, *, alpha: float, conf_type: str = "log-log"
) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise Kaplan-Meier interval from the survival and its Greenwood standard error.

    With ``z`` the normal quantile at ``1 - alpha / 2`` and ``s = se / S`` (the Greenwood
    standard error of ``log S``), as R's ``survfit(conf.type=...)``:

    - ``"log-log"`` (hipdata's default): ``exp(-exp(log(-log S) -/+ z s / log S))``, kept
      within (0, 1) without clipping;
    - ``"log"`` (R's default): ``S exp(-/+ z s)``, the upper bound capped at 1;
    - ``"plain"``: ``S -/+ z se``, clipped to [0, 1].

    Where the bound is undefined (``S`` = 0, or a log-log bound at ``S`` = 1) it is NaN.

    Examples
    --------
    >>> low, high = km_interval(np.array([5 / 6]), np.array([0.152145]), alpha=0.05,
    ...                         conf_type="log")
    >>> round(float(low[0]), 4), float(high[0])  # R survfit(conf.type = "log"): 0.5827, 1
    (0.5827, 1.0)
    """
    if conf_type not in KM_CONF_TYPES:
        raise ValueError(f"conf_type must be one of {KM_CONF_TYPES}, not {conf_type!r}")
    z = stats.norm.ppf(1 - alpha / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        se_log = se / survival
        if conf_type == "log-log":
            log_survival = np.log(survival)
            theta_se = se_log / np.abs(log_survival)
            low = np.exp(-np.exp(np.log(-log_survival) + z * theta_se))
            high = np.exp(-np.exp(np.log(-log_survival) - z * theta_se))
        elif conf_type == "log":
            low = survival * np.exp(-z * se_log)
            high = np.minimum(survival * np.exp(z * se_log), 1.0)
        else:
            low = np.clip(survival - z * se, 0.0, 1.0)
            high = np.clip(survival + z * se, 0.0, 1.0)
    undefined = ~np.isfinite(se_log) | (survival <= 0)
    return np.where(undefined, np.nan, low), np.where(undefined, np.nan, high)


def _km_table(
    time: np.ndarray, status: np.ndarray, *, alpha: float, conf_type: str = "log-log"
) -> pd.DataFrame:
    """Product-limit table with pointwise bounds (:func:`km_interval`), starting at day 0.

    A first row (day 0, survival 1) is added unless events happen on day 0, in which case
    statsmodels' own first row already says how far the curve drops there.
    """
    fit = SurvfuncRight(time, status)
    survival = np.asarray(fit.surv_prob, dtype="float64")
    se = np.asarray(fit.surv_prob_se, dtype="float64")
    ci_low, ci_high = km_interval(survival, se, alpha=alpha, conf_type=conf_type)
    table = pd.DataFrame(
        {
            "time_days": np.asarray(fit.surv_times, dtype="float64"),
            "survival": survival,
            "ci_low": ci_low,
            "ci_high": ci_high,
            "at_risk": np.asarray(fit.n_risk, dtype="int64"),
            "events": np.asarray(fit.n_events, dtype="int64"),
        }
    )
    if len(table) and table["time_days"].iloc[0] == 0:
        return table
    start = pd.DataFrame(
        {
            "time_days": [0.0],
            "survival": [1.0],
            "ci_low": [1.0],
            "ci_high": [1.0],
            "at_risk": [len(time)],
            "events": [0],
        }
    )
    return pd.concat([start, table], ignore_index=True) if len(table) else start


def _km_median(
    time: np.ndarray, status: np.ndarray, *, alpha: float, conf_type: str = "log-log"
) -> dict[str, float]:
    fit = SurvfuncRight(time, status)
    method = _QUANTILE_CI_METHOD[conf_type]
    with np.errstate(divide="ignore", invalid="ignore"):
        median = float(fit.quantile(0.5)) if len(fit.surv_prob) else np.nan
        low, high = (
            fit.quantile_ci(0.5, alpha=alpha, method=method)
            if len(fit.surv_prob)
            else (np.nan, np.nan)
        )
    as_float = [np.nan if v is None or not np.isfinite(v) else float(v) for v in (low, high)]
    return {"median_days": median, "ci_low": as_float[0], "ci_high": as_float[1]}


def time_to_next_level(
    family_sessions: pd.DataFrame,
    patients: pd.DataFrame,
    *,
    by_level: bool = False,
    families: Sequence[str] = FAMILIES,
    catalogue: pd.DataFrame | None = None,
    alpha: float = 0.05,
    conf_type: str = "log-log",
) -> TimeToProgression:
    """Kaplan-Meier estimate of the days from reaching a level to first working above it.

    A *spell* starts at a patient's first session at a level of a family and ends with an event
    at their first later session of that family at a higher level; without one it is censored at
    ``discharge_date`` or, while in care, at the patient's last session (see
    :func:`progression_spells`). Curves are pooled over the levels of a family (a patient
    contributes one spell per level; the intervals treat spells as independent) or, with
    ``by_level=True``, given per family and level. Survival is the share still at the level.

    Parameters
    ----------
    family_sessions : DataFrame
        The ``family_sessions`` table (patient_id, family, level, date).
    patients : DataFrame
        The patients table (patient_id, discharge_date).
    by_level : bool
        One curve per family and level instead of per family.
    families : sequence of str
        Families to analyse.
    catalogue : DataFrame, optional
        The exercise catalogue giving each ladder's top level.
    alpha : float
        1 - confidence level: pointwise intervals for the curve, statsmodels' ``quantile_ci`` for
        the median (upper bound empty when not reached).
    conf_type : {"log-log", "log", "plain"}
        The pointwise interval (:func:`km_interval`; R ``survfit(conf.type=...)``). hipdata's
        default is log-log (bounds always inside 0-1 and better coverage in small samples); R's
        default is ``"log"``. The median's interval uses the matching transform (cloglog, log,
        linear).

    Returns
    -------
    TimeToProgression
        ``table`` (family[, level], time_days, survival, ci_low, ci_high, at_risk, events; a
        first row at day 0 with survival 1 unless events happen on day 0; in time order within
        each group), ``medians`` (family[, level], n_spells, n_events, median_days, ci_low,
        ci_high) and ``spells``. ``table.attrs["conf_type"]`` records the interval type.
    """
    spells = progression_spells(family_sessions, patients, families=families, catalogue=catalogue)
    keys = ["family", "level"] if by_level else ["family"]
    curves, medians = [], []
    # one survival fit per family (or family x level): a handful of groups, not a loop over rows
    for group_key, group in spells.groupby(keys, sort=False):
        time = group["time_days"].to_numpy(dtype="float64")
        status = group["progressed"].to_numpy(dtype="int64")
        labels = dict(zip(keys, group_key, strict=True))
        curves.append(_km_table(time, status, alpha=alpha, conf_type=conf_type).assign(**labels))
        medians.append(
            {
                **labels,
                "n_spells": len(group),
                "n_events": int(status.sum()),
                **_km_median(time, status, alpha=alpha, conf_type=conf_type),
            }
        )
    curve_columns = [*keys, "time_days", "survival", "ci_low", "ci_high", "at_risk", "events"]
    median_columns = [*keys, "n_spells", "n_events", "median_days", "ci_low", "ci_high"]
    table = pd.concat(curves, ignore_index=True)[curve_columns] if curves else None
    if table is None:
        table = pd.DataFrame(columns=curve_columns)
    medians_frame = pd.DataFrame(medians, columns=median_columns)
    # a stable sort on family (catalogue order)[, level] and time keeps each curve in time order
    table = _in_family_order(table, [*keys, "time_days"], families)
    table.attrs["conf_type"] = conf_type
    medians_frame = _in_family_order(medians_frame, keys, families)
    return TimeToProgression(table=table, medians=medians_frame, spells=spells)


def _in_family_order(frame: pd.DataFrame, keys: list[str], families: Sequence[str]) -> pd.DataFrame:
    """``frame`` sorted (stably) on ``keys``, the family column in the order of ``families``."""
    order = {family: i for i, family in enumerate(families)}
    return frame.sort_values(
        keys, key=lambda s: s.map(order) if s.name == "family" else s, kind="stable"
    ).reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# competing risks: cumulative incidence of progression
# --------------------------------------------------------------------------------------------
def aalen_johansen(time, cause) -> pd.DataFrame:
    """Aalen-Johansen cumulative incidence of two competing events (right-censored data).

    With the distinct times ``t_j`` at which anything happens, ``n_j`` at risk (time >= t_j),
    ``d1_j`` events of interest (``cause == 1``), ``d2_j`` competing events (``cause == 2``) and
    ``S(t) = prod_{t_j <= t} (1 - (d1_j + d2_j) / n_j)`` the Kaplan-Meier probability of neither
    event so far::

        F1(t) = sum_{t_j <= t} S(t_j-) d1_j / n_j,   F2(t) likewise with d2_j

    so ``F1 + F2 + S = 1``. ``cause == 0`` is censoring (still at risk at its own time, as for
    Kaplan-Meier). This is what R's ``survival::survfit(Surv(time, factor(cause)) ~ 1)`` and
    ``cmprsk::cuminc`` estimate; ``1 - KM`` with competing events censored overstates ``F1``.

    Parameters
    ----------
    time : array-like of float
        Follow-up times (>= 0).
    cause : array-like of int
        0 censored, 1 event of interest, 2 competing event.

    Returns
    -------
    DataFrame
        One row per distinct time (in order): ``time, at_risk, events, competing_events,
        censored, cif, cif_competing, event_free``.

    Examples
    --------
    >>> table = aalen_johansen([3, 5, 5, 7, 8, 10], [1, 2, 1, 0, 1, 2])
    >>> [round(v, 4) for v in table["cif"]]  # 1/6, + 5/6 x 1/5, ..., + 1/2 x 1/2 = 7/12
    [0.1667, 0.3333, 0.3333, 0.5833, 0.5833]
    """
    time = np.asarray(time, dtype="float64")
    cause = np.asarray(cause, dtype="int64")
    if time.shape != cause.shape:
        raise ValueError("time and cause must have the same length")
    if not np.isin(cause, [0, 1, 2]).all():
        raise ValueError("cause must be 0 (censored), 1 (event) or 2 (competing event)")
    times, position = np.unique(time, return_inverse=True)
    counts = np.zeros((len(times), 3), dtype="int64")
    np.add.at(counts, (position, cause), 1)
    leaving = counts.sum(axis=1)
    at_risk = leaving[::-1].cumsum()[::-1]
    d1, d2 = counts[:, 1], counts[:, 2]
    event_free = np.cumprod(1 - (d1 + d2) / at_risk)
    before = np.concatenate([[1.0], event_free[:-1]])
    return pd.DataFrame(
        {
            "time": times,
            "at_risk": at_risk,
            "events": d1,
            "competing_events": d2,
            "censored": counts[:, 0],
            "cif": np.cumsum(before * d1 / at_risk),
            "cif_competing": np.cumsum(before * d2 / at_risk),
            "event_free": event_free,
        }
    )


def progression_incidence(
    family_sessions: pd.DataFrame,
    patients: pd.DataFrame,
    *,
    families: Sequence[str] = FAMILIES,
    catalogue: pd.DataFrame | None = None,
    competing_reasons: Sequence[str] = COMPETING_DISCHARGE_REASONS,
) -> pd.DataFrame:
    """Cumulative incidence of moving up a level, with competing discharge, beside Kaplan-Meier.

    The spells of :func:`progression_spells` (levels of a family pooled): progression is the
    event, discharge for one of ``competing_reasons`` before progressing (default surgery
    referral and drop-out) the competing event, other ends are censored. Per family,
    ``cif_progression`` is the Aalen-Johansen cumulative incidence (:func:`aalen_johansen`): the
    share of spells that have moved up by day t, with patients who left for surgery or dropped out
    counted as never moving up. ``km_progression`` = 1 - Kaplan-Meier with those discharges
    censored, the quantity :func:`time_to_next_level` reports; it answers "how fast would
    patients move up if nobody left", and is never below ``cif_progression``.

    Returns
    -------
    DataFrame
        ``family, time_days, at_risk, events, competing_events, censored, cif_progression,
        cif_competing, km_progression``; a first row at day 0 (0 unless events on day 0), in
        time order within each family (families in the order of ``families``). Point estimates.
    """
    spells = progression_spells(
        family_sessions,
        patients,
        families=families,
        catalogue=catalogue,
        competing_reasons=competing_reasons,
    )
    cause_codes = {"censored": 0, "progressed": 1, "competing": 2}
    columns = [
        "family",
        "time_days",
        "at_risk",
        "events",
        "competing_events",
        "censored",
        "cif_progression",
        "cif_competing",
        "km_progression",
    ]
    curves = []
    # one estimate per family: a handful of groups, not a loop over rows
    for family, group in spells.groupby("family", sort=False):
        time = group["time_days"].to_numpy(dtype="float64")
        cause = group["outcome"].map(cause_codes).to_numpy(dtype="int64")
        table = aalen_johansen(time, cause)
        hazard = table["events"] / table["at_risk"]
        table["km_progression"] = 1 - np.cumprod(1 - hazard)
        table = table.rename(columns={"time": "time_days", "cif": "cif_progression"}).drop(
            columns="event_free"
        )
        if not len(table) or table["time_days"].iloc[0] > 0:
            start = dict.fromkeys(columns[2:], 0)
            start.update(time_days=0.0, at_risk=len(group))
            table = pd.concat([pd.DataFrame([start]), table], ignore_index=True)
        curves.append(table.assign(family=family))
    if not curves:
        return pd.DataFrame(columns=columns)
    result = pd.concat(curves, ignore_index=True)[columns]
    return _in_family_order(result, ["family", "time_days"], families)


# --------------------------------------------------------------------------------------------
# progression rates per clinician / clinic
# --------------------------------------------------------------------------------------------
def progression_rates(
    progressions: pd.DataFrame,
    patients: pd.DataFrame,
    *,
    by: str = "clinician_id",
    patient_summary: pd.DataFrame | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Progression events per clinician (or clinic): on criteria, early, held back.

    Definitions (CONTRACT §4): among ``up`` and ``load_up`` events, the *on-criteria share* is
    those whose ``criterion_before`` is ``met`` over all of them (``unknown`` stays in the
    denominator); *early progressions* are those whose ``criterion_before`` is ``not_met``.
    Held-back episodes are summed from ``patient_summary`` when it is given. Each patient is
    counted under their own ``by`` value in ``patients``; an empty value is grouped as
    ``"not recorded"``.

    Parameters
    ----------
    progressions : DataFrame
        The ``progressions`` table (patient_id, kind, criterion_before).
    patients : DataFrame
        The patients table (patient_id and the ``by`` column).
    by : str
        ``clinician_id`` or ``clinic_id`` (any column of ``patients``).
    patient_summary : DataFrame, optional
        The ``patient_summary`` table, for ``held_back_episodes``.
    alpha : float
        1 - confidence level of the Wilson intervals.

    Returns
    -------
    DataFrame
        One row per group: ``<by>, n_patients, n_up, n_load_up, n_events, n_met, n_unknown,
        on_criteria_share, on_criteria_ci_low, on_criteria_ci_high, n_early, early_share,
        early_ci_low, early_ci_high`` and, with ``patient_summary``, ``held_back_episodes``.

    Examples
    --------
    >>> patients = pd.DataFrame({"patient_id": ["P1"], "clinician_id": ["T1"]})
    >>> events = pd.DataFrame({"patient_id": ["P1"] * 3, "kind": ["up", "load_up", "up"],
    ...                        "criterion_before": ["met", "unknown", "not_met"]})
    >>> rates = progression_rates(events, patients)
    >>> rates[["n_events", "n_met", "n_early"]].iloc[0].tolist(), round(
    ...     float(rates["on_criteria_share"].iloc[0]), 4)
    ([3, 1, 1], 0.3333)
    """
    membership = patients[["patient_id", by]].drop_duplicates("patient_id").copy()
    membership[by] = membership[by].astype("object").fillna(MISSING_GROUP).astype("str")
    forward = progressions.loc[
        progressions["kind"].isin(FORWARD_KINDS), ["patient_id", "kind", "criterion_before"]
    ].merge(membership, on="patient_id", how="left")
    forward[by] = forward[by].fillna(MISSING_GROUP)
    forward = forward.assign(
        is_up=forward["kind"].eq("up"),
        is_load_up=forward["kind"].eq("load_up"),
        is_met=forward["criterion_before"].eq("met"),
        is_unknown=forward["criterion_before"].eq("unknown"),
        is_early=forward["criterion_before"].eq("not_met"),
    )
    counts = forward.groupby(by).agg(
        n_up=("is_up", "sum"),
        n_load_up=("is_load_up", "sum"),
        n_events=("kind", "size"),
        n_met=("is_met", "sum"),
        n_unknown=("is_unknown", "sum"),
        n_early=("is_early", "sum"),
    )
    table = membership.groupby(by).size().rename("n_patients").to_frame()
    table = table.join(counts, how="outer").fillna(0).astype("int64")
    denominator = table["n_events"].where(table["n_events"] > 0)
    table["on_criteria_share"] = table["n_met"] / denominator
    table["on_criteria_ci_low"], table["on_criteria_ci_high"] = wilson_ci(
        table["n_met"], table["n_events"], alpha=alpha
    )
    table["early_share"] = table["n_early"] / denominator
    table["early_ci_low"], table["early_ci_high"] = wilson_ci(
        table["n_early"], table["n_events"], alpha=alpha
    )
    columns = [
        "n_patients",
        "n_up",
        "n_load_up",
        "n_events",
        "n_met",
        "n_unknown",
        "on_criteria_share",
        "on_criteria_ci_low",
        "on_criteria_ci_high",
        "n_early",
        "early_share",
        "early_ci_low",
        "early_ci_high",
    ]
    table = table[columns]
    if patient_summary is not None:
        held_back = (
            patient_summary[["patient_id", "held_back_episodes"]]
            .merge(membership, on="patient_id", how="left")
            .fillna({by: MISSING_GROUP})
            .groupby(by)["held_back_episodes"]
            .sum(min_count=1)
        )
        table = table.join(held_back, how="left")
    return table.rename_axis(by).reset_index()
