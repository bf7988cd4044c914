"""Time the chunked ``hipdata metrics`` (:func:`hipdata.metrics.chunked.compute_chunked`) by phase.

Run: ``python benchmarks/bench_chunked.py FOLDER OUT [--chunk-rows N] [--workers W]
[--format parquet|csv] [--reference REF] [--tail-share S]``. Above 2x10^6 set rows wrap it in
``flock /tmp/s4/big.lock`` (the machine's rule for big runs).

Prints the wall seconds of the parent's phases (``read``: the inputs read and split into
chunks; ``chunks``: until the last chunk is done, the first chunks' rows written meanwhile;
``write``: the last chunks' rows and the small tables, with the pain-trajectory model fitted in a
thread, ``model`` being its own seconds), the parent's CPU seconds per phase, the workers' CPU
seconds and the peak resident memory (the parent; the parent and its workers at once, sampled
every half second). With ``--reference`` (the folder of a one-process run, ``hipdata metrics
--workers 1``), every table written must equal the reference's: Parquet frames
``assert_frame_equal(check_exact=True)``, CSV files the same bytes.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path


def compare(reference: Path, out: Path) -> None:
    """Every table of ``out`` equals the reference's (a table only in the reference, e.g. the
    CLI's ``protocol``, is listed)."""
    import pandas as pd

    names = sorted(p.name for p in out.iterdir())
    missing = sorted({p.name for p in reference.iterdir()} - set(names))
    for name in names:
        if name.endswith(".parquet"):
            pd.testing.assert_frame_equal(
                pd.read_parquet(reference / name), pd.read_parquet(out / name), check_exact=True
            )
        elif (reference / name).read_bytes() != (out / name).read_bytes():
            raise AssertionError(f"{name}: not the same bytes")
        print(f"  {name}: equal")
    if missing:
        print(f"  not written by this run (the CLI adds them): {', '.join(missing)}")


def main() -> None:
    from hipdata.metrics.chunked import DEFAULT_CHUNK_ROWS, compute_chunked

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--chunk-rows", type=float, default=DEFAULT_CHUNK_ROWS)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--format", default="parquet", choices=["parquet", "csv"])
    parser.add_argument("--reference", type=Path)
    parser.add_argument("--tail-share", type=float, help="chunked.TAIL_SHARE for this run")
    args = parser.parse_args()
    if args.tail_share is not None:
        from hipdata.metrics import chunked

        chunked.TAIL_SHARE = args.tail_share
    shutil.rmtree(args.out, ignore_errors=True)
    wall, cpu = time.perf_counter(), time.process_time()
    result = compute_chunked(
        args.folder,
        args.out,
        fmt=args.format,
        workers=args.workers,
        chunk_rows=int(args.chunk_rows),
    )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    gib = 2**30
    print(
        f"wall {wall:.2f} s; parent CPU {cpu:.2f} s, workers CPU {result.workers_cpu:.2f} s; "
        f"{result.chunks} chunks of {int(args.chunk_rows):,} set rows, {args.workers} workers"
    )
    print("phases, wall s:", {k: round(v, 2) for k, v in result.timings.items()})
    print("phases, parent CPU s:", {k: round(v, 2) for k, v in result.parent_cpu.items()})
    peaks = result.peak_rss
    print(
        f"peak RSS: parent {peaks['parent'] / gib:.2f} GiB, parent and workers at once "
        f"{peaks['parent_and_children_at_once'] / gib:.2f} GiB, workers "
        + ", ".join(f"{w / gib:.2f}" for w in peaks["workers"])
        + " GiB"
    )
    if args.reference is not None:
        compare(args.reference, args.out)


if __name__ == "__main__":
    main()
