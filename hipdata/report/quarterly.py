"""The quarterly clinic audit: indicator tables, funnel plots and trends as a :class:`Document`.

The notebook ``notebooks/quarterly_audit.ipynb`` calls these functions cell by cell; the PDF is
the same document. Every figure comes from :func:`hipdata.report.audit.audit_indicators` after
disclosure control, so the PDF, the HTML and ``audit_indicators.csv`` hide the same cells: a
count from 1 to k-1 shows as ``<5``; a cell hidden only so that a small one cannot be worked out
from totals shows as ``*``. Funnel plots and trend charts leave suppressed units out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import MaxNLocator

import hipdata
from hipdata.dataset import Dataset
from hipdata.protocol import (
    COMPLETION_ATTENDANCE,
    CRITERION_HOLD_MAX_S,
    CRITERION_HOLD_S,
    CRITERION_REPS,
    CRITERION_REPS_MAX,
    CRITERION_SETS,
    HELD_BACK_SESSIONS,
    PAIN_THRESHOLD,
    SUPPRESSION_K,
    WHO_CARDIO_MIN,
    WHO_STRENGTH_SESSIONS,
)
from hipdata.report.audit import (
    INDICATORS,
    NETWORK_UNIT,
    audit_indicators,
    indicator_definitions,
    latest_complete_quarter,
    previous_quarters,
)
from hipdata.report.disclosure import SECONDARY_MARKER, primary_marker
from hipdata.report.document import Document
from hipdata.report.funnel import plot_funnel

#: Indicators shown in funnel plots (proportions whose denominators a funnel needs).
FUNNEL_INDICATORS = ("nprs_responder", "pain_threshold_adherence", "on_criteria_share")
#: What a funnel's x axis counts, per indicator.
FUNNEL_DENOMINATORS = {
    "nprs_responder": "Patients with NPRS at baseline and follow-up",
    "pain_threshold_adherence": "Sessions with pain known",
    "on_criteria_share": "Progressions",
}
#: Indicators drawn as trends across quarters.
TREND_INDICATORS = (
    "pain_threshold_adherence",
    "on_criteria_share",
    "nprs_responder",
    "attendance",
    "completion",
    "pain_24h_recorded",
)
#: Means that are shares (shown as percentages); other means are shown with one decimal.
SHARE_MEANS = ("attendance", "dose_adherence", "activity_target_met")
TRENDS_QUARTERS = 4
#: Base font size (pt) of the audit's figures, drawn at about their printed size so that even
#: "small" text (0.83 em) stays at or above 7 pt on A4.
FIGURE_PT = 8.5


@dataclass
class AuditContext:
    """Everything the audit sections need, computed once."""

    ds: Dataset
    tables: dict[str, pd.DataFrame]
    quarter: str
    quarters: list[str]
    clinic: str | None
    k: int
    generated: dt.date
    indicators: pd.DataFrame
    primary: pd.Series = field(repr=False)
    #: Widen funnel limits for overdispersion (Spiegelhalter's multiplicative phi from
    #: winsorised z-scores) when the units vary more than chance allows.
    overdispersion: bool = False

    @classmethod
    def build(
        cls,
        data: str | Path | Dataset,
        *,
        quarter: str | None = None,
        clinic: str | None = None,
        k: int = SUPPRESSION_K,
        generated: str | dt.date | None = None,
        tables: dict[str, pd.DataFrame] | None = None,
        overdispersion: bool = False,
    ) -> AuditContext:
        """Load (if given a folder), compute the metric tables and the indicators.

        ``quarter`` defaults to the latest complete quarter in the data; the report shows it
        beside the previous four quarters. ``clinic`` restricts the tables to one clinic (the
        network stays as the comparison).
        """
        from hipdata.errors import DataError
        from hipdata.metrics import compute_all

        ds = data if isinstance(data, Dataset) else hipdata.load(data)
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
        tables = compute_all(ds) if tables is None else tables
        quarters = previous_quarters(quarter, TRENDS_QUARTERS) + [quarter]
        indicators = audit_indicators(ds, tables, quarters=quarters, k=k)
        return cls(
            ds=ds,
            tables=tables,
            quarter=quarter,
            quarters=quarters,
            clinic=clinic,
            k=k,
            generated=generated or dt.date.today(),
            indicators=indicators,
            primary=indicators.attrs["small_count"],
            overdispersion=overdispersion,
        )

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

    def indicators_for_export(self) -> pd.DataFrame:
        """The long table for ``audit_indicators.csv``: the report's units, suppressed cells empty."""
        keep = self.indicators["level"].eq("network") | self._in_scope(self.indicators)
        return self.indicators[keep].reset_index(drop=True)

    def _in_scope(self, rows: pd.DataFrame) -> pd.Series:
        units = self.units
        return (rows["level"].eq("clinic") & rows["unit"].isin(units["clinic_id"])) | (
            rows["level"].eq("clinician") & rows["unit"].isin(units["clinician_id"].dropna())
        )


def format_indicator(row: pd.Series, *, primary: bool, k: int) -> str:
    """One indicator cell as a clinician reads it: ``84% (112/133)``, ``412``, ``<5``, ``*``."""
    if row["suppressed"]:
        return primary_marker(k) if primary else SECONDARY_MARKER
    kind = INDICATORS[row["indicator"]].kind
    value = row["value"]
    if kind == "count":
        return f"{value:,.0f}"
    if pd.isna(value):
        return "–"
    if kind == "proportion":
        return f"{value:.0%} ({row['numerator']:,.0f}/{row['denominator']:,.0f})"
    if row["indicator"] in SHARE_MEANS:
        return f"{value:.0%} (n={row['denominator']:,.0f})"
    return f"{value:.1f} (n={row['denominator']:,.0f})"


def _display(ctx: AuditContext, rows: pd.DataFrame) -> pd.Series:
    primary = ctx.primary.reindex(rows.index, fill_value=False)
    return pd.Series(
        [
            format_indicator(row, primary=bool(flag), k=ctx.k)
            for (_, row), flag in zip(rows.iterrows(), primary, strict=True)
        ],
        index=rows.index,
        dtype=object,
    )


def indicator_table(
    ctx: AuditContext, *, level: str, units: list[str], quarter: str
) -> pd.DataFrame:
    """Indicators (rows) by unit (columns) for one quarter, formatted and suppressed."""
    rows = ctx.indicators[
        ctx.indicators["level"].eq(level)
        & ctx.indicators["unit"].isin(units)
        & ctx.indicators["quarter"].eq(quarter)
    ]
    table = rows.assign(text=_display(ctx, rows)).pivot(
        index="indicator", columns="unit", values="text"
    )
    table = table.reindex(index=list(INDICATORS), columns=units)
    table.index = [INDICATORS[name].label for name in table.index]
    return table.rename_axis("Indicator").reset_index()


def trend_table(ctx: AuditContext, *, level: str, unit: str) -> pd.DataFrame:
    """Indicators (rows) by quarter (columns) for one unit."""
    rows = ctx.indicators[ctx.indicators["level"].eq(level) & ctx.indicators["unit"].eq(unit)]
    table = rows.assign(text=_display(ctx, rows)).pivot(
        index="indicator", columns="quarter", values="text"
    )
    table = table.reindex(index=list(INDICATORS), columns=ctx.quarters)
    table.index = [INDICATORS[name].label for name in table.index]
    return table.rename_axis("Indicator").reset_index()


def _network_value(ctx: AuditContext, indicator: str, quarter: str | None = None) -> pd.Series:
    rows = ctx.indicators
    return rows[
        rows["level"].eq("network")
        & rows["indicator"].eq(indicator)
        & rows["quarter"].eq(quarter or ctx.quarter)
    ].iloc[0]


def _share_text(row: pd.Series) -> str:
    if row["suppressed"] or pd.isna(row["value"]):
        return "not reportable (too few)"
    return f"{row['value']:.0%}"


def section_summary(ctx: AuditContext, doc: Document) -> None:
    """A few sentences a clinic lead reads first."""
    sessions = _network_value(ctx, "sessions")
    discharged = _network_value(ctx, "episodes_discharged")
    doc.heading(f"Summary, {ctx.quarter}")
    doc.paragraph(
        f"This audit covers {ctx.scope} for {ctx.quarter}, compared with the network and with the "
        f"previous {TRENDS_QUARTERS} quarters. Across the network, "
        + (
            f"{sessions['value']:,.0f} exercise sessions were dated in the quarter and "
            if not sessions["suppressed"]
            else "fewer sessions than can be reported were dated in the quarter and "
        )
        + (
            f"{discharged['value']:,.0f} episodes of care were discharged."
            if not discharged["suppressed"]
            else "too few episodes were discharged to report."
        )
    )
    adherence = _network_value(ctx, "pain_threshold_adherence")
    criteria = _network_value(ctx, "on_criteria_share")
    responders = _network_value(ctx, "nprs_responder")
    doc.bullets(
        [
            f"Pain stayed at or below {PAIN_THRESHOLD:g}/10 (during and 24 h after) in "
            f"{_share_text(adherence)} of sessions with both pains recorded.",
            f"{_share_text(criteria)} of progressions were made on criteria "
            f"({CRITERION_SETS} x {CRITERION_REPS}-{CRITERION_REPS_MAX} reps or "
            f"{CRITERION_SETS} x {CRITERION_HOLD_S:g}-{CRITERION_HOLD_MAX_S:g} s at "
            f"<= {PAIN_THRESHOLD:g}/10 pain).",
            f"{_share_text(responders)} of discharged patients with NPRS at baseline and "
            "follow-up improved by a clinically important amount.",
        ]
    )
    doc.paragraph(
        (
            "Internal report, not for circulation: no count is suppressed. "
            if ctx.k <= 1
            else f"Reading the tables: '{primary_marker(ctx.k)}' is a count between 1 and "
            f"{ctx.k - 1}, not shown to protect patients; '{SECONDARY_MARKER}' is a figure hidden "
            "because it rests on, or could reveal, such a small count. "
        )
        + "'–' means no denominator. Session "
        "indicators count what is dated in the quarter; episode indicators count episodes "
        "discharged in the quarter, so each episode is judged once."
    )


def section_clinics(ctx: AuditContext, doc: Document) -> None:
    """Indicator table per clinic for the quarter, beside the network."""
    doc.heading("Indicators by clinic")
    clinics = sorted(ctx.units["clinic_id"].unique())
    network = indicator_table(ctx, level="network", units=[NETWORK_UNIT], quarter=ctx.quarter)
    by_clinic = indicator_table(ctx, level="clinic", units=clinics, quarter=ctx.quarter)
    table = network.rename(columns={NETWORK_UNIT: "Network"}).merge(
        by_clinic, on="Indicator", sort=False
    )
    doc.table(
        table,
        caption=f"Audit indicators, {ctx.quarter}: the network and {ctx.scope}.",
        note="Proportions show the share (numerator/denominator); means show n episodes.",
    )


def section_clinicians(ctx: AuditContext, doc: Document) -> None:
    """One table per clinic with its clinicians as columns."""
    doc.heading("Indicators by clinician")
    for clinic, members in ctx.units.dropna().groupby("clinic_id"):
        clinicians = sorted(members["clinician_id"].unique())
        clinic_table = indicator_table(ctx, level="clinic", units=[clinic], quarter=ctx.quarter)
        table = clinic_table.merge(
            indicator_table(ctx, level="clinician", units=clinicians, quarter=ctx.quarter),
            on="Indicator",
            sort=False,
        )
        doc.table(table, caption=f"Clinic {clinic} and its clinicians, {ctx.quarter}.")


def section_trends(ctx: AuditContext, doc: Document) -> None:
    """The unit's indicators across the quarter and the previous four, table and charts."""
    level, unit = ("clinic", ctx.clinic) if ctx.clinic else ("network", NETWORK_UNIT)
    label = f"clinic {ctx.clinic}" if ctx.clinic else "the network"
    doc.heading("Trends across quarters")
    doc.table(
        trend_table(ctx, level=level, unit=unit),
        caption=f"Indicators for {label}, {ctx.quarters[0]} to {ctx.quarter}.",
    )
    doc.figure(
        plot_trends(ctx),
        caption="Quarterly trends: the network (black) and each clinic; suppressed quarters are "
        "left out. Shaded: the quarter audited.",
    )


def plot_trends(ctx: AuditContext) -> plt.Figure:
    """Small multiples of the key proportions across quarters (suppressed points left out)."""
    rows = ctx.indicators[ctx.indicators["indicator"].isin(TREND_INDICATORS)]
    rows = rows[rows["level"].eq("network") | (rows["level"].eq("clinic") & ctx._in_scope(rows))]
    # drawn at its printed width (160 mm = 6.3 in), so 7 pt text stays 7 pt on A4
    fig, axes = plt.subplots(2, 3, figsize=(6.3, 4.6), sharex=True)
    positions = {q: i for i, q in enumerate(ctx.quarters)}
    for ax, indicator in zip(axes.flat, TREND_INDICATORS, strict=True):
        subset = rows[rows["indicator"].eq(indicator) & ~rows["suppressed"]]
        for (level, unit), line in subset.groupby(["level", "unit"], sort=True):
            x = line["quarter"].map(positions)
            style = (
                {"color": "black", "linewidth": 2.2, "zorder": 3}
                if level == "network"
                else {"linewidth": 1.2, "alpha": 0.8}
            )
            ax.plot(
                x,
                line["value"],
                marker="o",
                markersize=3,
                label="Network" if level == "network" else unit,
                **style,
            )
        ax.axvspan(len(ctx.quarters) - 1.4, len(ctx.quarters) - 0.6, color="0.92", zorder=0)
        ax.set_title(INDICATORS[indicator].label, fontsize=FIGURE_PT)
        ax.set_ylim(0, max(1.05, ax.get_ylim()[1]))
        ax.yaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0, decimals=0))
        ax.set_xticks(range(len(ctx.quarters)), ctx.quarters, rotation=45, fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(axis="y", color="0.9")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=8, frameon=False
    )
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def funnel_data(ctx: AuditContext, indicator: str, level: str) -> pd.DataFrame:
    """Units of ``level`` with their numerator and denominator in the quarter (suppressed left out)."""
    rows = ctx.indicators[
        ctx.indicators["indicator"].eq(indicator)
        & ctx.indicators["level"].eq(level)
        & ctx.indicators["quarter"].eq(ctx.quarter)
    ]
    shown = rows[~rows["suppressed"] & (rows["denominator"] > 0)].copy()
    if ctx.clinic is not None:
        # other clinics' units stay in the funnel as unlabelled context
        in_scope = ctx._in_scope(shown)
        shown.loc[~in_scope, "unit"] = ""
    return shown[["unit", "numerator", "denominator"]]


def section_funnels(ctx: AuditContext, doc: Document) -> None:
    """Funnel plots (Spiegelhalter 2005) by clinic and by clinician for the key proportions."""
    doc.heading("Funnel plots")
    doc.paragraph(
        "Each point is a clinic or clinician; the line is the network's rate; the dashed and solid "
        "curves are the 95 % and 99.8 % control limits for a unit of that size (exact binomial "
        "limits). A point outside the solid curve is unlikely to differ from the network by chance "
        "alone and deserves a look; a point inside is consistent with the network. Units too small "
        "to report are left out."
        + (
            " The limits are widened for overdispersion (multiplicative, from winsorised z-scores) "
            "where units vary more than chance allows."
            if ctx.overdispersion
            else ""
        )
    )
    for indicator in FUNNEL_INDICATORS:
        label = INDICATORS[indicator].label
        network = _network_value(ctx, indicator)
        target = (
            None if network["suppressed"] or pd.isna(network["value"]) else float(network["value"])
        )
        panels, not_drawn, omitted = [], [], []
        for level in ("clinic", "clinician"):
            data = funnel_data(ctx, indicator, level)
            total = ctx.indicators[
                ctx.indicators["indicator"].eq(indicator)
                & ctx.indicators["level"].eq(level)
                & ctx.indicators["quarter"].eq(ctx.quarter)
            ]
            omitted.append(len(total) - len(data))
            # a pooled rate of 0 % or 100 % has no control limits (binomial variance 0)
            pooled = data["numerator"].sum() / data["denominator"].sum() if len(data) else None
            if data.empty:
                not_drawn.append(f"by {level}: too few to plot")
            elif pooled in (0.0, 1.0) or target in (0.0, 1.0):
                not_drawn.append(f"by {level}: no control limits (rate 0 % or 100 %)")
            else:
                panels.append((level, data))
        note = (
            f" Left out as too small or without data: {omitted[0]} clinic(s), {omitted[1]} clinician(s)."
            if any(omitted)
            else ""
        )
        missing = (" Not drawn " + "; ".join(not_drawn) + ".") if not_drawn else ""
        if not panels:  # no empty panels: the sentence says why
            doc.paragraph(f"{label}, {ctx.quarter}: no funnel plot.{missing}{note}")
            continue
        # printed 160 mm wide at about 1:1, so FIGURE_PT text stays >= 7 pt on A4
        with plt.rc_context({"font.size": FIGURE_PT}):
            fig, axes = plt.subplots(
                1, len(panels), figsize=(3.15 * len(panels), 3.3), squeeze=False
            )
            for ax, (level, data) in zip(axes[0], panels, strict=True):
                plot_funnel(
                    data=data,
                    numerator="numerator",
                    denominator="denominator",
                    unit="unit",
                    target=target,
                    ax=ax,
                    title=f"by {level}",
                    adjust="multiplicative" if ctx.overdispersion else None,
                )
                ax.set_ylabel(label)
                ax.set_xlabel(FUNNEL_DENOMINATORS[indicator])
                ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))  # counts
            # one legend for the figure, below the panels and off every axes
            legend = {}
            for ax in axes[0]:
                for handle, text in zip(*ax.get_legend_handles_labels(), strict=True):
                    legend.setdefault(text, handle)
                if ax.get_legend() is not None:
                    ax.get_legend().remove()
            fig.legend(legend.values(), legend.keys(), loc="lower center", ncol=3, frameon=False)
            fig.suptitle(f"{label}, {ctx.quarter}", fontsize=FIGURE_PT + 1)
            fig.tight_layout(rect=(0, 0.05 + 0.045 * -(-len(legend) // 3), 1, 1))
        doc.figure(
            fig,
            caption=f"{label}: funnel plots "
            + " and ".join(f"by {level}" for level, _ in panels)
            + f".{missing}{note}",
            width_mm=80.0 * len(panels),
        )


def section_data_quality(ctx: AuditContext, doc: Document) -> None:
    """What the figures stand on: quarantined rows, missing pain, missing follow-up."""
    doc.heading("Data quality")
    report = ctx.ds.load_report
    quarantined = int(report["rows_quarantined"].sum()) if len(report) else 0
    read = int(report["rows_read"].sum()) if len(report) else 0
    recorded = _network_value(ctx, "pain_24h_recorded")
    followup = _network_value(ctx, "followup_questionnaire")
    suppressed = ctx.indicators_for_export()["suppressed"]
    items = [
        f"{quarantined:,} of {read:,} input rows were quarantined by the loader (see "
        "quarantine.csv from `hipdata validate`); they are not in any figure.",
        f"Pain 24 h after the session was recorded in {_share_text(recorded)} of the quarter's "
        "sessions; sessions without it count as 'pain not known'.",
        f"A follow-up questionnaire is present for {_share_text(followup)} of episodes discharged "
        "in the quarter; missing follow-up is never filled in from earlier scores.",
        f"{int(suppressed.sum()):,} of {len(suppressed):,} indicator cells are suppressed "
        f"(counts below {ctx.k}, and cells that would reveal them).",
    ]
    if len(report):
        worst = report.sort_values("rows_quarantined", ascending=False).iloc[0]
        if worst["rows_quarantined"] > 0:
            items.append(
                f"Most quarantined rows came from {worst['source_file']} "
                f"({int(worst['rows_quarantined']):,} of {int(worst['rows_read']):,})."
            )
    doc.bullets(items)


def section_definitions(ctx: AuditContext, doc: Document) -> None:
    """The definitions appendix, generated from the code's own parameter values."""
    doc.heading("Definitions")
    rows = indicator_definitions(completion_attendance=COMPLETION_ATTENDANCE)
    table = rows[["label", "definition"]].rename(
        columns={"label": "Indicator", "definition": "Definition"}
    )
    doc.definitions(table, caption="How each indicator is computed.")
    protocol = pd.DataFrame(
        [
            ("Pain threshold", f"≤ {PAIN_THRESHOLD:g}/10 during exercise and in the 24 h after"),
            (
                "Progression criterion (reps)",
                f"{CRITERION_SETS} sets of {CRITERION_REPS}-{CRITERION_REPS_MAX} reps (>= {CRITERION_REPS} counts)",
            ),
            (
                "Progression criterion (holds)",
                f"{CRITERION_SETS} sets of {CRITERION_HOLD_S:g}-{CRITERION_HOLD_MAX_S:g} s (>= {CRITERION_HOLD_S:g} s counts)",
            ),
            (
                "Held back",
                f"{HELD_BACK_SESSIONS} or more sessions at the same level and load after the criterion was first met",
            ),
            ("Completion", f"attendance ≥ {COMPLETION_ATTENDANCE:.0%} of planned sessions"),
            (
                "WHO activity target",
                f"≥ {WHO_CARDIO_MIN:g} min cardio and ≥ {WHO_STRENGTH_SESSIONS} strength sessions a week",
            ),
            (
                "Small-cell suppression",
                "none (internal report, not for circulation)"
                if ctx.k <= 1
                else f"counts 1-{ctx.k - 1} shown as {primary_marker(ctx.k)}, with secondary suppression ({SECONDARY_MARKER})",
            ),
            (
                "Funnel limits",
                "exact binomial with interpolation (Spiegelhalter 2005), 95 % and 99.8 %",
            ),
        ],
        columns=["Parameter", "Value"],
    )
    doc.definitions(protocol, caption="Protocol parameters used in this report.")


def new_document(ctx: AuditContext) -> Document:
    """An empty audit document with its title block."""
    return Document(
        title="Quarterly clinic audit",
        subtitle=f"{ctx.scope.capitalize()}, {ctx.quarter}",
        fields={
            "Clinic": ctx.clinic or "all clinics",
            "Quarter": ctx.quarter,
            "Compared with": f"the network; {ctx.quarters[0]} to {ctx.quarters[-2]}",
            "Generated": ctx.generated.isoformat(),
            "hipdata version": hipdata.__version__,
            "Input data (SHA-256)": ctx.ds.input_hash[:12] or "not from files",
            "Parameters": f"pain <= {PAIN_THRESHOLD:g}/10; {CRITERION_SETS} x {CRITERION_REPS}-{CRITERION_REPS_MAX} reps or "
            f"{CRITERION_HOLD_S:g}-{CRITERION_HOLD_MAX_S:g} s; completion >= {COMPLETION_ATTENDANCE:.0%}; k = {ctx.k}",
        },
        generated=ctx.generated,
    )


SECTIONS = (
    section_summary,
    section_clinics,
    section_clinicians,
    section_trends,
    section_funnels,
    section_data_quality,
    section_definitions,
)


def build_audit_report(ctx: AuditContext, *, show: bool = False) -> Document:
    """The whole audit as one document (the notebook builds the same, cell by cell)."""
    doc = new_document(ctx)
    doc.show = show
    for section in SECTIONS:
        section(ctx, doc)
    return doc


def export(ctx: AuditContext, doc: Document, output_dir: str | Path) -> dict[str, Path]:
    """Write the PDF and ``audit_indicators.csv`` (each atomically) and the run manifest."""
    from hipdata.metrics import write_tables
    from hipdata.report.run import write_manifest

    output_dir = Path(output_dir)
    pdf = doc.save_pdf(output_dir / f"{ctx.stem}.pdf")
    name = ctx.stem.replace("audit_", "audit_indicators_", 1)
    tables = write_tables({name: ctx.indicators_for_export()}, output_dir)
    write_manifest(
        output_dir,
        ctx.stem,
        {"audit_indicators": tables[name].name},
        load_report=ctx.ds.load_report,
    )
    return {"pdf": pdf, "audit_indicators": tables[name]}
