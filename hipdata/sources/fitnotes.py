"""Import FitNotes (Android) CSV exports.

Columns: ``Date,Exercise,Category`` then the weight as ``Weight (kgs)`` or ``Weight (lbs)``, or
``Weight`` with a ``Weight Unit`` column (``kgs``/``lbs``), then ``Reps,Distance,Distance Unit,
Time`` and sometimes ``Comment``. Facts of the format:

- ``Date`` is ``2024-01-15``, or in the phone's locale (``23/12/2025``, ``12/31/2025``: the
  order comes from ``dayfirst`` or from the file's unambiguous dates, see
  :func:`~hipdata.sources._apps.parse_local_dates`); there is no time of day and no set
  number: sets are numbered in file order within patient, date and exercise (the row order of
  the export is the order done);
- ``Time`` is ``h:mm:ss`` (``0:01:30`` = 90 s), or ``m:ss`` below an hour (``1:30`` = 90 s);
  ``0:00:00`` and a 0 distance mean "not recorded"; a set without reps with a time is a hold; the ``Cardio`` category (or no reps and
  no weight with a distance or a cardio name) goes to ``activity``;
- names are not quoted, so a comma inside a name (``Overhead Press (Each Side, Dumbbells)``)
  splits it over two cells. Such a row is **repaired** only when exactly one way of re-joining
  the extra cells into the text columns (``Exercise``, ``Category``, ``Comment``) leaves every
  column in its expected form (a date, numbers, a unit, a time; names and categories not empty
  and with balanced brackets); otherwise it is quarantined. Every repair is listed in ``import_notes.csv``.

``Comment`` (free text) and ``Distance Unit`` are not read.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pandas as pd

from hipdata.io.parse import parse_numbers
from hipdata.sources._apps import (
    WEIGHT_UNITS,
    Parsed,
    import_app,
    numbers,
    parse_local_dates,
    require,
    text,
    to_kg,
    unit_factor,
    whole,
)
from hipdata.sources._common import ImportResult, Records, RowProblems, key, quarantine_rows

_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)$")
_TIME = re.compile(r"^(\d+):([0-5]\d):([0-5]\d)$")
_SHORT_TIME = re.compile(r"^(\d+):([0-5]\d)$")
#: The pattern each column of a repaired row must have (by column key); others: anything.
_PATTERNS = {
    "date": lambda v: bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{4}", v)),
    "exercise": lambda v: v != "" and _balanced(v),
    "category": lambda v: v != "" and not _NUMBER.match(v) and _balanced(v),
    "weightkgs": lambda v: v == "" or bool(_NUMBER.match(v)),
    "weightlbs": lambda v: v == "" or bool(_NUMBER.match(v)),
    "weight": lambda v: v == "" or bool(_NUMBER.match(v)),
    "weightunit": lambda v: v.lower() in WEIGHT_UNITS or v == "",
    "reps": lambda v: v == "" or v.isdigit(),
    "distance": lambda v: v == "" or bool(_NUMBER.match(v)),
    "distanceunit": lambda v: v == "" or bool(re.fullmatch(r"[A-Za-z]{1,6}", v)),
    "time": lambda v: v == "" or bool(_TIME.match(v) or _SHORT_TIME.match(v) or _NUMBER.match(v)),
}
TEXT_COLUMNS = ("exercise", "category", "comment")


def _balanced(value: str) -> bool:
    """Brackets in a name open and close in order ("Press (Each Side" is half a name)."""
    depth = 0
    for char in value:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def _repair(header: list[str], cells: list[str]) -> list[list[str]]:
    """All ways of re-joining the extra cells into text columns that give a valid row."""
    keys = [key(h) for h in header]
    slots = [i for i, k in enumerate(keys) if k in TEXT_COLUMNS]
    extra = len(cells) - len(header)
    valid = []
    for split in itertools.product(range(extra + 1), repeat=len(slots)):
        if sum(split) != extra:
            continue
        widths = dict(zip(slots, split, strict=True))
        row, position = [], 0
        for i in range(len(header)):
            take = 1 + widths.get(i, 0)
            row.append(",".join(cells[position : position + take]).strip())
            position += take
        if all(_PATTERNS.get(k, lambda v: True)(v) for k, v in zip(keys, row, strict=True)):
            valid.append(row)
    return valid


def _seconds(cells: pd.Series, problems: RowProblems, column: str) -> pd.Series:
    """``h:mm:ss`` or ``m:ss`` to seconds; a bare number is read as seconds."""
    textual = cells.fillna("").astype(str).str.strip()
    parts = textual.str.extract(_TIME.pattern).astype("float64")
    short = textual.str.extract(_SHORT_TIME.pattern).astype("float64")
    clock = (parts[0] * 3600 + parts[1] * 60 + parts[2]).fillna(short[0] * 60 + short[1])
    bare = textual.where(clock.isna() & (textual != ""), "")
    plain, reasons = parse_numbers(bare)
    problems.flag(
        (reasons != "").to_numpy(), column, "time must be h:mm:ss or m:ss (like 0:01:30)", textual
    )
    return clock.fillna(plain)


def parse(
    records: Records, *, weight_unit: str | None = None, date_dayfirst: bool | None = None
) -> Parsed:
    """Parse one FitNotes export into rows (repairing unquoted commas); see the module docstring."""
    found = require(
        records,
        {"Date": ("date",), "Exercise": ("exercise",), "Category": ("category",)},
        "FitNotes",
    )
    notes, unrepaired, repaired_rows, repaired_numbers = [], [], [], []
    for row, cells in records.long:
        options = _repair(records.header, cells)
        if len(options) == 1:
            repaired_rows.append(options[0])
            repaired_numbers.append(row)
            notes.append(
                (
                    row,
                    f"{len(cells) - len(records.header)} unquoted comma(s) re-joined: "
                    f"{options[0][records.header.index(found['Exercise'])]!r}",
                )
            )
        else:
            unrepaired.append((row, cells, len(options)))
    if repaired_rows:
        cells = pd.concat(
            [records.cells, pd.DataFrame(repaired_rows, columns=records.header, dtype=object)],
            ignore_index=True,
        )
        rows = np.concatenate([records.rows, np.asarray(repaired_numbers, dtype=np.int64)])
        order = np.argsort(rows, kind="stable")
        records = Records(
            records.path,
            records.header,
            cells.iloc[order].reset_index(drop=True),
            rows[order],
            [(r, c) for r, c, _ in unrepaired],
        )
    extra = quarantine_rows(
        records.name,
        [r for r, _, _ in unrepaired],
        found["Exercise"],
        [",".join(c) for _, c, _ in unrepaired],
        [
            "unquoted comma: the row has more cells than the header and "
            + ("no" if n == 0 else f"{n} different")
            + " ways of re-joining them give a valid row (quote the name, or fix the row)"
            for _, _, n in unrepaired
        ],
    )

    problems = RowProblems(records.name, records.rows)
    columns = {"_name": found["Exercise"]}
    when = parse_local_dates(text(records, found["Date"]), problems, found["Date"], date_dayfirst)
    name = text(records, found["Exercise"]).str.strip()
    problems.flag((name == "").to_numpy(), found["Exercise"], "exercise name is empty")
    category = text(records, found["Category"]).str.strip()

    reps_col = records.column("reps")
    reps = numbers(text(records, reps_col), problems, reps_col or "Reps")
    whole(reps, text(records, reps_col), problems, reps_col or "Reps")
    kg_col = records.column("weightkgs", "weightkg")
    lb_col = records.column("weightlbs", "weightlb")
    plain_col = records.column("weight")
    unit_col = records.column("weightunit")
    weight_col = kg_col or lb_col or plain_col
    weight = numbers(text(records, weight_col), problems, weight_col or "Weight")
    if weight_col is None or weight_col == kg_col:
        load = weight
    elif weight_col == lb_col:
        load = weight * unit_factor("lbs", records.name)
    elif unit_col is not None:
        load = to_kg(weight, text(records, unit_col), problems, unit_col, text(records, weight_col))
    elif (weight.fillna(0) > 0).any():
        load = weight * unit_factor(weight_unit, records.name)
    else:
        load = weight
    time_col = records.column("time")
    seconds = _seconds(text(records, time_col), problems, time_col or "Time")
    distance_col = records.column("distance")
    distance = numbers(text(records, distance_col), problems, distance_col or "Distance")

    for header, used in (
        (found["Date"], "date"),
        (found["Exercise"], "exercise (name as written)"),
        (found["Category"], "marks Cardio rows as cardio"),
        (reps_col, "reps"),
        (weight_col, "load_kg"),
        (unit_col, "unit of load_kg"),
        (time_col, "hold_s, or cardio minutes for a cardio row"),
        (distance_col, "marks a row as cardio"),
    ):
        if header is not None:
            columns[header] = used
    for header in records.header:
        if header not in columns:
            columns[header] = {
                "comment": "not read (free text)",
                "distanceunit": "not read (a distance only marks a row as cardio)",
            }.get(key(header), "not read (unknown column)")

    frame = pd.DataFrame(
        {
            "when": when,
            "exercise": name,
            "set_type": "working",
            "reps": reps,
            "load_kg": load,
            "seconds": seconds.where(seconds > 0),
            "distance": distance.where(distance > 0),
            "cardio_hint": category.str.lower().eq("cardio"),
            "app_set": "",
        }
    )
    return Parsed(records, frame, problems, columns, extra, notes)


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
    """Import a FitNotes export file, or a folder of them (one patient per file).

    Parameters are those of :func:`hipdata.sources.strong.read`; ``weight_unit`` is needed only
    for a plain ``Weight`` column without ``Weight Unit`` when any weight is above 0.
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
        trim_trailing=False,
        weight_unit=weight_unit,
        date_dayfirst=dayfirst,
    )
