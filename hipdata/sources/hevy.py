"""Import Hevy (hevyapp.com) CSV exports.

Columns: ``title,start_time,end_time,description,exercise_title,superset_id,exercise_notes,
set_index,set_type,weight_kg,reps,distance_km,duration_seconds,rpe`` (``weight_lbs`` and
``distance_miles`` when the app is set to imperial units). Facts of the format:

- ``start_time`` like ``15 Sep 2025, 07:48`` (English month abbreviations; also with AM/PM,
  month first, or ISO); the session is its day;
- workouts are written newest first; sets within a workout in the order done;
- ``set_index`` counts from 0 within an exercise (kept as ``app_set``; hipdata numbers sets
  from 1 in time order);
- ``set_type`` is ``normal``, ``warmup``, ``dropset`` or ``failure`` (-> ``working``,
  ``warmup``, ``drop``, ``failure``); without the column every set is ``working``;
- ``duration_seconds`` of a set without reps is a hold; rows with no reps and no weight and a
  distance or a cardio name go to ``activity``.

``rpe`` (effort, not pain), ``title``, ``end_time``, ``description``, ``superset_id`` and
``exercise_notes`` are not read.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hipdata.protocol import LB_TO_KG
from hipdata.sources._apps import (
    Parsed,
    import_app,
    long_rows_quarantine,
    numbers,
    parse_when,
    require,
    text,
    whole,
)
from hipdata.sources._common import ImportResult, Records, RowProblems

DATE_FORMATS = (
    "%d %b %Y, %H:%M",
    "%d %b %Y %H:%M",
    "%d %b %Y, %I:%M %p",
    "%b %d, %Y, %H:%M",
    "%b %d, %Y, %I:%M %p",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M",
)
SET_TYPES = {"normal": "working", "warmup": "warmup", "dropset": "drop", "failure": "failure"}
IGNORED = {
    "title": "not read (the session is the date)",
    "endtime": "not read",
    "description": "not read (free text)",
    "supersetid": "not read",
    "exercisenotes": "not read (free text)",
    "rpe": "not read (RPE is effort, not pain)",
}


def parse(records: Records) -> Parsed:
    """Parse one Hevy export into rows; see the module docstring."""
    found = require(
        records, {"start_time": ("starttime",), "exercise_title": ("exercisetitle",)}, "Hevy"
    )
    problems = RowProblems(records.name, records.rows)
    columns = {"_name": found["exercise_title"]}
    raw_when = text(records, found["start_time"]).str.replace(r"\bSept\b", "Sep", regex=True)
    when = parse_when(raw_when, DATE_FORMATS, problems, found["start_time"], "15 Sep 2025, 07:48")
    name = text(records, found["exercise_title"]).str.strip()
    problems.flag((name == "").to_numpy(), found["exercise_title"], "exercise name is empty")

    type_col = records.column("settype")
    if type_col is None:
        set_type = pd.Series("working", index=records.cells.index)
    else:
        raw_type = text(records, type_col).str.strip()
        set_type = raw_type.str.lower().map(SET_TYPES)
        problems.flag(
            set_type.isna().to_numpy(),
            type_col,
            "unknown set type (expected normal, warmup, dropset or failure)",
            raw_type,
        )
    index_col = records.column("setindex")
    set_index = numbers(text(records, index_col), problems, index_col or "set_index")
    whole(set_index, text(records, index_col), problems, index_col or "set_index")

    reps_col = records.column("reps")
    reps = numbers(text(records, reps_col), problems, reps_col or "reps")
    whole(reps, text(records, reps_col), problems, reps_col or "reps")
    kg_col, lb_col = records.column("weightkg"), records.column("weightlbs", "weightlb")
    load = numbers(text(records, kg_col), problems, kg_col or "weight_kg")
    if lb_col is not None:
        pounds = numbers(text(records, lb_col), problems, lb_col)
        load = load.fillna(pounds * LB_TO_KG)
    seconds_col = records.column("durationseconds")
    seconds = numbers(text(records, seconds_col), problems, seconds_col or "duration_seconds")
    distance_col = records.column("distancekm", "distancemiles", "distancemi", "distancem")
    distance = numbers(text(records, distance_col), problems, distance_col or "distance_km")

    for header, used in (
        (found["start_time"], "date (the workout's start; the session is its day)"),
        (found["exercise_title"], "exercise (name as written)"),
        (type_col, "set_type"),
        (index_col, "app_set (Hevy counts from 0)"),
        (reps_col, "reps"),
        (kg_col, "load_kg"),
        (lb_col, "load_kg (converted from lbs)"),
        (seconds_col, "hold_s, or cardio minutes for a cardio row"),
        (distance_col, "marks a row as cardio"),
    ):
        if header is not None:
            columns[header] = used
    for header in records.header:
        if header not in columns:
            columns[header] = IGNORED.get(
                header.lower().replace("_", ""), "not read (unknown column)"
            )

    frame = pd.DataFrame(
        {
            "when": when,
            "exercise": name,
            "set_type": set_type.fillna("working"),
            "reps": reps,
            "load_kg": load,
            "seconds": seconds.where(seconds > 0),
            "distance": distance.where(distance > 0),
            "cardio_hint": False,
            "app_set": text(records, index_col),
        }
    )
    return Parsed(records, frame, problems, columns, long_rows_quarantine(records))


def read(
    source: str | Path,
    *,
    patient_id: str | None = None,
    patient_map: str | Path | None = None,
    clinic_id: str = "app",
    start_date: str | None = None,
    catalogue: str | Path | pd.DataFrame | None = None,
    pain_diary: str | Path | None = None,
    dayfirst: bool | None = None,
) -> ImportResult:
    """Import a Hevy export file, or a folder of them (one patient per file).

    Parameters are those of :func:`hipdata.sources.strong.read` (Hevy names its units in the
    column names, so there is no ``weight_unit``).
    """
    return import_app(
        parse,
        source,
        patient_id=patient_id,
        patient_map=patient_map,
        clinic_id=clinic_id,
        start_date=start_date,
        catalogue=catalogue,
        pain_diary=pain_diary,
        dayfirst=dayfirst,
    )
