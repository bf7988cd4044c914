"""The disclosure engine's fast paths give the plain computation's result.

:func:`hipdata.disclosure.protect_cells` skips two kinds of work that cannot change its answer:

- targets already proven unpinned are not attacked again while the published system only
  loosens between rounds (``_loosened``);
- a target whose linear relaxation already keeps it within 0.5 of its value is pinned without
  solving the integer program (``_relaxation_pins``).

Here both are switched off (the plain computation: every target attacked every round, every
range by the integer program) and the results compared on random table systems: two-way
tables with margins, hierarchies (units within groups within a total, with the orderings a
reader knows) and three-way tables with every margin. The suppressed, secondary and relaxed
cells must be identical, and so must the pinned targets of
:func:`hipdata.disclosure.attacker_ranges`.
"""

import numpy as np
import pandas as pd
import pytest

import hipdata.disclosure as disclosure
from hipdata.disclosure import attacker_ranges, protect_cells

K = 5


def _plain(monkeypatch):
    monkeypatch.setattr(disclosure, "_loosened", lambda before, cells: False)
    monkeypatch.setattr(disclosure, "_relaxation_pins", lambda *args, **kwargs: False)


def _two_way(rng, n_rows, n_cols):
    """Cells and lines of an n_rows x n_cols table with row, column and grand totals."""
    inner = rng.choice([0, 1, 2, 3, 4, 6, 9, 15, 40], size=(n_rows, n_cols))
    values, lines = [], []
    ids = {}
    for i in range(n_rows + 1):
        for j in range(n_cols + 1):
            if i < n_rows and j < n_cols:
                value = inner[i, j]
            elif i < n_rows:
                value = inner[i].sum()
            elif j < n_cols:
                value = inner[:, j].sum()
            else:
                value = inner.sum()
            ids[i, j] = len(values)
            values.append(float(value))
    line = 0
    for i in range(n_rows + 1):
        lines += [(line, ids[i, n_cols], -1)] + [(line, ids[i, j], 1) for j in range(n_cols)]
        line += 1
    for j in range(n_cols + 1):
        lines += [(line, ids[n_rows, j], -1)] + [(line, ids[i, j], 1) for i in range(n_rows)]
        line += 1
    return np.array(values), pd.DataFrame(lines, columns=["line", "cell", "sign"]), None


def _hierarchy(rng, n_groups, n_units, n_kinds):
    """Units within groups within a total, for n_kinds counts with part <= whole orderings."""
    values, lines, pairs = [], [], []
    line, previous = 0, None
    for kind in range(n_kinds):
        leaves = rng.choice([0, 1, 2, 3, 4, 7, 12, 30], size=(n_groups, n_units)).astype(float)
        if previous is not None:  # this kind counts a part of the previous kind's count
            leaves = np.minimum(leaves, previous)
        total_id = len(values)
        values.append(leaves.sum())
        group_ids = []
        for g in range(n_groups):
            group_id = len(values)
            values.append(leaves[g].sum())
            group_ids.append(group_id)
            unit_ids = list(range(len(values), len(values) + n_units))
            values.extend(leaves[g])
            lines += [(line, group_id, -1)] + [(line, u, 1) for u in unit_ids]
            line += 1
        lines += [(line, total_id, -1)] + [(line, g, 1) for g in group_ids]
        line += 1
        if kind:
            size = 1 + n_groups * (1 + n_units)
            pairs += [(total_id + j, total_id - size + j) for j in range(size)]
        previous = leaves
    order = pd.DataFrame(pairs, columns=["smaller", "larger"]) if pairs else None
    return np.array(values), pd.DataFrame(lines, columns=["line", "cell", "sign"]), order


def _cube(rng, a, b, c):
    """An a x b x c table with every margin: each one-dimensional slice is a line.

    Small counts are common, so that the line-by-line rounds leave cells the whole-system
    attack pins (relaxed markers, more rounds).
    """
    inner = rng.choice([0, 1, 1, 2, 3, 5, 6, 9], size=(a, b, c)).astype(float)
    full = np.zeros((a + 1, b + 1, c + 1))
    full[:a, :b, :c] = inner
    full[a, :b, :c], full[:a, b, :c], full[:a, :b, c] = inner.sum(0), inner.sum(1), inner.sum(2)
    full[a, b, :c], full[a, :b, c] = inner.sum((0, 1)), inner.sum((0, 2))
    full[:a, b, c], full[a, b, c] = inner.sum((1, 2)), inner.sum()
    ids = np.arange(full.size).reshape(full.shape)
    lines, line = [], 0
    for axis, n in enumerate((a, b, c)):
        slices = np.moveaxis(ids, axis, 0)
        for rest in np.ndindex(*slices.shape[1:]):
            members = slices[(slice(None), *rest)]
            lines += [(line, members[n], -1)] + [(line, m, 1) for m in members[:n]]
            line += 1
    return full.ravel(), pd.DataFrame(lines, columns=["line", "cell", "sign"]), None


def _cells(values):
    primary = (values >= 1) & (values <= K - 1)
    return pd.DataFrame(
        {
            "value": values,
            "suppressed": primary,
            "lo": np.where(primary, 1.0, np.nan),
            "hi": np.where(primary, K - 1.0, np.nan),
        }
    )


SYSTEMS = [
    *((kind, seed) for kind in ("two_way", "hierarchy", "cube") for seed in range(6)),
]


def _system(kind, seed):
    rng = np.random.default_rng(seed)
    if kind == "two_way":
        return _two_way(rng, int(rng.integers(2, 6)), int(rng.integers(2, 6)))
    if kind == "cube":
        return _cube(rng, *(int(n) for n in rng.integers(2, 4, size=3)))
    return _hierarchy(
        rng, int(rng.integers(2, 4)), int(rng.integers(2, 5)), int(rng.integers(1, 4))
    )


@pytest.mark.parametrize(("kind", "seed"), SYSTEMS)
def test_protect_cells_fast_paths_match_the_plain_computation(kind, seed, monkeypatch):
    values, lines, order = _system(kind, seed)
    # the audit's complementary cells are only known to be >= 0
    low = 0.0 if kind == "cube" else float(K)
    options = {"secondary_bounds": (low, np.inf), "inequalities": order, "k": K}
    fast = protect_cells(_cells(values), lines, **options)
    with monkeypatch.context() as patch:
        _plain(patch)
        plain = protect_cells(_cells(values), lines, **options)
    columns = ["suppressed", "secondary", "relaxed", "lo", "hi"]
    pd.testing.assert_frame_equal(fast[columns], plain[columns])
    # the published result protects every small count: the plain attacker pins none
    targets = plain.index[plain["suppressed"] & plain["protect"]]
    ranges = attacker_ranges(plain, lines, order, targets=targets)
    assert ((ranges["hi"] - ranges["lo"]) >= 0.5).all()


@pytest.mark.parametrize(("kind", "seed"), SYSTEMS)
def test_pinned_targets_by_relaxation_match_the_integer_program(kind, seed, monkeypatch):
    values, lines, order = _system(kind, seed)
    cells = _cells(values)  # primary suppression only: many cells pinned
    targets = cells.index[cells["suppressed"]]
    fast = attacker_ranges(cells, lines, order, targets=targets, pinned_only=True)
    with monkeypatch.context() as patch:
        _plain(patch)
        plain = attacker_ranges(cells, lines, order, targets=targets, pinned_only=True)
    full = attacker_ranges(cells, lines, order, targets=targets)
    by_ranges = full.index[(full["hi"] - full["lo"]) < 0.5]
    assert list(fast) == list(plain) == list(by_ranges)
