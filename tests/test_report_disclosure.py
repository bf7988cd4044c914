"""Small-cell suppression (hipdata.disclosure): hand-worked tables and property tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hipdata.disclosure import (
    MARGINS_NAME,
    SECONDARY_MARKER,
    primary_marker,
    suppress_derived,
    suppress_hierarchy,
    suppress_small_counts,
    suppress_table,
)
from hipdata.protocol import SUPPRESSION_K

K = SUPPRESSION_K  # 5: counts 1..4 are hidden


def with_margins(body: pd.DataFrame) -> pd.DataFrame:
    table = body.copy()
    table[MARGINS_NAME] = table.sum(axis=1)
    table.loc[MARGINS_NAME] = table.sum(axis=0)
    return table


def test_small_counts_one_to_k_minus_one_are_hidden_zero_is_shown():
    counts = pd.Series([0, 1, 4, 5, 12, np.nan])
    display, mask = suppress_small_counts(counts)
    assert display.tolist() == ["0", "<5", "<5", "5", "12", ""]
    assert mask.tolist() == [False, True, True, False, False, False]
    assert primary_marker(10) == "<10"
    assert suppress_small_counts(pd.Series([7]), k=10).display.tolist() == ["<10"]


def test_table_single_small_cell_gets_a_complement_in_row_and_column():
    # body      a   b   c  | All
    #   x       3  20  30  |  53
    #   y      10  40  50  | 100
    #   All    13  60  80  | 153
    # 3 is primary. Row x: 3 alone -> next-smallest non-zero in row x is 20 -> "*".
    # Column a: 3 alone -> next-smallest in column a is 10 -> "*".
    # Row y now has 10 alone -> next-smallest published in row y is 40 -> "*".
    # Column b has 20 and 40: two unknowns (x_b + y_b = 60) -> stable; column c untouched.
    body = pd.DataFrame({"a": [3, 10], "b": [20, 40], "c": [30, 50]}, index=["x", "y"])
    display, mask = suppress_table(with_margins(body))
    assert display.loc["x"].tolist() == ["<5", "*", "30", "53"]
    assert display.loc["y"].tolist() == ["*", "*", "50", "100"]
    assert display.loc[MARGINS_NAME].tolist() == ["13", "60", "80", "153"]
    assert int(mask.to_numpy().sum()) == 4


def test_table_two_ones_whose_sum_the_total_reveals_are_protected():
    # Row x = 1 + 1 + 30 = 32: both 1s are "<5" (each 1..4), but 32 - 30 = 2 forces 1 and 1,
    # so the row needs a third cell: 30 becomes "*". Without the row total nothing more.
    body = pd.DataFrame({"a": [1], "b": [1], "c": [30]}, index=["x"])
    table = body.copy()
    table[MARGINS_NAME] = table.sum(axis=1)
    display, _ = suppress_table(table)
    assert display.loc["x"].tolist() == ["<5", "<5", "*", "32"]
    assert suppress_table(body).display.loc["x"].tolist() == ["<5", "<5", "30"]


def test_table_total_is_suppressed_when_no_member_can_hide():
    # body      a   b | All
    #   x       3   0 |   3      3 and its row total 3 are primary ("<5").
    #   y      20   0 |  20
    #   All    23   0 |  23
    # Column a: 23 - 20 gives x.a back -> hide y.a ("*"). Column All: 23 - 20 gives the row
    # total x back -> hide y.All ("*"). Row x (x.a = x.All, both 1..4) gives nothing exact, nor
    # does row y (y.a = y.All, both >= 5): stable.
    body = pd.DataFrame({"a": [3, 20], "b": [0, 0]}, index=["x", "y"])
    display, _ = suppress_table(with_margins(body))
    assert display.loc["x"].tolist() == ["<5", "0", "<5"]
    assert display.loc["y"].tolist() == ["*", "0", "*"]
    assert display.loc[MARGINS_NAME].tolist() == ["23", "0", "23"]


def test_derived_figures_follow_their_counts():
    share = pd.DataFrame({"a": [0.5, 0.25], "b": [1.0, np.nan]})
    numerator_mask = pd.DataFrame({"a": [False, True], "b": [False, False]})
    denominator_mask = pd.DataFrame({"a": [False, False], "b": [True, False]})
    display, mask = suppress_derived(share, numerator_mask, denominator_mask, percent=True)
    assert display["a"].tolist() == ["50.0%", SECONDARY_MARKER]
    assert display["b"].tolist() == [SECONDARY_MARKER, ""]
    assert mask.to_numpy().tolist() == [[False, True], [True, False]]
    means = suppress_derived(pd.Series([2.345]), pd.Series([False]), decimals=2).display
    assert means.tolist() == ["2.35"]


def test_hierarchy_hand_worked():
    # network 65 = C1 23 + C2 42; C1 = T1 3 + T2 20; C2 = T3 30 + T4 12.
    # T1 (3) is primary; C1 = T1 + T2 with C1 published -> T2 (next smallest) hidden too.
    frame = pd.DataFrame(
        {
            "node": ["net", "C1", "C2", "T1", "T2", "T3", "T4"],
            "parent": [None, "net", "net", "C1", "C1", "C2", "C2"],
            "n": [65, 23, 42, 3, 20, 30, 12],
        }
    )
    display, mask = suppress_hierarchy(frame, value="n")
    assert mask.tolist() == [False, False, False, True, True, False, False]
    assert display.tolist() == ["65", "23", "42", "*", "*", "30", "12"]


# --- property tests ----------------------------------------------------------------------------

_cell = st.one_of(st.integers(0, 6), st.integers(0, 40))


@st.composite
def count_tables(draw):
    n_rows = draw(st.integers(1, 4))
    n_cols = draw(st.integers(1, 4))
    values = draw(
        st.lists(
            st.lists(_cell, min_size=n_cols, max_size=n_cols), min_size=n_rows, max_size=n_rows
        )
    )
    body = pd.DataFrame(
        values,
        index=[f"r{i}" for i in range(n_rows)],
        columns=[f"c{j}" for j in range(n_cols)],
    )
    return with_margins(body)


def _lines(table: pd.DataFrame):
    """Every row and every column as (member labels, total label)."""
    for row in table.index:
        members = [(row, c) for c in table.columns if c != MARGINS_NAME]
        yield members, (row, MARGINS_NAME)
    for column in table.columns:
        members = [(r, column) for r in table.index if r != MARGINS_NAME]
        yield members, (MARGINS_NAME, column)


def _possible_values(bounds: list[tuple[int, int]], target: int) -> list[set[int]]:
    """For each unknown, the values it can take when the unknowns sum to ``target``.

    Brute force over reachable sums (sets, not intervals), independent of the library's
    interval arithmetic.
    """
    possible = []
    for i, (lo, hi) in enumerate(bounds):
        reachable = {0}
        for j, (lo_j, hi_j) in enumerate(bounds):
            if j != i:
                reachable = {s + v for s in reachable for v in range(lo_j, min(hi_j, target) + 1)}
                reachable = {s for s in reachable if s <= target}
        possible.append({v for v in range(lo, min(hi, target) + 1) if target - v in reachable})
    return possible


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(count_tables())
def test_property_no_suppressed_cell_is_recoverable(table):
    display, mask = suppress_table(table)
    marker = primary_marker(K)
    # no shown value is a small count; markers tell the truth about the hidden values
    for (row, column), shown in display.stack().items():
        value = int(table.loc[row, column])
        if mask.loc[row, column]:
            assert shown in (marker, SECONDARY_MARKER)
            if shown == marker:
                assert 1 <= value <= K - 1
            else:
                assert value >= K
        else:
            assert shown == str(value)
            assert not 1 <= value <= K - 1
    for members, total in _lines(table):
        hidden = [cell for cell in members + [total] if mask.loc[cell]]
        # a line with one hidden cell gives it back (total - the rest): never allowed
        assert len(hidden) != 1
        if hidden and not mask.loc[total]:
            visible = sum(int(table.loc[c]) for c in members if not mask.loc[c])
            target = int(table.loc[total]) - visible
            bounds = [(1, K - 1) if display.loc[c] == marker else (K, target) for c in hidden]
            for cell, values in zip(hidden, _possible_values(bounds, target), strict=True):
                assert int(table.loc[cell]) in values
                assert len(values) >= 2, f"{cell} recoverable from its line"


@st.composite
def trees(draw):
    n_clinics = draw(st.integers(1, 3))
    rows = []
    network = 0
    for c in range(n_clinics):
        counts = draw(st.lists(_cell, min_size=1, max_size=3))
        rows += [(f"T{c}.{i}", f"C{c}", n) for i, n in enumerate(counts)]
        rows.append((f"C{c}", "net", sum(counts)))
        network += sum(counts)
    rows.append(("net", None, network))
    return pd.DataFrame(rows, columns=["node", "parent", "n"])


@settings(max_examples=150, deadline=None)
@given(trees())
def test_property_hierarchy_totals_never_reveal_a_hidden_cell(frame):
    mask = suppress_hierarchy(frame, value="n").mask
    shown = frame.loc[~mask, "n"]
    assert not shown.between(1, K - 1).any()
    for parent, children in frame.groupby("parent"):
        line = list(children.index) + list(frame.index[frame["node"] == parent])
        assert int(mask.loc[line].sum()) != 1


@pytest.mark.parametrize("k", [3, 10])
def test_k_is_a_parameter(k):
    body = pd.DataFrame({"a": [2, 8], "b": [9, 9]}, index=["x", "y"])
    display, mask = suppress_table(with_margins(body), k=k)
    # k=3: only 2 is small (row x: 2 + 9 = 11 -> 9 "*"; column a: 2 + 8 = 10 -> 8 "*"; then
    # column b (9 hidden + 9 = 18) and row y (8 hidden + 9 = 17) each hide y.b; stable).
    # k=10: 2, 8, 9, 9 are all small ("<10"), the margins 11, 17, 10, 18, 28 are not. Column b:
    # two cells of at most 9 adding up to 18 must both be 9, so its total 18 is hidden ("*");
    # then the total row (10 + 18 hidden = 28) hides 10 too.
    if k == 3:
        assert display.loc["x"].tolist() == ["<3", "*", "11"]
        assert display.loc["y"].tolist() == ["*", "*", "17"]
        assert int(mask.to_numpy().sum()) == 4
    else:
        assert display.loc["x"].tolist() == ["<10", "<10", "11"]
        assert display.loc["y"].tolist() == ["<10", "<10", "17"]
        assert display.loc[MARGINS_NAME].tolist() == ["*", "*", "28"]
        assert int(mask.to_numpy().sum()) == 6
