"""The audit's tables: indicator tables, funnel and case-mix statistics, and the export.

Every figure comes from ``ctx.indicators`` (:func:`hipdata.analysis.audit.audit_indicators`
after disclosure control), so the PDF, the HTML and the CSVs hide the same cells: a count from 1
to k-1 shows as ``<5``; a cell hidden only so that a small one cannot be worked out from totals
shows as ``*``. Funnel and case-mix tables keep only units whose figures are published.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from hipdata.analysis.funnel import (
    FLAG_WITHIN,
    FUNNEL_LEVELS,
    design_effects,
    funnel_table,
    level_label,
)
from hipdata.analysis.indicators import INDICATORS
from hipdata.disclosure import SECONDARY_MARKER, primary_marker
from hipdata.report.document import Document
from hipdata.report.quarterly.context import AuditContext

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


def network_interval(ctx: AuditContext, indicator: str, *, alpha: float = 0.05) -> pd.Series | None:
    """The network's share for a session indicator with a patient-clustered interval.

    :func:`hipdata.analysis.clustered.cluster_ratio` over the network's patients in the quarter
    (ratio estimator, linearisation variance, t on patients - 1 df; a ``1 - alpha`` interval). None when the
    network figure is suppressed or has no value.
    """
    from hipdata.analysis.clustered import cluster_ratio

    row = ctx.network_value(indicator)
    if row["suppressed"] or pd.isna(row["value"]):
        return None
    spec = INDICATORS[indicator]
    table = cluster_ratio(
        ctx.contributions(), numerator=spec.numerator, denominator=spec.denominator, alpha=alpha
    )
    return table.iloc[0] if len(table) else None


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


def _clustering(ctx: AuditContext, indicator: str) -> tuple[float, pd.DataFrame]:
    """The network ICC of a session share and each unit's design effect (1 for episodes).

    Estimated within clinicians (clinics for patients without one), so that differences between
    the units the funnel compares are not taken for clustering.
    """
    spec = INDICATORS[indicator]
    contributions = ctx.contributions()
    if spec.cohort != "session" or spec.kind != "proportion" or contributions.empty:
        return float("nan"), pd.DataFrame(columns=["level", "unit", "design_effect"])
    groups = contributions["clinician_id"].fillna("clinic:" + contributions["clinic_id"])
    return design_effects(
        contributions,
        numerator=spec.numerator,
        denominator=spec.denominator,
        units=["clinic_id", "clinician_id"],
        groups=groups,
    )


def funnels(ctx: AuditContext) -> pd.DataFrame:
    """The funnel statistics of every published unit for the quarter (``funnel.csv``'s rows).

    Per indicator of :data:`FUNNEL_TABLE_INDICATORS` and level (clinic, clinician): the units
    published in ``audit_indicators`` with a denominator, against the network's value as target,
    by :func:`hipdata.analysis.funnel.funnel_table` (exact one-sided tails; session shares with
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
        network = ctx.network_value(indicator)
        if network["suppressed"] or pd.isna(network["value"]):
            continue
        spec = INDICATORS[indicator]
        if spec.kind == "proportion" and not 0 < network["value"] < 1:
            continue  # every unit sits at 0 % or 100 %: nothing to compare
        sd = None
        if spec.kind == "mean":
            episodes = ctx.casemix_episodes()
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
    return table[ctx.in_scope(table)].reset_index(drop=True)


def flag_count(table: pd.DataFrame, level: float) -> int:
    flagged = table["flag"].notna() & table["flag"].ne(FLAG_WITHIN)
    if level == FUNNEL_LEVELS[-1]:
        flagged &= table["flag"].astype("str").str.endswith(level_label(level))
    return int(flagged.sum())


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
    episodes = ctx.casemix_episodes()
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
    return table[ctx.in_scope(table)].reset_index(drop=True)


def export(ctx: AuditContext, doc: Document, output_dir: str | Path) -> dict[str, Path]:
    """Write the PDF, ``audit_indicators.csv``, ``funnel.csv``, ``casemix.csv``,
    ``casemix_model.csv``, ``casemix_calibration.csv`` and ``audit_pooled.csv`` (the rolling four
    quarters pooled; each atomically, names carrying quarter and clinic) and the manifest."""
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
            f"audit_pooled_{suffix}": ctx.pooled_for_export(),
        },
        output_dir,
    )
    tables = {name.removesuffix(f"_{suffix}"): path for name, path in tables.items()}
    write_manifest(
        output_dir,
        ctx.stem,
        {name: path.name for name, path in tables.items()},
        load_report=ctx.ds.load_report,
        protocol=ctx.protocol,
    )
    return {"pdf": pdf, **tables}
