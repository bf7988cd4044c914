"""Pain response to training dose: volume-change bins, relative load and the dose-response slope.

The protocol lets load and volume rise only while pain stays at or below 3/10 (``PROTOCOL.md`` §2-3).
These functions ask the data how pain answered to the steps patients actually took:

- :func:`pain_response_curve` — pain in the 24 h after, and the flare rate, against how much a
  family's volume load rose since that family's previous session;
- :func:`relative_load_curve` — pain during exercise against the load relative to the patient's
  heaviest load so far;
- :func:`dose_response_slope` — the change in pain_24h per 10 % more volume (the planted
  ``dose_response_per_10pct`` of :mod:`hipdata.synth`), with patient-clustered standard errors;
- :func:`dose_response_within_between` — the same slope split into its within-patient part (a
  patient's bigger steps than their own usual) and its between-patient part (patients who
  usually take bigger steps), from a mixed model with a patient random intercept.

Intervals come from :mod:`hipdata.analysis.intervals`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from hipdata.analysis.intervals import t_interval, wilson_ci
from hipdata.analysis.models import fit_mixed
from hipdata.protocol import PAIN_THRESHOLD, TOLERANCE

#: Volume-change bins (per cent, right-closed): <= 0, 0-10, 10-25, 25-50, > 50.
VOLUME_CHANGE_BINS_PCT: tuple[float, ...] = (-np.inf, 0.0, 10.0, 25.0, 50.0, np.inf)
#: Relative-load bins (fraction of the top load so far, right-closed).
RELATIVE_LOAD_BINS: tuple[float, ...] = (0.0, 0.5, 0.7, 0.8, 0.9, 1.0)
#: The step of volume change the dose-response slope is expressed per (per cent).
DOSE_RESPONSE_STEP_PCT = 10.0

SESSION_KEYS = ["patient_id", "date"]


def _bin_labels(edges: Sequence[float], *, scale: float = 1.0) -> list[str]:
    """Readable labels for right-closed bins: ``<= 0 %``, ``0-10 %``, ``> 50 %``."""

    def number(value: float) -> str:
        return f"{value * scale:g}"

    labels = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        if np.isneginf(low):
            labels.append(f"<= {number(high)} %")
        elif np.isposinf(high):
            labels.append(f"> {number(low)} %")
        elif low < 0:
            labels.append(f"{number(low)} to {number(high)} %")
        else:
            labels.append(f"{number(low)}-{number(high)} %")
    return labels


def _assign_bins(
    values: pd.Series, edges: Sequence[float], labels: list[str], *, tolerance: float
) -> pd.Series:
    """Right-closed bins; a value within ``tolerance`` above an edge counts as on the edge."""
    return pd.cut(values - tolerance, bins=list(edges), labels=labels, right=True)


def _flare(
    max_pain_during: pd.Series, pain_24h: pd.Series, *, pain_threshold: float, tolerance: float
) -> pd.Series:
    """CONTRACT §4 flare: True if any recorded pain > threshold, False if both known and <=."""
    over = (max_pain_during > pain_threshold + tolerance) | (pain_24h > pain_threshold + tolerance)
    both_known = max_pain_during.notna() & pain_24h.notna()
    flare = pd.Series(pd.NA, index=max_pain_during.index, dtype="boolean")
    flare = flare.mask(both_known, False).mask(over, True)
    return flare


def _summarise_pain_by_bin(
    frame: pd.DataFrame, *, bin_column: str, pain_column: str, prefix: str, alpha: float
) -> pd.DataFrame:
    """n, n_patients and the mean pain with its t interval per bin (empty bins kept)."""
    grouped = frame.groupby(bin_column, observed=False)
    table = pd.DataFrame(
        {
            "n": grouped.size(),
            "n_patients": grouped["patient_id"].nunique(),
            f"{prefix}_n": grouped[pain_column].count(),
            f"{prefix}_mean": grouped[pain_column].mean(),
            f"{prefix}_sd": grouped[pain_column].std(),
        }
    )
    table[f"{prefix}_ci_low"], table[f"{prefix}_ci_high"] = t_interval(
        table[f"{prefix}_mean"], table[f"{prefix}_sd"], table[f"{prefix}_n"], alpha=alpha
    )
    return table


# --------------------------------------------------------------------------------------------
# pain against volume change
# --------------------------------------------------------------------------------------------
def pain_response_curve(
    family_sessions: pd.DataFrame,
    *,
    sessions: pd.DataFrame | None = None,
    bins: Sequence[float] = VOLUME_CHANGE_BINS_PCT,
    pain_threshold: float = PAIN_THRESHOLD,
    tolerance: float = TOLERANCE,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Pain in the 24 h after, and the flare rate, against the family's volume change.

    Each family session is placed in a bin of its ``volume_change_pct`` (100 x the change in
    volume load since the previous session of the same patient and family, divided by that
    previous volume). Bins are right-closed: with the default edges a change of exactly 0 % is
    ``"<= 0 %"`` and exactly 10 % is ``"0-10 %"`` (within ``tolerance``).

    Per bin: the mean of the session's ``pain_24h`` with a Student-t interval, and the flare rate
    with a Wilson interval. A family session's *flare* is its whole session's flare (CONTRACT §4:
    ``True`` when the session's max_pain_during or pain_24h is > ``pain_threshold``, ``False`` when
    both are recorded and <= it, unknown otherwise); the rate is flares / family sessions with the
    flare known. Pass the ``sessions`` table to use its ``flare`` column; without it the session's
    values are rebuilt from ``family_sessions`` (the maximum over the session's families of
    ``max_pain_during``, which covers each family's top-level sets only).

    Family sessions without a previous session of their family, and those whose previous session
    had no volume load (body-weight or band work), have no volume change: they are left out and
    counted in ``result.attrs``.

    Parameters
    ----------
    family_sessions : DataFrame
        The ``family_sessions`` table (patient_id, date, family, max_pain_during, pain_24h,
        volume_change_pct, ...).
    sessions : DataFrame, optional
        The ``sessions`` table (patient_id, date, flare).
    bins : sequence of float
        Bin edges in per cent, right-closed; ``-inf`` / ``inf`` allowed at the ends.
    pain_threshold : float
        The pain limit for a flare (0-10 scale).
    tolerance : float
        Slack for values on a bin edge or the threshold.
    alpha : float
        1 - confidence level of the intervals.

    Returns
    -------
    DataFrame
        One row per bin, in bin order: ``volume_change_bin`` (label), ``bin_low_pct``,
        ``bin_high_pct``, ``n`` (family sessions), ``n_patients``, ``pain_24h_n``,
        ``pain_24h_mean``, ``pain_24h_sd``, ``pain_24h_ci_low``, ``pain_24h_ci_high``,
        ``flare_known``, ``flare_count``, ``flare_rate``, ``flare_ci_low``, ``flare_ci_high``.
        ``attrs`` holds ``n_family_sessions``, ``excluded_no_previous`` and
        ``excluded_no_previous_volume``.

    Examples
    --------
    >>> fs = pd.DataFrame({"patient_id": ["P1"] * 3, "date": pd.to_datetime(
    ...     ["2026-01-05", "2026-01-08", "2026-01-12"]), "family": ["extensors"] * 3,
    ...     "max_pain_during": [2.0, 2.0, 4.0], "pain_24h": [1.0, 2.0, 3.0],
    ...     "volume_change_pct": [np.nan, 0.0, 10.0]})
    >>> curve = pain_response_curve(fs)
    >>> curve[["volume_change_bin", "n", "flare_count"]].head(2).to_dict("list")
    {'volume_change_bin': ['<= 0 %', '0-10 %'], 'n': [1, 1], 'flare_count': [0, 1]}
    """
    edges = list(bins)
    labels = _bin_labels(edges)
    frame = family_sessions.sort_values(["patient_id", "family", "date"]).reset_index(drop=True)
    is_first = frame.groupby(["patient_id", "family"]).cumcount() == 0
    has_change = frame["volume_change_pct"].notna()

    if sessions is not None:
        frame = frame.drop(columns=["flare"], errors="ignore").merge(
            sessions[[*SESSION_KEYS, "flare"]], on=SESSION_KEYS, how="left", validate="many_to_one"
        )
        frame["flare"] = frame["flare"].astype("boolean")  # a left merge keeps the row order
    else:
        session_pain = frame.groupby(SESSION_KEYS)[["max_pain_during", "pain_24h"]].transform("max")
        frame = frame.assign(
            flare=_flare(
                session_pain["max_pain_during"],
                session_pain["pain_24h"],
                pain_threshold=pain_threshold,
                tolerance=tolerance,
            )
        )

    used = frame.loc[has_change].copy()
    used["volume_change_bin"] = _assign_bins(
        used["volume_change_pct"], edges, labels, tolerance=tolerance
    )
    used["flare_as_float"] = used["flare"].astype("Float64").to_numpy("float64", na_value=np.nan)
    table = _summarise_pain_by_bin(
        used, bin_column="volume_change_bin", pain_column="pain_24h", prefix="pain_24h", alpha=alpha
    )
    grouped = used.groupby("volume_change_bin", observed=False)["flare_as_float"]
    table["flare_known"] = grouped.count().astype("int64")
    table["flare_count"] = grouped.sum().astype("int64")
    table["flare_rate"] = table["flare_count"] / table["flare_known"].where(
        table["flare_known"] > 0
    )
    table["flare_ci_low"], table["flare_ci_high"] = wilson_ci(
        table["flare_count"], table["flare_known"], alpha=alpha
    )
    table = table.reset_index()
    table["volume_change_bin"] = table["volume_change_bin"].astype(str)
    table.insert(1, "bin_low_pct", edges[:-1])
    table.insert(2, "bin_high_pct", edges[1:])
    table.attrs = {
        "n_family_sessions": len(family_sessions),
        "excluded_no_previous": int(is_first.sum()),
        "excluded_no_previous_volume": int((~is_first & ~has_change).sum()),
        "pain_threshold": pain_threshold,
    }
    return table


# --------------------------------------------------------------------------------------------
# pain against relative load
# --------------------------------------------------------------------------------------------
def relative_load_curve(
    data: pd.DataFrame,
    *,
    by: str | None = None,
    bins: Sequence[float] | int = RELATIVE_LOAD_BINS,
    tolerance: float = TOLERANCE,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Pain during exercise against the load relative to the patient's top load so far.

    *Relative load* = load / the patient's highest load in that exercise (or family) on any date
    up to and including this one (a cumulative maximum over dates). Loads of 0 (body weight or
    band) have no relative load and are left out (counted in ``attrs["excluded_zero_load"]``).

    Two inputs are accepted:

    - the ``sets`` table (``load_kg``, ``pain_during``), grouped by ``exercise`` by default. As
      ``pain_during`` is recorded per exercise and session, sets of one exercise in one session at
      the same load are one observation (the unit is patient x date x exercise x load);
    - the ``family_sessions`` table (``top_load_kg``, ``max_pain_during``), grouped by
      ``family``; the unit is the family session.

    Parameters
    ----------
    data : DataFrame
        ``sets`` or ``family_sessions``.
    by : str, optional
        The column whose top load is tracked (default ``exercise`` for sets, ``family`` for
        family sessions).
    bins : sequence of float or int
        Right-closed edges as fractions of the top load (default 0-0.5, 0.5-0.7, 0.7-0.8,
        0.8-0.9, 0.9-1.0), or a number of equal-count (quantile) bins, e.g. 10 for deciles.
    tolerance : float
        Slack for values on a bin edge.
    alpha : float
        1 - confidence level of the intervals (Student t; observations of one patient are treated
        as independent, so the intervals are optimistic).

    Returns
    -------
    DataFrame
        One row per bin: ``relative_load_bin`` (label such as ``"70-80 %"``), ``bin_low``,
        ``bin_high`` (fractions), ``n``, ``n_patients``, ``pain_during_n``, ``pain_during_mean``,
        ``pain_during_sd``, ``pain_during_ci_low``, ``pain_during_ci_high``.

    Examples
    --------
    >>> sets = pd.DataFrame({"patient_id": ["P1"] * 3, "exercise": ["bridge_loaded"] * 3,
    ...     "date": pd.to_datetime(["2026-01-05", "2026-01-08", "2026-01-12"]),
    ...     "load_kg": [20.0, 10.0, 30.0], "pain_during": [2.0, 1.0, 4.0]})
    >>> curve = relative_load_curve(sets)
    >>> curve.set_index("relative_load_bin")["n"].to_dict()["0-50 %"]  # 10 / 20 on day 2
    1
    """
    if {"load_kg", "pain_during"} <= set(data.columns):
        load_column, pain_column, default_by = "load_kg", "pain_during", "exercise"
    elif {"top_load_kg", "max_pain_during"} <= set(data.columns):
        load_column, pain_column, default_by = "top_load_kg", "max_pain_during", "family"
    else:
        raise ValueError(
            "relative_load_curve needs the sets table (load_kg, pain_during) or the "
            "family_sessions table (top_load_kg, max_pain_during)"
        )
    by = default_by if by is None else by
    keys = ["patient_id", by]
    frame = data[[*keys, "date", load_column, pain_column]].rename(
        columns={load_column: "load", pain_column: "pain_during"}
    )
    if load_column == "load_kg":
        frame = frame.groupby([*keys, "date", "load"], as_index=False, dropna=False)[
            "pain_during"
        ].max()
    daily_top = (
        frame.groupby([*keys, "date"], as_index=False)["load"]
        .max()
        .sort_values([*keys, "date"])
        .rename(columns={"load": "top_load_so_far"})
    )
    daily_top["top_load_so_far"] = daily_top.groupby(keys)["top_load_so_far"].cummax()
    frame = frame.merge(daily_top, on=[*keys, "date"], how="left", validate="many_to_one")
    loaded = frame["load"] > 0
    frame = frame.loc[loaded].copy()
    frame["relative_load"] = frame["load"] / frame["top_load_so_far"]

    if isinstance(bins, int):
        quantiles = np.quantile(frame["relative_load"], np.linspace(0, 1, bins + 1))
        edges = list(np.unique(quantiles))
        edges[0] = 0.0
    else:
        edges = list(bins)
    labels = _bin_labels(edges, scale=100.0)
    frame["relative_load_bin"] = _assign_bins(
        frame["relative_load"], edges, labels, tolerance=tolerance
    )
    table = _summarise_pain_by_bin(
        frame,
        bin_column="relative_load_bin",
        pain_column="pain_during",
        prefix="pain_during",
        alpha=alpha,
    ).reset_index()
    table["relative_load_bin"] = table["relative_load_bin"].astype(str)
    table.insert(1, "bin_low", edges[:-1])
    table.insert(2, "bin_high", edges[1:])
    table.attrs = {"excluded_zero_load": int((~loaded).sum()), "unit": by}
    return table


# --------------------------------------------------------------------------------------------
# dose-response slope
# --------------------------------------------------------------------------------------------
def _session_dose(family_sessions: pd.DataFrame, adjust_for: Sequence[str] = ()) -> pd.DataFrame:
    """Per session: the largest family volume change (%) and pain_24h, both recorded, and the
    session's value of each ``adjust_for`` column (session-level, e.g. ``week``; recorded)."""
    adjust_for = list(adjust_for)
    missing = [name for name in adjust_for if name not in family_sessions.columns]
    if missing:
        raise ValueError(
            f"adjust_for: no column {', '.join(map(repr, missing))} in family_sessions "
            f"(it has {', '.join(family_sessions.columns)})"
        )
    covariates = {name: (name, "first") for name in adjust_for}
    return (
        family_sessions.groupby(SESSION_KEYS, as_index=False)
        .agg(
            largest_change_pct=("volume_change_pct", "max"),
            pain_24h=("pain_24h", "max"),
            **covariates,
        )
        .dropna(subset=["largest_change_pct", "pain_24h", *adjust_for])
    )


def dose_response_slope(
    family_sessions: pd.DataFrame,
    *,
    step_pct: float = DOSE_RESPONSE_STEP_PCT,
    alpha: float = 0.05,
    adjust_for: Sequence[str] = (),
) -> dict[str, float | int]:
    """Change in pain_24h per ``step_pct`` % more volume load, with patient-clustered errors.

    Shared definition (planted by :mod:`hipdata.synth`): for each session, its *largest* family
    ``volume_change_pct`` over the families done that session predicts the session's
    ``pain_24h``::

        pain_24h = intercept + slope * largest_change_pct / step_pct
                   [+ c_1 * adjust_for_1 + ...] + error

    fitted by OLS with standard errors clustered by patient (statsmodels ``cov_type="cluster"``;
    R: ``lm`` with ``sandwich::vcovCL(type = "HC1")``). Sessions where no family has a volume
    change, or without pain_24h (or without a covariate), are left out.

    Pain falls over a course of care while volume steps grow, so the unadjusted slope mixes the
    dose-response with the time trend (on the demo cohort 0.187 against the planted 0.2);
    ``adjust_for=("week",)`` adds the CONTRACT §4 week of care as a linear covariate and
    compares sessions at the same point of care.

    Parameters
    ----------
    family_sessions : DataFrame
        The ``family_sessions`` table (patient_id, date, volume_change_pct, pain_24h).
    step_pct : float
        The volume step the slope is expressed per (default 10 %).
    alpha : float
        1 - confidence level of the interval.
    adjust_for : sequence of str
        Session-level numeric columns of ``family_sessions`` entered as linear covariates
        (e.g. ``("week",)``); default none (the unadjusted slope).

    Returns
    -------
    dict
        ``estimate``, ``std_error``, ``ci_low``, ``ci_high``, ``p_value``, ``intercept``,
        ``n_sessions``, ``n_patients``, ``step_pct``, ``adjusted_for`` (the covariates, a
        tuple) and ``covariates`` (their coefficients, a dict). With fewer than ``3 + len(adjust_for)`` sessions or 2 patients the model is not
        fitted and the figures are NaN.

    Examples
    --------
    >>> fs = pd.DataFrame({"patient_id": ["P1", "P1", "P2", "P2"], "date": pd.to_datetime(
    ...     ["2026-01-05", "2026-01-08", "2026-01-05", "2026-01-08"]),
    ...     "volume_change_pct": [0.0, 20.0, 10.0, 30.0], "pain_24h": [1.0, 2.0, 1.5, 2.5]})
    >>> round(dose_response_slope(fs)["estimate"], 6)  # pain = 1 + 0.5 x change / 10
    0.5
    """
    adjust_for = tuple(adjust_for)
    per_session = _session_dose(family_sessions, adjust_for)
    n_sessions = len(per_session)
    n_patients = int(per_session["patient_id"].nunique())
    result: dict[str, float | int] = {
        "estimate": np.nan,
        "std_error": np.nan,
        "ci_low": np.nan,
        "ci_high": np.nan,
        "p_value": np.nan,
        "intercept": np.nan,
        "n_sessions": n_sessions,
        "n_patients": n_patients,
        "step_pct": step_pct,
        "adjusted_for": adjust_for,
        "covariates": {name: np.nan for name in adjust_for},
    }
    if n_sessions < 3 + len(adjust_for) or n_patients < 2:
        return result
    dose = per_session["largest_change_pct"].to_numpy(dtype="float64") / step_pct
    covariates = per_session[list(adjust_for)].to_numpy(dtype="float64")
    design = sm.add_constant(np.column_stack([dose, covariates]), has_constant="add")
    groups = pd.factorize(per_session["patient_id"])[0]
    fit = sm.OLS(per_session["pain_24h"].to_numpy(dtype="float64"), design).fit(
        cov_type="cluster", cov_kwds={"groups": groups}
    )
    ci = np.asarray(fit.conf_int(alpha=alpha))
    result.update(
        estimate=float(fit.params[1]),
        std_error=float(fit.bse[1]),
        ci_low=float(ci[1, 0]),
        ci_high=float(ci[1, 1]),
        p_value=float(fit.pvalues[1]),
        intercept=float(fit.params[0]),
        covariates={name: float(fit.params[2 + i]) for i, name in enumerate(adjust_for)},
    )
    return result


#: Rows of :func:`dose_response_within_between`, in order.
DOSE_RESPONSE_PARTS = ("pooled", "within", "between", "between_minus_within")


def dose_response_within_between(
    family_sessions: pd.DataFrame,
    *,
    step_pct: float = DOSE_RESPONSE_STEP_PCT,
    alpha: float = 0.05,
    adjust_for: Sequence[str] = (),
) -> pd.DataFrame:
    """The dose-response slope split into its within-patient and between-patient parts.

    With each session's dose ``x = largest family volume change (%) / step_pct`` (as
    :func:`dose_response_slope`) and ``m`` the mean of ``x`` over the patient's sessions used,
    the model (patient-mean centring, a random intercept ``u`` per patient, REML via
    :func:`hipdata.analysis.models.fit_mixed`) is::

        pain_24h = b0 + b_within (x - m) + b_between m + u_patient + error

    ``within``: how much higher pain is after a session whose step was ``step_pct`` % bigger than
    that patient's usual step (the patient is their own control, so stable differences between
    patients cannot confound it); ``between``: how much higher a patient's average pain is per
    ``step_pct`` % more in their usual step. ``between_minus_within`` (the contextual effect,
    Mundlak's test of their equality) comes with its Wald interval. ``pooled`` is
    :func:`dose_response_slope` (OLS, patient-clustered errors), a weighted mix of the two that
    describes neither when they differ. ``adjust_for`` adds session-level covariates (e.g.
    ``("week",)``, the time trend of pain over care) to both models as linear terms ``+ c week``.

    Parameters
    ----------
    family_sessions : DataFrame
        The ``family_sessions`` table (patient_id, date, volume_change_pct, pain_24h).
    step_pct : float
        The volume step the slopes are expressed per (default 10 %).
    alpha : float
        1 - confidence level (Wald intervals).
    adjust_for : sequence of str
        Session-level numeric columns of ``family_sessions`` entered as linear covariates in the
        mixed model and in the pooled slope (default none).

    Returns
    -------
    DataFrame
        One row per part of :data:`DOSE_RESPONSE_PARTS`: ``part, estimate, std_error, ci_low,
        ci_high, p_value``. ``attrs``: ``n_sessions``, ``n_patients``, ``step_pct``,
        ``adjusted_for``, ``random_effects`` and ``warnings`` (the mixed model's notes). With fewer than 3 sessions
        or 2 patients (or a model that cannot be fitted) the mixed-model rows are NaN and
        ``warnings`` says why.
    """
    adjust_for = tuple(adjust_for)
    per_session = _session_dose(family_sessions, adjust_for)
    per_session["dose"] = per_session["largest_change_pct"].astype("float64") / step_pct
    per_session["dose_between"] = per_session.groupby("patient_id")["dose"].transform("mean")
    per_session["dose_within"] = per_session["dose"] - per_session["dose_between"]
    pooled = dose_response_slope(
        family_sessions, step_pct=step_pct, alpha=alpha, adjust_for=adjust_for
    )
    columns = ["estimate", "std_error", "ci_low", "ci_high", "p_value"]
    table = pd.DataFrame(np.nan, index=list(DOSE_RESPONSE_PARTS), columns=columns)
    table.loc["pooled"] = [pooled[c] for c in columns]
    notes: list[str] = []
    random_effects = ""
    if pooled["n_sessions"] < 3 + len(adjust_for) or pooled["n_patients"] < 2:
        notes.append("too few sessions or patients for the within/between model")
    else:
        try:
            fit = fit_mixed(
                per_session[["patient_id", "pain_24h", "dose_within", "dose_between", *adjust_for]],
                " + ".join(["pain_24h ~ dose_within", "dose_between", *adjust_for]),
                group="patient_id",
                re_formula="1",
                alpha=alpha,
                group_label="patient",
                row_label="sessions",
            )
        except ValueError as error:
            notes.append(f"the within/between model could not be fitted: {error}")
        else:
            notes += fit.warnings
            random_effects = fit.random_effects
            summary = fit.summary.set_index("term")
            for part in ("within", "between"):
                table.loc[part] = summary.loc[f"dose_{part}", columns].to_numpy(dtype="float64")
            names = list(fit.result.fe_params.index)
            contrast = np.zeros(len(names))
            contrast[names.index("dose_between")] = 1.0
            contrast[names.index("dose_within")] = -1.0
            covariance = np.asarray(fit.result.cov_params())[: len(names), : len(names)]
            difference = float(contrast @ fit.result.fe_params.to_numpy())
            se = float(np.sqrt(contrast @ covariance @ contrast))
            z = stats.norm.ppf(1 - alpha / 2)
            table.loc["between_minus_within"] = [
                difference,
                se,
                difference - z * se,
                difference + z * se,
                2 * stats.norm.sf(abs(difference) / se),
            ]
    table = table.rename_axis("part").reset_index()
    table.attrs = {
        "n_sessions": int(pooled["n_sessions"]),
        "n_patients": int(pooled["n_patients"]),
        "step_pct": step_pct,
        "adjusted_for": adjust_for,
        "random_effects": random_effects,
        "warnings": notes,
    }
    return table
