"""The input tables' fields (CONTRACT §1), one list for every module that reads or writes them.

The loader matches a file's headers against these (``hipdata.io.loader``), the pseudonymiser
keeps these columns (``hipdata.pseudonymisation``), a REDCap mapping may name these
(``hipdata.sources.redcap``) and a registry writes these (``hipdata.registry``).
"""

from __future__ import annotations

from hipdata.dataset import (
    ACTIVITY_COLUMNS,
    OUTCOME_COLUMNS,
    PATIENT_COLUMNS,
    TREATMENT_COLUMNS,
)

#: Fields of each input table, in the contract's order. ``exercises`` holds both layouts (one
#: row per set with ``set``, or per exercise with ``sets``) and the load in kg or lb.
KNOWN_COLUMNS: dict[str, tuple[str, ...]] = {
    "patients": tuple(PATIENT_COLUMNS),
    "exercises": (
        "patient_id",
        "date",
        "exercise",
        "set",
        "sets",
        "reps",
        "hold_s",
        "load_kg",
        "load_lb",
        "pain_during",
        "pain_24h",
        "prescribed_sets",
        "prescribed_reps",
        "prescribed_hold_s",
        "set_type",
    ),
    "activity": tuple(ACTIVITY_COLUMNS),
    "outcomes": tuple(OUTCOME_COLUMNS),
    "treatments": tuple(TREATMENT_COLUMNS),
}
