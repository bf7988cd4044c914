"""Pain over the weeks of care: weekly means with confidence intervals, and a mixed-model trajectory.

Both functions read the contract's ``sessions`` table (CONTRACT §5: one row per patient and date,
with ``week``, ``max_pain_during`` and ``pain_24h`` on the 0-10 scale).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from hipdata.analysis._confidence import accepts_ci
from hipdata.analysis.clustered import clustered_mean
from hipdata.analysis.models import (
    GroupPieces,
    MixedModelFit,
    fit_mixed,
    fit_mixed_pieces,
    group_pieces,
)

#: The session pain measures summarised by :func:`weekly_pain`, in report order.
PAIN_MEASURES = ("max_pain_during", "pain_24h")


@accepts_ci
def weekly_pain(
    sessions: pd.DataFrame,
    *,
    by: str | Sequence[str] | None = None,
    alpha: float = 0.05,
    measures: Sequence[str] = PAIN_MEASURES,
    cluster: str = "patient_id",
) -> pd.DataFrame:
    """Weekly mean session pain with patient-clustered confidence intervals, in tidy long form.

    For each week (and each level of ``by``, e.g. ``"clinic_id"``; the whole cohort when ``by`` is
    None) and each pain measure, over the sessions that recorded it: the mean over sessions, so a
    patient with two sessions in a week counts twice, and its interval clustered on the patient
    (:func:`hipdata.analysis.clustered.clustered_mean`: ratio estimator, linearisation variance,
    ``t`` on patients - 1 degrees of freedom), because a patient's sessions of one week are alike.
    Without a ``cluster`` column every session is its own cluster and the interval is the plain
    ``mean +- t(1 - alpha/2, n - 1) * sd / sqrt(n)``. The interval is empty with fewer than two
    patients; a week in which no session recorded a measure has no row for it.

    Parameters
    ----------
    sessions : DataFrame
        The ``sessions`` table (``week``, the ``by`` columns and the measures).
    by : str or list of str, optional
        Grouping column(s), such as ``clinic_id``.
    alpha : float
        1 - confidence level (``ci=`` level is a deprecated alias).
    measures : sequence of str
        Pain columns to summarise.
    cluster : str
        Column of the patient whose sessions are clustered.

    Returns
    -------
    DataFrame
        ``week, [by...], measure, n, mean, ci_low, ci_high``, sorted by week.

    Examples
    --------
    >>> import pandas as pd
    >>> sessions = pd.DataFrame({"week": [0, 0, 0], "max_pain_during": [2.0, 3.0, 4.0],
    ...                          "pain_24h": [1.0, None, 1.0]})
    >>> weekly_pain(sessions)[["week", "measure", "n", "mean"]]
       week          measure  n  mean
    0     0  max_pain_during  3   3.0
    1     0         pain_24h  2   1.0
    """
    keys = [by] if isinstance(by, str) else list(by or [])
    if cluster in sessions.columns:
        data = sessions.assign(_cluster=sessions[cluster])
    else:
        data = sessions.assign(_cluster=range(len(sessions)))
    long = data.melt(
        id_vars=["week", *keys, "_cluster"],
        value_vars=list(measures),
        var_name="measure",
        value_name="pain",
    )
    long["pain"] = pd.to_numeric(long["pain"]).astype("float64")
    table = clustered_mean(
        long, "pain", cluster="_cluster", by=["week", *keys, "measure"], alpha=alpha
    )
    return table[["week", *keys, "measure", "n", "mean", "ci_low", "ci_high"]]


def fit_pain_trajectory(
    sessions: pd.DataFrame,
    *,
    outcome: str = "pain_24h",
    time: str = "week",
    group: str = "patient_id",
    random_slope: bool = True,
) -> MixedModelFit:
    """Mixed model of session pain over time: ``outcome ~ time``, random intercept and slope.

    Fits ``pain_24h ~ week`` on the sessions table with a random intercept and a random slope on
    ``week`` per patient (REML), through :func:`~hipdata.analysis.models.fit_mixed`, which finds
    lme4's optimum and falls back to a random intercept when that optimum is singular (lme4's
    ``isSingular``), saying so in ``warnings`` and ``selection``. Sessions
    with no ``outcome`` are left out; how many is recorded in ``n_dropped`` and in ``warnings``.
    The ``week`` coefficient is the average change in pain per week of care.

    Parameters
    ----------
    sessions : DataFrame
        The ``sessions`` table.
    outcome, time, group : str
        Column names of the pain outcome, the time scale and the patient.
    random_slope : bool
        Whether to ask for a random slope on ``time`` (False: random intercept only).

    Returns
    -------
    MixedModelFit
    """
    return fit_mixed(
        _model_data(sessions, outcome, time, group),
        f"{outcome} ~ {time}",
        group=group,
        re_formula=f"~{time}" if random_slope else "1",
        group_label="patient",
        row_label="sessions",
    )


def _model_data(sessions: pd.DataFrame, outcome: str, time: str, group: str) -> pd.DataFrame:
    data = sessions[[group, time, outcome]].copy()
    data[outcome] = pd.to_numeric(data[outcome]).astype("float64")
    data[time] = pd.to_numeric(data[time]).astype("float64")
    return data


def pain_trajectory_pieces(
    sessions: pd.DataFrame,
    *,
    outcome: str = "pain_24h",
    time: str = "week",
    group: str = "patient_id",
    random_slope: bool = True,
) -> GroupPieces:
    """The per-patient pieces of :func:`fit_pain_trajectory` of some patients' sessions.

    ``sessions`` must hold every session of its patients (a chunk of ``hipdata metrics``).
    :func:`fit_pain_trajectory_pieces` of the pieces of several such parts is
    :func:`fit_pain_trajectory` of their sessions concatenated, bit for bit (see
    :class:`~hipdata.analysis.models.GroupPieces`).
    """
    return group_pieces(
        _model_data(sessions, outcome, time, group),
        f"{outcome} ~ {time}",
        group=group,
        re_formula=f"~{time}" if random_slope else "1",
    )


def fit_pain_trajectory_pieces(
    pieces: Sequence[GroupPieces],
    *,
    outcome: str = "pain_24h",
    time: str = "week",
    group: str = "patient_id",
    random_slope: bool = True,
) -> MixedModelFit:
    """:func:`fit_pain_trajectory` of the sessions whose :func:`pain_trajectory_pieces` are
    ``pieces`` (in the order of their rows), without those sessions."""
    design_data = pd.DataFrame(
        {group: pd.Series([], dtype="str"), time: [], outcome: []}, dtype="float64"
    ).astype({group: "str"})
    return fit_mixed_pieces(
        pieces,
        f"{outcome} ~ {time}",
        group=group,
        re_formula=f"~{time}" if random_slope else "1",
        group_label="patient",
        row_label="sessions",
        design_data=design_data,
    )
