"""The quarterly clinic audit: indicator tables, funnel plots and trends as a :class:`Document`.

The notebook ``notebooks/quarterly_audit.ipynb`` calls these functions cell by cell; the PDF is
the same document. Every figure comes from :func:`hipdata.report.audit.audit_indicators` after
disclosure control, so the PDF, the HTML and ``audit_indicators.csv`` hide the same cells: a
count from 1 to k-1 shows as ``<5``; a cell hidden only so that a small one cannot be worked out
from totals shows as ``*``. Funnel plots and trend charts leave suppressed units out.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import hipdata
from hipdata.dataset import Dataset
from hipdata.disclosure import SECONDARY_MARKER, primary_marker
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
    patient_contributions,
    previous_quarters,
)
from hipdata.report.document import Document
from hipdata.report.funnel import (
    FLAG_WITHIN,
    FUNNEL_LEVELS,
    MIN_UNITS_OVERDISPERSION,
    expected_chance_flags,
    funnel_table,
    level_label,
    plot_casemix_funnel,
    plot_funnel,
)

#: Indicators shown in funnel plots (proportions whose denominators a funnel needs).
FUNNEL_INDICATORS = ("nprs_responder", "pain_threshold_adherence", "on_criteria_share")
#: What a funnel's x axis counts, per indicator.
FUNNEL_DENOMINATORS = {
    "nprs_responder": "Patients with NPRS at baseline and follow-up",
    "pain_threshold_adherence": "Sessions with both pains recorded",
    "on_criteria_share": "Progressions",
}
#: Indicators in ``funnel.csv``: every proportion, and the mean NPRS improvement.
FUNNEL_TABLE_INDICATORS = tuple(
    name for name, i in INDICATORS.items() if i.kind == "proportion"
) + ("nprs_improvement",)
#: Overdispersion adjustments the audit accepts; the default and why: docs/decisions.md.
OVERDISPERSION_CHOICES = ("none", "multiplicative", "additive")
OVERDISPERSION_DEFAULT = "additive"
#: Case-mix adjusted indicators, in report order.
CASEMIX_INDICATORS = ("nprs_responder", "nprs_improvement")
#: How the case-mix model's terms read in the report (the CSV keeps the names).
TERM_LABELS = {
    "baseline": "baseline NPRS (per point)",
    "age_years": "age (per year)",
    "age_missing": "age not recorded",
    "c_statistic": "c-statistic",
    "r_squared": "R²",
    "residual_sd": "residual SD (points)",
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
    #: Overdispersion adjustment of the funnel limits: "multiplicative" (Spiegelhalter's phi,
    #: normal form), "additive" (random-effects tau2, arcsine scale) or None; applied only when
    #: the units vary more than chance allows and there are enough of them.
    overdispersion: str | None = OVERDISPERSION_DEFAULT
    _cache: dict = field(default_factory=dict, repr=False)

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
        overdispersion: str | bool | None = OVERDISPERSION_DEFAULT,
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
            overdispersion=_overdispersion_choice(overdispersion),
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


def _overdispersion_choice(value: str | bool | None) -> str | None:
    """``"additive"``/``"multiplicative"`` as given; ``"none"``, False or None: no adjustment;
    True (the former on/off option): multiplicative."""
    from hipdata.errors import DataError

    if value is True:
        return "multiplicative"
    if value is False or value is None or value == "none":
        return None
    if value not in OVERDISPERSION_CHOICES:
        raise DataError(
            f"overdispersion {value!r} is not known", fix="use none, multiplicative or additive"
        )
    return value


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


def network_interval(ctx: AuditContext, indicator: str, *, ci: float = 0.95) -> pd.Series | None:
    """The network's share for a session indicator with a patient-clustered interval.

    :func:`hipdata.analysis.clustered.cluster_ratio` over the network's patients in the quarter
    (ratio estimator, linearisation variance, t on patients - 1 df). None when the network figure
    is suppressed or has no value.
    """
    from hipdata.analysis.clustered import cluster_ratio

    row = _network_value(ctx, indicator)
    if row["suppressed"] or pd.isna(row["value"]):
        return None
    spec = INDICATORS[indicator]
    table = cluster_ratio(
        _contributions(ctx), numerator=spec.numerator, denominator=spec.denominator, ci=ci
    )
    return table.iloc[0] if len(table) else None


def _share_with_interval(ctx: AuditContext, indicator: str) -> str:
    row = _network_value(ctx, indicator)
    interval = network_interval(ctx, indicator)
    if interval is None or pd.isna(interval["ci_low"]):
        return _share_text(row)
    return f"{row['value']:.0%} (95 % CI {interval['ci_low']:.0%} to {interval['ci_high']:.0%})"


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
    responders = _network_value(ctx, "nprs_responder")
    doc.bullets(
        [
            f"Pain stayed at or below {PAIN_THRESHOLD:g}/10 (during and 24 h after) in "
            f"{_share_with_interval(ctx, 'pain_threshold_adherence')} of sessions with both "
            "pains recorded.",
            f"{_share_with_interval(ctx, 'on_criteria_share')} of progressions were made on "
            "criteria "
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
        "discharged in the quarter, so each episode is judged once. Intervals of session "
        "shares allow for sessions of one patient being alike (clustered by patient)."
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


def _published_rows(ctx: AuditContext, indicator: str, level: str) -> pd.DataFrame:
    """Audit rows of ``level`` for ``indicator`` in the quarter that are published with a value."""
    rows = ctx.indicators[
        ctx.indicators["indicator"].eq(indicator)
        & ctx.indicators["level"].eq(level)
        & ctx.indicators["quarter"].eq(ctx.quarter)
    ]
    return rows[~rows["suppressed"] & (rows["denominator"] > 0)]


def funnel_data(ctx: AuditContext, indicator: str, level: str) -> pd.DataFrame:
    """Units of ``level`` with their numerator and denominator in the quarter (suppressed left out).

    Every published unit of the network is included (a funnel compares a unit with the others);
    in a one-clinic report other clinics' units are drawn unlabelled (see :func:`section_funnels`).
    """
    shown = _published_rows(ctx, indicator, level)
    return shown[["unit", "numerator", "denominator"]].reset_index(drop=True)


def _contributions(ctx: AuditContext) -> pd.DataFrame:
    if "contributions" not in ctx._cache:
        ctx._cache["contributions"] = patient_contributions(
            ctx.ds, ctx.tables, quarters=[ctx.quarter]
        )
    return ctx._cache["contributions"]


def _casemix_episodes(ctx: AuditContext) -> pd.DataFrame:
    from hipdata.analysis.casemix import casemix_episodes

    if "episodes" not in ctx._cache:
        episodes = casemix_episodes(ctx.ds, ctx.tables)
        ctx._cache["episodes"] = episodes[episodes["quarter"].isin(ctx.quarters)].reset_index(
            drop=True
        )
    return ctx._cache["episodes"]


def _clustering(ctx: AuditContext, indicator: str) -> tuple[float, pd.DataFrame]:
    """The network ICC of a session share and each unit's design effect (1 for episodes)."""
    from hipdata.analysis.clustered import icc_binary

    spec = INDICATORS[indicator]
    contributions = _contributions(ctx)
    if spec.cohort != "session" or spec.kind != "proportion" or contributions.empty:
        return float("nan"), pd.DataFrame(columns=["level", "unit", "design_effect"])
    y, x = contributions[spec.numerator], contributions[spec.denominator]
    # within clinicians (clinics for patients without one), so that differences between the
    # units the funnel compares are not taken for clustering
    groups = contributions["clinician_id"].fillna("clinic:" + contributions["clinic_id"])
    rho = icc_binary(y, x, groups=groups)
    rho = 0.0 if not np.isfinite(rho) else rho
    frames = []
    for level, column in (("clinic", "clinic_id"), ("clinician", "clinician_id")):
        # Kish: 1 + (sum x_i^2 / sum x_i - 1) rho over the unit's patients
        sizes = contributions.assign(_x=x, _x2=x**2).groupby(column)[["_x", "_x2"]].sum()
        sizes = sizes[sizes["_x"] > 0]
        frames.append(
            pd.DataFrame(
                {
                    "level": level,
                    "unit": sizes.index.astype("str"),
                    "design_effect": 1 + (sizes["_x2"] / sizes["_x"] - 1) * rho,
                }
            )
        )
    return rho, pd.concat(frames, ignore_index=True)


def funnels(ctx: AuditContext) -> pd.DataFrame:
    """The funnel statistics of every published unit for the quarter (``funnel.csv``'s rows).

    Per indicator of :data:`FUNNEL_TABLE_INDICATORS` and level (clinic, clinician): the units
    published in ``audit_indicators`` with a denominator, against the network's value as target,
    by :func:`hipdata.report.funnel.funnel_table` (exact one-sided tails; session shares with
    each unit's design effect for sessions clustered in patients; the mean NPRS improvement
    with the network's between-episode standard deviation). ``attrs["notes"]`` holds the
    overdispersion note and the ICC per indicator and level.
    """
    if "funnels" in ctx._cache:
        return ctx._cache["funnels"]
    columns = [
        "level", "unit", "quarter", "indicator", "numerator", "denominator", "value", "target",
        "p_value", *[f"{side}_{level_label(lv)}" for lv in FUNNEL_LEVELS for side in
                     ("lower", "upper")], "design_effect", "flag",
    ]  # fmt: skip
    frames, notes = [], {}
    for indicator in FUNNEL_TABLE_INDICATORS:
        network = _network_value(ctx, indicator)
        if network["suppressed"] or pd.isna(network["value"]):
            continue
        spec = INDICATORS[indicator]
        if spec.kind == "proportion" and not 0 < network["value"] < 1:
            continue  # every unit sits at 0 % or 100 %: nothing to compare
        sd = None
        if spec.kind == "mean":
            episodes = _casemix_episodes(ctx)
            values = episodes.loc[episodes["quarter"].eq(ctx.quarter), "improvement"]
            sd = float(values.std())
            if not np.isfinite(sd) or sd <= 0:
                continue
        rho, deff = _clustering(ctx, indicator)
        for level in ("clinic", "clinician"):
            data = funnel_data(ctx, indicator, level)
            if data.empty:
                continue
            data = data.merge(deff[deff["level"].eq(level)], on="unit", how="left")
            data["design_effect"] = data["design_effect"].fillna(1.0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # the note below says it
                table = funnel_table(
                    data,
                    numerator="numerator",
                    denominator="denominator",
                    unit="unit",
                    target=float(network["value"]),
                    kind=spec.kind,
                    sd=sd,
                    design_effect="design_effect",
                    adjust=ctx.overdispersion,
                )
            notes[(indicator, level)] = {
                "overdispersion": table.attrs["overdispersion_note"],
                "icc": rho,
                "sd": sd,
            }
            frames.append(table.assign(level=level, indicator=indicator, quarter=ctx.quarter))
    result = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    result = result[columns]
    result.attrs["notes"] = notes
    ctx._cache["funnels"] = result
    return result


def funnels_for_export(ctx: AuditContext) -> pd.DataFrame:
    """``funnel.csv``: the report's units (all clinics, or one clinic and its clinicians)."""
    table = funnels(ctx)
    return table[ctx._in_scope(table)].reset_index(drop=True)


def _flag_count(table: pd.DataFrame, level: float) -> int:
    flagged = table["flag"].notna() & table["flag"].ne(FLAG_WITHIN)
    if level == FUNNEL_LEVELS[-1]:
        flagged &= table["flag"].astype("str").str.endswith(level_label(level))
    return int(flagged.sum())


def section_funnels(ctx: AuditContext, doc: Document) -> None:
    """Funnel plots (Spiegelhalter 2005) by clinic and by clinician for the key proportions."""
    doc.heading("Funnel plots")
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
    doc.paragraph(
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
    table = funnels(ctx)
    notes = table.attrs.get("notes", {})
    labelled = set(ctx.units["clinic_id"]) | set(ctx.units["clinician_id"].dropna())
    for indicator in FUNNEL_INDICATORS:
        levels = [
            level
            for level in ("clinic", "clinician")
            if (table["indicator"].eq(indicator) & table["level"].eq(level)).any()
        ]
        label = INDICATORS[indicator].label
        if not levels:
            doc.paragraph(f"{label}: too few units to draw a funnel plot this quarter.")
            continue
        fig, axes = plt.subplots(1, len(levels), figsize=(4.0 * len(levels), 3.8), squeeze=False)
        counts = []
        for ax, level in zip(axes[0], levels, strict=True):
            rows = table[table["indicator"].eq(indicator) & table["level"].eq(level)]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # the caption gives the note
                plot_funnel(
                    data=rows,
                    numerator="numerator",
                    denominator="denominator",
                    unit="unit",
                    target=float(rows["target"].iloc[0]),
                    ax=ax,
                    title=f"by {level}",
                    adjust=ctx.overdispersion,
                    design_effect="design_effect",
                    labelled=labelled,
                )
            ax.set_ylabel(label)
            ax.set_xlabel(FUNNEL_DENOMINATORS[indicator])
            counts.append(
                f"{len(rows)} {level}s plotted, {_flag_count(rows, FUNNEL_LEVELS[0])} flagged at "
                f"95 % (about {expected_chance_flags(len(rows)):.1f} expected by chance alone), "
                f"{_flag_count(rows, FUNNEL_LEVELS[-1])} at 99.8 %"
            )
        fig.suptitle(f"{label}, {ctx.quarter}", fontsize=10)
        fig.tight_layout()
        width = 80.0 * len(levels)
        extra = []
        for level in levels:
            note = notes.get((indicator, level), {})
            if np.isfinite(note.get("icc", np.nan)) and note["icc"] > 0 and level == levels[0]:
                extra.append(
                    f"Sessions clustered within patients: intra-patient correlation "
                    f"{note['icc']:.2f} across the network."
                )
            if note.get("overdispersion"):
                extra.append(f"By {level}: {note['overdispersion']}")
        omitted = [
            len(ctx.indicators[
                ctx.indicators["indicator"].eq(indicator)
                & ctx.indicators["level"].eq(level)
                & ctx.indicators["quarter"].eq(ctx.quarter)
            ]) - int((table["indicator"].eq(indicator) & table["level"].eq(level)).sum())
            for level in ("clinic", "clinician")
        ]  # fmt: skip
        if any(omitted):
            extra.append(
                f"Left out as too small or without data: {omitted[0]} clinic(s), "
                f"{omitted[1]} clinician(s)."
            )
        doc.figure(
            fig,
            caption=f"{label}: funnel plots. " + "; ".join(counts) + ". " + " ".join(extra),
            width_mm=width,
        )


# --- case-mix adjusted comparison -------------------------------------------------------------


def casemix(ctx: AuditContext) -> dict:
    """Case-mix models and the per-unit comparison of the quarter (cached on ``ctx``).

    The models are fitted on the network's episodes discharged in the report's quarters
    (``ctx.quarters``: the quarter and the four before, for a stable model); the comparison is of
    the quarter's episodes, per clinic and per clinician, and keeps only units whose indicator is
    published in ``audit_indicators`` (so ``observed`` and ``episodes`` are figures already
    published there).

    Returns
    -------
    dict
        ``fits`` (indicator -> :class:`~hipdata.analysis.casemix.CasemixFit`), ``table`` (the
        ``casemix.csv`` rows of every published unit), ``notes`` (indicator -> why no model).
    """
    from hipdata.analysis.casemix import casemix_comparison, fit_casemix

    if "casemix" in ctx._cache:
        return ctx._cache["casemix"]
    episodes = _casemix_episodes(ctx)
    current = episodes[episodes["quarter"].eq(ctx.quarter)]
    fits, frames, notes = {}, [], {}
    for indicator in CASEMIX_INDICATORS:
        try:
            fit = fit_casemix(episodes, indicator)
        except ValueError as exc:
            notes[indicator] = str(exc)
            continue
        fits[indicator] = fit
        for level, column in (("clinic", "clinic_id"), ("clinician", "clinician_id")):
            published = set(_published_rows(ctx, indicator, level)["unit"])
            if current.empty or not published:
                continue
            table = casemix_comparison(current, fit, unit=column)
            table = table[table["unit"].astype("str").isin(published)]
            frames.append(table.assign(level=level, indicator=indicator, quarter=ctx.quarter))
    columns = [
        "level", "unit", "quarter", "indicator", "episodes", "observed", "expected", "ratio",
        "difference", *[f"{side}_{level_label(lv)}" for lv in FUNNEL_LEVELS for side in
                        ("lower", "upper")], "p_value", "flag",
    ]  # fmt: skip
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    table = table.reindex(columns=columns)
    result = {"fits": fits, "table": table, "notes": notes}
    ctx._cache["casemix"] = result
    return result


def casemix_model_table(ctx: AuditContext) -> pd.DataFrame:
    """``casemix_model.csv``: each model's terms with estimate and standard error, and its
    c-statistic (logistic) or R² and residual SD (linear) as extra rows."""
    rows = []
    for indicator, fit in casemix(ctx)["fits"].items():
        terms = fit.coefficients.assign(indicator=indicator)
        quality = [("c_statistic", fit.c_statistic), ("r_squared", fit.r_squared),
                   ("residual_sd", fit.sigma)]  # fmt: skip
        extra = pd.DataFrame(
            [
                {"indicator": indicator, "term": name, "estimate": value, "std_error": np.nan}
                for name, value in quality
                if np.isfinite(value)
            ]
        )
        rows += [terms, extra]
    if not rows:
        return pd.DataFrame(columns=["indicator", "term", "estimate", "std_error"])
    return pd.concat(rows, ignore_index=True)[["indicator", "term", "estimate", "std_error"]]


def casemix_calibration_table(ctx: AuditContext) -> pd.DataFrame:
    """``casemix_calibration.csv``: mean expected against mean observed by decile of expected."""
    frames = [
        fit.calibration.drop(columns="episodes").assign(indicator=indicator)
        for indicator, fit in casemix(ctx)["fits"].items()
    ]
    if not frames:
        return pd.DataFrame(columns=["indicator", "decile", "mean_expected", "observed"])
    return pd.concat(frames, ignore_index=True)[
        ["indicator", "decile", "mean_expected", "observed"]
    ]


def casemix_for_export(ctx: AuditContext) -> pd.DataFrame:
    """``casemix.csv``: the report's units."""
    table = casemix(ctx)["table"]
    return table[ctx._in_scope(table)].reset_index(drop=True)


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


def section_casemix(ctx: AuditContext, doc: Document) -> None:
    """Case-mix adjusted NPRS outcomes per clinic and clinician, with the model behind them."""
    doc.heading("Case-mix adjusted outcomes")
    result = casemix(ctx)
    doc.paragraph(
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
    for indicator, why in result["notes"].items():
        doc.paragraph(f"{INDICATORS[indicator].label}: no case-mix model ({why}).")
    table = result["table"]
    labelled = set(ctx.units["clinic_id"]) | set(ctx.units["clinician_id"].dropna())
    for indicator, fit in result["fits"].items():
        label = INDICATORS[indicator].label
        rows = table[table["indicator"].eq(indicator)]
        if rows.empty:
            doc.paragraph(f"{label}: no unit has enough episodes to show this quarter.")
            continue
        in_scope = rows[ctx._in_scope(rows)]
        doc.table(
            _casemix_display(in_scope, indicator),
            caption=f"{label}, case-mix adjusted, {ctx.quarter}: observed against expected "
            "per clinic and clinician.",
        )
        levels = [lv for lv in ("clinic", "clinician") if rows["level"].eq(lv).any()]
        fig, axes = plt.subplots(1, len(levels), figsize=(4.0 * len(levels), 3.8), squeeze=False)
        counts = []
        for ax, level in zip(axes[0], levels, strict=True):
            part = rows[rows["level"].eq(level)]
            plot_casemix_funnel(
                part,
                kind="ratio" if indicator == "nprs_responder" else "difference",
                ax=ax,
                rate=float(fit.observed.mean()),
                sigma=fit.sigma,
                labelled=labelled,
                title=f"by {level}",
            )
            counts.append(
                f"{len(part)} {level}s plotted, {_flag_count(part, FUNNEL_LEVELS[0])} flagged "
                f"at 95 % (about {expected_chance_flags(len(part)):.1f} expected by chance)"
            )
        fig.suptitle(f"{label}, case-mix adjusted, {ctx.quarter}", fontsize=10)
        fig.tight_layout()
        doc.figure(
            fig,
            caption=f"{label}, case-mix adjusted funnel. " + "; ".join(counts) + ".",
            width_mm=80.0 * len(levels),
        )
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
    section_casemix,
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
    """Write the PDF, ``audit_indicators.csv``, ``funnel.csv``, ``casemix.csv``,
    ``casemix_model.csv`` and ``casemix_calibration.csv`` (each atomically) and the manifest."""
    from hipdata.metrics import write_tables
    from hipdata.report.run import write_manifest

    output_dir = Path(output_dir)
    pdf = doc.save_pdf(output_dir / f"{ctx.stem}.pdf")
    suffix = ctx.stem.removeprefix("audit_")  # quarter and clinic: audit_indicators_2026Q3_C01
    tables = write_tables(
        {
            f"audit_indicators_{suffix}": ctx.indicators_for_export(),
            f"funnel_{suffix}": funnels_for_export(ctx),
            f"casemix_{suffix}": casemix_for_export(ctx),
            f"casemix_model_{suffix}": casemix_model_table(ctx),
            f"casemix_calibration_{suffix}": casemix_calibration_table(ctx),
        },
        output_dir,
    )
    tables = {name.removesuffix(f"_{suffix}"): path for name, path in tables.items()}
    write_manifest(
        output_dir,
        ctx.stem,
        {name: path.name for name, path in tables.items()},
        load_report=ctx.ds.load_report,
    )
    return {"pdf": pdf, **tables}
