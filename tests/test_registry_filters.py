"""``hipdata.load(..., clinics=, quarters=)``: from a plain folder (filtered after loading) and from
a partitioned registry (pushed down to the partitions), the same patients, rows, tables and
audit figures as loading everything and filtering; rows not selected are counted, not lost."""

from __future__ import annotations

import pandas as pd
import pytest

import hipdata
from hipdata.analysis.audit import audit_indicators
from hipdata.errors import DataError
from hipdata.metrics import compute_all
from hipdata.registry import quarter_window, selected_patients, write_registry
from hipdata.synth import generate

TODAY = "2026-11-28"
TABLE_KEYS = {
    "sets": ["patient_id", "date", "exercise", "set"],
    "sessions": ["patient_id", "date"],
    "family_sessions": ["patient_id", "family", "date"],
    "weekly_load": ["patient_id", "week", "family"],
    "progressions": ["patient_id", "family", "date"],
    "patient_summary": ["patient_id"],
    "outcome_change": ["patient_id", "measure"],
}
DATASET_KEYS = {
    "patients": ["patient_id"],
    "sets": TABLE_KEYS["sets"],
    "activity": ["patient_id", "date"],
    "outcomes": ["patient_id", "date", "measure"],
    "treatments": ["patient_id", "date", "treatment"],
}


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    drop = [c for c in ("source_file", "source_row") if c in frame.columns]
    return frame.drop(columns=drop).sort_values(keys, kind="stable").reset_index(drop=True)


def _same_rows(got, expected) -> None:
    for name, keys in DATASET_KEYS.items():
        pd.testing.assert_frame_equal(
            _sorted(getattr(got, name), keys), _sorted(getattr(expected, name), keys)
        )


def _only(frame: pd.DataFrame, ids) -> pd.DataFrame:
    return frame[frame["patient_id"].isin(set(ids))]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cohort")
    generate(80, seed=11, n_clinics=4).write(folder)
    whole = hipdata.load(folder, today=TODAY)
    root = write_registry(whole, tmp_path_factory.mktemp("registry") / "reg", buckets=4)
    return folder, whole, root


def test_selection_rule_on_hand_made_episodes():
    # Quarter 2026Q2 = 2026-04-01 .. 2026-06-30. Expected by the rule, case by case:
    patients = pd.DataFrame(
        {
            "patient_id": ["in", "before", "after", "open", "warmup", "late_row", "other"],
            "clinic_id": ["A", "A", "A", "A", "A", "A", "B"],
            "start_date": pd.to_datetime(
                [
                    "2026-01-10",
                    "2025-10-01",
                    "2026-07-01",
                    "2025-01-01",
                    "2026-07-03",
                    "2025-11-01",
                    "2026-05-01",
                ]  # fmt: skip
            ),
            "discharge_date": pd.to_datetime(
                ["2026-04-02", "2026-03-31", None, None, None, "2026-03-01", "2026-06-01"]
            ),
        }
    )
    sets = pd.DataFrame(
        {
            # "warmup": a session in the week before the start, dated 2026-06-28 (in Q2);
            # "late_row": a session logged after the discharge, on 2026-04-15 (in Q2);
            # "after": its sessions are all in Q3.
            "patient_id": ["warmup", "late_row", "after"],
            "date": pd.to_datetime(["2026-06-28", "2026-04-15", "2026-07-02"]),
        }
    )
    got = selected_patients(patients, [sets], quarters=["2026Q2"])
    # in: discharged 2026-04-02 (in Q2) -> yes; before: discharged 2026-03-31 -> no;
    # after: starts 2026-07-01 -> no; open: started 2025, never discharged -> yes;
    # warmup: its first row is in Q2 -> yes; late_row: its last row is in Q2 -> yes; other: yes
    assert got.tolist() == [True, False, False, True, True, True, True]
    by_clinic = selected_patients(patients, [sets], clinics=["B"], quarters=["2026Q2"])
    assert by_clinic.tolist() == [False] * 6 + [True]
    # two quarters: the union (2025Q4 adds "before", which is in care then)
    two = selected_patients(patients, [sets], quarters=["2025Q4", "2026Q2"])
    assert two.tolist() == [True, True, False, True, True, True, True]
    with pytest.raises(ValueError, match="calendar quarters"):
        selected_patients(patients, [sets], quarters=["2026-13"])


def test_quarter_window_is_the_quarter_and_its_trend():
    assert quarter_window("2026Q1") == ["2025Q1", "2025Q2", "2025Q3", "2025Q4", "2026Q1"]
    assert quarter_window("2026Q1", previous=1) == ["2025Q4", "2026Q1"]


def test_plain_folder_clinic_filter_equals_load_then_filter(cohort):
    folder, whole, _ = cohort
    one = hipdata.load(folder, clinics=["C03"], today=TODAY)
    mine = whole.patients.loc[whole.patients["clinic_id"] == "C03", "patient_id"]
    assert set(one.patients["patient_id"]) == set(mine) and len(mine) > 0
    for name in DATASET_KEYS:
        pd.testing.assert_frame_equal(
            _sorted(getattr(one, name), DATASET_KEYS[name]),
            _sorted(_only(getattr(whole, name), mine), DATASET_KEYS[name]),
        )
    # every row read is kept, quarantined, or outside the filter; nothing else
    report = one.load_report
    assert (
        report["rows_read"]
        == report["rows_kept"] + report["rows_quarantined"] + report["rows_outside_filter"]
    ).all()
    sets_row = report.set_index("table").loc["exercises"]
    assert sets_row["rows_kept"] == len(one.sets)
    assert sets_row["rows_outside_filter"] == len(whole.sets) - len(one.sets) > 0
    assert one.meta["filter"]["clinics"] == ["C03"]
    pd.testing.assert_frame_equal(one.quarantine, whole.quarantine)


def test_plain_folder_metrics_equal_the_whole_filtered(cohort):
    folder, whole, _ = cohort
    one = hipdata.load(folder, clinics=["C01", "C02"], today=TODAY)
    mine = one.patients["patient_id"]
    full, part = compute_all(whole), compute_all(one)
    for name, keys in TABLE_KEYS.items():
        pd.testing.assert_frame_equal(
            _sorted(part[name], keys), _sorted(_only(full[name], mine), keys)
        )


def test_registry_clinic_filter_reads_only_its_partitions(cohort):
    folder, _, root = cohort
    from_registry = hipdata.load(root, clinics=["C02"], today=TODAY)
    from_folder = hipdata.load(folder, clinics=["C02"], today=TODAY)
    _same_rows(from_registry, from_folder)
    scan = from_registry.load_report.attrs["registry_scan"]
    assert scan.files and all("clinic_id=C02" in str(path) for path in scan.files)
    # four clinics of about equal size: a quarter of the bytes, well under half
    assert 0 < scan.fraction < 0.5
    full, part = compute_all(from_folder), compute_all(from_registry)
    for name, keys in TABLE_KEYS.items():
        pd.testing.assert_frame_equal(_sorted(part[name], keys), _sorted(full[name], keys))


def test_quarter_filter_gives_the_same_audit(cohort):
    folder, whole, root = cohort
    window = quarter_window("2026Q2", previous=2)
    full = audit_indicators(whole, compute_all(whole), quarters=window)
    for source in (folder, root):
        part = hipdata.load(source, quarters=window, today=TODAY)
        assert 0 < len(part.patients) < len(whole.patients)  # the filter does select
        got = audit_indicators(part, compute_all(part), quarters=window)
        # every unit keeps its figures (units without an episode in the window drop out)
        units = pd.MultiIndex.from_frame(got[["level", "unit"]])
        expected = full[pd.MultiIndex.from_frame(full[["level", "unit"]]).isin(units)]
        assert len(expected) == len(got)
        pd.testing.assert_frame_equal(
            pd.DataFrame(got).reset_index(drop=True),
            pd.DataFrame(expected).reset_index(drop=True),
            check_dtype=False,
        )
        report = part.load_report
        assert (
            report["rows_read"]
            == report["rows_kept"] + report["rows_quarantined"] + report["rows_outside_filter"]
        ).all()


def test_registry_quarters_and_clinics_equal_the_folder(cohort):
    folder, _, root = cohort
    window = quarter_window("2026Q1", previous=1)
    got = hipdata.load(root, clinics=["C04"], quarters=window, today=TODAY)
    expected = hipdata.load(folder, clinics=["C04"], quarters=window, today=TODAY)
    _same_rows(got, expected)
    assert got.meta["filter"]["quarters"] == window


def test_an_unknown_clinic_is_an_error_not_an_empty_load(cohort):
    folder, _, root = cohort
    for source in (folder, root):
        with pytest.raises(DataError, match="no clinic C99") as error:
            hipdata.load(source, clinics=["C01", "C99"], today=TODAY)
        assert "C01, C02, C03, C04" in str(error.value)  # the fix lists the known clinics


def test_clinic_ids_that_look_like_numbers_stay_text(tmp_path):
    cohort = generate(12, seed=3, n_clinics=2)
    tables = cohort.tables
    tables["patients"]["clinic_id"] = tables["patients"]["clinic_id"].map(
        {"C01": "007", "C02": "010"}
    )
    cohort.write(tmp_path / "in")
    whole = hipdata.load(tmp_path / "in", today=TODAY)
    root = write_registry(whole, tmp_path / "reg", buckets=2)
    one = hipdata.load(root, clinics=["007"], today=TODAY)
    assert set(one.patients["clinic_id"]) == {"007"}
    assert len(one.patients) == int((whole.patients["clinic_id"] == "007").sum())
