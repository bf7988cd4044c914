"""Peak memory of ``hipdata.load`` against the size of its input files.

Run: ``python benchmarks/bench_memory.py [FOLDER] [--patients N]`` (default ``data/demo``). Each
measurement runs in a fresh child process that reports its own peak resident set size
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``), beside a baseline child that only imports
hipdata; this parent process stays small (it never imports pandas), because a child's peak
starts at the size of the process it was forked from. The ratio (peak - baseline) / input bytes
says how many times the input's size the loader holds at its peak; the target is a small
multiple.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

_CHILD = """
import resource, sys
import hipdata
if sys.argv[1] != "-":
    hipdata.load(sys.argv[1])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
_SYNTH = """
import sys
from hipdata.synth import write_cohort
write_cohort(sys.argv[1], int(sys.argv[2]), seed=1)
"""


def _peak_rss_mb(folder: str) -> float:
    """Peak RSS (MB) of a child that imports hipdata and loads ``folder`` ('-': import only)."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, folder], check=True, capture_output=True, text=True
    )
    return int(done.stdout.split()[-1]) / 1024  # ru_maxrss is in kB on Linux


def measure(folder: Path) -> dict[str, float]:
    """Input MB, baseline and peak RSS MB, and the ratio of the loader's extra memory to input."""
    input_mb = sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) / 2**20
    baseline = _peak_rss_mb("-")
    peak = _peak_rss_mb(str(folder))
    return {
        "input_mb": input_mb,
        "baseline_mb": baseline,
        "peak_mb": peak,
        "ratio": (peak - baseline) / input_mb if input_mb else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", nargs="?", default="data/demo", type=Path)
    parser.add_argument("--patients", type=int, default=None, help="synthetic cohort size")
    args = parser.parse_args()
    if args.patients:
        with tempfile.TemporaryDirectory() as scratch:
            subprocess.run([sys.executable, "-c", _SYNTH, scratch, str(args.patients)], check=True)
            rows = sum(1 for _ in open(Path(scratch) / "exercises.csv", encoding="utf-8")) - 1
            result = measure(Path(scratch))
            label = f"synthetic cohort, {args.patients:,} patients, {rows:,} exercise rows"
    else:
        result = measure(args.folder)
        label = str(args.folder)
    print(
        f"{label}: input {result['input_mb']:.1f} MB, import-only {result['baseline_mb']:.0f} MB,"
        f" peak {result['peak_mb']:.0f} MB, (peak - import) / input = {result['ratio']:.1f}x"
    )


if __name__ == "__main__":
    main()
