"""Small-cell suppression: one decision shared by the PDF, HTML and CSV outputs.

Rules (CONTRACT §6, the reports issue)
--------------------------------------
1. **Primary suppression.** Every count from 1 to ``k - 1`` (``k`` =
   :data:`hipdata.protocol.SUPPRESSION_K`) is suppressed and displayed as ``"<k"``; 0 is shown.
2. **Secondary (complementary) suppression.** Published totals must not give a suppressed cell
   back. Each *line* is an equation ``total = sum of members`` (a table row or column with its
   margin; a clinic and its clinicians; the network and its clinics). A reader who knows the
   published cells and what the markers say (a ``"<k"`` cell lies in ``1..k-1``, a complementary
   cell, shown as :data:`SECONDARY_MARKER`, in ``k..``) can bound each suppressed cell of a line.
   While some line pins a suppressed non-zero cell to a single value (the simplest case: exactly
   one suppressed cell in a row whose total is published; also e.g. two ``"<5"`` cells whose sum
   the total reveals to be 2), the next-smallest non-zero published member of that line is
   suppressed too (or, when there is none, the line's total). This repeats until no line changes.
3. **Derived figures.** A percentage or mean is suppressed when its numerator or denominator is.

The check is made line by line, as statistical offices' standard "at least two suppressed cells
per line" rule is: it does not solve the whole system of equations at once, so unusual patterns
spanning several lines could in principle narrow a cell further. Zeros are never protected
(they are published by rule 1).

Every function returns a :class:`Suppressed` pair ``(display, mask)``: the strings to print and
the boolean mask, so every output format shows exactly the same cells.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from hipdata.protocol import SUPPRESSION_K

#: How a cell suppressed only to protect another cell is displayed.
SECONDARY_MARKER = "*"
#: Label pandas gives margins (``pd.crosstab(..., margins=True)``, ``pivot_table``).
MARGINS_NAME = "All"
_TOLERANCE = 1e-9


class Suppressed(NamedTuple):
    """The result of a suppression: what to print and which cells are hidden."""

    #: The table as strings, suppressed cells replaced by their marker.
    display: pd.DataFrame | pd.Series
    #: ``True`` where a cell is suppressed (same shape and labels as ``display``).
    mask: pd.DataFrame | pd.Series


def primary_marker(k: int = SUPPRESSION_K) -> str:
    """The display of a count from 1 to ``k - 1``: ``"<5"`` for the default ``k``."""
    return f"<{k}"


def small_count_mask(values: pd.Series | pd.DataFrame, *, k: int = SUPPRESSION_K):
    """``True`` where a value is a small count, 1 <= value <= k - 1 (NaN and 0 are not)."""
    return (values >= 1 - _TOLERANCE) & (values <= k - 1 + _TOLERANCE)


def _format_counts(values: pd.Series | pd.DataFrame):
    def one(value) -> str:
        if pd.isna(value):
            return ""
        return f"{value:.0f}" if float(value).is_integer() else f"{value:g}"

    return values.map(one)


def suppress_small_counts(
    counts: pd.Series | pd.DataFrame, *, k: int = SUPPRESSION_K
) -> Suppressed:
    """Primary suppression only: hide every count from 1 to ``k - 1``.

    Use this for a list of counts published *without* totals; when totals are shown, use
    :func:`suppress_table` (two-way tables with margins) or :func:`suppress_hierarchy` (clinics
    within the network, clinicians within their clinic) so the totals cannot give cells back.

    Parameters
    ----------
    counts : Series or DataFrame
        Non-negative whole counts (NaN allowed, displayed empty).
    k : int
        Smallest count that is shown; default :data:`hipdata.protocol.SUPPRESSION_K`.

    Returns
    -------
    Suppressed
        ``display`` (strings, ``"<k"`` where suppressed) and ``mask``.

    Examples
    --------
    >>> import pandas as pd
    >>> display, mask = suppress_small_counts(pd.Series([0, 3, 12]))
    >>> display.tolist(), mask.tolist()
    (['0', '<5', '12'], [False, True, False])
    """
    mask = small_count_mask(counts, k=k)
    display = _format_counts(counts).mask(mask, primary_marker(k))
    return Suppressed(display, mask)


def protect_cells(
    cells: pd.DataFrame,
    lines: pd.DataFrame,
    *,
    secondary_bounds: tuple[float, float] = (0.0, np.inf),
    max_rounds: int = 1000,
) -> pd.DataFrame:
    """Secondary suppression on any set of additive lines (the engine behind this module).

    Parameters
    ----------
    cells : DataFrame
        One row per cell (index = cell id) with columns ``value`` (float), ``suppressed`` (bool,
        the primary decision), ``lo`` and ``hi`` (what a reader knows about the cell's value when
        it is suppressed), and optionally ``size`` (preference order for complementary cells,
        default ``value``), ``hidden`` (bool: an unpublished cell, always unknown, never chosen,
        never itself protected), ``link`` (cells sharing a link are suppressed together, e.g.
        a mean's sum and its count) and ``secondary_lo`` / ``secondary_hi`` (per-cell bounds
        once the cell becomes a complementary suppression, overriding ``secondary_bounds``).
    lines : DataFrame
        Columns ``line`` (id), ``cell`` (a cell id) and ``sign``: +1 for the members of the line,
        -1 for its total, so that ``sum(sign * value) == 0`` on every line.
    secondary_bounds : (float, float)
        ``(lo, hi)`` given to a cell when it becomes a complementary suppression.
    max_rounds : int
        Safety limit on the number of rounds.

    Returns
    -------
    DataFrame
        ``cells`` with ``suppressed`` updated and a bool column ``secondary``.

    Notes
    -----
    For a line with unknown cells ``U`` (signed values ``y = sign * value`` with bounds) and known
    part ``K``, the reader knows ``sum(y_U) = -K``, so a cell's value lies in
    ``[max(lo_i, -K - sum_{j != i} hi_j), min(hi_i, -K - sum_{j != i} lo_j)]``. When that interval
    is a single non-zero value, the line gets one more complementary cell: its smallest non-zero
    published member, or its total when no member qualifies.
    """
    cells = cells.copy()
    if "size" not in cells:
        cells["size"] = cells["value"]
    if "hidden" not in cells:
        cells["hidden"] = False
    cells["suppressed"] = cells["suppressed"].astype(bool) | cells["hidden"].astype(bool)
    cells["secondary"] = False
    lines = lines[["line", "cell", "sign"]].reset_index(drop=True)
    has_links = "link" in cells and cells["link"].notna().any()
    for column, default in zip(("secondary_lo", "secondary_hi"), secondary_bounds, strict=True):
        if column not in cells:
            cells[column] = default

    for _ in range(max_rounds):
        if has_links:
            linked = cells["suppressed"].groupby(cells["link"]).transform("any")
            newly = linked.fillna(False).astype(bool) & ~cells["suppressed"]
            _mark_secondary(cells, newly[newly].index)
        picks = _complementary_picks(cells, lines)
        if picks.empty:
            break
        _mark_secondary(cells, picks)
    return cells


def _mark_secondary(cells: pd.DataFrame, index: pd.Index) -> None:
    cells.loc[index, ["suppressed", "secondary"]] = True
    cells.loc[index, "lo"] = cells.loc[index, "secondary_lo"]
    cells.loc[index, "hi"] = cells.loc[index, "secondary_hi"]


def _complementary_picks(cells: pd.DataFrame, lines: pd.DataFrame) -> pd.Index:
    """Cells to suppress next: one per line that still pins a suppressed cell to one value."""
    frame = lines.join(cells, on="cell")
    sign = frame["sign"].astype(float)
    unknown = frame["suppressed"]
    signed = sign * frame["value"]
    known_sum = signed.where(~unknown, 0.0).groupby(frame["line"]).transform("sum")
    # bounds of the signed unknowns y = sign * value
    y_lo = np.where(sign > 0, frame["lo"], -frame["hi"])
    y_hi = np.where(sign > 0, frame["hi"], -frame["lo"])
    y_lo = pd.Series(np.where(unknown, y_lo, 0.0), index=frame.index)
    y_hi = pd.Series(np.where(unknown, y_hi, 0.0), index=frame.index)
    others_lo = _sum_of_others(y_lo, frame["line"])
    others_hi = _sum_of_others(y_hi, frame["line"])
    lower = np.maximum(y_lo, -known_sum - others_hi)
    upper = np.minimum(y_hi, -known_sum - others_lo)
    pinned = (
        unknown
        & ~frame["hidden"].astype(bool)
        & (upper - lower <= _TOLERANCE)
        & (frame["value"].abs() > _TOLERANCE)
    )
    open_lines = frame.loc[pinned, "line"].unique()
    if len(open_lines) == 0:
        return pd.Index([])
    candidates = frame[
        frame["line"].isin(open_lines) & ~unknown & ~frame["hidden"].astype(bool)
    ].assign(is_total=lambda f: f["sign"] < 0)
    members = candidates[~candidates["is_total"] & (candidates["size"] > _TOLERANCE)]
    member_picks = (
        members.sort_values(["size", "cell"], kind="stable").groupby("line")["cell"].first()
    )
    totals = candidates[candidates["is_total"]].groupby("line")["cell"].first()
    total_picks = totals[~totals.index.isin(member_picks.index)]
    return pd.Index(pd.concat([member_picks, total_picks]).unique())


def _sum_of_others(bounds: pd.Series, line: pd.Series) -> pd.Series:
    """Per row, the sum of the other rows' bounds in its line (infinite when any other is)."""
    infinite = pd.Series(np.isinf(bounds), index=bounds.index)
    finite = bounds.where(~infinite, 0.0)
    finite_others = finite.groupby(line).transform("sum") - finite
    pos_inf = (bounds == np.inf).astype(int)
    neg_inf = (bounds == -np.inf).astype(int)
    pos_others = pos_inf.groupby(line).transform("sum") - pos_inf
    neg_others = neg_inf.groupby(line).transform("sum") - neg_inf
    # a sum holding both +inf and -inf bounds is unbounded either way; NaN compares as False
    return finite_others.mask(pos_others > 0, np.inf).mask(neg_others > 0, -np.inf)


def suppress_table(
    table: pd.DataFrame,
    *,
    k: int = SUPPRESSION_K,
    margins_name: str = MARGINS_NAME,
    secondary_marker: str = SECONDARY_MARKER,
) -> Suppressed:
    """Primary and secondary suppression of a two-way count table with margins.

    The margins are the row labelled ``margins_name`` (column totals) and the column labelled
    ``margins_name`` (row totals), as ``pd.crosstab(..., margins=True)`` makes them; a table may
    have either, both or neither. Every row is a line when the row-total column is present, every
    column when the total row is (the margins themselves included, with the grand total). Counts
    1..k-1 are shown as ``"<k"``, complementary suppressions as ``secondary_marker``.

    Parameters
    ----------
    table : DataFrame
        Non-negative whole counts; the margins must equal the sums they label.
    k : int
        Smallest count that is shown.
    margins_name : str
        Label of the total row and column.
    secondary_marker : str
        Display of a cell suppressed to protect another.

    Returns
    -------
    Suppressed
        ``display`` (strings) and ``mask`` (bool), labelled like ``table``.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"a": [3, 10, 13], "b": [20, 30, 50], "All": [23, 40, 63]},
    ...                  index=["x", "y", "All"])
    >>> suppress_table(t).display.loc["x"].tolist()
    ['<5', '*', '23']
    """
    values = table.astype("float64")
    n_rows, n_cols = values.shape
    cell_ids = np.arange(n_rows * n_cols).reshape(n_rows, n_cols)
    flat = values.to_numpy().ravel()
    primary = small_count_mask(pd.Series(flat), k=k).to_numpy()
    cells = pd.DataFrame(
        {
            "value": flat,
            "suppressed": primary,
            "lo": np.where(primary, 1.0, np.nan),
            "hi": np.where(primary, k - 1.0, np.nan),
        }
    )
    row_total = list(values.columns).index(margins_name) if margins_name in values.columns else None
    col_total = list(values.index).index(margins_name) if margins_name in values.index else None
    parts = []
    if row_total is not None:
        sign = np.where(np.arange(n_cols) == row_total, -1, 1)
        parts.append(
            pd.DataFrame(
                {
                    "line": np.repeat(np.arange(n_rows), n_cols),
                    "cell": cell_ids.ravel(),
                    "sign": np.tile(sign, n_rows),
                }
            )
        )
    if col_total is not None:
        sign = np.where(np.arange(n_rows) == col_total, -1, 1)
        parts.append(
            pd.DataFrame(
                {
                    "line": n_rows + np.repeat(np.arange(n_cols), n_rows),
                    "cell": cell_ids.T.ravel(),
                    "sign": np.tile(sign, n_cols),
                }
            )
        )
    if parts:
        cells = protect_cells(cells, pd.concat(parts), secondary_bounds=(float(k), np.inf))
    else:
        cells["secondary"] = False
    mask = pd.DataFrame(
        cells["suppressed"].to_numpy().reshape(n_rows, n_cols),
        index=table.index,
        columns=table.columns,
    )
    secondary = cells["secondary"].to_numpy().reshape(n_rows, n_cols)
    display = _format_counts(values).mask(mask, primary_marker(k)).mask(secondary, secondary_marker)
    return Suppressed(display, mask)


def suppress_hierarchy(
    frame: pd.DataFrame,
    *,
    value: str,
    node: str = "node",
    parent: str = "parent",
    by: Sequence[str] = (),
    k: int = SUPPRESSION_K,
    primary: pd.Series | None = None,
    marker: str = SECONDARY_MARKER,
) -> Suppressed:
    """Suppression of counts published at nested levels (network > clinic > clinician).

    Each node's count is the sum of its children's counts (clinicians sum to their clinic, clinics
    to the network); every parent with children is a line. A suppressed cell is shown with one
    neutral ``marker`` (or left empty, as in the long-form CSV), whether it is small or hidden to
    protect another, so a reader only knows that it is a count >= 0: the protection assumes no
    more. (Showing ``"<k"`` on some of them would tell more and need :func:`suppress_table`'s
    stricter bounds.)

    Parameters
    ----------
    frame : DataFrame
        One row per node (and per combination of the ``by`` columns), with the count in ``value``,
        the node id in ``node`` and its parent's node id in ``parent`` (missing for the root).
        Node ids must be unique within a ``by`` group (prefix them with the level if a clinic and
        a clinician could share an id).
    value, node, parent : str
        Column names.
    by : sequence of str
        Columns that split the frame into independent tables (e.g. quarter, indicator).
    k : int
        Smallest count that is shown.
    primary : Series of bool, optional
        The primary decision, aligned with ``frame``; default: ``value`` in 1..k-1.

    marker : str
        Display of a suppressed count.

    Returns
    -------
    Suppressed
        ``display`` (Series of strings) and ``mask`` (Series of bool), aligned with ``frame``.

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"node": ["all", "c1", "c2", "c3"],
    ...                   "parent": [None, "all", "all", "all"], "n": [60, 3, 27, 30]})
    >>> suppress_hierarchy(f, value="n").display.tolist()  # 3 alone would be 60 - 27 - 30
    ['60', '*', '*', '30']
    """
    by = list(by)
    values = frame[value].astype("float64").reset_index(drop=True)
    first = small_count_mask(values, k=k) if primary is None else primary.reset_index(drop=True)
    cells = pd.DataFrame(
        {"value": values, "suppressed": first.astype(bool), "lo": 0.0, "hi": np.inf}
    )
    keys = frame[by + [node, parent]].reset_index(drop=True)
    keys["cell"] = np.arange(len(keys))
    line_keys = by + [parent]
    members = keys[keys[parent].notna()]
    members = members.assign(line=members.groupby(line_keys).ngroup(), sign=1)
    totals = (
        members[line_keys + ["line"]]
        .drop_duplicates()
        .merge(keys[by + [node, "cell"]].rename(columns={node: parent}), on=line_keys)
        .assign(sign=-1)
    )
    lines = pd.concat([members[["line", "cell", "sign"]], totals[["line", "cell", "sign"]]])
    result = protect_cells(cells, lines)
    mask = pd.Series(result["suppressed"].to_numpy(), index=frame.index, name=value)
    display = _format_counts(frame[value]).mask(mask, marker)
    return Suppressed(display, mask)


def suppress_derived(
    values: pd.Series | pd.DataFrame,
    *masks: pd.Series | pd.DataFrame,
    decimals: int = 1,
    percent: bool = False,
    marker: str = SECONDARY_MARKER,
) -> Suppressed:
    """Suppress percentages or means whose numerator or denominator is suppressed.

    Parameters
    ----------
    values : Series or DataFrame
        The derived figures (proportions when ``percent`` is True: 0.25 is shown as ``25.0%``).
    *masks : Series or DataFrame of bool
        The suppression masks of the counts the figures are made of (numerator, denominator),
        labelled like ``values``.
    decimals : int
        Decimals shown.
    percent : bool
        Show proportions as percentages.
    marker : str
        Display of a suppressed figure.

    Returns
    -------
    Suppressed

    Examples
    --------
    >>> import pandas as pd
    >>> share = pd.Series([0.5, 0.25])
    >>> suppress_derived(share, pd.Series([False, True]), percent=True).display.tolist()
    ['50.0%', '*']
    """
    mask = values.notna() & False
    for other in masks:
        mask = mask | other.astype(bool)
    scale, suffix = (100.0, "%") if percent else (1.0, "")

    def one(value) -> str:
        return "" if pd.isna(value) else f"{value * scale:.{decimals}f}{suffix}"

    display = values.map(one).mask(mask, marker)
    return Suppressed(display, mask)
