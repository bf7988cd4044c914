"""Registry of patient-reported outcome measures: range, direction and MCID.

Defaults follow CONTRACT §1 (outcomes). A clinic or study can register its own measure with
:func:`register_measure`, or pass a modified copy of :data:`MEASURES` to the functions that use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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


#: Columns of a measures file (:func:`read_measures`); the last four are optional.
MEASURE_FILE_COLUMNS = (
    "name",
    "low",
    "high",
    "higher_is_better",
    "mcid_points",
    "mcid_pct",
    "label",
    "source",
    "aliases",
)


def read_measures(path, base: dict[str, Measure] | None = None) -> dict[str, Measure]:
    """The shipped registry with a study's own measures from a CSV file merged over it.

    The file has one row per measure with the columns ``name, low, high, higher_is_better,
    mcid_points`` and optionally ``mcid_pct, label, source, aliases`` (aliases separated by
    ``|``). ``higher_is_better`` is ``true`` or ``false``. A row whose name is already known
    replaces that measure. ``path=None`` returns ``base`` (default :data:`MEASURES`) unchanged.

    Raises
    ------
    DataError
        When the file lacks a column, or a value is not a number / not true or false, or
        ``low >= high``.
    """
    import pandas as pd

    from hipdata.errors import DataError

    base = MEASURES if base is None else base
    if path is None:
        return base
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read the measures file: {exc}", file=str(path)) from None
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = [c for c in MEASURE_FILE_COLUMNS[:5] if c not in frame.columns]
    if missing:
        raise DataError(
            f"the measures file lacks {', '.join(missing)}",
            file=str(path),
            fix="give the columns " + ", ".join(MEASURE_FILE_COLUMNS),
        )
    measures = dict(base)
    for row_number, row in enumerate(frame.to_dict(orient="records"), start=2):

        def number(column: str, *, optional: bool = False, _row=row, _n=row_number):
            text = str(_row.get(column, "")).strip()
            if optional and not text:
                return None
            try:
                return float(text)
            except ValueError:
                raise DataError(
                    f"row {_n}, column {column}: {text!r} is not a number", file=str(path)
                ) from None

        flag = str(row["higher_is_better"]).strip().lower()
        if flag not in ("true", "false"):
            raise DataError(
                f"row {row_number}, column higher_is_better: {flag!r} is not true or false",
                file=str(path),
            )
        low, high = number("low"), number("high")
        if not low < high:
            raise DataError(
                f"row {row_number}: low {low:g} is not below high {high:g}", file=str(path)
            )
        name = str(row["name"]).strip().lower()
        if not name:
            raise DataError(f"row {row_number}, column name: empty measure name", file=str(path))
        aliases = tuple(a.strip() for a in str(row.get("aliases", "")).split("|") if a.strip())
        measures[name] = Measure(
            name,
            low,
            high,
            flag == "true",
            number("mcid_points"),
            number("mcid_pct", optional=True),
            str(row.get("label", "")).strip(),
            str(row.get("source", "")).strip(),
            aliases,
        )
    return measures
