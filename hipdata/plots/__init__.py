"""Plotting functions: seaborn-style, keyword-only, ``data=`` and ``ax=``, returning the Axes."""

from hipdata.plots.funnel import figure_legend, plot_casemix_funnel, plot_funnel
from hipdata.plots.outcomes import plot_improvement
from hipdata.plots.pain import plot_outcome_change, plot_pain_trajectory
from hipdata.plots.progress import (
    plot_adherence,
    plot_cumulative_incidence,
    plot_ladder_funnel,
    plot_level_progression,
    plot_pain_response,
    plot_time_to_progression,
    plot_volume_progression,
)
from hipdata.plots.trends import plot_indicator_trend

__all__ = [
    "figure_legend",
    "plot_improvement",
    "plot_casemix_funnel",
    "plot_funnel",
    "plot_indicator_trend",
    "plot_adherence",
    "plot_cumulative_incidence",
    "plot_ladder_funnel",
    "plot_level_progression",
    "plot_outcome_change",
    "plot_pain_response",
    "plot_pain_trajectory",
    "plot_time_to_progression",
    "plot_volume_progression",
]
