"""The researcher's cohort report: one :class:`~hipdata.report.document.Document`, section by section.

:func:`build_cohort_report` makes the whole report; the notebook ``notebooks/cohort_report.ipynb``
builds the same document cell by cell with :func:`make_context`, :func:`new_document` and one
``section_*`` function per section (each adds its blocks to the document, so the notebook and the
PDF show the same figures and tables):

=============================  ===================================================================
section                        contents
=============================  ===================================================================
:func:`section_table_one`      patients by clinic: counts, mean (SD), median [IQR], missing, SMD
:func:`section_patient_flow`   enrolled -> treated -> completed / dropped out / referred / ...
:func:`section_dose_volume`    weekly volume load and ladder level by week of care
:func:`section_pain_trajectory` weekly pain and the mixed model of pain_24h over weeks
:func:`section_pain_response`  pain 24 h after against the rise in volume; dose-response slope
:func:`section_progression`    ladder funnel, Kaplan-Meier time to the next level, on-criteria
:func:`section_adherence`      attendance, completion, pain-threshold and dose adherence, activity
:func:`section_outcomes`       responders (Wilson CIs), mean change, the outcome mixed models
:func:`section_association`    improvement against attendance (OLS, HC3 errors)
:func:`section_data_quality`   quarantine, missing pain and follow-up, model fallbacks
:func:`section_definitions`    every definition, with the parameter values used
=============================  ===================================================================

Disclosure control (the reports issue, :mod:`hipdata.disclosure`)
----------------------------------------------------------------------
- No patient id, date of birth or free text appears: tables hold aggregates only, quarantine
  reasons are shown as generalised categories (quoted values and numbers removed).
- Every count from 1 to ``k - 1`` is shown as ``"<k"``; counts a reader could work out from the
  published totals are suppressed too (``"*"``, secondary suppression with
  :func:`~hipdata.disclosure.protect_cells`). A share's complement (denominator minus
  numerator) is a count the published pair reveals, so it obeys the same rule. Percentages and
  means over a suppressed count, or over fewer than ``k`` patients, are shown as ``"*"``.
- Figures leave out groups, weeks and bins with fewer than ``k`` patients (captions say so), and
  Kaplan-Meier curves stop where fewer than ``k`` spells remain at risk.
- Counts inside sentences follow the same primary rule.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

import hipdata
from hipdata.analysis.adherence import completion
from hipdata.analysis.models import MixedModelFit
from hipdata.analysis.outcomes import (
    SEX_NOT_RECORDED,
    adherence_outcome_association,
    followup_completeness,
    mean_change,
    outcome_mixed_model,
    responder_rates,
    responder_sensitivity,
)
from hipdata.analysis.progression import (
    COMPETING_DISCHARGE_REASONS,
    ladder_funnel,
    progression_incidence,
    progression_rates,
    time_to_next_level,
)
from hipdata.analysis.response import (
    DOSE_RESPONSE_STEP_PCT,
    dose_response_slope,
    dose_response_within_between,
    pain_response_curve,
)
from hipdata.analysis.trajectories import fit_pain_trajectory, weekly_pain
from hipdata.dataset import Dataset
from hipdata.disclosure import (
    SECONDARY_MARKER,
    primary_marker,
    protect_cells,
    small_count_mask,
)
from hipdata.metrics import compute_all
from hipdata.outcome_measures import MEASURES, Measure
from hipdata.plots.pain import plot_pain_trajectory
from hipdata.plots.progress import (
    family_label,
    plot_adherence,
    plot_cumulative_incidence,
    plot_ladder_funnel,
    plot_level_progression,
    plot_pain_response,
    plot_time_to_progression,
    plot_volume_progression,
)
from hipdata.protocol import (
    BASELINE_WINDOW_DAYS,
    COMPLETION_ATTENDANCE,
    CRITERION_HOLD_MAX_S,
    CRITERION_HOLD_S,
    CRITERION_REPS,
    CRITERION_REPS_MAX,
    CRITERION_SETS,
    FOLLOWUP_WINDOW_DAYS,
    HELD_BACK_SESSIONS,
    PAIN_THRESHOLD,
    PRE_START_DAYS,
    SUPPRESSION_K,
    WHO_CARDIO_MIN,
    WHO_STRENGTH_SESSIONS,
    Protocol,
)
from hipdata.report.document import Document

#: Section headings, in report order (the tests and the notebook use them).
SECTION_TITLES = {
    "patient_flow": "1. Patient flow",
    "table_one": "2. Patients by clinic (Table 1)",
    "dose_volume": "3. Training dose and volume",
    "pain_trajectory": "4. Pain over the weeks of care",
    "pain_response": "5. Pain response to rises in volume",
    "progression": "6. Progression along the exercise ladders",
    "adherence": "7. Adherence",
    "outcomes": "8. Outcomes and responders",
    "association": "9. Adherence and outcome",
    "data_quality": "10. Data quality",
    "definitions": "Appendix: definitions",
}
REPORT_TITLE = "Cohort report"
#: Average days in a calendar month (365.25 / 12), to turn weekly slopes into monthly ones.
DAYS_PER_MONTH = 365.25 / 12
#: Label of the all-clinics column and row.
ALL_CLINICS = "All"
#: Measures whose baseline Table 1 shows (when present in the data).
TABLE_ONE_MEASURES = (
    "nprs",
    "hoos_pain",
    "hoos_symptoms",
    "hoos_adl",
    "hoos_sport",
    "hoos_qol",
    "ihot12",
)
_CONDITION_LABELS = {
    "hip_oa": "Hip osteoarthritis",
    "fai_syndrome": "FAI syndrome",
    "gtps": "Greater trochanteric pain",
    "groin_adductor": "Adductor-related groin pain",
    "other": "Other",
}
_SEX_LABELS = {"F": "Female", "M": "Male", "X": "X (diverse)"}
_MISSING = "Not recorded"
_DASH = "–"


# ------------------------------------------------------------------------------------------------
# context
# ------------------------------------------------------------------------------------------------
@dataclass
class CohortContext:
    """The cohort a report describes: the filtered dataset, its metric tables and the settings.

    Attributes
    ----------
    ds : Dataset
        The dataset restricted to the patients in the report (start_date in the date range, clinic
        in ``clinics``); its other tables keep only those patients' rows. ``quarantine`` and
        ``load_report`` describe the whole input.
    tables : dict of str to DataFrame
        :func:`hipdata.metrics.compute_all` tables of those patients.
    start, end : Timestamp or None
        The date range applied to ``start_date`` (inclusive).
    clinics : list of str
        Clinics in the report.
    k : int
        Smallest count shown (counts 1..k-1 are shown as ``"<k"``).
    params : dict
        Metric and protocol parameters (pain threshold, criterion, MCIDs via ``measures``, ...).
    source : str
        The data folder's name (never a full path).
    n_input_patients : int
        Patients in the input before the filters.
    results : dict
        Analyses computed once and shared by sections (model fits, curves).
    """

    ds: Dataset
    tables: dict[str, pd.DataFrame]
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    clinics: list[str]
    k: int
    params: dict
    source: str
    n_input_patients: int
    results: dict = field(default_factory=dict)

    @property
    def measures(self) -> dict[str, Measure]:
        return self.params["measures"]

    def cached(self, key: str, compute):
        """``results[key]``, computed by ``compute()`` the first time it is asked for."""
        if key not in self.results:
            self.results[key] = compute()
        return self.results[key]


def _as_timestamp(value) -> pd.Timestamp | None:
    return None if value is None else pd.Timestamp(value).normalize()


def _source_name(source: str) -> str:
    """The data folder's own name: ``/home/someone/study/demo`` -> ``demo``."""
    name = Path(str(source)).name if source else ""
    return name or "data frames"


def make_context(
    ds: Dataset,
    tables: dict[str, pd.DataFrame] | None = None,
    *,
    start=None,
    end=None,
    clinics: Sequence[str] | None = None,
    k: int = SUPPRESSION_K,
    pain_threshold: float = PAIN_THRESHOLD,
    criterion_sets: int = CRITERION_SETS,
    criterion_reps: float = CRITERION_REPS,
    criterion_hold_s: float = CRITERION_HOLD_S,
    held_back_sessions: int = HELD_BACK_SESSIONS,
    completion_attendance: float = COMPLETION_ATTENDANCE,
    who_cardio_min: float = WHO_CARDIO_MIN,
    who_strength_sessions: float = WHO_STRENGTH_SESSIONS,
    measures: dict[str, Measure] | None = None,
    baseline_window_days: tuple[int, int] = BASELINE_WINDOW_DAYS,
    followup_window_days: tuple[int, int] = FOLLOWUP_WINDOW_DAYS,
    responder_rule: str = "or",
    km_conf_type: str = "log-log",
) -> CohortContext:
    """Restrict a dataset to the report's patients and compute (or filter) its metric tables.

    A patient is in the report when their ``start_date`` lies in ``[start, end]`` (either end
    open when None) and their ``clinic_id`` is in ``clinics`` (all clinics when None). Every other
    table keeps the rows of those patients. When ``tables`` (from :func:`compute_all`) are given
    they are filtered the same way instead of recomputed; they must have been computed with the
    same parameters.

    Parameters
    ----------
    ds : Dataset
        The loaded cohort (:func:`hipdata.load`).
    tables : dict, optional
        Precomputed :func:`hipdata.metrics.compute_all` tables of ``ds``.
    start, end : date-like, optional
        Date range on ``start_date`` (inclusive).
    clinics : sequence of str, optional
        Clinic ids to report.
    k : int
        Suppression threshold: counts 1..k-1 are shown as ``"<k"``.
    pain_threshold, criterion_sets, criterion_reps, criterion_hold_s, held_back_sessions,
    who_cardio_min, who_strength_sessions, measures, baseline_window_days, followup_window_days,
    responder_rule
        Passed to :func:`compute_all`; defaults from :mod:`hipdata.protocol` (``responder_rule``:
        ``"or"``, either MCID suffices; ``"and"``, both are needed).
    completion_attendance : float
        Attendance share that counts as completing the programme.
    km_conf_type : {"log-log", "log", "plain"}
        Kaplan-Meier pointwise interval (R ``survfit`` ``conf.type``; R's default is ``"log"``).

    Returns
    -------
    CohortContext
    """
    start_ts, end_ts = _as_timestamp(start), _as_timestamp(end)
    patients = ds.patients
    keep = pd.Series(True, index=patients.index)
    if start_ts is not None:
        keep &= patients["start_date"] >= start_ts
    if end_ts is not None:
        keep &= patients["start_date"] <= end_ts
    if clinics is not None:
        keep &= patients["clinic_id"].isin([str(c) for c in clinics])
    ids = patients.loc[keep, "patient_id"]

    def only(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.loc[frame["patient_id"].isin(ids)].reset_index(drop=True)

    filtered = Dataset(
        patients=only(patients),
        sets=only(ds.sets),
        activity=only(ds.activity),
        outcomes=only(ds.outcomes),
        treatments=only(ds.treatments),
        quarantine=ds.quarantine,
        load_report=ds.load_report,
        catalogue=ds.catalogue,
        input_hash=ds.input_hash,
        source=ds.source,
        meta=dict(ds.meta),
    )
    params = {
        "pain_threshold": pain_threshold,
        "criterion_sets": criterion_sets,
        "criterion_reps": criterion_reps,
        "criterion_hold_s": criterion_hold_s,
        "held_back_sessions": held_back_sessions,
        "who_cardio_min": who_cardio_min,
        "who_strength_sessions": who_strength_sessions,
        "measures": MEASURES if measures is None else measures,
        "baseline_window_days": baseline_window_days,
        "followup_window_days": followup_window_days,
        "completion_attendance": completion_attendance,
        "responder_rule": responder_rule,
        "km_conf_type": km_conf_type,
    }
    if tables is None:
        protocol = Protocol(**{name: params[name] for name in Protocol.names() if name in params})
        tables = compute_all(filtered, protocol, measures=params["measures"])
    else:
        tables = {name: only(table) for name, table in tables.items()}
    clinic_list = sorted(filtered.patients["clinic_id"].astype(str).unique())
    return CohortContext(
        ds=filtered,
        tables=tables,
        start=start_ts,
        end=end_ts,
        clinics=clinic_list,
        k=int(k),
        params=params,
        source=_source_name(ds.source),
        n_input_patients=len(patients),
    )


# ------------------------------------------------------------------------------------------------
# formatting and disclosure helpers
# ------------------------------------------------------------------------------------------------
def _is_small(value, k: int) -> bool:
    return bool(pd.notna(value) and small_count_mask(float(value), k=k))


def format_count(value, k: int = SUPPRESSION_K) -> str:
    """A count for people: ``4,610``; ``"<k"`` for 1..k-1; empty when missing."""
    if pd.isna(value):
        return ""
    if _is_small(value, k):
        return primary_marker(k)
    return f"{int(round(float(value))):,}"


def format_number(value, decimals: int = 1) -> str:
    """A decimal for people (``2.1``, ``-0.4``); an en dash when missing."""
    if value is None or pd.isna(value) or not np.isfinite(float(value)):
        return _DASH
    text = f"{float(value):,.{decimals}f}"
    # "-0.0" reads as a signed zero: print it as plain zero
    return text.removeprefix("-") if float(text.replace(",", "")) == 0 else text


def format_interval(low, high, decimals: int = 1, *, percent: bool = False) -> str:
    """``"1.2 to 3.4"`` (``"41% to 55%"`` as percentages of proportions)."""
    if pd.isna(low) or pd.isna(high):
        return _DASH
    if percent:
        return f"{100 * low:.0f}% to {100 * high:.0f}%"
    return f"{format_number(low, decimals)} to {format_number(high, decimals)}"


def format_p(value) -> str:
    """A p-value: ``<0.001`` or three decimals."""
    if pd.isna(value):
        return _DASH
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def scrub_small_numbers(text: str, k: int = SUPPRESSION_K) -> str:
    """Replace stand-alone whole numbers 1..k-1 in a sentence by ``"<k"`` (model notes, remarks)."""

    def replace(match: re.Match) -> str:
        return primary_marker(k) if 1 <= int(match.group(0)) <= k - 1 else match.group(0)

    return re.sub(r"(?<![\w.\-,])\d+(?![\w.%,]|\.\d)", replace, text)


def protect_counts(
    values: pd.Series, lines: Sequence[tuple[str, Sequence[str]]] = (), *, k: int = SUPPRESSION_K
) -> tuple[pd.Series, pd.Series]:
    """Primary and secondary suppression of named counts related by additive lines.

    Parameters
    ----------
    values : Series
        Counts by cell name. Cells that are not printed but that a reader can work out (the
        complement of a share) belong here too, so that they are protected like the others.
    lines : sequence of (total, members)
        ``values[total] == sum(values[members])`` for each line.
    k : int
        Counts 1..k-1 are suppressed.

    Returns
    -------
    display, mask : Series
        Display strings (``"<k"`` primary, ``"*"`` secondary, else the formatted count) and the
        suppression mask, both indexed like ``values``.
    """
    names = list(values.index)
    position = {name: i for i, name in enumerate(names)}
    numbers = values.astype("float64").to_numpy()
    primary = (numbers >= 1) & (numbers <= k - 1)
    cells = pd.DataFrame(
        {
            "value": numbers,
            "suppressed": primary,
            "lo": np.where(primary, 1.0, np.nan),
            "hi": np.where(primary, k - 1.0, np.nan),
        }
    )
    line_rows = [
        (number, position[cell], sign)
        for number, (total, members) in enumerate(lines)
        for cell, sign in [(total, -1), *((member, 1) for member in members)]
    ]
    if line_rows:
        line_frame = pd.DataFrame(line_rows, columns=["line", "cell", "sign"])
        # k: the lines are also attacked together as an integer program (protect_cells)
        cells = protect_cells(cells, line_frame, secondary_bounds=(float(k), np.inf), k=k)
    else:
        cells["secondary"] = False
    mask = pd.Series(cells["suppressed"].to_numpy(), index=values.index)
    secondary = pd.Series(cells["secondary"].to_numpy(), index=values.index)
    display = values.map(lambda v: format_count(v, k))
    display = display.mask(mask, primary_marker(k)).mask(secondary, SECONDARY_MARKER)
    return display, mask


def _n_pct(display: str, suppressed: bool, n, denominator, denominator_hidden: bool) -> str:
    """``"62 (48%)"``; the percentage left out when either count is suppressed."""
    if suppressed or denominator_hidden or pd.isna(denominator) or denominator <= 0:
        return display
    return f"{display} ({100 * n / denominator:.0f}%)"


def _share_cells(
    numerator: pd.Series, denominator: pd.Series, *, k: int, total: str | None = None
) -> pd.DataFrame:
    """``n (%)`` cells for shares per group, the complement protected, with a total row.

    ``numerator`` and ``denominator`` are indexed by group; ``total`` names the row holding the
    sums over the groups (then every column is a line too).
    """
    groups = list(numerator.index)
    values = pd.concat(
        [
            numerator.rename(lambda g: ("num", g)),
            denominator.rename(lambda g: ("den", g)),
            (denominator - numerator).rename(lambda g: ("rest", g)),
        ]
    )
    values.index = [f"{kind}|{group}" for kind, group in values.index]
    lines = [(f"den|{g}", [f"num|{g}", f"rest|{g}"]) for g in groups]
    if total is not None:
        others = [g for g in groups if g != total]
        lines += [
            (f"{kind}|{total}", [f"{kind}|{g}" for g in others]) for kind in ("num", "den", "rest")
        ]
    display, mask = protect_counts(values, lines, k=k)
    rows = []
    for group in groups:
        num_hidden = bool(mask[f"num|{group}"])
        den_hidden = bool(mask[f"den|{group}"])
        rows.append(
            {
                "group": group,
                "numerator": _n_pct(
                    display[f"num|{group}"],
                    num_hidden,
                    numerator[group],
                    denominator[group],
                    den_hidden,
                ),
                "denominator": display[f"den|{group}"],
                "hidden": num_hidden or den_hidden,
            }
        )
    return pd.DataFrame(rows).set_index("group")


def _plain_count(value, k: int) -> str:
    """A count inside a sentence (primary suppression only)."""
    return format_count(value, k)


def _new_figure(width: float = 7.0, height: float = 4.2) -> tuple[Figure, plt.Axes]:
    figure, ax = plt.subplots(figsize=(width, height), layout="constrained")
    return figure, ax


def _signed_change(value: float, unit: str, decimals: int = 1) -> str:
    """``"fell by 0.4 points"`` / ``"rose by 0.4 points"`` / ``"stayed level"``."""
    if pd.isna(value):
        return "could not be estimated"
    if round(abs(value), decimals) == 0:
        return f"stayed level (change {abs(value):.{decimals + 1}f} {unit})"
    verb = "rose" if value > 0 else "fell"
    return f"{verb} by {abs(value):.{decimals}f} {unit}"


# ------------------------------------------------------------------------------------------------
# document and title block
# ------------------------------------------------------------------------------------------------
def _date_range_text(ctx: CohortContext) -> str:
    starts = ctx.ds.patients["start_date"]
    # month and year only: the exact first and last start dates each belong to one patient
    observed = f"{starts.min():%b %Y} to {starts.max():%b %Y}" if len(starts) else "no patients"
    if ctx.start is None and ctx.end is None:
        return f"all start dates (care started {observed})"
    low = "any date" if ctx.start is None else f"{ctx.start:%Y-%m-%d}"
    high = "any date" if ctx.end is None else f"{ctx.end:%Y-%m-%d}"
    return f"start of care from {low} to {high} (observed {observed})"


def parameters_text(ctx: CohortContext) -> str:
    """The report's parameters in one line: pain limit, criterion, MCIDs, k."""
    p = ctx.params
    mcids = "; ".join(_mcid_text(m, p["responder_rule"]) for m in ctx.measures.values())
    return (
        f"pain limit {p['pain_threshold']:g}/10; progression criterion {p['criterion_sets']} x "
        f"{p['criterion_reps']:g}-{CRITERION_REPS_MAX} reps or {p['criterion_sets']} x "
        f"{p['criterion_hold_s']:g}-{CRITERION_HOLD_MAX_S:g} s; completion at "
        f"{100 * p['completion_attendance']:g}% attendance; MCIDs: {mcids} "
        f"({_RULE_TEXT[p['responder_rule']]}); Kaplan-Meier intervals {p['km_conf_type']}; "
        f"small counts suppressed below k = {ctx.k}"
    )


#: How each ``responder_rule`` reads in the report.
_RULE_TEXT = {"or": "either MCID suffices", "and": "both MCIDs needed"}


def _mcid_text(measure: Measure, rule: str = "or") -> str:
    text = f"{measure.label or measure.name} {measure.mcid_points:g}"
    if measure.mcid_pct is not None:
        text += f" {rule} {measure.mcid_pct:g}%"
    return text


def new_document(
    ctx: CohortContext, *, generated: dt.date | None = None, show: bool | None = None
) -> Document:
    """An empty cohort report with its title block filled in.

    Parameters
    ----------
    ctx : CohortContext
        The report's cohort.
    generated : date, optional
        Generation date (default today); also the PDF's creation date, so the same date gives
        the same bytes.
    show : bool, optional
        Display blocks as they are added (default: only when running in a notebook).
    """
    generated = dt.date.today() if generated is None else pd.Timestamp(generated).date()
    n = len(ctx.ds.patients)
    fields = {
        "Data source": ctx.source,
        "Date range": _date_range_text(ctx),
        "Clinics": ", ".join(ctx.clinics) if ctx.clinics else "none",
        "Patients": f"{format_count(n, ctx.k)} of {format_count(ctx.n_input_patients, ctx.k)} "
        "in the input",
        "Generated": f"{generated:%Y-%m-%d}",
        "hipdata version": hipdata.__version__,
        "Input hash": (ctx.ds.input_hash[:12] or "none (built from data frames)"),
        "Parameters": parameters_text(ctx),
    }
    subtitle = f"{ctx.source}: {format_count(n, ctx.k)} patients in {len(ctx.clinics)} clinics"
    kwargs = {} if show is None else {"show": show}
    return Document(REPORT_TITLE, subtitle, fields, generated, **kwargs)


# ------------------------------------------------------------------------------------------------
# 1. Table 1
# ------------------------------------------------------------------------------------------------
def smd_continuous(mean_a, sd_a, mean_b, sd_b) -> float:
    """Standardised mean difference of a continuous variable: ``|m_a - m_b| / sqrt((s_a² + s_b²)/2)``."""
    pooled = np.sqrt((sd_a**2 + sd_b**2) / 2)
    return float(abs(mean_a - mean_b) / pooled) if pooled > 0 else np.nan


def smd_categorical(p_a: Sequence[float], p_b: Sequence[float]) -> float:
    """Standardised difference of a categorical variable (Yang & Dalton 2012).

    With the level shares ``p_a`` and ``p_b`` (summing to 1; the first level is the reference and
    dropped), ``T = p_a - p_b`` over the other levels and ``S`` the pooled covariance of the
    multinomial indicators (``S_kk = (p_ak(1 - p_ak) + p_bk(1 - p_bk)) / 2``, ``S_kl = -(p_ak p_al
    + p_bk p_bl) / 2``): ``SMD = sqrt(T' S^-1 T)`` (a pseudo-inverse when S is singular). For two
    levels this is ``|p_a - p_b| / sqrt((p_a(1 - p_a) + p_b(1 - p_b)) / 2)``.
    """
    a = np.asarray(p_a, dtype=float)[1:]
    b = np.asarray(p_b, dtype=float)[1:]
    if a.size == 0:
        return np.nan
    difference = a - b
    covariance = -(np.outer(a, a) + np.outer(b, b)) / 2
    np.fill_diagonal(covariance, (a * (1 - a) + b * (1 - b)) / 2)
    value = float(difference @ np.linalg.pinv(covariance) @ difference)
    return float(np.sqrt(value)) if value >= 0 else np.nan


def _largest_smd(values: list[float]) -> float:
    finite = [v for v in values if pd.notna(v)]
    return max(finite) if finite else np.nan


def _table_one_variables(ctx: CohortContext) -> tuple[pd.DataFrame, list, list]:
    """Per-patient columns of Table 1 and their (name, label, levels) descriptions."""
    patients = ctx.ds.patients
    frame = pd.DataFrame(
        {
            "clinic": patients["clinic_id"].astype(str).to_numpy(),
            "age": pd.to_numeric(patients["age_years"]).astype("float64").to_numpy(),
            "sex": patients["sex"]
            .astype("object")
            .where(patients["sex"].isin(list(_SEX_LABELS)))
            .to_numpy(),
            # free text outside the known vocabulary is never printed: it counts as "other"
            "condition": patients["condition"]
            .astype("object")
            .where(
                patients["condition"].isna() | patients["condition"].isin(list(_CONDITION_LABELS)),
                "other",
            )
            .to_numpy(),
            "athlete": patients["athlete"]
            .astype("boolean")
            .map({True: "Yes", False: "No"}, na_action="ignore")
            .astype("object")
            .to_numpy(),
        },
        index=patients["patient_id"].to_numpy(),
    )
    frame = frame.where(frame.notna(), None)
    categorical = [
        ("sex", "Sex", list(_SEX_LABELS)),
        (
            "condition",
            "Condition",
            [c for c in _CONDITION_LABELS if (frame["condition"] == c).any()],
        ),
        ("athlete", "Athlete", ["Yes", "No"]),
    ]
    continuous = [("age", "Age, years")]
    change = ctx.tables["outcome_change"]
    for name in TABLE_ONE_MEASURES:
        if name not in ctx.measures or not (change["measure"] == name).any():
            continue
        baseline = change.loc[change["measure"] == name].set_index("patient_id")["baseline"]
        frame[f"baseline_{name}"] = baseline.reindex(frame.index).astype("float64").to_numpy()
        label = ctx.measures[name].label or name
        continuous.append((f"baseline_{name}", f"Baseline {label}"))
    return frame, categorical, continuous


def table_one(ctx: CohortContext) -> pd.DataFrame:
    """Table 1: patient characteristics by clinic, through disclosure control.

    Categorical variables: ``n (%)`` of the clinic's patients (missing shown as its own row, so the
    shares of a clinic add to 100 %). Continuous variables: mean (SD) and median [IQR] over the
    patients with a value, and the number missing. ``SMD`` is the largest standardised mean
    difference between any two clinics with at least ``k`` patients (:func:`smd_continuous`,
    :func:`smd_categorical`; missing values left out); 0.1 is the usual mark of imbalance.

    All counts of the table (clinic sizes, category counts, missing counts and the numbers of
    patients with a value) are suppressed together in one system of lines (each clinic's levels
    add up to its patients; each row's clinics add up to the All column).

    Returns
    -------
    DataFrame
        Display strings: ``Characteristic``, one column per clinic, ``All``, ``SMD``.
    """
    k = ctx.k
    frame, categorical, continuous = _table_one_variables(ctx)
    clinics = ctx.clinics
    columns = [*clinics, ALL_CLINICS]
    counts: dict[str, float] = {}
    lines: list[tuple[str, list[str]]] = []

    def per_clinic(mask: pd.Series) -> pd.Series:
        by_clinic = mask.groupby(frame["clinic"]).sum().reindex(clinics, fill_value=0)
        return pd.concat([by_clinic, pd.Series({ALL_CLINICS: int(mask.sum())})])

    def add_group(prefix: str, parts: dict[str, pd.Series], *, add_to_n: bool = True) -> None:
        """Counts per clinic for the parts of a variable (``add_to_n``: they add up to N)."""
        for part, series in parts.items():
            for column, value in series.items():
                counts[f"{prefix}|{part}|{column}"] = float(value)
        if add_to_n:
            for column in columns:
                lines.append((f"N||{column}", [f"{prefix}|{part}|{column}" for part in parts]))
        for part in parts:
            lines.append(
                (
                    f"{prefix}|{part}|{ALL_CLINICS}",
                    [f"{prefix}|{part}|{column}" for column in clinics],
                )
            )

    n_series = per_clinic(pd.Series(True, index=frame.index))
    for column, value in n_series.items():
        counts[f"N||{column}"] = float(value)
    lines.append((f"N||{ALL_CLINICS}", [f"N||{c}" for c in clinics]))
    for name, _, levels in categorical:
        parts = {level: per_clinic(frame[name] == level) for level in levels}
        parts[_MISSING] = per_clinic(frame[name].isna())
        add_group(name, parts)
    for name, _ in continuous:
        # Only the missing count is printed: the number with a value (N - missing) is not, so it
        # is no line member; a mean is shown when that number is at least k.
        add_group(name, {_MISSING: per_clinic(frame[name].isna())}, add_to_n=False)
    values = pd.Series(counts)
    display, mask = protect_counts(values, lines, k=k)
    n_hidden = {c: bool(mask[f"N||{c}"]) for c in columns}
    n_value = {c: values[f"N||{c}"] for c in columns}
    large = [c for c in clinics if not n_hidden[c] and n_value[c] >= k]

    rows = [{"Characteristic": "Patients", **{c: display[f"N||{c}"] for c in columns}, "SMD": ""}]
    for name, label, levels in categorical:
        shares = {
            c: frame.loc[frame["clinic"] == c, name].value_counts(normalize=True).reindex(levels)
            for c in large
        }
        smd = _largest_smd(
            [
                smd_categorical(shares[a].fillna(0).to_numpy(), shares[b].fillna(0).to_numpy())
                for a, b in combinations(large, 2)
            ]
        )
        rows.append({"Characteristic": f"{label}, n (%)", **dict.fromkeys(columns, "")})
        rows[-1]["SMD"] = format_number(smd, 2)
        shown_levels = [*levels, _MISSING]
        for level in shown_levels:
            keys = {c: f"{name}|{level}|{c}" for c in columns}
            if level == _MISSING and values[keys[ALL_CLINICS]] == 0:
                continue
            text = _SEX_LABELS.get(level) if name == "sex" else None
            text = text or (_CONDITION_LABELS.get(level, level) if name == "condition" else level)
            rows.append(
                {
                    "Characteristic": f"    {text}",
                    **{
                        c: _n_pct(
                            display[keys[c]],
                            bool(mask[keys[c]]),
                            values[keys[c]],
                            n_value[c],
                            n_hidden[c],
                        )
                        for c in columns
                    },
                    "SMD": "",
                }
            )
    for name, label in continuous:
        stats = frame.groupby("clinic")[name].agg(["mean", "std", "median", "count"])
        stats["q1"] = frame.groupby("clinic")[name].quantile(0.25)
        stats["q3"] = frame.groupby("clinic")[name].quantile(0.75)
        overall = frame[name]
        stats.loc[ALL_CLINICS] = [
            overall.mean(),
            overall.std(),
            overall.median(),
            overall.count(),
            overall.quantile(0.25),
            overall.quantile(0.75),
        ]
        stats = stats.reindex(columns)
        smd = _largest_smd(
            [
                smd_continuous(
                    stats.at[a, "mean"], stats.at[a, "std"], stats.at[b, "mean"], stats.at[b, "std"]
                )
                for a, b in combinations(large, 2)
            ]
        )

        shown = {c: stats.at[c, "count"] >= k and not n_hidden[c] for c in columns}

        decimals = 0 if name == "age" else 1
        rows.append(
            {
                "Characteristic": f"{label}, mean (SD)",
                **{
                    c: (
                        f"{format_number(stats.at[c, 'mean'], decimals)} "
                        f"({format_number(stats.at[c, 'std'], decimals)})"
                        if shown[c]
                        else SECONDARY_MARKER
                    )
                    for c in columns
                },
                "SMD": format_number(smd, 2),
            }
        )
        rows.append(
            {
                "Characteristic": "    median [IQR]",
                **{
                    c: (
                        f"{format_number(stats.at[c, 'median'], decimals)} "
                        f"[{format_number(stats.at[c, 'q1'], decimals)}, "
                        f"{format_number(stats.at[c, 'q3'], decimals)}]"
                        if shown[c]
                        else SECONDARY_MARKER
                    )
                    for c in columns
                },
                "SMD": "",
            }
        )
        rows.append(
            {
                "Characteristic": "    missing, n",
                **{c: display[f"{name}|{_MISSING}|{c}"] for c in columns},
                "SMD": "",
            }
        )
    return pd.DataFrame(rows, columns=["Characteristic", *columns, "SMD"])


def _suppression_note(k: int) -> str:
    if k <= 1:  # --audience internal
        return "No small-cell suppression: internal report, not for circulation."
    return (
        f"{primary_marker(k)}: a count from 1 to {k - 1}, suppressed; {SECONDARY_MARKER}: "
        f"suppressed so that a small count cannot be worked out from the totals, or a figure "
        f"over fewer than {k} patients."
    )


def section_table_one(ctx: CohortContext, doc: Document) -> None:
    """Section 1: Table 1 by clinic, with a reading of the largest imbalances."""
    table = table_one(ctx)
    doc.heading(SECTION_TITLES["table_one"])
    smd = pd.to_numeric(table["SMD"].replace(_DASH, np.nan), errors="coerce")
    labelled = table.assign(smd=smd).dropna(subset=["smd"])
    imbalanced = labelled.loc[labelled["smd"] >= 0.1]
    n = len(ctx.ds.patients)
    text = f"The report covers {format_count(n, ctx.k)} patients in {len(ctx.clinics)} clinics. "
    if imbalanced.empty:
        text += (
            "No characteristic differs between clinics by a standardised mean difference of 0.1 "
            "or more, so the clinics' case mixes look alike."
        )
    else:
        worst = imbalanced.sort_values("smd", ascending=False).head(3)
        listed = ", ".join(
            f"{row.Characteristic.split(',')[0].strip().lower()} (SMD {row.smd:.2f})"
            for row in worst.itertuples()
        )
        text += (
            f"{len(imbalanced)} of {len(labelled)} characteristics differ between at least two "
            f"clinics by an SMD of 0.1 or more, most of all {listed}; comparisons between clinics "
            "should allow for these differences in case mix."
        )
    doc.paragraph(text)
    doc.table(
        table,
        caption="Patient characteristics at the start of care, by clinic.",
        note=(
            "Shares are of the clinic's patients (missing values included). SMD: the largest "
            "standardised mean difference between two clinics (categorical: Yang & Dalton); "
            "baseline scores are the questionnaires closest to the start of care. "
            + _suppression_note(ctx.k)
        ),
        # portrait pages wrap every label and interval of the six columns
        landscape=True,
    )


# ------------------------------------------------------------------------------------------------
# 2. patient flow
# ------------------------------------------------------------------------------------------------
#: Stages of the patient flow: (key, label, parent key).
FLOW_STAGES = (
    ("enrolled", "Enrolled (start of care in the report's range)", None),
    ("not_treated", "No exercise session recorded", "enrolled"),
    ("treated", "Treated (at least one session)", "enrolled"),
    ("completed", "Discharged: completed", "treated"),
    ("dropped_out", "Discharged: dropped out", "treated"),
    ("referred", "Discharged: referred (injection or surgery)", "treated"),
    ("other", "Discharged: other or reason not recorded", "treated"),
    ("in_care", "Still in care", "treated"),
    ("followup", "Discharged with a follow-up questionnaire", "treated"),
    ("no_followup", "Discharged without a follow-up questionnaire", "treated"),
)


def patient_flow(ctx: CohortContext) -> pd.DataFrame:
    """Counts of the patient flow (unsuppressed), one row per stage of :data:`FLOW_STAGES`.

    Treated = at least one exercise session. Among the treated, each patient is in exactly one of
    completed / dropped out / referred (``referred_injection`` or ``referred_surgery``) / other
    (any other or no discharge reason, with a discharge date) / still in care (no discharge date),
    and each discharged patient either has a follow-up score of any measure in
    ``outcome_change`` or not.

    Returns
    -------
    DataFrame
        ``stage, label, parent, n``.
    """
    patients = ctx.ds.patients
    treated = patients["patient_id"].isin(ctx.tables["sessions"]["patient_id"])
    discharged = patients["discharge_date"].notna()
    reason = patients["discharge_reason"].astype("object")
    change = ctx.tables["outcome_change"]
    with_followup = patients["patient_id"].isin(
        change.loc[change["followup"].notna(), "patient_id"]
    )
    t, d = treated, treated & discharged
    completed = d & reason.eq("completed")
    dropped = d & reason.eq("dropped_out")
    referred = d & reason.isin(["referred_injection", "referred_surgery"])
    counts = {
        "enrolled": len(patients),
        "not_treated": int((~t).sum()),
        "treated": int(t.sum()),
        "completed": int(completed.sum()),
        "dropped_out": int(dropped.sum()),
        "referred": int(referred.sum()),
        "other": int((d & ~completed & ~dropped & ~referred).sum()),
        "in_care": int((t & ~discharged).sum()),
        "followup": int((d & with_followup).sum()),
        "no_followup": int((d & ~with_followup).sum()),
    }
    return pd.DataFrame(
        [(key, label, parent, counts[key]) for key, label, parent in FLOW_STAGES],
        columns=["stage", "label", "parent", "n"],
    )


_FLOW_LINES = (
    ("enrolled", ("treated", "not_treated")),
    ("treated", ("completed", "dropped_out", "referred", "other", "in_care")),
    ("treated", ("followup", "no_followup", "in_care")),
)


def patient_flow_table(ctx: CohortContext) -> pd.DataFrame:
    """The patient flow for display: stage, patients and share of the stage above."""
    flow = patient_flow(ctx).set_index("stage")
    display, mask = protect_counts(flow["n"], _FLOW_LINES, k=ctx.k)
    discharged = flow.at["treated", "n"] - flow.at["in_care", "n"]
    rows = []
    for stage, row in flow.iterrows():
        parent = None if pd.isna(row["parent"]) else row["parent"]
        denominator = discharged if stage in ("followup", "no_followup") else None
        if denominator is None and parent is not None:
            denominator = flow.at[parent, "n"]
        parent_hidden = bool(mask[parent]) if parent is not None else False
        if stage in ("followup", "no_followup"):
            parent_hidden = parent_hidden or bool(mask["in_care"])
        share = (
            ""
            if parent is None or mask[stage] or parent_hidden or not denominator
            else f"{100 * row['n'] / denominator:.0f}%"
        )
        indent = "" if parent is None else ("    " if parent == "enrolled" else "        ")
        rows.append({"Stage": indent + row["label"], "Patients": display[stage], "Share": share})
    return pd.DataFrame(rows)


def section_patient_flow(ctx: CohortContext, doc: Document) -> None:
    """Section 2: enrolled -> treated -> discharge reasons -> follow-up available."""
    k = ctx.k
    flow = patient_flow(ctx).set_index("stage")["n"]
    table = patient_flow_table(ctx)
    shown = dict(zip(FLOW_STAGES, table["Patients"], strict=True))
    by_key = {stage[0]: text for stage, text in shown.items()}
    discharged = flow["treated"] - flow["in_care"]
    doc.heading(SECTION_TITLES["patient_flow"])
    parts = [
        f"Of {by_key['enrolled']} patients enrolled, {by_key['treated']} had at least one "
        f"exercise session."
    ]
    if flow["treated"] >= k and flow["completed"] >= k:
        parts.append(
            f"{by_key['completed']} of the treated ({100 * flow['completed'] / flow['treated']:.0f}%)"
            f" completed care, {by_key['dropped_out']} dropped out and {by_key['referred']} were "
            f"referred for an injection or surgery; {by_key['in_care']} were still in care."
        )
    if discharged >= k and flow["followup"] >= k and not table["Share"].iloc[-2] == "":
        parts.append(
            f"A follow-up questionnaire is available for {by_key['followup']} of the discharged "
            f"patients ({100 * flow['followup'] / discharged:.0f}%); the others are reported as "
            "missing, never imputed."
        )
    doc.paragraph(" ".join(parts))
    doc.table(
        table,
        caption="Patient flow.",
        note=(
            "Shares are of the stage above (follow-up: of the discharged patients). Each treated "
            "patient is in exactly one discharge row. " + _suppression_note(k)
        ),
    )


# ------------------------------------------------------------------------------------------------
# 3. dose and volume
# ------------------------------------------------------------------------------------------------
def _weekly_total_volume(ctx: CohortContext) -> pd.DataFrame:
    """Median over patients of their weekly volume load (all families), weeks with >= k patients."""
    weekly = ctx.tables["weekly_load"]
    per_patient = weekly.groupby(["patient_id", "week"], as_index=False)[
        ["volume_load_kg", "total_reps"]
    ].sum()
    summary = per_patient.groupby("week").agg(
        n_patients=("patient_id", "nunique"),
        volume_median=("volume_load_kg", "median"),
        reps_median=("total_reps", "median"),
    )
    return summary.loc[summary["n_patients"] >= ctx.k].reset_index()


def section_dose_volume(ctx: CohortContext, doc: Document) -> None:
    """Section 3: weekly volume load and highest ladder level by week of care, per family."""
    k = ctx.k
    weekly = ctx.tables["weekly_load"]
    doc.heading(SECTION_TITLES["dose_volume"])
    totals = _weekly_total_volume(ctx)
    if len(totals) >= 2:
        first, last = totals.iloc[0], totals.iloc[-1]
        doc.paragraph(
            f"A typical patient's weekly volume load (all exercise families, reps x kg) "
            f"{_signed_change(last['volume_median'] - first['volume_median'], 'kg', 0)}, from a "
            f"median of {first['volume_median']:,.0f} kg in week {int(first['week'])} to "
            f"{last['volume_median']:,.0f} kg in week {int(last['week'])}; weekly reps went "
            f"from {first['reps_median']:,.0f} to {last['reps_median']:,.0f}. Body-weight and "
            "band exercises add reps but no volume load."
        )
    else:
        doc.paragraph(f"Too few weeks with at least {k} patients to describe volume over time.")
    caption_tail = f"Weeks with fewer than {k} patients in a family are not drawn."
    figure, ax = _new_figure(7.0, 4.4)
    plot_volume_progression(data=weekly, hue="family", min_patients=k, ax=ax)
    doc.figure(
        figure,
        caption="Weekly volume load per exercise family: median across patients. " + caption_tail,
    )
    figure, ax = _new_figure(7.0, 4.0)
    plot_level_progression(data=weekly, hue="family", min_patients=k, ax=ax)
    levels = weekly.groupby(["patient_id", "week"])["top_level"].max().groupby("week")
    level_summary = pd.DataFrame({"n": levels.size(), "median": levels.median()})
    level_summary = level_summary.loc[level_summary["n"] >= k]
    if len(level_summary) >= 2:
        doc.paragraph(
            f"The median highest ladder level worked at went from "
            f"{level_summary['median'].iloc[0]:g} in week {level_summary.index[0]} to "
            f"{level_summary['median'].iloc[-1]:g} in week {level_summary.index[-1]}."
        )
    doc.figure(
        figure,
        caption="Highest ladder level worked at each week, per family: median across patients. "
        + caption_tail,
    )


# ------------------------------------------------------------------------------------------------
# 4. pain trajectory
# ------------------------------------------------------------------------------------------------
def pain_trajectory_fit(ctx: CohortContext) -> MixedModelFit:
    """The mixed model of pain_24h over weeks of care (computed once per context)."""
    return ctx.cached("pain_fit", lambda: fit_pain_trajectory(ctx.tables["sessions"]))


_TERM_LABELS = {
    "Intercept": "Pain at week 0 (intercept)",
    "week": "Change per week",
    "weeks_since_start": "Change per week",
    "sd(Intercept)": "SD between patients: level",
    "sd(week)": "SD between patients: change per week",
    "sd(weeks_since_start)": "SD between patients: change per week",
    "cor(Intercept,week)": "Correlation of level and change",
    "cor(Intercept,weeks_since_start)": "Correlation of level and change",
    "sd(Residual)": "Residual SD",
}


def model_table(fit: MixedModelFit, decimals: int = 2) -> pd.DataFrame:
    """A mixed model's tidy summary for display: term, estimate, 95% CI, p."""
    summary = fit.summary
    return pd.DataFrame(
        {
            "Term": summary["term"].map(lambda t: _TERM_LABELS.get(t, t)),
            "Estimate": summary["estimate"].map(lambda v: format_number(v, decimals)),
            "SE": summary["std_error"].map(lambda v: format_number(v, decimals + 1)),
            "95% CI": [
                format_interval(lo, hi, decimals)
                for lo, hi in zip(summary["ci_low"], summary["ci_high"], strict=True)
            ],
            "p": summary["p_value"].map(format_p),
        }
    )


def section_pain_trajectory(ctx: CohortContext, doc: Document) -> None:
    """Section 4: weekly mean pain with CIs, the mixed model line and its summary table."""
    k = ctx.k
    sessions = ctx.tables["sessions"]
    doc.heading(SECTION_TITLES["pain_trajectory"])
    weekly = weekly_pain(sessions)
    patients_per_week = sessions.groupby("week")["patient_id"].nunique()
    enough_weeks = patients_per_week.index[patients_per_week >= k]
    weekly = weekly.loc[weekly["week"].isin(enough_weeks) & (weekly["n"] >= k)]
    try:
        fit = pain_trajectory_fit(ctx)
    except ValueError as error:
        doc.paragraph(f"The pain model could not be fitted: {scrub_small_numbers(str(error), k)}")
        fit = None
    if fit is not None:
        fixed = fit.summary.set_index("term")
        slope = fixed.loc["week"]
        per_month = DAYS_PER_MONTH / 7
        low, high = slope["ci_low"] * per_month, slope["ci_high"] * per_month
        certain = (
            "The interval does not include zero, so chance alone is an unlikely explanation."
            if low > 0 or high < 0
            else "The interval includes zero: the data are compatible with no change."
        )
        doc.paragraph(
            f"Pain in the 24 h after sessions {_signed_change(slope['estimate'] * per_month, 'points per month', 2)}"
            f" on average (95% CI {format_interval(low, high, 2)}), from "
            f"{fixed.loc['Intercept', 'estimate']:.1f}/10 at the start of care "
            f"(mixed model over {fit.n_obs:,} sessions of {fit.n_groups:,} patients, random "
            f"{fit.random_effects.replace('+', ' and ')} per patient). {certain} Pain stays below "
            f"the {ctx.params['pain_threshold']:g}/10 limit on average when the line is below the "
            "dotted line."
        )
    figure, ax = _new_figure(7.0, 4.4)
    plot_pain_trajectory(data=weekly, model=fit, ax=ax, threshold=ctx.params["pain_threshold"])
    ax.legend(loc="upper right", fontsize="small", frameon=False)
    doc.figure(
        figure,
        caption=(
            "Weekly mean pain (0-10) with 95% CIs, and the mixed model's average line for pain in "
            f"the 24 h after. Weeks with fewer than {k} patients are not drawn."
        ),
    )
    if fit is not None:
        doc.table(
            model_table(fit),
            caption="Mixed model of pain in the 24 h after sessions (pain_24h ~ week, REML).",
            note="Wald 95% CIs for the fixed effects; random-effect SDs are point estimates.",
        )
        if fit.warnings:
            doc.paragraph("Model remarks:")
            doc.bullets([scrub_small_numbers(w, k) for w in fit.warnings])


# ------------------------------------------------------------------------------------------------
# 5. pain response
# ------------------------------------------------------------------------------------------------
def section_pain_response(ctx: CohortContext, doc: Document) -> None:
    """Section 5: pain 24 h after and flare rate by volume change, and the dose-response slope."""
    k = ctx.k
    threshold = ctx.params["pain_threshold"]
    curve = pain_response_curve(
        ctx.tables["family_sessions"], sessions=ctx.tables["sessions"], pain_threshold=threshold
    )
    slope = ctx.cached("dose_slope", lambda: dose_response_slope(ctx.tables["family_sessions"]))
    shown = curve.loc[(curve["n"] >= k) & (curve["n_patients"] >= k)].reset_index(drop=True)
    doc.heading(SECTION_TITLES["pain_response"])
    step = slope["step_pct"]
    if pd.notna(slope["estimate"]):
        text = (
            f"Each {step:g}% rise in an exercise family's volume load since its previous session "
            f"went with pain in the next 24 h {abs(slope['estimate']):.2f} points "
            f"{'higher' if slope['estimate'] >= 0 else 'lower'} "
            f"(95% CI {format_interval(slope['ci_low'], slope['ci_high'], 2)}; "
            f"{slope['n_sessions']:,} sessions of {_plain_count(slope['n_patients'], k)} patients, "
            "errors clustered by patient)."
        )
    else:
        text = "Too few sessions with a volume change to estimate the dose-response slope."
    if len(shown) >= 2:
        first, last = shown.iloc[0], shown.iloc[-1]
        text += (
            f" Sessions after a change of {first['volume_change_bin']} flared (pain > "
            f"{threshold:g}/10) {100 * first['flare_rate']:.0f}% of the time, against "
            f"{100 * last['flare_rate']:.0f}% after a change of {last['volume_change_bin']}."
        )
    doc.paragraph(text)
    _dose_response_parts(ctx, doc)
    figure, ax = _new_figure(7.0, 4.4)
    plot_pain_response(data=shown, pain_threshold=threshold, ax=ax)
    dropped = len(curve) - len(shown)
    doc.figure(
        figure,
        caption=(
            "Pain in the 24 h after (mean, 95% CI) and flare rate (Wilson 95% CI) by the rise in "
            "the family's volume load since its previous session; n = family sessions. "
            f"Family sessions without a previous loaded session are left out. Bins with fewer "
            f"than {k} sessions or patients are not drawn"
            + (f" ({dropped} bin(s) left out)." if dropped else ".")
        ),
    )


_DOSE_PART_LABELS = {
    "pooled": "Pooled (OLS, errors clustered by patient)",
    "within": "Within patients: a bigger step than the patient's usual",
    "between": "Between patients: a bigger usual step",
    "between_minus_within": "Difference (between - within)",
}


def dose_response_parts_table(parts: pd.DataFrame) -> pd.DataFrame:
    """The within/between dose-response table for display."""
    return pd.DataFrame(
        {
            "Slope per step": parts["part"].map(_DOSE_PART_LABELS),
            "Change in pain (points)": parts["estimate"].map(lambda v: format_number(v, 2)),
            "95% CI": [
                format_interval(lo, hi, 2)
                for lo, hi in zip(parts["ci_low"], parts["ci_high"], strict=True)
            ],
            "p": parts["p_value"].map(format_p),
        }
    )


def _dose_response_parts(ctx: CohortContext, doc: Document) -> None:
    """The dose-response slope split into within- and between-patient parts."""
    k = ctx.k
    parts = ctx.cached(
        "dose_parts", lambda: dose_response_within_between(ctx.tables["family_sessions"])
    )
    by_part = parts.set_index("part")
    if by_part[["estimate"]].loc[["within", "between"]].isna().any().any():
        return
    step = parts.attrs["step_pct"]
    within, between = by_part.loc["within"], by_part.loc["between"]
    difference = by_part.loc["between_minus_within"]
    differ = (
        "The two parts differ (the interval of their difference excludes zero), so the pooled "
        "slope describes neither."
        if difference["ci_low"] > 0 or difference["ci_high"] < 0
        else "The data cannot tell the two parts apart (the interval of their difference "
        "includes zero)."
    )
    doc.paragraph(
        f"The pooled slope mixes two questions. Within patients, a session whose step was "
        f"{step:g}% bigger than that patient's usual step went with pain "
        f"{abs(within['estimate']):.2f} points {'higher' if within['estimate'] >= 0 else 'lower'}"
        f" (95% CI {format_interval(within['ci_low'], within['ci_high'], 2)}): each patient is "
        f"their own control, so stable differences between patients cannot explain it. Between "
        f"patients, a usual step {step:g}% bigger went with average pain "
        f"{abs(between['estimate']):.2f} points {'higher' if between['estimate'] >= 0 else 'lower'}"
        f" (95% CI {format_interval(between['ci_low'], between['ci_high'], 2)}), which also "
        f"reflects who is progressed faster. {differ}"
    )
    doc.table(
        dose_response_parts_table(parts),
        caption=(
            f"Change in pain in the 24 h after per {step:g}% more volume: within and between "
            "patients."
        ),
        note=(
            "Mixed model pain_24h ~ (dose - patient's mean dose) + patient's mean dose with a "
            "random intercept per patient (REML), Wald 95% CIs; dose = the session's largest "
            f"family volume change / {step:g}%. "
            f"{parts.attrs['n_sessions']:,} sessions of {_plain_count(parts.attrs['n_patients'], k)}"
            " patients."
        ),
    )
    if parts.attrs["warnings"]:
        doc.bullets([scrub_small_numbers(w, k) for w in parts.attrs["warnings"]])


# ------------------------------------------------------------------------------------------------
# 6. progression
# ------------------------------------------------------------------------------------------------
def ladder_funnel_table(ctx: CohortContext) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ladder funnel for display, and the funnel with suppressed points set to NaN.

    A family's count of patients who reached level L and the count who reached L + 1 give the
    number whose top level is L; those differences are protected as well (lines ``reached(L) =
    top(L) + reached(L + 1)``). Families with fewer than ``k`` patients are left out.
    """
    k = ctx.k
    funnel = ladder_funnel(ctx.tables["family_sessions"], catalogue=ctx.ds.catalogue)
    funnel = funnel.loc[funnel["n_patients"] >= k].reset_index(drop=True)
    values: dict[str, float] = {}
    lines = []
    for family, part in funnel.groupby("family", sort=False):
        reached = part.set_index("level")["n_reached"]
        levels = list(reached.index)
        for level in levels:
            values[f"reached|{family}|{level}"] = float(reached[level])
            following = reached.get(level + 1, 0)
            values[f"top|{family}|{level}"] = float(reached[level] - following)
            members = [f"top|{family}|{level}"]
            if level + 1 in reached.index:
                members.append(f"reached|{family}|{level + 1}")
            lines.append((f"reached|{family}|{level}", members))
    display, mask = protect_counts(pd.Series(values, dtype="float64"), lines, k=k)
    keys = "reached|" + funnel["family"] + "|" + funnel["level"].astype(str)
    hidden = mask.reindex(keys).to_numpy(dtype=bool)
    plotted = funnel.assign(share_reached=funnel["share_reached"].where(~hidden))
    cells = [
        display[key] if hide else f"{display[key]} ({100 * share:.0f}%)"
        for key, hide, share in zip(keys, hidden, funnel["share_reached"], strict=True)
    ]
    wide = (
        funnel.assign(cell=cells, Family=funnel["family"].map(family_label))
        .pivot(index="Family", columns="level", values="cell")
        .reindex([family_label(f) for f in funnel["family"].unique()])
        .fillna("")
    )
    wide.columns = [f"Level {level}" for level in wide.columns]
    patients = funnel.groupby("family", sort=False)["n_patients"].first()
    wide.insert(0, "Patients", [format_count(v, k) for v in patients.to_numpy()])
    return wide.reset_index(), plotted


def km_medians_table(ctx: CohortContext, medians: pd.DataFrame) -> pd.DataFrame:
    """Median days to the next level per family, with spell and event counts suppressed."""
    k = ctx.k
    medians = medians.loc[medians["n_spells"] >= k].set_index("family")
    if medians.empty:
        return pd.DataFrame(columns=["Family", "Spells", "Progressed", "Median days (95% CI)"])
    cells = _share_cells(medians["n_events"], medians["n_spells"], k=k)
    rows = []
    for family, row in medians.iterrows():
        median = "not reached" if pd.isna(row["median_days"]) else f"{row['median_days']:.0f} d"
        low = _DASH if pd.isna(row["ci_low"]) else f"{row['ci_low']:.0f}"
        high = "not reached" if pd.isna(row["ci_high"]) else f"{row['ci_high']:.0f}"
        rows.append(
            {
                "Family": family_label(family),
                "Spells": cells.at[family, "denominator"],
                "Progressed": cells.at[family, "numerator"],
                "Median days (95% CI)": median
                if cells.at[family, "hidden"]
                else f"{median} ({low} to {high})",
            }
        )
    return pd.DataFrame(rows)


def _truncate_at_risk(table: pd.DataFrame, k: int) -> pd.DataFrame:
    """Kaplan-Meier rows while at least ``k`` spells are at risk (families with >= k spells)."""
    return table.loc[table["at_risk"] >= k]


#: Days at which the cumulative incidence table reads the curves (4, 8 and 12 weeks).
INCIDENCE_DAYS = (28, 56, 84)


def progression_incidence_fit(ctx: CohortContext) -> pd.DataFrame:
    """:func:`progression_incidence` of the report's cohort (computed once per context)."""
    return ctx.cached(
        "progression_incidence",
        lambda: progression_incidence(
            ctx.tables["family_sessions"], ctx.ds.patients, catalogue=ctx.ds.catalogue
        ),
    )


_REASON_TEXT = {"referred_surgery": "a surgery referral", "dropped_out": "drop-out"}


def _at_risk_from(curve: pd.DataFrame, day: float) -> int:
    """Spells still at risk at ``day`` (0 when the curve ended before it)."""
    later = curve.loc[curve["time_days"] >= day, "at_risk"]
    return int(later.iloc[0]) if len(later) else 0


def _curve_at(curve: pd.DataFrame, day: float, column: str) -> float:
    """A step curve's value at ``day`` (the last row at or before it)."""
    before = curve.loc[curve["time_days"] <= day, column]
    return float(before.iloc[-1]) if len(before) else np.nan


def cumulative_incidence_table(ctx: CohortContext, incidence: pd.DataFrame) -> pd.DataFrame:
    """Per family: spells by how they ended, and progression by 4, 8 and 12 weeks (AJ vs 1 - KM).

    Counts of progressed / competing / censored spells are suppressed together (their sum is the
    spells); a curve's value is shown only while at least ``k`` spells are still at risk.
    """
    k = ctx.k
    rows = []
    for family, curve in incidence.groupby("family", sort=False):
        spells = int(curve["at_risk"].iloc[0])
        if spells < k:
            continue
        values = pd.Series(
            {
                "spells": spells,
                "progressed": curve["events"].sum(),
                "competing": curve["competing_events"].sum(),
                "censored": curve["censored"].sum(),
            },
            dtype="float64",
        )
        display, _ = protect_counts(
            values, [("spells", ["progressed", "competing", "censored"])], k=k
        )
        row = {
            "Family": family_label(family),
            "Spells": display["spells"],
            "Progressed": display["progressed"],
            "Competing discharge": display["competing"],
            "Censored": display["censored"],
        }
        for day in INCIDENCE_DAYS:
            enough = _at_risk_from(curve, day) >= k
            aj = _curve_at(curve, day, "cif_progression")
            km = _curve_at(curve, day, "km_progression")
            row[f"Day {day}: AJ (1 - KM)"] = (
                f"{100 * aj:.0f}% ({100 * km:.0f}%)" if enough else SECONDARY_MARKER
            )
        rows.append(row)
    return pd.DataFrame(rows)


def progression_by_clinic_table(ctx: CohortContext) -> pd.DataFrame:
    """Per clinic: forward progressions, share on criteria, early progressions, held back."""
    k = ctx.k
    rates = progression_rates(
        ctx.tables["progressions"],
        ctx.ds.patients,
        by="clinic_id",
        patient_summary=ctx.tables["patient_summary"],
    ).set_index("clinic_id")
    rates = rates.reindex(ctx.clinics).fillna(0)
    total = rates.sum(numeric_only=True)
    rates.loc[ALL_CLINICS] = total
    on = _share_cells(rates["n_met"], rates["n_events"], k=k, total=ALL_CLINICS)
    early = _share_cells(rates["n_early"], rates["n_events"], k=k, total=ALL_CLINICS)
    held = rates["held_back_episodes"].astype("float64")
    held_values = pd.Series(held.to_numpy(), index=[str(i) for i in held.index])
    held_display, _ = protect_counts(held_values, [(ALL_CLINICS, [c for c in ctx.clinics])], k=k)
    patients = rates["n_patients"]
    patients_display, _ = protect_counts(
        pd.Series(patients.to_numpy(), index=[str(i) for i in patients.index]),
        [(ALL_CLINICS, list(ctx.clinics))],
        k=k,
    )
    return pd.DataFrame(
        {
            "Clinic": list(rates.index),
            "Patients": patients_display.to_numpy(),
            "Moves up (level or load)": on["denominator"].to_numpy(),
            "On criteria, n (%)": on["numerator"].to_numpy(),
            "Early, n (%)": early["numerator"].to_numpy(),
            "Held-back episodes": held_display.to_numpy(),
        }
    )


def section_progression(ctx: CohortContext, doc: Document) -> None:
    """Section 6: ladder funnel, Kaplan-Meier time to the next level, progression by clinic."""
    k = ctx.k
    doc.heading(SECTION_TITLES["progression"])
    funnel_display, funnel_plotted = ladder_funnel_table(ctx)
    # each family's top level, described only where that point itself is shown
    tops = funnel_plotted.sort_values("level").groupby("family", sort=False).tail(1)
    tops = tops.dropna(subset=["share_reached"]).set_index("family")
    ttp = ctx.cached(
        "time_to_progression",
        lambda: time_to_next_level(
            ctx.tables["family_sessions"],
            ctx.ds.patients,
            catalogue=ctx.ds.catalogue,
            conf_type=ctx.params["km_conf_type"],
        ),
    )
    medians = ttp.medians.loc[ttp.medians["n_spells"] >= k]
    text = []
    if not tops.empty:
        multi = tops.loc[tops["level"] > 1]
        if not multi.empty:
            best = multi.sort_values("share_reached").iloc[-1]
            worst = multi.sort_values("share_reached").iloc[0]
            text.append(
                f"The top of the ladder was reached most often in "
                f"{family_label(best.name).lower()} ({100 * best['share_reached']:.0f}% of the "
                f"patients who did that family reached level {int(best['level'])}) and least "
                f"often in {family_label(worst.name).lower()} "
                f"({100 * worst['share_reached']:.0f}% reached level {int(worst['level'])})."
            )
    if not medians.empty and medians["median_days"].notna().any():
        fastest = medians.sort_values("median_days").iloc[0]
        slowest = medians.sort_values("median_days").iloc[-1]
        text.append(
            f"Half of the patients moved up a level within {fastest['median_days']:.0f} days in "
            f"{family_label(fastest['family']).lower()} and within "
            f"{slowest['median_days']:.0f} days in {family_label(slowest['family']).lower()} "
            "(Kaplan-Meier medians; patients still at a level at discharge are censored)."
        )
    doc.paragraph(" ".join(text) or "Too few patients on the ladders to describe progression.")
    figure, ax = _new_figure(7.0, 4.2)
    plot_ladder_funnel(data=funnel_plotted, ax=ax)
    doc.figure(
        figure,
        caption=(
            "Share of the patients doing each family who reached each ladder level. Families "
            f"with fewer than {k} patients, and levels where fewer than {k} patients reached or "
            "stopped, are not drawn."
        ),
    )
    doc.table(
        funnel_display,
        caption="Patients reaching each ladder level, n (% of the family's patients).",
        note=_suppression_note(k),
    )
    table = _truncate_at_risk(ttp.table.loc[ttp.table["family"].isin(medians["family"])], k)
    figure, ax = _new_figure(7.0, 4.4)
    plot_time_to_progression(data=table, ax=ax)
    doc.figure(
        figure,
        caption=(
            "Kaplan-Meier estimate of the days from a patient's first session at a level to their "
            "first session at a higher level (levels of a family pooled; 95% pointwise CIs, "
            f"{_KM_CI_TEXT[ctx.params['km_conf_type']]}). "
            f"Curves stop where fewer than {k} spells remain at risk; families with fewer than "
            f"{k} spells are not drawn."
        ),
    )
    doc.table(
        km_medians_table(ctx, ttp.medians),
        caption="Time to the next ladder level per family.",
        note="A spell is a patient's time at one level of a family. " + _suppression_note(k),
    )
    _progression_competing_risks(ctx, doc)
    by_clinic = progression_by_clinic_table(ctx)
    all_row = by_clinic.iloc[-1]
    doc.paragraph(
        f"Across clinics, {all_row['On criteria, n (%)']} of {all_row['Moves up (level or load)']}"
        f" moves up a level or load followed a session that met the progression criterion; "
        f"{all_row['Early, n (%)']} came before the criterion was met (early progressions)."
    )
    doc.table(
        by_clinic,
        caption="Progression decisions by clinic.",
        note=(
            "On criteria: the session before the move met the criterion (unknown counts in the "
            f"denominator); early: it did not. Held back: runs with {ctx.params['held_back_sessions']}"
            " or more sessions after the criterion was first met. " + _suppression_note(k)
        ),
    )


#: How the report names each Kaplan-Meier interval type.
_KM_CI_TEXT = {
    "log-log": "log-log transformed (R survfit conf.type 'log-log'; R's default is 'log')",
    "log": "log transformed (R survfit's default conf.type 'log')",
    "plain": "plain (untransformed, clipped to 0-100%)",
}


def _progression_competing_risks(ctx: CohortContext, doc: Document) -> None:
    """Cumulative incidence of progression with competing discharge, beside Kaplan-Meier."""
    k = ctx.k
    incidence = progression_incidence_fit(ctx)
    table = cumulative_incidence_table(ctx, incidence)
    if table.empty:
        return
    reasons = " or ".join(_REASON_TEXT.get(r, r) for r in COMPETING_DISCHARGE_REASONS)
    spells = incidence.groupby("family", sort=False)["at_risk"].first()
    shown = incidence.loc[incidence["family"].isin(spells.index[spells >= k])]
    last_day = INCIDENCE_DAYS[-1]
    gaps = [
        100 * (_curve_at(c, last_day, "km_progression") - _curve_at(c, last_day, "cif_progression"))
        for _, c in shown.groupby("family", sort=False)
        if _at_risk_from(c, last_day) >= k
    ]
    gap_text = (
        f" By day {last_day} the two differ by up to {max(gaps):.0f} percentage points."
        if gaps
        else ""
    )
    doc.paragraph(
        f"Kaplan-Meier treats a patient discharged for {reasons} before moving up as if they "
        "could still move up later, so 1 - Kaplan-Meier overstates how many spells end in "
        "progression. The cumulative incidence (Aalen-Johansen) counts those discharges as "
        "competing events: it is the share of spells that had actually moved up by each day."
        + gap_text
    )
    figure, ax = _new_figure(7.0, 4.4)
    plot_cumulative_incidence(data=_truncate_at_risk(shown, k), ax=ax)
    doc.figure(
        figure,
        caption=(
            "Cumulative incidence of moving up a level (solid, Aalen-Johansen; discharge for "
            f"{reasons} is a competing event) and 1 - Kaplan-Meier with those discharges censored "
            f"(dashed). Curves stop where fewer than {k} spells remain at risk."
        ),
    )
    doc.table(
        table,
        caption="How spells ended, and the share progressed by 4, 8 and 12 weeks.",
        note=(
            f"Competing discharge: {reasons} before moving up; censored: still in care, or "
            "discharged for another reason. AJ: Aalen-Johansen cumulative incidence; in "
            f"brackets 1 - Kaplan-Meier. Point estimates. {SECONDARY_MARKER} where fewer than "
            f"{k} spells remain at risk. " + _suppression_note(k)
        ),
    )


# ------------------------------------------------------------------------------------------------
# 7. adherence
# ------------------------------------------------------------------------------------------------
_ADHERENCE_FIGURES = (
    ("attendance", "Attendance (sessions / planned)"),
    ("pain_threshold_adherence", "Pain-threshold adherence (sessions within the limit)"),
    ("dose_adherence", "Dose adherence (performed / prescribed)"),
    ("activity_weeks_met_share", "Activity weeks meeting the WHO target"),
)


def adherence_table(ctx: CohortContext) -> pd.DataFrame:
    """Adherence figures by clinic: median [IQR] over patients, completion as n (%)."""
    k = ctx.k
    summary = ctx.tables["patient_summary"]
    columns = [*ctx.clinics, ALL_CLINICS]
    rows = []
    for column, label in _ADHERENCE_FIGURES:
        values = summary[["clinic_id", column]].assign(
            clinic_id=summary["clinic_id"].astype(str),
            value=pd.to_numeric(summary[column]).astype("float64"),
        )
        groups = {c: values.loc[values["clinic_id"] == c, "value"].dropna() for c in ctx.clinics}
        groups[ALL_CLINICS] = values["value"].dropna()
        recorded = pd.Series({c: float(len(g)) for c, g in groups.items()})
        shown, _ = protect_counts(recorded, [(ALL_CLINICS, list(ctx.clinics))], k=k)
        cells = {}
        for c, group in groups.items():
            if len(group) < k or shown[c] in (primary_marker(k), SECONDARY_MARKER):
                cells[c] = SECONDARY_MARKER
            else:
                cells[c] = (
                    f"{100 * group.median():.0f}% [{100 * group.quantile(0.25):.0f}, "
                    f"{100 * group.quantile(0.75):.0f}]"
                )
        rows.append({"Figure": f"{label}, median [IQR]", **cells})
        rows.append({"Figure": "    patients with a value", **shown.to_dict()})
    result = completion(
        summary,
        ctx.ds.patients,
        by="clinic_id",
        threshold=ctx.params["completion_attendance"],
    ).set_index("clinic_id")
    result = result.reindex(ctx.clinics).fillna(0)
    judged = result["n_discharged"] - result["n_attendance_missing"]
    completed = result["n_completed"]
    judged.loc[ALL_CLINICS] = judged.sum()
    completed.loc[ALL_CLINICS] = completed.sum()
    cells = _share_cells(completed, judged, k=k, total=ALL_CLINICS)
    rows.append(
        {
            "Figure": (
                f"Completed (attendance >= {100 * ctx.params['completion_attendance']:g}%), "
                "n (% of discharged)"
            ),
            **cells["numerator"].to_dict(),
        }
    )
    rows.append({"Figure": "    discharged patients", **cells["denominator"].to_dict()})
    return pd.DataFrame(rows, columns=["Figure", *columns])


def section_adherence(ctx: CohortContext, doc: Document) -> None:
    """Section 7: attendance distribution, completion, pain-threshold and dose adherence, activity."""
    k = ctx.k
    summary = ctx.tables["patient_summary"]
    doc.heading(SECTION_TITLES["adherence"])
    overall = completion(
        summary, ctx.ds.patients, by=None, threshold=ctx.params["completion_attendance"]
    )
    # no row when nobody has been discharged yet (pilots, interim analyses)
    overall = overall.iloc[0] if len(overall) else None
    attendance = summary["attendance"].dropna()
    pain_ok = summary["pain_threshold_adherence"].dropna()
    dose = summary["dose_adherence"].dropna()
    activity = summary["activity_weeks_met_share"].dropna()
    parts = []
    if len(attendance) >= k:
        parts.append(
            f"Patients attended a median of {100 * attendance.median():.0f}% of their planned "
            f"sessions (IQR {100 * attendance.quantile(0.25):.0f}% to "
            f"{100 * attendance.quantile(0.75):.0f}%)."
        )
    judged = 0 if overall is None else overall["n_discharged"] - overall["n_attendance_missing"]
    if overall is None:
        parts.append("Completion is not available: no patient has been discharged yet.")
    elif judged >= k and overall["n_completed"] >= k and judged - overall["n_completed"] >= k:
        parts.append(
            f"{format_count(overall['n_completed'], k)} of {format_count(judged, k)} discharged "
            f"patients ({100 * overall['completion_rate']:.0f}%, 95% CI "
            f"{format_interval(overall['ci_low'], overall['ci_high'], percent=True)}) completed "
            f"the programme (attendance of at least "
            f"{100 * ctx.params['completion_attendance']:g}%)."
        )
    if len(pain_ok) >= k:
        parts.append(
            f"In a typical patient's sessions pain stayed within the "
            f"{ctx.params['pain_threshold']:g}/10 limit {100 * pain_ok.median():.0f}% of the time."
        )
    if len(dose) >= k:
        parts.append(
            f"Patients performed a median of {100 * dose.median():.0f}% of their prescribed dose."
        )
    if len(activity) >= k:
        parts.append(
            f"The WHO activity target ({ctx.params['who_cardio_min']:g} min of cardio and "
            f"{ctx.params['who_strength_sessions']} strength sessions a week) was met in a mean "
            f"{100 * activity.mean():.0f}% of a patient's recorded activity weeks."
        )
    doc.paragraph(" ".join(parts) or "Too few patients to describe adherence.")
    counts = summary.groupby(summary["clinic_id"].astype(str))["attendance"].count()
    large = counts.index[counts >= k]
    if len(large) == 0:
        doc.paragraph(
            f"Attendance figure not available: no clinic has {k} or more patients with "
            "attendance known."
        )
    else:
        figure, ax = _new_figure(7.0, 3.6)
        plot_adherence(
            data=summary.loc[summary["clinic_id"].astype(str).isin(large)],
            by="clinic_id",
            threshold=ctx.params["completion_attendance"],
            ax=ax,
        )
        doc.figure(
            figure,
            caption=(
                "Attendance per clinic (box: median and IQR; dots: patients). The dashed line "
                f"marks completion. Clinics with fewer than {k} patients are not drawn."
            ),
        )
    doc.table(
        adherence_table(ctx),
        caption="Adherence by clinic.",
        note=(
            "Median [IQR] over patients with the figure. Completion counts discharged patients "
            "only. " + _suppression_note(k)
        ),
    )


# ------------------------------------------------------------------------------------------------
# 8. outcomes
# ------------------------------------------------------------------------------------------------
def outcome_fits(ctx: CohortContext) -> dict[str, MixedModelFit | str]:
    """The outcome mixed model per measure (a message instead where it cannot be fitted)."""

    def fit_all() -> dict[str, MixedModelFit | str]:
        fits: dict[str, MixedModelFit | str] = {}
        for name in _measures_present(ctx):
            try:
                fits[name] = outcome_mixed_model(ctx.ds.outcomes, ctx.ds.patients, measure=name)
            except ValueError as error:
                fits[name] = str(error)
        return fits

    return ctx.cached("outcome_fits", fit_all)


def _measures_present(ctx: CohortContext) -> list[str]:
    present = set(ctx.tables["outcome_change"]["measure"])
    return [name for name in ctx.measures if name in present]


def outcome_table(ctx: CohortContext) -> pd.DataFrame:
    """Per measure: patients, follow-up available / missing, mean change, responders (Wilson)."""
    k = ctx.k
    change = ctx.tables["outcome_change"]
    rates = responder_rates(change).set_index("measure")
    means = mean_change(change).set_index("measure")
    rows = []
    for name in _measures_present(ctx):
        rate, mean = rates.loc[name], means.loc[name]
        values = pd.Series(
            {
                "patients": rate["n_patients"],
                "followup": rate["n_followup"],
                "missing": rate["missing_followup"],
                "responders": rate["responders"],
                "non_responders": rate["n_followup"] - rate["responders"],
            },
            dtype="float64",
        )
        display, mask = protect_counts(
            values,
            [("patients", ["followup", "missing"]), ("followup", ["responders", "non_responders"])],
            k=k,
        )
        paired_ok = not mask["followup"] and rate["n_followup"] >= k
        responders_ok = paired_ok and not mask["responders"] and not mask["non_responders"]
        measure = ctx.measures[name]
        rows.append(
            {
                "Measure": measure.label or name,
                "Patients": display["patients"],
                "Follow-up": display["followup"],
                "Missing follow-up": display["missing"],
                "Mean change (95% CI)": (
                    f"{format_number(mean['mean_improvement'], _decimals(measure))} "
                    f"({format_interval(mean['ci_low'], mean['ci_high'], _decimals(measure))})"
                    if paired_ok
                    else SECONDARY_MARKER
                ),
                "Responders, n (%)": _n_pct(
                    display["responders"],
                    not responders_ok,
                    rate["responders"],
                    rate["n_followup"],
                    False,
                ),
                "95% CI": (
                    format_interval(rate["ci_low"], rate["ci_high"], percent=True)
                    if responders_ok
                    else SECONDARY_MARKER
                ),
            }
        )
    return pd.DataFrame(rows)


_SCENARIO_COLUMNS = {
    "complete_case": "Complete case",
    "missing_non_responder": "Lower bound",
    "missing_responder": "Upper bound",
}


def responder_sensitivity_table(ctx: CohortContext) -> pd.DataFrame:
    """Per measure: responder rate under complete case and the two bounds, beside the model.

    Eligible: discharged patients with a baseline (:func:`responder_sensitivity`). The five counts
    behind a row (eligible, followed up, missing, responders, non-responders) are suppressed
    together; a row's rates are shown only when none of them is hidden, since each bound with
    the eligible count reveals the responders or the missing.
    """
    k = ctx.k
    table = responder_sensitivity(ctx.tables["outcome_change"], patients=ctx.ds.patients)
    models = outcome_model_table(ctx).set_index("Measure")
    rows = []
    for name in _measures_present(ctx):
        part = table.loc[table["measure"] == name].set_index("scenario")
        if part.empty:
            continue
        first = part.iloc[0]
        values = pd.Series(
            {
                "eligible": first["n_eligible"],
                "followup": first["n_followup"],
                "missing": first["n_missing"],
                "responders": first["responders"],
                "non_responders": first["n_followup"] - first["responders"],
            },
            dtype="float64",
        )
        display, mask = protect_counts(
            values,
            [("eligible", ["followup", "missing"]), ("followup", ["responders", "non_responders"])],
            k=k,
        )
        visible = not mask.any() and first["n_followup"] >= k
        label = ctx.measures[name].label or name
        row = {
            "Measure": label,
            "Eligible": display["eligible"],
            "Missing follow-up": display["missing"],
        }
        for scenario, column in _SCENARIO_COLUMNS.items():
            rate = part.loc[scenario]
            row[column] = (
                f"{100 * rate['rate']:.0f}% "
                f"({format_interval(rate['ci_low'], rate['ci_high'], percent=True)})"
                if visible
                else SECONDARY_MARKER
            )
        row["Mixed model: change per month (primary)"] = (
            models.at[label, "Change per month (95% CI)"] if label in models.index else _DASH
        )
        rows.append(row)
    return pd.DataFrame(rows)


def _decimals(measure: Measure) -> int:
    return 2 if (measure.high - measure.low) <= 2 else 1


def outcome_model_table(ctx: CohortContext) -> pd.DataFrame:
    """Per measure: the mixed model's change per month (all scores, nobody dropped, no LOCF)."""
    k = ctx.k
    per_month = DAYS_PER_MONTH / 7
    rows = []
    for name, fit in outcome_fits(ctx).items():
        measure = ctx.measures[name]
        if isinstance(fit, str):
            rows.append(
                {
                    "Measure": measure.label or name,
                    "Patients": _DASH,
                    "Scores": _DASH,
                    "Baseline (intercept)": _DASH,
                    "Change per month (95% CI)": "not fitted",
                    "Better": "",
                }
            )
            continue
        summary = fit.summary.set_index("term")
        slope = summary.loc["weeks_since_start"]
        decimals = _decimals(measure)
        rows.append(
            {
                "Measure": measure.label or name,
                "Patients": format_count(fit.n_groups, k),
                "Scores": format_count(fit.n_obs, k),
                "Baseline (intercept)": format_number(
                    summary.loc["Intercept", "estimate"], decimals
                ),
                "Change per month (95% CI)": (
                    f"{format_number(slope['estimate'] * per_month, decimals)} "
                    f"({format_interval(slope['ci_low'] * per_month, slope['ci_high'] * per_month, decimals)})"
                ),
                "Better": "higher" if measure.higher_is_better else "lower",
            }
        )
    return pd.DataFrame(rows)


def _improvement_histogram(ctx: CohortContext, name: str) -> tuple[Figure, int]:
    """Histogram of improvement in ``name``, bins with 1..k-1 patients left out."""
    k = ctx.k
    measure = ctx.measures[name]
    change = ctx.tables["outcome_change"]
    values = change.loc[(change["measure"] == name), "improvement"].dropna().astype("float64")
    figure, ax = _new_figure(7.0, 3.6)
    width = 1.0 if (measure.high - measure.low) <= 10 else 5.0
    if (measure.high - measure.low) <= 2:
        width = 0.05
    low = np.floor(values.min() / width) * width if len(values) else 0.0
    high = np.ceil(values.max() / width) * width + width if len(values) else width
    counts, edges = np.histogram(values, bins=np.arange(low, high + width / 2, width))
    keep = (counts == 0) | (counts >= k)
    ax.bar(
        edges[:-1][keep],
        counts[keep],
        width=width,
        align="edge",
        color="#1f4e79",
        alpha=0.75,
        edgecolor="white",
    )
    ax.axvline(
        measure.mcid_points,
        color="tab:green",
        linestyle="--",
        label=f"MCID {measure.mcid_points:g} points",
    )
    ax.axvline(0.0, color="grey", linestyle=":", label="No change")
    ax.set_xlabel(f"Improvement in {measure.label or name} (positive = better)")
    ax.set_ylabel("Patients")
    ax.legend(fontsize="small", frameon=False, loc="upper left")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return figure, int((~keep).sum())


def section_outcomes(ctx: CohortContext, doc: Document) -> None:
    """Section 8: responders and mean change per measure, and the outcome mixed models."""
    k = ctx.k
    doc.heading(SECTION_TITLES["outcomes"])
    present = _measures_present(ctx)
    if not present:
        doc.paragraph("No outcome questionnaires were recorded for these patients.")
        return
    fits = outcome_fits(ctx)
    primary = "nprs" if "nprs" in present else present[0]
    measure = ctx.measures[primary]
    fit = fits[primary]
    rates = responder_rates(ctx.tables["outcome_change"]).set_index("measure").loc[primary]
    text = []
    if not isinstance(fit, str):
        slope = fit.summary.set_index("term").loc["weeks_since_start"]
        per_month = DAYS_PER_MONTH / 7
        decimals = _decimals(measure)
        text.append(
            f"Using every questionnaire (patients without a follow-up still count, and nothing "
            f"is carried forward), {measure.label or primary} "
            f"{_signed_change(slope['estimate'] * per_month, 'points per month', decimals)} "
            f"(95% CI {format_interval(slope['ci_low'] * per_month, slope['ci_high'] * per_month, decimals)};"
            f" {'higher' if measure.higher_is_better else 'lower'} is better). This mixed-model "
            "estimate is the primary estimate of change."
        )
    if rates["n_followup"] >= k and k <= rates["responders"] <= rates["n_followup"] - k:
        text.append(
            f"Of the {format_count(rates['n_followup'], k)} patients with a baseline and "
            f"follow-up score, {100 * rates['responder_rate']:.0f}% (95% CI "
            f"{format_interval(rates['ci_low'], rates['ci_high'], percent=True)}) improved by at "
            f"least the MCID ({_mcid_text(measure, ctx.params['responder_rule'])}); "
            f"{format_count(rates['missing_followup'], k)} patients have no follow-up pair and "
            "are reported as missing, not as non-responders."
        )
    doc.paragraph(" ".join(text))
    doc.table(
        outcome_table(ctx),
        caption="Change between baseline and follow-up per measure.",
        note=(
            "Change is signed so that positive is better. Responders: improvement of at least the "
            f"MCID (NPRS: the points {ctx.params['responder_rule']} the percentage of baseline); "
            "Wilson 95% CI. Missing "
            "follow-up: patients with the measure but no baseline-follow-up pair (including "
            "those still in care); they are never counted as non-responders and nothing is "
            "carried forward. " + _suppression_note(k)
        ),
    )
    doc.paragraph(
        "Responder rates count only patients with a follow-up. The table below brackets them: "
        "if every discharged patient without a follow-up had failed to respond, the rate would be "
        "the lower bound; if every one had responded, the upper bound. The true rate lies "
        "between them whatever the reason for the missing questionnaires. The mixed model, "
        "which uses every score of every patient, remains the primary estimate of change."
    )
    doc.table(
        responder_sensitivity_table(ctx),
        caption="Responder rates and missing follow-up: complete case and bounds (Wilson 95% CI).",
        note=(
            "Eligible: discharged patients with a baseline score (patients still in care are not "
            "yet due a follow-up). Complete case: responders among those with a follow-up; lower "
            "bound: every missing follow-up counted as a non-responder; upper bound: as a "
            "responder. Responder rule: "
            f"{_RULE_TEXT[ctx.params['responder_rule']]}. " + _suppression_note(k)
        ),
    )
    doc.table(
        outcome_model_table(ctx),
        caption="Mixed-model change per month from all available scores (primary estimate).",
        note=(
            "score ~ weeks since start of care, random intercept per patient (REML); a month is "
            f"{DAYS_PER_MONTH:.2f} days. The raw score's change: negative means falling."
        ),
    )
    remarks = [
        f"{ctx.measures[name].label or name}: {scrub_small_numbers(w, k)}"
        for name, fit in fits.items()
        for w in ([fit] if isinstance(fit, str) else fit.warnings)
    ]
    if remarks:
        doc.paragraph("Model remarks:")
        doc.bullets(remarks)
    figure, dropped = _improvement_histogram(ctx, primary)
    doc.figure(
        figure,
        caption=(
            f"Improvement in {measure.label or primary} between baseline and follow-up (patients "
            f"with both scores). Bars with fewer than {k} patients are not drawn"
            + (f" ({dropped} bar(s) left out)." if dropped else ".")
        ),
    )


# ------------------------------------------------------------------------------------------------
# 9. association
# ------------------------------------------------------------------------------------------------
_ASSOCIATION_TERMS = {
    "Intercept": "Intercept",
    "attendance": "Attendance (per 100% of planned sessions)",
    "baseline": "Baseline score (per point)",
    "age_years": "Age (per year)",
}


def association_table(
    ctx: CohortContext, measure: str = "nprs", adherence: str = "attendance"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The OLS (HC3) association of adherence with improvement: raw and display tables.

    Sex levels with fewer than ``k`` patients among those with an improvement are set to missing
    first (those patients leave the model), so that no coefficient describes fewer than ``k``
    patients.
    """
    k = ctx.k
    change = ctx.tables["outcome_change"]
    with_change = change.loc[(change["measure"] == measure) & change["improvement"].notna()]
    patients = ctx.ds.patients.copy()
    # "unknown" is missing here as in Table 1 (the library applies the same rule); values outside
    # the vocabulary (free text from data frames) are never printed either
    sex = (
        patients["sex"]
        .astype("object")
        .where(~patients["sex"].isin(SEX_NOT_RECORDED) & patients["sex"].isin(list(_SEX_LABELS)))
    )
    in_model = patients["patient_id"].isin(with_change["patient_id"])
    level_counts = sex[in_model].value_counts()
    small = level_counts.index[level_counts < k]
    patients["sex"] = sex.where(~sex.isin(small))
    raw = adherence_outcome_association(
        change, ctx.tables["patient_summary"], patients, measure=measure, adherence=adherence
    )

    def term_label(term: str) -> str:
        if term.startswith("sex[T."):
            return f"Sex: {_SEX_LABELS.get(term[6:-1], term[6:-1])} (vs reference)"
        return _ASSOCIATION_TERMS.get(term, term)

    display = pd.DataFrame(
        {
            "Term": raw["term"].map(term_label),
            "Estimate": raw["estimate"].map(lambda v: format_number(v, 2)),
            "SE (HC3)": raw["std_error"].map(lambda v: format_number(v, 2)),
            "95% CI": [
                format_interval(lo, hi, 2)
                for lo, hi in zip(raw["ci_low"], raw["ci_high"], strict=True)
            ],
            "p": raw["p_value"].map(format_p),
        }
    )
    return raw, display


def section_association(ctx: CohortContext, doc: Document) -> None:
    """Section 9: improvement against attendance, adjusted (OLS with HC3 standard errors)."""
    k = ctx.k
    doc.heading(SECTION_TITLES["association"])
    present = _measures_present(ctx)
    measure_name = "nprs" if "nprs" in present else (present[0] if present else None)
    if measure_name is None:
        doc.paragraph("No outcome questionnaires, so no association can be estimated.")
        return
    measure = ctx.measures[measure_name]
    try:
        raw, display = association_table(ctx, measure_name)
    except ValueError as error:
        doc.paragraph(
            f"The association model could not be fitted: {scrub_small_numbers(str(error), k)}"
        )
        return
    row = raw.set_index("term").loc["attendance"]
    n = int(raw["n"].iloc[0])
    per_10 = 0.1
    doc.paragraph(
        f"Each 10 percentage points more attendance went with "
        f"{abs(row['estimate'] * per_10):.2f} points {'more' if row['estimate'] >= 0 else 'less'}"
        f" improvement in {measure.label or measure_name} (95% CI "
        f"{format_interval(row['ci_low'] * per_10, row['ci_high'] * per_10, 2)}), adjusted for "
        f"the baseline score, age and sex ({format_count(n, k)} patients). This is an "
        "association in observational data: patients who attend more may differ in other ways."
    )
    doc.table(
        display,
        caption=(
            f"Improvement in {measure.label or measure_name} (positive = better) by attendance: "
            "OLS with HC3 robust standard errors."
        ),
        note=(
            "Complete cases; sex not recorded or 'unknown' is missing (as in Table 1), and sex "
            f"categories with fewer than {k} patients are set to missing. Attendance is a ratio (1.0 = every planned "
            "session)."
        ),
    )
    notes = raw.attrs.get("notes", [])
    if notes:
        doc.bullets([scrub_small_numbers(note, k) for note in notes])


# ------------------------------------------------------------------------------------------------
# 10. data quality
# ------------------------------------------------------------------------------------------------
def reason_category(reasons: pd.Series) -> pd.Series:
    """A quarantine reason without its particulars: quoted values, row numbers, ids removed.

    ``"unknown exercise 'copenhagen plnk'; did you mean ..."`` -> ``"unknown exercise"``;
    ``"duplicate of row 12 (same patient, date, exercise, set)"`` -> ``"duplicate of row #"``.
    """
    text = reasons.astype("str")
    text = text.str.replace(r"'[^']*'|\"[^\"]*\"", "", regex=True)
    text = text.str.split(r"[:;(]", n=1, regex=True).str[0]
    text = text.str.replace(r"\b[A-Za-z]*\d[\w\-]*", "#", regex=True)
    return text.str.replace(r"\s+", " ", regex=True).str.strip(" ,.-")


def quarantine_table(ctx: CohortContext, top: int = 5) -> pd.DataFrame:
    """Rows read, kept and quarantined per table, with the top reasons (counts only)."""
    k = ctx.k
    report = ctx.ds.load_report
    quarantine = ctx.ds.quarantine
    rows = []
    for record in report.itertuples():
        part = quarantine.loc[quarantine["source_file"] == record.source_file]
        categories = reason_category(part["reason"]).value_counts()
        shown = categories.head(top)
        rest = categories.iloc[top:].sum()
        values = pd.Series(
            {
                "read": record.rows_read,
                "kept": record.rows_kept,
                "quarantined": record.rows_quarantined,
                **{f"reason|{name}": count for name, count in shown.items()},
                **({"reason|other reasons": rest} if rest else {}),
            },
            dtype="float64",
        )
        reasons = [name for name in values.index if name.startswith("reason|")]
        lines = [("read", ["kept", "quarantined"])]
        if reasons:
            lines.append(("quarantined", reasons))
        display, _ = protect_counts(values, lines, k=k)
        rows.append(
            {
                "Table": record.table,
                "Rows read": display["read"],
                "Kept": display["kept"],
                "Quarantined": display["quarantined"],
                "Top reasons": "; ".join(
                    f"{name.removeprefix('reason|')} ({display[name]})" for name in reasons
                )
                or _DASH,
            }
        )
    return pd.DataFrame(rows, columns=["Table", "Rows read", "Kept", "Quarantined", "Top reasons"])


def followup_table(ctx: CohortContext) -> pd.DataFrame:
    """Per measure: discharged patients with a baseline, follow-up present and missing, in care."""
    k = ctx.k
    completeness = followup_completeness(
        ctx.tables["outcome_change"], patients=ctx.ds.patients
    ).set_index("measure")
    rows = []
    for name in _measures_present(ctx):
        row = completeness.loc[name]
        values = pd.Series(
            {
                "expected": row["expected_followup"],
                "both": row["with_both"],
                "missing": row["expected_followup"] - row["with_both"],
                "in_care": row["in_care"],
            },
            dtype="float64",
        )
        display, mask = protect_counts(values, [("expected", ["both", "missing"])], k=k)
        rows.append(
            {
                "Measure": ctx.measures[name].label or name,
                "Discharged with a baseline": display["expected"],
                "Follow-up present": _n_pct(
                    display["both"],
                    bool(mask["both"] or mask["missing"]),
                    row["with_both"],
                    row["expected_followup"],
                    bool(mask["expected"]),
                ),
                "Follow-up missing": _n_pct(
                    display["missing"],
                    bool(mask["both"] or mask["missing"]),
                    values["missing"],
                    row["expected_followup"],
                    bool(mask["expected"]),
                ),
                "Still in care": display["in_care"],
            }
        )
    return pd.DataFrame(rows)


def section_data_quality(ctx: CohortContext, doc: Document) -> None:
    """Section 10: quarantined rows, missing pain_24h, missing follow-up, model remarks."""
    k = ctx.k
    doc.heading(SECTION_TITLES["data_quality"])
    sessions = ctx.tables["sessions"]
    quarantined = int(ctx.ds.load_report["rows_quarantined"].sum())
    read = int(ctx.ds.load_report["rows_read"].sum())
    pain_missing = sessions["pain_24h"].isna().mean() if len(sessions) else np.nan
    during_missing = sessions["max_pain_during"].isna().mean() if len(sessions) else np.nan
    remarks = [
        f"{format_count(quarantined, k)} of {format_count(read, k)} input rows were quarantined "
        "(whole input, before the report's filters); the table below gives the reasons.",
        f"Pain in the 24 h after is missing for {100 * pain_missing:.0f}% of "
        f"{len(sessions):,} sessions, and pain during exercise for "
        f"{100 * during_missing:.0f}%. Sessions without pain_24h leave the pain model and count "
        "as 'unknown' for the pain limit.",
    ]
    followup = followup_table(ctx)
    if not followup.empty:
        remarks.append(
            "Follow-up questionnaires missing among discharged patients with a baseline: "
            + "; ".join(
                f"{row['Measure']} {row['Follow-up missing']}" for _, row in followup.iterrows()
            )
            + "."
        )
    model_remarks = []
    try:
        model_remarks += [f"Pain model: {w}" for w in pain_trajectory_fit(ctx).warnings]
    except ValueError as error:
        model_remarks.append(f"Pain model not fitted: {error}")
    for name, fit in outcome_fits(ctx).items():
        label = ctx.measures[name].label or name
        if isinstance(fit, str):
            model_remarks.append(f"{label} model not fitted: {fit}")
        else:
            model_remarks += [f"{label} model: {w}" for w in fit.warnings]
    remarks += [scrub_small_numbers(r, k) for r in model_remarks] or [
        "Every mixed model converged cleanly with the random effects asked for."
    ]
    doc.bullets(remarks)
    doc.table(
        quarantine_table(ctx),
        caption="Input rows read, kept and quarantined per table.",
        note="Reasons are grouped into categories (values and row numbers removed). "
        + _suppression_note(k),
    )
    if not followup.empty:
        doc.table(
            followup,
            caption="Follow-up questionnaires among discharged patients with a baseline score.",
            note=_suppression_note(k),
        )


# ------------------------------------------------------------------------------------------------
# appendix: definitions
# ------------------------------------------------------------------------------------------------
def definitions_table(ctx: CohortContext) -> pd.DataFrame:
    """The definitions used, with the parameter values of this report (from the code's constants)."""
    p = ctx.params
    limit = f"{p['pain_threshold']:g}/10"
    base_lo, base_hi = p["baseline_window_days"]
    fu_lo, fu_hi = p["followup_window_days"]
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
            f"At one ladder level: at least {p['criterion_sets']} sets of at least "
            f"{p['criterion_reps']:g} reps (target {p['criterion_reps']:g}-{CRITERION_REPS_MAX}) "
            f"or holds of at least {p['criterion_hold_s']:g} s (target "
            f"{p['criterion_hold_s']:g}-{CRITERION_HOLD_MAX_S:g} s), with pain during and in the "
            f"24 h after at most {limit}.",
        ),
        (
            "On criteria / early progression",
            "A move up a level or load whose previous session met / did not meet the criterion.",
        ),
        (
            "Held-back episode",
            f"A run at one level and load in which the first session meeting the criterion is "
            f"followed by {p['held_back_sessions']} or more further sessions.",
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
            f"{100 * p['completion_attendance']:g}% of planned sessions.",
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
            f"A week with at least {p['who_cardio_min']:g} min of cardio and "
            f"{p['who_strength_sessions']} strength sessions (WHO); share of weeks with activity "
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
    joiner = "or" if p["responder_rule"] == "or" else "and"
    for measure in ctx.measures.values():
        direction = "higher" if measure.higher_is_better else "lower"
        rule = f"improvement of at least {measure.mcid_points:g} points"
        if measure.mcid_pct is not None:
            rule += f" {joiner} {measure.mcid_pct:g}% of baseline"
        rows.append(
            (
                f"Responder: {measure.label or measure.name}",
                f"{rule} (range {measure.low:g} to {measure.high:g}, {direction} is better; "
                f"MCID source: {measure.source or 'not given'}).",
            )
        )
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
            f"{_KM_CI_TEXT[p['km_conf_type']]}.",
        ),
        (
            "Cumulative incidence of progression",
            "Aalen-Johansen: discharge for "
            + " or ".join(_REASON_TEXT.get(r, r) for r in COMPETING_DISCHARGE_REASONS)
            + " before moving up is a competing event; other discharges and patients in care "
            "are censored.",
        ),
        (
            "SMD",
            "Standardised mean difference: |difference in means| / pooled SD; for categories, "
            "Yang & Dalton's multivariate form. The largest over pairs of clinics is shown.",
        ),
        ("Confidence intervals", "95%: Wilson for shares, t for means, Wald for model effects."),
        (
            "Small-cell suppression",
            _suppression_note(ctx.k)
            if ctx.k <= 1
            else f"Counts from 1 to {ctx.k - 1} are shown as {primary_marker(ctx.k)}; cells that "
            f"would let a reader work them out are shown as {SECONDARY_MARKER}; shares and means "
            f"over fewer than {ctx.k} patients are not shown; figures leave such groups out.",
        ),
    ]
    return pd.DataFrame(rows, columns=["Term", "Definition"])


def section_definitions(ctx: CohortContext, doc: Document) -> None:
    """Appendix: every definition, with this report's parameter values."""
    doc.heading(SECTION_TITLES["definitions"])
    doc.definitions(definitions_table(ctx), caption="Definitions and parameters used.")


# ------------------------------------------------------------------------------------------------
# the whole report
# ------------------------------------------------------------------------------------------------
#: The sections in report order.
SECTIONS = (
    section_patient_flow,
    section_table_one,
    section_dose_volume,
    section_pain_trajectory,
    section_pain_response,
    section_progression,
    section_adherence,
    section_outcomes,
    section_association,
    section_data_quality,
    section_definitions,
)


def build_cohort_report(
    ds: Dataset,
    tables: dict[str, pd.DataFrame] | None = None,
    *,
    start=None,
    end=None,
    clinics: Sequence[str] | None = None,
    k: int = SUPPRESSION_K,
    generated: dt.date | None = None,
    show: bool | None = None,
    **params,
) -> Document:
    """The researcher's cohort report as a :class:`Document` (``doc.save_pdf(path)`` for the PDF).

    Parameters
    ----------
    ds : Dataset
        The loaded cohort.
    tables : dict, optional
        Its :func:`hipdata.metrics.compute_all` tables (computed when omitted).
    start, end : date-like, optional
        Date range on ``start_date`` (inclusive).
    clinics : sequence of str, optional
        Clinics to report (default all).
    k : int
        Small-cell suppression threshold.
    generated : date, optional
        Generation date (default today); the same date gives a byte-identical PDF.
    show : bool, optional
        Display blocks as they are added (default: in a notebook only).
    **params
        Keywords of :func:`make_context` (``pain_threshold``, ``measures``, ...).

    Returns
    -------
    Document

    Examples
    --------
    >>> import hipdata  # doctest: +SKIP
    >>> doc = build_cohort_report(hipdata.load("data/demo"))  # doctest: +SKIP
    >>> doc.save_pdf("cohort.pdf")  # doctest: +SKIP
    """
    ctx = make_context(ds, tables, start=start, end=end, clinics=clinics, k=k, **params)
    doc = new_document(ctx, generated=generated, show=show)
    for section in SECTIONS:
        section(ctx, doc)
    return doc


def export(ctx: CohortContext, doc: Document, output_dir: str | Path) -> dict[str, Path]:
    """Write ``cohort_report.pdf`` (atomically) and the run manifest for :mod:`hipdata.report.run`."""
    from hipdata.report.run import write_manifest

    pdf = doc.save_pdf(Path(output_dir) / "cohort_report.pdf")
    write_manifest(output_dir, "cohort_report", load_report=ctx.ds.load_report)
    return {"pdf": pdf}
