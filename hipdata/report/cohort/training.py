"""Sections 3-5 of the cohort report: training dose, pain over the weeks, pain response."""

from __future__ import annotations

import pandas as pd

from hipdata.analysis.models import MixedModelFit
from hipdata.analysis.response import (
    dose_response_slope,
    dose_response_within_between,
    pain_response_curve,
)
from hipdata.analysis.trajectories import fit_pain_trajectory, weekly_pain
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
    totals = _weekly_total_volume(ctx)
    if len(totals) >= 2:
        first, last = totals.iloc[0], totals.iloc[-1]
        doc.paragraph(
            f"A typical patient's weekly volume load (all exercise families, reps x kg) "
            f"{signed_change(last['volume_median'] - first['volume_median'], 'kg', 0)}, from a "
            f"median of {first['volume_median']:,.0f} kg in week {int(first['week'])} to "
            f"{last['volume_median']:,.0f} kg in week {int(last['week'])}; weekly reps went "
            f"from {first['reps_median']:,.0f} to {last['reps_median']:,.0f}. Body-weight and "
            "band exercises add reps but no volume load."
        )
    else:
        doc.paragraph(f"Too few weeks with at least {k} patients to describe volume over time.")
    caption_tail = f"Weeks with fewer than {k} patients in a family are not drawn."
    figure, ax = new_figure(7.0, 4.4)
    plot_volume_progression(data=weekly, hue="family", min_patients=k, ax=ax)
    doc.figure(
        figure,
        caption="Weekly volume load per exercise family: median across patients. " + caption_tail,
    )
    figure, ax = new_figure(7.0, 4.0)
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
def pain_trajectory_fit(ctx: CohortContext, *, random_slope: bool | None = None) -> MixedModelFit:
    """The mixed model of pain_24h over weeks of care (:func:`fit_pain_trajectory`).

    ``random_slope`` None: the model this report already fitted, else a random intercept and
    slope per patient; True / False: fit that model (and use it in the rest of the report, e.g.
    the data-quality remarks). Raises ValueError when the model cannot be fitted.
    """
    if random_slope is None and "pain_fit" in ctx.results:
        return ctx.results["pain_fit"]
    slope = True if random_slope is None else random_slope
    ctx.results["pain_fit"] = fit_pain_trajectory(ctx.tables["sessions"], random_slope=slope)
    return ctx.results["pain_fit"]


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
    k = ctx.k
    sessions = ctx.tables["sessions"]
    weekly = weekly_pain(sessions)
    patients_per_week = sessions.groupby("week")["patient_id"].nunique()
    enough_weeks = patients_per_week.index[patients_per_week >= k]
    weekly = weekly.loc[weekly["week"].isin(enough_weeks) & (weekly["n"] >= k)]
    try:
        fit = pain_trajectory_fit(ctx, random_slope=random_slope)
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
            f"Pain in the 24 h after sessions {signed_change(slope['estimate'] * per_month, 'points per month', 2)}"
            f" on average (95% CI {format_interval(low, high, 2)}), from "
            f"{fixed.loc['Intercept', 'estimate']:.1f}/10 at the start of care "
            f"(mixed model over {fit.n_obs:,} sessions of {fit.n_groups:,} patients, random "
            f"{fit.random_effects.replace('+', ' and ')} per patient). {certain} Pain stays below "
            f"the {ctx.protocol.pain_threshold:g}/10 limit on average when the line is below the "
            "dotted line."
        )
    figure, ax = new_figure(7.0, 4.4)
    plot_pain_trajectory(data=weekly, model=fit, ax=ax, threshold=ctx.protocol.pain_threshold)
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
    threshold = ctx.protocol.pain_threshold
    curve = pain_response_curve(
        ctx.tables["family_sessions"], sessions=ctx.tables["sessions"], pain_threshold=threshold
    )
    # pain falls over care while load rises: the week of care is held fixed (ADJUST_FOR)
    slope = ctx.cached(
        "dose_slope",
        lambda: dose_response_slope(ctx.tables["family_sessions"], adjust_for=ADJUST_FOR),
    )
    shown = curve.loc[(curve["n"] >= k) & (curve["n_patients"] >= k)].reset_index(drop=True)
    step = slope["step_pct"]
    if pd.notna(slope["estimate"]):
        text = (
            f"Each {step:g}% rise in an exercise family's volume load since its previous session "
            f"went with pain in the next 24 h {abs(slope['estimate']):.2f} points "
            f"{'higher' if slope['estimate'] >= 0 else 'lower'} "
            f"(95% CI {format_interval(slope['ci_low'], slope['ci_high'], 2)}; "
            f"{slope['n_sessions']:,} sessions of {plain_count(slope['n_patients'], k)} patients, "
            "errors clustered by patient, the week of care held fixed)."
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
    figure, ax = new_figure(7.0, 4.4)
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


#: Covariates of the dose-response models: pain falls over a course of care while loads rise, so
#: without the week of care the slope mixes the two (demo: 0.187 unadjusted, 0.194 adjusted,
#: planted 0.2; ``tests/test_analysis_dose_adjusted.py``).
ADJUST_FOR = ("week",)

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
        "dose_parts",
        lambda: dose_response_within_between(ctx.tables["family_sessions"], adjust_for=ADJUST_FOR),
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
            "Mixed model pain_24h ~ (dose - patient's mean dose) + patient's mean dose + week "
            "of care with a random intercept per patient (REML), Wald 95% CIs; dose = the "
            "session's largest "
            f"family volume change / {step:g}%. "
            f"{parts.attrs['n_sessions']:,} sessions of {plain_count(parts.attrs['n_patients'], k)}"
            " patients."
        ),
    )
    if parts.attrs["warnings"]:
        doc.bullets([scrub_small_numbers(w, k) for w in parts.attrs["warnings"]])


# ------------------------------------------------------------------------------------------------
