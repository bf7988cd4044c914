"""Merge a pain diary onto imported app sessions, so app users can be judged on the 3/10 rule.

Workout apps record no pain (and RPE is effort, not pain). A pain diary is a separate CSV with
one row per patient and session date: ``patient_id, date, pain_during, pain_24h`` (0-10; either
pain may be empty; column names are matched ignoring case and punctuation, ``patient`` and
``pain`` are accepted too). ``patient_id`` may be left out when the import has one patient.

Each diary row's pains are written onto every set of that patient's session on that date:
``pain_during`` is the worst pain during the session's exercise, ``pain_24h`` the worst pain in
the 24 h after it (the contract's session-level values). Diary rows are accounted for like
source rows (``import_report`` has a row for the diary): a row is **kept** when it was merged
onto a session and **quarantined** otherwise, with the reason: no session on that date in the
app data, an unknown or empty patient, an unreadable or ambiguous date (``dayfirst`` decides
``03/04/2026``; never guessed), a pain outside 0-10 (never clipped), no pain recorded, or a
second row for the same patient and date.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hipdata.errors import DataError
from hipdata.io.parse import parse_dates, parse_pain
from hipdata.sources._common import ImportResult, RowProblems, read_records, report_row


def merge_pain_diary(
    result: ImportResult, diary: str | Path, *, dayfirst: bool | None = None
) -> ImportResult:
    """Return ``result`` with the diary's pains merged onto its sessions (module docstring)."""
    records = read_records(diary)
    problems = RowProblems(records.name, records.rows)
    patient_col = records.column("patientid", "patient", "pseudonym")
    date_col = records.column("date", "sessiondate")
    during_col = records.column("painduring", "pain", "painduringexercise")
    after_col = records.column("pain24h", "pain24", "pain24hours", "painafter24h")
    if date_col is None or (during_col is None and after_col is None):
        raise DataError(
            "a pain diary needs a date column and pain_during and/or pain_24h "
            f"(columns found: {', '.join(records.header)})",
            file=records.name,
            fix="columns patient_id, date, pain_during, pain_24h",
        )
    exercises = result.tables["exercises"]
    patients = result.tables["patients"]["patient_id"].astype(str)
    cells = records.cells
    if patient_col is None:
        if len(patients) != 1:
            raise DataError(
                "the pain diary has no patient_id column, but the import has several patients",
                file=records.name,
                fix="add a patient_id column",
            )
        ids = pd.Series(patients.iloc[0], index=cells.index)
    else:
        ids = cells[patient_col].astype(str).str.strip()
        problems.flag((ids == "").to_numpy(), patient_col, "patient id is empty")
        problems.flag(
            ((ids != "") & ~ids.isin(patients)).to_numpy(),
            patient_col,
            "patient not in the imported files",
            ids,
        )
    date_text = cells[date_col].astype(str)
    dates, reasons = parse_dates(date_text, dayfirst=dayfirst)
    problems.flag((date_text.str.strip() == "").to_numpy(), date_col, "date is missing")
    problems.flag((reasons != "").to_numpy(), date_col, reasons.to_numpy(), date_text)
    pains = {}
    for name, column in (("pain_during", during_col), ("pain_24h", after_col)):
        if column is None:
            pains[name] = pd.Series(np.nan, index=cells.index)
            continue
        values, reasons = parse_pain(cells[column].astype(str), scale_max=10.0)
        problems.flag((reasons != "").to_numpy(), column, reasons.to_numpy(), cells[column])
        pains[name] = values
    problems.flag(
        (pains["pain_during"].isna() & pains["pain_24h"].isna() & ~problems.bad),
        during_col or after_col,
        "no pain recorded",
    )
    frame = pd.DataFrame({"patient_id": ids, "date": dates, **pains, "row": records.rows})
    valid = frame[~problems.bad]
    later = valid.duplicated(["patient_id", "date"], keep="first")
    first_row = valid.groupby(["patient_id", "date"])["row"].transform("first")
    mask = np.zeros(len(frame), dtype=bool)
    mask[np.flatnonzero(~problems.bad)[later.to_numpy()]] = True
    reason = np.full(len(frame), "", dtype=object)
    reason[mask] = (
        "duplicate of row " + first_row[later].astype(str).to_numpy() + (" (same patient and date)")
    )
    problems.flag(mask, date_col, reason, date_text)
    sessions = pd.MultiIndex.from_frame(
        exercises[["patient_id", "date"]].assign(date=pd.to_datetime(exercises["date"]))
    )
    matched = pd.MultiIndex.from_frame(frame[["patient_id", "date"]]).isin(sessions)
    problems.flag(
        ~matched & ~problems.bad,
        date_col,
        "no session on this date in the app data (the diary row is not used)",
        date_text,
    )
    kept = frame[~problems.bad].set_index(["patient_id", "date"])
    exercises = exercises.copy()
    index = pd.MultiIndex.from_frame(
        exercises[["patient_id", "date"]].assign(date=pd.to_datetime(exercises["date"]))
    )
    for name in ("pain_during", "pain_24h"):
        exercises[name] = kept[name].reindex(index).to_numpy()
    quarantine = problems.quarantine()
    columns = pd.DataFrame(
        [
            (records.name, h, used)
            for h, used in (
                (patient_col, "patient_id"),
                (date_col, "date (the session's date)"),
                (during_col, "pain_during (of every set of the session)"),
                (after_col, "pain_24h"),
            )
            if h is not None
        ]
        + [
            (records.name, h, "not read (unknown column)")
            for h in records.header
            if h not in (patient_col, date_col, during_col, after_col)
        ],
        columns=result.columns.columns,
    )
    merged = ImportResult(
        tables={**result.tables, "exercises": exercises},
        quarantine=pd.concat([result.quarantine, quarantine], ignore_index=True),
        report=pd.concat(
            [
                result.report,
                pd.DataFrame([report_row(records.name, records.data_rows, quarantine)]),
            ],
            ignore_index=True,
        ),
        columns=pd.concat([result.columns, columns], ignore_index=True),
        notes=result.notes,
    )
    merged.check()
    return merged
