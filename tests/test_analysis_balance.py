"""Table 1 by any grouping (hipdata.analysis.balance) and the patient flow (analysis.flow).

Counts are checked against independent pandas crosstabs of the patients table; with ``k=1``
nothing is suppressed, so every printed count must equal the crosstab's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hipdata
from hipdata.analysis.balance import smd_categorical, smd_continuous, table_one
from hipdata.analysis.flow import FLOW_LINES, patient_flow
from hipdata.metrics import compute_all

DEMO = "data/demo"


@pytest.fixture(scope="module")
def demo():
    ds = hipdata.load(DEMO, today="2026-11-27")
    tables = {**compute_all(ds), "patients": ds.patients}
    return ds, tables


def _count(cell: str) -> int:
    return int(cell.split(" (")[0].replace(",", ""))


def test_table_one_by_sex_counts_equal_a_crosstab(demo):
    ds, tables = demo
    table = table_one(tables, by="sex", k=1).set_index("Characteristic")
    sex = ds.patients["sex"].where(ds.patients["sex"].isin(["F", "M", "X"]))
    labels = sex.map({"F": "Female", "M": "Male", "X": "X (diverse)"}).fillna("Not recorded")
    sizes = labels.value_counts()
    groups = [c for c in table.columns if c not in ("All", "SMD")]
    assert set(groups) == set(sizes.index)
    assert {g: _count(table.at["Patients", g]) for g in groups} == sizes.to_dict()
    assert _count(table.at["Patients", "All"]) == len(ds.patients) == 300
    # the grouping is not a row; the other characteristics are
    assert "Sex, n (%)" not in table.index and "Condition, n (%)" in table.index
    athletes = pd.crosstab(ds.patients["athlete"].astype("boolean"), labels.to_numpy())
    for group in groups:
        assert _count(table.loc["    Yes", group]) == athletes.loc[True, group]


def test_table_one_by_clinic_with_k_1_shows_every_count(demo):
    ds, tables = demo
    table = table_one(tables, by="clinic_id", k=1).set_index("Characteristic")
    crosstab = pd.crosstab(ds.patients["condition"], ds.patients["clinic_id"])
    row = table.loc["    Hip osteoarthritis"]
    for clinic in crosstab.columns:
        n = crosstab.loc["hip_oa", clinic]
        share = 100 * n / (ds.patients["clinic_id"] == clinic).sum()
        assert row[clinic] == f"{n} ({share:.0f}%)"
    # the baseline row reads the outcome_change table: NPRS baseline mean over all patients
    change = tables["outcome_change"]
    baseline = change.loc[change["measure"] == "nprs", "baseline"].astype("float64")
    assert table.at["Baseline NPRS pain (0-10), mean (SD)", "All"].startswith(
        f"{baseline.mean():.1f} ("
    )


def test_table_one_from_a_dataset_equals_from_tables(demo):
    ds, tables = demo
    from_ds = table_one(ds, by="condition")
    from_tables = table_one(tables, by="condition")
    pd.testing.assert_frame_equal(from_ds, from_tables)
    assert "Hip osteoarthritis" in from_ds.columns  # condition labels as column headers
    assert from_ds.to_csv(index=False).startswith("Characteristic,")
    assert "\\begin{tabular}" in from_ds.to_latex(index=False)


def test_table_one_rejects_a_column_that_is_not_a_grouping(demo):
    _, tables = demo
    with pytest.raises(ValueError, match="not a column"):
        table_one(tables, by="arm")
    with pytest.raises(ValueError, match="groups"):
        table_one(tables, by="patient_id")


def test_table_one_free_text_condition_is_never_a_label(demo):
    ds, tables = demo
    patients = ds.patients.copy()
    patients.loc[patients.index[:6], "condition"] = "jane doe (p00017)"
    table = table_one({**tables, "patients": patients}, by="condition")
    assert not table.columns.str.contains("jane").any()
    assert not table.astype(str).apply(lambda c: c.str.contains("jane")).any().any()


def test_smd_hand_values():
    # continuous: |1 - 0| / sqrt((1 + 1) / 2) = 1
    assert smd_continuous(1.0, 1.0, 0.0, 1.0) == pytest.approx(1.0)
    # binary: |0.5 - 0.7| / sqrt((0.5 * 0.5 + 0.7 * 0.3) / 2) = 0.2 / sqrt(0.23)
    assert smd_categorical([0.5, 0.5], [0.3, 0.7]) == pytest.approx(0.2 / np.sqrt(0.23))


def test_patient_flow_is_a_function_of_tables_and_its_lines_hold(demo):
    _, tables = demo
    flow = patient_flow(tables).set_index("stage")["n"]
    for total, members in FLOW_LINES:
        assert flow[total] == sum(flow[m] for m in members)
    treated = tables["patients"]["patient_id"].isin(tables["sessions"]["patient_id"])
    assert flow["treated"] == treated.sum()
