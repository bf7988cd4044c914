"""Load a data folder into a :class:`~hipdata.dataset.Dataset` (CONTRACT §1-2).

Every input row ends in exactly one place: a clean table or the quarantine, with the file, the
1-based spreadsheet row, the column, the value and a reason a clinician can act on. The checks are
vectorised: each rule marks the rows it rejects; a row's first problem (in rule order) is its
quarantine reason and any further problems are listed beside it.
"""

from __future__ import annotations

import hashlib
import re
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
    suggest_exercises_many,
)
from hipdata.dataset import (
    COLUMN_REPORT_COLUMNS,
    LOAD_REPORT_COLUMNS,
    QUARANTINE_COLUMNS,
    SET_COLUMNS,
    SET_TYPE_NAMES,
    Dataset,
    join_catalogue,
    sorted_categorical,
)
from hipdata.errors import DataError
from hipdata.io.columns import KNOWN_COLUMNS
from hipdata.io.parse import parse_bool, parse_dates, parse_durations, parse_numbers, parse_pain
from hipdata.io.readers import (
    SUPPORTED_SUFFIXES,
    RawTable,
    coded_cells,
    column_key,
    decode_cells,
    echo,
    echo_series,
    map_distinct,
    read_raw,
)
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

#: Most values in a per-set list (``10/10/8``); as many as the most sets a row may have.
MAX_LIST_PARTS = 50
#: Exercise columns that give a load in a unit named by another column, per row (Strong's
#: ``Weight`` + ``Weight Unit``); keys are column_key()s.
WEIGHT_VALUE_KEYS = ("weight", "weights", "loadweight", "weightvalue")
WEIGHT_UNIT_KEYS = ("weightunit", "weightunits", "unit", "units", "loadunit", "unitofweight")
#: Units a load may be given in, mapped to kilograms per unit (keys are column_key()s).
LOAD_UNITS = {
    "kg": 1.0,
    "kgs": 1.0,
    "kilo": 1.0,
    "kilos": 1.0,
    "kilogram": 1.0,
    "kilograms": 1.0,
    "lb": LB_TO_KG,
    "lbs": LB_TO_KG,
    "pound": LB_TO_KG,
    "pounds": LB_TO_KG,
}
#: Words that make an unrecognised exercises column look like a load.
_WEIGHT_WORDS = {"weight", "weights", "load", "loads", "kg", "kgs", "kilo", "kilos", "lb", "lbs"}
_WEIGHT_WORDS |= {"pound", "pounds", "kilograms", "kilogram"}
#: Exercise columns that give a duration in seconds or as a clock (``Seconds`` in Strong,
#: ``duration_seconds`` in Hevy, a ``Time`` column written ``0:00:30``), in order of preference;
#: read as ``hold_s`` for hold exercises when the file has no hold_s column.
DURATION_KEYS = (
    "seconds",
    "durationseconds",
    "durations",
    "durationsec",
    "durationsecs",
    "secs",
    "times",
    "timeseconds",
    "duration",
    "time",
)
#: Stand-in fields for source columns that are converted into a contract field.
_SOURCE_FIELDS = ("load_value", "load_unit", "duration")

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
    #: header as written -> (field it is used as, or "" when ignored; a note)
    report: dict[str, tuple[str, str]] | None = None

    def __post_init__(self) -> None:
        self._text: dict[str, pd.Series] = {}
        self._coded: dict[str, pd.Series] = {}
        self.flag_reader_problems()

    def label(self, name: str) -> str:
        """The quarantine's column for a field: its contract name, or the header as written
        for a source column converted into a field (``Weight``, ``Seconds``)."""
        return self.columns.get(name, name) if name in _SOURCE_FIELDS else name

    def flag_reader_problems(self) -> None:
        """Cells the reader refused (too long, formulas without a result) come first."""
        problems = self.raw.problems
        if not len(problems):
            return
        positions = pd.Index(self.raw.source_row).get_indexer(problems["source_row"].to_numpy())
        fields = {header: name for name, header in self.columns.items()}
        for (column, reason), group in problems.assign(position=positions).groupby(
            ["column", "reason"], sort=False
        ):
            group = group[group["position"] >= 0]
            mask = np.zeros(len(self.raw.cells), dtype=bool)
            mask[group["position"].to_numpy()] = True
            values = pd.Series("", index=self.raw.cells.index, dtype=object)
            values.iloc[group["position"].to_numpy()] = group["value"].to_numpy()
            name = fields.get(column, column)
            self.flag(mask, name if name not in _SOURCE_FIELDS else column, reason, values)

    def cells(self, name: str) -> pd.Series:
        """A field's cells as text, one per row (built once per field)."""
        if name not in self.columns:
            return pd.Series("", index=self.raw.cells.index, dtype=object)
        if name not in self._text:
            column = self.raw.cells[self.columns[name]]
            if isinstance(column.dtype, pd.CategoricalDtype):
                self._text[name] = decode_cells(column)
            else:
                self._text[name] = column.fillna("").astype(str)
        return self._text[name]

    def coded(self, name: str) -> pd.Series:
        """A field's cells as a ``category`` Series of their distinct texts (the same texts as
        :meth:`cells`): comparisons, look-ups and the parsers then work once per distinct
        value."""
        if name not in self._coded and name not in self.columns:
            # an absent column: every cell is "" (what factorizing the empty cells gives)
            self._coded[name] = coded_cells(
                np.zeros(len(self.raw.cells), dtype=np.int32), [""]
            ).set_axis(self.raw.cells.index)
        if name not in self._coded:
            column = self.raw.cells[self.columns[name]] if name in self.columns else None
            if column is not None and isinstance(column.dtype, pd.CategoricalDtype):
                if (column.cat.codes < 0).any():
                    column = decode_cells(column).astype("category")
                self._coded[name] = column
            else:
                codes, texts = pd.factorize(self.cells(name))
                coded = coded_cells(codes, np.asarray(texts, dtype=object))
                self._coded[name] = coded.set_axis(self.raw.cells.index)
        return self._coded[name]

    def has(self, name: str) -> bool:
        return name in self.columns

    def flag(self, mask, name: str, reason, value: pd.Series | None = None) -> None:
        """Record ``reason`` (str or per-row Series) for the rows where ``mask`` is true."""
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        index = np.flatnonzero(mask)
        values = self.coded(name) if value is None else value
        reasons = (
            reason.iloc[index].astype(object).to_numpy()
            if isinstance(reason, pd.Series)
            else reason
        )
        self.problems.append(
            pd.DataFrame(
                {
                    "position": index,
                    "column": self.label(name),
                    "value": echo_series(values.iloc[index]).to_numpy(),
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
                        "value": [echo(text) for _, text in self.raw.malformed],
                        "reason": "the row has more cells than the header has columns (a stray "
                        "delimiter, or an unquoted decimal comma such as 4,5): its cells cannot "
                        "be placed; quote the cell or remove the extra delimiter",
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


@dataclass
class _Summary:
    """What the load report needs of a checked table, without its cells."""

    table: str
    name: str
    read: int
    kept: int
    notes: str
    report: dict[str, tuple[str, str]] | None
    quarantine: pd.DataFrame

    @classmethod
    def of(cls, checked: _Checked, kept: int) -> _Summary:
        raw = checked.raw
        return cls(
            checked.table,
            raw.name,
            len(raw.cells) + len(raw.malformed),
            kept,
            "; ".join(raw.notes),
            checked.report,
            checked.quarantine(),
        )


def _find_files(folder: Path) -> tuple[dict[str, Path], list[str]]:
    found: dict[str, list[Path]] = {}
    ignored = []
    for path in sorted(folder.iterdir()):
        table = path.stem.strip().lower()
        if path.is_dir() and table in TABLES and path.suffix.lower() in SUPPORTED_SUFFIXES:
            raise DataError(  # a table written in parts (Spark, Dask): never silently skipped
                f"{path.name} is a folder, not a file (a table written in parts?)",
                file=str(folder),
                fix=f"combine its parts into one file (pandas.read_parquet(folder).to_parquet"
                f"(file)) and put that file in its place as {path.name}",
            )
        if not path.is_file() or path.name.startswith((".", "~$")):
            continue
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


def _map_columns(
    raw: RawTable, table: str, known: tuple[str, ...]
) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """Match the file's headers to the table's fields; account for every column.

    Returns the mapping field -> header and, for every header, the field it is used as ("" when
    ignored) and a note. Raises :class:`DataError` for a missing required column, a used
    column the reader could not read, and (exercises) a load or duration in a form that cannot
    be converted safely.
    """
    mapping: dict[str, str] = {}
    canonical = {column_key(name): name for name in known}
    for header in raw.cells.columns:
        key = column_key(header)
        name = canonical.get(key) or COLUMN_SYNONYMS.get(key)
        if name in known and name not in mapping:
            mapping[name] = header
    report: dict[str, tuple[str, str]] = {header: (name, "") for name, header in mapping.items()}
    if "load_lb" in mapping:
        report[mapping["load_lb"]] = ("load_kg", "pounds converted to kg")
    if table == "exercises":
        _map_exercise_sources(raw, mapping, report)
    missing = [c for c in REQUIRED_COLUMNS[table] if c not in mapping]
    if missing:
        raise DataError(
            f"the {table} table lacks the required column(s) {', '.join(missing)} "
            f"(columns found: {echo(', '.join(map(str, raw.cells.columns)) or 'none')})",
            file=raw.name,
            fix=f"add or rename the column(s) {', '.join(missing)} (names are matched "
            "ignoring case, spaces and underscores)",
        )
    for name, header in mapping.items():
        if header in raw.unusable:
            raise DataError(
                f"column {echo(header, 60)!r} ({name}) holds {raw.unusable[header]}, which "
                "hipdata cannot read",
                file=raw.name,
                fix=f"write {name} as plain numbers or text (one value per cell; a per-set list "
                "as a list of numbers or as text like 10/10/8)",
            )
    used_keys = {column_key(h): n for h, (n, _) in report.items() if n}
    for header in raw.cells.columns:
        if header in report:
            continue
        key = column_key(header)
        field_name = canonical.get(key) or COLUMN_SYNONYMS.get(key)
        if field_name in mapping:
            note = f"ignored: {field_name} is read from column {mapping[field_name]!r}"
        elif key in used_keys:
            note = f"ignored: same field as a used column ({used_keys[key]})"
        else:
            note = f"ignored: not a field of the {table} table"
        if header in raw.unusable:
            note += f" (holds {raw.unusable[header]})"
        report[header] = ("", note)
    for header, why in raw.dropped.items():
        report[header] = ("", f"ignored: {why}")
    return mapping, report


def _with_report(mapped):
    mapping, report = mapped
    return mapping, [], report


def _is_weight_like(header: str) -> bool:
    words = set(re.findall(r"[a-z]+", str(header).lower()))
    key = column_key(header)
    return bool(words & _WEIGHT_WORDS) or key.startswith(("weight", "load"))


def _map_exercise_sources(raw: RawTable, mapping: dict, report: dict) -> None:
    """Loads and durations written in another unit or form than the contract's columns."""
    free = [h for h in raw.cells.columns if h not in report]
    by_key = {column_key(h): h for h in free}
    if "load_kg" not in mapping and "load_lb" not in mapping:
        weight = next((by_key[k] for k in WEIGHT_VALUE_KEYS if k in by_key), None)
        unit = next((by_key[k] for k in WEIGHT_UNIT_KEYS if k in by_key), None)
        if weight is not None and unit is not None:
            mapping["load_value"], mapping["load_unit"] = weight, unit
            report[weight] = ("load_kg", f"converted to kg with the unit in {unit!r} on each row")
            report[unit] = ("load_kg", f"unit of {weight!r} (kg or lbs)")
        elif weight is not None:
            raise DataError(
                f"the column {echo(weight, 60)!r} gives a load without its unit",
                file=raw.name,
                fix="rename it to load_kg (kilograms) or load_lb (pounds), or add a "
                "'Weight Unit' column with kg or lbs on every row",
            )
        else:
            like = [h for h in free if _is_weight_like(h) and column_key(h) not in WEIGHT_UNIT_KEYS]
            if like:
                raise DataError(
                    f"the column {echo(like[0], 60)!r} looks like a load, but hipdata cannot "
                    "tell its unit (without a load column every load would be read as 0)",
                    file=raw.name,
                    fix="rename it to load_kg (kilograms) or load_lb (pounds) if it is the "
                    "external load, or delete the column",
                )
    if "hold_s" not in mapping:
        duration = next((by_key[k] for k in DURATION_KEYS if k in by_key), None)
        if duration is not None:
            mapping["duration"] = duration
            report[duration] = (
                "hold_s",
                "read as hold_s (seconds, mm:ss or h:mm:ss) for hold exercises; a duration on "
                "a reps exercise quarantines the row",
            )


def _check_dates(checked: _Checked, name: str, dayfirst, today: pd.Timestamp, *, required: bool):
    dates, reasons = parse_dates(checked.coded(name), dayfirst=dayfirst)
    if required:
        checked.flag(checked.coded(name) == "", name, f"{name} is missing")
    checked.flag_reasons(reasons, name)
    checked.flag(
        (dates > today).to_numpy(), name, f"{name} is in the future (after {today:%Y-%m-%d})"
    )
    return dates


def _range_reasons(
    values: pd.Series,
    reasons: pd.Series,
    *,
    label: str,
    low: float | None = None,
    high: float | None = None,
    whole: bool = False,
) -> pd.Series:
    """The parser's reasons plus the range rules, first problem per value."""
    out = reasons.astype(object).copy()
    free = out == ""
    if whole:
        bad = free & values.notna() & (values % 1 != 0)
        out[bad] = f"{label} must be a whole number"
        free &= ~bad
    if low is not None:
        bad = free & (values < low)
        out[bad] = f"{label} below {low:g} is impossible"
        free &= ~bad
    if high is not None:
        out[free & (values > high)] = f"{label} above {high:g} is impossible"
    return out


def _check_number(
    checked: _Checked,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    whole: bool = False,
    label: str | None = None,
    cells: pd.Series | None = None,
    parser=parse_numbers,
) -> pd.Series:
    label = label or name
    if cells is None and not checked.has(name):
        # an absent column: every cell is empty, so every value is missing and no rule fires
        return pd.Series(np.nan, index=checked.raw.cells.index, dtype="float64")
    source = checked.coded(name) if cells is None else cells
    if isinstance(source.dtype, pd.CategoricalDtype) and not (source.cat.codes < 0).any():
        return _check_number_coded(checked, name, source, low, high, whole, label, parser)
    values, reasons = parser(source)
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


def _check_number_coded(checked, name, source, low, high, whole, label, parser) -> pd.Series:
    """:func:`_check_number` for coded cells: the value, the parser's reason and every range
    rule are decided once per distinct text, and the rows only take them by their codes (the
    same flags, in the same order, as the per-row rules give)."""
    codes = source.cat.codes.to_numpy()
    # the categories are distinct texts already: the parser itself, without its per-distinct
    # wrapper (whose factorize would give back the same texts in the same order)
    parse_texts = getattr(parser, "__wrapped__", parser)
    values, reasons = parse_texts(pd.Series(source.cat.categories.astype(object), dtype=object))
    values = values.to_numpy(dtype="float64")
    reasons = reasons.astype(object).to_numpy()
    # texts no row has (the CSV reader's header text) break no row's rules
    present = np.bincount(codes, minlength=len(reasons)) > 0
    failed = (reasons != "") & present
    if failed.any():  # (a rule no distinct text breaks flags no row: nothing to spread)
        rows = failed[codes]
        checked.flag(rows, name, _rows_reason(rows, reasons[codes[rows]], source.index))
    rules = []
    with np.errstate(invalid="ignore"):
        if whole:
            rules.append((~np.isnan(values) & (values % 1 != 0), f"{label} must be a whole number"))
        if low is not None:
            rules.append((values < low, f"{label} below {low:g} is impossible"))
        if high is not None:
            rules.append((values > high, f"{label} above {high:g} is impossible"))
    for bad, reason in rules:
        if (bad & present).any():
            checked.flag(bad[codes], name, reason)
    return pd.Series(values[codes], index=source.index)


def _check_list(
    checked: _Checked,
    name: str,
    *,
    high: float,
    whole: bool,
    label: str,
    parser=parse_numbers,
) -> tuple[np.ndarray, pd.Series]:
    """Per-set lists ``10/10/8`` (or one value) -> a (rows x parts) float table and the number
    of parts written. A row's result depends on its text only, so the rules of
    :func:`_list_parts` run once per distinct text that some row has and are spread to the
    rows by their codes (the same table, counts and flags, in the same order)."""
    coded = checked.coded(name)
    present, codes = np.unique(coded.cat.codes.to_numpy(), return_inverse=True)
    texts = pd.Series(pd.Index(coded.cat.categories, dtype="str").array.take(present))
    flags: list[tuple[np.ndarray, object]] = []
    table, counts = _list_parts(texts, flags, high=high, whole=whole, label=label, parser=parser)
    index = checked.raw.cells.index
    for mask, reason in flags:
        if isinstance(reason, pd.Series):
            reason = pd.Series(reason.to_numpy()[codes], index=index)
        checked.flag(mask[codes], name, reason)
    return table[codes], pd.Series(counts.array.take(codes), index=index)


def _list_parts(
    text: pd.Series, flags: list, *, high: float, whole: bool, label: str, parser
) -> tuple[np.ndarray, pd.Series]:
    """The per-set lists of ``text`` (a RangeIndex Series) parsed: the table of values, the
    number of parts written (missing for a single value) and, appended to ``flags``, each
    rule's (row mask, reason) in rule order. One parse of all parts together (not one scan
    per position), and a list with more than :data:`MAX_LIST_PARTS` parts is refused before
    it is split."""
    n_parts = text.str.count("/") + 1
    too_many = (n_parts > MAX_LIST_PARTS).to_numpy()
    flags.append(
        (
            too_many,
            "per-set list with "
            + n_parts.map("{:,}".format).astype(str)
            + f" values (at most {MAX_LIST_PARTS})",
        )
    )
    text = text.where(~too_many, "")
    n_parts = n_parts.where(~too_many, 1)
    long = text.str.split("/", regex=False).explode()
    rows = pd.Index(text.index).get_indexer(long.index)
    position = long.groupby(level=0, sort=False).cumcount().to_numpy()
    long = long.fillna("").astype(str).reset_index(drop=True)
    values, reasons = parser(long)
    reasons = _range_reasons(values, reasons, label=label, low=0, high=high, whole=whole)
    bad = reasons != ""
    if bad.any():
        first = pd.Series(reasons[bad].to_numpy(), index=rows[bad.to_numpy()])
        first = first[~first.index.duplicated()]
        per_row = pd.Series("", index=range(len(text)), dtype=object)
        per_row.iloc[first.index.to_numpy()] = first.to_numpy()
        per_row = per_row.set_axis(text.index)
        flags.append(((per_row != "").to_numpy(), per_row))
    width = int(position.max()) + 1 if len(position) else 1
    table = np.full((len(text), width), np.nan)
    table[rows, position] = values.where(~bad).to_numpy(dtype=float)
    counts = pd.Series(
        np.bincount(rows[(long != "").to_numpy()], minlength=len(text)), index=text.index
    )
    flags.append(
        (((n_parts > 1) & (counts != n_parts)).to_numpy(), "empty value in the per-set list")
    )
    return table, counts.where(n_parts > 1)


def _isin(values, pool) -> np.ndarray:
    """``Series(values).isin(pool)`` as a boolean array, on object arrays: one hash look-up per
    value (pandas' ``str`` dtype's ``isin`` builds an Arrow scalar per pooled value, seconds for
    10^5 ids)."""
    as_objects = pd.Series(np.asarray(values, dtype=object), dtype=object)
    return as_objects.isin(pd.Series(np.asarray(pool, dtype=object), dtype=object)).to_numpy()


def _rows_reason(mask: np.ndarray, texts, index: pd.Index) -> pd.Series:
    """A per-row reason Series that holds ``texts`` (one per true entry of ``mask``) and ""
    elsewhere: :meth:`_Checked.flag` reads it only where ``mask`` is true, so no text is
    built for the other rows."""
    out = np.full(len(mask), "", dtype=object)
    out[mask] = np.asarray(texts, dtype=object)
    return pd.Series(out, index=index, dtype=object)  # no text column built per call


def _flag_patient_ids(checked: _Checked, patients: pd.DataFrame, rejected: pd.Series) -> pd.Series:
    """The patient-id rules (empty, patient quarantined, unknown), decided once per distinct
    id and spread to the rows by their codes; returns the coded ids."""
    ids = checked.coded("patient_id")
    codes = ids.cat.codes.to_numpy()
    distinct = pd.Series(ids.cat.categories, dtype="str")
    empty = (distinct == "").to_numpy()
    in_quarantine = _isin(distinct, rejected.index) & ~empty
    unknown = ~empty & ~_isin(distinct, patients["patient_id"]) & ~in_quarantine
    checked.flag(empty[codes], "patient_id", "patient id is empty")
    rows = in_quarantine[codes]
    if rows.any():
        why = (
            "patient is quarantined in the patients table: "
            + distinct.map(rejected).astype(object).fillna("")
        ).to_numpy(dtype=object)
        checked.flag(rows, "patient_id", _rows_reason(rows, why[codes[rows]], ids.index))
    checked.flag(unknown[codes], "patient_id", "unknown patient id (not in the patients table)")
    return ids


def _check_patient_ids(checked: _Checked, patients: pd.DataFrame, rejected: pd.Series):
    _flag_patient_ids(checked, patients, rejected)
    return checked.cells("patient_id")


#: Largest number of distinct day or whole-number keys given to the duplicate check as
#: integers (beyond it: ``factorize``).
MAX_INTEGER_KEY_RANGE = 1 << 31


def _integer_key(values: np.ndarray) -> np.ndarray:
    """A key column for :func:`_flag_duplicates` as integers that are equal exactly when the
    values are (missing values equal to each other, as in ``duplicated``), without hashing:
    dates that are all whole days (no NaT) as day numbers, floats that are all whole numbers
    of a narrow range as those numbers (NaN: one number below them; ``-0.0`` equals ``0.0``).
    Anything else is returned as it is."""
    if not len(values):
        return values
    if values.dtype.kind == "M":
        ticks = values.view(np.int64)
        per_day = np.timedelta64(1, "D") // np.timedelta64(1, np.datetime_data(values.dtype)[0])
        if np.isnat(values).any() or (ticks % per_day != 0).any():
            return values
        days = ticks // per_day
        if int(days.max()) - int(days.min()) >= MAX_INTEGER_KEY_RANGE:
            return values
        return days
    if values.dtype.kind == "f":
        finite = ~np.isnan(values)
        known = values[finite]
        if not len(known) or np.isinf(known).any() or (known % 1 != 0).any():
            return values
        low, high = known.min(), known.max()
        if high - low >= MAX_INTEGER_KEY_RANGE or max(abs(low), abs(high)) > 2**52:
            return values
        return np.where(finite, values - low + 1, 0).astype(np.int64)
    return values


def _flag_duplicates(checked: _Checked, key: pd.DataFrame, what: str) -> None:
    """Quarantine later copies of a key among otherwise valid rows, naming the first copy's row."""
    ok = ~checked.bad_positions()
    columns = list(key.columns)
    # one integer per distinct key among the valid rows, in order of first appearance: each
    # column's factorize codes (missing values equal to each other, as in ``duplicated``)
    # combined column by column and factorized again, so nothing overflows
    # (the codes are multiplied together while the product fits in an int64, and re-factorized
    # only when it would not, and once at the end)
    positions = np.flatnonzero(ok)
    group = np.zeros(len(positions), dtype=np.int64)
    size = 1
    for column in columns:
        values = _integer_key(key[column].to_numpy()[positions])
        if values.dtype.kind in "iu" and len(values):
            # integer codes already (-1: missing): shifted to 0, 1, ..., no factorize needed
            low = int(values.min())
            codes, n_codes = values.astype(np.int64) - low, int(values.max()) - low + 1
        else:
            codes, uniques = pd.factorize(values)
            n_codes = len(uniques) + 1
            codes = codes + 1
        if size * n_codes >= 2**62:
            group, distinct = pd.factorize(group)
            size = len(distinct)
        group = group * n_codes + codes
        size *= n_codes
    # the combined codes are one-to-one with the keys: the later copies are found on them
    # directly (one hash pass); they are numbered in order of first appearance only when
    # there is a copy to report
    later = pd.Series(group).duplicated(keep="first")
    if not later.any():
        return
    group = pd.factorize(group)[0]
    # groups are numbered 0, 1, ... in order of first appearance: the first copies, in order
    first_position = np.flatnonzero(~later.to_numpy())
    first_row = pd.Series(checked.raw.source_row[ok][first_position[group]])
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
    checked = _Checked(
        raw, "patients", *_with_report(_map_columns(raw, "patients", KNOWN_COLUMNS["patients"]))
    )
    ids = checked.cells("patient_id")
    checked.flag(ids == "", "patient_id", "patient id is empty")
    clinic = checked.cells("clinic_id")
    checked.flag(clinic == "", "clinic_id", "clinic id is missing")
    start = _check_dates(checked, "start_date", dayfirst, today, required=True)
    discharge = _check_dates(checked, "discharge_date", dayfirst, today, required=False)
    checked.flag(
        (discharge < start).to_numpy(), "discharge_date", "discharge_date is before start_date"
    )
    sex_key = map_distinct(checked.coded("sex"), column_key)
    sex = sex_key.map(SEXES)
    checked.flag(sex.isna().to_numpy(), "sex", "sex must be F, M, X or unknown")
    age = _check_number(checked, "age_years", low=12, high=110, whole=True, label="age_years")
    athlete, reasons = parse_bool(checked.coded("athlete"))
    checked.flag_reasons(reasons, "athlete")
    reason_key = map_distinct(checked.coded("discharge_reason"), column_key)
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
            # a non-whole age is quarantined above; masked here so the cast cannot fail
            "age_years": age.where(age % 1 == 0).astype("Int64"),
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
    kept_ids = ids[~checked.bad_positions()].to_numpy(dtype=object)
    rows = pd.Series(checked.raw.source_row, index=checked.raw.cells.index)
    bad = quarantine.merge(
        pd.DataFrame({"source_row": rows, "patient_id": ids}), on="source_row", how="left"
    )
    bad = bad[bad["patient_id"].notna() & (bad["patient_id"] != "")]
    bad = bad[~_isin(bad["patient_id"], kept_ids)]
    bad = bad.drop_duplicates("patient_id")
    text = checked.raw.name + " row " + bad["source_row"].astype(str) + " (" + bad["reason"] + ")"
    return pd.Series(text.to_numpy(), index=bad["patient_id"].to_numpy(), dtype=object)


def _split_list(cells: pd.Series) -> pd.DataFrame:
    """``'10/10/8'`` -> columns 0, 1, 2 of text; a plain value stays in column 0."""
    return cells.str.split("/", expand=True, regex=False).fillna("")


def _loaded_variants(names, name_codes, exercise_codes, exercises, load_kg, loaded, catalogue):
    """:func:`~hipdata.catalogue.apply_loaded_variants` for the rows with a load, called once
    per distinct name as written (which fixes the exercise it resolved to): on those rows its
    answer depends on that pair only. Rows without a load keep their exercise.

    ``names`` are the distinct names, ``name_codes`` each row's name, ``exercise_codes`` each
    row's exercise in ``exercises`` (distinct ids; -1 where unresolved). Returns the rows'
    exercise codes and the distinct exercises they point into (distinct again)."""
    loaded_codes = name_codes[loaded]
    present, first = np.unique(loaded_codes, return_index=True)
    rows = np.flatnonzero(loaded)[first]
    exercise = pd.Series(exercises.array.take(exercise_codes[rows], allow_fill=True))
    moved = apply_loaded_variants(
        names.iloc[present].reset_index(drop=True),
        exercise,
        load_kg.iloc[rows].reset_index(drop=True),
        catalogue,
    )
    moved_codes, moved_values = pd.factorize(moved)
    by_name = np.full(len(names), -1, dtype=np.int64)
    by_name[present] = np.where(moved_codes < 0, -1, moved_codes + len(exercises))
    codes = exercise_codes.copy()
    codes[loaded] = by_name[loaded_codes]
    values = pd.Index(
        np.concatenate(
            [np.asarray(exercises, dtype=object), np.asarray(moved_values, dtype=object)]
        ),
        dtype=exercises.dtype,
    )
    remap, distinct = pd.factorize(values)  # a moved exercise may also be written directly
    return np.where(codes < 0, -1, remap[np.maximum(codes, 0)]), distinct


def _load_exercises(
    raw, patients, rejected, catalogue, dayfirst, today, pain_max, categorical=False
):
    known = KNOWN_COLUMNS["exercises"]
    checked = _Checked(raw, "exercises", *_with_report(_map_columns(raw, "exercises", known)))
    if checked.has("set") == checked.has("sets"):
        raise DataError(
            "the exercises table needs exactly one of the columns 'set' (one row per set) or "
            "'sets' (one row per exercise with the number of sets)",
            file=raw.name,
            fix="add a 'set' column numbering each set, or a 'sets' column with the sets done",
        )
    if not (checked.has("reps") or checked.has("hold_s") or checked.has("duration")):
        raise DataError(
            "the exercises table has neither a 'reps' nor a 'hold_s' column",
            file=raw.name,
            fix="add the reps per set (and/or the hold in seconds)",
        )
    set_level = checked.has("set")

    # ids and exercise names stay coded (one code per row into their distinct texts): every
    # rule is decided per distinct value, and text per row is built only for the kept sets
    coded_ids = _flag_patient_ids(checked, patients, rejected)
    id_codes = coded_ids.cat.codes.to_numpy()
    dates = _check_dates(checked, "date", dayfirst, today, required=True)
    starts = patients.set_index("patient_id")["start_date"].astype("datetime64[ns]")
    by_code = starts.reindex(coded_ids.cat.categories.astype(object)).to_numpy()
    start = pd.Series(by_code[id_codes], index=coded_ids.index)
    earliest = start - pd.Timedelta(days=PRE_START_DAYS)
    too_early = (dates < earliest).to_numpy()
    del earliest
    if too_early.any():
        days_before = (start[too_early] - dates[too_early]).dt.days
        checked.flag(
            too_early,
            "date",
            _rows_reason(
                too_early,
                "date is " + days_before.astype("Int64").astype(str) + " days before the "
                f"patient's start_date (at most {PRE_START_DAYS} allowed)",
                coded_ids.index,
            ),
        )
    del start

    coded_names = checked.coded("exercise")
    name_codes = coded_names.cat.codes.to_numpy()
    names = pd.Series(coded_names.cat.categories, dtype="str")  # the distinct names
    checked.flag((names == "").to_numpy()[name_codes], "exercise", "exercise name is empty")
    resolved = resolve_exercises(names, catalogue)
    exercise_by_name, exercises = pd.factorize(resolved)
    exercises = pd.Index(exercises, dtype=resolved.dtype)
    exercise_codes = exercise_by_name[name_codes]
    unknown_name = (names != "").to_numpy() & resolved.isna().to_numpy()
    unknown = unknown_name[name_codes]
    if unknown.any():
        aliases = alias_table(catalogue)
        seen = np.zeros(len(names), dtype=bool)
        seen[name_codes[unknown]] = True
        text = np.full(len(names), "", dtype=object)
        unseen = np.flatnonzero(seen)
        found = suggest_exercises_many(names.iloc[unseen].tolist(), catalogue, aliases=aliases)
        for code, ids_ in zip(unseen, found, strict=True):
            text[code] = "unknown exercise" + (
                f"; did you mean {', '.join(ids_)}?" if ids_ else "; see `hipdata catalogue`"
            )
        checked.flag(
            unknown, "exercise", _rows_reason(unknown, text[name_codes[unknown]], coded_ids.index)
        )

    if set_level:
        set_number = _check_number(checked, "set", low=1, high=50, whole=True, label="set number")
        checked.flag(checked.coded("set") == "", "set", "set number is missing")
        hold_source, hold_parser = (
            ("duration", parse_durations) if checked.has("duration") else ("hold_s", parse_numbers)
        )
        reps = _check_number(checked, "reps", low=0, high=200, whole=True)
        hold = _check_number(
            checked, hold_source, low=0, high=600, label="hold_s", parser=hold_parser
        )
        per_set = {
            "reps": reps.to_numpy(dtype=float, copy=True)[:, None],
            "hold_s": hold.to_numpy(dtype=float, copy=True)[:, None],
        }
        n_sets = pd.Series(1, index=raw.cells.index)
    else:
        sets_given = _check_number(checked, "sets", low=1, high=50, whole=True, label="sets")
        per_set = {}
        lengths = []
        for name, high, whole in (("reps", 200, True), ("hold_s", 600, False)):
            source = name
            parser = parse_numbers
            if name == "hold_s" and checked.has("duration"):
                source, parser = "duration", parse_durations
            table, length = _check_list(
                checked, source, high=high, whole=whole, label=name, parser=parser
            )
            per_set[name] = table
            lengths.append(length)
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
    if checked.has("duration"):
        # a duration is a hold only for hold exercises; on a reps exercise it is the set's
        # length (or 0 for "not timed"), which is not a hold per rep
        dose_by_code = np.append(
            exercises.map(catalogue.set_index("id")["dose"]).to_numpy(dtype=object), np.nan
        )
        dose = dose_by_code[exercise_codes]  # code -1 (unresolved) takes the NaN at the end
        holds = per_set["hold_s"]
        timed = (np.nan_to_num(holds, nan=0.0) != 0).any(axis=1)
        on_reps = dose == "reps"
        checked.flag(
            on_reps & timed,
            "duration",
            f"{checked.columns['duration']} gives a duration, but this exercise is dosed in "
            "reps: a set's duration is not a hold per rep; give hold_s per rep, or leave the "
            "duration empty or 0",
        )
        holds[on_reps, :] = np.nan
    load_kg = _check_number(checked, "load_kg", low=0, high=500, label="load_kg")
    if checked.has("load_value"):
        weight = checked.columns["load_value"]
        unit_column = checked.columns["load_unit"]
        value = _check_number(checked, "load_value", low=0, label=weight)
        unit = map_distinct(checked.coded("load_unit"), column_key)
        factor = unit.map(LOAD_UNITS).astype("float64")
        checked.flag(
            (value.notna() & (unit == "")).to_numpy(),
            "load_unit",
            f"the load's unit is missing (write kg or lbs in {unit_column!r})",
        )
        checked.flag(
            ((unit != "") & factor.isna()).to_numpy(),
            "load_unit",
            "unknown load unit (write kg or lbs)",
        )
        load_kg = value * factor
        checked.flag((load_kg > 500).to_numpy(), "load_value", "load above 500 kg is impossible")
    if checked.has("load_lb"):
        load_lb = _check_number(checked, "load_lb", low=0, high=500 / LB_TO_KG, label="load_lb")
        load_kg = load_kg.fillna(load_lb * LB_TO_KG)
    # a named exercise done with external load is its ladder's loaded variant (catalogue.py);
    # rows without a load keep their exercise, so only the loaded rows are looked at
    loaded = (load_kg.fillna(0) > 0).to_numpy()
    if loaded.any():
        exercise_codes, exercises = _loaded_variants(
            names, name_codes, exercise_codes, exercises, load_kg, loaded, catalogue
        )
    coded_types = checked.coded("set_type")
    type_codes = coded_types.cat.codes.to_numpy()
    set_types = (
        pd.Series(coded_types.cat.categories, dtype="str").map(column_key).map(SET_TYPE_NAMES)
    )
    checked.flag(
        set_types.isna().to_numpy()[type_codes],
        "set_type",
        "set_type must be working, warmup, drop or failure",
    )
    pain = {}
    for name in ("pain_during", "pain_24h"):
        values, reasons = parse_pain(checked.coded(name), scale_max=pain_max)
        checked.flag_reasons(reasons, name)
        pain[name] = values * (10.0 / pain_max)
    prescribed = {
        name: _check_number(checked, name, low=0, high=high, whole=whole)
        for name, high, whole in (
            ("prescribed_sets", 50, True),
            ("prescribed_reps", 200, True),
            ("prescribed_hold_s", 600, False),
        )
        if checked.has(name)  # an absent column is all missing (filled in below)
    }
    key = pd.DataFrame(
        {"patient_id": id_codes, "date": dates, "exercise": exercise_codes}, copy=False
    )
    if set_level:
        key["set"] = set_number
        _flag_duplicates(checked, key, "patient, date, exercise and set")
    else:
        _flag_duplicates(checked, key, "patient, date and exercise")
    del key

    kept = np.flatnonzero(~checked.bad_positions())
    # sorted by patient, date, source row and set; the patient ids by the rank of their distinct
    # text (the order of the text itself), so no string is compared per row
    rank = np.empty(len(coded_ids.cat.categories), dtype=np.int64)
    rank[np.argsort(np.asarray(coded_ids.cat.categories, dtype=object), kind="stable")] = np.arange(
        len(rank)
    )
    kept = kept[_kept_order(rank[id_codes[kept]], dates.to_numpy()[kept], raw.source_row[kept])]
    repeat = n_sets.to_numpy()[kept].astype(int)
    # one row per set: each kept row repeated, numbered 0, 1, ... within its repeats (what
    # ``rows.loc[rows.index.repeat(repeat)]`` and ``groupby(level=0).cumcount()`` give); the
    # sets of one row stay together and in order, so the order above is the order of the sets
    if (repeat == 1).all():
        source = kept
        set_index = np.zeros(len(kept), dtype=np.int64)
    else:
        source = np.repeat(kept, repeat)
        set_index = np.arange(int(repeat.sum())) - np.repeat(np.cumsum(repeat) - repeat, repeat)
    # ``categorical``: the text columns straight from the codes (no text per row; see
    # ``Dataset.CATEGORICAL_COLUMNS``), else each as one take of its distinct texts
    text = sorted_categorical if categorical else _take_text_of
    columns = {
        "patient_id": text(pd.Index(coded_ids.cat.categories, dtype="str"), id_codes[source]),
        "date": dates.to_numpy()[source],
        "exercise": text(exercises, exercise_codes[source]),
    }
    columns.update(_catalogue_columns(exercises, exercise_codes[source], catalogue, text))
    columns["set"] = (
        set_number.to_numpy()[source].astype(int) if set_level else set_index + 1
    ).astype(np.int64)
    for name, values in per_set.items():
        if values.shape[1] == 0:
            columns[name] = np.full(len(source), np.nan)
            continue
        single = (
            np.isnan(values[:, 1:]).all(axis=1)
            if values.shape[1] > 1
            else np.ones(len(values), bool)
        )
        column = np.where(single[source], 0, np.minimum(set_index, values.shape[1] - 1))
        columns[name] = values[source, column]
    columns["load_kg"] = load_kg.fillna(0.0).to_numpy()[source]
    for name, values in pain.items():
        columns[name] = values.to_numpy()[source]
    for name in ("prescribed_sets", "prescribed_reps", "prescribed_hold_s"):
        columns[name] = (
            prescribed[name].to_numpy()[source]
            if name in prescribed
            else np.full(len(source), np.nan)
        )
    columns["set_type"] = text(pd.Index(set_types, dtype="str"), type_codes[source])
    columns["source_file"] = text(pd.Index([raw.name], dtype="str"), np.zeros(len(source), int))
    columns["source_row"] = raw.source_row[source]
    sets = pd.DataFrame({name: columns[name] for name in SET_COLUMNS}, copy=False)
    return checked, sets


def _take_text(values, positions: np.ndarray):
    """``values.take(positions)`` for an Arrow-backed text array and positions that are all
    valid (no negative one): one Arrow ``take`` without pandas' per-call index checks and
    conversions (a third of the time for 10^6 rows), the same values and dtype. Anything else
    goes through ``take`` itself."""
    import pyarrow as pa
    import pyarrow.compute as pc

    data = getattr(values, "_pa_array", None)
    positions = np.asarray(positions)
    if (
        not isinstance(data, (pa.Array, pa.ChunkedArray))
        or positions.dtype.kind not in "iu"
        or (len(positions) and (positions.min() < 0 or positions.max() >= len(values)))
    ):
        return values.take(positions)
    return pd.array(pc.take(data, pa.array(positions)), dtype=values.dtype)


def _take_text_of(values: pd.Index, positions: np.ndarray):
    """:func:`_take_text` of a text ``Index``'s values."""
    return _take_text(values.array, positions)


def _kept_order(patient: np.ndarray, dates: np.ndarray, source_row: np.ndarray) -> np.ndarray:
    """The order of the kept rows by patient rank, date and source row (a stable sort; the
    sets of a row follow it in set order).

    When the source rows increase (every reader numbers them so) and the dates are whole days,
    one stable argsort of a combined integer key gives it; otherwise a stable multi-key sort."""
    day = np.int64(86_400 * 10**9)
    ns = dates.astype("datetime64[ns]").view(np.int64)
    if (
        len(ns)
        and not np.isnat(dates).any()
        and (np.diff(source_row) > 0).all()
        and (ns % day == 0).all()
    ):
        days = ns // day
        days = days - days.min()
        span = int(days.max()) + 1
        if (int(patient.max()) + 1) * span < 2**62:
            return np.argsort(patient * span + days, kind="stable")
    order_key = pd.DataFrame({"patient": patient, "date": dates, "source_row": source_row})
    return order_key.sort_values(list(order_key.columns), kind="stable").index.to_numpy()


def _catalogue_columns(
    exercises: pd.Index, codes: np.ndarray, catalogue: pd.DataFrame, text=None
) -> dict[str, object]:
    """The catalogue's family, level (int64) and dose of each set's exercise (``codes`` into the
    distinct ``exercises``, all in the catalogue): :func:`~hipdata.dataset.join_catalogue` done
    once per distinct exercise. ``text(values, positions)`` builds the text columns (default
    :func:`_take_text_of`; :func:`~hipdata.dataset.sorted_categorical` for categoricals)."""
    text = _take_text_of if text is None else text
    lookup = catalogue[["id", "family", "level", "dose"]]
    if not lookup["id"].is_unique:  # the merge decides (as join_catalogue does)
        joined = join_catalogue(
            pd.DataFrame({"exercise": exercises.array.take(codes)}), catalogue, validate=None
        )
        everyone = np.arange(len(joined))
        return {
            "family": text(pd.Index(joined["family"], dtype="str"), everyone)
            if text is sorted_categorical
            else joined["family"].array,
            "level": joined["level"].astype("int64").to_numpy(),
            "dose": text(pd.Index(joined["dose"], dtype="str"), everyone)
            if text is sorted_categorical
            else joined["dose"].array,
        }
    at = pd.Index(lookup["id"]).get_indexer(exercises)
    rows = at[codes]
    if text is sorted_categorical:  # one value per distinct exercise, spread by the codes
        return {
            "family": text(pd.Index(lookup["family"].array.take(at), dtype="str"), codes),
            "level": lookup["level"].array.take(rows).astype("int64"),
            "dose": text(pd.Index(lookup["dose"].array.take(at), dtype="str"), codes),
        }
    return {
        "family": _take_text(lookup["family"].array, rows),
        "level": lookup["level"].array.take(rows).astype("int64"),
        "dose": _take_text(lookup["dose"].array, rows),
    }


def _measure_columns(coded: pd.Series, measures: dict[str, Measure]):
    """The outcome rows' measure (``str``, missing where unknown), its range (``low``, ``high``)
    and the rows whose measure is missing or unknown, from the coded measure cells.

    Each is decided once per distinct text that some row has and spread to the rows by their
    codes: the same values and dtypes as mapping every row's text
    (``map_distinct(cells, column_key).map(aliases)``, then ``.map`` of each range;
    ``tests/test_load_csv_fastpaths.py``).
    """
    present, codes = np.unique(coded.cat.codes.to_numpy(), return_inverse=True)
    names = pd.Series(pd.Index(coded.cat.categories, dtype="str").array.take(present))
    by_name = names.map(column_key).map(
        {column_key(k): v for k, v in measure_aliases(measures).items()}
    )

    def rows(values: pd.Series) -> pd.Series:
        return pd.Series(values.array.take(codes), index=coded.index)

    return (
        rows(by_name),
        rows(by_name.map({k: m.low for k, m in measures.items()})),
        rows(by_name.map({k: m.high for k, m in measures.items()})),
        (names == "").to_numpy()[codes],
        ((names != "") & by_name.isna()).to_numpy()[codes],
    )


def _load_optional(raw, table, patients, rejected, dayfirst, today, measures):
    known = KNOWN_COLUMNS[table]
    checked = _Checked(raw, table, *_with_report(_map_columns(raw, table, known)))
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
        measure, low, high, missing, unknown = _measure_columns(checked.coded("measure"), measures)
        checked.flag(missing, "measure", "measure is missing")
        checked.flag(
            unknown,
            "measure",
            "unknown measure (known: " + ", ".join(measures) + "; register others)",
        )
        score = _check_number(checked, "score")
        checked.flag(checked.coded("score") == "", "score", "score is missing")
        outside = ((score < low - 1e-9) | (score > high + 1e-9)).to_numpy()
        if outside.any():  # the reason's text is built for the rows outside only
            checked.flag(
                outside,
                "score",
                _rows_reason(
                    outside,
                    "score outside the measure's range "
                    + low[outside].astype(str).str.replace(".0", "", regex=False)
                    + " to "
                    + high[outside].astype(str).str.replace(".0", "", regex=False)
                    + " (never clipped)",
                    score.index,
                ),
            )
        frame["measure"] = measure
        frame["score"] = score
        _flag_duplicates(
            checked, frame[["patient_id", "date", "measure"]], "patient, date and measure"
        )
    else:
        coded = checked.coded("treatment")
        codes = coded.cat.codes.to_numpy()
        treatments = pd.Series(coded.cat.categories, dtype="str")  # the distinct texts
        checked.flag((treatments == "").to_numpy()[codes], "treatment", "treatment is missing")
        frame["treatment"] = pd.Series(
            treatments.str.lower()
            .str.replace(r"[^0-9a-z]+", "_", regex=True)
            .str.strip("_")
            .array.take(codes),
            index=coded.index,
        )
        _flag_duplicates(
            checked, frame[["patient_id", "date", "treatment"]], "patient, date and treatment"
        )
    frame["source_file"] = raw.name
    frame["source_row"] = raw.source_row
    return checked, _split(checked, frame)


class _Prefetch:
    """The tables' files read in ``order``, each in a thread while the table before it is
    checked (at most one file ahead, so at most two tables' cells are held at once); a read's
    error is raised when its table is taken, in the same order as reading one by one."""

    def __init__(self, files: Mapping, order: list[str]) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.files, self.order = files, list(order)
        self.pool = ThreadPoolExecutor(1)
        self.jobs: dict = {}
        self._submit_next()

    def _submit_next(self) -> None:
        if self.order:
            table = self.order.pop(0)
            self.jobs[table] = self.pool.submit(_read, self.files[table])
        else:
            self.pool.shutdown(wait=False)

    def take(self, table: str) -> RawTable:
        job = self.jobs.pop(table)
        raw = job.result()
        self._submit_next()
        return raw


def _input_digest(files: dict[str, Path]):
    """SHA-256 of the tables' files (in :data:`TABLES` order, each named), read in blocks:
    never a second copy of a file."""
    digest = hashlib.sha256()
    for table in TABLES:
        if table in files:
            digest.update(table.encode() + b"\0")
            with open(files[table], "rb") as stream:
                while block := stream.read(1 << 22):
                    digest.update(block)
            digest.update(b"\0")
    return digest


def _read(source: Path | RawTable) -> RawTable:
    return source if isinstance(source, RawTable) else read_raw(source, coded=True)


def load(
    folder: str | Path | Mapping[str, RawTable],
    *,
    dayfirst: bool | None = None,
    pain_scale: str = "nrs",
    catalogue: str | Path | pd.DataFrame | None = None,
    measures: dict[str, Measure] | str | Path | None = None,
    today: str | pd.Timestamp | None = None,
    progress: Progress | None = None,
    categorical: bool = False,
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
    categorical : bool, default False
        ``True``: the patients' ``patient_id, clinic_id, clinician_id`` and the sets'
        ``patient_id, exercise, family, dose, set_type, source_file``
        (:data:`hipdata.dataset.CATEGORICAL_COLUMNS`) are pandas ``category`` columns built
        from the loader's codes, not ``str`` (the sets table in about half the memory; what
        ``hipdata metrics`` uses). The categories are the distinct texts present (``str``),
        sorted, unordered; every value, row and the other tables are the same, and
        :func:`hipdata.metrics.compute_all` gives identical tables from either form. What
        differs for a user: a filtered frame keeps every category, so ``value_counts()``,
        ``groupby(..., observed=False)`` and ``pd.crosstab`` list unobserved ids with 0 rows
        (pandas' ``groupby`` default ``observed=True`` does not; ``.cat.remove_unused_categories()``
        drops them); ``pd.concat`` of columns with different categories gives text (object)
        columns; a comparison with a text works as on ``str``; ``.astype("str")`` gives the
        default form.

    Returns
    -------
    Dataset
        Clean tables, the quarantine and a load report; for every file
        ``rows_read == rows_kept + rows_quarantined``. ``Dataset.columns`` accounts for every
        column of every file: ``used`` (as which field) or ``ignored`` (and why).

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
    # the files' digest is computed in a thread while they are read and checked (reading and
    # hashing release the GIL); taken before the dataset is built
    from concurrent.futures import ThreadPoolExecutor

    digest_thread = ThreadPoolExecutor(1)
    digest_job = digest_thread.submit(_input_digest, {} if in_memory else files)
    digest_thread.shutdown(wait=False)

    def step(name: str, done: int) -> None:
        if progress is not None:
            progress(name, done, total)

    # each table's quarantine and accounting are taken as soon as it is checked, so that its
    # cells and parsed columns are freed before the next table is read
    checks: list[_Summary] = []
    reads = _Prefetch(files, [t for t in TABLES if t in files])
    raw = reads.take("patients")
    checked, patients_all = _load_patients(raw, dayfirst, today)
    patients = _split(checked, patients_all)
    rejected = _rejected_patients(checked)
    checks.append(_Summary.of(checked, len(patients)))
    del checked, raw, patients_all
    step("patients", 1)

    sets = pd.DataFrame(columns=SET_COLUMNS)  # outcome-only data: no exercise table
    if "exercises" in files:
        raw = reads.take("exercises")
        checked, sets = _load_exercises(
            raw,
            patients,
            rejected,
            catalogue_table,
            dayfirst,
            today,
            PAIN_SCALES[pain_scale],
            categorical,
        )
        checks.append(_Summary.of(checked, int((~checked.bad_positions()).sum())))
        del checked, raw
        step("exercises", 2)

    optional: dict[str, pd.DataFrame] = {}
    for number, table in enumerate(("activity", "outcomes", "treatments"), start=3):
        if table not in files:
            continue
        raw = reads.take(table)
        checked, frame = _load_optional(raw, table, patients, rejected, dayfirst, today, measures)
        checks.append(_Summary.of(checked, len(frame)))
        del checked, raw
        optional[table] = frame
        step(table, number)

    digest = digest_job.result()
    quarantine = pd.concat([c.quarantine for c in checks], ignore_index=True)
    report_rows = []
    for check in checks:
        quarantined = int((quarantine["source_file"] == check.name).sum())
        if check.read != check.kept + quarantined:  # a bug in the loader, never a data problem
            raise AssertionError(
                f"{check.name}: {check.read} rows read but {check.kept} kept + {quarantined} "
                "quarantined"
            )
        report_rows.append(
            (check.table, check.name, check.read, check.kept, quarantined, check.notes)
        )
    load_report = pd.DataFrame(report_rows, columns=LOAD_REPORT_COLUMNS)
    columns = pd.DataFrame(
        [
            (
                check.table,
                check.name,
                header,
                "used" if used_as else "ignored",
                used_as,
                note,
            )
            for check in checks
            for header, (used_as, note) in (check.report or {}).items()
        ],
        columns=COLUMN_REPORT_COLUMNS,
    )

    dataset = Dataset.from_frames(
        patients,
        sets.iloc[:0],
        activity=optional.get("activity"),
        outcomes=optional.get("outcomes"),
        treatments=optional.get("treatments"),
        catalogue=catalogue_table,
        validate=False,
        categorical=categorical,
    )
    if len(sets):
        expected = dataset.sets.dtypes
        same = (
            sets.dtypes.astype(str).equals(expected.astype(str))  # categories differ
            if categorical
            else sets.dtypes.equals(expected)
        )
        if same and sets.index.equals(pd.RangeIndex(len(sets))):
            # the loader's sets table already has every column, value and dtype that
            # from_frames would give it (tests/test_load_fastpaths.py compares the two)
            dataset.sets = sets
        else:
            dataset.sets = Dataset.from_frames(
                patients.iloc[:0],
                sets,
                catalogue=catalogue_table,
                validate=False,
                categorical=categorical,
            ).sets
    dataset.quarantine = quarantine
    dataset.load_report = load_report
    dataset.columns = columns
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
