"""Import a REDCap records export (with its data dictionary) into a hipdata data folder.

A REDCap project's records export is one flat table: the record id (the patient), then
``redcap_event_name`` (longitudinal projects), ``redcap_repeat_instrument`` and
``redcap_repeat_instance`` (repeating instruments), optionally ``redcap_data_access_group``, then
one column per field (a checkbox field as one ``field___code`` column per choice) and one
``<form>_complete`` status column (0 incomplete, 1 unverified, 2 complete) per form. A row is one
record at one event: either its non-repeating forms, or one instance of one repeating
instrument.

Read here:

- the web download "CSV (raw data)" (field names as headers, choice codes as values) and
  "CSV (labels)" (field labels as headers, choice labels, ``Checked``/``Unchecked``,
  ``Complete``/``Incomplete``, event and instrument labels as values), and the API's CSV or JSON
  (field names as keys, codes or labels as values). Labels headers are matched to fields through
  the data dictionary, in its order (labels are not unique: every form has a ``Complete?``);
- the data dictionary in either header form (``Variable / Field Name, Form Name, ...`` from the
  web, ``field_name, form_name, ...`` from the API; CSV or JSON).

A mapping (TOML; :data:`TEMPLATE_MAPPING` for hipdata's own REDCap template, see
``docs/redcap.md``) says which fields and events feed which hipdata table. Choice codes become
their labels (or stay codes for the fields listed in ``codes``); ``yesno``/``truefalse`` become
true/false; dates are read without guessing (REDCap's raw exports write ``YYYY-MM-DD`` whatever the
field's ``date_dmy``/``date_mdy`` validation; other orders need ``dayfirst``); wide questionnaire
scores melt to one ``outcomes`` row per measure; a checkbox ticks one ``treatments`` row per box.
All-unticked checkboxes on a form that is not marked complete are missing, not "no".

Every row of the export is accounted for: a row is **kept** when it became (part of) a row of a
hipdata table, otherwise **quarantined** with the reason (unknown event or instrument, duplicate
row, a record without enrolment, an unreadable date, a choice code the dictionary does not have,
a score outside its measure's range, nothing to import, ...). A row is kept or quarantined as a
whole. The tables are checked with :func:`hipdata.load`'s own rules before they are written, so
the folder loads without further quarantine; every column of the export is listed in
``import_columns.csv`` with what it was used for, or why it was ignored.
"""

from __future__ import annotations

import json
import re
import tempfile
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from hipdata.errors import DataError
from hipdata.io.columns import KNOWN_COLUMNS
from hipdata.io.parse import parse_dates, parse_pain
from hipdata.outcome_measures import MEASURES, Measure, with_measures
from hipdata.sources._common import (
    COLUMN_REPORT_COLUMNS,
    ImportResult,
    RowProblems,
    key,
    quarantine_rows,
    read_records,
    report_row,
)

TEMPLATE = resources.files("hipdata") / "data" / "redcap"
#: hipdata's REDCap template: the data dictionary a team uploads, and its default mapping.
TEMPLATE_DICTIONARY = TEMPLATE / "hipdata_data_dictionary.csv"
TEMPLATE_MAPPING = TEMPLATE / "hipdata_mapping.toml"

#: The data dictionary's columns (API names) and the web download's headers for them.
DICTIONARY_COLUMNS = {
    "field_name": "Variable / Field Name",
    "form_name": "Form Name",
    "section_header": "Section Header",
    "field_type": "Field Type",
    "field_label": "Field Label",
    "select_choices_or_calculations": "Choices, Calculations, OR Slider Labels",
    "field_note": "Field Note",
    "text_validation_type_or_show_slider_number": "Text Validation Type OR Show Slider Number",
    "text_validation_min": "Text Validation Min",
    "text_validation_max": "Text Validation Max",
    "identifier": "Identifier?",
    "branching_logic": "Branching Logic (Show field only if...)",
    "required_field": "Required Field?",
    "custom_alignment": "Custom Alignment",
    "question_number": "Question Number (surveys only)",
    "matrix_group_name": "Matrix Group Name",
    "matrix_ranking": "Matrix Ranking?",
    "field_annotation": "Field Annotation",
}
#: REDCap's field types.
FIELD_TYPES = (
    "text",
    "notes",
    "dropdown",
    "radio",
    "checkbox",
    "yesno",
    "truefalse",
    "calc",
    "file",
    "slider",
    "descriptive",
    "sql",
)
CHOICE_TYPES = ("dropdown", "radio", "checkbox")
DATE_VALIDATIONS = ("date_ymd", "date_dmy", "date_mdy")
#: REDCap's columns that are not fields, and their headers in a labels export.
SPECIAL_COLUMNS = {
    "redcap_event_name": "Event Name",
    "redcap_repeat_instrument": "Repeat Instrument",
    "redcap_repeat_instance": "Repeat Instance",
    "redcap_data_access_group": "Data Access Group",
    "redcap_survey_identifier": "Survey Identifier",
}
STATUS = {"0": "0", "1": "1", "2": "2", "incomplete": "0", "unverified": "1", "complete": "2"}
TICKED = {"1": "1", "0": "0", "checked": "1", "unchecked": "0"}
YES_NO = {"1": "true", "0": "false", "yes": "true", "no": "false", "true": "true", "false": "false"}
#: hipdata tables a mapping can fill, and the columns it may name for each.
MAPPED_COLUMNS = {
    # the input tables' fields (hipdata.io.columns) except the record id, which is the patient
    **{
        table: tuple(c for c in KNOWN_COLUMNS[table] if c != "patient_id")
        for table in ("patients", "exercises")
    },
    "pain_diary": ("date", "pain_during", "pain_24h"),
    "activity": tuple(c for c in KNOWN_COLUMNS["activity"] if c != "patient_id"),
    "treatments": tuple(c for c in KNOWN_COLUMNS["treatments"] if c != "patient_id"),
    "outcomes": ("date",),
}
#: Keys each table of a mapping must name (one of each group).
REQUIRED_KEYS = {
    "patients": (("clinic_id",), ("start_date",)),
    "exercises": (("date",), ("exercise",), ("set", "sets"), ("reps", "hold_s")),
    "pain_diary": (("date",), ("pain_during", "pain_24h")),
    "activity": (("date",), ("cardio_min",)),
    "treatments": (("date",), ("treatment",)),
    "outcomes": (("date",),),
}
DATE_COLUMNS = {"date", "start_date", "discharge_date"}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_TAGS = re.compile(r"<[^>]*>")


# --------------------------------------------------------------------------- data dictionary


@dataclass(frozen=True)
class Field:
    """One field of a REDCap data dictionary."""

    name: str
    form: str
    type: str
    label: str
    choices: dict[str, str]  # code -> label, for dropdown / radio / checkbox
    validation: str


def parse_choices(text: str) -> dict[str, str]:
    """Parse REDCap choices ``"1, Male | 2, Female"`` into ``{code: label}``.

    The first comma of each ``|``-separated item separates the code from the label (labels may
    hold commas). An item without a comma is its own code and label.

    >>> parse_choices("1, Male | 2, Female | 3, Other, or not said")
    {'1': 'Male', '2': 'Female', '3': 'Other, or not said'}
    """
    choices: dict[str, str] = {}
    for item in str(text).split("|"):
        item = item.strip()
        if not item:
            continue
        code, _, label = item.partition(",")
        choices[code.strip()] = (label if _ else code).strip()
    return choices


def _read_dictionary_table(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    if path.suffix.lower() == ".json":
        items = _read_json(path)
        table = pd.DataFrame(items, dtype=object).fillna("").astype(str)
        rows = np.arange(1, len(table) + 1)
    else:
        records = read_records(path)
        if records.long:
            row = records.long[0][0]
            raise DataError(
                f"row {row} has more cells than the header",
                file=path.name,
                fix="download the data dictionary again",
            )
        table, rows = records.cells, records.rows
    by_key = {key(api): api for api in DICTIONARY_COLUMNS}
    by_key.update({key(web): api for api, web in DICTIONARY_COLUMNS.items()})
    table = table.rename(columns={c: by_key.get(key(c), c) for c in table.columns})
    missing = [c for c in ("field_name", "form_name", "field_type") if c not in table.columns]
    if missing:
        raise DataError(
            f"not a REDCap data dictionary (no column {', '.join(missing)})",
            file=path.name,
            fix="give the data dictionary (Project Setup > Data Dictionary > Download, or the "
            "API's metadata export)",
        )
    for column in DICTIONARY_COLUMNS:
        if column not in table.columns:
            table[column] = ""
    table = table.fillna("").astype(str).apply(lambda c: c.str.strip())
    return table, rows


def check_dictionary(dictionary: str | Path) -> pd.DataFrame:
    """Check a data dictionary against the REDCap rules that can be checked offline.

    Field and form names are lower-case letters, digits and ``_``, start with a letter, and are
    at most 100 characters (a checkbox's export column ``field___code`` too); field names are
    unique; field types are REDCap's (:data:`FIELD_TYPES`); dropdown, radio and checkbox fields
    have choices ``code, label | ...`` with unique, non-empty codes (checkbox codes letters,
    digits and ``_``); text validation types of dates are ``date_ymd``/``date_dmy``/``date_mdy``;
    the first field is the record id.

    Returns
    -------
    DataFrame
        ``row, field, problem``; empty when the dictionary passes.
    """
    path = Path(dictionary)
    table, rows = _read_dictionary_table(path)
    problems = []

    def add(row, field, problem):
        problems.append((int(row), field, problem))

    seen: dict[str, int] = {}
    for row, item in zip(rows, table.itertuples(index=False), strict=True):
        name, form, ftype = item.field_name, item.form_name, item.field_type
        if not _NAME.match(name) or len(name) > 100:
            add(row, name, "field name must be lower-case letters, digits and _ (max 100)")
        if name in seen:
            add(row, name, f"field name already used in row {seen[name]}")
        seen.setdefault(name, int(row))
        if not _NAME.match(form) or len(form) > 100:
            add(row, name, f"form name {form!r} must be lower-case letters, digits and _")
        if ftype not in FIELD_TYPES:
            add(row, name, f"field type {ftype!r} is not one of {', '.join(FIELD_TYPES)}")
        choices_text = item.select_choices_or_calculations
        if ftype in CHOICE_TYPES:
            items = [i.strip() for i in choices_text.split("|") if i.strip()]
            codes = [i.partition(",")[0].strip() for i in items]
            if not items or any("," not in i for i in items):
                add(row, name, "choices must be written 'code, label | code, label'")
            if len(set(codes)) != len(codes) or "" in codes:
                add(row, name, "choice codes must be unique and not empty")
            if ftype == "checkbox":
                for code in codes:
                    if not re.match(r"^[A-Za-z0-9_]+$", code):
                        add(row, name, f"checkbox code {code!r} must be letters, digits and _")
                    elif len(f"{name}___{code}") > 100:
                        add(row, name, f"export column {name}___{code} is over 100 characters")
        if ftype == "calc" and not choices_text:
            add(row, name, "a calc field needs its calculation")
        validation = item.text_validation_type_or_show_slider_number
        if validation.startswith("date") and validation not in DATE_VALIDATIONS + (
            "datetime_ymd",
            "datetime_dmy",
            "datetime_mdy",
            "datetime_seconds_ymd",
            "datetime_seconds_dmy",
            "datetime_seconds_mdy",
        ):
            add(row, name, f"unknown date validation {validation!r}")
    if len(table) == 0:
        add(1, "", "the dictionary has no fields")
    return pd.DataFrame(problems, columns=["row", "field", "problem"])


def read_dictionary(dictionary: str | Path) -> dict[str, Field]:
    """Read a REDCap data dictionary (web or API header form; CSV or JSON) into fields, in order.

    Raises
    ------
    DataError
        When the file is not a data dictionary or a field name is used twice.
    """
    path = Path(dictionary)
    table, rows = _read_dictionary_table(path)
    fields: dict[str, Field] = {}
    for row, item in zip(rows, table.itertuples(index=False), strict=True):
        name = item.field_name.lower()
        if not name:
            continue
        if name in fields:
            raise DataError(
                f"row {row}: the field {name} is defined twice",
                file=path.name,
                fix="download the data dictionary again (field names are unique in REDCap)",
            )
        ftype = item.field_type.lower()
        choices = (
            parse_choices(item.select_choices_or_calculations) if ftype in CHOICE_TYPES else {}
        )
        if ftype == "checkbox":
            choices = {code.lower(): label for code, label in choices.items()}
        fields[name] = Field(
            name,
            item.form_name.lower(),
            ftype,
            item.field_label,
            choices,
            item.text_validation_type_or_show_slider_number.lower(),
        )
    if not fields:
        raise DataError("the data dictionary has no fields", file=path.name)
    return fields


# --------------------------------------------------------------------------- records


def _read_json(path: Path) -> list[dict]:
    try:
        items = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(
            f"not a readable JSON file ({exc})", file=path.name, fix="export it again"
        ) from None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise DataError(
            "the JSON is not a list of records (objects)",
            file=path.name,
            fix="export the records with format=json and type=flat",
        )
    return items


def _normal_label(text: str) -> str:
    return " ".join(_TAGS.sub("", str(text)).lower().split())


def _expected_columns(fields: dict[str, Field]) -> list[tuple[str, str]]:
    """The export's field columns in dictionary order: (raw name, label as a labels header)."""
    expected = []
    forms: list[str] = []
    for field in fields.values():
        if field.form not in forms:
            if forms:
                expected.append((f"{forms[-1]}_complete", "complete?"))
            forms.append(field.form)
        if field.type == "descriptive":
            continue
        if field.type == "checkbox":
            for code, label in field.choices.items():
                expected.append(
                    (f"{field.name}___{code}", _normal_label(f"{field.label} (choice={label})"))
                )
        else:
            expected.append((field.name, _normal_label(field.label)))
    if forms:
        expected.append((f"{forms[-1]}_complete", "complete?"))
    return expected


def _raw_names(headers: list[str], fields: dict[str, Field]) -> tuple[list[str | None], str]:
    """Each header's raw column name (``None`` when unknown) and the header form."""
    expected = _expected_columns(fields)
    raw = {name for name, _ in expected} | set(SPECIAL_COLUMNS)
    lowered = [h.strip().lower() for h in headers]
    hits = sum(h in raw for h in lowered)
    if hits >= max(1, len(headers) // 2) or (lowered and lowered[0] in fields):
        names = [h if (h in raw or h.endswith("_timestamp")) else None for h in lowered]
        return names, "raw"
    special = {key(label): name for name, label in SPECIAL_COLUMNS.items()}
    names: list[str | None] = []
    pointer = 0
    for header in headers:
        if key(header) in special:
            names.append(special[key(header)])
            continue
        if key(header) == "surveytimestamp":
            names.append(f"survey_{len(names)}_timestamp")
            continue
        label = _normal_label(header)
        found = next(
            (i for i in range(pointer, len(expected)) if expected[i][1] == label),
            None,
        )
        if found is None:
            names.append(None)
            continue
        names.append(expected[found][0])
        pointer = found + 1
    return names, "labels"


def _read_export(path: Path, fields: dict[str, Field]):
    """The export's cells under raw column names, its row numbers and its column report."""
    if path.suffix.lower() == ".json":
        items = _read_json(path)
        cells = pd.DataFrame(items, dtype=object).fillna("").astype(str)
        cells = cells.apply(lambda c: c.str.strip()) if len(cells.columns) else cells
        headers = [str(c) for c in cells.columns]
        rows = np.arange(1, len(cells) + 1, dtype=np.int64)
        long: list = []
    else:
        records = read_records(path)
        cells, rows, long, headers = records.cells, records.rows, records.long, records.header
    names, form = _raw_names(headers, fields)
    used: dict[str, str] = {}
    report = []
    keep = []
    for position, (header, name) in enumerate(zip(headers, names, strict=True)):
        if name is None:
            report.append((header, "ignored: not a field of the data dictionary"))
        elif name.endswith("_timestamp") and name not in fields:
            report.append((header, "ignored: survey timestamp"))
        elif name in used:
            report.append((header, f"ignored: a second column for {name} ({used[name]!r})"))
        else:
            used[name] = header
            keep.append(position)
            report.append((header, name))
    frame = cells.iloc[:, keep].copy()
    frame.columns = [names[i] for i in keep]
    return frame.reset_index(drop=True), rows, long, report, form


# --------------------------------------------------------------------------- mapping


@dataclass
class _Spec:
    """One table of the mapping: hipdata column -> REDCap field (or ``field___code``)."""

    table: str
    columns: dict[str, str]
    instrument: str | None
    events: list[str] | None
    codes: set[str]
    measures: dict[str, str]


def read_mapping(mapping: str | Path | None = None) -> dict:
    """Read a mapping TOML file (default: the template's, :data:`TEMPLATE_MAPPING`)."""
    if mapping is None:
        return tomllib.loads(TEMPLATE_MAPPING.read_text(encoding="utf-8"))
    path = Path(mapping)
    if path.suffix.lower() not in (".toml",):
        raise DataError(
            "the mapping must be a TOML file",
            file=path.name,
            fix="write the mapping as .toml (docs/redcap.md has an example)",
        )
    try:
        return tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DataError(
            f"not a readable TOML mapping ({exc})", file=path.name, fix="check the TOML syntax"
        ) from None


def _specs(
    mapping: dict, fields: dict[str, Field], measures: dict[str, Measure], name: str
) -> list[_Spec]:
    def fail(problem: str, fix: str) -> DataError:
        return DataError(problem, file=name, fix=fix)

    known_tables = set(MAPPED_COLUMNS) | {"project"}
    unknown = sorted(set(mapping) - known_tables)
    if unknown:
        raise fail(
            f"unknown section(s) [{'], ['.join(unknown)}]",
            f"use the sections {', '.join(sorted(known_tables))}",
        )
    specs = []
    for table in MAPPED_COLUMNS:
        entries = mapping.get(table)
        if entries is None:
            continue
        entries = entries if isinstance(entries, list) else [entries]
        for entry in entries:
            entry = dict(entry)
            instrument = entry.pop("instrument", None)
            events = entry.pop("events", None)
            codes = set(entry.pop("codes", []))
            measure_map = entry.pop("measures", {}) if table == "outcomes" else {}
            bad = sorted(set(entry) - set(MAPPED_COLUMNS[table]))
            if bad:
                raise fail(
                    f"[{table}]: unknown key(s) {', '.join(bad)}",
                    f"the [{table}] keys are {', '.join(MAPPED_COLUMNS[table])}, instrument, "
                    "events, codes" + (", measures" if table == "outcomes" else ""),
                )
            unknown_measures = sorted(set(measure_map) - set(measures))
            if unknown_measures:
                raise fail(
                    f"[outcomes.measures]: unknown measure(s) {', '.join(unknown_measures)}",
                    "register them with --measures FILE (name, range, direction, MCID)",
                )
            for column, field in {**entry, **measure_map}.items():
                base = str(field).split("___")[0]
                if base not in fields and field not in SPECIAL_COLUMNS:
                    raise fail(
                        f"[{table}] {column} = {field!r}: no such field in the data dictionary",
                        "use the field's Variable / Field Name",
                    )
            if instrument is not None and instrument not in {f.form for f in fields.values()}:
                raise fail(
                    f"[{table}] instrument {instrument!r} is not a form of the data dictionary",
                    "use the form's name (Form Name column)",
                )
            for group in REQUIRED_KEYS[table]:
                if not set(group) & set(entry):
                    raise fail(
                        f"[{table}] names no {' or '.join(group)} field",
                        f'map {group[0]} = "<field name>" in [{table}]',
                    )
            if table == "outcomes" and not measure_map:
                raise fail("[outcomes] maps no measures", "add [outcomes.measures] name = field")
            specs.append(_Spec(table, dict(entry), instrument, events, codes, dict(measure_map)))
    return specs


# --------------------------------------------------------------------------- reading values


class _Decoder:
    """Turns the export's cells (codes or labels) into the values hipdata reads."""

    def __init__(self, data: pd.DataFrame, fields: dict[str, Field], dayfirst):
        self.data = data
        self.fields = fields
        self.dayfirst = dayfirst
        self.n = len(data)
        self._cells: dict[str, pd.Series] = {}

    def cells(self, column: str) -> pd.Series:
        if column not in self._cells:
            if column in self.data.columns:
                self._cells[column] = self.data[column].fillna("").astype(str).str.strip()
            else:
                self._cells[column] = pd.Series("", index=self.data.index, dtype=object)
        return self._cells[column]

    def present(self, ref: str) -> bool:
        field = self.fields.get(ref)
        if field is not None and field.type == "checkbox":
            return any(c.startswith(f"{ref}___") for c in self.data.columns)
        return ref in self.data.columns

    def complete(self, form: str) -> pd.Series:
        return self.cells(f"{form}_complete").str.lower().map(STATUS).fillna("") == "2"

    def ticks(self, ref: str) -> tuple[pd.DataFrame, pd.Series]:
        """A checkbox's boxes (columns: codes; True/False/NA) and a per-row problem."""
        field = self.fields[ref]
        reason = pd.Series("", index=self.data.index, dtype=object)
        boxes = {}
        for code in field.choices:
            text = self.cells(f"{ref}___{code}").str.lower()
            value = text.map(TICKED)
            reason = reason.where(
                (reason != "") | (text == "") | value.notna(),
                f"{ref}___{code}: " + text + " is not a checkbox value (1/0, Checked/Unchecked)",
            )
            boxes[code] = value.map({"1": True, "0": False})
        frame = pd.DataFrame(boxes, index=self.data.index, dtype="boolean")
        none_ticked = ~frame.fillna(False).any(axis=1)
        # all unticked on a form not marked complete: not answered (missing), not "no"
        frame[none_ticked & ~self.complete(field.form)] = pd.NA
        return frame, reason

    def value(self, ref: str, column: str, as_code: bool) -> tuple[pd.Series, pd.Series]:
        """Decoded text of ``ref`` for a hipdata ``column`` and a per-row problem ('' = fine)."""
        reason = pd.Series("", index=self.data.index, dtype=object)
        if "___" in ref and ref.split("___")[0] in self.fields:
            base, _, code = ref.partition("___")
            frame, reason = self.ticks(base)
            if code not in frame.columns:
                raise DataError(f"{ref}: {code!r} is not a choice of the checkbox {base}")
            value = frame[code].map({True: "true", False: "false"}).astype(object).fillna("")
            return value, reason
        text = self.cells(ref)
        field = self.fields.get(ref)
        if field is None:  # a special column (e.g. redcap_data_access_group)
            return text, reason
        if field.type == "checkbox":
            frame, reason = self.ticks(ref)
            ticked = frame.fillna(False)
            several = ticked.sum(axis=1) > 1
            first = ticked.idxmax(axis=1).where(ticked.any(axis=1), "")
            out = first if as_code else first.map(field.choices).fillna("")
            reason = reason.where(
                (reason != "") | ~several, f"several boxes of {ref} ticked for one value"
            )
            return out.astype(object), reason
        if field.type in CHOICE_TYPES:
            by_label = {_normal_label(v): k for k, v in field.choices.items()}
            unique = pd.Series(text.unique())
            to_code = dict(zip(unique, unique.map(_normal_label).map(by_label), strict=True))
            code = text.where(text.isin(list(field.choices)), text.map(to_code))
            bad = (text != "") & code.isna()
            listing = ", ".join(list(field.choices)[:30])
            reason = reason.where(~bad, text + f" is not a choice of {ref} (codes: {listing})")
            code = code.fillna("")
            out = code if as_code else code.map(field.choices).fillna("")
            return out.astype(object), reason
        if field.type in ("yesno", "truefalse"):
            out = text.str.lower().map(YES_NO)
            reason = reason.where(
                ~((text != "") & out.isna()), text + f" is not a {field.type} value (1/0)"
            )
            return out.fillna("").astype(object), reason
        if column in DATE_COLUMNS or field.validation.startswith("date"):
            dates, reasons = parse_dates(text, dayfirst=self.dayfirst)
            out = dates.dt.strftime("%Y-%m-%d").fillna("")
            return out.astype(object), reasons.astype(object)
        return text.astype(object), reason


# --------------------------------------------------------------------------- the import


def read(
    records: str | Path,
    dictionary: str | Path | None = None,
    *,
    mapping: str | Path | dict | None = None,
    measures: str | Path | dict[str, Measure] | None = None,
    catalogue: str | Path | pd.DataFrame | None = None,
    dayfirst: bool | None = None,
    today: str | pd.Timestamp | None = None,
) -> ImportResult:
    """Import a REDCap records export into hipdata's tables (module docstring).

    Parameters
    ----------
    records : path
        The records export: CSV (raw or labels headers) or the API's JSON (``type=flat``).
    dictionary : path, optional
        The project's data dictionary (web or API form; CSV or JSON). Default: hipdata's
        template, :data:`TEMPLATE_DICTIONARY`.
    mapping : path or dict, optional
        Which fields and events feed which table (TOML; ``docs/redcap.md``). Default: the
        template's mapping, :data:`TEMPLATE_MAPPING`.
    measures : path or dict, optional
        Custom outcome measures (CSV or TOML; :func:`hipdata.outcome_measures.read_measures`),
        added to the shipped ones, for measures the mapping names.
    catalogue : path or DataFrame, optional
        A clinic's exercise catalogue (pass the one you will load with).
    dayfirst : bool, optional
        Day/month order of non-ISO dates (an export with a D/M/Y or M/D/Y date format);
        ``None`` refuses ambiguous dates.
    today : date, optional
        Dates after it are in the future (default: today).

    Returns
    -------
    ImportResult
        ``write(folder)`` writes a folder that :func:`hipdata.load` reads without quarantine.

    Raises
    ------
    DataError
        When the export, the dictionary or the mapping cannot be used at all.
    """
    path = Path(records)
    if not path.is_file():
        raise DataError("no such file", file=str(path), fix="give the REDCap records export")
    fields = read_dictionary(TEMPLATE_DICTIONARY if dictionary is None else dictionary)
    registry = with_measures(measures) if measures is not None else dict(MEASURES)
    mapping_name = "hipdata_mapping.toml" if mapping is None else str(mapping)
    if not isinstance(mapping, dict):
        mapping_name = Path(mapping_name).name
        mapping = read_mapping(mapping)
    project = dict(mapping.get("project", {}))
    try:
        specs = _specs(mapping, fields, registry, mapping_name)
    except DataError as exc:
        if mapping_name != "hipdata_mapping.toml":
            raise
        raise DataError(
            f"the data dictionary is not hipdata's REDCap template ({exc.problem})",
            file=Path(dictionary).name if dictionary is not None else None,
            fix="write a mapping of this project's fields and events and pass it with "
            "--mapping (docs/redcap.md)",
        ) from None

    data, rows, long, column_report, _ = _read_export(path, fields)
    record_field = str(project.get("record_id") or next(iter(fields)))
    if record_field not in data.columns:
        matched = sum(1 for _, name in column_report if name in data.columns)
        raise DataError(
            f"the export has no record id column {record_field!r} ({matched} of "
            f"{len(column_report)} columns match the data dictionary)",
            file=path.name,
            fix="give the project's own data dictionary (--dictionary) and mapping (--mapping), "
            "or export the record id field",
        )
    problems = RowProblems(path.name, rows)
    decode = _Decoder(data, fields, dayfirst)
    n = len(data)

    # 1. structure: record id, event, repeating instrument and instance, duplicates
    record = decode.cells(record_field)
    problems.flag(record == "", record_field, "the record id is empty", record)
    event = _event_names(decode, project, problems)
    instrument = _instruments(decode, fields, problems)
    instance = decode.cells("redcap_repeat_instance")
    bad_instance = (instrument != "") & ~instance.str.fullmatch(r"[1-9][0-9]*")
    problems.flag(
        bad_instance,
        "redcap_repeat_instance",
        "the repeat instance of a repeating instrument must be a whole number from 1",
        instance,
    )
    frame = pd.DataFrame({"r": record, "e": event, "i": instrument, "n": instance})
    frame["row"] = rows
    ok = ~problems.bad
    later = frame[ok].duplicated(["r", "e", "i", "n"], keep="first")
    first_row = frame[ok].groupby(["r", "e", "i", "n"], sort=False)["row"].transform("first")
    mask = np.zeros(n, dtype=bool)
    mask[np.flatnonzero(ok)[later.to_numpy()]] = True
    problems.flag(
        mask,
        record_field,
        "duplicate of row "
        + first_row.reindex(range(n)).fillna(0).astype(int).astype(str).to_numpy()
        + " (same record, event, repeating instrument and instance)",
        record,
    )

    # 2. values of each mapped table
    parts = {
        spec_index: _extract(spec, decode, record, event, instrument, problems, fields)
        for spec_index, spec in enumerate(specs)
    }
    ignored_fields = {
        c for c in data.columns if c not in _used_columns(specs, fields, data, record_field)
    }

    # 3. patients per record (conflicts between events quarantined)
    patients, exercises, diary, others = _assemble(specs, parts, rows, problems)

    # 4. the loader's own rules, mapped back to export rows, until nothing more is rejected
    tables, merged_diary = _validate(
        patients,
        exercises,
        diary,
        others,
        record,
        rows,
        problems,
        registry=registry,
        catalogue=catalogue,
        today=today,
        record_field=record_field,
    )

    # 5. rows that gave nothing
    contributed = np.zeros(n, dtype=bool)
    contributed[merged_diary] = True
    for table in tables.values():
        positions = table["_pos"]
        if positions.dtype == object:
            for group in positions:
                contributed[np.asarray(group, dtype=int)] = True
        else:
            contributed[positions.to_numpy(dtype=int)] = True
    nothing = ~contributed & ~problems.bad
    where = (
        ("event " + event.astype(str)).where(event != "", "")
        + (", instrument " + instrument.astype(str)).where(instrument != "", "")
    ).str.strip(", ")
    problems.flag(
        nothing,
        record_field,
        "nothing to import: no value in the fields the mapping reads"
        + (" (" + where + ")").where(where != "", ""),
        record,
    )

    quarantine = pd.concat(
        [
            problems.quarantine(),
            quarantine_rows(
                path.name,
                [row for row, _ in long],
                "",
                [",".join(cells) for _, cells in long],
                "the row has more cells than the header has columns",
            ),
        ],
        ignore_index=True,
    ).sort_values("source_row", kind="stable")
    quarantine = quarantine.reset_index(drop=True)
    out = {name: table.drop(columns="_pos") for name, table in tables.items()}
    report = pd.DataFrame([report_row(path.name, n + len(long), quarantine)])
    used = _used_as(specs, fields, record_field)
    columns = pd.DataFrame(
        [
            (
                path.name,
                header,
                used.get(
                    name,
                    "ignored: form status"
                    if name.endswith("_complete") and name not in fields
                    else "ignored: not mapped"
                    if name in ignored_fields or name in data
                    else name,
                ),
            )
            for header, name in column_report
        ],
        columns=COLUMN_REPORT_COLUMNS,
    )
    result = ImportResult(tables=out, quarantine=quarantine, report=report, columns=columns)
    result.check()
    return result


def _event_names(decode: _Decoder, project: dict, problems: RowProblems) -> pd.Series:
    text = decode.cells("redcap_event_name")
    known = project.get("events")
    if "redcap_event_name" not in decode.data.columns:
        return text
    if known is None:
        return text.str.lower()
    by_label = {key(re.sub(r"_arm_\d+$", "", e)): e for e in known}
    names = text.where(text.isin(known), text.map(key).map(by_label))
    arm_label = text.str.replace(r"\s*\(arm \d+.*\)$", "", regex=True, case=False)
    names = names.fillna(arm_label.map(key).map(by_label))
    problems.flag(text == "", "redcap_event_name", "the event name is empty", text)
    problems.flag(
        (text != "") & names.isna(),
        "redcap_event_name",
        "unknown event " + text + " (the mapping's events: " + ", ".join(known) + ")",
        text,
    )
    return names.fillna("").astype(object)


def _instruments(decode: _Decoder, fields: dict[str, Field], problems) -> pd.Series:
    text = decode.cells("redcap_repeat_instrument")
    forms = sorted({f.form for f in fields.values()})
    by_label = {key(form): form for form in forms}
    names = text.where(text.isin(forms), text.map(key).map(by_label)).fillna("")
    problems.flag(
        (text != "") & (names == ""),
        "redcap_repeat_instrument",
        "unknown repeating instrument " + text + " (not a form of the data dictionary)",
        text,
    )
    return names.astype(object)


def _extract(spec, decode, record, event, instrument, problems, fields) -> pd.DataFrame:
    """The spec's rows: one per export row it reads, with decoded values and ``_pos``."""
    refs = {**spec.columns, **spec.measures}
    absent = sorted(ref for ref in refs.values() if not decode.present(ref))
    refs = {column: ref for column, ref in refs.items() if decode.present(ref)}
    if not refs:  # the export does not carry this table's form: nothing to read
        return pd.DataFrame(columns=["_pos"])
    for group in REQUIRED_KEYS[spec.table]:
        if not set(group) & set(refs):
            raise DataError(
                f"the export has some of the [{spec.table}] fields but not "
                + " or ".join(spec.columns.get(k, k) for k in group if k in spec.columns)
                + f" (fields missing from the export: {', '.join(absent)})",
                fix="export every field of the form, or change the mapping",
            )
    values, reasons = {}, {}
    for column, ref in refs.items():
        as_code = column in spec.codes or (column == "treatment" and "treatment" in spec.codes)
        if spec.table == "treatments" and column == "treatment" and ref in fields:
            if fields[ref].type == "checkbox":
                frame, reason = decode.ticks(ref)
                values[column] = frame
                reasons[column] = reason
                continue
        values[column], reasons[column] = decode.value(ref, column, as_code)
    filled = pd.Series(False, index=decode.data.index)
    for column, value in values.items():
        if column == "date" and len(refs) > 1:
            continue  # a date alone is no data
        if isinstance(value, pd.DataFrame):
            filled |= value.fillna(False).any(axis=1)
        else:
            filled |= value != ""
        filled |= reasons[column] != ""
    if spec.instrument is not None:
        repeating = instrument == spec.instrument
        selected = repeating | ((instrument == "") & filled)
    else:
        selected = (instrument == "") & filled
    if spec.events is not None and (event != "").any():
        selected &= event.isin(spec.events)
    selected &= ~pd.Series(problems.bad, index=decode.data.index)
    for column, reason in reasons.items():
        problems.flag(
            (selected & (reason != "")).to_numpy(),
            refs[column],
            reason,
            decode.cells(refs[column])
            if refs[column] in decode.data.columns
            else pd.Series("", index=decode.data.index),
        )
    positions = np.flatnonzero(selected.to_numpy())
    out = pd.DataFrame({"patient_id": record.to_numpy()[positions]})
    for column, value in values.items():
        if isinstance(value, pd.DataFrame):
            out[column] = list(value.to_numpy()[positions])
            out.attrs["codes"] = list(value.columns)
            out.attrs["labels"] = fields[refs[column]].choices
            out.attrs["as_code"] = column in spec.codes
        else:
            out[column] = value.to_numpy()[positions]
    out["_pos"] = positions
    if spec.table == "treatments" and "treatment" in out:
        out = _explode_treatments(out)  # a checkbox: one row per ticked box
    return out


def _used_columns(specs, fields, data, record_field) -> set[str]:
    used = {record_field, "redcap_event_name", "redcap_repeat_instrument", "redcap_repeat_instance"}
    for spec in specs:
        for ref in {**spec.columns, **spec.measures}.values():
            used.add(ref)
            if ref in fields and fields[ref].type == "checkbox":
                used |= {c for c in data.columns if c.startswith(f"{ref}___")}
            if ref.split("___")[0] in fields:
                used.add(f"{fields[ref.split('___')[0]].form}_complete")
    return used


def _used_as(specs, fields, record_field) -> dict[str, str]:
    used = {
        record_field: "patient_id (the record id)",
        "redcap_event_name": "event (checked against the mapping's events)",
        "redcap_repeat_instrument": "repeating instrument (which table a row feeds)",
        "redcap_repeat_instance": "repeat instance (duplicate check)",
    }
    for spec in specs:
        for column, ref in spec.columns.items():
            field = fields.get(ref.split("___")[0])
            if field is not None and field.type == "checkbox":
                for code in field.choices:
                    used[f"{field.name}___{code}"] = f"{spec.table}.{column} (checkbox {code})"
            used.setdefault(ref, f"{spec.table}.{column}")
            if field is not None and field.type == "checkbox":
                used.setdefault(
                    f"{field.form}_complete",
                    f"form status of {field.form} (all-unticked checkboxes are missing unless "
                    "the form is Complete)",
                )
        for measure, ref in spec.measures.items():
            used[ref] = f"outcomes: measure {measure}"
    return used


def _assemble(specs, parts, rows, problems):
    """Patients per record (conflicts quarantined), exercises, pain diary and the other tables."""
    n = len(rows)
    patient_parts = [parts[i] for i, s in enumerate(specs) if s.table == "patients"]
    patients = pd.concat(patient_parts, ignore_index=True) if patient_parts else pd.DataFrame()
    if len(patients):
        patients = patients[~problems.bad[patients["_pos"].to_numpy()]]
        columns = [c for c in patients.columns if c not in ("patient_id", "_pos")]
        long = patients.melt(["patient_id", "_pos"], columns, "column", "value")
        long = long[long["value"] != ""].sort_values("_pos", kind="stable")
        distinct = long.drop_duplicates(["patient_id", "column", "value"])
        later = distinct.duplicated(["patient_id", "column"], keep="first")
        first = distinct.drop_duplicates(["patient_id", "column"]).set_index(
            ["patient_id", "column"]
        )
        clash = distinct[later]
        if len(clash):
            where = first.loc[list(zip(clash["patient_id"], clash["column"], strict=True))]
            mask = np.zeros(n, dtype=bool)
            mask[clash["_pos"].to_numpy()] = True
            reason = pd.Series("", index=range(n), dtype=object)
            reason[clash["_pos"].to_numpy()] = (
                clash["column"].to_numpy()
                + " conflicts with row "
                + pd.Series(rows[where["_pos"].to_numpy()]).astype(str).to_numpy()
                + " ("
                + where["value"].astype(str).to_numpy()
                + ")"
            )
            values = pd.Series("", index=range(n), dtype=object)
            values[clash["_pos"].to_numpy()] = clash["value"].to_numpy()
            problems.flag(mask, "record", reason.to_numpy(), values.to_numpy())
        patients = patients[~problems.bad[patients["_pos"].to_numpy()]]
        merged = patients.groupby("patient_id", sort=False).agg(
            {
                **{c: lambda s: next((v for v in s if v != ""), "") for c in columns},
                "_pos": list,
            }
        )
        patients = merged.reset_index()
    else:
        patients = pd.DataFrame(columns=["patient_id", "_pos"])
    by_table: dict[str, list] = {}
    for i, spec in enumerate(specs):
        if spec.table != "patients":
            by_table.setdefault(spec.table, []).append(parts[i])
    others = {}
    for table, frames in by_table.items():
        frames = [f for f in frames if len(f)]
        others[table] = (
            pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["_pos"])
        )
    exercises = others.pop("exercises", None)
    diary = others.pop("pain_diary", None)
    return patients, exercises, diary, others


def _cascade(record, rows, problems, patients: pd.DataFrame, record_field) -> None:
    """Quarantine every row of a record whose enrolment is missing or quarantined."""
    bad = problems.bad
    ids = record.to_numpy().astype(str)
    enrolled = pd.Series(ids).isin(patients["patient_id"].astype(str)).to_numpy()
    quarantined = problems.quarantine().drop_duplicates("source_row")
    why = pd.Series(quarantined["reason"].to_numpy(), index=quarantined["source_row"].to_numpy())
    first_bad = pd.Series(rows[bad], index=ids[bad]).groupby(level=0).first()
    bad_row = pd.Series(ids).map(first_bad)
    orphan = ~bad & ~enrolled
    reason = np.where(
        bad_row.notna().to_numpy(),
        "record "
        + ids
        + " has its enrolment quarantined (row "
        + bad_row.fillna(0).astype(int).astype(str).to_numpy()
        + ": "
        + bad_row.map(why).astype(object).fillna("").astype(str).to_numpy()
        + ")",
        "record " + ids + " has no enrolment (no patients data for it)",
    )
    problems.flag(orphan, record_field, np.where(orphan, reason, ""), ids)


def _positions_alive(frame: pd.DataFrame, live: np.ndarray) -> np.ndarray:
    """Per table row: all its export rows are still live."""
    if frame is None or frame.empty:
        return np.zeros(0 if frame is None else len(frame), dtype=bool)
    positions = frame["_pos"]
    if positions.dtype == object:
        return np.array([bool(live[list(p)].all()) for p in positions], dtype=bool)
    return live[positions.to_numpy(dtype=int)]


def _merge_diary(exercises: pd.DataFrame | None, diary, problems, n):
    """Write diary pains onto sessions' exercise rows without their own; quarantine the rest.

    Returns the exercises and the export positions of the diary rows that were merged.
    """
    if diary is None or diary.empty:
        return exercises, np.zeros(0, dtype=int)
    diary = diary.copy()

    def flag(mask_rows, column, reason, values=None):
        mask = np.zeros(n, dtype=bool)
        mask[diary["_pos"].to_numpy(dtype=int)[np.asarray(mask_rows, dtype=bool)]] = True
        why = np.full(n, "", dtype=object)
        text = np.full(n, "", dtype=object)
        why[diary["_pos"].to_numpy(dtype=int)] = (
            reason if np.isscalar(reason) else np.asarray(reason, dtype=object)
        )
        if values is not None:
            text[diary["_pos"].to_numpy(dtype=int)] = np.asarray(values, dtype=object)
        problems.flag(mask, column, why, text)

    for column in ("pain_during", "pain_24h"):
        if column not in diary:
            diary[column] = ""
        _, reasons = parse_pain(diary[column], scale_max=10.0)
        flag((reasons != "").to_numpy(), f"pain_diary.{column}", reasons.to_numpy(), diary[column])
    if "date" not in diary:
        diary["date"] = ""
    flag((diary["date"] == "").to_numpy(), "pain_diary.date", "the pain diary date is missing")
    diary = diary[~problems.bad[diary["_pos"].to_numpy(dtype=int)]]
    later = diary.duplicated(["patient_id", "date"], keep="first").to_numpy()
    flag(later, "pain_diary.date", "a second pain diary entry for this session date")
    diary = diary[~later]
    if exercises is not None and len(exercises):
        sessions = pd.MultiIndex.from_arrays([exercises["patient_id"], exercises["date"]])
        matched = pd.MultiIndex.from_arrays([diary["patient_id"], diary["date"]]).isin(sessions)
    else:
        matched = np.zeros(len(diary), dtype=bool)
    flag(
        ~matched,
        "pain_diary.date",
        "pain diary entry without an exercise session of this record on that date",
        diary["date"],
    )
    diary = diary[matched]
    if exercises is None or diary.empty:
        return exercises, np.zeros(0, dtype=int)
    exercises = exercises.copy()
    lookup = diary.set_index(["patient_id", "date"])
    keys = pd.MultiIndex.from_arrays([exercises["patient_id"], exercises["date"]])
    for column in ("pain_during", "pain_24h"):
        if column not in exercises:
            exercises[column] = ""
        fill = pd.Series(lookup[column].reindex(keys).to_numpy(), index=exercises.index)
        exercises[column] = exercises[column].where(exercises[column] != "", fill.fillna(""))
    return exercises, diary["_pos"].to_numpy(dtype=int)


def _explode_treatments(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per ticked box of a checkbox treatment field (codes or labels)."""
    if frame.empty or not isinstance(frame["treatment"].iloc[0], (np.ndarray, list)):
        return frame
    codes = frame.attrs.get("codes", [])
    labels = frame.attrs.get("labels", {})
    ticks = pd.DataFrame(np.vstack(frame["treatment"].to_numpy()), columns=codes)
    ticks = ticks.fillna(False).astype(bool)
    ticks.index = frame.index
    long = ticks.stack()
    long = long[long]
    out = frame.loc[long.index.get_level_values(0)].drop(columns="treatment").copy()
    values = long.index.get_level_values(1)
    if not frame.attrs.get("as_code", False):
        values = [labels.get(v, v) for v in values]
    out["treatment"] = list(values)
    return out.reset_index(drop=True)


def _melt_outcomes(frame: pd.DataFrame) -> pd.DataFrame:
    """Wide scores (one column per measure) to one row per score."""
    measures = [c for c in frame.columns if c not in ("patient_id", "date", "_pos")]
    long = frame.melt(["patient_id", "date", "_pos"], measures, "measure", "score")
    long = long[long["score"].astype(str) != ""]
    return long.sort_values(["_pos", "measure"], kind="stable").reset_index(drop=True)


def _validate(patients, exercises, diary, others, record, rows, problems, **options):
    """Apply the loader's rules; map its quarantine back to export rows; repeat until clean.

    Returns the tables (each with ``_pos``: its export row, a list for patients) and the export
    positions of merged pain-diary rows.
    """
    record_field = options.pop("record_field")
    n = len(record)
    merged = np.zeros(0, dtype=int)
    tables: dict[str, pd.DataFrame] = {}
    for _ in range(n + 2):  # each pass rejects more rows or ends the loop
        live = ~problems.bad
        patients = patients[_positions_alive(patients, live)]
        _cascade(record, rows, problems, patients, record_field)
        live = ~problems.bad
        current = {
            name: frame[_positions_alive(frame, live)]
            for name, frame in others.items()
            if frame is not None
        }
        live_exercises = None if exercises is None else exercises[_positions_alive(exercises, live)]
        live_diary = None if diary is None else diary[_positions_alive(diary, live)]
        live_exercises, merged = _merge_diary(live_exercises, live_diary, problems, n)
        tables = {"patients": patients}
        if live_exercises is not None and len(live_exercises):
            tables["exercises"] = live_exercises
        for name, frame in current.items():
            if frame.empty:
                continue
            if name == "outcomes":
                frame = _melt_outcomes(frame)
            if len(frame):
                tables[name] = frame.reset_index(drop=True)
        tables = {k: v.reset_index(drop=True) for k, v in tables.items()}
        rejected = _loader_quarantine(tables, **options)
        if rejected.empty:
            break
        # rows of a patient the loader rejected: quarantined on the next pass, naming the
        # export row of the enrolment (the loader's reason names its own scratch file)
        if (rejected["table"] == "patients").any():
            rejected = rejected[~rejected["reason"].str.startswith("patient is quarantined")]
        for (table, column, reason, value), group in rejected.groupby(
            ["table", "column", "reason", "value"], sort=False
        ):
            picked = tables[table]["_pos"].iloc[group["index"].to_numpy(dtype=int)]
            positions = (
                np.concatenate([np.asarray(p, dtype=int) for p in picked])
                if picked.dtype == object
                else picked.to_numpy(dtype=int)
            )
            mask = np.zeros(n, dtype=bool)
            mask[positions] = True
            problems.flag(
                mask, f"{table}.{column}", _translate_rows(reason, tables[table], rows), value
            )
    return tables, merged


def _translate_rows(reason: str, frame: pd.DataFrame, rows: np.ndarray) -> str:
    """Turn the loader's 'row N' (a row of the written table) into the export's row."""

    def swap(match):
        index = int(match.group(1)) - 2
        if 0 <= index < len(frame):
            position = frame["_pos"].iloc[index]
            position = position[0] if isinstance(position, list) else int(position)
            return f"row {rows[position]}"
        return match.group(0)

    return re.sub(r"row (\d+)", swap, reason)


def _loader_quarantine(tables, *, registry, catalogue, today) -> pd.DataFrame:
    """Write the tables to a scratch folder, load them, and return the loader's rejections."""
    from hipdata.io.loader import load

    empty = pd.DataFrame(columns=["table", "index", "column", "reason", "value"])
    if tables["patients"].empty:
        return empty
    with tempfile.TemporaryDirectory(prefix="hipdata-redcap-") as folder:
        for name, frame in tables.items():
            frame.drop(columns="_pos").to_csv(Path(folder) / f"{name}.csv", index=False)
        try:
            dataset = load(folder, measures=registry, catalogue=catalogue, today=today)
        except DataError as exc:  # a table the mapping produced is unusable as a whole
            raise DataError(
                f"the imported tables cannot be loaded: {exc.problem}",
                fix="check the mapping (docs/redcap.md)" + (f"; {exc.fix}" if exc.fix else ""),
            ) from None
    q = dataset.quarantine
    if q.empty:
        return empty
    return pd.DataFrame(
        {
            "table": q["table"].astype(str).to_numpy(),
            "index": (q["source_row"].astype(int) - 2).to_numpy(),
            "column": q["column"].astype(str).to_numpy(),
            "reason": q["reason"].astype(str).to_numpy(),
            "value": q["value"].astype(str).to_numpy(),
        }
    )
