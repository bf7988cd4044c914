"""Analyses on the contract tables: models, curves and cohort tables.

The public functions are reachable here, e.g. ``hipdata.analysis.fit_mixed``; each is imported
from its module on first use (PEP 562), so ``import hipdata.analysis`` stays cheap and a module
that needs one function does not load statsmodels for all of them. Every function that returns an
interval takes ``alpha`` (1 - confidence level, as statsmodels); ``ci=`` (the level) is a
deprecated alias for one release.

>>> import hipdata.analysis as analysis
>>> analysis.fit_mixed is __import__("hipdata.analysis.models", fromlist=["x"]).fit_mixed
True
"""

from __future__ import annotations

import importlib

#: module -> the public names it exports here
_EXPORTS = {
    "adherence": ("activity_target_summary", "adherence_distribution", "completion"),
    "audit": (
        "audit_indicators",
        "latest_complete_quarter",
        "patient_contributions",
        "pooled_label",
        "previous_quarters",
    ),
    "balance": (
        "patient_characteristics",
        "smd_categorical",
        "smd_continuous",
        "table_one",
    ),
    "casemix": (
        "CasemixFit",
        "c_statistic",
        "calibration_by_decile",
        "casemix_comparison",
        "casemix_episodes",
        "fit_casemix",
        "poisson_binomial_pmf",
        "poisson_binomial_tails",
    ),
    "clustered": ("cluster_ratio", "clustered_mean", "design_effect", "icc_binary"),
    "flow": ("patient_flow",),
    "funnel": (
        "binomial_tails",
        "design_effects",
        "flags_from_tails",
        "funnel_limits_mean",
        "funnel_limits_proportion",
        "funnel_table",
    ),
    "indicators": ("indicator_definitions",),
    "intervals": ("t_interval", "t_mean_ci", "wilson_ci"),
    "models": ("MixedModelFit", "REMLResult", "fit_mixed"),
    "outcomes": (
        "adherence_outcome_association",
        "followup_completeness",
        "mean_change",
        "outcome_mixed_model",
        "responder_rates",
        "responder_sensitivity",
    ),
    "progression": (
        "TimeToProgression",
        "aalen_johansen",
        "km_interval",
        "ladder_funnel",
        "progression_incidence",
        "progression_rates",
        "progression_spells",
        "time_to_next_level",
    ),
    "response": (
        "dose_response_slope",
        "dose_response_within_between",
        "pain_response_curve",
        "relative_load_curve",
    ),
    "trajectories": ("fit_pain_trajectory", "weekly_pain"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'hipdata.analysis' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"hipdata.analysis.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
