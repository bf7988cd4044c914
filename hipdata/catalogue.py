"""The exercise catalogue: the protocol's ladders with ids, families, levels, doses and aliases.

The shipped file ``hipdata/data/catalogue.csv`` holds CONTRACT §3. A clinic can add exercises or
override shipped ones with its own file of the same columns (``aliases`` separated by ``|``);
rows of the clinic file replace shipped rows with the same ``id``, and their aliases are added.
"""

from __future__ import annotations

import difflib
import re
from importlib import resources
from pathlib import Path

import pandas as pd

from hipdata.errors import DataError

CATALOGUE_COLUMNS = [
    "id",
    "family",
    "level",
    "dose",
    "target_sets",
    "target_min",
    "target_max",
    "name",
    "aliases",
]
DOSES = ("reps", "hold")

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def normalise_name(name: str) -> str:
    """Lower-case a name and collapse everything that is not a letter or digit to one space.

    >>> normalise_name("  Side-lying Hip_ADDUCTION ")
    'side lying hip adduction'
    """
    return _NON_ALNUM.sub(" ", str(name).lower()).strip()


def _read_catalogue_file(source) -> pd.DataFrame:
    try:
        table = pd.read_csv(source, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataError(
            f"cannot read the exercise catalogue ({exc})",
            file=str(source),
            fix="give a CSV with the columns " + ", ".join(CATALOGUE_COLUMNS),
        ) from exc
    table.columns = [normalise_name(c).replace(" ", "_") for c in table.columns]
    missing = [c for c in ("id", "family", "level", "dose") if c not in table.columns]
    if missing:
        raise DataError(
            f"the catalogue lacks the column(s) {', '.join(missing)}",
            file=str(source),
            fix="give a CSV with the columns " + ", ".join(CATALOGUE_COLUMNS),
        )
    for column in CATALOGUE_COLUMNS:
        if column not in table.columns:
            table[column] = ""
    table = table[CATALOGUE_COLUMNS].copy()
    table["id"] = table["id"].str.strip()
    bad_dose = ~table["dose"].isin(DOSES)
    bad_level = ~table["level"].str.fullmatch(r"\s*\d+\s*")
    if bad_dose.any() or bad_level.any() or (table["id"] == "").any():
        bad = table.index[bad_dose | bad_level | (table["id"] == "")][0]
        raise DataError(
            f"catalogue row {bad + 2} is invalid (id {table.at[bad, 'id']!r}, level "
            f"{table.at[bad, 'level']!r}, dose {table.at[bad, 'dose']!r})",
            file=str(source),
            fix="every row needs an id, a whole-number level and a dose of 'reps' or 'hold'",
        )
    table["level"] = table["level"].astype(int)
    for column, default_reps, default_hold in (
        ("target_sets", 3, 3),
        ("target_min", 8, 20),
        ("target_max", 10, 30),
    ):
        default = table["dose"].map({"reps": default_reps, "hold": default_hold})
        table[column] = pd.to_numeric(table[column].replace("", None)).fillna(default)
    table["target_sets"] = table["target_sets"].astype(int)
    return table


def load_catalogue(extra: str | Path | pd.DataFrame | None = None) -> pd.DataFrame:
    """Return the exercise catalogue, with a clinic's own file merged on top.

    Parameters
    ----------
    extra : path or DataFrame, optional
        A clinic's catalogue (same columns). Its rows replace shipped rows with the same id; its
        aliases are added to theirs.

    Returns
    -------
    DataFrame
        One row per exercise: ``id, family, level, dose, target_sets, target_min, target_max,
        name, aliases`` (aliases ``|``-separated), ordered by family and level.
    """
    shipped = _read_catalogue_file(resources.files("hipdata") / "data" / "catalogue.csv")
    if extra is None:
        return shipped
    clinic = extra.copy() if isinstance(extra, pd.DataFrame) else _read_catalogue_file(extra)
    if isinstance(extra, pd.DataFrame):
        clinic = _read_catalogue_file(_frame_to_csv_buffer(clinic))
    merged = shipped.set_index("id")
    for row in clinic.itertuples(index=False):  # a catalogue is tens of rows, not data
        old_aliases = merged.at[row.id, "aliases"] if row.id in merged.index else ""
        values = row._asdict()
        values["aliases"] = "|".join(a for a in (old_aliases, row.aliases) if a)
        merged.loc[row.id] = pd.Series(values).drop("id")
    merged = merged.reset_index()
    merged["level"] = merged["level"].astype(int)
    merged["target_sets"] = merged["target_sets"].astype(int)
    return merged[CATALOGUE_COLUMNS]


def _frame_to_csv_buffer(frame: pd.DataFrame):
    import io

    buffer = io.StringIO()
    frame.astype(str).to_csv(buffer, index=False)
    buffer.seek(0)
    return buffer


def alias_table(catalogue: pd.DataFrame) -> pd.Series:
    """Map every normalised id, name and alias to its exercise id.

    An alias claimed by two exercises resolves to neither (it would be a guess); ids always win.
    """
    rows = []
    for ex_id, name, aliases in catalogue[["id", "name", "aliases"]].itertuples(index=False):
        rows.append((normalise_name(ex_id), ex_id, 0))
        if name:
            rows.append((normalise_name(name), ex_id, 1))
        for alias in str(aliases).split("|"):
            if alias.strip():
                rows.append((normalise_name(alias), ex_id, 1))
    table = pd.DataFrame(rows, columns=["key", "id", "priority"]).drop_duplicates(["key", "id"])
    best = table.groupby("key")["priority"].transform("min")
    table = table[table["priority"] == best]
    ambiguous = table.duplicated("key", keep=False)
    return table[~ambiguous].set_index("key")["id"]


def resolve_exercises(names: pd.Series, catalogue: pd.DataFrame) -> pd.Series:
    """Map raw exercise names to catalogue ids (missing where unknown)."""
    return names.map(normalise_name).map(alias_table(catalogue))


def suggest_exercises(
    name: str, catalogue: pd.DataFrame, n: int = 3, *, aliases: pd.Series | None = None
) -> list[str]:
    """The catalogue ids closest to an unknown name, best first (may be empty).

    ``aliases`` (from :func:`alias_table`) saves rebuilding the table for each name.
    """
    aliases = alias_table(catalogue) if aliases is None else aliases
    matches = difflib.get_close_matches(normalise_name(name), list(aliases.index), n=12, cutoff=0.6)
    ids: list[str] = []
    for match in matches:
        if aliases[match] not in ids:
            ids.append(aliases[match])
    return ids[:n]
