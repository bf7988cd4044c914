"""Pain and outcome figures: keyword-only, ``data=`` and ``ax=``, each returning its Axes.

>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import pandas as pd
>>> sessions = pd.DataFrame({"patient_id": ["a", "a", "b", "b"], "week": [0, 1, 0, 1],
...                          "max_pain_during": [4.0, 3.0, 5.0, 2.0],
...                          "pain_24h": [3.0, 2.0, 4.0, 1.0]})
>>> ax = plot_pain_trajectory(data=sessions)
>>> ax.get_ylabel()
'Pain (0-10)'
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection

from hipdata.analysis._confidence import accepts_ci
from hipdata.analysis.models import MixedModelFit
from hipdata.analysis.trajectories import PAIN_MEASURES, weekly_pain
from hipdata.outcome_measures import MEASURES, Measure
from hipdata.protocol import PAIN_THRESHOLD

_MEASURE_LABELS = {"max_pain_during": "Worst pain during exercise", "pain_24h": "Pain in next 24 h"}
_PAIN_SCALE_MAX = 10.0


def _axes(ax: Axes | None) -> Axes:
    return plt.subplots()[1] if ax is None else ax


@accepts_ci
def plot_pain_trajectory(
    *,
    data: pd.DataFrame,
    model: MixedModelFit | None = None,
    ax: Axes | None = None,
    measures: Sequence[str] | None = None,
    hue: str | None = None,
    threshold: float = PAIN_THRESHOLD,
    alpha: float = 0.05,
) -> Axes:
    """Weekly mean pain with its confidence band, an optional model line and the pain limit.

    Parameters
    ----------
    data : DataFrame
        Either the tidy output of :func:`~hipdata.analysis.trajectories.weekly_pain` (``week,
        measure, mean, ci_low, ci_high``) or the ``sessions`` table, which is summarised with
        ``weekly_pain`` first.
    model : MixedModelFit, optional
        A fit of pain on one time variable (as from
        :func:`~hipdata.analysis.trajectories.fit_pain_trajectory`); its population-level
        (fixed-effect) line is drawn dashed over the weeks shown.
    ax : Axes, optional
        Where to draw; a new figure when omitted.
    measures : sequence of str, optional
        Measures to show (default: all in ``data``).
    hue : str, optional
        A grouping column of the weekly table (e.g. ``clinic_id``): one line per level.
    threshold : float
        The pain limit drawn as a horizontal line (the protocol's 3/10).
    alpha : float
        1 - confidence level, used when ``data`` is the sessions table (``ci=`` level is a
        deprecated alias).

    Returns
    -------
    Axes
    """
    ax = _axes(ax)
    weekly = data
    if "mean" not in data.columns:
        weekly = weekly_pain(data, by=hue, alpha=alpha, measures=measures or PAIN_MEASURES)
    if measures is not None:
        weekly = weekly.loc[weekly["measure"].isin(list(measures))]
    keys = ["measure"] if hue is None else ["measure", hue]
    for key, curve in weekly.sort_values("week").groupby(keys, sort=True):
        measure = key[0]
        label = _MEASURE_LABELS.get(measure, measure)
        if hue is not None:
            label = f"{label}: {key[1]}"
        (line,) = ax.plot(curve["week"], curve["mean"], marker="o", label=label)
        ax.fill_between(
            curve["week"], curve["ci_low"], curve["ci_high"], color=line.get_color(), alpha=0.2
        )
    if model is not None and weekly["week"].notna().any():  # no weeks shown: no span to draw
        time = next(term for term in model.fixed_effects.index if term != "Intercept")
        weeks = np.linspace(weekly["week"].min(), weekly["week"].max(), 50)
        ax.plot(
            weeks,
            model.predict(pd.DataFrame({time: weeks})),
            linestyle="--",
            color="black",
            label=f"Mixed model ({model.random_effects})",
        )
    ax.axhline(threshold, color="tab:red", linestyle=":", label=f"{threshold:g}/10 limit")
    ax.set_ylim(0, _PAIN_SCALE_MAX)
    ax.set_xlabel("Week of care")
    ax.set_ylabel("Pain (0-10)")
    ax.legend(loc="best", fontsize="small")
    return ax


def _responder_text(rows: pd.DataFrame) -> str:
    responder = rows["responder"].astype("boolean").dropna()
    if responder.empty:
        return "Responders: no baseline-follow-up pairs"
    return f"Responders: {int(responder.sum())}/{len(responder)} ({100 * responder.mean():.0f} %)"


def plot_outcome_change(
    *,
    data: pd.DataFrame,
    measure: str = "nprs",
    ax: Axes | None = None,
    kind: str = "improvement",
    measures: dict[str, Measure] | None = None,
    bins: int | str = "auto",
) -> Axes:
    """Change in an outcome measure between baseline and follow-up.

    ``kind="improvement"``: histogram of each patient's improvement (positive is better) with the
    MCID and no-change lines. ``kind="paired"``: each patient's baseline and follow-up joined by a
    line, with the means in bold. Both state the responder share (responders / patients with both
    scores) in the title.

    Parameters
    ----------
    data : DataFrame
        The ``outcome_change`` table.
    measure : str
        The measure to show.
    ax : Axes, optional
        Where to draw; a new figure when omitted.
    kind : {"improvement", "paired"}
        Which view.
    measures : dict, optional
        Measure registry (default :data:`hipdata.outcome_measures.MEASURES`), for label and MCID.
    bins : int or str
        Histogram bins (``kind="improvement"``).

    Returns
    -------
    Axes
    """
    registry = MEASURES if measures is None else measures
    spec = registry[measure]
    label = spec.label or measure
    ax = _axes(ax)
    rows = data.loc[(data["measure"] == measure) & data["improvement"].notna()]
    if kind == "improvement":
        ax.hist(rows["improvement"].astype("float64"), bins=bins, color="tab:blue", alpha=0.7)
        mcid = f"MCID {spec.mcid_points:g} points"
        if spec.mcid_pct is not None:
            mcid += f" (or {spec.mcid_pct:g} %)"
        ax.axvline(spec.mcid_points, color="tab:green", linestyle="--", label=mcid)
        ax.axvline(0.0, color="grey", linestyle=":", label="No change")
        ax.set_xlabel(f"Improvement in {label} (positive = better)")
        ax.set_ylabel("Patients")
        ax.legend(loc="best", fontsize="small")
    elif kind == "paired":
        baseline = rows["baseline"].astype("float64").to_numpy()
        followup = rows["followup"].astype("float64").to_numpy()
        segments = np.stack(
            [
                np.column_stack([np.zeros_like(baseline), baseline]),
                np.column_stack([np.ones_like(followup), followup]),
            ],
            axis=1,
        )
        ax.add_collection(LineCollection(segments, colors="grey", alpha=0.3, linewidths=0.8))
        ax.plot(
            [0, 1],
            [baseline.mean(), followup.mean()],
            color="black",
            marker="o",
            linewidth=2.5,
            label="Mean",
        )
        ax.set_xticks([0, 1], ["Baseline", "Follow-up"])
        ax.set_xlim(-0.25, 1.25)
        ax.set_ylim(spec.low, spec.high)
        ax.set_ylabel(label)
        ax.legend(loc="best", fontsize="small")
    else:
        raise ValueError(f"kind must be 'improvement' or 'paired', not {kind!r}")
    ax.set_title(f"{label}: {_responder_text(rows)}")
    return ax
