"""The audit's per-unit cells against a plain per-session / per-episode computation.

:func:`hipdata.analysis.audit.audit_indicators` sums each patient's records per quarter first
(one row per patient and quarter) and then per unit. Here the session counts are summed the
plain way, one row per session straight into its unit (a loop-free pandas group-by written
from CONTRACT §4/§6, independent of the audit's code), and must equal the published (``k=1``)
numerators and denominators of every unit and quarter. So must what
:func:`hipdata.analysis.audit.patient_contributions` gives per patient.
"""

import numpy as np
import pandas as pd
import pytest

import hipdata
from hipdata.analysis.audit import (
    audit_indicators,
    latest_complete_quarter,
    patient_contributions,
    previous_quarters,
)
from hipdata.metrics import compute_all
from hipdata.synth import generate


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    folder = generate(60, seed=7, n_clinics=3, clinicians_per_clinic=2).write(
        tmp_path_factory.mktemp("cohort")
    )
    ds = hipdata.load(folder, today="2026-11-27")
    return ds, compute_all(ds)


def _plain_session_counts(ds, tables):
    """Per unit and quarter: sessions, sessions with both pains, flares, active patients."""
    sessions = tables["sessions"]
    both = sessions["max_pain_during"].notna() & sessions["pain_24h"].notna()
    frame = pd.DataFrame(
        {
            "patient_id": sessions["patient_id"].astype("str"),
            "quarter": sessions["date"].dt.to_period("Q").astype("str"),
            "sessions": 1.0,
            "known": both.astype(float),
            "flare": (both & sessions["flare"].astype("boolean").fillna(False)).astype(float),
        }
    )
    units = ds.patients[["patient_id", "clinic_id", "clinician_id"]].astype({"patient_id": "str"})
    frame = frame.merge(units, on="patient_id")
    out = []
    for level, column in (("clinic", "clinic_id"), ("clinician", "clinician_id")):
        grouped = frame.groupby(["quarter", column])
        counts = grouped[["sessions", "known", "flare"]].sum()
        counts["active"] = grouped["patient_id"].nunique().astype(float)
        out.append(counts.rename_axis(["quarter", "unit"]).reset_index().assign(level=level))
    return pd.concat(out, ignore_index=True)


def test_session_cells_equal_the_plain_sums(cohort):
    ds, tables = cohort
    quarter = latest_complete_quarter(ds)
    quarters = previous_quarters(quarter, 3) + [quarter]
    table = audit_indicators(ds, tables, quarters=quarters, k=1)
    plain = _plain_session_counts(ds, tables)
    plain = plain[plain["quarter"].isin(quarters)]
    assert len(plain) > 10  # several units and quarters with sessions
    rows = table.set_index(["level", "unit", "quarter", "indicator"])
    for row in plain.itertuples():
        key = (row.level, str(row.unit), row.quarter)
        assert rows.loc[(*key, "sessions"), "numerator"] == row.sessions
        assert rows.loc[(*key, "active_patients"), "numerator"] == row.active
        flare = rows.loc[(*key, "flare_rate")]
        assert flare["numerator"] == row.flare
        assert flare["denominator"] == row.known


def test_patient_contributions_equal_the_plain_sums(cohort):
    ds, tables = cohort
    quarter = latest_complete_quarter(ds)
    wide = patient_contributions(ds, tables, quarters=[quarter])
    sessions = tables["sessions"]
    in_quarter = sessions[sessions["date"].dt.to_period("Q").astype("str").eq(quarter)]
    plain = in_quarter.groupby(in_quarter["patient_id"].astype("str")).size()
    got = wide.groupby("patient_id")["sessions"].sum()
    got = got[got > 0]
    pd.testing.assert_series_equal(
        got.sort_index(), plain.astype(float).sort_index(), check_names=False
    )
    # a discharged patient's episode counts once, in its discharge quarter
    discharged = ds.patients["discharge_date"].dt.to_period("Q").astype("str").eq(quarter)
    assert wide["episodes_discharged"].sum() == discharged.sum()
    assert np.isin(wide["quarter"], [quarter]).all()
