"""Registry of patient-reported outcome measures: range, direction and MCID.

Defaults follow CONTRACT §1 (outcomes). A clinic or study can register its own measure with
:func:`register_measure`, read its measures from a CSV or TOML file with :func:`read_measures`
(``--measures FILE`` on the command line), or pass a modified copy of :data:`MEASURES` (see
:func:`with_measures`) to the functions that use it.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from hipdata.errors import DataError


@dataclass(frozen=True)
class Measure:
    """One outcome measure.

    ``higher_is_better`` orients improvement; ``mcid_points`` is the minimal clinically important
    difference in points, ``mcid_pct`` (optional) an alternative relative MCID in percent of the
    baseline: a patient who reaches either is a responder.
    """

    name: str
    low: float
    high: float
    higher_is_better: bool
    mcid_points: float
    mcid_pct: float | None = None
    label: str = ""
    source: str = ""
    aliases: tuple[str, ...] = field(default_factory=tuple)


_HOOS_SOURCE = "10 points; published non-operative values run 4-13 by subscale"

MEASURES: dict[str, Measure] = {
    m.name: m
    for m in (
        Measure(
            "nprs",
            0,
            10,
            False,
            2.0,
            30.0,
            "NPRS pain (0-10)",
            "Farrar et al. 2001: 2 points or 30 %",
            ("nprs", "nrs", "pain nrs", "nprs pain", "numeric pain rating scale", "pain"),
        ),
        Measure(
            "hoos_pain",
            0,
            100,
            True,
            10.0,
            None,
            "HOOS Pain",
            _HOOS_SOURCE,
            ("hoos pain", "hoos p"),
        ),
        Measure(
            "hoos_symptoms",
            0,
            100,
            True,
            10.0,
            None,
            "HOOS Symptoms",
            _HOOS_SOURCE,
            ("hoos symptoms", "hoos s", "hoos symptom"),
        ),
        Measure(
            "hoos_adl",
            0,
            100,
            True,
            10.0,
            None,
            "HOOS ADL",
            _HOOS_SOURCE,
            ("hoos adl", "hoos function in daily living"),
        ),
        Measure(
            "hoos_sport",
            0,
            100,
            True,
            10.0,
            None,
            "HOOS Sport/Rec",
            _HOOS_SOURCE,
            ("hoos sport", "hoos sport rec", "hoos sports"),
        ),
        Measure(
            "hoos_qol",
            0,
            100,
            True,
            10.0,
            None,
            "HOOS QoL",
            _HOOS_SOURCE,
            ("hoos qol", "hoos quality of life"),
        ),
        Measure(
            "ihot12",
            0,
            100,
            True,
            13.0,
            None,
            "iHOT-12",
            "13 points after arthroscopy; about 14 in non-operative care",
            ("ihot12", "ihot 12", "ihot"),
        ),
        Measure(
            "eq5d_index",
            -0.6,
            1.0,
            True,
            0.07,
            None,
            "EQ-5D index",
            "0.07",
            ("eq5d index", "eq5d", "eq 5d", "eq 5d index", "eq 5d 5l", "eq5d5l"),
        ),
    )
}


def register_measure(measure: Measure) -> None:
    """Add (or replace) a measure in the package-wide registry."""
    MEASURES[measure.name] = measure


def measure_aliases(measures: dict[str, Measure] | None = None) -> dict[str, str]:
    """Map normalised names and aliases (``hoos pain``, ``iHOT-12``, ...) to measure names."""
    from hipdata.catalogue import normalise_name

    measures = MEASURES if measures is None else measures
    table: dict[str, str] = {}
    for measure in measures.values():
        for key in (measure.name, *measure.aliases):
            table[normalise_name(key)] = measure.name
    return table


#: Column names accepted in a measures file (keys: lower-case names as written), mapped to fields.
_MEASURE_FILE_FIELDS = {
    "measure": "name",
    "name": "name",
    "min": "low",
    "range_min": "low",
    "low": "low",
    "max": "high",
    "range_max": "high",
    "high": "high",
    "better": "better",
    "direction": "better",
    "higher_is_better": "higher_is_better",
    "mcid": "mcid_points",
    "mcid_points": "mcid_points",
    "mcid_pct": "mcid_pct",
    "mcid_percent": "mcid_pct",
    "label": "label",
    "source": "source",
    "aliases": "aliases",
}
_MEASURE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _measure_from_fields(fields: dict, where: str, file: str) -> Measure:
    """Build one :class:`Measure` from a measures-file entry, or raise a DataError naming it."""

    def fail(problem: str, fix: str) -> DataError:
        return DataError(f"{where}: {problem}", file=file, fix=fix)

    unknown = sorted(k for k in fields if str(k).strip().lower() not in _MEASURE_FILE_FIELDS)
    if unknown:
        raise fail(
            f"unknown field(s) {', '.join(map(str, unknown))}",
            "use measure, min, max, better (higher/lower), mcid, mcid_pct, label, aliases",
        )
    values = {_MEASURE_FILE_FIELDS[str(k).strip().lower()]: v for k, v in fields.items()}
    values = {k: (v.strip() if isinstance(v, str) else v) for k, v in values.items()}
    values = {k: v for k, v in values.items() if v not in ("", None)}
    name = str(values.get("name", ""))
    if not _MEASURE_NAME.match(name):
        raise fail(
            f"measure name {name!r} is empty or not lower-case letters, digits and _",
            "name the measure like koos_jr or odi",
        )
    for key, label in (("low", "min"), ("high", "max"), ("mcid_points", "mcid")):
        if key not in values:
            raise fail(f"measure {name}: {label} is missing", f"give the {label} of {name}")
    numbers = {}
    for key in ("low", "high", "mcid_points", "mcid_pct"):
        if key in values:
            try:
                numbers[key] = float(str(values[key]).replace(",", "."))
            except ValueError:
                raise fail(
                    f"measure {name}: {values[key]!r} is not a number", "write it like 10 or 0.5"
                ) from None
    if not numbers["low"] < numbers["high"]:
        raise fail(f"measure {name}: min must be below max", "check the range")
    if numbers["mcid_points"] <= 0 or numbers.get("mcid_pct", 1.0) <= 0:
        raise fail(f"measure {name}: the MCID must be above 0", "give the MCID in points (> 0)")
    better = str(values.get("better", "")).lower()
    flag = str(values.get("higher_is_better", "")).lower()
    if not better and flag in ("true", "false"):  # the column form higher_is_better = true/false
        better = "higher" if flag == "true" else "lower"
    if better not in ("higher", "lower"):
        raise fail(
            f"measure {name}: better/direction {better!r} must be 'higher' or 'lower'",
            "say which direction is better",
        )
    aliases = values.get("aliases", ())
    if isinstance(aliases, str):
        aliases = [a for a in aliases.split("|") if a.strip()]
    return Measure(
        name,
        numbers["low"],
        numbers["high"],
        better == "higher",
        numbers["mcid_points"],
        numbers.get("mcid_pct"),
        str(values.get("label", name)),
        str(values.get("source", f"registered from {file}")),
        tuple(str(a).strip() for a in aliases),
    )


def read_measures(
    path: str | Path | None, base: dict[str, Measure] | None = None
) -> dict[str, Measure]:
    """The registry ``base`` (default :data:`MEASURES`) with a study's measures from a file.

    CSV: one row per measure with the columns ``measure, min, max, better, mcid`` and optionally
    ``mcid_pct``, ``label``, ``source`` and ``aliases`` (``|``-separated); the names ``name, low,
    high, higher_is_better (true/false), mcid_points`` are accepted too. TOML: one table per
    measure, ``[measures.<name>]`` with the same keys (``aliases`` a list). ``better`` is
    ``higher`` or ``lower`` (``direction`` is accepted too); a patient is a responder when the
    improvement reaches ``mcid`` points or, when given, ``mcid_pct`` percent of the baseline. A
    measure with a known name replaces it. ``path=None`` returns ``base`` unchanged; the
    package-wide registry is never modified.

    Returns
    -------
    dict of str to Measure
        ``base`` plus the file's measures.

    Raises
    ------
    DataError
        Naming the file, the entry and the problem (unknown field, missing range, bad direction).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "m.csv").write_text("measure,min,max,better,mcid\\nodi,0,100,lower,10\\n")
    >>> m = read_measures(folder / "m.csv")["odi"]  # the shipped measures are there too
    >>> (m.low, m.high, m.higher_is_better, m.mcid_points)
    (0.0, 100.0, False, 10.0)
    """
    registry = dict(MEASURES if base is None else base)
    if path is None:
        return registry
    path = Path(path)
    if not path.is_file():
        raise DataError("no such measures file", file=str(path), fix="give a .csv or .toml file")
    if path.suffix.lower() == ".toml":
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise DataError(
                f"not a valid TOML file ({exc})", file=path.name, fix="check the TOML syntax"
            ) from None
        tables = data.get("measures")
        if not isinstance(tables, dict) or not tables:
            raise DataError(
                "no [measures.<name>] tables",
                file=path.name,
                fix="write each measure as [measures.<name>] with min, max, better and mcid",
            )
        entries = [
            ({"measure": name, **fields}, f"[measures.{name}]")
            for name, fields in tables.items()
            if isinstance(fields, dict)
        ]
    else:
        import pandas as pd

        try:
            table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
            raise DataError(
                f"not a readable CSV file ({exc})", file=path.name, fix="save it as UTF-8 CSV"
            ) from None
        table.columns = [str(c).strip().lower().replace(" ", "_") for c in table.columns]
        entries = [
            (row, f"row {number}")
            for number, row in enumerate(table.to_dict("records"), start=2)
            if any(str(v).strip() for v in row.values())
        ]
    measures: dict[str, Measure] = {}
    for fields, where in entries:
        measure = _measure_from_fields(fields, where, path.name)
        if measure.name in measures:
            raise DataError(
                f"{where}: measure {measure.name} is defined twice",
                file=path.name,
                fix="keep one entry per measure",
            )
        measures[measure.name] = measure
    registry.update(measures)
    return registry


def with_measures(
    extra: str | Path | dict[str, Measure] | None,
    base: dict[str, Measure] | None = None,
) -> dict[str, Measure]:
    """A registry: ``base`` (default :data:`MEASURES`) plus the measures of ``extra``.

    ``extra`` is a measures file (see :func:`read_measures`) or a dict of measures; an entry with
    a known name replaces the shipped definition. The package-wide registry is left unchanged.
    """
    if extra is None or isinstance(extra, (str, Path)):
        return read_measures(extra, base)
    return {**(MEASURES if base is None else base), **extra}
