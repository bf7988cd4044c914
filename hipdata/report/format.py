"""Numbers, counts, shares and intervals as the reports print them (one wording for both reports).

Counts go through the disclosure rules: :func:`format_count` (re-exported from
:mod:`hipdata.disclosure`) prints ``"<k"`` for 1..k-1, and :func:`scrub_small_numbers` applies the
same primary rule to whole numbers inside a sentence. Everything else is plain formatting: a
missing value prints as an en dash (:data:`DASH`).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from hipdata.disclosure import format_count, format_share, primary_marker
from hipdata.protocol import SUPPRESSION_K

__all__ = [
    "DASH",
    "format_count",
    "format_interval",
    "format_number",
    "format_p",
    "format_share",
    "scrub_small_numbers",
    "signed_change",
]

#: What a missing number prints as.
DASH = "–"


def format_number(value, decimals: int = 1) -> str:
    """A decimal for people (``2.1``, ``-0.4``, ``1,234.5``); an en dash when missing.

    >>> format_number(2.14), format_number(-0.04), format_number(None)
    ('2.1', '0.0', '–')
    """
    if value is None or pd.isna(value) or not np.isfinite(float(value)):
        return DASH
    text = f"{float(value):,.{decimals}f}"
    # "-0.0" reads as a signed zero: print it as plain zero
    return text.removeprefix("-") if float(text.replace(",", "")) == 0 else text


def format_interval(low, high, decimals: int = 1, *, percent: bool = False) -> str:
    """``"1.2 to 3.4"`` (``"41% to 55%"`` as percentages of proportions).

    >>> format_interval(1.23, 3.45), format_interval(0.41, 0.553, percent=True)
    ('1.2 to 3.5', '41% to 55%')
    """
    if pd.isna(low) or pd.isna(high):
        return DASH
    if percent:
        return f"{100 * low:.0f}% to {100 * high:.0f}%"
    return f"{format_number(low, decimals)} to {format_number(high, decimals)}"


def format_p(value) -> str:
    """A p-value: ``<0.001`` or three decimals.

    >>> format_p(0.0004), format_p(0.0312)
    ('<0.001', '0.031')
    """
    if pd.isna(value):
        return DASH
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def scrub_small_numbers(text: str, k: int = SUPPRESSION_K) -> str:
    """Replace stand-alone whole numbers 1..k-1 in a sentence by ``"<k"`` (model notes, remarks).

    >>> scrub_small_numbers("3 patients left out of 250 (1.5 per cent)")
    '<5 patients left out of 250 (1.5 per cent)'
    """

    def replace(match: re.Match) -> str:
        return primary_marker(k) if 1 <= int(match.group(0)) <= k - 1 else match.group(0)

    return re.sub(r"(?<![\w.\-,])\d+(?![\w.%,]|\.\d)", replace, text)


def signed_change(value: float, unit: str, decimals: int = 1) -> str:
    """``"fell by 0.4 points"`` / ``"rose by 0.4 points"`` / ``"stayed level"``.

    >>> signed_change(-0.42, "points"), signed_change(0.001, "points")
    ('fell by 0.4 points', 'stayed level (change 0.00 points)')
    """
    if pd.isna(value):
        return "could not be estimated"
    if round(abs(value), decimals) == 0:
        return f"stayed level (change {abs(value):.{decimals + 1}f} {unit})"
    verb = "rose" if value > 0 else "fell"
    return f"{verb} by {abs(value):.{decimals}f} {unit}"
