"""Import Strong (strong.app) CSV exports.

Two layouts are read, recognised by their columns:

- the **semicolon layout** (newer app versions): ``Date;Workout Name;Exercise Name;Set Order;
  Weight;Weight Unit;Reps;RPE;Distance;Distance Unit;Seconds;Notes;Workout Notes`` (sometimes
  with ``Workout Duration``, or with ``Weight (kg)`` / ``Weight (lbs)`` instead of a unit
  column), decimal commas, a UTF-8 BOM and CRLF line ends;
- the **comma layout**: ``Date,Workout Name,Duration,Exercise Name,Set Order,Weight,Reps,
  Distance,Seconds,Notes,Workout Notes,RPE``. It does not say whether weights are kg or lbs
  (the unit the app was set to): pass ``weight_unit`` when any weight is above 0.

``Date`` is the workout's start (``2024-01-15 18:30:00``). ``Set Order`` is the set number, or
``W`` (warm-up), ``D`` (drop set), ``F`` (set to failure); rows with ``Rest Timer`` or ``Note``
are not sets and are quarantined with that reason. ``Seconds`` of a set without reps is a hold;
rows with no reps and no weight and a distance or a cardio name go to ``activity``. ``RPE``,
``Notes``, ``Workout Notes``, ``Workout Name`` and the workout duration are not read (RPE is
effort, not pain; notes are free text).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hipdata.sources._apps import (
    Parsed,
    import_app,
    long_rows_quarantine,
    numbers,
    parse_when,
    require,
    text,
    to_kg,
    unit_factor,
    whole,
)
from hipdata.sources._common import ImportResult, Records, RowProblems, key

DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d")
SET_ORDER = {"w": "warmup", "d": "drop", "f": "failure"}
NOT_SETS = {
    "rest timer": "a rest timer row, not a set (Strong writes rest periods as rows)",
    "note": "a note row, not a set",
}
IGNORED = {
    "workoutname": "not read (the session is the date)",
    "duration": "not read (the workout's length, not a set's)",
    "workoutduration": "not read (the workout's length, not a set's)",
    "durationsec": "not read (the workout's length, not a set's)",
    "rpe": "not read (RPE is effort, not pain)",
    "notes": "not read (free text)",
    "workoutnotes": "not read (free text)",
    "distanceunit": "not read (a distance only marks a row as cardio)",
    "workout": "not read (workout number)",
}


def parse(records: Records, *, weight_unit: str | None = None) -> Parsed:
    """Parse one Strong export (either layout) into rows; see the module docstring."""
    found = require(
        records,
        {"date": ("date",), "exercise": ("exercisename",), "set order": ("setorder",)},
        "Strong",
    )
    problems = RowProblems(records.name, records.rows)
    columns = {"_name": found["exercise"]}
    order = text(records, found["set order"]).str.strip()
    order_key = order.str.lower()
    structural = order_key.isin(list(NOT_SETS))
    problems.flag(
        structural.to_numpy(), found["set order"], order_key.map(NOT_SETS).fillna(""), order
    )
    problems.flag((order == "").to_numpy(), found["set order"], "set order is missing")
    known = order.str.fullmatch(r"\d+") | order_key.isin(list(SET_ORDER)) | structural
    problems.flag(
        ((order != "") & ~known).to_numpy(),
        found["set order"],
        "unknown set order (expected a number, W, D, F, Rest Timer or Note)",
        order,
    )

    def cells(header):
        return text(records, header).where(~structural, "")

    when = parse_when(
        text(records, found["date"]), DATE_FORMATS, problems, found["date"], "2024-01-15 18:30:00"
    )
    name = text(records, found["exercise"]).str.strip()
    problems.flag((name == "").to_numpy(), found["exercise"], "exercise name is empty")

    reps_col = records.column("reps")
    reps = numbers(cells(reps_col), problems, reps_col or "Reps")
    whole(reps, cells(reps_col), problems, reps_col or "Reps")
    seconds_col = records.column("seconds")
    seconds = numbers(cells(seconds_col), problems, seconds_col or "Seconds")
    distance_col = records.column(
        "distance", "distancekm", "distancem", "distancemi", "distancemiles"
    )
    distance = numbers(cells(distance_col), problems, distance_col or "Distance")

    weight_col = records.column("weight", "weightkg", "weightkgs", "weightlbs", "weightlb")
    unit_col = records.column("weightunit")
    weight = numbers(cells(weight_col), problems, weight_col or "Weight")
    if weight_col is None:
        load = weight
    elif unit_col is not None:
        load = to_kg(weight, cells(unit_col), problems, unit_col, cells(weight_col))
    elif weight_col.lower().replace(" ", "") in ("weight(kg)", "weight(kgs)"):
        load = weight
    elif weight_col.lower().replace(" ", "") in ("weight(lbs)", "weight(lb)"):
        load = weight * unit_factor("lbs", records.name)
    elif (weight.fillna(0) > 0).any():
        load = weight * unit_factor(weight_unit, records.name)
    else:
        load = weight
    for header, used in (
        (found["date"], "date (the workout's start; the session is its day)"),
        (found["exercise"], "exercise (name as written)"),
        (found["set order"], "set_type and app_set (W warm-up, D drop, F failure)"),
        (reps_col, "reps"),
        (
            weight_col,
            "load_kg" + ("" if unit_col or "(" in str(weight_col) else f" ({weight_unit})"),
        ),
        (unit_col, "unit of load_kg"),
        (seconds_col, "hold_s, or cardio minutes for a cardio row"),
        (distance_col, "marks a row as cardio"),
    ):
        if header is not None:
            columns[header] = used
    for header in records.header:
        if header not in columns:
            columns[header] = IGNORED.get(key(header), "not read (unknown column)")

    frame = pd.DataFrame(
        {
            "when": when,
            "exercise": name,
            "set_type": order_key.map(SET_ORDER).fillna("working"),
            "reps": reps,
            "load_kg": load,
            "seconds": seconds.where(seconds > 0),
            "distance": distance.where(distance > 0),
            "cardio_hint": False,
            "app_set": order,
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
    weight_unit: str | None = None,
    catalogue: str | Path | pd.DataFrame | None = None,
    pain_diary: str | Path | None = None,
    dayfirst: bool | None = None,
) -> ImportResult:
    """Import a Strong export file, or a folder of them (one patient per file).

    Parameters
    ----------
    source : path
        A Strong CSV export, or a folder of them.
    patient_id : str, optional
        The patient of a single file (default: the file name without suffix).
    patient_map : path, optional
        For a folder: CSV ``file,patient_id`` (default: each file's name without suffix).
    clinic_id : str
        Written to ``patients.clinic_id`` (default ``"app"``).
    start_date : date, optional
        Every patient's ``start_date`` (default: the patient's first session date).
    weight_unit : {"kg", "lbs"}, optional
        Needed for the comma layout when any weight is above 0 (the file does not say).
    catalogue : path or DataFrame, optional
        Catalogue used to number sets per exercise (pass the one you will load with).
    pain_diary : path, optional
        A pain diary merged onto the sessions (:mod:`hipdata.sources.pain_diary`).
    dayfirst : bool, optional
        Day/month order of the pain diary's dates (never guessed).

    Returns
    -------
    ImportResult
        ``write(folder)`` writes a folder :func:`hipdata.load` reads.
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
        weight_unit=weight_unit,
    )
