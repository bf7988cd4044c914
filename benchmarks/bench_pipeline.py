"""Time the loader and the metrics on a data folder, as ratios against plain pandas reads.

Run: ``python benchmarks/bench_pipeline.py [FOLDER]`` (default ``data/demo``). The baseline is
``pandas.read_csv`` of the same files in the same process: the ratio says what validation and
quarantine cost on top of just reading, independent of the machine's speed. With ``--patients N``
a synthetic cohort of N patients is generated first into a temporary folder.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

import hipdata
from hipdata.metrics import compute_all


def _best_of(repeats: int, action) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
    return min(times)


def run(folder: Path, repeats: int) -> None:
    files = sorted(folder.glob("*.csv"))
    baseline = _best_of(repeats, lambda: [pd.read_csv(f, dtype=str) for f in files])
    dataset = hipdata.load(folder)
    load_s = _best_of(repeats, lambda: hipdata.load(folder))
    metrics_s = _best_of(repeats, lambda: compute_all(dataset))
    rows = int(dataset.load_report["rows_read"].sum())
    print(f"folder: {folder} ({rows:,} rows, {dataset.summary()['patients']:,} patients)")
    print(f"baseline pandas.read_csv : {baseline:7.2f} s")
    print(f"hipdata.load             : {load_s:7.2f} s  ratio {load_s / baseline:5.1f}")
    print(f"metrics.compute_all      : {metrics_s:7.2f} s  ratio {metrics_s / baseline:5.1f}")
    print(f"rows per second (load)   : {statistics.mean([rows / load_s]):,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", nargs="?", default="data/demo", type=Path)
    parser.add_argument("--patients", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.patients:
        from hipdata.synth import write_cohort

        with tempfile.TemporaryDirectory() as scratch:
            write_cohort(scratch, args.patients, seed=1)
            run(Path(scratch), args.repeats)
    else:
        run(args.folder, args.repeats)


if __name__ == "__main__":
    main()
