"""The clean, canonical tables the loader produces and every metric reads.

Column names and dtypes (the contract between ``hipdata.io`` and ``hipdata.metrics``):

``patients`` (one row per episode of care)
    patient_id str, clinic_id str, clinician_id str|NA, sex str (F/M/X/unknown), age_years Int64,
    condition str|NA, athlete boolean, start_date datetime64, discharge_date datetime64|NaT,
    discharge_reason str|NA, planned_sessions_per_week float64 (default filled in)
``sets`` (one row per set; both input layouts end here)
    patient_id str, date datetime64, exercise str (catalogue id), family str, level int64,
    dose str (reps/hold), set int64, reps float64|NaN, hold_s float64|NaN,
    load_kg float64 (0 where the input was empty), pain_during float64|NaN (0-10),
    pain_24h float64|NaN (0-10), prescribed_sets / prescribed_reps / prescribed_hold_s float64|NaN,
    set_type str (working/warmup/drop/failure; default working), source_file str, source_row int64
``activity``
    patient_id, date, cardio_min float64, strength_sessions float64|NaN, source_file, source_row
``outcomes``
    patient_id, date, measure str (registry name), score float64, source_file, source_row
``treatments``
    patient_id, date, treatment str, source_file, source_row
``quarantine``
    table, source_file, source_row, column, value, reason
``load_report``
    table, source_file, rows_read, rows_kept, rows_quarantined, notes (what the reader saw:
    hidden sheets skipped, encodings, a trailing delimiter, formulas, ...)
``columns`` (the load report's column accounting: one row per column of every file)
    table, source_file, column (as headed in the file), status (used / ignored), used_as (the
    field it gives; empty when ignored), note

With ``categorical=True`` (:func:`hipdata.load`, :meth:`Dataset.from_frames`) the text columns
of :data:`CATEGORICAL_COLUMNS` are pandas ``category`` columns instead of ``str``: unordered,
their categories the distinct texts present (``str``), sorted as ``sort_values`` sorts text, so
the codes sort and group like the text; missing values are code -1. Every other column is as
above.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from hipdata.catalogue import load_catalogue
from hipdata.protocol import DEFAULT_PLANNED_SESSIONS_PER_WEEK

PATIENT_COLUMNS = [
    "patient_id",
    "clinic_id",
    "clinician_id",
    "sex",
    "age_years",
    "condition",
    "athlete",
    "start_date",
    "discharge_date",
    "discharge_reason",
    "planned_sessions_per_week",
]
SET_COLUMNS = [
    "patient_id",
    "date",
    "exercise",
    "family",
    "level",
    "dose",
    "set",
    "reps",
    "hold_s",
    "load_kg",
    "pain_during",
    "pain_24h",
    "prescribed_sets",
    "prescribed_reps",
    "prescribed_hold_s",
    "set_type",
    "source_file",
    "source_row",
]
#: Kinds of set; only ``warmup`` sets are left out of criterion and dose.
SET_TYPES = ("working", "warmup", "drop", "failure")
#: Ways of writing a set type (keys without case, spaces or punctuation), as apps write them.
SET_TYPE_NAMES = {
    "": "working",
    "working": "working",
    "work": "working",
    "normal": "working",
    "warmup": "warmup",
    "w": "warmup",
    "drop": "drop",
    "dropset": "drop",
    "d": "drop",
    "failure": "failure",
    "f": "failure",
}
ACTIVITY_COLUMNS = ["patient_id", "date", "cardio_min", "strength_sessions"]
OUTCOME_COLUMNS = ["patient_id", "date", "measure", "score"]
TREATMENT_COLUMNS = ["patient_id", "date", "treatment"]
QUARANTINE_COLUMNS = ["table", "source_file", "source_row", "column", "value", "reason"]
LOAD_REPORT_COLUMNS = [
    "table",
    "source_file",
    "rows_read",
    "rows_kept",
    "rows_quarantined",
    "notes",
]
COLUMN_REPORT_COLUMNS = ["table", "source_file", "column", "status", "used_as", "note"]
SOURCE_COLUMNS = ["source_file", "source_row"]

#: The text columns that ``categorical=True`` gives as ``category`` columns, per table (the
#: metrics' group-by and sort keys, and the sets table's repeated texts).
CATEGORICAL_COLUMNS = {
    "patients": ["patient_id", "clinic_id", "clinician_id"],
    "sets": ["patient_id", "exercise", "family", "dose", "set_type", "source_file"],
}

_FLOAT_SET_COLUMNS = [
    "reps",
    "hold_s",
    "load_kg",
    "pain_during",
    "pain_24h",
    "prescribed_sets",
    "prescribed_reps",
    "prescribed_hold_s",
]


def _with_columns(frame: pd.DataFrame | None, columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(columns=columns) if frame is None else frame.copy()
    for column in columns:
        if column not in frame.columns:
            frame[column] = pd.NA
    return frame


def _as_dates(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series).astype("datetime64[ns]")


def sorted_categorical(values, codes: np.ndarray | None = None) -> pd.Categorical:
    """Text as an unordered categorical whose categories are the distinct texts present, sorted.

    ``values`` are texts (missing: NaN / None / NA); with ``codes`` (integers, -1 for missing)
    the column is ``values[codes]`` and is built from the codes without any text per row. The
    categories are sorted as ``sort_values`` sorts text (by code point) and only those present
    are kept, so the codes equal ``pd.factorize(column, sort=True)``'s and sorting or grouping
    on them orders rows exactly as on the text.
    """
    if codes is None:
        row_codes, uniques = pd.factorize(pd.Series(values, dtype="str"), sort=True)
        categories = pd.Index(uniques, dtype="str")
        return pd.Categorical.from_codes(
            row_codes, dtype=pd.CategoricalDtype(categories, ordered=False), validate=False
        )
    small_codes, uniques = pd.factorize(pd.Series(values, dtype="str"))
    codes = np.asarray(codes)
    row_codes = (
        np.where(codes >= 0, small_codes[np.maximum(codes, 0)], -1)
        if len(small_codes)
        else np.full(len(codes), -1)
    )
    present = np.bincount(row_codes[row_codes >= 0], minlength=len(uniques)) > 0
    order = np.argsort(np.asarray(uniques, dtype=object), kind="stable")
    keep = order[present[order]]
    new = np.full(len(uniques), -1, dtype=np.int64)
    new[keep] = np.arange(len(keep))
    final = np.where(row_codes >= 0, new[np.maximum(row_codes, 0)], -1) if len(new) else row_codes
    categories = pd.Index(pd.Index(uniques, dtype="str").take(keep), dtype="str")
    return pd.Categorical.from_codes(
        final, dtype=pd.CategoricalDtype(categories, ordered=False), validate=False
    )


def _is_text(dtype) -> bool:
    return dtype == np.dtype(object) or isinstance(dtype, pd.StringDtype)


def as_categorical(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``frame`` with its text ``columns`` as :func:`sorted_categorical` columns (a column that
    is already a text categorical is rebuilt from its codes: sorted categories, only those
    present). Columns of other dtypes (e.g. integer ids in trusted frames) are left as they are,
    as the metrics' outputs leave them."""
    replaced = {}
    for column in columns:
        if column not in frame.columns:
            continue
        values = frame[column]
        dtype = values.dtype
        if isinstance(dtype, pd.CategoricalDtype) and not _is_text(dtype.categories.dtype):
            continue
        if not isinstance(dtype, pd.CategoricalDtype) and not _is_text(dtype):
            continue
        if isinstance(dtype, pd.CategoricalDtype):
            built = sorted_categorical(values.cat.categories, values.cat.codes.to_numpy())
        else:
            built = sorted_categorical(values)
        replaced[column] = pd.Series(built, index=values.index, name=column)
    return frame.assign(**replaced) if replaced else frame


def join_catalogue(
    sets: pd.DataFrame, catalogue: pd.DataFrame, validate: str | None = "many_to_one"
) -> pd.DataFrame:
    """``sets`` with the catalogue's ``family``, ``level`` and ``dose`` of each set's exercise.

    The left merge on ``exercise`` (rows and their order kept, missing exercises NaN), done as
    one look-up per distinct exercise and a ``take`` per column when the catalogue's ids are
    unique (otherwise the merge itself, with ``validate`` as given).
    """
    lookup = catalogue[["id", "family", "level", "dose"]].rename(columns={"id": "exercise"})
    added = ["family", "level", "dose"]
    if not lookup["exercise"].is_unique or any(c in sets.columns for c in added):
        return sets.merge(lookup, on="exercise", how="left", validate=validate)
    codes, distinct = pd.factorize(sets["exercise"])
    at = pd.Index(lookup["exercise"]).get_indexer(distinct)
    rows = np.where(codes < 0, -1, at[np.maximum(codes, 0)] if len(at) else -1)
    out = sets.reset_index(drop=True)
    if (rows < 0).any():  # an exercise not in the catalogue: the merge gives NaN there
        return sets.merge(lookup, on="exercise", how="left", validate=validate)
    for column in added:
        out[column] = lookup[column].array.take(rows)
    return out


@dataclass
class Dataset:
    """A loaded cohort: clean canonical tables plus what was quarantined and why.

    Build one with :func:`hipdata.load` from files, or with :meth:`Dataset.from_frames` from
    DataFrames (tests, notebooks).
    """

    patients: pd.DataFrame
    sets: pd.DataFrame
    activity: pd.DataFrame
    outcomes: pd.DataFrame
    treatments: pd.DataFrame
    quarantine: pd.DataFrame
    load_report: pd.DataFrame
    catalogue: pd.DataFrame
    #: SHA-256 over the input files' bytes (empty for a dataset built from frames).
    input_hash: str = ""
    #: Where the data came from (a folder, or a description).
    source: str = ""
    meta: dict = field(default_factory=dict)
    #: Every column of every input file: used (as which field) or ignored (and why).
    columns: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=COLUMN_REPORT_COLUMNS)
    )

    @classmethod
    def from_frames(
        cls,
        patients: pd.DataFrame,
        sets: pd.DataFrame,
        *,
        activity: pd.DataFrame | None = None,
        outcomes: pd.DataFrame | None = None,
        treatments: pd.DataFrame | None = None,
        catalogue: pd.DataFrame | None = None,
        validate: bool = True,
        categorical: bool = False,
        **options,
    ) -> Dataset:
        """Build a dataset from DataFrames, validated like files by default.

        With ``validate=True`` (the default) the frames go through :func:`hipdata.validate`: the
        loader's rules and quarantine, exactly as for files (``sets`` is the exercises table, in
        either layout, with exercise ids or aliases; ``source_file`` is ``"patients
        (DataFrame)"`` etc. and ``source_row`` the frame's row position + 2). ``options`` are
        passed on (``dayfirst``, ``pain_scale``, ``measures``, ``today``); ``catalogue`` is then
        a clinic's catalogue merged over the shipped one, as in :func:`hipdata.load`.

        With ``validate=False`` the frames are trusted as they are (the loader uses this for
        its own, already validated tables): defaults and catalogue columns are filled in and
        nothing is checked or quarantined. ``sets`` then needs at least ``patient_id, date,
        exercise, set`` (catalogue ids) and whichever of reps, hold_s, load_kg, pain_during,
        pain_24h apply; ``catalogue`` is the whole catalogue.

        Examples
        --------
        >>> import pandas as pd
        >>> ds = Dataset.from_frames(
        ...     pd.DataFrame({"patient_id": ["P1"], "clinic_id": ["C1"],
        ...                   "start_date": ["2026-01-05"]}),
        ...     pd.DataFrame({"patient_id": ["P1"], "date": ["2026-01-05"],
        ...                   "exercise": ["bridge"], "set": [1], "reps": [10]}))
        >>> row = ds.sets.iloc[0]
        >>> (row["family"], int(row["level"]), float(row["load_kg"]), row["source_file"])
        ('extensors', 1, 0.0, 'exercises (DataFrame)')
        """
        if validate:
            from hipdata.io.frames import validate as validate_frames

            dataset = validate_frames(
                {
                    "patients": patients,
                    "exercises": sets,
                    "activity": activity,
                    "outcomes": outcomes,
                    "treatments": treatments,
                },
                catalogue=catalogue,
                **options,
            )
            return dataset.with_categorical() if categorical else dataset
        if options:
            raise TypeError(f"options {sorted(options)} apply only with validate=True")
        catalogue = load_catalogue() if catalogue is None else catalogue
        patients = _with_columns(patients, PATIENT_COLUMNS)
        patients["start_date"] = _as_dates(patients["start_date"])
        patients["discharge_date"] = _as_dates(patients["discharge_date"])
        patients["planned_sessions_per_week"] = (
            pd.to_numeric(patients["planned_sessions_per_week"])
            .astype("float64")
            .fillna(DEFAULT_PLANNED_SESSIONS_PER_WEEK)
        )
        patients["age_years"] = pd.to_numeric(patients["age_years"]).astype("Int64")
        patients["athlete"] = patients["athlete"].astype("boolean")
        patients["sex"] = patients["sex"].fillna("unknown")
        for column in ("patient_id", "clinic_id"):
            patients[column] = patients[column].astype(str)

        sets = _with_columns(sets, SET_COLUMNS)
        sets = join_catalogue(sets.drop(columns=["family", "level", "dose"]), catalogue)
        if sets["family"].isna().any():
            unknown = sorted(sets.loc[sets["family"].isna(), "exercise"].unique())
            raise ValueError(f"exercises not in the catalogue: {unknown}")
        sets["date"] = _as_dates(sets["date"])
        sets["patient_id"] = sets["patient_id"].astype(str)
        sets["level"] = sets["level"].astype("int64")
        sets["set"] = pd.to_numeric(sets["set"]).astype("int64")
        for column in _FLOAT_SET_COLUMNS:
            sets[column] = pd.to_numeric(sets[column]).astype("float64")
        sets["load_kg"] = sets["load_kg"].fillna(0.0)
        sets["set_type"] = sets["set_type"].fillna("working").astype(str)
        sets["source_file"] = sets["source_file"].fillna("")
        sets["source_row"] = pd.to_numeric(sets["source_row"]).fillna(0).astype("int64")
        sets = sets[SET_COLUMNS]

        def optional(frame, columns, numeric):
            frame = _with_columns(frame, columns + SOURCE_COLUMNS)
            frame["date"] = _as_dates(frame["date"])
            for column in numeric:
                frame[column] = pd.to_numeric(frame[column]).astype("float64")
            frame["source_file"] = frame["source_file"].fillna("")
            frame["source_row"] = pd.to_numeric(frame["source_row"]).fillna(0).astype("int64")
            return frame[columns + SOURCE_COLUMNS]

        dataset = cls(
            patients=patients[PATIENT_COLUMNS],
            sets=sets,
            activity=optional(activity, ACTIVITY_COLUMNS, ["cardio_min", "strength_sessions"]),
            outcomes=optional(outcomes, OUTCOME_COLUMNS, ["score"]),
            treatments=optional(treatments, TREATMENT_COLUMNS, []),
            quarantine=pd.DataFrame(columns=QUARANTINE_COLUMNS),
            load_report=pd.DataFrame(columns=LOAD_REPORT_COLUMNS),
            catalogue=catalogue,
            source="frames",
        )
        return dataset.with_categorical() if categorical else dataset

    def with_categorical(self) -> Dataset:
        """This dataset with :data:`CATEGORICAL_COLUMNS` as ``category`` columns (a copy of the
        two frames; the other tables are shared). See :func:`hipdata.load`'s ``categorical``."""
        return replace(
            self,
            patients=as_categorical(self.patients, CATEGORICAL_COLUMNS["patients"]),
            sets=as_categorical(self.sets, CATEGORICAL_COLUMNS["sets"]),
        )

    def summary(self) -> dict[str, int]:
        """Counts a user checks first: patients, sessions, sets and rows quarantined."""
        sessions = self.sets[["patient_id", "date"]].drop_duplicates()
        return {
            "patients": len(self.patients),
            "clinics": self.patients["clinic_id"].nunique(),
            "sessions": len(sessions),
            "sets": len(self.sets),
            "activity_rows": len(self.activity),
            "outcome_rows": len(self.outcomes),
            "treatment_rows": len(self.treatments),
            "rows_quarantined": len(self.quarantine),
        }
