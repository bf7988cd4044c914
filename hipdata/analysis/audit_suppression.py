"""Disclosure control of the audit's cells: the units' tree and whole-system suppression.

Each published figure of :func:`hipdata.analysis.audit.audit_indicators` is built from additive
counts (*quantities*: ``sessions``, ``sessions_flare``, ``episodes_completed``, ...) of a period
(a quarter, or several quarters pooled) and a node (the network, a clinic, a clinician, or a
clinic's unpublished part). A count from 1 to ``k - 1`` is suppressed; for a proportion the
complement (denominator - numerator) is a count the published pair reveals, so it is suppressed
by the same rule. Secondary suppression (:func:`hipdata.disclosure.protect_cells`) then protects
every additive line: clinicians within their clinic, clinics within the network,
``denominator = numerator + complement`` within a unit, and a pooled period as the sum of its
quarters. A mean's sum is suppressed with its count.

What a reader may learn from the display is part of the protection: for count indicators a
suppressed cell may be shown as ``"<k"`` (a count 1..k-1) or ``"*"`` (neutral: any count), and
the secondary suppression allows for that. The whole published set is then attacked as one
integer program (every line at once and the orderings of :data:`ORDERED_QUANTITIES`), and cells
are added until no small count is pinned (``protect_cells(k=...)``); a ``"<k"`` that the markers
alone would pin is shown ``"*"`` instead (``relaxed``). For proportions and means it assumes only
that a suppressed figure is hidden: show those with one neutral marker.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hipdata.analysis.indicators import INDICATORS, SUM_COUNTS
from hipdata.disclosure import protect_cells, small_count_mask

__all__ = ["NETWORK_NODE", "NETWORK_UNIT", "ORDERED_QUANTITIES", "patient_nodes", "suppress_cells"]

#: The network's unit id in the published table, and its node.
NETWORK_UNIT = "all"
NETWORK_NODE = "network:all"


def patient_nodes(patients: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Which nodes each patient counts in, and the node table (node, level, unit, parent).

    A clinician seen in one clinic is a child of that clinic. Patients without a clinician, and
    those of a clinician seen in several clinics, form a hidden part of their clinic (never
    published; it keeps the clinic = sum of clinicians equation honest).
    """
    patients = patients[["patient_id", "clinic_id", "clinician_id"]].astype(
        {"patient_id": "str", "clinic_id": "str"}
    )
    clinician = patients["clinician_id"]
    has_clinician = clinician.notna()
    clinics_per_clinician = patients[has_clinician].groupby("clinician_id")["clinic_id"].nunique()
    single = clinician.map(clinics_per_clinician).eq(1).fillna(False)

    clinic_node = "clinic:" + patients["clinic_id"]
    clinician_node = "clinician:" + clinician.astype("str")
    hidden_node = "hidden:" + patients["clinic_id"]
    membership = pd.concat(
        [
            pd.DataFrame({"patient_id": patients["patient_id"], "node": NETWORK_NODE}),
            pd.DataFrame({"patient_id": patients["patient_id"], "node": clinic_node}),
            pd.DataFrame({"patient_id": patients["patient_id"], "node": clinician_node})[
                has_clinician
            ],
            pd.DataFrame({"patient_id": patients["patient_id"], "node": hidden_node})[~single],
        ],
        ignore_index=True,
    )
    nodes = pd.concat(
        [
            pd.DataFrame(
                {"node": [NETWORK_NODE], "level": "network", "unit": NETWORK_UNIT, "parent": None}
            ),
            pd.DataFrame(
                {
                    "node": clinic_node,
                    "level": "clinic",
                    "unit": patients["clinic_id"],
                    "parent": NETWORK_NODE,
                }
            ),
            pd.DataFrame(
                {
                    "node": clinician_node,
                    "level": "clinician",
                    "unit": clinician.astype("str"),
                    "parent": clinic_node.where(single),
                }
            )[has_clinician],
            pd.DataFrame(
                {"node": hidden_node, "level": "hidden", "unit": "", "parent": clinic_node}
            )[~single],
        ],
        ignore_index=True,
    ).drop_duplicates("node")
    return membership, nodes.reset_index(drop=True)


def suppress_cells(
    cells: pd.DataFrame,
    nodes: pd.DataFrame,
    *,
    k: int,
    pooled: dict[str, list[str]] | None = None,
    unpublished: pd.Series | None = None,
) -> pd.DataFrame:
    """Primary and secondary suppression of the period x node x quantity cells.

    Parameters
    ----------
    cells : DataFrame
        ``quarter`` (a period label), ``node``, ``quantity``, ``value``: every combination.
    nodes : DataFrame
        The node table of :func:`patient_nodes`.
    k : int
        Counts 1..k-1 are suppressed.
    pooled : dict, optional
        Pooled period label -> the quarters it sums (each a period of ``cells``): a reader
        knows the pooled cell is the sum of those quarters' cells.
    unpublished : Series of bool, optional
        Cells of published levels that are not published (e.g. clinicians in earlier quarters):
        unknown to a reader like a clinic's hidden part, never chosen, never protected.

    Returns
    -------
    DataFrame
        Bool columns ``suppressed`` and ``relaxed`` (a small count shown ``"*"``), on
        ``cells``' index.
    """
    is_sum = cells["quantity"].isin(SUM_COUNTS)
    base = cells["quantity"].map(SUM_COUNTS).fillna(cells["quantity"])
    keyed = cells.set_index(["quarter", "node", "quantity"])["value"]
    size = pd.Series(
        keyed.reindex(
            pd.MultiIndex.from_arrays([cells["quarter"], cells["node"], base])
        ).to_numpy(),
        index=cells.index,
    )
    level = cells["node"].map(nodes.set_index("node")["level"])
    off = level.eq("hidden")
    if unpublished is not None:
        off |= unpublished.reindex(cells.index, fill_value=False).astype(bool)
    hidden = off & (size != 0)
    primary = small_count_mask(cells["value"], k=k) & ~is_sum
    # A count published as a count indicator may be shown as "<k" (primary) or "*" (secondary),
    # so a reader knows 1..k-1 or >= k; other quantities are only known to be >= 0 (sums: any).
    shown_as_count = (
        cells["quantity"].isin([i.numerator for i in INDICATORS.values() if i.kind == "count"])
        & ~off
    )
    lo = np.where(is_sum, -np.inf, 0.0)
    engine_cells = pd.DataFrame(
        {
            "value": cells["value"],
            "suppressed": primary,
            "lo": np.where(shown_as_count & primary, 1.0, lo),
            "hi": np.where(shown_as_count & primary, k - 1.0, np.inf),
            # "*" is neutral: a hidden count may be small (a relaxed "<k") or not
            "secondary_lo": lo,
            "secondary_hi": np.inf,
            "size": size.where(~off, 0.0),
            "hidden": hidden,
            "link": cells["quarter"] + "|" + cells["node"] + "|" + base,
        }
    )
    cell_id = pd.Series(
        cells.index, index=pd.MultiIndex.from_frame(cells[["quarter", "node", "quantity"]])
    )

    # clinicians within their clinic (and its hidden part), clinics within the network
    parent = cells["node"].map(nodes.set_index("node")["parent"])
    members = cells.assign(parent=parent)[parent.notna()]
    members = members.assign(
        line="h|" + members["quarter"] + "|" + members["quantity"] + "|" + members["parent"],
        cell=members.index,
        sign=1,
    )
    totals = members[["line", "quarter", "parent", "quantity"]].drop_duplicates("line")
    totals = totals.assign(
        cell=cell_id.reindex(
            pd.MultiIndex.from_frame(totals[["quarter", "parent", "quantity"]])
        ).to_numpy(),
        sign=-1,
    )

    # denominator = numerator + complement within each published unit
    parts = [
        (i.denominator, i.numerator, i.complement)
        for i in INDICATORS.values()
        if i.complement is not None
    ]
    partition = pd.DataFrame(parts, columns=["denominator", "numerator", "complement"])
    partition = partition.drop_duplicates().reset_index(drop=True)
    partition["key"] = partition.index.astype("str")
    roles = partition.melt(id_vars="key", var_name="role", value_name="quantity")
    published = cells[~level.eq("hidden")]
    split = published.assign(cell=published.index).merge(roles, on="quantity")
    split = split.assign(
        line="p|" + split["quarter"] + "|" + split["node"] + "|" + split["key"],
        sign=np.where(split["role"] == "denominator", -1, 1),
    )

    lines = pd.concat(
        [
            members[["line", "cell", "sign"]],
            totals[["line", "cell", "sign"]],
            split[["line", "cell", "sign"]],
            _pooled_lines(cells, pooled or {}, leaves=set(nodes["node"]) - set(nodes["parent"])),
        ],
        ignore_index=True,
    )
    lines["line"] = lines["line"].astype("category").cat.codes
    # what every reader also knows: a count within a unit never exceeds the count it is part of
    engine_cells["protect"] = primary & ~is_sum
    engine_cells["integer"] = ~is_sum
    result = protect_cells(engine_cells, lines, inequalities=_inequalities(cells, cell_id), k=k)
    return result[["suppressed", "relaxed"]]


#: Logical constraints within a unit and quarter: (smaller, larger) quantities.
ORDERED_QUANTITIES = (
    ("nprs_pairs", "episodes_followup"),
    ("episodes_followup", "episodes_discharged"),
    ("episodes_attendance_known", "episodes_discharged"),
    ("episodes_dose_known", "episodes_discharged"),
    ("episodes_activity_known", "episodes_discharged"),
    ("active_patients", "sessions"),
    ("sessions_flare_known", "sessions"),
)


def _inequalities(cells: pd.DataFrame, cell_id: pd.Series) -> pd.DataFrame:
    """Cell pairs ``(smaller, larger)`` of :data:`ORDERED_QUANTITIES` in every quarter and node.

    Only pairs the data satisfy are kept (all of them, when the definitions hold), so the
    attacker's program is never made infeasible by a definition that differs at the edges.
    """
    keys = cells[["quarter", "node"]].drop_duplicates()
    parts = []
    for smaller, larger in ORDERED_QUANTITIES:
        small_id = cell_id.reindex(pd.MultiIndex.from_frame(keys.assign(q=smaller))).to_numpy()
        large_id = cell_id.reindex(pd.MultiIndex.from_frame(keys.assign(q=larger))).to_numpy()
        parts.append(pd.DataFrame({"smaller": small_id, "larger": large_id}))
    pairs = pd.concat(parts, ignore_index=True).dropna()
    value = cells["value"]
    holds = value.reindex(pairs["smaller"]).to_numpy() <= value.reindex(pairs["larger"]).to_numpy()
    return pairs[holds].astype("int64").reset_index(drop=True)


def _pooled_lines(
    cells: pd.DataFrame, pooled: dict[str, list[str]], *, leaves: set
) -> pd.DataFrame:
    """A pooled period's cell = the sum of its quarters' cells, per leaf node and quantity.

    Only the leaves (clinicians and clinics' unpublished parts) need the line: a clinic's (the
    network's) pooled cell is the sum of its children's in the pooled period's own lines, so its
    sum over quarters follows. Fewer redundant equations keep the solver's presolve stable.
    """
    if not pooled:
        return pd.DataFrame(columns=["line", "cell", "sign"])
    window = pd.DataFrame(
        [(period, quarter) for period, quarters in pooled.items() for quarter in quarters],
        columns=["period", "quarter"],
    )
    # counts only: a mean's sum is suppressed with its count, and exact float sums over quarters
    # in a second set of equations make the solver's presolve call the system infeasible
    cells = cells[~cells["quantity"].isin(SUM_COUNTS) & cells["node"].isin(leaves)]
    key = cells["node"] + "|" + cells["quantity"]
    totals = cells[cells["quarter"].isin(pooled)]
    totals = pd.DataFrame(
        {
            "line": "t|" + totals["quarter"] + "|" + key[totals.index],
            "cell": totals.index,
            "sign": -1,
        }
    )
    members = cells.assign(cell=cells.index, key=key).merge(window, on="quarter")
    members = pd.DataFrame(
        {
            "line": "t|" + members["period"] + "|" + members["key"],
            "cell": members["cell"],
            "sign": 1,
        }
    )
    return pd.concat([totals, members], ignore_index=True)
