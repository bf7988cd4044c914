"""An attacker's integer program over everything the audit publishes pins no small count.

The attacker is written here independently of :mod:`hipdata.disclosure`: it reads only the
published long table (``audit_indicators.csv``: numerator and denominator of each unit, quarter
and indicator, empty when suppressed; ``"<k"`` for a suppressed count indicator that is small and
``"*"`` otherwise, a neutral marker: any count) and what every reader knows: clinicians (and the clinic's unpublished part)
sum to their clinic, clinics to the network, a proportion's numerator and complement to its
denominator, and NPRS pairs <= follow-ups <= discharges (and the other orderings of
:data:`hipdata.report.audit.ORDERED_QUANTITIES`). Every hidden count is minimised and maximised
with HiGHS; none may be pinned to a single value in 1..k-1. The true values come from the same
audit computed with nothing suppressed (``k=1``), so no demo number is written here.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import Bounds, LinearConstraint, milp

import hipdata
from hipdata.metrics import compute_all
from hipdata.report import audit
from hipdata.synth import generate

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"
K = 5


def _quantities(row_kind: str, indicator) -> list[tuple[str, str]]:
    """(published column, quantity) pairs of an indicator row."""
    if row_kind == "count":
        return [("numerator", indicator.numerator)]
    return [("numerator", indicator.numerator), ("denominator", indicator.denominator)]


def attack(ds, tables, quarters, k=K):
    """Per hidden small count: (true value, attacker's min, attacker's max)."""
    published = audit.audit_indicators(ds, tables, quarters=quarters, k=k)
    truth = audit.audit_indicators(ds, tables, quarters=quarters, k=1)
    assert not truth["suppressed"].any()
    small = published.attrs["small_count"]
    _, nodes = audit._patient_nodes(ds.patients)
    node_of = {(r.level, r.unit): r.node for r in nodes.itertuples() if r.level != "hidden"}
    sums = set(audit._SUM_COUNTS)
    results = []
    for quarter in quarters:
        # unknown or known value of each (node, quantity)
        known: dict[tuple[str, str], float] = {}
        true: dict[tuple[str, str], float] = {}
        bounds: dict[tuple[str, str], tuple[float, float]] = {}
        rows = published["quarter"].eq(quarter)
        for i in published.index[rows]:
            pub, tru = published.loc[i], truth.loc[i]
            indicator = audit.INDICATORS[pub["indicator"]]
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
                key = (node, quantity)
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
        # hidden parts: every quantity of an unpublished node is an unknown >= 0 (sums: any)
        quantities = sorted({q for _, q in true} | {q for _, q in known})
        variables = [key for key in bounds] + [
            (n, q) for n in nodes.loc[nodes["level"].eq("hidden"), "node"] for q in quantities
        ]
        index = {key: j for j, key in enumerate(variables)}
        lo = np.array([bounds.get(v, (-np.inf if v[1] in sums else 0.0, 0))[0] for v in variables])
        hi = np.array([bounds.get(v, (0, np.inf))[1] for v in variables])
        integer = np.array([v[1] not in sums for v in variables])

        def term(node, quantity):
            key = (node, quantity)
            return (index[key], None) if key in index else (None, known.get(key, np.nan))  # noqa: B023 (used within the iteration)

        a_rows, lbs, ubs = [], [], []

        def add(terms, lower, upper):
            row = np.zeros(len(variables))  # noqa: B023 (used within the iteration)
            constant = 0.0
            for sign, (node, quantity) in terms:
                j, value = term(node, quantity)
                if j is None:
                    if np.isnan(value):
                        return
                    constant += sign * value
                else:
                    row[j] += sign
            if row.any():
                a_rows.append(row)  # noqa: B023 (used within the iteration)
                lbs.append(lower - constant)  # noqa: B023 (used within the iteration)
                ubs.append(upper - constant)  # noqa: B023 (used within the iteration)

        children = nodes[nodes["parent"].notna()].groupby("parent")["node"].apply(list)
        for quantity in quantities:
            for parent, kids in children.items():
                add([(1, (c, quantity)) for c in kids] + [(-1, (parent, quantity))], 0, 0)
        for ind in audit.INDICATORS.values():
            if ind.complement is not None:
                for node in nodes["node"]:
                    # numerator + complement = denominator
                    add(
                        [
                            (1, (node, ind.numerator)),
                            (1, (node, ind.complement)),
                            (-1, (node, ind.denominator)),
                        ],
                        0,
                        0,
                    )
        for smaller, larger in audit.ORDERED_QUANTITIES:
            for node in node_of.values():
                if true.get((node, smaller), 0) <= true.get((node, larger), 0):
                    add([(1, (node, smaller)), (-1, (node, larger))], -np.inf, 0)
        constraints = LinearConstraint(np.array(a_rows), lbs, ubs) if a_rows else ()
        targets = [key for key in bounds if key[1] not in sums and 1 <= true[key] <= k - 1]
        results += [
            (quarter, key, true[key], lo_, hi_)
            for key, (lo_, hi_) in solve_ranges(
                [index[key] for key in targets],
                [true[key] for key in targets],
                len(variables),
                constraints,
                integer,
                Bounds(lo, hi),
                targets,
                quarter,
            )
        ]
    return pd.DataFrame(results, columns=["quarter", "cell", "true", "lo", "hi"])


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
    quarter = audit.latest_complete_quarter(ds)
    quarters = audit.previous_quarters(quarter, 4) + [quarter]
    found = attack(ds, tables, quarters)
    assert len(found) > 0  # the demo has small counts to protect
    assert_nothing_pinned(found)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_small_synthetic_cohorts_pin_no_small_count(seed, tmp_path):
    folder = generate(40, seed=seed, n_clinics=3, clinicians_per_clinic=2).write(tmp_path)
    ds = hipdata.load(folder, today="2026-11-27")
    tables = compute_all(ds)
    quarter = audit.latest_complete_quarter(ds)
    quarters = audit.previous_quarters(quarter, 2) + [quarter]
    assert_nothing_pinned(attack(ds, tables, quarters))


def test_cohort_table_counts_are_not_pinned_by_differencing():
    # A clinic x sex table as cohort Table 1 builds it (rows add to N, clinics to "All").
    # X = 1 in A and 2 in B, M = 3 in B: primary. Line by line, hiding the next-smallest cell
    # of each line can still leave the whole system pinning a "<5"; the reader here solves it.
    from hipdata.report.cohort import protect_counts

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
    display, mask = protect_counts(values, lines, k=K)
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
