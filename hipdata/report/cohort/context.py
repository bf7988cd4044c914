"""The cohort a report describes (:class:`CohortContext`) and the report's title block."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

import hipdata
from hipdata.dataset import Dataset
from hipdata.metrics import compute_all
from hipdata.outcome_measures import MEASURES, Measure
from hipdata.protocol import KM_CI_TEXT, SUPPRESSION_K, Protocol
from hipdata.report.cohort.common import REPORT_TITLE, mcid_text, rule_text
from hipdata.report.document import Document
from hipdata.report.format import format_count

__all__ = ["CohortContext", "new_document", "parameters_text"]


def _as_timestamp(value) -> pd.Timestamp | None:
    return None if value is None else pd.Timestamp(value).normalize()


def _source_name(source: str) -> str:
    """The data folder's own name: ``/home/someone/study/demo`` -> ``demo``."""
    name = Path(str(source)).name if source else ""
    return name or "data frames"


def _as_protocol(protocol) -> Protocol:
    """A Protocol from a Protocol, a dict of field overrides (a notebook parameter) or None."""
    if protocol is None:
        return Protocol()
    if isinstance(protocol, Protocol):
        return protocol
    return Protocol(**dict(protocol))


@dataclass
class CohortContext:
    """The cohort a report describes: the filtered dataset, its metric tables and the settings.

    Build one with :meth:`build`.

    Attributes
    ----------
    ds : Dataset
        The dataset restricted to the patients in the report (start_date in the date range, clinic
        in ``clinics``); its other tables keep only those patients' rows. ``quarantine`` and
        ``load_report`` describe the whole input.
    tables : dict of str to DataFrame
        :func:`hipdata.metrics.compute_all` tables of those patients, and ``patients`` (the
        filtered patients table), ready for :func:`hipdata.analysis.balance.table_one` and the
        other analysis functions.
    protocol : Protocol
        The protocol's parameters behind every table, figure and definition.
    k : int
        Smallest count shown (counts 1..k-1 are shown as ``"<k"``; 1: internal, none hidden).
    start, end : Timestamp or None
        The date range applied to ``start_date`` (inclusive).
    clinics : list of str
        Clinics in the report.
    measures : dict of str to Measure
        The study's outcome measures.
    km_conf_type : {"log-log", "log", "plain"}
        Kaplan-Meier pointwise interval (R ``survfit`` ``conf.type``).
    source : str
        The data folder's name (never a full path).
    n_input_patients : int
        Patients in the input before the filters.
    results : dict
        Analyses computed once and shared by sections (model fits, curves).
    """

    ds: Dataset
    tables: dict[str, pd.DataFrame]
    protocol: Protocol
    k: int
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    clinics: list[str]
    measures: dict[str, Measure]
    km_conf_type: str
    source: str
    n_input_patients: int
    results: dict = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        ds: Dataset,
        protocol: Protocol | dict | None = None,
        *,
        k: int = SUPPRESSION_K,
        start=None,
        end=None,
        clinics: Sequence[str] | None = None,
        measures: dict[str, Measure] | None = None,
        km_conf_type: str = "log-log",
        tables: dict[str, pd.DataFrame] | None = None,
    ) -> CohortContext:
        """Restrict a dataset to the report's patients and compute (or filter) its tables.

        A patient is in the report when their ``start_date`` lies in ``[start, end]`` (either end
        open when None) and their ``clinic_id`` is in ``clinics`` (all clinics when None). Every
        other table keeps the rows of those patients. When ``tables`` (from :func:`compute_all`)
        are given they are filtered the same way instead of recomputed; they must have been
        computed with the same protocol and measures.

        Parameters
        ----------
        ds : Dataset
            The loaded cohort (:func:`hipdata.load`).
        protocol : Protocol or dict, optional
            The protocol's parameters (a dict: field overrides, as the notebook's ``protocol``
            parameter); default ``Protocol()``.
        k : int
            Suppression threshold: counts 1..k-1 are shown as ``"<k"``.
        start, end : date-like, optional
            Date range on ``start_date`` (inclusive).
        clinics : sequence of str, optional
            Clinic ids to report.
        measures : dict of str to Measure, optional
            The study's outcome measures (default the shipped ones).
        km_conf_type : {"log-log", "log", "plain"}
            Kaplan-Meier pointwise interval (R ``survfit`` ``conf.type``; R's default is
            ``"log"``).
        tables : dict, optional
            Precomputed :func:`hipdata.metrics.compute_all` tables of ``ds``.

        Returns
        -------
        CohortContext
        """
        protocol = _as_protocol(protocol)
        if km_conf_type not in KM_CI_TEXT:
            raise ValueError(f"km_conf_type must be one of {', '.join(KM_CI_TEXT)}")
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
        measures = MEASURES if measures is None else measures
        if tables is None:
            tables = compute_all(filtered, protocol, measures=measures)
        else:
            tables = {name: only(table) for name, table in tables.items() if name != "patients"}
        tables = {**tables, "patients": filtered.patients}
        return cls(
            ds=filtered,
            tables=tables,
            protocol=protocol,
            k=int(k),
            start=start_ts,
            end=end_ts,
            clinics=sorted(filtered.patients["clinic_id"].astype(str).unique()),
            measures=measures,
            km_conf_type=km_conf_type,
            source=_source_name(ds.source),
            n_input_patients=len(patients),
        )

    def cached(self, key: str, compute):
        """``results[key]``, computed by ``compute()`` the first time it is asked for."""
        if key not in self.results:
            self.results[key] = compute()
        return self.results[key]


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
    p = ctx.protocol
    mcids = "; ".join(mcid_text(m, p.responder_rule) for m in ctx.measures.values())
    return (
        f"pain limit {p.pain_threshold:g}/10; progression criterion {p.criterion_sets} x "
        f"{p.criterion_reps:g}-{p.criterion_reps_max:g} reps or {p.criterion_sets} x "
        f"{p.criterion_hold_s:g}-{p.criterion_hold_max_s:g} s; completion at "
        f"{100 * p.completion_attendance:g}% attendance; MCIDs: {mcids} "
        f"({rule_text(p.responder_rule)}); Kaplan-Meier intervals {ctx.km_conf_type}; "
        f"small counts suppressed below k = {ctx.k}"
    )


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
