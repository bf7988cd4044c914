"""An attacker's integer program over everything the audit publishes pins no small count.

The attacker is written here independently of :mod:`hipdata.disclosure`: it reads only the
published long table (``audit_indicators.csv``: numerator and denominator of each unit, quarter
and indicator, empty when suppressed; ``"<k"`` for a suppressed count indicator that is small and
``"*"`` otherwise, a neutral marker: any count) and what every reader knows: clinicians (and the clinic's unpublished part)
sum to their clinic, clinics to the network, a proportion's numerator and complement to its
denominator, and NPRS pairs <= follow-ups <= discharges (and the other orderings of
:data:`hipdata.analysis.audit_suppression.ORDERED_QUANTITIES`), and, for the pooled rows, that
a pooled period is the sum of its quarters. Every hidden count is minimised and maximised
with HiGHS; none may be pinned to a single value in 1..k-1. The true values come from the same
audit computed with nothing suppressed (``k=1``), so no demo number is written here.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import Bounds, LinearConstraint, milp

import hipdata
from hipdata.analysis.audit import (
    NOT_POOLED,
    audit_indicators,
    latest_complete_quarter,
    previous_quarters,
)
from hipdata.analysis.audit_suppression import ORDERED_QUANTITIES, patient_nodes
from hipdata.analysis.indicators import INDICATORS, SUM_COUNTS, all_quantities
from hipdata.metrics import compute_all
from hipdata.synth import generate

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"
K = 5


def _quantities(row_kind: str, indicator) -> list[tuple[str, str]]:
    """(published column, quantity) pairs of an indicator row."""
    if row_kind == "count":
        return [("numerator", indicator.numerator)]
    return [("numerator", indicator.numerator), ("denominator", indicator.denominator)]


def attack(ds, tables, quarters, k=K, pooled=0, clinician_quarters=None):
    """Per hidden small count: (period, cell, true value, attacker's min, attacker's max).

    One integer program over every published period at once: the quarters, and the pooled
    period, which a reader knows is the sum of its quarters (per unit and quantity). Units not
    published in a period (a clinic's hidden part; clinicians in quarters whose clinician rows
    are not published) are unknowns >= 0.
    """
    options = {"quarters": quarters, "pooled": pooled, "clinician_quarters": clinician_quarters}
    published = audit_indicators(ds, tables, k=k, **options)
    truth = audit_indicators(ds, tables, k=1, **options)
    assert not truth["suppressed"].any()
    assert published[["level", "unit", "quarter", "indicator"]].equals(
        truth[["level", "unit", "quarter", "indicator"]]
    )
    windows = published.attrs["pooled"]
    periods = list(quarters) + list(windows)
    small = published.attrs["small_count"]
    _, nodes = patient_nodes(ds.patients)
    node_of = {(r.level, r.unit): r.node for r in nodes.itertuples() if r.level != "hidden"}
    sums = set(SUM_COUNTS)
    quantities = all_quantities()
    known: dict[tuple, float] = {}
    true: dict[tuple, float] = {}
    bounds: dict[tuple, tuple[float, float]] = {}
    for i in published.index:
        pub, tru = published.loc[i], truth.loc[i]
        indicator = INDICATORS[pub["indicator"]]
        node = node_of[(pub["level"], pub["unit"])]
        figures = [
            (float(pub[column]), float(tru[column]), quantity)
            for column, quantity in _quantities(indicator.kind, indicator)
        ]
        if indicator.complement is not None:  # a reader knows denominator - numerator
            figures.append(
                (
                    float(pub["denominator"] - pub["numerator"]),
                    float(tru["denominator"] - tru["numerator"]),
                    indicator.complement,
                )
            )
        for published_value, true_value, quantity in figures:
            key = (pub["quarter"], node, quantity)
            true[key] = true_value
            if not pub["suppressed"]:
                known[key] = published_value
            elif indicator.kind == "count":
                bounds[key] = (1.0, k - 1.0) if small[i] else (0.0, np.inf)
            else:
                bounds.setdefault(key, (-np.inf, np.inf) if quantity in sums else (0, np.inf))
    # a quantity published in one row is known in every row that uses it
    for key in known:
        bounds.pop(key, None)
    # every other cell (unpublished units and quantities) is an unknown >= 0 (sums: any)
    variables = [
        (period, node, quantity)
        for period in periods
        for node in nodes["node"]
        for quantity in quantities
        if (period, node, quantity) not in known
    ]
    index = {key: j for j, key in enumerate(variables)}
    default = {q: ((-np.inf, np.inf) if q in sums else (0.0, np.inf)) for q in quantities}
    lo = np.array([bounds.get(v, default[v[2]])[0] for v in variables])
    hi = np.array([bounds.get(v, default[v[2]])[1] for v in variables])
    integer = np.array([v[2] not in sums for v in variables])

    a_rows, lbs, ubs = [], [], []

    def add(terms, lower, upper):
        row = np.zeros(len(variables))
        constant = 0.0
        for sign, key in terms:
            if key in index:
                row[index[key]] += sign
            else:
                constant += sign * known[key]
        if row.any():
            a_rows.append(row)
            lbs.append(lower - constant)
            ubs.append(upper - constant)

    children = nodes[nodes["parent"].notna()].groupby("parent")["node"].apply(list)
    for period in periods:
        for quantity in quantities:
            for parent, kids in children.items():
                terms = [(1, (period, c, quantity)) for c in kids]
                add(terms + [(-1, (period, parent, quantity))], 0, 0)
        for ind in INDICATORS.values():
            if ind.complement is not None:
                for node in nodes["node"]:
                    # numerator + complement = denominator
                    add(
                        [
                            (1, (period, node, ind.numerator)),
                            (1, (period, node, ind.complement)),
                            (-1, (period, node, ind.denominator)),
                        ],
                        0,
                        0,
                    )
        for smaller, larger in ORDERED_QUANTITIES:
            for node in node_of.values():
                small_key, large_key = (period, node, smaller), (period, node, larger)
                if small_key in true and large_key in true and true[small_key] <= true[large_key]:
                    add([(1, small_key), (-1, large_key)], -np.inf, 0)
    # a pooled period is the sum of its quarters, for every unit and additive quantity
    not_additive = {INDICATORS[name].numerator for name in NOT_POOLED}
    for label, window in windows.items():
        for node in nodes["node"]:
            for quantity in quantities:
                if quantity in not_additive:
                    continue
                terms = [(1, (q, node, quantity)) for q in window]
                add(terms + [(-1, (label, node, quantity))], 0, 0)
    constraints = LinearConstraint(np.array(a_rows), lbs, ubs) if a_rows else ()
    targets = [key for key in bounds if key[2] not in sums and 1 <= true[key] <= k - 1]
    return pd.DataFrame(
        [
            (key[0], key[1:], true[key], lo_, hi_)
            for key, (lo_, hi_) in solve_ranges(
                [index[key] for key in targets],
                [true[key] for key in targets],
                len(variables),
                constraints,
                integer,
                Bounds(lo, hi),
                targets,
                "all periods",
            )
        ],
        columns=["quarter", "cell", "true", "lo", "hi"],
    )


def solve_ranges(columns, values, n, constraints, integer, bounds, keys, quarter):
    """Each target's (lo, hi), or a witness pair of values when it is not pinned.

    Any feasible solution in which a target differs from its true value proves it is not pinned,
    so targets are first moved all at once (minimise, then maximise their sum); only those that
    never moved are minimised and maximised one by one.
    """
    values = np.asarray(values, dtype=float)
    seen_lo, seen_hi = values.copy(), values.copy()
    remaining = np.arange(len(columns))
    for _ in range(len(columns) + 1):
        if len(remaining) == 0:
            break
        moved = False
        for direction in (1.0, -1.0):
            c = np.zeros(n)
            c[np.asarray(columns)[remaining]] = direction
            found = milp(c, constraints=constraints, integrality=integer, bounds=bounds)
            assert found.x is not None, f"the published system is infeasible ({quarter})"
            x = found.x[np.asarray(columns)]
            seen_lo, seen_hi = np.minimum(seen_lo, x), np.maximum(seen_hi, x)
            still = remaining[np.abs(x[remaining] - values[remaining]) < 0.5]
            moved |= len(still) < len(remaining)
            remaining = still
        if not moved:
            break
    for j in remaining:  # one by one
        for direction in (1.0, -1.0):
            c = np.zeros(n)
            c[columns[j]] = direction
            found = milp(c, constraints=constraints, integrality=integer, bounds=bounds)
            value = found.x[columns[j]] if found.x is not None else direction * np.inf
            seen_lo[j], seen_hi[j] = min(seen_lo[j], value), max(seen_hi[j], value)
    return list(zip(keys, zip(seen_lo, seen_hi, strict=True), strict=True))


def assert_nothing_pinned(found: pd.DataFrame) -> None:
    assert (found["lo"] <= found["true"] + 1e-6).all() and (
        found["hi"] >= found["true"] - 1e-6
    ).all()
    pinned = found[(found["hi"] - found["lo"]) < 0.5]
    assert pinned.empty, f"pinned small counts:\n{pinned}"


def test_the_demo_audit_pins_no_small_count():
    ds = hipdata.load(DEMO, today="2026-11-27")
    tables = compute_all(ds)
    quarter = latest_complete_quarter(ds)
    quarters = previous_quarters(quarter, 4) + [quarter]
    found = attack(ds, tables, quarters)
    assert len(found) > 0  # the demo has small counts to protect
    assert_nothing_pinned(found)


def test_the_demo_audit_with_pooled_clinicians_pins_no_small_count():
    # what the report publishes: five quarters for network and clinics, clinicians for the
    # audited quarter, and every level pooled over the rolling four quarters
    ds = hipdata.load(DEMO, today="2026-11-27")
    tables = compute_all(ds)
    quarter = latest_complete_quarter(ds)
    quarters = previous_quarters(quarter, 4) + [quarter]
    found = attack(ds, tables, quarters, pooled=4, clinician_quarters=[quarter])
    assert found["quarter"].str.contains("-").any()  # small pooled counts are attacked too
    assert_nothing_pinned(found)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_small_synthetic_cohorts_pin_no_small_count(seed, tmp_path):
    folder = generate(40, seed=seed, n_clinics=3, clinicians_per_clinic=2).write(tmp_path)
    ds = hipdata.load(folder, today="2026-11-27")
    tables = compute_all(ds)
    quarter = latest_complete_quarter(ds)
    quarters = previous_quarters(quarter, 2) + [quarter]
    assert_nothing_pinned(attack(ds, tables, quarters))
    assert_nothing_pinned(attack(ds, tables, quarters, pooled=2, clinician_quarters=[quarter]))


def test_cohort_table_counts_are_not_pinned_by_differencing():
    # A clinic x sex table as cohort Table 1 builds it (rows add to N, clinics to "All").
    # X = 1 in A and 2 in B, M = 3 in B: primary. Line by line, hiding the next-smallest cell
    # of each line can still leave the whole system pinning a "<5"; the reader here solves it.
    from hipdata.disclosure import suppress

    table = {"A": {"M": 30, "F": 20, "X": 1}, "B": {"M": 3, "F": 25, "X": 2}}
    values, lines = {}, []
    for clinic, parts in table.items():
        for part, n in parts.items():
            values[f"{part}|{clinic}"] = n
        values[f"N|{clinic}"] = sum(parts.values())
        lines.append((f"N|{clinic}", [f"{p}|{clinic}" for p in parts]))
    for part in ("M", "F", "X", "N"):
        values[f"{part}|All"] = sum(values[f"{part}|{c}"] for c in table)
        lines.append((f"{part}|All", [f"{part}|{c}" for c in table]))
    values = pd.Series(values, dtype="float64")
    display, mask = suppress(values, lines, k=K)
    names = list(values.index)
    hidden = [n for n in names if mask[n]]
    col = {n: j for j, n in enumerate(hidden)}
    lo = np.array([1.0 if display[n] == f"<{K}" else 0.0 for n in hidden])
    hi = np.array([K - 1.0 if display[n] == f"<{K}" else np.inf for n in hidden])
    rows, rhs = [], []
    for total, members in lines:
        row, known = np.zeros(len(hidden)), 0.0
        for name, sign in [(total, -1), *((m, 1) for m in members)]:
            if name in col:
                row[col[name]] += sign
            else:
                known += sign * values[name]
        if row.any():
            rows.append(row)
            rhs.append(-known)
    constraints = LinearConstraint(np.array(rows), rhs, rhs)
    small = [n for n in hidden if 1 <= values[n] <= K - 1]
    assert small  # the table has small counts to protect
    for name in small:
        c = np.zeros(len(hidden))
        c[col[name]] = 1
        low = milp(
            c, constraints=constraints, integrality=np.ones(len(hidden)), bounds=Bounds(lo, hi)
        )
        high = milp(
            -c, constraints=constraints, integrality=np.ones(len(hidden)), bounds=Bounds(lo, hi)
        )
        top = high.x[col[name]] if high.x is not None else np.inf
        assert top - low.x[col[name]] >= 0.5, f"{name} pinned to {low.x[col[name]]}"
