"""Time the writers: the synthetic cohort's CSV files and ``write_tables`` (CSV and Parquet).

Run: ``python benchmarks/bench_write.py [n_patients] [cohort_folder]``.

1. ``hipdata.synth.generate(n_patients)`` and :meth:`SynthCohort.write`, timed apart.
2. With ``cohort_folder`` (e.g. ``/tmp/s4/cohorts/1e6/parquet``): the metric tables of that
   cohort written by :func:`hipdata.io.writers.write_tables` as CSV and as Parquet, against the
   pandas writer the CSV path replaces (``csv_ready(frame).to_csv``), whose files must be the
   same bytes.

CPU seconds (``time.process_time``) in this one process, so the ratios hold on a shared machine.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path


def _cpu(work) -> float:
    began = time.process_time()
    work()
    return time.process_time() - began


def synth(n_patients: int) -> None:
    from hipdata.synth import generate

    generate(50, seed=1)  # warm-up: imports, catalogue read
    began = time.process_time()
    cohort = generate(n_patients, seed=1)
    generate_s = time.process_time() - began
    with tempfile.TemporaryDirectory() as folder:
        write_s = _cpu(lambda: cohort.write(folder))
    rows = len(cohort.tables["exercises"])
    print(f"synth, {n_patients:,} patients ({rows:,} set rows), CPU s:")
    print(f"  generate {generate_s:.2f}, write {write_s:.2f}")


def tables(folder: str) -> None:
    import hipdata
    from hipdata.io.writers import csv_ready, write_tables
    from hipdata.metrics import compute_all

    dataset = hipdata.load(folder)
    computed = compute_all(dataset)
    rows = len(computed["sets"])
    with tempfile.TemporaryDirectory() as out:
        out = Path(out)

        def pandas_csv():
            (out / "pandas").mkdir()
            for name, frame in computed.items():
                csv_ready(frame).to_csv(
                    out / "pandas" / f"{name}.csv",
                    index=False,
                    date_format="%Y-%m-%d",
                    na_rep="",
                    lineterminator="\n",
                )

        reference_s = _cpu(pandas_csv)
        csv_s = _cpu(lambda: write_tables(computed, out / "csv"))
        parquet_s = _cpu(lambda: write_tables(computed, out / "parquet", format="parquet"))
        for name in computed:
            same = (out / "csv" / f"{name}.csv").read_bytes() == (
                out / "pandas" / f"{name}.csv"
            ).read_bytes()
            assert same, f"{name}.csv differs from pandas' text"
    print(
        f"write_tables, {rows:,} set rows: CSV {csv_s:.2f} s CPU (pandas to_csv {reference_s:.2f}"
    )
    print(f"  s, same bytes), Parquet {parquet_s:.2f} s CPU")


if __name__ == "__main__":
    synth(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
    if len(sys.argv) > 2:
        tables(sys.argv[2])
