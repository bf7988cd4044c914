"""Sections 3-5 of the cohort report: training dose, pain over the weeks, pain response."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from hipdata.analysis.models import MixedModelFit, fit_mixed
from hipdata.analysis.response import (
    dose_response_slope,
    dose_response_within_between,
    pain_response_curve,
)
from hipdata.analysis.trajectories import weekly_pain
from hipdata.plots.pain import plot_pain_trajectory
from hipdata.plots.progress import (
    plot_level_progression,
    plot_pain_response,
    plot_volume_progression,
)
from hipdata.report.cohort.common import DAYS_PER_MONTH, new_figure, plain_count
from hipdata.report.cohort.context import CohortContext
from hipdata.report.document import Document
from hipdata.report.format import (
    format_interval,
    format_number,
    format_p,
    scrub_small_numbers,
    signed_change,
)


# ------------------------------------------------------------------------------------------------
# 3. dose and volume
# ------------------------------------------------------------------------------------------------
def weekly_volume(weekly_load: pd.DataFrame, *, k: int) -> pd.DataFrame:
    """Median over patients of their weekly volume load and reps (all families summed).

    One row per week with at least ``k`` patients: ``week, n_patients, volume_median,
    reps_median``.
    """
    per_patient = weekly_load.groupby(["patient_id", "week"], as_index=False)[
        ["volume_load_kg", "total_reps"]
    ].sum()
    summary = per_patient.groupby("week").agg(
        n_patients=("patient_id", "nunique"),
        volume_median=("volume_load_kg", "median"),
        reps_median=("total_reps", "median"),
    )
    return summary.loc[summary["n_patients"] >= k].reset_index()


def volume_text(totals: pd.DataFrame, *, k: int) -> str:
    """A typical patient's weekly volume from the first to the last week (:func:`weekly_volume`)."""
    if len(totals) < 2:
        return f"Too few weeks with at least {k} patients to describe volume over time."
    first, last = totals.iloc[0], totals.iloc[-1]
    return (
        f"A typical patient's weekly volume load (all exercise families, reps x kg) "
        f"{signed_change(last['volume_median'] - first['volume_median'], 'kg', 0)}, from a "
        f"median of {first['volume_median']:,.0f} kg in week {int(first['week'])} to "
        f"{last['volume_median']:,.0f} kg in week {int(last['week'])}; weekly reps went "
        f"from {first['reps_median']:,.0f} to {last['reps_median']:,.0f}. Body-weight and "
        "band exercises add reps but no volume load."
    )


def level_text(weekly_load: pd.DataFrame, *, k: int) -> str | None:
    """The median highest ladder level from the first to the last week with ``k`` patients.

    None when fewer than two weeks have ``k`` patients.
    """
    levels = weekly_load.groupby(["patient_id", "week"])["top_level"].max().groupby("week")
    level_summary = pd.DataFrame({"n": levels.size(), "median": levels.median()})
    level_summary = level_summary.loc[level_summary["n"] >= k]
    if len(level_summary) < 2:
        return None
    return (
        f"The median highest ladder level worked at went from "
        f"{level_summary['median'].iloc[0]:g} in week {level_summary.index[0]} to "
        f"{level_summary['median'].iloc[-1]:g} in week {level_summary.index[-1]}."
    )


def _per_group(hue: str) -> str:
    return "per exercise family" if hue == "family" else f"per {hue}"


def volume_caption(*, k: int, hue: str = "family") -> str:
    """The weekly volume figure's caption."""
    return (
        f"Weekly volume load {_per_group(hue)}: median across patients. Weeks with fewer than "
        f"{k} patients in a {'family' if hue == 'family' else 'group'} are not drawn."
    )


def level_caption(*, k: int, hue: str = "family") -> str:
    """The ladder level figure's caption."""
    return (
        f"Highest ladder level worked at each week, per {hue}: median across patients. "
        f"Weeks with fewer than {k} patients in a {'family' if hue == 'family' else 'group'} "
        "are not drawn."
    )


def section_dose_volume(ctx: CohortContext, doc: Document) -> None:
    """Section 3: weekly volume load and highest ladder level by week of care, per family."""
    k = ctx.k
    weekly = ctx.tables["weekly_load"]
    doc.paragraph(volume_text(weekly_volume(weekly, k=k), k=k))
    figure, ax = new_figure(7.0, 4.4)
    plot_volume_progression(data=weekly, hue="family", min_patients=k, ax=ax)
    doc.figure(figure, caption=volume_caption(k=k))
    figure, ax = new_figure(7.0, 4.0)
    plot_level_progression(data=weekly, hue="family", min_patients=k, ax=ax)
    if text := level_text(weekly, k=k):
        doc.paragraph(text)
    doc.figure(figure, caption=level_caption(k=k))


# ------------------------------------------------------------------------------------------------
# 4. pain trajectory
# ------------------------------------------------------------------------------------------------
#: The pain model's fixed part (:func:`hipdata.analysis.models.fit_mixed` formula).
PAIN_FORMULA = "pain_24h ~ week"


def _numeric(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with its numeric columns as float64 (missing values as NaN) for patsy."""
    numeric = [
        c
        for c in table.columns
        if pd.api.types.is_numeric_dtype(table[c]) and not pd.api.types.is_bool_dtype(table[c])
    ]
    return table.astype(dict.fromkeys(numeric, "float64"))


def pain_trajectory_model(
    ctx: CohortContext, formula: str = PAIN_FORMULA, *, re_formula: str = "~week"
) -> MixedModelFit | None:
    """Fit the pain model on the sessions table: ``fit_mixed(sessions, formula, ...)``.

    :func:`hipdata.analysis.models.fit_mixed` with one set of random effects per patient
    (``re_formula`` ``"~week"``: random intercept and slope, falling back to the intercept when
    lme4's rule finds the slope singular; ``"1"``: random intercept only). The default is
    :func:`hipdata.analysis.trajectories.fit_pain_trajectory`'s model. The fit, or the reason it
    could not be fitted, is kept in ``ctx.results["pain_fit"]`` for the data-quality remarks.

    Returns
    -------
    MixedModelFit or None
        None when the model cannot be fitted (:func:`pain_trajectory_text` says why).
    """
    data = _numeric(ctx.tables["sessions"])
    try:
        fit = fit_mixed(
            data,
            formula,
            group="patient_id",
            re_formula=re_formula,
            group_label="patient",
            row_label="sessions",
        )
    except ValueError as error:
        ctx.results["pain_fit"] = error
        return None
    ctx.results["pain_fit"] = fit
    return fit


def pain_trajectory_fit(ctx: CohortContext, *, random_slope: bool | None = None) -> MixedModelFit:
    """The mixed model of pain_24h over weeks of care (:func:`pain_trajectory_model`).

    ``random_slope`` None: the model this report already fitted, else a random intercept and
    slope per patient; True / False: fit that model (and use it in the rest of the report, e.g.
    the data-quality remarks). Raises ValueError when the model cannot be fitted.
    """
    if random_slope is not None or "pain_fit" not in ctx.results:
        slope = True if random_slope is None else random_slope
        pain_trajectory_model(ctx, re_formula="~week" if slope else "1")
    fit = ctx.results["pain_fit"]
    if isinstance(fit, ValueError):
        raise fit
    return fit


def pain_trajectory_weeks(ctx: CohortContext) -> pd.DataFrame:
    """Weekly mean pain (:func:`weekly_pain`) for the weeks with at least ``k`` patients."""
    k = ctx.k
    sessions = ctx.tables["sessions"]
    weekly = weekly_pain(sessions)
    patients_per_week = sessions.groupby("week")["patient_id"].nunique()
    enough_weeks = patients_per_week.index[patients_per_week >= k]
    return weekly.loc[weekly["week"].isin(enough_weeks) & (weekly["n"] >= k)]


def pain_trajectory_text(ctx: CohortContext, fit: MixedModelFit | None) -> str:
    """The pain model in words: change per month with its interval, or why it was not fitted."""
    k = ctx.k
    if fit is None:
        error = ctx.results.get("pain_fit")
        return f"The pain model could not be fitted: {scrub_small_numbers(str(error), k)}"
    fixed = fit.summary.set_index("term")
    slope = fixed.loc["week"]
    per_month = DAYS_PER_MONTH / 7
    low, high = slope["ci_low"] * per_month, slope["ci_high"] * per_month
    certain = (
        "The interval does not include zero, so chance alone is an unlikely explanation."
        if low > 0 or high < 0
        else "The interval includes zero: the data are compatible with no change."
    )
    return (
        f"Pain in the 24 h after sessions {signed_change(slope['estimate'] * per_month, 'points per month', 2)}"
        f" on average (95% CI {format_interval(low, high, 2)}), from "
        f"{fixed.loc['Intercept', 'estimate']:.1f}/10 at the start of care "
        f"(mixed model over {fit.n_obs:,} sessions of {fit.n_groups:,} patients, random "
        f"{fit.random_effects.replace('+', ' and ')} per patient). {certain} Pain stays below "
        f"the {ctx.protocol.pain_threshold:g}/10 limit on average when the line is below the "
        "dotted line."
    )


def pain_trajectory_figure(
    ctx: CohortContext, weekly: pd.DataFrame, fit: MixedModelFit | None
) -> Figure:
    """Weekly mean pain with CIs, the model's average line and the pain limit."""
    figure, ax = new_figure(7.0, 4.4)
    plot_pain_trajectory(data=weekly, model=fit, ax=ax, threshold=ctx.protocol.pain_threshold)
    ax.legend(loc="upper right", fontsize="small", frameon=False)
    return figure


def pain_trajectory_caption(k: int) -> str:
    """The pain figure's caption."""
    return (
        "Weekly mean pain (0-10) with 95% CIs, and the mixed model's average line for pain in "
        f"the 24 h after. Weeks with fewer than {k} patients are not drawn."
    )


def pain_model_caption(fit: MixedModelFit) -> str:
    """``"Mixed model of pain in the 24 h after sessions (pain_24h ~ week, REML)."``"""
    return f"Mixed model of pain in the 24 h after sessions ({fit.formula}, REML)."


#: The pain model table's note.
PAIN_MODEL_NOTE = "Wald 95% CIs for the fixed effects; random-effect SDs are point estimates."


def model_remarks(warnings: list[str], *, k: int) -> list[str]:
    """A model's warnings (``fit.warnings``) for a report, small numbers scrubbed."""
    return [scrub_small_numbers(w, k) for w in warnings]


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


def section_pain_trajectory(
    ctx: CohortContext, doc: Document, *, random_slope: bool = True
) -> None:
    """Section 4: weekly mean pain with CIs, the mixed model line and its summary table.

    ``random_slope``: a random slope on week per patient besides the random intercept (the
    model falls back to the intercept when lme4's rule finds the slope singular).
    """
    fit = pain_trajectory_model(ctx, PAIN_FORMULA, re_formula="~week" if random_slope else "1")
    weekly = pain_trajectory_weeks(ctx)
    doc.paragraph(pain_trajectory_text(ctx, fit))
    doc.figure(pain_trajectory_figure(ctx, weekly, fit), caption=pain_trajectory_caption(ctx.k))
    if fit is not None:
        doc.table(model_table(fit), caption=pain_model_caption(fit), note=PAIN_MODEL_NOTE)
        if remarks := model_remarks(fit.warnings, k=ctx.k):
            doc.paragraph("Model remarks:")
            doc.bullets(remarks)


# ------------------------------------------------------------------------------------------------
# 5. pain response
# ------------------------------------------------------------------------------------------------
#: Covariates of the dose-response models: pain falls over a course of care while loads rise, so
#: without the week of care the slope mixes the two (demo: 0.187 unadjusted, 0.194 adjusted,
#: planted 0.2; ``tests/test_analysis_dose_adjusted.py``).
ADJUST_FOR = ("week",)

#: How a dose-response covariate is named in the report (other columns: their own name).
_COVARIATE_NOUNS = {"week": "week of care"}


def _covariate_nouns(adjusted_for) -> list[str]:
    return [_COVARIATE_NOUNS.get(name, name) for name in adjusted_for]


def pain_response_bins(curve: pd.DataFrame, *, k: int) -> pd.DataFrame:
    """The bins of :func:`pain_response_curve` with at least ``k`` sessions and patients."""
    return curve.loc[(curve["n"] >= k) & (curve["n_patients"] >= k)].reset_index(drop=True)


def pain_response_text(slope: dict, shown: pd.DataFrame, *, k: int, pain_threshold: float) -> str:
    """The dose-response slope (:func:`dose_response_slope`) and the flare rates in words."""
    step = slope["step_pct"]
    if pd.notna(slope["estimate"]):
        held = "".join(
            f", the {noun} held fixed" for noun in _covariate_nouns(slope["adjusted_for"])
        )
        text = (
            f"Each {step:g}% rise in an exercise family's volume load since its previous session "
            f"went with pain in the next 24 h {abs(slope['estimate']):.2f} points "
            f"{'higher' if slope['estimate'] >= 0 else 'lower'} "
            f"(95% CI {format_interval(slope['ci_low'], slope['ci_high'], 2)}; "
            f"{slope['n_sessions']:,} sessions of {plain_count(slope['n_patients'], k)} patients, "
            f"errors clustered by patient{held})."
        )
    else:
        text = "Too few sessions with a volume change to estimate the dose-response slope."
    if len(shown) >= 2:
        first, last = shown.iloc[0], shown.iloc[-1]
        text += (
            f" Sessions after a change of {first['volume_change_bin']} flared (pain > "
            f"{pain_threshold:g}/10) {100 * first['flare_rate']:.0f}% of the time, against "
            f"{100 * last['flare_rate']:.0f}% after a change of {last['volume_change_bin']}."
        )
    return text


def pain_response_figure(shown: pd.DataFrame, *, pain_threshold: float) -> Figure:
    """Pain in the 24 h after and flare rate by volume change (:func:`plot_pain_response`)."""
    figure, ax = new_figure(7.0, 4.4)
    plot_pain_response(data=shown, pain_threshold=pain_threshold, ax=ax)
    return figure


def pain_response_caption(curve: pd.DataFrame, shown: pd.DataFrame, *, k: int) -> str:
    """The pain-response figure's caption (how many bins were left out)."""
    dropped = len(curve) - len(shown)
    return (
        "Pain in the 24 h after (mean, 95% CI) and flare rate (Wilson 95% CI) by the rise in "
        "the family's volume load since its previous session; n = family sessions. "
        f"Family sessions without a previous loaded session are left out. Bins with fewer "
        f"than {k} sessions or patients are not drawn"
        + (f" ({dropped} bin(s) left out)." if dropped else ".")
    )


def section_pain_response(ctx: CohortContext, doc: Document) -> None:
    """Section 5: pain 24 h after and flare rate by volume change, and the dose-response slope."""
    k = ctx.k
    threshold = ctx.protocol.pain_threshold
    family_sessions = ctx.tables["family_sessions"]
    curve = pain_response_curve(
        family_sessions, sessions=ctx.tables["sessions"], pain_threshold=threshold
    )
    # pain falls over care while load rises: the week of care is held fixed (ADJUST_FOR)
    slope = dose_response_slope(family_sessions, adjust_for=ADJUST_FOR)
    parts = dose_response_within_between(family_sessions, adjust_for=ADJUST_FOR)
    shown = pain_response_bins(curve, k=k)
    doc.paragraph(pain_response_text(slope, shown, k=k, pain_threshold=threshold))
    if text := dose_response_parts_text(parts):
        doc.paragraph(text)
        doc.table(
            dose_response_parts_table(parts),
            caption=dose_response_parts_caption(parts),
            note=dose_response_parts_note(parts, k=k),
        )
        if remarks := model_remarks(parts.attrs["warnings"], k=k):
            doc.bullets(remarks)
    doc.figure(
        pain_response_figure(shown, pain_threshold=threshold),
        caption=pain_response_caption(curve, shown, k=k),
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


def dose_response_parts_text(parts: pd.DataFrame) -> str | None:
    """The within- and between-patient slopes (:func:`dose_response_within_between`) in words.

    None when either part could not be estimated (the section then shows neither text nor table).
    """
    by_part = parts.set_index("part")
    if by_part[["estimate"]].loc[["within", "between"]].isna().any().any():
        return None
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
    return (
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


def dose_response_parts_caption(parts: pd.DataFrame) -> str:
    """The within/between table's caption."""
    step = parts.attrs["step_pct"]
    return (
        f"Change in pain in the 24 h after per {step:g}% more volume: within and between patients."
    )


def dose_response_parts_note(parts: pd.DataFrame, *, k: int) -> str:
    """The within/between table's note: the model (with its covariates) and its size."""
    step = parts.attrs["step_pct"]
    covariates = "".join(f" + {noun}" for noun in _covariate_nouns(parts.attrs["adjusted_for"]))
    return (
        "Mixed model pain_24h ~ (dose - patient's mean dose) + patient's mean dose"
        f"{covariates} with a random intercept per patient (REML), Wald 95% CIs; dose = the "
        "session's largest "
        f"family volume change / {step:g}%. "
        f"{parts.attrs['n_sessions']:,} sessions of {plain_count(parts.attrs['n_patients'], k)}"
        " patients."
    )


# ------------------------------------------------------------------------------------------------
