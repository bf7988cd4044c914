"""Vectorised parsers from text cells to values, each returning the values and a failure reason.

A parser never guesses: a cell it cannot read unambiguously gets a reason (a plain-language
string for the quarantine) and a missing value. Empty cells are missing, not failures; whether a
missing value is allowed is the validator's decision.
"""

from __future__ import annotations

import calendar
import functools
import re

import numpy as np
import pandas as pd

_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("jan", "january", "januar", "janv", "janvier", "gen", "ene", "enero"),
            ("feb", "february", "februar", "fev", "fevr", "fevrier", "febrero"),
            ("mar", "march", "marz", "maerz", "mars", "marzo"),
            ("apr", "april", "avr", "avril", "abr", "abril", "aprile"),
            ("may", "mai", "mayo", "maggio"),
            ("jun", "june", "juni", "juin", "junio", "giu", "giugno"),
            ("jul", "july", "juli", "juil", "juillet", "julio", "lug", "luglio"),
            ("aug", "august", "aout", "ago", "agosto"),
            ("sep", "sept", "september", "septembre", "septiembre", "set", "settembre"),
            ("oct", "october", "okt", "oktober", "octobre", "octubre", "ott", "ottobre"),
            ("nov", "november", "novembre", "noviembre"),
            ("dec", "december", "dez", "dezember", "decembre", "dic", "diciembre", "dicembre"),
        ],
        start=1,
    )
    for name in names
}

#: Dates before this year are refused as implausible (typos such as 1026-02-05).
MIN_PLAUSIBLE_YEAR = 1900
#: Dates after this year are refused as implausible placeholders (9999-12-31); nearer future
#: dates are the loader's "in the future" rule.
MAX_PLAUSIBLE_YEAR = 2200

_TIME = r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
_ISO = rf"^(?P<y>\d{{4}})[-/.](?P<m>\d{{1,2}})[-/.](?P<d>\d{{1,2}}){_TIME}$"
_ISO_BASIC = r"^(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})$"
_NUMERIC = rf"^(?P<a>\d{{1,2}})[-/.](?P<b>\d{{1,2}})[-/.](?P<y>\d{{4}}){_TIME}$"
_SHORT_YEAR = r"^\d{1,2}[-/.]\d{1,2}[-/.]\d{2}$"
_DAY_MONTH_NAME = r"^(?P<d>\d{1,2})\.?[ -](?P<mon>[a-zA-Z]+)\.?,?[ -](?P<y>\d{4})$"
_MONTH_NAME_DAY = r"^(?P<mon>[a-zA-Z]+)\.?[ -](?P<d>\d{1,2}),?[ -](?P<y>\d{4})$"


def _fold_month(text: pd.Series) -> pd.Series:
    folded = (
        text.str.lower()
        .str.normalize("NFKD")
        .str.encode("ascii", errors="ignore")
        .str.decode("ascii")
    )
    return folded.map(_MONTHS)


def _per_unique_value(parser):
    """Run ``parser`` once per distinct cell text: logs repeat dates and numbers endlessly."""

    @functools.wraps(parser)
    def wrapper(cells: pd.Series, **options) -> tuple[pd.Series, pd.Series]:
        if isinstance(cells.dtype, pd.CategoricalDtype):
            # cells already coded by their distinct texts (the loader's readers): parse the
            # categories, spread by the codes; the reasons stay coded too
            codes = cells.cat.codes.to_numpy().astype(np.int64)
            texts = pd.Series(cells.cat.categories.astype(object), dtype=object)
            if (codes < 0).any():
                texts = pd.concat([texts, pd.Series([""], dtype=object)], ignore_index=True)
                codes = np.where(codes < 0, len(texts) - 1, codes)
            values, reasons = parser(texts, **options)
            reason_codes, reason_texts = pd.factorize(reasons.astype(object))
            return (
                pd.Series(values.to_numpy()[codes], index=cells.index),
                pd.Series(
                    pd.Categorical.from_codes(
                        reason_codes[codes], categories=pd.Index(reason_texts, dtype=object)
                    ),
                    index=cells.index,
                ),
            )
        codes, uniques = pd.factorize(cells.fillna("").astype(str))
        values, reasons = parser(pd.Series(uniques, dtype=object), **options)
        if len(uniques) == 0:
            return (
                pd.Series(values.iloc[:0].to_numpy(), index=cells.index[:0]).reindex(cells.index),
                pd.Series("", index=cells.index, dtype=object),
            )
        return (
            pd.Series(values.to_numpy()[codes], index=cells.index),
            pd.Series(reasons.to_numpy()[codes], index=cells.index, dtype=object),
        )

    return wrapper


@_per_unique_value
def parse_dates(cells: pd.Series, *, dayfirst: bool | None = None) -> tuple[pd.Series, pd.Series]:
    """Parse date cells without guessing the day/month order.

    Years before :data:`MIN_PLAUSIBLE_YEAR` or after :data:`MAX_PLAUSIBLE_YEAR` are refused as
    implausible (so no date outside pandas' nanosecond range ever reaches a conversion).
    Accepted: ISO ``2026-04-03`` (also with ``/`` or ``.``, with a time, or ``20260403``);
    ``03/04/2026`` style (``/``, ``.`` or ``-``) when the order is known — from ``dayfirst``, or
    because one part is above 12, or both parts are equal; month names (``3 Apr 2026``,
    ``April 3, 2026``). Two-digit years are refused (the century would be a guess).

    Returns
    -------
    dates : Series of datetime64 (NaT where empty or failed), normalised to midnight
    reasons : Series of str, empty string where the cell parsed or was empty
    """
    fast = _plain_iso_dates(cells)
    if fast is None:
        return _parse_dates_general(cells, dayfirst=dayfirst)
    hit, days = fast
    dates = np.full(len(cells), np.datetime64("NaT"), dtype="datetime64[ns]")
    dates[hit] = days.astype("datetime64[ns]")
    reason = np.full(len(cells), "", dtype=object)
    if not hit.all():
        rest = ~hit
        rest_dates, rest_reasons = _parse_dates_general(cells[rest], dayfirst=dayfirst)
        dates[rest] = rest_dates.to_numpy(dtype="datetime64[ns]")
        reason[rest] = rest_reasons.to_numpy(dtype=object)
    return pd.Series(dates, index=cells.index), pd.Series(reason, index=cells.index)


#: The one date form a machine export writes: exactly ``yyyy-mm-dd`` in ASCII digits.
_PLAIN_ISO = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _plain_iso_dates(cells: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """The cells :func:`parse_dates` reads to a date without any doubt, found in one pass.

    A cell counts when it is exactly ``yyyy-mm-dd`` (ASCII digits, no space) and names a day
    that exists in a plausible year (:data:`MIN_PLAUSIBLE_YEAR`-:data:`MAX_PLAUSIBLE_YEAR`):
    for such a text the general parser's only applicable rule (the ISO pattern) gives that day
    and no reason. Every other cell goes through the general parser. Returns the mask of such
    cells and their days (``datetime64[D]``), or ``None`` when there is none. Empty (or
    whitespace-only) cells are taken too: the general parser gives them no date and no reason.
    """
    hit = np.zeros(len(cells), dtype=bool)
    found = []
    for position, text in enumerate(cells.to_numpy(dtype=object)):
        if type(text) is not str:
            continue
        if len(text) == 10 and _PLAIN_ISO.fullmatch(text) is not None:
            year, month, day = int(text[:4]), int(text[5:7]), int(text[8:])
            if (
                MIN_PLAUSIBLE_YEAR <= year <= MAX_PLAUSIBLE_YEAR
                and 1 <= month <= 12
                and 1 <= day <= calendar.monthrange(year, month)[1]
            ):
                hit[position] = True
                found.append(text)
        elif not text.strip():  # an empty cell: no date and no reason
            hit[position] = True
            found.append("NaT")
    if not found:
        return None
    return hit, np.array(found, dtype="datetime64[D]")


def _parse_dates_general(cells: pd.Series, *, dayfirst: bool | None) -> tuple[pd.Series, pd.Series]:
    """:func:`parse_dates` for any cells (every accepted form and every reason)."""
    text = cells.fillna("").astype(str).str.strip()
    n = len(text)
    year = np.full(n, np.nan)
    month = np.full(n, np.nan)
    day = np.full(n, np.nan)
    reason = np.full(n, "", dtype=object)
    matched = np.zeros(n, dtype=bool)

    for pattern in (_ISO, _ISO_BASIC):
        parts = text.str.extract(pattern)
        hit = parts["y"].notna().to_numpy() & ~matched
        year[hit] = parts.loc[hit, "y"].astype(float)
        month[hit] = parts.loc[hit, "m"].astype(float)
        day[hit] = parts.loc[hit, "d"].astype(float)
        matched |= hit

    for pattern in (_DAY_MONTH_NAME, _MONTH_NAME_DAY):
        parts = text.str.extract(pattern)
        hit = parts["y"].notna().to_numpy() & ~matched
        if hit.any():
            months = _fold_month(parts.loc[hit, "mon"]).to_numpy(dtype=float)
            year[hit] = parts.loc[hit, "y"].astype(float)
            day[hit] = parts.loc[hit, "d"].astype(float)
            month[hit] = months
            unknown_month = np.zeros(n, dtype=bool)
            unknown_month[hit] = np.isnan(months)
            reason[unknown_month] = "not a date: unknown month name"
        matched |= hit

    parts = text.str.extract(_NUMERIC)
    hit = parts["y"].notna().to_numpy() & ~matched
    if hit.any():
        a = parts["a"].astype(float).to_numpy()
        b = parts["b"].astype(float).to_numpy()
        if dayfirst is None:
            a_is_day = hit & (a > 12) & (b <= 12)
            b_is_day = hit & (b > 12) & (a <= 12)
            same = hit & (a == b)
            ambiguous = hit & (a <= 12) & (b <= 12) & (a != b)
            reason[ambiguous] = (
                "ambiguous date: day/month order unknown; "
                "pass dayfirst=True (dd/mm/yyyy) or dayfirst=False (mm/dd/yyyy)"
            )
            neither = hit & (a > 12) & (b > 12)
            reason[neither] = "impossible date: neither part can be the month"
            day_part = np.where(a_is_day | same, a, np.where(b_is_day, b, np.nan))
            month_part = np.where(a_is_day | same, b, np.where(b_is_day, a, np.nan))
        else:
            day_part, month_part = (a, b) if dayfirst else (b, a)
        year[hit] = parts.loc[hit, "y"].astype(float)
        day[hit] = day_part[hit]
        month[hit] = month_part[hit]
    matched |= hit

    empty = (text == "").to_numpy()
    short_year = text.str.match(_SHORT_YEAR).to_numpy() & ~matched
    reason[short_year] = "two-digit year: write the year with four digits"
    unreadable = ~matched & ~empty & ~short_year
    reason[unreadable] = "not a date"

    early = matched & (reason == "") & (year < MIN_PLAUSIBLE_YEAR)
    reason[early] = f"implausible date: before {MIN_PLAUSIBLE_YEAR}"
    late = matched & (reason == "") & (year > MAX_PLAUSIBLE_YEAR)
    reason[late] = (
        f"implausible date: after {MAX_PLAUSIBLE_YEAR} (a placeholder such as 9999-12-31?)"
    )

    candidate = matched & (reason == "")
    components = pd.DataFrame(
        {
            "year": np.where(candidate, year, 2000),
            "month": np.where(candidate, month, 1),
            "day": np.where(candidate, day, 1),
        }
    )
    valid_range = (
        (components["month"].between(1, 12)) & (components["day"].between(1, 31))
    ).to_numpy()
    components.loc[~valid_range, ["year", "month", "day"]] = [2000, 1, 1]
    dates = pd.to_datetime(components, errors="coerce").astype("datetime64[ns]")
    impossible = candidate & (~valid_range | dates.isna().to_numpy())
    reason[impossible] = "impossible date (no such day)"
    ok = candidate & ~impossible
    dates = dates.where(ok)
    return pd.Series(dates.to_numpy(), index=cells.index), pd.Series(reason, index=cells.index)


_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_NOT_A_NUMBER = "not a number"
_BOTH_MARKS = "ambiguous number: both '.' and ',' in it"


@_per_unique_value
def parse_numbers(cells: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse numbers written with a ``.`` or ``,`` decimal mark.

    ``3,5`` and ``3.5`` are 3.5; a cell with both marks (``1.234,5``) is refused rather than
    guessed, as is anything that is not a plain number.

    Returns
    -------
    values : float64 Series (NaN where empty or failed)
    reasons : str Series, empty where the cell parsed or was empty
    """
    items = cells.to_numpy(dtype=object)
    if all(type(item) is str for item in items):
        return _parse_number_texts(items, cells.index)
    return _parse_numbers_series(cells)


def _parse_numbers_series(cells: pd.Series) -> tuple[pd.Series, pd.Series]:
    """:func:`parse_numbers` as Series expressions (any cells, also missing ones)."""
    text = (
        cells.fillna("")
        .astype(str)
        .str.replace("\u00a0", "", regex=False)
        .str.replace("\u202f", "", regex=False)
        .str.strip()
    )
    both_marks = text.str.contains(".", regex=False) & text.str.contains(",", regex=False)
    normalised = text.str.replace(",", ".", regex=False)
    valid = normalised.str.fullmatch(_NUMBER.pattern)
    values = pd.to_numeric(normalised.where(valid & ~both_marks), errors="coerce").astype("float64")
    reason = pd.Series("", index=cells.index, dtype=object)
    reason[(text != "") & ~valid] = _NOT_A_NUMBER
    reason[(text != "") & both_marks] = _BOTH_MARKS
    return values, reason


def _parse_number_texts(items: np.ndarray, index: pd.Index) -> tuple[pd.Series, pd.Series]:
    """:func:`parse_numbers` of text cells in one Python pass (each distinct text once): the
    same steps as the Series expression (remove no-break spaces, strip, refuse both marks,
    ``,`` -> ``.``, the same full match), the values converted by the same ``pd.to_numeric``."""
    normalised = np.full(len(items), np.nan, dtype=object)
    reason = np.full(len(items), "", dtype=object)
    for position, item in enumerate(items):
        text = item.replace("\u00a0", "").replace("\u202f", "").strip()
        if not text:
            continue
        dotted = text.replace(",", ".")
        if "." in text and "," in text:
            reason[position] = _BOTH_MARKS
        elif _NUMBER.fullmatch(dotted) is None:
            reason[position] = _NOT_A_NUMBER
        else:
            normalised[position] = dotted
    values = pd.to_numeric(pd.Series(normalised, index=index, dtype="str"), errors="coerce")
    values = values.astype("float64")
    return values, pd.Series(reason, index=index, dtype=object)


@_per_unique_value
def parse_pain(cells: pd.Series, *, scale_max: float) -> tuple[pd.Series, pd.Series]:
    """Parse pain scores, accepting a hand-typed ``"3/10"`` (or ``"30/100"`` on a 0-100 scale).

    A written denominator must match the scale; out-of-range values are flagged, never clipped.
    """
    text = cells.fillna("").astype(str).str.strip()
    fraction = text.str.extract(r"^\s*([0-9.,]+)\s*/\s*(\d+)\s*$")
    has_fraction = fraction[0].notna()
    wrong_scale = has_fraction & (fraction[1].astype(float) != scale_max)
    values, reason = parse_numbers(text.where(~has_fraction, fraction[0]))
    reason[wrong_scale] = f"pain written on another scale (expected /{scale_max:g})"
    values[wrong_scale] = np.nan
    out_of_range = values.notna() & ((values < 0) | (values > scale_max))
    reason[out_of_range] = f"pain outside the 0-{scale_max:g} scale (never clipped)"
    return values.where(~out_of_range), reason


@_per_unique_value
def parse_durations(cells: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse durations in seconds: a number (``30``, ``7,5``) or a clock ``mm:ss`` / ``h:mm:ss``.

    ``0:00:30``, ``00:30`` and ``30`` are all 30 s; ``1:02:03`` is 3723 s.

    Returns
    -------
    seconds : float64 Series (NaN where empty or failed)
    reasons : str Series, empty where the cell parsed or was empty
    """
    text = cells.fillna("").astype(str).str.strip()
    parts = text.str.extract(r"^(?:(?P<h>\d+):)?(?P<m>\d{1,2}):(?P<s>\d{1,2}(?:[.,]\d+)?)$")
    clock = parts["m"].notna()
    values, reasons = parse_numbers(text.where(~clock, ""))
    if clock.any():
        hours = parts.loc[clock, "h"].fillna("0").astype(float)
        minutes = parts.loc[clock, "m"].astype(float)
        secs = parts.loc[clock, "s"].str.replace(",", ".", regex=False).astype(float)
        values[clock] = hours * 3600 + minutes * 60 + secs
    reasons = reasons.where(reasons == "", "not a duration (write seconds, mm:ss or h:mm:ss)")
    return values, reasons


_TRUE = {"true", "t", "yes", "y", "1", "ja", "oui", "si", "x"}
_FALSE = {"false", "f", "no", "n", "0", "nein", "non"}


@_per_unique_value
def parse_bool(cells: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse yes/no cells (true/false, yes/no, y/n, 1/0)."""
    text = cells.fillna("").astype(str).str.strip().str.lower()
    values = pd.Series(pd.NA, index=cells.index, dtype="boolean")
    values[text.isin(_TRUE)] = True
    values[text.isin(_FALSE)] = False
    reason = pd.Series("", index=cells.index, dtype=object)
    reason[(text != "") & values.isna()] = "not yes/no (use true or false)"
    return values, reason
