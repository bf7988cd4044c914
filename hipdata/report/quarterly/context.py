"""The audit's context: one cohort, one protocol, one quarter, computed once.

:meth:`AuditContext.build` takes a loaded :class:`~hipdata.dataset.Dataset` and a
:class:`~hipdata.protocol.Protocol`, computes the metric tables and the audit indicators (the
quarter, the four before it, and the rolling four quarters pooled), and the sections and tables
read from it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

from hipdata.analysis.audit import (
    _contributions,
    _indicators_from,
    _patient_contributions_from,
    latest_complete_quarter,
    previous_quarters,
)
from hipdata.dataset import Dataset
from hipdata.errors import DataError
from hipdata.protocol import SUPPRESSION_K, Protocol

#: Overdispersion adjustments the audit accepts; the default and why: docs/decisions.md.
OVERDISPERSION_CHOICES = ("none", "multiplicative", "additive")
OVERDISPERSION_DEFAULT = "additive"
#: Quarters shown before the audited one in trends.
TRENDS_QUARTERS = 4
#: Quarters pooled for the clinician rows (the quarter and the three before it).
POOLED_QUARTERS = 4


def as_protocol(protocol: Protocol | dict | None) -> Protocol:
    """A :class:`Protocol` from a Protocol, a dict of field overrides (a notebook parameter) or
    None (the published protocol)."""
    if protocol is None:
        return Protocol()
    if isinstance(protocol, Protocol):
        return protocol
    unknown = set(protocol) - set(Protocol.names())
    if unknown:
        raise DataError(
            f"unknown protocol parameter(s) {sorted(unknown)}",
            fix="use " + ", ".join(Protocol.names()),
        )
    try:
        return Protocol(**protocol)
    except ValueError as exc:
        raise DataError(str(exc), fix="give the protocol parameter a valid value") from None


@dataclass
class AuditContext:
    """Everything the audit sections need, computed once.

    ``indicators`` is :func:`~hipdata.analysis.audit.audit_indicators` over ``quarters`` (the
    quarter and the :data:`TRENDS_QUARTERS` before it) with the last :data:`POOLED_QUARTERS`
    pooled (period ``pooled``), already through disclosure control; ``primary`` marks the
    suppressed counts that are themselves small (shown ``"<k"``).
    """

    ds: Dataset
    tables: dict[str, pd.DataFrame]
    protocol: Protocol
    quarter: str
    quarters: list[str]
    pooled: str
    clinic: str | None
    k: int
    generated: dt.date
    indicators: pd.DataFrame
    primary: pd.Series = field(repr=False)
    #: Overdispersion adjustment of the funnel limits: "multiplicative" (Spiegelhalter's phi,
    #: normal form), "additive" (random-effects tau2, arcsine scale) or None; applied only when
    #: the units vary more than chance allows and there are enough of them.
    overdispersion: str | None = OVERDISPERSION_DEFAULT
    measures: dict | None = None
    _cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls,
        ds: Dataset,
        protocol: Protocol | dict | None = None,
        *,
        k: int = SUPPRESSION_K,
        quarter: str | None = None,
        clinic: str | None = None,
        generated: str | dt.date | None = None,
        tables: dict[str, pd.DataFrame] | None = None,
        measures: dict | None = None,
        overdispersion: str | bool | None = OVERDISPERSION_DEFAULT,
    ) -> AuditContext:
        """Compute the metric tables (unless given) and the indicators of a loaded cohort.

        Parameters
        ----------
        ds : Dataset
            The cohort, from :func:`hipdata.load`.
        protocol : Protocol or dict, optional
            The protocol (a dict of field overrides is turned into one); default the published.
        k : int
            Small-cell threshold (1: no suppression, internal reports only).
        quarter : str, optional
            The quarter audited (``2026Q3``); default the latest complete quarter in the data.
        clinic : str, optional
            One clinic's report (the network stays as the comparison).
        generated : str or date, optional
            Report date (default today).
        tables : dict, optional
            Metric tables already computed with ``protocol``.
        measures : dict, optional
            Outcome-measure registry (:func:`hipdata.outcome_measures.read_measures`).
        overdispersion : {"additive", "multiplicative", "none"}
            Funnel-limit adjustment.
        """
        from hipdata.metrics import compute_all

        if not isinstance(ds, Dataset):
            raise TypeError(
                "AuditContext.build takes a loaded Dataset: use hipdata.load(folder) first"
            )
        protocol = as_protocol(protocol)
        if clinic is not None and clinic not in set(ds.patients["clinic_id"]):
            raise DataError(
                f"clinic {clinic!r} is not in the data",
                fix="use one of " + ", ".join(sorted(ds.patients["clinic_id"].unique())),
            )
        if quarter is None:
            quarter = latest_complete_quarter(ds)
        else:
            try:
                quarter = str(pd.Period(quarter, freq="Q"))
            except ValueError:
                raise DataError(f"{quarter!r} is not a quarter", fix="write it as 2026Q3") from None
        if isinstance(generated, str):
            generated = dt.date.fromisoformat(generated)
        if tables is None:
            tables = compute_all(ds, protocol, measures=measures)
        quarters = previous_quarters(quarter, TRENDS_QUARTERS) + [quarter]
        # audit_indicators, keeping its per-record quantities for contributions()
        records = _contributions(ds, tables, protocol)
        indicators = _indicators_from(
            records,
            ds,
            quarters=quarters,
            k=k,
            pooled=POOLED_QUARTERS,
            clinician_quarters=[quarter],
        )
        context = cls(
            ds=ds,
            tables=tables,
            protocol=protocol,
            quarter=quarter,
            quarters=quarters,
            pooled=next(iter(indicators.attrs["pooled"])),
            clinic=clinic,
            k=k,
            generated=generated or dt.date.today(),
            indicators=indicators,
            primary=indicators.attrs["small_count"],
            overdispersion=_overdispersion_choice(overdispersion),
            measures=measures,
        )
        context._cache["records"] = records
        return context

    @property
    def units(self) -> pd.DataFrame:
        """The clinics (and their clinicians) this report is about."""
        patients = self.ds.patients
        if self.clinic is not None:
            patients = patients[patients["clinic_id"] == self.clinic]
        return patients[["clinic_id", "clinician_id"]].drop_duplicates()

    @property
    def scope(self) -> str:
        return f"clinic {self.clinic}" if self.clinic else "all clinics"

    @property
    def stem(self) -> str:
        """Output names carry quarter and clinic (``audit_2026Q3_C01``), file-name safe."""
        from hipdata.report.run import safe_name

        return f"audit_{self.quarter}_{safe_name(self.clinic) if self.clinic else 'all'}"

    @property
    def labelled(self) -> set:
        """Units a figure may label: the report's clinics and clinicians."""
        return set(self.units["clinic_id"]) | set(self.units["clinician_id"].dropna())

    def in_scope(self, rows: pd.DataFrame) -> pd.Series:
        """Rows (``level``, ``unit``) of the report's clinics and clinicians."""
        units = self.units
        return (rows["level"].eq("clinic") & rows["unit"].isin(units["clinic_id"])) | (
            rows["level"].eq("clinician") & rows["unit"].isin(units["clinician_id"].dropna())
        )

    def rows(
        self, *, quarter: str | None = None, level: str | None = None, indicator=None
    ) -> pd.DataFrame:
        """Indicator rows of a quarter (default the audited one; ``ctx.pooled`` for the pooled
        period), optionally of one level and one indicator (or a list)."""
        rows = self.indicators
        keep = rows["quarter"].eq(quarter or self.quarter)
        if level is not None:
            keep &= rows["level"].eq(level)
        if indicator is not None:
            names = [indicator] if isinstance(indicator, str) else list(indicator)
            keep &= rows["indicator"].isin(names)
        return rows[keep]

    def network_value(self, indicator: str, quarter: str | None = None) -> pd.Series:
        """The network's row of ``indicator`` in ``quarter`` (default the audited one)."""
        return self.rows(quarter=quarter, level="network", indicator=indicator).iloc[0]

    def indicators_for_export(self) -> pd.DataFrame:
        """``audit_indicators.csv``: the quarters' rows of the network and the report's units."""
        rows = self.indicators[self.indicators["quarter"].isin(self.quarters)]
        return rows[rows["level"].eq("network") | self.in_scope(rows)].reset_index(drop=True)

    def pooled_for_export(self) -> pd.DataFrame:
        """``audit_pooled.csv``: the pooled period's rows, same columns (``quarter`` = period)."""
        rows = self.indicators[self.indicators["quarter"].eq(self.pooled)]
        return rows[rows["level"].eq("network") | self.in_scope(rows)].reset_index(drop=True)

    def contributions(self) -> pd.DataFrame:
        """Each patient's audit quantities in the quarter (cached; never published)."""
        if "contributions" not in self._cache:
            if "records" not in self._cache:  # a context made without build()
                self._cache["records"] = _contributions(self.ds, self.tables, self.protocol)
            self._cache["contributions"] = _patient_contributions_from(
                self._cache["records"], self.ds, quarters=[self.quarter]
            )
        return self._cache["contributions"]

    def casemix_episodes(self) -> pd.DataFrame:
        """Discharged episodes with NPRS pairs in the report's quarters (cached)."""
        from hipdata.analysis.casemix import casemix_episodes

        if "episodes" not in self._cache:
            episodes = casemix_episodes(self.ds, self.tables)
            self._cache["episodes"] = episodes[episodes["quarter"].isin(self.quarters)]
            self._cache["episodes"] = self._cache["episodes"].reset_index(drop=True)
        return self._cache["episodes"]


def _overdispersion_choice(value: str | bool | None) -> str | None:
    """``"additive"``/``"multiplicative"`` as given; ``"none"``, False or None: no adjustment;
    True (the former on/off option): multiplicative."""
    if value is True:
        return "multiplicative"
    if value is False or value is None or value == "none":
        return None
    if value not in OVERDISPERSION_CHOICES:
        raise DataError(
            f"overdispersion {value!r} is not known", fix="use none, multiplicative or additive"
        )
    return value
