"""The contract's derived tables (CONTRACT §4-5): pure functions, Dataset in -> DataFrame out.

=====================  ==========================================================
function               table
=====================  ==========================================================
``sets_table``         ``sets``: one row per set, with week, volume load, TUT
``sessions_table``     ``sessions``: one row per patient x date, with flare
``family_sessions``    one row per patient x date x family, with the criterion
``weekly_load``        ``weekly_load``: patient x week x family
``progressions``       ``progressions``: level and load changes
``held_back_episodes`` runs held at a level after the criterion was met
``patient_summary``    ``patient_summary``: one row per episode of care
``outcome_change``     ``outcome_change``: baseline, follow-up, responders
``compute_all``        all of the above tables in one pass
``write_tables``       CSV / Parquet files, written atomically
=====================  ==========================================================
"""

from __future__ import annotations

from hipdata.metrics.compute import TABLE_NAMES, compute_all
from hipdata.metrics.family import (
    FAMILY_SESSION_COLUMNS,
    WEEKLY_LOAD_COLUMNS,
    criterion,
    family_sessions,
    weekly_load,
)
from hipdata.metrics.io import csv_ready, write_tables
from hipdata.metrics.outcomes import OUTCOME_CHANGE_COLUMNS, outcome_change
from hipdata.metrics.progression import (
    HELD_BACK_COLUMNS,
    PROGRESSIONS_COLUMNS,
    held_back_episodes,
    progressions,
)
from hipdata.metrics.sessions import SESSIONS_COLUMNS, flare, quarter_label, sessions_table
from hipdata.metrics.sets import SETS_COLUMNS, set_tut_s, set_volume_load_kg, sets_table
from hipdata.metrics.summary import (
    PATIENT_SUMMARY_COLUMNS,
    activity_weeks,
    dose_units,
    patient_summary,
    weeks_in_care,
)

#: The contract's columns of each table, in order (extra columns may follow them).
CONTRACT_COLUMNS = {
    "sets": SETS_COLUMNS,
    "sessions": SESSIONS_COLUMNS,
    "family_sessions": FAMILY_SESSION_COLUMNS,
    "weekly_load": WEEKLY_LOAD_COLUMNS,
    "progressions": PROGRESSIONS_COLUMNS,
    "patient_summary": PATIENT_SUMMARY_COLUMNS,
    "outcome_change": OUTCOME_CHANGE_COLUMNS,
}

__all__ = [
    "CONTRACT_COLUMNS",
    "HELD_BACK_COLUMNS",
    "TABLE_NAMES",
    "activity_weeks",
    "compute_all",
    "criterion",
    "csv_ready",
    "dose_units",
    "family_sessions",
    "flare",
    "held_back_episodes",
    "outcome_change",
    "patient_summary",
    "progressions",
    "quarter_label",
    "sessions_table",
    "set_tut_s",
    "set_volume_load_kg",
    "sets_table",
    "weekly_load",
    "weeks_in_care",
    "write_tables",
]
