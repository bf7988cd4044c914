"""Sections 8-9 of the cohort report: outcomes and responders; adherence and outcome."""

from __future__ import annotations

import pandas as pd

from hipdata.analysis.balance import SEX_LABELS
from hipdata.analysis.models import MixedModelFit
from hipdata.analysis.outcomes import (
    SEX_NOT_RECORDED,
    adherence_outcome_association,
    mean_change,
    outcome_mixed_model,
    responder_rates,
    responder_sensitivity,
)
from hipdata.disclosure import SECONDARY_MARKER, format_share, suppress, suppression_note
from hipdata.plots.outcomes import plot_improvement
from hipdata.report.cohort.common import (
    DAYS_PER_MONTH,
    mcid_text,
    measure_decimals,
    measures_present,
    new_figure,
    rule_text,
)
from hipdata.report.cohort.context import CohortContext
from hipdata.report.document import Document
from hipdata.report.format import (
    DASH,
    format_count,
    format_interval,
    format_number,
    format_p,
    scrub_small_numbers,
    signed_change,
)


# ------------------------------------------------------------------------------------------------
# 8. outcomes
# ------------------------------------------------------------------------------------------------
def outcome_fits(ctx: CohortContext, **options) -> dict[str, MixedModelFit | str]:
    """The outcome mixed model per measure (a message instead where it cannot be fitted).

    ``outcome_mixed_model(ctx.ds.outcomes, ctx.ds.patients, measure=name, **options)`` for every
    measure with scores (:func:`hipdata.analysis.outcomes.outcome_mixed_model`: ``score ~
    weeks_since_start``, a random intercept per patient). Without ``options`` the fits this report
    already made are returned; with them (e.g. ``random_slope=True``) the models are refitted and
    used in the rest of the report (sensitivity table, data-quality remarks).
    """

    def fit_all() -> dict[str, MixedModelFit | str]:
        fits: dict[str, MixedModelFit | str] = {}
        for name in measures_present(ctx):
            try:
                fits[name] = outcome_mixed_model(
                    ctx.ds.outcomes, ctx.ds.patients, measure=name, **options
                )
            except ValueError as error:
                fits[name] = str(error)
        return fits

    if options:
        ctx.results["outcome_fits"] = fit_all()
    return ctx.cached("outcome_fits", fit_all)


def _suppressed_followup(total_name: str, total, missing, counts, k: int):
    """The five counts behind an outcome row, suppressed together: ``total_name`` (patients or
    eligible) = followup + missing, and followup = responders + non_responders; ``counts``
    holds ``n_followup`` and ``responders``. Returns :func:`suppress`'s (display, mask)."""
    values = pd.Series(
        {
            total_name: total,
            "followup": counts["n_followup"],
            "missing": missing,
            "responders": counts["responders"],
            "non_responders": counts["n_followup"] - counts["responders"],
        },
        dtype="float64",
    )
    lines = [(total_name, ["followup", "missing"]), ("followup", ["responders", "non_responders"])]
    return suppress(values, lines, k=k)


def outcome_table(ctx: CohortContext) -> pd.DataFrame:
    """Per measure: patients, follow-up available / missing, mean change, responders (Wilson)."""
    k = ctx.k
    change = ctx.tables["outcome_change"]
    rates = responder_rates(change).set_index("measure")
    means = mean_change(change).set_index("measure")
    rows = []
    for name in measures_present(ctx):
        rate, mean = rates.loc[name], means.loc[name]
        display, mask = _suppressed_followup(
            "patients", rate["n_patients"], rate["missing_followup"], rate, k
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
                    f"{format_number(mean['mean_improvement'], measure_decimals(measure))} "
                    f"({format_interval(mean['ci_low'], mean['ci_high'], measure_decimals(measure))})"
                    if paired_ok
                    else SECONDARY_MARKER
                ),
                "Responders, n (%)": format_share(
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
    for name in measures_present(ctx):
        part = table.loc[table["measure"] == name].set_index("scenario")
        if part.empty:
            continue
        first = part.iloc[0]
        display, mask = _suppressed_followup(
            "eligible", first["n_eligible"], first["n_missing"], first, k
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
            models.at[label, "Change per month (95% CI)"] if label in models.index else DASH
        )
        rows.append(row)
    return pd.DataFrame(rows)


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
                    "Patients": DASH,
                    "Scores": DASH,
                    "Baseline (intercept)": DASH,
                    "Change per month (95% CI)": "not fitted",
                    "Better": "",
                }
            )
            continue
        summary = fit.summary.set_index("term")
        slope = summary.loc["weeks_since_start"]
        decimals = measure_decimals(measure)
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


#: Said instead of section 8 when nobody has a questionnaire.
NO_OUTCOMES = "No outcome questionnaires were recorded for these patients."
OUTCOME_CAPTION = "Change between baseline and follow-up per measure."
SENSITIVITY_CAPTION = (
    "Responder rates and missing follow-up: complete case and bounds (Wilson 95% CI)."
)
#: What the sensitivity table is for, said before it.
SENSITIVITY_TEXT = (
    "Responder rates count only patients with a follow-up. The table below brackets them: "
    "if every discharged patient without a follow-up had failed to respond, the rate would be "
    "the lower bound; if every one had responded, the upper bound. The true rate lies "
    "between them whatever the reason for the missing questionnaires. The mixed model, "
    "which uses every score of every patient, remains the primary estimate of change."
)
OUTCOME_MODEL_CAPTION = "Mixed-model change per month from all available scores (primary estimate)."


def primary_measure(ctx: CohortContext) -> str | None:
    """The measure section 8 describes in words: NPRS when present, else the first one."""
    present = measures_present(ctx)
    return "nprs" if "nprs" in present else (present[0] if present else None)


def outcomes_text(ctx: CohortContext, fits: dict, primary: str) -> str:
    """The primary measure's mixed-model change and its responder rate in words."""
    k = ctx.k
    measure = ctx.measures[primary]
    fit = fits[primary]
    rates = responder_rates(ctx.tables["outcome_change"]).set_index("measure").loc[primary]
    text = []
    if not isinstance(fit, str):
        slope = fit.summary.set_index("term").loc["weeks_since_start"]
        per_month = DAYS_PER_MONTH / 7
        decimals = measure_decimals(measure)
        text.append(
            f"Using every questionnaire (patients without a follow-up still count, and nothing "
            f"is carried forward), {measure.label or primary} "
            f"{signed_change(slope['estimate'] * per_month, 'points per month', decimals)} "
            f"(95% CI {format_interval(slope['ci_low'] * per_month, slope['ci_high'] * per_month, decimals)};"
            f" {'higher' if measure.higher_is_better else 'lower'} is better). This mixed-model "
            "estimate is the primary estimate of change."
        )
    if rates["n_followup"] >= k and k <= rates["responders"] <= rates["n_followup"] - k:
        text.append(
            f"Of the {format_count(rates['n_followup'], k)} patients with a baseline and "
            f"follow-up score, {100 * rates['responder_rate']:.0f}% (95% CI "
            f"{format_interval(rates['ci_low'], rates['ci_high'], percent=True)}) improved by at "
            f"least the MCID ({mcid_text(measure, ctx.protocol.responder_rule)}); "
            f"{format_count(rates['missing_followup'], k)} patients have no follow-up pair and "
            "are reported as missing, not as non-responders."
        )
    return " ".join(text)


def outcome_table_note(ctx: CohortContext) -> str:
    """The outcome table's note: change, responders, missing follow-up, suppression."""
    return (
        "Change is signed so that positive is better. Responders: improvement of at least the "
        f"MCID (NPRS: the points {ctx.protocol.responder_rule} the percentage of baseline); "
        "Wilson 95% CI. Missing "
        "follow-up: patients with the measure but no baseline-follow-up pair (including "
        "those still in care); they are never counted as non-responders and nothing is "
        "carried forward. " + suppression_note(ctx.k)
    )


def sensitivity_note(ctx: CohortContext) -> str:
    """The sensitivity table's note: eligibility, the scenarios, the responder rule."""
    return (
        "Eligible: discharged patients with a baseline score (patients still in care are not "
        "yet due a follow-up). Complete case: responders among those with a follow-up; lower "
        "bound: every missing follow-up counted as a non-responder; upper bound: as a "
        "responder. Responder rule: "
        f"{rule_text(ctx.protocol.responder_rule)}. " + suppression_note(ctx.k)
    )


def outcome_model_note(fits: dict) -> str:
    """The outcome model table's note (random intercept, or intercept and slope, per patient)."""
    slopes = any(
        not isinstance(fit, str) and fit.random_effects == "intercept+slope"
        for fit in fits.values()
    )
    random = "random intercept and slope" if slopes else "random intercept"
    return (
        f"score ~ weeks since start of care, {random} per patient (REML); a month is "
        f"{DAYS_PER_MONTH:.2f} days. The raw score's change: negative means falling."
    )


def outcome_remarks(ctx: CohortContext, fits: dict) -> list[str]:
    """Per measure, the model's warnings or why it was not fitted (small numbers scrubbed)."""
    return [
        f"{ctx.measures[name].label or name}: {scrub_small_numbers(w, ctx.k)}"
        for name, fit in fits.items()
        for w in ([fit] if isinstance(fit, str) else fit.warnings)
    ]


def improvement_caption(ctx: CohortContext, primary: str, *, dropped: int = 0) -> str:
    """The improvement figure's caption (how many bars were left out)."""
    label = ctx.measures[primary].label or primary
    return (
        f"Improvement in {label} between baseline and follow-up (patients "
        f"with both scores). Bars with fewer than {ctx.k} patients are not drawn"
        + (f" ({dropped} bar(s) left out)." if dropped else ".")
    )


def section_outcomes(ctx: CohortContext, doc: Document) -> None:
    """Section 8: responders and mean change per measure, and the outcome mixed models."""
    primary = primary_measure(ctx)
    if primary is None:
        doc.paragraph(NO_OUTCOMES)
        return
    fits = outcome_fits(ctx)
    doc.paragraph(outcomes_text(ctx, fits, primary))
    doc.table(outcome_table(ctx), caption=OUTCOME_CAPTION, note=outcome_table_note(ctx))
    doc.paragraph(SENSITIVITY_TEXT)
    doc.table(
        responder_sensitivity_table(ctx), caption=SENSITIVITY_CAPTION, note=sensitivity_note(ctx)
    )
    doc.table(
        outcome_model_table(ctx), caption=OUTCOME_MODEL_CAPTION, note=outcome_model_note(fits)
    )
    if remarks := outcome_remarks(ctx, fits):
        doc.paragraph("Model remarks:")
        doc.bullets(remarks)
    figure, ax = new_figure(7.0, 3.6)
    change = ctx.tables["outcome_change"]
    plot_improvement(data=change, measure=ctx.measures[primary], min_patients=ctx.k, ax=ax)
    doc.figure(figure, caption=improvement_caption(ctx, primary, dropped=ax.hipdata_dropped))


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
        .where(~patients["sex"].isin(SEX_NOT_RECORDED) & patients["sex"].isin(list(SEX_LABELS)))
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
            return f"Sex: {SEX_LABELS.get(term[6:-1], term[6:-1])} (vs reference)"
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
    present = measures_present(ctx)
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
