"""What the workout-app importers (Strong, Hevy, FitNotes) share.

An app module parses one file into a :class:`Parsed` (one row per data record, aligned with
:attr:`Records.cells`, plus the rows' problems); :func:`import_app` reads a file or a folder of
files (one patient per file), and :func:`finish` turns the parsed rows into canonical tables:

- **sets** (``exercises.csv``, set level): one row per kept set, ``set`` numbered 1, 2, ... in
  time order within patient, date and exercise (the app's own set label is kept in
  ``app_set``); ``set_type`` is ``working``, ``warmup``, ``drop`` or ``failure``; the exercise
  name is written as the app wrote it (the loader resolves it against the catalogue);
- **activity**: cardio rows (no reps and no weight, and a distance, a cardio name such as
  running or cycling, or the app's cardio category) summed to ``cardio_min`` per patient and
  day;
- **patients**: one row per patient with ``clinic_id`` from the caller and ``start_date`` the
  first session date unless given.

App values of 0 for seconds and distance mean "not recorded" (the apps fill them in), so they are
read as empty. RPE is effort, not pain: it is never read as pain, and pain stays empty unless a
pain diary is merged (:mod:`hipdata.sources.pain_diary`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hipdata.catalogue import exercise_keys, load_catalogue
from hipdata.errors import DataError
from hipdata.io.parse import parse_numbers
from hipdata.protocol import LB_TO_KG
from hipdata.sources._common import (
    COLUMN_REPORT_COLUMNS,
    NOTE_COLUMNS,
    ImportResult,
    Records,
    RowProblems,
    empty_quarantine,
    quarantine_rows,
    read_records,
    report_row,
)

SET_TYPES = ("working", "warmup", "drop", "failure")
#: Columns of the ``exercises`` table an app import writes (``app_*`` trace the source and are
#: ignored by the loader).
EXERCISE_COLUMNS = [
    "patient_id",
    "date",
    "exercise",
    "set",
    "set_type",
    "reps",
    "hold_s",
    "load_kg",
    "pain_during",
    "pain_24h",
    "app_file",
    "app_row",
    "app_set",
]
ACTIVITY_COLUMNS = ["patient_id", "date", "cardio_min", "app_file", "app_rows"]
PATIENT_COLUMNS = ["patient_id", "clinic_id", "start_date"]
DEFAULT_CLINIC_ID = "app"

#: Words that make an exercise name cardio (when the row has no reps and no weight).
CARDIO_WORDS = frozenset(
    "run running jog jogging treadmill cycling cycle bike biking spinning spin walk walking "
    "hike hiking rowing rower elliptical swim swimming stair stairs stairmaster climber "
    "skipping rope aerobics cardio crosstrainer".split()
)
WEIGHT_UNITS = {"kg": "kg", "kgs": "kg", "kilograms": "kg", "lb": "lb", "lbs": "lb", "pounds": "lb"}


@dataclass
class Parsed:
    """One file's rows after app-specific parsing, aligned with ``records.cells``.

    ``frame`` columns: ``when`` (datetime64, the workout's start or the date), ``exercise``
    (str), ``set_type`` (one of :data:`SET_TYPES`), ``reps``, ``load_kg``, ``seconds``,
    ``distance`` (float, NaN where not recorded), ``cardio_hint`` (bool: the app calls the row
    cardio) and ``app_set`` (str).
    """

    records: Records
    frame: pd.DataFrame
    problems: RowProblems
    columns: dict[str, str]
    extra_quarantine: pd.DataFrame = field(default_factory=empty_quarantine)
    notes: list[tuple[int, str]] = field(default_factory=list)


def numbers(cells: pd.Series, problems: RowProblems, column: str, *, low=0.0) -> pd.Series:
    """Numbers with ``.`` or ``,`` decimals; unreadable or negative values are flagged."""
    values, reasons = parse_numbers(cells)
    problems.flag((reasons != "").to_numpy(), column, reasons.to_numpy(), cells.to_numpy())
    if low is not None:
        problems.flag(
            (values < low).to_numpy(), column, f"{column} below {low:g} is impossible", cells
        )
    return values


def whole(values: pd.Series, cells: pd.Series, problems: RowProblems, column: str) -> None:
    problems.flag(
        (values.notna() & (values % 1 != 0)).to_numpy(),
        column,
        f"{column} must be a whole number",
        cells.to_numpy(),
    )


def to_kg(
    weight: pd.Series,
    units: pd.Series,
    problems: RowProblems,
    column: str,
    cells: pd.Series,
) -> pd.Series:
    """Convert weights to kg from per-row unit text (``kg``/``kgs``/``lbs``/...).

    A weight above 0 with an empty or unknown unit is flagged (the unit is never guessed).
    """
    unit = units.fillna("").astype(str).str.strip().str.lower().map(WEIGHT_UNITS)
    loaded = weight.notna() & (weight > 0)
    problems.flag(
        (loaded & unit.isna()).to_numpy(),
        column,
        "weight unit is missing or unknown (expected kg or lbs)",
        units.to_numpy(),
    )
    factor = unit.map({"kg": 1.0, "lb": LB_TO_KG})
    return (weight * factor).where(loaded, weight)


def unit_factor(weight_unit: str | None, file: str) -> float:
    """The factor to kg of a file-wide weight unit given by the caller."""
    unit = WEIGHT_UNITS.get(str(weight_unit or "").strip().lower())
    if unit is None:
        raise DataError(
            "the file does not say whether weights are in kg or lbs",
            file=file,
            fix="give the unit the app was set to: --weight-unit kg or --weight-unit lbs "
            "(weight_unit= in Python)",
        )
    return 1.0 if unit == "kg" else LB_TO_KG


def parse_when(
    cells: pd.Series, formats: tuple[str, ...], problems: RowProblems, column: str, example: str
) -> pd.Series:
    """Parse dates in one of an app's known ``formats``; others are flagged, never guessed.

    ISO timestamps with fractions of a second or a UTC offset (``2025-09-15T07:48:00.000Z``) are
    read as the wall-clock time written (the session is the day the app shows).
    """
    text = cells.fillna("").astype(str).str.strip()
    iso = text.str.match(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
    text = text.where(~iso, text.str.replace(r"(\.\d+)?(Z|[+-]\d{2}:?\d{2})$", "", regex=True))
    out = pd.Series(pd.NaT, index=cells.index, dtype="datetime64[ns]")
    for fmt in formats:
        todo = out.isna() & (text != "")
        if not todo.any():
            break
        out[todo] = pd.to_datetime(text[todo], format=fmt, errors="coerce")
    problems.flag((text == "").to_numpy(), column, f"{column} is missing")
    problems.flag(
        ((text != "") & out.isna()).to_numpy(),
        column,
        f"not a date in this app's format (expected like {example!r})",
        text.to_numpy(),
    )
    return out


def parse_local_dates(
    cells: pd.Series, problems: RowProblems, column: str, dayfirst: bool | None
) -> pd.Series:
    """Dates an app writes in the phone's locale (``23/12/2025``, ``12/31/2025``) or as ISO.

    The day/month order is ``dayfirst`` when given; otherwise the file settles it when its
    unambiguous dates all point one way (a first part above 12: day first; a second part above
    12: month first), because one export is written in one locale. When the file gives no such
    evidence (or both ways), ambiguous dates are quarantined, never guessed.
    """
    from hipdata.io.parse import parse_dates

    text = cells.fillna("").astype(str).str.strip()
    if dayfirst is None:
        parts = text.str.extract(r"^(\d{1,2})[/.-](\d{1,2})[/.-]\d{4}").astype("float64")
        day_first, month_first = bool((parts[0] > 12).any()), bool((parts[1] > 12).any())
        if day_first != month_first:
            dayfirst = day_first
    dates, reasons = parse_dates(text, dayfirst=dayfirst)
    problems.flag((text == "").to_numpy(), column, f"{column} is missing")
    problems.flag(
        (reasons != "").to_numpy(),
        column,
        reasons.to_numpy(),
        text.to_numpy(),
    )
    return dates


def classify(frame: pd.DataFrame, problems: RowProblems, name_column: str) -> pd.Series:
    """Mark cardio rows and flag rows that hold nothing usable; return the cardio mask.

    Cardio: no reps and no weight, and a distance, a cardio name or the app's cardio hint. A
    cardio row needs a duration (cardio minutes cannot come from a distance). A non-cardio row
    needs reps, a weight or a duration (a hold).
    """
    names = frame["exercise"].fillna("").astype(str)
    cardio_name = {  # per distinct name: a log repeats a few names endlessly
        name: bool(CARDIO_WORDS.intersection(re.sub(r"[^a-z]+", " ", name.lower()).split()))
        for name in names.unique()
    }
    named = names.map(cardio_name).astype(bool)
    no_reps = frame["reps"].isna() | (frame["reps"] == 0)
    no_load = frame["load_kg"].isna() | (frame["load_kg"] == 0)
    cardio = no_reps & no_load & (frame["distance"].notna() | named | frame["cardio_hint"])
    fine = ~problems.bad  # a row already rejected needs no second, derived reason
    problems.flag(
        (fine & cardio & frame["seconds"].isna()).to_numpy(),
        name_column,
        "cardio row without a duration (cardio minutes cannot be worked out from a distance)",
        frame["exercise"].to_numpy(),
    )
    empty = ~cardio & frame["reps"].isna() & frame["load_kg"].isna() & frame["seconds"].isna()
    problems.flag(
        (fine & empty).to_numpy(),
        name_column,
        "no reps, weight, duration or distance recorded (an empty set)",
        frame["exercise"].to_numpy(),
    )
    return cardio


def finish(
    parsed: list[tuple[Parsed, str]],
    *,
    clinic_id: str = DEFAULT_CLINIC_ID,
    start_date: str | pd.Timestamp | None = None,
    catalogue: pd.DataFrame | None = None,
) -> ImportResult:
    """Turn parsed files (each with its patient id) into canonical tables (module docstring)."""
    catalogue = load_catalogue() if catalogue is None else catalogue
    set_parts, quarantine, reports, columns, notes = [], [], [], [], []
    for item, patient in parsed:
        records, frame = item.records, item.frame.copy()
        cardio = classify(frame, item.problems, item.columns.get("_name", "exercise"))
        keep = ~item.problems.bad
        frame["patient_id"] = patient
        frame["is_cardio"] = cardio.to_numpy()
        frame["app_file"] = records.name
        frame["app_row"] = records.rows
        set_parts.append(frame[keep])
        file_quarantine = pd.concat(
            [item.problems.quarantine(), item.extra_quarantine], ignore_index=True
        ).sort_values("source_row", kind="stable")
        quarantine.append(file_quarantine)
        reports.append(report_row(records.name, records.data_rows, file_quarantine))
        columns.extend((records.name, c, u) for c, u in item.columns.items() if c != "_name")
        notes.extend((records.name, row, note) for row, note in item.notes)
    rows = pd.concat(set_parts, ignore_index=True) if set_parts else pd.DataFrame()
    if rows.empty:
        rows = pd.DataFrame(
            columns=["when", "exercise", "set_type", "reps", "load_kg", "seconds", "distance"]
            + ["cardio_hint", "app_set", "patient_id", "is_cardio", "app_file", "app_row"]
        )
    rows["date"] = pd.to_datetime(rows["when"]).dt.normalize()
    rows = rows.sort_values(["patient_id", "when"], kind="stable")

    sets = rows[~rows["is_cardio"].astype(bool)].copy()
    group = exercise_keys(sets["exercise"], catalogue)
    sets["set"] = sets.groupby([sets["patient_id"], sets["date"], group]).cumcount() + 1
    reps = sets["reps"].astype("float64")
    seconds = sets["seconds"].astype("float64")
    # a timed set written with 0 reps is a hold, not a set of no reps
    sets["reps"] = reps.where(~(seconds.notna() & (reps == 0)))
    sets["hold_s"] = seconds
    sets["load_kg"] = sets["load_kg"].astype("float64")
    sets["pain_during"] = np.nan
    sets["pain_24h"] = np.nan
    exercises = sets[EXERCISE_COLUMNS].reset_index(drop=True)

    cardio_rows = rows[rows["is_cardio"].astype(bool)]
    activity = (
        cardio_rows.groupby(["patient_id", "date"], sort=True)
        .agg(
            cardio_s=("seconds", "sum"),
            app_file=("app_file", "first"),
            app_rows=("app_row", lambda r: "|".join(str(int(x)) for x in r)),
        )
        .reset_index()
    )
    activity["cardio_min"] = activity["cardio_s"] / 60.0
    activity = activity.reindex(columns=ACTIVITY_COLUMNS)

    patient_ids = list(dict.fromkeys(p for _, p in parsed))
    dates = pd.concat([exercises[["patient_id", "date"]], activity[["patient_id", "date"]]])
    first = pd.to_datetime(dates["date"]).groupby(dates["patient_id"]).min()
    patients = pd.DataFrame({"patient_id": patient_ids, "clinic_id": clinic_id})
    patients["start_date"] = (
        pd.Timestamp(start_date).normalize()
        if start_date is not None
        else first.reindex(patients["patient_id"]).astype("datetime64[ns]").to_numpy()
    )
    result = ImportResult(
        tables={"patients": patients, "exercises": exercises, "activity": activity},
        quarantine=pd.concat(quarantine, ignore_index=True),
        report=pd.DataFrame(reports),
        columns=pd.DataFrame(columns, columns=COLUMN_REPORT_COLUMNS),
        notes=pd.DataFrame(notes, columns=NOTE_COLUMNS),
    )
    result.check()
    return result


def source_files(
    source: str | Path, patient_id: str | None, patient_map: str | Path | None
) -> list[tuple[Path, str]]:
    """The files of ``source`` with their patient ids.

    A file: ``patient_id`` or else the file name without its suffix. A folder: every ``.csv``
    (and ``.txt``) file in it, sorted by name, one patient per file; the patient id is the file
    name without suffix, or the ``patient_id`` that ``patient_map`` (a CSV with the columns
    ``file`` and ``patient_id``) gives for the file name. A file the map does not name is an
    error, so that a real name in a file name cannot slip into the data by accident.
    """
    source = Path(source)
    if source.is_file():
        return [(source, patient_id or source.stem)]
    if not source.is_dir():
        raise DataError("no such file or folder", file=str(source), fix="give the export file")
    if patient_id is not None:
        raise DataError(
            "--patient-id names one patient, but the source is a folder of files",
            file=str(source),
            fix="give one file, or name each file's patient in --patient-map",
        )
    files = sorted(
        p
        for p in source.iterdir()
        if p.is_file() and p.suffix.lower() in (".csv", ".txt") and not p.name.startswith(".")
    )
    if not files:
        raise DataError("the folder holds no .csv files", file=str(source), fix="export again")
    if patient_map is None:
        return [(p, p.stem) for p in files]
    mapping = pd.read_csv(patient_map, dtype=str, keep_default_na=False)
    mapping.columns = [str(c).strip().lower() for c in mapping.columns]
    if not {"file", "patient_id"} <= set(mapping.columns):
        raise DataError(
            "the patient map needs the columns file and patient_id",
            file=str(patient_map),
            fix="one row per export file: file,patient_id",
        )
    ids = dict(zip(mapping["file"].str.strip(), mapping["patient_id"].str.strip(), strict=True))
    missing = [p.name for p in files if not ids.get(p.name)]
    if missing:
        raise DataError(
            f"the patient map names no patient for {', '.join(missing)}",
            file=str(patient_map),
            fix="add a row file,patient_id for each export file",
        )
    return [(p, ids[p.name]) for p in files]


def import_app(
    parse: Callable[..., Parsed],
    source: str | Path,
    *,
    patient_id: str | None = None,
    patient_map: str | Path | None = None,
    clinic_id: str = DEFAULT_CLINIC_ID,
    start_date: str | None = None,
    catalogue: str | Path | pd.DataFrame | None = None,
    pain_diary: str | Path | None = None,
    dayfirst: bool | None = None,
    trim_trailing: bool = True,
    **options,
) -> ImportResult:
    """Read a file or folder with an app's ``parse`` and build the canonical tables.

    ``trim_trailing`` is passed to :func:`read_records`; ``options`` to ``parse``.
    """
    table = catalogue if isinstance(catalogue, pd.DataFrame) else load_catalogue(catalogue)
    parsed = [
        (parse(read_records(path, trim_trailing=trim_trailing), **options), patient)
        for path, patient in source_files(source, patient_id, patient_map)
    ]
    result = finish(parsed, clinic_id=clinic_id, start_date=start_date, catalogue=table)
    if pain_diary is not None:
        from hipdata.sources.pain_diary import merge_pain_diary

        result = merge_pain_diary(result, pain_diary, dayfirst=dayfirst)
    return result


def long_rows_quarantine(records: Records) -> pd.DataFrame:
    """Quarantine rows for records with more cells than the header (values never shifted)."""
    return quarantine_rows(
        records.name,
        [row for row, _ in records.long],
        "",
        [",".join(cells) for _, cells in records.long],
        "the row has more cells than the header has columns (a separator inside a value?)",
    )


def require(records: Records, needed: dict[str, tuple[str, ...]], app: str) -> dict[str, str]:
    """Find required columns (name -> accepted keys); raise one clear error if any is missing."""
    found = {name: records.column(*keys) for name, keys in needed.items()}
    missing = [name for name, header in found.items() if header is None]
    if missing:
        raise DataError(
            f"not a {app} export: no column for {', '.join(missing)} "
            f"(columns found: {', '.join(records.header)})",
            file=records.name,
            fix=f"give the CSV file exactly as {app} exported it",
        )
    return found  # type: ignore[return-value]


def text(records: Records, header: str | None) -> pd.Series:
    """A column's cells as text (empty cells where the column is absent)."""
    if header is None:
        return pd.Series("", index=records.cells.index, dtype=object)
    return records.cells[header].fillna("").astype(str)
