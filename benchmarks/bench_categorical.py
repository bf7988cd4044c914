"""``hipdata.load(..., categorical=True)`` against the default ``str`` columns, in one process.

For each folder: the load and ``compute_all`` CPU seconds of both forms, alternated ``--repeat``
times (medians and ranges; CPU seconds, since the machine is shared), the loaded tables' memory
(``memory_usage(deep=True)``), and a check that every table of ``compute_all`` is identical
(``check_exact``) and the ``Dataset`` equal once its categoricals are turned into text.

Usage::

    python benchmarks/bench_categorical.py /tmp/s4/cohorts/1e6/parquet /tmp/s4/cohorts/1e6/csv
"""

from __future__ import annotations

import argparse
import statistics
import time

import pandas as pd

import hipdata
from hipdata.metrics import compute_all


def _cpu(function, *args, **kwargs):
    start = time.process_time()
    result = function(*args, **kwargs)
    return time.process_time() - start, result


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(
        **{
            c: frame[c].astype("str")
            for c in frame.columns
            if isinstance(frame[c].dtype, pd.CategoricalDtype)
        }
    )


def _mib(frame: pd.DataFrame) -> float:
    return frame.memory_usage(deep=True).sum() / 2**20


def bench(folder: str, repeat: int) -> dict:
    times: dict[str, list[float]] = {"load str": [], "load cat": [], "all str": [], "all cat": []}
    for _ in range(repeat):
        seconds, plain = _cpu(hipdata.load, folder)
        times["load str"].append(seconds)
        seconds, coded = _cpu(hipdata.load, folder, categorical=True)
        times["load cat"].append(seconds)
        seconds, plain_tables = _cpu(compute_all, plain)
        times["all str"].append(seconds)
        seconds, coded_tables = _cpu(compute_all, coded)
        times["all cat"].append(seconds)
    for name in ("patients", "sets", "activity", "outcomes", "treatments", "quarantine"):
        pd.testing.assert_frame_equal(
            getattr(plain, name), _as_text(getattr(coded, name)), check_exact=True, obj=name
        )
    for name, table in plain_tables.items():
        pd.testing.assert_frame_equal(table, coded_tables[name], check_exact=True, obj=name)
    row = {"folder": folder, "set_rows": len(plain.sets)}
    for key, values in times.items():
        row[key] = f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"
    row["sets MiB str / cat"] = f"{_mib(plain.sets):.1f} / {_mib(coded.sets):.1f}"
    row["patients MiB str / cat"] = f"{_mib(plain.patients):.2f} / {_mib(coded.patients):.2f}"
    row["tables equal"] = True
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    for folder in args.folders:
        for key, value in bench(folder, args.repeat).items():
            print(f"{key:>24}: {value}")
        print()


if __name__ == "__main__":
    main()
