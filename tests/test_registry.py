"""A partitioned registry: a clinic's slice reads only its files, and the tables computed
partition by partition (in turn, or on a local Dask cluster) equal the single-process tables."""

from __future__ import annotations

import pandas as pd
import pytest

import hipdata
from hipdata.metrics import compute_all
from hipdata.registry import (
    load_registry,
    metrics_by_partition,
    partitions,
    patient_bucket,
    read_partitioned,
    write_registry,
)
from hipdata.synth import generate

TODAY = "2026-11-28"
#: Per-patient tables and the columns that identify a row of each (for order-free comparison).
KEYS = {
    "sets": ["patient_id", "date", "exercise", "set"],
    "sessions": ["patient_id", "date"],
    "family_sessions": ["patient_id", "family", "date"],
    "weekly_load": ["patient_id", "week", "family"],
    "progressions": ["patient_id", "family", "date"],
    "patient_summary": ["patient_id"],
    "outcome_change": ["patient_id", "measure"],
}


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    drop = [c for c in ("source_file", "source_row") if c in frame.columns]
    return frame.drop(columns=drop).sort_values(keys, kind="stable").reset_index(drop=True)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cohort")
    generate(60, seed=5, n_clinics=3).write(folder)
    ds = hipdata.load(folder, today=TODAY)
    root = write_registry(ds, tmp_path_factory.mktemp("registry") / "reg", buckets=4)
    return ds, root


def test_bucket_is_a_fixed_function_of_the_id():
    ids = pd.Series(["P001", "P002", "P003", "P001"])
    buckets = patient_bucket(ids, 8)
    assert buckets[0] == buckets[3]
    assert ((buckets >= 0) & (buckets < 8)).all()
    # fixed across runs and machines: pandas' keyed hash of the text, not Python's salted hash()
    assert patient_bucket(pd.Series(["P001"]), 8).tolist() == [buckets[0]]


def test_whole_registry_loads_as_the_source(registry):
    ds, root = registry
    again = load_registry(root, today=TODAY)
    assert again.quarantine.empty
    for name, keys in {"patients": ["patient_id"], "sets": KEYS["sets"]}.items():
        expected = _sorted(getattr(ds, name), keys)
        got = _sorted(getattr(again, name), keys)
        pd.testing.assert_frame_equal(got, expected)


def test_one_clinic_reads_only_its_partitions(registry):
    ds, root = registry
    clinic = "C02"
    one = load_registry(root, clinics=[clinic], today=TODAY)
    scan = one.load_report.attrs["registry_scan"]
    assert set(one.patients["clinic_id"]) == {clinic}
    mine = set(ds.patients.loc[ds.patients["clinic_id"] == clinic, "patient_id"])
    assert set(one.patients["patient_id"]) == mine
    assert len(one.sets) == int(ds.sets["patient_id"].isin(mine).sum())
    # every file read lies in the clinic's folders, and they are a fraction of the registry
    assert all(f"clinic_id={clinic}" in str(path) for path in scan.files)
    assert 0 < scan.fraction < 0.6


def test_quarters_keep_episodes_active_in_them(registry):
    ds, root = registry
    quarter = pd.Period("2026Q2", freq="Q")
    got = load_registry(root, quarters=["2026Q2"], today=TODAY)
    start, discharge = ds.patients["start_date"], ds.patients["discharge_date"]
    active = (start <= quarter.end_time) & (discharge.isna() | (discharge >= quarter.start_time))
    assert set(got.patients["patient_id"]) == set(ds.patients.loc[active, "patient_id"])


def test_tables_by_partition_equal_the_whole(registry, tmp_path):
    ds, root = registry
    whole = compute_all(ds)
    counts = metrics_by_partition(root, tmp_path / "out", today=TODAY)
    assert len(counts) == len(partitions(root))
    for name, keys in KEYS.items():
        stacked = read_partitioned(tmp_path / "out", name)
        assert counts[name].sum() == len(whole[name])
        pd.testing.assert_frame_equal(
            _sorted(stacked, keys), _sorted(whole[name], keys), check_dtype=False
        )


def test_dask_cluster_gives_the_same_tables(registry, tmp_path):
    distributed = pytest.importorskip("distributed")
    _, root = registry
    metrics_by_partition(root, tmp_path / "serial", today=TODAY)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        with distributed.Client(cluster) as client:
            metrics_by_partition(root, tmp_path / "dask", client=client, today=TODAY)
    for name, keys in KEYS.items():
        pd.testing.assert_frame_equal(
            _sorted(read_partitioned(tmp_path / "dask", name), keys),
            _sorted(read_partitioned(tmp_path / "serial", name), keys),
        )
