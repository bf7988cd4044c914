"""The audit's sections: each adds its text, tables and figures to a :class:`Document`.

The notebook ``notebooks/quarterly_audit.ipynb`` computes each table with public functions and
adds it to the document in a few lines; these helpers hold the longer prose, and
:func:`build_audit_report` builds the same document in one call. Headings are added by the
caller (the notebook, or :data:`SECTIONS`), once.
"""

from __future__ import annotations

import pandas as pd

import hipdata
from hipdata.analysis.audit import NETWORK_UNIT
from hipdata.analysis.funnel import MIN_UNITS_OVERDISPERSION
from hipdata.analysis.indicators import INDICATORS, indicator_definitions
from hipdata.disclosure import SECONDARY_MARKER, primary_marker
from hipdata.report.document import Document
from hipdata.report.quarterly.context import TRENDS_QUARTERS, AuditContext
from hipdata.report.quarterly.figures import casemix_figure, funnel_figure, trends_figure
from hipdata.report.quarterly.tables import (
    FUNNEL_INDICATORS,
    TERM_LABELS,
    casemix,
    casemix_calibration_table,
    casemix_model_table,
    funnels,
    indicator_table,
    network_interval,
    trend_table,
)


def _share_text(row: pd.Series) -> str:
    if row["suppressed"] or pd.isna(row["value"]):
        return "not reportable (too few)"
    return f"{row['value']:.0%}"


def _share_with_interval(ctx: AuditContext, indicator: str) -> str:
    row = ctx.network_value(indicator)
    interval = network_interval(ctx, indicator)
    if interval is None or pd.isna(interval["ci_low"]):
        return _share_text(row)
    return f"{row['value']:.0%} (95 % CI {interval['ci_low']:.0%} to {interval['ci_high']:.0%})"


def section_summary(ctx: AuditContext, doc: Document) -> None:
    """A few sentences a clinic lead reads first."""
    p = ctx.protocol
    sessions = ctx.network_value("sessions")
    discharged = ctx.network_value("episodes_discharged")
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
    responders = ctx.network_value("nprs_responder")
    doc.bullets(
        [
            f"Pain stayed at or below {p.pain_threshold:g}/10 (during and 24 h after) in "
            f"{_share_with_interval(ctx, 'pain_threshold_adherence')} of sessions with both "
            "pains recorded.",
            f"{_share_with_interval(ctx, 'on_criteria_share')} of progressions were made on "
            "criteria "
            f"({p.criterion_sets} x {p.criterion_reps:g}-{p.criterion_reps_max:g} reps or "
            f"{p.criterion_sets} x {p.criterion_hold_s:g}-{p.criterion_hold_max_s:g} s at "
            f"<= {p.pain_threshold:g}/10 pain).",
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
        "discharged in the quarter, so each episode is judged once. Intervals of session "
        "shares allow for sessions of one patient being alike (clustered by patient)."
    )


def clinic_table(ctx: AuditContext) -> pd.DataFrame:
    """Indicators (rows) for the network and each clinic in scope (columns), the quarter."""
    clinics = sorted(ctx.units["clinic_id"].unique())
    network = indicator_table(ctx, level="network", units=[NETWORK_UNIT], quarter=ctx.quarter)
    by_clinic = indicator_table(ctx, level="clinic", units=clinics, quarter=ctx.quarter)
    return network.rename(columns={NETWORK_UNIT: "Network"}).merge(
        by_clinic, on="Indicator", sort=False
    )


def section_clinics(ctx: AuditContext, doc: Document) -> None:
    """Indicator table per clinic for the quarter, beside the network."""
    doc.table(
        clinic_table(ctx),
        caption=f"Audit indicators, {ctx.quarter}: the network and {ctx.scope}.",
        note="Proportions show the share (numerator/denominator); means show n episodes.",
    )


def clinician_tables(ctx: AuditContext) -> list[tuple[str, pd.DataFrame, pd.DataFrame]]:
    """Per clinic in scope: ``(clinic, quarter table, pooled table)``, the clinic's column
    first, then its clinicians; the pooled table covers ``ctx.pooled`` (the rolling four
    quarters)."""
    out = []
    for clinic, members in ctx.units.dropna().groupby("clinic_id"):
        clinicians = sorted(members["clinician_id"].unique())
        tables = []
        for quarter in (ctx.quarter, ctx.pooled):
            table = indicator_table(ctx, level="clinic", units=[clinic], quarter=quarter).merge(
                indicator_table(ctx, level="clinician", units=clinicians, quarter=quarter),
                on="Indicator",
                sort=False,
            )
            tables.append(table)
        out.append((clinic, tables[0], pooled_table_rows(tables[1])))
    return out


def pooled_table_rows(table: pd.DataFrame) -> pd.DataFrame:
    """A pooled table without the indicators that do not add over quarters."""
    labels = [INDICATORS[name].label for name in ("active_patients",)]
    return table[~table["Indicator"].isin(labels)].reset_index(drop=True)


def section_clinicians(ctx: AuditContext, doc: Document) -> None:
    """Per clinic: its clinicians in the quarter, then pooled over the rolling four quarters."""
    doc.paragraph(
        f"Each clinic's clinicians for {ctx.quarter}, then the same indicators pooled over the "
        f"four quarters {ctx.pooled.replace('-', ' to ')}, so that a clinician with few "
        "discharges a quarter still has figures to show (active patients are not pooled: a "
        "patient seen in two quarters is one patient). The pooled figures are protected "
        "together with the quarters they add up."
    )
    for clinic, quarter_table, pooled in clinician_tables(ctx):
        doc.table(quarter_table, caption=f"Clinic {clinic} and its clinicians, {ctx.quarter}.")
        doc.table(
            pooled,
            caption=f"Clinic {clinic} and its clinicians, four quarters pooled "
            f"({ctx.pooled.replace('-', ' to ')}).",
        )


def section_trends(ctx: AuditContext, doc: Document) -> None:
    """The unit's indicators across the quarter and the previous four, table and charts."""
    level, unit = ("clinic", ctx.clinic) if ctx.clinic else ("network", NETWORK_UNIT)
    label = f"clinic {ctx.clinic}" if ctx.clinic else "the network"
    doc.table(
        trend_table(ctx, level=level, unit=unit),
        caption=f"Indicators for {label}, {ctx.quarters[0]} to {ctx.quarter}.",
    )
    doc.figure(
        trends_figure(ctx),
        caption="Quarterly trends: the network (black) and each clinic; suppressed quarters are "
        "left out. Shaded: the quarter audited.",
    )


def funnel_text(ctx: AuditContext) -> str:
    """How to read the funnel plots (the section's opening paragraph)."""
    adjustment = {
        None: "No overdispersion adjustment was asked for.",
        "multiplicative": "Where the units vary more than chance allows (a chi-squared test on "
        "winsorised z-scores) and there are at least "
        f"{MIN_UNITS_OVERDISPERSION} units, the limits are widened for overdispersion "
        "(multiplicative phi, Spiegelhalter 2005).",
        "additive": "Where the units vary more than chance allows (a chi-squared test on "
        "winsorised z-scores) and there are at least "
        f"{MIN_UNITS_OVERDISPERSION} units, the limits are widened for overdispersion "
        "(additive random-effects tau², on the arcsine scale, Spiegelhalter 2005).",
    }[ctx.overdispersion]
    return (
        "Each point is a clinic or clinician; the line is the network's rate; the dashed and solid "
        "curves are the 95 % and 99.8 % control limits for a unit of that size. A unit is flagged "
        "(orange at 95 %, red at 99.8 %) when the exact probability of a result at least as "
        "extreme, were its true rate the network's, is below 2.5 % (or 0.1 %): so a small unit at "
        "100 % can sit just above a curve and still be within. Sessions of one patient are alike, "
        "so session shares count each unit's sessions at their effective number (design effect "
        "for sessions clustered within patients). Units too small to report are left out. "
        + adjustment
        + " With many units, some fall outside the 95 % limits by chance alone: each caption "
        "gives how many would be expected."
    )


def section_funnels(
    ctx: AuditContext,
    doc: Document,
    funnel: pd.DataFrame | None = None,
    indicators=FUNNEL_INDICATORS,
) -> None:
    """Funnel plots (Spiegelhalter 2005) by clinic and by clinician for the key proportions."""
    funnel = funnels(ctx) if funnel is None else funnel
    doc.paragraph(funnel_text(ctx))
    for indicator in indicators:
        fig, caption = funnel_figure(ctx, funnel, indicator)
        if fig is None:
            doc.paragraph(caption)
        else:
            doc.figure(fig, caption=caption, width_mm=fig.get_figwidth() * 25.4)


def _casemix_display(table: pd.DataFrame, indicator: str) -> pd.DataFrame:
    ratio = indicator == "nprs_responder"
    flag_text = {
        "within": "within",
        "above_95": "above (95 %)",
        "below_95": "below (95 %)",
        "above_99.8": "above (99.8 %)",
        "below_99.8": "below (99.8 %)",
    }
    shown = pd.DataFrame(
        {
            "Unit": table["unit"].astype("str"),
            "Episodes": table["episodes"].map("{:.0f}".format),
            "Observed": table["observed"].map("{:.0f}".format if ratio else "{:.2f}".format),
            "Expected": table["expected"].map("{:.1f}".format if ratio else "{:.2f}".format),
            ("O / E" if ratio else "O - E"): table["ratio" if ratio else "difference"].map(
                "{:.2f}".format if ratio else "{:+.2f}".format
            ),
            "p (one-sided)": table["p_value"].map(lambda p: "< 0.001" if p < 0.001 else f"{p:.3f}"),
            "Flag": table["flag"].map(flag_text),
        }
    )
    return shown


def casemix_text(ctx: AuditContext) -> str:
    """What the case-mix section compares, and how to read it."""
    return (
        "Clinics and clinicians see different patients. Here each unit's NPRS outcomes are set "
        "against those expected for its own patients, from models fitted on all the network's "
        f"episodes discharged from {ctx.quarters[0]} to {ctx.quarter}: responders (logistic "
        "regression) and mean improvement (linear regression) on baseline NPRS, age, sex, "
        "condition and athlete status. O / E above 1 (or O - E above 0) means better than "
        "expected for that case mix. Flags come from the exact probability of the observed "
        "number of responders given each patient's expected chance (Poisson-binomial), or from "
        "the normal distribution for mean improvement. Only units whose NPRS figures are "
        "published in the indicator tables are shown; 'p (one-sided)' is the chance of a result "
        "at least this far from the expected one were the unit's patients doing as expected. "
        "As in the funnels above, a small unit where every patient responded can sit beyond a "
        "drawn curve and still not be flagged. The unadjusted figures and funnels above "
        "stay the primary audit figures; this section says how much of a difference the case "
        "mix explains."
    )


def section_casemix(ctx: AuditContext, doc: Document, result: dict | None = None) -> None:
    """Case-mix adjusted NPRS outcomes per clinic and clinician, with the model behind them."""
    result = casemix(ctx) if result is None else result
    doc.paragraph(casemix_text(ctx))
    for indicator, why in result["notes"].items():
        doc.paragraph(f"{INDICATORS[indicator].label}: no case-mix model ({why}).")
    table = result["table"]
    for indicator in result["fits"]:
        label = INDICATORS[indicator].label
        rows = table[table["indicator"].eq(indicator)]
        if rows.empty:
            doc.paragraph(f"{label}: no unit has enough episodes to show this quarter.")
            continue
        doc.table(
            _casemix_display(rows[ctx.in_scope(rows)], indicator),
            caption=f"{label}, case-mix adjusted, {ctx.quarter}: observed against expected "
            "per clinic and clinician.",
        )
        fig, caption = casemix_figure(ctx, result, indicator)
        doc.figure(fig, caption=caption, width_mm=fig.get_figwidth() * 25.4)
    if result["fits"]:
        model = casemix_model_table(ctx)
        shown = pd.DataFrame(
            {
                "Model": model["indicator"].map(lambda name: INDICATORS[name].label),
                "Term": model["term"].map(lambda term: TERM_LABELS.get(term, term)),
                "Estimate": model["estimate"].map("{:.3f}".format),
                "SE": model["std_error"].map(lambda v: "" if pd.isna(v) else f"{v:.3f}"),
            }
        )
        doc.table(
            shown,
            caption="Case-mix models: coefficients (log-odds for responders, NPRS points for "
            "improvement) with standard errors, and the c-statistic (discrimination: 0.5 is "
            "chance, 1 perfect), R² and residual SD.",
        )
        calibration = casemix_calibration_table(ctx)
        shown = calibration.assign(
            Model=calibration["indicator"].map(lambda name: INDICATORS[name].label),
            Decile=calibration["decile"].astype("int64"),
            Expected=calibration["mean_expected"].map("{:.2f}".format),
            Observed=calibration["observed"].map("{:.2f}".format),
        )[["Model", "Decile", "Expected", "Observed"]]
        doc.table(
            shown,
            caption="Calibration: mean expected against mean observed outcome by tenth of the "
            "expected value (share of responders, or points of improvement). Close agreement "
            "means the model's expectations can be trusted across the case mix.",
        )


def section_data_quality(ctx: AuditContext, doc: Document) -> None:
    """What the figures stand on: quarantined rows, missing pain, missing follow-up."""
    report = ctx.ds.load_report
    quarantined = int(report["rows_quarantined"].sum()) if len(report) else 0
    read = int(report["rows_read"].sum()) if len(report) else 0
    recorded = ctx.network_value("pain_24h_recorded")
    followup = ctx.network_value("followup_questionnaire")
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
    rows = indicator_definitions(ctx.protocol, measures=ctx.measures)
    p = ctx.protocol
    table = rows[["label", "definition"]].rename(
        columns={"label": "Indicator", "definition": "Definition"}
    )
    doc.definitions(table, caption="How each indicator is computed.")
    protocol = pd.DataFrame(
        [
            ("Pain threshold", f"≤ {p.pain_threshold:g}/10 during exercise and in the 24 h after"),
            (
                "Progression criterion (reps)",
                f"{p.criterion_sets} sets of {p.criterion_reps:g}-{p.criterion_reps_max:g} reps (>= {p.criterion_reps:g} counts)",
            ),
            (
                "Progression criterion (holds)",
                f"{p.criterion_sets} sets of {p.criterion_hold_s:g}-{p.criterion_hold_max_s:g} s (>= {p.criterion_hold_s:g} s counts)",
            ),
            (
                "Held back",
                f"{p.held_back_sessions} or more sessions at the same level and load after the criterion was first met",
            ),
            ("Completion", f"attendance ≥ {p.completion_attendance:.0%} of planned sessions"),
            (
                "WHO activity target",
                f"≥ {p.who_cardio_min:g} min cardio and ≥ {p.who_strength_sessions:g} strength sessions a week",
            ),
            (
                "Small-cell suppression",
                "none (internal report, not for circulation)"
                if ctx.k <= 1
                else f"counts 1-{ctx.k - 1} shown as {primary_marker(ctx.k)}, with secondary suppression ({SECONDARY_MARKER})",
            ),
            (
                "Funnel flags",
                "exact one-sided tail probability at most 2.5 % (95 %) or 0.1 % (99.8 %); "
                "limits drawn with Spiegelhalter's interpolation (2005)",
            ),
            (
                "Overdispersion",
                {
                    None: "not adjusted",
                    "multiplicative": "multiplicative phi when the test finds it",
                    "additive": "additive tau² (arcsine scale) when the test finds it",
                }[ctx.overdispersion]
                + f", with at least {MIN_UNITS_OVERDISPERSION} units",
            ),
        ],
        columns=["Parameter", "Value"],
    )
    doc.definitions(protocol, caption="Protocol parameters used in this report.")


def new_document(ctx: AuditContext) -> Document:
    """An empty audit document with its title block."""
    p = ctx.protocol
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
            "Parameters": f"pain <= {p.pain_threshold:g}/10; {p.criterion_sets} x {p.criterion_reps:g}-{p.criterion_reps_max:g} reps or "
            f"{p.criterion_hold_s:g}-{p.criterion_hold_max_s:g} s; completion >= {p.completion_attendance:.0%}; k = {ctx.k}",
        },
        generated=ctx.generated,
    )


#: The report's sections in order: (heading, function); ``{quarter}`` is filled in.
SECTIONS = (
    ("Summary, {quarter}", section_summary),
    ("Indicators by clinic", section_clinics),
    ("Indicators by clinician", section_clinicians),
    ("Trends across quarters", section_trends),
    ("Funnel plots", section_funnels),
    ("Case-mix adjusted outcomes", section_casemix),
    ("Data quality", section_data_quality),
    ("Definitions", section_definitions),
)


def build_audit_report(ctx: AuditContext, *, show: bool = False) -> Document:
    """The whole audit as one document (the notebook builds the same, cell by cell)."""
    doc = new_document(ctx)
    doc.show = show
    for heading, section in SECTIONS:
        doc.heading(heading.format(quarter=ctx.quarter))
        section(ctx, doc)
    return doc
