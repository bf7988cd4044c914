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
    inequalities: pd.DataFrame | None = None,
    k: int | None = None,
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
    inequalities : DataFrame, optional
        Columns ``smaller`` and ``larger`` (cell ids): logical constraints a reader knows,
        ``value[smaller] <= value[larger]`` (NPRS pairs <= follow-ups <= discharges). Used only by
        the whole-system check (``k`` given).
    k : int, optional
        When given, after the line-by-line rounds the whole published system is attacked as an
        integer program (:func:`attacker_ranges`: every line and inequality at once, integer
        cells integer): while a suppressed cell marked ``protect`` (default: a whole count in
        1..k-1) is pinned to its single value, one more complementary cell next to it (in one of
        its lines or inequalities) is suppressed, and the line-by-line rounds run again. A pinned cell with
        a marker's bounds (``"<k"``: 1..k-1) is first *relaxed* instead: its bounds become
        ``0..inf`` (it must then be shown with the neutral marker, not ``"<k"``).

    Returns
    -------
    DataFrame
        ``cells`` with ``suppressed`` updated and bool columns ``secondary`` and (when ``k`` is
        given) ``relaxed``.

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

    def line_rounds() -> None:
        for _ in range(max_rounds):
            if has_links:
                linked = cells["suppressed"].groupby(cells["link"]).transform("any")
                newly = linked.fillna(False).astype(bool) & ~cells["suppressed"]
                _mark_secondary(cells, newly[newly].index)
            picks = _complementary_picks(cells, lines)
            if picks.empty:
                break
            _mark_secondary(cells, picks)

    line_rounds()
    if k is None:
        return cells
    if inequalities is None:
        inequalities = pd.DataFrame({"smaller": [], "larger": []})
    if "protect" not in cells:
        cells["protect"] = small_count_mask(cells["value"], k=k) & (cells["value"] % 1 == 0)
    cells["relaxed"] = False
    for _ in range(max_rounds):
        targets = cells.index[cells["suppressed"] & cells["protect"].astype(bool)]
        pinned = attacker_ranges(cells, lines, inequalities, targets=targets, pinned_only=True)
        if pinned.empty:
            break
        # first what the markers say: "<k" cells that pin each other (four "<5" clinicians in
        # a "<5" clinic are 1 each) are shown with the neutral marker instead (bounds 0..inf)
        marked = pinned[
            ((cells.loc[pinned, "lo"] > 0) | (cells.loc[pinned, "hi"] < np.inf)).to_numpy()
        ]
        marked = marked[~cells.loc[marked, "relaxed"].to_numpy(dtype=bool)]
        if len(marked):
            cells.loc[marked, ["lo", "hi"]] = [0.0, np.inf]
            cells.loc[marked, "relaxed"] = True
            continue
        picks = _neighbour_picks(cells, lines, inequalities, pinned)
        if picks.empty:
            raise RuntimeError(f"cells {list(pinned)} cannot be protected")
        _mark_secondary(cells, picks)
        line_rounds()
    return cells


def _neighbour_picks(
    cells: pd.DataFrame, lines: pd.DataFrame, inequalities: pd.DataFrame, pinned: pd.Index
) -> pd.Index:
    """For each pinned cell, its smallest published non-zero neighbour (line or inequality).

    Neighbours are searched one step out first (the cells sharing a line or an inequality with
    the pinned cell), then through suppressed neighbours, until a published cell is found.
    """
    pairs = pd.concat(
        [
            lines.merge(lines, on="line")[["cell_x", "cell_y"]].set_axis(["a", "b"], axis=1),
            inequalities.set_axis(["a", "b"], axis=1),
            inequalities[["larger", "smaller"]].set_axis(["a", "b"], axis=1),
        ],
        ignore_index=True,
    )
    pairs = pairs[pairs["a"] != pairs["b"]].drop_duplicates()
    open_ = cells.index[~cells["suppressed"] & ~cells["hidden"].astype(bool)]
    picks = []
    for cell in pinned:
        seen, frontier = {cell}, {cell}
        while frontier:
            near = set(pairs.loc[pairs["a"].isin(frontier), "b"]) - seen
            candidates = cells.loc[list(near & set(open_))]
            candidates = candidates[candidates["value"].abs() > _TOLERANCE]
            if not candidates.empty:
                picks.append(candidates.sort_values("size", kind="stable").index[0])
                break
            seen |= near
            frontier = {c for c in near if cells.at[c, "suppressed"]}
    return pd.Index(pd.unique(pd.Series(picks, dtype=object)))


def attacker_ranges(
    cells: pd.DataFrame,
    lines: pd.DataFrame,
    inequalities: pd.DataFrame | None = None,
    *,
    targets: pd.Index | None = None,
    pinned_only: bool = False,
) -> pd.DataFrame | pd.Index:
    """What a reader can work out about suppressed cells: each one's minimum and maximum.

    The reader's integer program: the suppressed cells are unknowns within their bounds
    (``lo``, ``hi``; integer where the column ``integer`` says so, default: whole values), every
    line ``sum(sign * value) == 0`` holds with the published cells filled in, and every
    inequality ``value[smaller] <= value[larger]`` holds. Each target is minimised and
    maximised (HiGHS via :func:`scipy.optimize.milp`), one connected block of unknowns at a time.

    Parameters
    ----------
    cells, lines
        As in :func:`protect_cells`.
    inequalities : DataFrame, optional
        Columns ``smaller``, ``larger`` (cell ids).
    targets : Index, optional
        Suppressed cells to bound; default all suppressed cells. The maximum is only computed
        when the minimum equals the cell's value (otherwise the range is already wider).

    Returns
    -------
    DataFrame
        Indexed by target, columns ``lo`` and ``hi`` (``hi = inf`` when only the minimum was
        needed). With ``pinned_only``, only the Index of targets pinned to their value: any
        feasible solution in which a target differs from its value proves it is not pinned, so
        the targets of a block are first moved together (their sum minimised and maximised,
        then random signed sums) and only those that never moved are solved one by one.
    """
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    unknown = cells.index[cells["suppressed"].astype(bool)]
    if targets is None:
        targets = unknown
    if len(targets) == 0:
        return pd.DataFrame({"lo": [], "hi": []}, index=pd.Index([], dtype=cells.index.dtype))
    var = pd.Series(np.arange(len(unknown)), index=unknown)
    rows = [lines[["line", "cell", "sign"]].assign(kind="eq")]
    if inequalities is not None and len(inequalities):
        n = np.arange(len(inequalities))
        rows.append(
            pd.DataFrame({"line": n, "cell": inequalities["smaller"].to_numpy(), "sign": 1}).assign(
                kind="le"
            )
        )
        rows.append(
            pd.DataFrame({"line": n, "cell": inequalities["larger"].to_numpy(), "sign": -1}).assign(
                kind="le"
            )
        )
    terms = pd.concat(rows, ignore_index=True)
    terms["row"] = terms.groupby(["kind", "line"], sort=False).ngroup()
    terms["value"] = cells["value"].reindex(terms["cell"]).to_numpy()
    is_unknown = terms["cell"].isin(unknown)
    known = (terms["sign"] * terms["value"]).where(~is_unknown, 0.0).groupby(terms["row"]).sum()
    kind = terms.groupby("row")["kind"].first()
    rhs = -known
    lb = np.where(kind == "eq", rhs, -np.inf)
    ub = rhs.to_numpy()
    coef = terms[is_unknown]
    n_rows, n_vars = len(kind), len(unknown)
    matrix = coo_matrix(
        (coef["sign"].astype(float), (coef["row"], var.reindex(coef["cell"]).to_numpy())),
        shape=(n_rows, n_vars),
    ).tocsr()
    # blocks: unknowns sharing a row
    incidence = matrix.copy()
    incidence.data[:] = 1.0
    _, block = connected_components(incidence.T @ incidence, directed=False)
    lo = cells.loc[unknown, "lo"].astype(float).fillna(0.0).to_numpy()
    hi = cells.loc[unknown, "hi"].astype(float).fillna(np.inf).to_numpy()
    if "integer" in cells:
        integer = cells.loc[unknown, "integer"].astype(bool).to_numpy()
    else:
        integer = (cells.loc[unknown, "value"] % 1 == 0).to_numpy()
    values = cells.loc[unknown, "value"].to_numpy(dtype=float)
    row_vars = np.asarray((abs(matrix) > 0).sum(axis=1)).ravel()

    problems: dict[int, tuple] = {}
    result = {}
    target_vars = var.reindex(targets).to_numpy()
    if pinned_only:
        rng = np.random.default_rng(0)
        remaining = np.ones(len(target_vars), dtype=bool)
        for b in np.unique(block[target_vars]):
            members = np.flatnonzero(block == b)
            sub_rows = np.flatnonzero(
                (np.asarray(abs(matrix[:, members]).sum(axis=1)).ravel() > 0) & (row_vars > 0)
            )
            a = matrix[sub_rows][:, members]
            problems[b] = (
                members,
                LinearConstraint(a, lb[sub_rows], ub[sub_rows]) if len(sub_rows) else (),
                Bounds(lo[members], hi[members]),
            )
            mine = np.flatnonzero(block[target_vars] == b)
            position = np.searchsorted(members, target_vars[mine])
            idle = 0
            for attempt in range(4 * len(mine) + 4):
                open_ = mine[remaining[mine]]
                if len(open_) == 0 or idle >= 2:
                    break
                weights = (1.0, -1.0)[attempt] if attempt < 2 else rng.choice([-1.0, 1.0])
                c = np.zeros(len(members))
                where = np.searchsorted(members, target_vars[open_])
                c[where] = weights if np.ndim(weights) == 0 else 1.0
                if attempt >= 2:
                    c[where] = rng.choice([-1.0, 1.0], size=len(where))
                found = milp(
                    c,
                    constraints=problems[b][1],
                    integrality=integer[members],
                    bounds=problems[b][2],
                )
                if found.x is None:
                    raise RuntimeError("the published system is infeasible")
                moved = np.abs(found.x[position] - values[target_vars[mine]]) >= 0.5
                before = remaining[mine].sum()
                remaining[mine[moved]] = False
                idle = idle + 1 if remaining[mine].sum() == before else 0
        targets = pd.Index(targets)[remaining]
    for target in targets:
        i = var[target]
        if block[i] not in problems:
            members = np.flatnonzero(block == block[i])
            sub_rows = np.flatnonzero(
                (np.asarray(abs(matrix[:, members]).sum(axis=1)).ravel() > 0) & (row_vars > 0)
            )
            a = matrix[sub_rows][:, members]
            problems[block[i]] = (
                members,
                LinearConstraint(a, lb[sub_rows], ub[sub_rows]) if len(sub_rows) else (),
                Bounds(lo[members], hi[members]),
            )
        members, constraints, bounds = problems[block[i]]
        position = int(np.flatnonzero(members == i)[0])
        c = np.zeros(len(members))
        c[position] = 1.0
        low = milp(c, constraints=constraints, integrality=integer[members], bounds=bounds)
        if low.x is None:
            raise RuntimeError(f"the published system is infeasible around cell {target!r}")
        low_value = float(low.x[position])
        high_value = np.inf
        if abs(low_value - values[i]) < 0.5:
            high = milp(-c, constraints=constraints, integrality=integer[members], bounds=bounds)
            high_value = float(high.x[position]) if high.x is not None else np.inf
        result[target] = (low_value, high_value)
    if pinned_only:
        return pd.Index([t for t, (low, high) in result.items() if high - low < 0.5])
    return pd.DataFrame.from_dict(result, orient="index", columns=["lo", "hi"])


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
