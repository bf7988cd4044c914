"""Load a data folder into a :class:`~hipdata.dataset.Dataset` (CONTRACT §1-2).

Every input row ends in exactly one place: a clean table or the quarantine, with the file, the
1-based spreadsheet row, the column, the value and a reason a clinician can act on. The checks are
vectorised: each rule marks the rows it rejects; a row's first problem (in rule order) is its
quarantine reason and any further problems are listed beside it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hipdata.catalogue import (
    alias_table,
    apply_loaded_variants,
    load_catalogue,
    resolve_exercises,
    suggest_exercises,
)
from hipdata.dataset import (
    ACTIVITY_COLUMNS,
    LOAD_REPORT_COLUMNS,
    OUTCOME_COLUMNS,
    PATIENT_COLUMNS,
    QUARANTINE_COLUMNS,
    SET_COLUMNS,
    SET_TYPE_NAMES,
    TREATMENT_COLUMNS,
    Dataset,
)
from hipdata.errors import DataError
from hipdata.io.parse import parse_bool, parse_dates, parse_numbers, parse_pain
from hipdata.io.readers import SUPPORTED_SUFFIXES, RawTable, column_key, read_raw
from hipdata.outcome_measures import MEASURES, Measure, measure_aliases
from hipdata.protocol import DEFAULT_PLANNED_SESSIONS_PER_WEEK, LB_TO_KG, PRE_START_DAYS

TABLES = ("patients", "exercises", "activity", "outcomes", "treatments")
REQUIRED_TABLES = ("patients",)  # exercises, activity, outcomes, treatments are optional
PAIN_SCALES = {"nrs": 10.0, "vas100": 100.0}

REQUIRED_COLUMNS = {
    "patients": ("patient_id", "clinic_id", "start_date"),
    "exercises": ("patient_id", "date", "exercise"),
    "activity": ("patient_id", "date", "cardio_min"),
    "outcomes": ("patient_id", "date", "measure", "score"),
    "treatments": ("patient_id", "date", "treatment"),
}
#: Column names seen in real exports, mapped to the contract's (keys are column_key()s).
COLUMN_SYNONYMS = {
    "patient": "patient_id",
    "pseudonym": "patient_id",
    "clinic": "clinic_id",
    "site": "clinic_id",
    "clinician": "clinician_id",
    "therapist": "clinician_id",
    "physio": "clinician_id",
    "age": "age_years",
    "startdate": "start_date",
    "start": "start_date",
    "dischargedate": "discharge_date",
    "sessiondate": "date",
    "exercisename": "exercise",
    "exerciseid": "exercise",
    "setnumber": "set",
    "setno": "set",
    "hold": "hold_s",
    "holdsec": "hold_s",
    "holdseconds": "hold_s",
    "holdtimes": "hold_s",
    "load": "load_kg",
    "weightkg": "load_kg",
    "loadlbs": "load_lb",
    "weightlb": "load_lb",
    "weightlbs": "load_lb",
    "pain": "pain_during",
    "painduringexercise": "pain_during",
    "pain24": "pain_24h",
    "pain24hours": "pain_24h",
    "painafter24h": "pain_24h",
    "cardio": "cardio_min",
    "cardiominutes": "cardio_min",
    "strength": "strength_sessions",
    "value": "score",
}

DISCHARGE_REASONS = {
    "completed": "completed",
    "complete": "completed",
    "finished": "completed",
    "droppedout": "dropped_out",
    "dropout": "dropped_out",
    "dropped": "dropped_out",
    "lost": "dropped_out",
    "losttofollowup": "dropped_out",
    "referredsurgery": "referred_surgery",
    "referredtosurgery": "referred_surgery",
    "surgicalreferral": "referred_surgery",
    "surgery": "referred_surgery",
    "referredinjection": "referred_injection",
    "referredtoinjection": "referred_injection",
    "injection": "referred_injection",
    "other": "other",
}
SEXES = {
    "f": "F",
    "female": "F",
    "w": "F",
    "woman": "F",
    "m": "M",
    "male": "M",
    "man": "M",
    "x": "X",
    "other": "X",
    "diverse": "X",
    "nonbinary": "X",
    "d": "X",
    "": "unknown",
    "u": "unknown",
    "unknown": "unknown",
    "notstated": "unknown",
    "na": "unknown",
}

Progress = Callable[[str, int, int], None]


@dataclass
class _Checked:
    """A table's parsed columns and its problems, before it is split into kept / quarantined."""

    raw: RawTable
    table: str
    columns: dict[str, str]  # canonical name -> header as written
    problems: list[pd.DataFrame]

    def cells(self, name: str) -> pd.Series:
        if name in self.columns:
            return self.raw.cells[self.columns[name]].fillna("").astype(str)
        return pd.Series("", index=self.raw.cells.index, dtype=object)

    def has(self, name: str) -> bool:
        return name in self.columns

    def flag(self, mask, name: str, reason, value: pd.Series | None = None) -> None:
        """Record ``reason`` (str or per-row Series) for the rows where ``mask`` is true."""
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        index = np.flatnonzero(mask)
        values = self.cells(name) if value is None else value.astype(str)
        reasons = reason.to_numpy()[index] if isinstance(reason, pd.Series) else reason
        self.problems.append(
            pd.DataFrame(
                {
                    "position": index,
                    "column": name,
                    "value": values.to_numpy()[index],
                    "reason": reasons,
                    "order": len(self.problems),
                }
            )
        )

    def flag_reasons(self, reasons: pd.Series, name: str) -> None:
        self.flag((reasons != "").to_numpy(), name, reasons)

    def bad_positions(self) -> np.ndarray:
        if not self.problems:
            return np.zeros(len(self.raw.cells), dtype=bool)
        bad = np.zeros(len(self.raw.cells), dtype=bool)
        for problem in self.problems:
            bad[problem["position"].to_numpy()] = True
        return bad

    def quarantine(self) -> pd.DataFrame:
        """One quarantine row per rejected input row (malformed records included)."""
        parts = []
        if self.problems:
            problems = pd.concat(self.problems, ignore_index=True).sort_values(
                ["position", "order"], kind="stable"
            )
            first = problems.drop_duplicates("position", keep="first").set_index("position")
            rest = problems[problems.duplicated("position", keep="first")]
            others = (
                (rest["column"] + ": " + rest["reason"]).groupby(rest["position"]).agg("; ".join)
            )
            first["other_problems"] = others.reindex(first.index).fillna("")
            first["source_row"] = self.raw.source_row[first.index.to_numpy()]
            parts.append(first.reset_index(drop=True))
        if self.raw.malformed:
            parts.append(
                pd.DataFrame(
                    {
                        "source_row": [row for row, _ in self.raw.malformed],
                        "column": "",
                        "value": [text[:200] for _, text in self.raw.malformed],
                        "reason": "the row has more cells than the header has columns",
                        "other_problems": "",
                    }
                )
            )
        if not parts:
            return pd.DataFrame(columns=QUARANTINE_COLUMNS + ["other_problems"])
        out = pd.concat(parts, ignore_index=True)
        out["table"] = self.table
        out["source_file"] = self.raw.name
        out = out.sort_values("source_row", kind="stable")
        return out[QUARANTINE_COLUMNS + ["other_problems"]].reset_index(drop=True)


def _find_files(folder: Path) -> tuple[dict[str, Path], list[str]]:
    found: dict[str, list[Path]] = {}
    ignored = []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith((".", "~$")):
            continue
        table = path.stem.strip().lower()
        if table in TABLES and path.suffix.lower() in SUPPORTED_SUFFIXES + (".xls", ".ods"):
            found.setdefault(table, []).append(path)
        else:
            ignored.append(path.name)
    for table, paths in found.items():
        if len(paths) > 1:
            raise DataError(
                f"more than one file for the {table} table: {', '.join(p.name for p in paths)}",
                file=str(folder),
                fix="keep one file per table",
            )
    for table in REQUIRED_TABLES:
        if table not in found:
            raise DataError(
                f"no {table} file (looked for {table}.csv, {table}.xlsx or {table}.parquet)",
                file=str(folder),
                fix=f"add the {table} table to the folder, named {table}.csv (or .xlsx, .parquet)",
            )
    return {t: p[0] for t, p in found.items()}, ignored


def _map_columns(raw: RawTable, table: str, known: tuple[str, ...]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    canonical = {column_key(name): name for name in known}
    for header in raw.cells.columns:
        key = column_key(header)
        name = canonical.get(key) or COLUMN_SYNONYMS.get(key)
        if name in known and name not in mapping:
            mapping[name] = header
    missing = [c for c in REQUIRED_COLUMNS[table] if c not in mapping]
    if missing:
        raise DataError(
            f"the {table} table lacks the required column(s) {', '.join(missing)} "
            f"(columns found: {', '.join(map(str, raw.cells.columns)) or 'none'})",
            file=raw.name,
            fix=f"add or rename the column(s) {', '.join(missing)} (names are matched "
            "ignoring case, spaces and underscores)",
        )
    return mapping


def _check_dates(checked: _Checked, name: str, dayfirst, today: pd.Timestamp, *, required: bool):
    dates, reasons = parse_dates(checked.cells(name), dayfirst=dayfirst)
    if required:
        checked.flag(checked.cells(name) == "", name, f"{name} is missing")
    checked.flag_reasons(reasons, name)
    checked.flag(
        (dates > today).to_numpy(), name, f"{name} is in the future (after {today:%Y-%m-%d})"
    )
    return dates


def _check_number(
    checked: _Checked,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    whole: bool = False,
    label: str | None = None,
    cells: pd.Series | None = None,
) -> pd.Series:
    label = label or name
    source = checked.cells(name) if cells is None else cells
    values, reasons = parse_numbers(source)
    checked.flag_reasons(reasons, name)
    if whole:
        checked.flag(
            (values.notna() & (values % 1 != 0)).to_numpy(), name, f"{label} must be a whole number"
        )
    if low is not None:
        checked.flag((values < low).to_numpy(), name, f"{label} below {low:g} is impossible")
    if high is not None:
        checked.flag((values > high).to_numpy(), name, f"{label} above {high:g} is impossible")
    return values


def _check_patient_ids(checked: _Checked, patients: pd.DataFrame, rejected: pd.Series):
    ids = checked.cells("patient_id")
    checked.flag(ids == "", "patient_id", "patient id is empty")
    in_quarantine = ids.isin(rejected.index) & (ids != "")
    checked.flag(
        in_quarantine.to_numpy(),
        "patient_id",
        "patient is quarantined in the patients table: "
        + ids.map(rejected).astype(object).fillna(""),
    )
    unknown = (ids != "") & ~ids.isin(patients["patient_id"]) & ~in_quarantine
    checked.flag(unknown.to_numpy(), "patient_id", "unknown patient id (not in the patients table)")
    return ids


def _flag_duplicates(checked: _Checked, key: pd.DataFrame, what: str) -> None:
    """Quarantine later copies of a key among otherwise valid rows, naming the first copy's row."""
    ok = ~checked.bad_positions()
    key = key.copy()
    key["_row"] = checked.raw.source_row
    valid = key[ok]
    columns = [c for c in key.columns if c != "_row"]
    later = valid.duplicated(columns, keep="first")
    if not later.any():
        return
    first_row = valid.groupby(columns, dropna=False, sort=False)["_row"].transform("first")
    mask = np.zeros(len(key), dtype=bool)
    mask[np.flatnonzero(ok)[later.to_numpy()]] = True
    reasons = pd.Series("", index=checked.raw.cells.index, dtype=object)
    reasons[mask] = (
        "duplicate of row " + first_row[later].astype(str).to_numpy() + f" (same {what})"
    )
    checked.flag(mask, columns[-1], reasons)


def _split(checked: _Checked, frame: pd.DataFrame) -> pd.DataFrame:
    return frame.loc[~checked.bad_positions()].reset_index(drop=True)


def _load_patients(raw: RawTable, dayfirst, today) -> tuple[_Checked, pd.DataFrame]:
    checked = _Checked(raw, "patients", _map_columns(raw, "patients", tuple(PATIENT_COLUMNS)), [])
    ids = checked.cells("patient_id")
    checked.flag(ids == "", "patient_id", "patient id is empty")
    clinic = checked.cells("clinic_id")
    checked.flag(clinic == "", "clinic_id", "clinic id is missing")
    start = _check_dates(checked, "start_date", dayfirst, today, required=True)
    discharge = _check_dates(checked, "discharge_date", dayfirst, today, required=False)
    checked.flag(
        (discharge < start).to_numpy(), "discharge_date", "discharge_date is before start_date"
    )
    sex_key = checked.cells("sex").map(column_key)
    sex = sex_key.map(SEXES)
    checked.flag(sex.isna().to_numpy(), "sex", "sex must be F, M, X or unknown")
    age = _check_number(checked, "age_years", low=12, high=110, whole=True, label="age_years")
    athlete, reasons = parse_bool(checked.cells("athlete"))
    checked.flag_reasons(reasons, "athlete")
    reason_key = checked.cells("discharge_reason").map(column_key)
    discharge_reason = reason_key.map(DISCHARGE_REASONS)
    checked.flag(
        ((reason_key != "") & discharge_reason.isna()).to_numpy(),
        "discharge_reason",
        "discharge_reason must be one of completed, dropped_out, referred_surgery, "
        "referred_injection, other",
    )
    planned = _check_number(checked, "planned_sessions_per_week", label="planned_sessions_per_week")
    checked.flag(
        (planned <= 0).to_numpy(),
        "planned_sessions_per_week",
        "planned_sessions_per_week must be above 0",
    )
    checked.flag(
        (planned > 14).to_numpy(),
        "planned_sessions_per_week",
        "planned_sessions_per_week above 14 is implausible",
    )
    _flag_duplicates(checked, pd.DataFrame({"patient_id": ids}), "patient id")

    clinician = checked.cells("clinician_id")
    condition = checked.cells("condition")
    frame = pd.DataFrame(
        {
            "patient_id": ids.astype(str),
            "clinic_id": clinic.astype(str),
            "clinician_id": clinician.where(clinician != "").astype("str"),
            "sex": sex.fillna("unknown").astype(str),
            "age_years": age.astype("Int64"),
            "condition": condition.where(condition != "").str.lower().astype("str"),
            "athlete": athlete,
            "start_date": start,
            "discharge_date": discharge,
            "discharge_reason": discharge_reason.astype("str"),
            "planned_sessions_per_week": planned.fillna(DEFAULT_PLANNED_SESSIONS_PER_WEEK),
        }
    )
    return checked, frame


def _rejected_patients(checked: _Checked) -> pd.Series:
    """Patient ids whose every row is quarantined, mapped to where and why."""
    quarantine = checked.quarantine()
    ids = checked.cells("patient_id")
    kept_ids = set(ids[~checked.bad_positions()])
    rows = pd.Series(checked.raw.source_row, index=checked.raw.cells.index)
    bad = quarantine.merge(
        pd.DataFrame({"source_row": rows, "patient_id": ids}), on="source_row", how="left"
    )
    bad = bad[bad["patient_id"].notna() & (bad["patient_id"] != "")]
    bad = bad[~bad["patient_id"].isin(kept_ids)]
    bad = bad.drop_duplicates("patient_id")
    text = checked.raw.name + " row " + bad["source_row"].astype(str) + " (" + bad["reason"] + ")"
    return pd.Series(text.to_numpy(), index=bad["patient_id"].to_numpy(), dtype=object)


def _split_list(cells: pd.Series) -> pd.DataFrame:
    """``'10/10/8'`` -> columns 0, 1, 2 of text; a plain value stays in column 0."""
    return cells.str.split("/", expand=True, regex=False).fillna("")


def _load_exercises(raw, patients, rejected, catalogue, dayfirst, today, pain_max):
    known = tuple(SET_COLUMNS[:3]) + (
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
    )
    checked = _Checked(raw, "exercises", _map_columns(raw, "exercises", known), [])
    if checked.has("set") == checked.has("sets"):
        raise DataError(
            "the exercises table needs exactly one of the columns 'set' (one row per set) or "
            "'sets' (one row per exercise with the number of sets)",
            file=raw.name,
            fix="add a 'set' column numbering each set, or a 'sets' column with the sets done",
        )
    if not (checked.has("reps") or checked.has("hold_s")):
        raise DataError(
            "the exercises table has neither a 'reps' nor a 'hold_s' column",
            file=raw.name,
            fix="add the reps per set (and/or the hold in seconds)",
        )
    set_level = checked.has("set")

    ids = _check_patient_ids(checked, patients, rejected)
    dates = _check_dates(checked, "date", dayfirst, today, required=True)
    start = ids.map(patients.set_index("patient_id")["start_date"])
    earliest = start - pd.Timedelta(days=PRE_START_DAYS)
    too_early = (dates < earliest).to_numpy()
    days_before = (start - dates).dt.days
    checked.flag(
        too_early,
        "date",
        "date is " + days_before.astype("Int64").astype(str) + f" days before the patient's "
        f"start_date (at most {PRE_START_DAYS} allowed)",
    )

    names = checked.cells("exercise")
    checked.flag(names == "", "exercise", "exercise name is empty")
    exercise = resolve_exercises(names, catalogue)
    unknown = (names != "") & exercise.isna()
    if unknown.any():
        aliases = alias_table(catalogue)
        hints = {
            name: suggest_exercises(name, catalogue, aliases=aliases)
            for name in names[unknown].unique()
        }
        text = {
            name: "unknown exercise"
            + (f"; did you mean {', '.join(ids_)}?" if ids_ else "; see `hipdata catalogue`")
            for name, ids_ in hints.items()
        }
        checked.flag(unknown.to_numpy(), "exercise", names.map(text).fillna(""))

    if set_level:
        set_number = _check_number(checked, "set", low=1, high=50, whole=True, label="set number")
        checked.flag(checked.cells("set") == "", "set", "set number is missing")
        per_set = {
            "reps": _check_number(checked, "reps", low=0, high=200, whole=True).to_frame(0),
            "hold_s": _check_number(checked, "hold_s", low=0, high=600).to_frame(0),
        }
        n_sets = pd.Series(1, index=raw.cells.index)
    else:
        sets_given = _check_number(checked, "sets", low=1, high=50, whole=True, label="sets")
        per_set = {}
        lengths = []
        for name, high, whole in (("reps", 200, True), ("hold_s", 600, False)):
            parts = _split_list(checked.cells(name))
            values = pd.DataFrame(index=raw.cells.index)
            for position in parts.columns:
                values[position] = _check_number(
                    checked, name, low=0, high=high, whole=whole, cells=parts[position]
                )
            per_set[name] = values
            text = checked.cells(name)
            n_parts = text.str.count("/") + 1
            counts = (parts != "").sum(axis=1)
            checked.flag(
                ((n_parts > 1) & (counts != n_parts)).to_numpy(),
                name,
                "empty value in the per-set list",
            )
            lengths.append(counts.where(n_parts > 1))
        both = pd.concat(lengths, axis=1)
        checked.flag(
            (both.notna().all(axis=1) & (both.iloc[:, 0] != both.iloc[:, 1])).to_numpy(),
            "hold_s",
            "the reps and hold_s lists have different lengths",
        )
        list_length = both.max(axis=1)
        conflict = list_length.notna() & sets_given.notna() & (list_length != sets_given)
        checked.flag(
            conflict.to_numpy(),
            "sets",
            "sets disagrees with the number of values in the per-set list",
        )
        n_sets = sets_given.fillna(list_length)
        checked.flag(n_sets.isna().to_numpy(), "sets", "sets is missing")
    load_kg = _check_number(checked, "load_kg", low=0, high=500, label="load_kg")
    if checked.has("load_lb"):
        load_lb = _check_number(checked, "load_lb", low=0, high=500 / LB_TO_KG, label="load_lb")
        load_kg = load_kg.fillna(load_lb * LB_TO_KG)
    # a named exercise done with external load is its ladder's loaded variant (catalogue.py)
    exercise = apply_loaded_variants(names, exercise, load_kg, catalogue)
    set_type = checked.cells("set_type").map(column_key).map(SET_TYPE_NAMES)
    checked.flag(
        set_type.isna().to_numpy(),
        "set_type",
        "set_type must be working, warmup, drop or failure",
    )
    pain = {}
    for name in ("pain_during", "pain_24h"):
        values, reasons = parse_pain(checked.cells(name), scale_max=pain_max)
        checked.flag_reasons(reasons, name)
        pain[name] = values * (10.0 / pain_max)
    prescribed = {
        name: _check_number(checked, name, low=0, high=high, whole=whole)
        for name, high, whole in (
            ("prescribed_sets", 50, True),
            ("prescribed_reps", 200, True),
            ("prescribed_hold_s", 600, False),
        )
    }
    key = pd.DataFrame({"patient_id": ids, "date": dates, "exercise": exercise})
    if set_level:
        key["set"] = set_number
        _flag_duplicates(checked, key, "patient, date, exercise and set")
    else:
        _flag_duplicates(checked, key, "patient, date and exercise")

    keep = ~checked.bad_positions()
    rows = pd.DataFrame(
        {
            "patient_id": ids,
            "date": dates,
            "exercise": exercise,
            "load_kg": load_kg.fillna(0.0),
            **pain,
            **prescribed,
            "set_type": set_type,
            "source_file": raw.name,
            "source_row": raw.source_row,
        }
    )[keep]
    repeat = n_sets[keep].astype(int).to_numpy()
    sets = rows.loc[rows.index.repeat(repeat)]
    set_index = sets.groupby(level=0).cumcount().to_numpy()
    if set_level:
        sets = sets.assign(set=set_number[keep].astype(int).to_numpy())
    else:
        sets = sets.assign(set=set_index + 1)
    for name, values in per_set.items():
        table = values[keep].to_numpy()
        if table.shape[1] == 0:
            sets[name] = np.nan
            continue
        row_positions = np.repeat(np.arange(table.shape[0]), repeat)
        single = (
            np.isnan(table[:, 1:]).all(axis=1) if table.shape[1] > 1 else np.ones(len(table), bool)
        )
        column = np.where(single[row_positions], 0, np.minimum(set_index, table.shape[1] - 1))
        sets[name] = table[row_positions, column]
    sets = sets.merge(
        catalogue[["id", "family", "level", "dose"]].rename(columns={"id": "exercise"}),
        on="exercise",
        how="left",
    )
    sets["level"] = sets["level"].astype("int64")
    sets = sets.sort_values(["patient_id", "date", "source_row", "set"], kind="stable")
    return checked, sets[SET_COLUMNS].reset_index(drop=True)


def _load_optional(raw, table, patients, rejected, dayfirst, today, measures):
    known = {
        "activity": tuple(ACTIVITY_COLUMNS),
        "outcomes": tuple(OUTCOME_COLUMNS),
        "treatments": tuple(TREATMENT_COLUMNS),
    }[table]
    checked = _Checked(raw, table, _map_columns(raw, table, known), [])
    ids = _check_patient_ids(checked, patients, rejected)
    dates = _check_dates(checked, "date", dayfirst, today, required=True)
    frame = pd.DataFrame({"patient_id": ids, "date": dates})
    if table == "activity":
        frame["cardio_min"] = _check_number(checked, "cardio_min", low=0, high=7 * 24 * 60)
        frame["strength_sessions"] = _check_number(
            checked, "strength_sessions", low=0, high=50, whole=True
        )
        checked.flag(
            (frame["cardio_min"].isna() & frame["strength_sessions"].isna()).to_numpy(),
            "cardio_min",
            "no activity recorded (cardio_min and strength_sessions both empty)",
        )
        _flag_duplicates(checked, frame[["patient_id", "date"]], "patient and date")
    elif table == "outcomes":
        names = checked.cells("measure")
        measure = names.map(column_key).map(
            {column_key(k): v for k, v in measure_aliases(measures).items()}
        )
        checked.flag(names == "", "measure", "measure is missing")
        checked.flag(
            ((names != "") & measure.isna()).to_numpy(),
            "measure",
            "unknown measure (known: " + ", ".join(measures) + "; register others)",
        )
        score = _check_number(checked, "score")
        checked.flag(checked.cells("score") == "", "score", "score is missing")
        low = measure.map({k: m.low for k, m in measures.items()})
        high = measure.map({k: m.high for k, m in measures.items()})
        outside = (score < low - 1e-9) | (score > high + 1e-9)
        checked.flag(
            outside.to_numpy(),
            "score",
            "score outside the measure's range "
            + low.astype(str).str.replace(".0", "", regex=False)
            + " to "
            + high.astype(str).str.replace(".0", "", regex=False)
            + " (never clipped)",
        )
        frame["measure"] = measure
        frame["score"] = score
        _flag_duplicates(
            checked, frame[["patient_id", "date", "measure"]], "patient, date and measure"
        )
    else:
        codes = checked.cells("treatment")
        checked.flag(codes == "", "treatment", "treatment is missing")
        frame["treatment"] = (
            codes.str.lower().str.replace(r"[^0-9a-z]+", "_", regex=True).str.strip("_")
        )
        _flag_duplicates(
            checked, frame[["patient_id", "date", "treatment"]], "patient, date and treatment"
        )
    frame["source_file"] = raw.name
    frame["source_row"] = raw.source_row
    return checked, _split(checked, frame)


def _read(source: Path | RawTable) -> RawTable:
    return source if isinstance(source, RawTable) else read_raw(source)


def load(
    folder: str | Path | Mapping[str, RawTable],
    *,
    dayfirst: bool | None = None,
    pain_scale: str = "nrs",
    catalogue: str | Path | pd.DataFrame | None = None,
    measures: dict[str, Measure] | str | Path | None = None,
    today: str | pd.Timestamp | None = None,
    progress: Progress | None = None,
) -> Dataset:
    """Read, validate and quarantine a data folder (CONTRACT §1-2).

    Parameters
    ----------
    folder : path
        Holds ``patients`` (required) and optionally ``exercises``, ``activity``,
        ``outcomes`` and ``treatments``, each as ``.csv``, ``.xlsx`` or ``.parquet``
        (outcome-only or exercise-only data load; metrics needing a missing table are empty).
        (:func:`hipdata.validate` passes ``{table: RawTable}`` built from DataFrames instead.)
    dayfirst : bool, optional
        Order of day and month in dates like ``03/04/2026``. ``None`` (default) accepts only
        unambiguous dates and quarantines the rest; it never guesses.
    pain_scale : {"nrs", "vas100"}
        ``vas100``: pain recorded on a 0-100 mm scale, divided by 10.
    catalogue : path or DataFrame, optional
        A clinic's exercise catalogue merged over the shipped one.
    measures : dict or path, optional
        Outcome-measure registry (default :data:`hipdata.outcome_measures.MEASURES`), or a
        measures file (CSV or TOML, see :func:`hipdata.outcome_measures.read_measures`) whose
        measures are added to the shipped ones. Kept in ``meta["measures"]`` for the metrics.
    today : date, optional
        Dates after it are "in the future" (default: today's date).
    progress : callable, optional
        Called as ``progress(step, done, total)`` after each file (the CLI draws a bar).

    Returns
    -------
    Dataset
        Clean tables, the quarantine and a load report; for every file
        ``rows_read == rows_kept + rows_quarantined``.

    Raises
    ------
    DataError
        When a file cannot be used at all (missing file or column, unreadable encoding, ...).
    """
    in_memory = isinstance(folder, Mapping)  # {table: RawTable} from hipdata.validate(frames)
    folder = folder if in_memory else Path(folder)
    if not in_memory and not folder.is_dir():
        raise DataError(
            "no such folder", file=str(folder), fix="give the folder that holds patients.csv"
        )
    if pain_scale not in PAIN_SCALES:
        raise DataError(
            f"unknown pain_scale {pain_scale!r}",
            fix="use pain_scale='nrs' (0-10) or pain_scale='vas100' (0-100 mm)",
        )
    today = pd.Timestamp.today().normalize() if today is None else pd.Timestamp(today).normalize()
    catalogue_table = load_catalogue(catalogue)
    if isinstance(measures, (str, Path)):  # a measures file (CSV or TOML)
        from hipdata.outcome_measures import read_measures

        measures = read_measures(measures)
    measures = MEASURES if measures is None else measures
    files, ignored = (dict(folder), []) if in_memory else _find_files(folder)
    total = len(files)
    digest = hashlib.sha256()
    for table in TABLES:
        if table in files and not in_memory:
            digest.update(table.encode() + b"\0" + files[table].read_bytes() + b"\0")

    def step(name: str, done: int) -> None:
        if progress is not None:
            progress(name, done, total)

    checks: list[_Checked] = []
    kept_counts: dict[str, int] = {}
    raw = _read(files["patients"])
    checked, patients_all = _load_patients(raw, dayfirst, today)
    patients = _split(checked, patients_all)
    rejected = _rejected_patients(checked)
    checks.append(checked)
    kept_counts["patients"] = len(patients)
    step("patients", 1)

    sets = pd.DataFrame(columns=SET_COLUMNS)  # outcome-only data: no exercise table
    if "exercises" in files:
        raw = _read(files["exercises"])
        checked, sets = _load_exercises(
            raw, patients, rejected, catalogue_table, dayfirst, today, PAIN_SCALES[pain_scale]
        )
        checks.append(checked)
        kept_counts["exercises"] = int((~checked.bad_positions()).sum())
        step("exercises", 2)

    optional: dict[str, pd.DataFrame] = {}
    for number, table in enumerate(("activity", "outcomes", "treatments"), start=3):
        if table not in files:
            continue
        raw = _read(files[table])
        checked, frame = _load_optional(raw, table, patients, rejected, dayfirst, today, measures)
        checks.append(checked)
        optional[table] = frame
        kept_counts[table] = len(frame)
        step(table, number)

    quarantine = pd.concat([c.quarantine() for c in checks], ignore_index=True)
    report_rows = []
    for checked in checks:
        read = len(checked.raw.cells) + len(checked.raw.malformed)
        quarantined = int((quarantine["source_file"] == checked.raw.name).sum())
        kept = kept_counts[checked.table]
        if read != kept + quarantined:  # a bug in the loader, never a data problem
            raise AssertionError(
                f"{checked.raw.name}: {read} rows read but {kept} kept + {quarantined} quarantined"
            )
        report_rows.append((checked.table, checked.raw.name, read, kept, quarantined))
    load_report = pd.DataFrame(report_rows, columns=LOAD_REPORT_COLUMNS)

    dataset = Dataset.from_frames(
        patients,
        sets,
        activity=optional.get("activity"),
        outcomes=optional.get("outcomes"),
        treatments=optional.get("treatments"),
        catalogue=catalogue_table,
        validate=False,
    )
    dataset.quarantine = quarantine
    dataset.load_report = load_report
    dataset.input_hash = digest.hexdigest()
    dataset.source = str(folder)
    dataset.meta = {
        "ignored_files": ignored,
        "dayfirst": dayfirst,
        "pain_scale": pain_scale,
        "today": today.strftime("%Y-%m-%d"),
        "files": {t: p.name for t, p in files.items()},
        "measures": measures,
    }
    return dataset
