"""Time :func:`hipdata.synth.generate` for 100 000 patients against a 1 000-patient baseline.

Run: ``python benchmarks/bench_synth.py [n_patients]``. Both runs happen in this process, so the
ratio is machine-independent; a vectorised generator scales about linearly (ratio near 100).
"""

from __future__ import annotations

import sys
import time

from hipdata.synth import generate


def _timed(n_patients: int) -> tuple[float, int]:
    began = time.perf_counter()
    cohort = generate(n_patients, seed=1)
    return time.perf_counter() - began, len(cohort.tables["exercises"])


def main(n_patients: int = 100_000, baseline: int = 1_000) -> None:
    _timed(50)  # warm-up: imports, catalogue read
    base_s, base_rows = _timed(baseline)
    big_s, big_rows = _timed(n_patients)
    print(f"{baseline:>7} patients: {base_s:7.2f} s ({base_rows:,} set rows)")
    print(f"{n_patients:>7} patients: {big_s:7.2f} s ({big_rows:,} set rows)")
    print(f"ratio {big_s / base_s:.1f} for {n_patients / baseline:.0f} x the patients")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
