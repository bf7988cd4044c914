"""Time the CSV output of metric tables: one pass (``write_table_csv``) against two.

Run: ``python benchmarks/bench_csv_out.py FOLDER`` with a folder of metric tables as Parquet
(e.g. ``hipdata metrics COHORT --out FOLDER --format parquet``).

For each table: ``write_csv_text(csv_ready(frame))`` (the two steps the CSV writer took before)
and :func:`hipdata.io.writers.write_table_csv`, alternating, best of three, CPU seconds
(``time.process_time``) in this one process; the two texts must be the same bytes.
"""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path


def main(folder: str) -> None:
    import pandas as pd

    from hipdata.io.writers import csv_ready, write_csv_text, write_table_csv

    def two_steps(frame):
        buffer = io.BytesIO()
        write_csv_text(csv_ready(frame), buffer)
        return buffer.getvalue()

    def one_pass(frame):
        buffer = io.BytesIO()
        write_table_csv(frame, buffer)
        return buffer.getvalue()

    totals = {"two steps": 0.0, "one pass": 0.0}
    for path in sorted(Path(folder).glob("*.parquet")):
        frame = pd.read_parquet(path)
        if two_steps(frame) != one_pass(frame):
            raise SystemExit(f"{path.name}: the texts differ")
        best = {}
        for label, write in [("two steps", two_steps), ("one pass", one_pass)] * 3:
            began = time.process_time()
            write(frame)
            best[label] = min(best.get(label, float("inf")), time.process_time() - began)
        for label, seconds in best.items():
            totals[label] += seconds
        print(
            f"{path.stem:24s} {len(frame):9d} rows  two steps {best['two steps']:.3f}"
            f"  one pass {best['one pass']:.3f} CPU s"
        )
    print(
        f"{'all tables':24s} {'':9s}       two steps {totals['two steps']:.3f}"
        f"  one pass {totals['one pass']:.3f} CPU s"
    )


if __name__ == "__main__":
    main(sys.argv[1])
