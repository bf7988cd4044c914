"""Patient-reported outcomes: responder rates, mean change, completeness and their associations.

The inputs are the contract's tables: ``outcome_change`` (CONTRACT §5: patient_id, measure, baseline,
followup, improvement, pct_improvement, responder; improvement is signed so that positive is
better), ``patient_summary``, the ``patients`` table and the raw ``outcomes`` scores of the dataset.

Every table states its denominators: how many patients had a measure, how many had a baseline and
follow-up pair, and how many did not.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

from hipdata.analysis._confidence import accepts_ci
from hipdata.analysis.intervals import t_mean_ci, wilson_ci
from hipdata.analysis.models import MixedModelFit, fit_mixed

#: Patient-level covariates of :func:`adherence_outcome_association` besides adherence.
ASSOCIATION_COVARIATES = ("baseline", "age_years", "sex")
#: Values of ``sex`` that mean "not recorded": missing in the models, as in Table 1.
SEX_NOT_RECORDED = ("unknown",)
#: Hat values above ``1 - HC_LEVERAGE_TOLERANCE`` make HC3 undefined (as R sandwich::meatHC).
HC_LEVERAGE_TOLERANCE = float(np.sqrt(np.finfo("float64").eps))


def _keys(by: str | Sequence[str] | None) -> list[str]:
    return [by] if isinstance(by, str) else list(by or [])


def _with_columns(
    outcome_change: pd.DataFrame, columns: list[str], patients: pd.DataFrame | None
) -> pd.DataFrame:
    """``outcome_change`` with the grouping columns it lacks taken from ``patients``."""
    missing = [c for c in columns if c not in outcome_change.columns]
    if not missing:
        return outcome_change
    if patients is None or any(c not in patients.columns for c in missing):
        raise ValueError(
            f"column(s) {missing} are not in outcome_change; pass patients= (or patient_summary) "
            "holding them, keyed by patient_id"
        )
    return outcome_change.merge(
        patients[["patient_id", *missing]], on="patient_id", how="left", validate="many_to_one"
    )


@accepts_ci
def responder_rates(
    outcome_change: pd.DataFrame,
    *,
    by: str | Sequence[str] | None = None,
    patients: pd.DataFrame | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Share of responders per measure with Wilson confidence intervals and full counts.

    Among patients with a baseline and a follow-up score (``responder`` known): ``responder_rate =
    responders / n_followup``, with a Wilson score interval. Patients with the measure but no
    baseline-follow-up pair (follow-up missing, still in care, or no baseline) are counted in
    ``missing_followup``, never silently dropped and never counted as non-responders.

    Parameters
    ----------
    outcome_change : DataFrame
        The ``outcome_change`` table.
    by : str or list of str, optional
        Grouping column(s) besides ``measure`` (e.g. ``clinic_id``); taken from ``patients`` when
        ``outcome_change`` lacks them.
    patients : DataFrame, optional
        ``patients`` (or ``patient_summary``) table supplying ``by`` columns.
    alpha : float
        1 - confidence level (``ci=`` level is a deprecated alias).

    Returns
    -------
    DataFrame
        ``measure, [by...], n_patients, n_followup, missing_followup, responders, responder_rate,
        ci_low, ci_high``.

    Examples
    --------
    >>> import pandas as pd
    >>> change = pd.DataFrame({"patient_id": list("abcd"), "measure": "nprs",
    ...                        "responder": pd.array([True, False, True, None], dtype="boolean")})
    >>> responder_rates(change)[["n_followup", "missing_followup", "responders"]].iloc[0].tolist()
    [3, 1, 2]
    """
    keys = ["measure", *_keys(by)]
    data = _with_columns(outcome_change, keys, patients)
    responder = data["responder"].astype("boolean")
    counts = (
        data.assign(
            _known=responder.notna().astype("int64"),
            _responder=responder.fillna(False).astype("int64"),
        )
        .groupby(keys, sort=True, observed=True, dropna=False)
        .agg(
            n_patients=("patient_id", "size"),
            n_followup=("_known", "sum"),
            responders=("_responder", "sum"),
        )
        .reset_index()
    )
    counts["missing_followup"] = counts["n_patients"] - counts["n_followup"]
    n_followup = counts["n_followup"].to_numpy()
    counts["responder_rate"] = np.where(
        n_followup > 0, counts["responders"] / np.where(n_followup > 0, n_followup, 1), np.nan
    )
    counts["ci_low"], counts["ci_high"] = wilson_ci(counts["responders"], n_followup, alpha=alpha)
    columns = ["n_patients", "n_followup", "missing_followup", "responders", "responder_rate"]
    return counts[[*keys, *columns, "ci_low", "ci_high"]]


#: Scenarios of :func:`responder_sensitivity`, in order.
RESPONDER_SCENARIOS = ("complete_case", "missing_non_responder", "missing_responder")


@accepts_ci
def responder_sensitivity(
    outcome_change: pd.DataFrame,
    *,
    by: str | Sequence[str] | None = None,
    patients: pd.DataFrame | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Responder rates under three assumptions about missing follow-up: complete case and bounds.

    The *eligible* patients of a measure are those with a baseline score who have been
    discharged (every patient with a baseline when ``patients`` is not given; patients still in
    care are not due a follow-up and are left out, as in :func:`followup_completeness`). Of them,
    ``n_followup`` have a follow-up (``responder`` known) and ``n_missing`` do not. Per measure:

    - ``complete_case``: responders / n_followup (:func:`responder_rates`' rate; valid when
      follow-up is missing completely at random);
    - ``missing_non_responder``: responders / n_eligible, the lower bound (every missing
      patient failed);
    - ``missing_responder``: (responders + n_missing) / n_eligible, the upper bound.

    Each with a Wilson interval. The bounds hold whatever the reason for missingness; a wide gap
    between them says how much the missing follow-up could matter. The all-scores mixed model
    (:func:`outcome_mixed_model`) remains the primary estimate of change.

    Parameters
    ----------
    outcome_change : DataFrame
        The ``outcome_change`` table (``baseline`` and ``responder`` used).
    by : str or list of str, optional
        Grouping column(s) besides ``measure``.
    patients : DataFrame, optional
        The ``patients`` table: ``discharge_date`` (and ``by`` columns missing from
        ``outcome_change``).
    alpha : float
        1 - confidence level (``ci=`` level is a deprecated alias).

    Returns
    -------
    DataFrame
        ``measure, [by...], scenario, n_eligible, n_followup, n_missing, responders, numerator,
        denominator, rate, ci_low, ci_high`` (three rows per group, in
        :data:`RESPONDER_SCENARIOS` order).

    Examples
    --------
    >>> change = pd.DataFrame({"patient_id": list("abcde"), "measure": "nprs",
    ...     "baseline": [6.0, 5.0, 7.0, 4.0, 8.0],
    ...     "responder": pd.array([True, False, True, None, None], dtype="boolean")})
    >>> table = responder_sensitivity(change)
    >>> table[["scenario", "numerator", "denominator"]].values.tolist()
    [['complete_case', 2, 3], ['missing_non_responder', 2, 5], ['missing_responder', 4, 5]]
    """
    keys = ["measure", *_keys(by)]
    data = _with_columns(outcome_change, keys, patients)
    eligible = data["baseline"].notna()
    if patients is not None and "discharge_date" in patients.columns:
        discharged = data["patient_id"].map(
            patients.drop_duplicates("patient_id").set_index("patient_id")["discharge_date"].notna()
        )
        eligible &= discharged.fillna(False).astype(bool)
    responder = data["responder"].astype("boolean")
    counts = (
        data.loc[eligible, keys]
        .assign(
            n_eligible=1,
            n_followup=responder[eligible].notna().astype("int64"),
            responders=responder[eligible].fillna(False).astype("int64"),
        )
        .groupby(keys, sort=True, observed=True, dropna=False)
        .sum()
        .reset_index()
    )
    counts["n_missing"] = counts["n_eligible"] - counts["n_followup"]
    numerators = {
        "complete_case": counts["responders"],
        "missing_non_responder": counts["responders"],
        "missing_responder": counts["responders"] + counts["n_missing"],
    }
    denominators = {
        "complete_case": counts["n_followup"],
        "missing_non_responder": counts["n_eligible"],
        "missing_responder": counts["n_eligible"],
    }
    table = pd.concat(
        [
            counts.assign(
                scenario=scenario,
                numerator=numerators[scenario],
                denominator=denominators[scenario],
                _order=i,
            )
            for i, scenario in enumerate(RESPONDER_SCENARIOS)
        ],
        ignore_index=True,
    ).sort_values([*keys, "_order"], kind="stable")
    denominator = table["denominator"].to_numpy()
    table["rate"] = table["numerator"] / table["denominator"].where(table["denominator"] > 0)
    table["ci_low"], table["ci_high"] = wilson_ci(table["numerator"], denominator, alpha=alpha)
    columns = ["scenario", "n_eligible", "n_followup", "n_missing", "responders"]
    columns += ["numerator", "denominator", "rate", "ci_low", "ci_high"]
    return table[[*keys, *columns]].reset_index(drop=True)


@accepts_ci
def mean_change(
    outcome_change: pd.DataFrame,
    *,
    by: str | Sequence[str] | None = None,
    patients: pd.DataFrame | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Mean improvement per measure with a t-based confidence interval.

    Over patients with both scores: ``mean_improvement +- t(1 - alpha/2, n - 1) * sd /
    sqrt(n)`` (positive is better, whatever the measure's direction), beside the mean baseline and
    follow-up scores of the same patients. ``missing_followup`` counts patients with the measure
    but no pair.

    Returns
    -------
    DataFrame
        ``measure, [by...], n, missing_followup, mean_baseline, mean_followup, mean_improvement,
        sd_improvement, ci_low, ci_high``.
    """
    keys = ["measure", *_keys(by)]
    data = _with_columns(outcome_change, keys, patients)
    paired = data.loc[data["improvement"].notna()]
    interval = t_mean_ci(paired, "improvement", by=keys, alpha=alpha).rename(
        columns={"mean": "mean_improvement", "sd": "sd_improvement"}
    )
    means = (
        paired.groupby(keys, sort=True, observed=True, dropna=False)[["baseline", "followup"]]
        .mean()
        .add_prefix("mean_")
        .reset_index()
    )
    totals = (
        data.groupby(keys, sort=True, observed=True, dropna=False)
        .size()
        .rename("n_patients")
        .reset_index()
    )
    table = totals.merge(interval, on=keys, how="left").merge(means, on=keys, how="left")
    table["n"] = table["n"].fillna(0).astype("int64")
    table["missing_followup"] = table["n_patients"] - table["n"]
    columns = ["n", "missing_followup", "mean_baseline", "mean_followup", "mean_improvement"]
    return table[[*keys, *columns, "sd_improvement", "ci_low", "ci_high"]]


def followup_completeness(
    outcome_change: pd.DataFrame,
    *,
    by: str | Sequence[str] | None = None,
    patients: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """How complete the baseline and follow-up questionnaires are, per measure.

    ``followup_share = with_both / expected_followup``, where ``expected_followup`` counts patients
    with a baseline who have been discharged (all patients with a baseline when ``patients`` is not
    given, since discharge is then unknown). Patients still in care (no ``discharge_date``) are
    counted in ``in_care`` and not held against completeness.

    Parameters
    ----------
    outcome_change : DataFrame
        The ``outcome_change`` table.
    by : str or list of str, optional
        Grouping column(s) besides ``measure``.
    patients : DataFrame, optional
        The ``patients`` table (``discharge_date``, and ``by`` columns missing from
        ``outcome_change``).

    Returns
    -------
    DataFrame
        ``measure, [by...], n_patients, in_care, with_baseline, with_followup, with_both,
        expected_followup, followup_share``.
    """
    keys = ["measure", *_keys(by)]
    data = _with_columns(outcome_change, keys, patients)
    if patients is not None and "discharge_date" in patients.columns:
        discharged = data["patient_id"].map(
            patients.set_index("patient_id")["discharge_date"].notna()
        )
        in_care = discharged.eq(False)
    else:
        in_care = pd.Series(False, index=data.index)
    has_baseline = data["baseline"].notna()
    has_followup = data["followup"].notna()
    flags = pd.DataFrame(
        {
            "in_care": in_care,
            "with_baseline": has_baseline,
            "with_followup": has_followup,
            "with_both": has_baseline & has_followup,
            "expected_followup": has_baseline & ~in_care,
        }
    ).astype("int64")
    table = (
        pd.concat([data[keys], flags], axis=1)
        .assign(n_patients=1)
        .groupby(keys, sort=True, observed=True, dropna=False)
        .sum()
        .reset_index()
    )
    expected = table["expected_followup"]
    table["followup_share"] = (table["with_both"] / expected.where(expected > 0)).astype("float64")
    columns = ["n_patients", "in_care", "with_baseline", "with_followup", "with_both"]
    return table[[*keys, *columns, "expected_followup", "followup_share"]]


@accepts_ci
def adherence_outcome_association(
    outcome_change: pd.DataFrame,
    patient_summary: pd.DataFrame,
    patients: pd.DataFrame,
    *,
    measure: str = "nprs",
    adherence: str = "attendance",
    covariates: Sequence[str] = ASSOCIATION_COVARIATES,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Association of adherence with improvement: OLS with HC3 robust standard errors.

    Fits ``improvement ~ adherence + baseline + age_years + sex`` over patients with an
    improvement in ``measure`` and every covariate recorded (complete cases). The ``adherence``
    coefficient is the extra improvement (in the measure's points, positive is better) per 1.0 of
    the adherence measure (e.g. attendance 0 -> 1), adjusted for the covariates. Intervals and
    p-values use the t distribution with HC3 (heteroscedasticity-consistent) standard errors. A
    covariate with a single value among the patients used is left out (recorded in
    ``attrs["notes"]``); ``sex`` enters as a categorical (terms such as ``sex[T.M]``), and a sex
    of ``"unknown"`` counts as missing (:data:`SEX_NOT_RECORDED`; the same rule as Table 1), so
    those patients leave the complete cases.

    HC3 divides each squared residual by ``(1 - h)^2``, with ``h`` the observation's leverage. When
    a patient's leverage is 1 (e.g. the only patient with a level of ``sex``) the estimate is
    undefined: as R's ``sandwich::vcovHC(type = "HC3")``, every standard error, interval and
    p-value is then NaN and a ``RuntimeWarning`` (and a note) names the problem. Leverage counts
    as 1 above ``1 - sqrt(machine epsilon)`` (:data:`HC_LEVERAGE_TOLERANCE`), sandwich's limit.

    Parameters
    ----------
    outcome_change, patient_summary, patients : DataFrame
        The contract tables, joined on ``patient_id``.
    measure : str
        Outcome measure (``nprs``, ``hoos_pain``, ...).
    adherence : str
        A ``patient_summary`` column: ``attendance``, ``pain_threshold_adherence``,
        ``dose_adherence`` ...
    covariates : sequence of str
        Adjustment columns, from ``outcome_change`` (``baseline``) or ``patients``.
    alpha : float
        1 - confidence level (``ci=`` level is a deprecated alias).

    Returns
    -------
    DataFrame
        ``term, estimate, std_error, ci_low, ci_high, p_value, n`` (``n``: patients used), with
        ``attrs["notes"]`` listing patients left out and covariates dropped.
    """
    change = outcome_change.loc[outcome_change["measure"] == measure]
    from_change = [c for c in covariates if c in change.columns]
    from_patients = [c for c in covariates if c not in change.columns]
    data = (
        change[["patient_id", "improvement", *from_change]]
        .merge(patient_summary[["patient_id", adherence]], on="patient_id", how="left")
        .merge(patients[["patient_id", *from_patients]], on="patient_id", how="left")
    )
    numeric = ["improvement", adherence, *[c for c in covariates if c != "sex"]]
    for column in numeric:
        data[column] = pd.to_numeric(data[column]).astype("float64")
    if "sex" in covariates:
        sex = data["sex"].astype("object")
        data["sex"] = sex.where(sex.notna() & ~sex.isin(SEX_NOT_RECORDED))
    complete = data.dropna(subset=["improvement", adherence, *covariates])
    notes = []
    n_left_out = len(data) - len(complete)
    if n_left_out:
        notes.append(
            f"{n_left_out} of {len(data)} patients with a {measure} record were left out "
            "(no improvement, or a missing covariate; sex 'unknown' counts as missing)."
        )
    used = [c for c in covariates if complete[c].nunique() > 1]
    dropped = [c for c in covariates if c not in used]
    if dropped:
        notes.append(f"Covariate(s) {dropped} left out: a single value among the patients used.")
    n_terms = 2 + sum(complete[c].nunique() - 1 if c == "sex" else 1 for c in used)
    if len(complete) <= n_terms:
        raise ValueError(
            f"too few patients for the association model: {len(complete)} complete cases for "
            f"{n_terms} coefficients"
        )
    formula = " + ".join([f"improvement ~ {adherence}", *used])
    result = smf.ols(formula, data=complete).fit(cov_type="HC3", use_t=True)
    interval = result.conf_int(alpha=alpha)
    table = pd.DataFrame(
        {
            "term": [str(t) for t in result.params.index],
            "estimate": result.params.to_numpy(),
            "std_error": result.bse.to_numpy(),
            "ci_low": interval.iloc[:, 0].to_numpy(),
            "ci_high": interval.iloc[:, 1].to_numpy(),
            "p_value": result.pvalues.to_numpy(),
            "n": int(result.nobs),
        }
    )
    leverage = result.get_influence().hat_matrix_diag
    n_at_one = int((leverage > 1 - HC_LEVERAGE_TOLERANCE).sum())
    if n_at_one:
        message = (
            f"HC3 standard errors are undefined: {n_at_one} patient(s) have leverage 1 (a "
            "covariate level held by a single patient); standard errors, intervals and p-values "
            "are left empty. Merge or drop that level."
        )
        warnings.warn(message, RuntimeWarning, stacklevel=2)
        notes.append(message)
        table[["std_error", "ci_low", "ci_high", "p_value"]] = np.nan
    table.attrs["notes"] = notes
    return table


def outcome_mixed_model(
    outcomes: pd.DataFrame,
    patients: pd.DataFrame,
    *,
    measure: str = "nprs",
    random_slope: bool = False,
) -> MixedModelFit:
    """Change in an outcome over time from all available scores (mixed model, no imputation).

    Fits ``score ~ weeks_since_start`` with a random intercept per patient (REML) on every score
    of ``measure``, where ``weeks_since_start = (date - start_date).days / 7`` (unrounded;
    negative for questionnaires completed before care started). Patients contribute whatever
    scores they have: nobody is dropped for a missing follow-up, and nothing is carried forward, so
    under data missing at random this is the primary estimate of change. The ``weeks_since_start``
    coefficient is the mean change in the raw score per week (negative = falling; for NPRS, lower
    is better); the change over ``T`` weeks is ``T`` times it.

    Parameters
    ----------
    outcomes : DataFrame
        The dataset's ``outcomes`` table (patient_id, date, measure, score).
    patients : DataFrame
        The ``patients`` table (patient_id, start_date).
    measure : str
        Measure to model.
    random_slope : bool
        Also give each patient a random slope on ``weeks_since_start``.

    Returns
    -------
    MixedModelFit
    """
    scores = outcomes.loc[outcomes["measure"] == measure, ["patient_id", "date", "score"]].merge(
        patients[["patient_id", "start_date"]], on="patient_id", how="inner", validate="many_to_one"
    )
    scores["score"] = pd.to_numeric(scores["score"]).astype("float64")
    scores["weeks_since_start"] = (scores["date"] - scores["start_date"]).dt.days / 7
    return fit_mixed(
        scores[["patient_id", "weeks_since_start", "score"]],
        "score ~ weeks_since_start",
        group="patient_id",
        re_formula="~weeks_since_start" if random_slope else "1",
        group_label="patient",
        row_label="scores",
    )
