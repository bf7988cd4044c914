"""One clinic's quarterly audit from a partitioned registry, and the tables partition by partition.

Input: a cohort folder of Parquet input tables (``bench_scale.py --work DIR`` keeps them as
``DIR/<rows>/parquet``). Steps, each in a fresh child process whose peak resident memory is read
with ``os.wait4``:

1. **build**: the cohort written as a registry (:func:`hipdata.registry.write_partitioned`,
   Arrow only). The generator's four clinics are split into ``--split`` clinics each by a keyed
   hash of the patient id (clinicians split alike, ``C01-T1`` -> ``C01.03-T1`` in ``C01.03``),
   so the registry looks like a network of many clinics. The generator's rows are valid by
   construction and are validated again when the registry is loaded.
2. **clinic audit**: ``hipdata.load(registry, clinics=[one], quarters=quarter_window(Q))``, its
   contract tables and :func:`hipdata.analysis.audit.audit_indicators` for the window: seconds per
   step, the files and bytes the load read (the pushed-down scan) against the registry's.
3. **partitions**: :func:`hipdata.registry.metrics_by_partition` over that clinic's partitions
   (peak memory is one partition's, whatever the registry's size).
4. with ``--all-partitions``: every partition's tables (the registry's whole ``hipdata metrics``
   in bounded memory); with ``--whole``: the audit of every clinic through the same path.

Results are appended to ``OUT/registry_results.csv``.

Run: ``python benchmarks/bench_registry.py /tmp/bench/10000000/parquet --label 1e7``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

TODAY = "2026-11-28"
#: The audit quarter: the latest complete quarter of the generator's default period.
QUARTER = "2026Q3"


def build(cohort: Path, root: Path, split: int, buckets: int) -> dict:
    import pyarrow.parquet as pq

    from hipdata.registry import REGISTRY_TABLES, patient_bucket, write_partitioned

    patients = pq.read_table(cohort / "patients.parquet").to_pandas()
    part = patient_bucket(patients["patient_id"] + "~split", split)
    suffix = [f".{p + 1:02d}" for p in part]
    patients["clinic_id"] = patients["clinic_id"].astype(str) + suffix
    clinician = patients["clinician_id"].astype(str).str.split("-", n=1, expand=True)
    patients["clinician_id"] = clinician[0] + suffix + "-" + clinician[1]
    keys = patients[["patient_id", "clinic_id"]].assign(
        bucket=patient_bucket(patients["patient_id"], buckets)
    )
    import pyarrow as pa

    write_partitioned(pa.Table.from_pandas(patients, preserve_index=False), root / "patients", keys)
    for name in REGISTRY_TABLES[1:]:
        if (cohort / f"{name}.parquet").exists():
            write_partitioned(pq.read_table(cohort / f"{name}.parquet"), root / name, keys)
    return {"clinics": int(keys["clinic_id"].nunique()), "patients": len(patients)}


def clinic_audit(root: Path, clinics: list[str] | None) -> dict:
    from hipdata import load
    from hipdata.analysis.audit import audit_indicators
    from hipdata.metrics import compute_all
    from hipdata.registry import quarter_window

    window = quarter_window(QUARTER)
    began = time.perf_counter()
    ds = load(root, clinics=clinics, quarters=window, today=TODAY)
    loaded = time.perf_counter()
    tables = compute_all(ds)
    computed = time.perf_counter()
    indicators = audit_indicators(ds, tables, quarters=window)
    done = time.perf_counter()
    scan = ds.load_report.attrs["registry_scan"]
    report = ds.load_report.set_index("table")
    return {
        "load_s": round(loaded - began, 3),
        "tables_s": round(computed - loaded, 3),
        "audit_s": round(done - computed, 3),
        "total_s": round(done - began, 3),
        "files_read": len(scan.files),
        "bytes_read": scan.bytes_read,
        "bytes_total": scan.bytes_total,
        "fraction_read": round(scan.fraction, 4),
        "patients": len(ds.patients),
        "set_rows": len(ds.sets),
        "set_rows_outside_filter": int(report.loc["exercises", "rows_outside_filter"]),
        "indicator_rows": len(indicators),
    }


def partitions_run(root: Path, out: Path, clinics: list[str]) -> dict:
    from hipdata.registry import metrics_by_partition

    began = time.perf_counter()
    counts = metrics_by_partition(root, out, clinics=clinics, today=TODAY)
    seconds = time.perf_counter() - began
    return {
        "partitions": len(counts),
        "set_rows": int(counts["sets"].sum()),
        "max_partition_set_rows": int(counts["sets"].max()),
        "total_s": round(seconds, 3),
        "seconds_per_partition": round(seconds / max(len(counts), 1), 3),
    }


def _child(step: str, *args: str) -> tuple[dict, float, int]:
    """Run ``step`` in a fresh interpreter: (its JSON result with its CPU seconds, wall seconds,
    peak RSS MiB). CPU seconds (user + system) say what the step costs on a busy machine, where
    wall seconds depend on the other jobs."""
    began = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, __file__, "--step", step, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - began
    stdout, stderr = process.stdout.read(), process.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{step} failed:\n{stderr[-3000:]}")
    result = json.loads(stdout.splitlines()[-1])
    result["cpu_s"] = round(usage.ru_utime + usage.ru_stime, 3)
    return result, seconds, round(usage.ru_maxrss / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cohort", type=Path, nargs="?", help="folder of Parquet input tables")
    parser.add_argument("--label", default="", help="size label for the results (e.g. 1e7)")
    parser.add_argument("--work", type=Path, default=None, help="registry folder (default: beside)")
    parser.add_argument("--out", type=Path, default=Path("reports/benchmarks"))
    parser.add_argument("--split", type=int, default=10, help="clinics per generated clinic")
    parser.add_argument("--buckets", type=int, default=4, help="patient-hash buckets per clinic")
    parser.add_argument("--whole", action="store_true", help="also audit every clinic")
    parser.add_argument(
        "--all-partitions", action="store_true", help="also compute every partition's tables"
    )
    parser.add_argument("--step", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        step, *rest = args.step
        if step == "build":
            result = build(Path(rest[0]), Path(rest[1]), int(rest[2]), int(rest[3]))
        elif step == "audit":
            result = clinic_audit(Path(rest[0]), json.loads(rest[1]))
        else:
            result = partitions_run(Path(rest[0]), Path(rest[1]), json.loads(rest[2]))
        print(json.dumps(result))
        return

    work = args.work or args.cohort.parent / "registry-bench"
    root = work / "registry"
    if not (root / "patients").is_dir():
        built, seconds, peak = _child(
            "build", str(args.cohort), str(root), str(args.split), str(args.buckets)
        )
        print(f"registry: {built['clinics']} clinics, built in {seconds:.0f} s, peak {peak} MiB")
    from hipdata.registry import partitions

    clinic = partitions(root)[0].clinic_id
    records = []

    def record(step: str, result: dict, seconds: float, peak: int) -> None:
        print(f"{step}: {seconds:.1f} s, peak {peak:,} MiB, {result}", flush=True)
        records.append(
            {"label": args.label, "step": step, "wall_s": round(seconds, 3), "peak_rss_mib": peak}
            | result
        )

    record("audit one clinic", *_child("audit", str(root), json.dumps([clinic])))
    out = work / "partition-tables"
    record(
        "metrics by partition, one clinic",
        *_child("partitions", str(root), str(out), json.dumps([clinic])),
    )
    if args.all_partitions:
        record(
            "metrics by partition, whole registry",
            *_child("partitions", str(root), str(work / "all-partition-tables"), "null"),
        )
    if args.whole:
        record("audit every clinic", *_child("audit", str(root), "null"))
    import pandas as pd

    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / "registry_results.csv"
    frame = pd.DataFrame.from_records(records)
    if target.exists():
        frame = pd.concat([pd.read_csv(target), frame], ignore_index=True)
    frame.to_csv(target, index=False)
    print(f"results in {target}")


if __name__ == "__main__":
    main()
