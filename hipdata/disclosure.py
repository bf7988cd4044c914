"""Small-cell suppression: one decision shared by the PDF, HTML and CSV outputs.

Rules (CONTRACT §6, the reports issue)
--------------------------------------
1. **Primary suppression.** Every count from 1 to ``k - 1`` (``k`` =
   :data:`hipdata.protocol.SUPPRESSION_K`) is suppressed and displayed as ``"<k"``; 0 is shown.
2. **Secondary (complementary) suppression.** Published totals must not give a suppressed cell
   back. Each *line* is an equation ``total = sum of members`` (a table row or column with its
   margin; a share's denominator with its numerator and complement; a clinic and its
   clinicians). A reader who knows the published cells and what the markers say (a ``"<k"`` cell
   lies in ``1..k-1``, a complementary cell, shown as :data:`SECONDARY_MARKER`, in ``k..``) can
   bound each suppressed cell of a line. While some line pins a suppressed non-zero cell to a
   single value, the next-smallest non-zero published member of that line is suppressed too (or,
   when there is none, the line's total). Then the whole published system (every line and every
   known inequality at once) is attacked as an integer program (:func:`attacker_ranges`), and
   more cells are suppressed until no small count is pinned (:func:`protect_cells`). A small
   count that its ``"<k"`` marker alone would give away is shown with the neutral marker.
3. **Derived figures.** A percentage or mean is suppressed when its numerator or denominator is.

Front-end and engine
--------------------
- :func:`suppress` (counts by name, the lines relating them, ``k``) is the one front-end the
  reports use: it returns a :class:`Suppressed` pair ``(display, mask)`` of the strings to print
  and the boolean mask, so every output format shows exactly the same cells. :func:`share_cells`
  builds ``n (%)`` cells on it, protecting each share's complement.
- :func:`protect_cells` is the engine (any cells, lines and inequalities, explicit bounds); the
  quarterly audit calls it directly for its linked tables.
- :func:`format_count` writes one count under the primary rule (``4,610``; ``"<5"``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from hipdata.protocol import SUPPRESSION_K

#: How a cell suppressed only to protect another cell is displayed.
SECONDARY_MARKER = "*"
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
    # Targets proven not pinned (a feasible attacker solution moved them). Between rounds the
    # attacker's system only loosens (more unknowns, each within its bounds at its true value;
    # relaxed bounds wider), so such a witness stays feasible and the target stays unpinned:
    # only the other targets are attacked again (checked by _loosened, else all are).
    free = pd.Index([], dtype=cells.index.dtype)
    before = pairs = None
    for _ in range(max_rounds):
        targets = cells.index[cells["suppressed"] & cells["protect"].astype(bool)]
        if before is not None and not _loosened(before, cells):
            free = free[:0]
        check = targets[~targets.isin(free)]
        pinned = attacker_ranges(cells, lines, inequalities, targets=check, pinned_only=True)
        free = free.append(check[~check.isin(pinned)])
        before = cells[["suppressed", "lo", "hi", "value"]].copy()
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
        if pairs is None:  # the same every round
            pairs = _neighbour_pairs(lines, inequalities)
        picks = _neighbour_picks(cells, pairs, pinned)
        if picks.empty:
            raise RuntimeError(f"cells {list(pinned)} cannot be protected")
        _mark_secondary(cells, picks)
        line_rounds()
    return cells


def _loosened(before: pd.DataFrame, cells: pd.DataFrame) -> bool:
    """Whether the attacker's system of ``cells`` contains that of ``before`` (same cells).

    True when every cell unknown before is still unknown with bounds at least as wide, and every
    cell that became unknown lies within its new bounds at its value (so any feasible attacker
    solution of before, with the new unknowns at their values, is feasible now).
    """
    was = before["suppressed"].to_numpy(dtype=bool)
    now = cells["suppressed"].to_numpy(dtype=bool)
    lo_before = before["lo"].astype(float).fillna(0.0).to_numpy()
    hi_before = before["hi"].astype(float).fillna(np.inf).to_numpy()
    lo = cells["lo"].astype(float).fillna(0.0).to_numpy()
    hi = cells["hi"].astype(float).fillna(np.inf).to_numpy()
    value = cells["value"].astype(float).to_numpy()
    new = now & ~was
    return bool(
        before.index.equals(cells.index)
        and not (was & ~now).any()
        and (lo[was] <= lo_before[was]).all()
        and (hi[was] >= hi_before[was]).all()
        and (lo[new] <= value[new]).all()
        and (value[new] <= hi[new]).all()
    )


def _neighbour_pairs(lines: pd.DataFrame, inequalities: pd.DataFrame) -> pd.DataFrame:
    """Pairs ``a, b`` of distinct cells sharing a line or an inequality (both ways)."""
    pairs = pd.concat(
        [
            lines.merge(lines, on="line")[["cell_x", "cell_y"]].set_axis(["a", "b"], axis=1),
            inequalities.set_axis(["a", "b"], axis=1),
            inequalities[["larger", "smaller"]].set_axis(["a", "b"], axis=1),
        ],
        ignore_index=True,
    )
    return pairs[pairs["a"] != pairs["b"]].drop_duplicates()


def _neighbour_picks(cells: pd.DataFrame, pairs: pd.DataFrame, pinned: pd.Index) -> pd.Index:
    """For each pinned cell, its smallest published non-zero neighbour (line or inequality).

    Neighbours (``pairs`` of :func:`_neighbour_pairs`) are searched one step out first (the
    cells sharing a line or an inequality with the pinned cell), then through suppressed
    neighbours, until a published cell is found.
    """
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
    # each row with an unknown belongs to the one block of its unknowns
    nonzero = (abs(matrix) > 0).tocoo()
    row_block = np.full(n_rows, -1)
    row_block[nonzero.row] = block[nonzero.col]

    problems: dict[int, tuple] = {}
    result = {}
    target_vars = var.reindex(targets).to_numpy()
    if pinned_only:
        rng = np.random.default_rng(0)
        remaining = np.ones(len(target_vars), dtype=bool)
        for b in np.unique(block[target_vars]):
            members = np.flatnonzero(block == b)
            sub_rows = np.flatnonzero(row_block == b)
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
            sub_rows = np.flatnonzero(row_block == block[i])
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
        if pinned_only and _relaxation_pins(c, constraints, bounds, values[i], milp):
            # the linear relaxation already keeps the cell within 0.5 of its value: so does
            # every integer solution (the integer program's range lies within the relaxation's)
            result[target] = (values[i], values[i])
            continue
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


def _relaxation_pins(c, constraints, bounds, value: float, milp) -> bool:
    """Whether the linear relaxation bounds ``c @ x`` strictly within ``value +- 0.5``."""
    low = milp(c, constraints=constraints, bounds=bounds)
    if low.x is None or low.fun <= value - 0.5:
        return False
    high = milp(-c, constraints=constraints, bounds=bounds)
    return high.x is not None and -high.fun < value + 0.5


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


# ------------------------------------------------------------------------------------------------
# the front-end
# ------------------------------------------------------------------------------------------------
def format_count(value, k: int = SUPPRESSION_K) -> str:
    """A count for people, under the primary rule: ``4,610``; ``"<k"`` for 1..k-1; ``""`` if NaN.

    >>> format_count(4610), format_count(3), format_count(0)
    ('4,610', '<5', '0')
    """
    if pd.isna(value):
        return ""
    if bool(small_count_mask(float(value), k=k)):
        return primary_marker(k)
    return f"{int(round(float(value))):,}"


def suppress(
    values: pd.Series,
    lines: Iterable[tuple[str, Sequence[str]]] = (),
    *,
    k: int = SUPPRESSION_K,
    inequalities: Iterable[tuple[str, str]] = (),
) -> Suppressed:
    """Primary and secondary suppression of named counts related by additive lines.

    Parameters
    ----------
    values : Series
        Counts by cell name. Cells that are not printed but that a reader can work out (the
        complement of a share) belong here too, so that they are protected like the others.
    lines : iterable of (total, members)
        ``values[total] == sum(values[members])`` for each line (a table's rows and columns with
        their margins, a share's denominator = numerator + complement, ...).
    k : int
        Counts 1..k-1 are suppressed (``k = 1``: nothing is, the internal audience).
    inequalities : iterable of (smaller, larger)
        Orderings a reader knows, ``values[smaller] <= values[larger]`` (follow-ups cannot
        outnumber discharges), used by the whole-system check.

    Returns
    -------
    Suppressed
        ``display`` (``"<k"`` primary, :data:`SECONDARY_MARKER` complementary or relaxed, else
        :func:`format_count`) and ``mask``, both indexed like ``values``.

    Examples
    --------
    >>> import pandas as pd
    >>> values = pd.Series({"all": 60, "a": 3, "b": 27, "c": 30})
    >>> suppress(values, [("all", ["a", "b", "c"])]).display.tolist()  # 3 = 60 - 27 - 30
    ['60', '<5', '*', '30']
    """
    names = list(values.index)
    position = {name: i for i, name in enumerate(names)}
    numbers = values.astype("float64").to_numpy()
    primary = (numbers >= 1) & (numbers <= k - 1)
    cells = pd.DataFrame(
        {
            "value": numbers,
            "suppressed": primary,
            "lo": np.where(primary, 1.0, np.nan),
            "hi": np.where(primary, k - 1.0, np.nan),
        }
    )
    line_rows = [
        (number, position[cell], sign)
        for number, (total, members) in enumerate(lines)
        for cell, sign in [(total, -1), *((member, 1) for member in members)]
    ]
    pairs = [(position[a], position[b]) for a, b in inequalities]
    if line_rows or pairs:
        line_frame = pd.DataFrame(line_rows, columns=["line", "cell", "sign"])
        order = pd.DataFrame(pairs, columns=["smaller", "larger"]) if pairs else None
        # k: the lines are also attacked together as an integer program
        cells = protect_cells(
            cells, line_frame, secondary_bounds=(float(k), np.inf), inequalities=order, k=k
        )
    else:
        cells["secondary"] = False
        cells["relaxed"] = False
    mask = pd.Series(cells["suppressed"].to_numpy(dtype=bool), index=values.index)
    neutral = (cells["secondary"] | cells["relaxed"]).to_numpy(dtype=bool)
    display = values.map(lambda v: format_count(v, k))
    display = display.mask(mask, primary_marker(k)).mask(
        pd.Series(neutral, index=values.index), SECONDARY_MARKER
    )
    return Suppressed(display, mask)


def format_share(display: str, suppressed: bool, n, denominator, denominator_hidden: bool) -> str:
    """``"62 (48%)"`` from a count's display; the percentage left out when either count is hidden.

    >>> format_share("62", False, 62, 130, False), format_share("*", True, 7, 130, False)
    ('62 (48%)', '*')
    """
    if suppressed or denominator_hidden or pd.isna(denominator) or denominator <= 0:
        return display
    return f"{display} ({100 * n / denominator:.0f}%)"


def share_cells(
    numerator: pd.Series,
    denominator: pd.Series,
    *,
    k: int = SUPPRESSION_K,
    total: str | None = None,
) -> pd.DataFrame:
    """``n (%)`` cells for a share per group, its complement protected, with a total row.

    Each group's denominator is a line ``denominator = numerator + (denominator - numerator)``:
    a published pair reveals the complement, so it obeys the same rule. The percentage is shown
    only when neither count is suppressed (rule 3).

    Parameters
    ----------
    numerator, denominator : Series
        Counts indexed by group.
    k : int
        Suppression threshold.
    total : str, optional
        The group holding the sums over the other groups (then every kind of count is a line
        over the groups too).

    Returns
    -------
    DataFrame
        Indexed by group: ``numerator`` (``"62 (48%)"``), ``denominator`` (display) and
        ``hidden`` (bool: either count suppressed).

    Examples
    --------
    >>> import pandas as pd
    >>> cells = share_cells(pd.Series({"a": 3, "b": 20}), pd.Series({"a": 10, "b": 40}))
    >>> cells["numerator"].tolist(), cells["hidden"].tolist()
    (['<5', '20 (50%)'], [True, False])
    """
    groups = list(numerator.index)
    values = pd.concat(
        [
            numerator.rename(lambda g: ("num", g)),
            denominator.rename(lambda g: ("den", g)),
            (denominator - numerator).rename(lambda g: ("rest", g)),
        ]
    )
    values.index = [f"{kind}|{group}" for kind, group in values.index]
    lines = [(f"den|{g}", [f"num|{g}", f"rest|{g}"]) for g in groups]
    if total is not None:
        others = [g for g in groups if g != total]
        lines += [
            (f"{kind}|{total}", [f"{kind}|{g}" for g in others]) for kind in ("num", "den", "rest")
        ]
    display, mask = suppress(values, lines, k=k)
    rows = []
    for group in groups:
        num_hidden = bool(mask[f"num|{group}"])
        den_hidden = bool(mask[f"den|{group}"])
        rows.append(
            {
                "group": group,
                "numerator": format_share(
                    display[f"num|{group}"],
                    num_hidden,
                    numerator[group],
                    denominator[group],
                    den_hidden,
                ),
                "denominator": display[f"den|{group}"],
                "hidden": num_hidden or den_hidden,
            }
        )
    return pd.DataFrame(rows).set_index("group")


def suppression_note(k: int = SUPPRESSION_K) -> str:
    """The markers' legend printed under every suppressed table (one wording for all reports).

    >>> suppression_note(1)
    'No small-cell suppression: internal report, not for circulation.'
    """
    if k <= 1:  # the internal audience
        return "No small-cell suppression: internal report, not for circulation."
    return (
        f"{primary_marker(k)}: a count from 1 to {k - 1}, suppressed; {SECONDARY_MARKER}: "
        f"suppressed so that a small count cannot be worked out from the totals, or a figure "
        f"over fewer than {k} patients."
    )
