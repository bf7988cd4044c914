"""``make bench``: how hipdata scales from 10^5 to 10^7 logged set rows.

For each size it generates a cohort with :mod:`hipdata.synth` (the same generator as the demo),
writes it as CSV and as Parquet, and times in a fresh child process per size:

- the read floor (``pandas.read_csv(dtype=str)`` and ``pandas.read_parquet`` of the same files),
- ``hipdata.load`` of each format, and rows per second for CSV,
- each contract table (the steps of :func:`hipdata.metrics.compute_all`),
- the audit indicators and the two mixed models (pain trajectory, NPRS over time),
- at the smaller sizes, a naive baseline: the tables as a notebook author would write them, with
  ``groupby(...).apply`` per patient;

then, as separate commands, the whole ``hipdata metrics`` (Parquet in) and ``hipdata report
audit`` with their peak resident memory (``os.wait4`` of that child alone). Results go to
``reports/benchmarks/results.csv`` (one row per size and step: seconds, peak RSS, ratio to the
read floor of the same size and process), ``reports/benchmarks/targets.md`` (each target of the
scale issue, met or not) and a log-log plot ``scaling.svg``. Absolute times drift on shared
machines; the ratios against a baseline timed in the same process are what to compare.

At each size it also runs ``bench_registry.py`` on the Parquet cohort (one clinic's quarterly
audit from a partitioned registry: bytes read, seconds, peak RSS; metrics partition by partition),
unless ``--no-registry``.

Every in-process step is appended to ``<work>/<rows>/measured.jsonl`` as soon as it is timed, so a
run that fails or is stopped keeps what it measured and still times the whole commands; CPU
seconds are recorded beside wall seconds (on a shared machine they are what a step costs).

Run: ``make bench`` or ``python benchmarks/bench_scale.py --rows 1e5 1e6 1e7``; choose sizes and
steps with ``make bench BENCH_ARGS="--rows 1e5 1e6 --naive-max-rows 1e5 --synth-patients 0"``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Set rows per patient of the synthetic generator (measured once per run on a small cohort).
CALIBRATION_PATIENTS = 300
#: Sizes at which the naive per-patient baseline is also timed (it is too slow beyond).
NAIVE_MAX_ROWS = 1_000_000
#: The scale issue's targets, checked in targets.md.
TARGETS = {
    "metrics_1e7_wall_s": 45.0,
    "metrics_1e7_rss_gib": 3.0,
    "metrics_1e6_vs_read_floor": 8.0,
    "time_per_row_1e7_vs_1e5": 1.5,
    "csv_load_rows_per_s": 1_000_000.0,
    "report_audit_1e7_s": 120.0,
    "synth_1e5_patients_s": 120.0,
}


def _now() -> float:
    return time.perf_counter()


def _rss_mib_self() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


#: JSON-lines file the child appends each measurement to (so a crash or a kill keeps the steps
#: measured before it); set by ``--child``.
_PARTIAL: Path | None = None


def _record(results: list, record: dict) -> None:
    results.append(record)
    if _PARTIAL is not None:
        with open(_PARTIAL, "a", encoding="utf-8") as stream:
            stream.write(json.dumps(record) + "\n")


def _timed(results: list, size: int, step: str, action, *, floor: float | None = None):
    print(f"  {step:<34} ...", end="", flush=True)
    began, cpu = _now(), time.process_time()
    value = action()
    seconds = _now() - began
    _record(
        results,
        {
            "rows": size,
            "step": step,
            "seconds": round(seconds, 4),
            "ratio_to_read_floor": round(seconds / floor, 2) if floor else None,
            "peak_rss_mib": round(_rss_mib_self()),
            "cpu_s": round(time.process_time() - cpu, 4),
        },
    )
    print(f"\r  {step:<34} {seconds:9.2f} s  (process peak {_rss_mib_self():,.0f} MiB)", flush=True)
    return value


# --------------------------------------------------------------------------------------------
# preparing the cohorts


def _patients_for(rows: int) -> int:
    from hipdata.synth import generate

    cohort = generate(CALIBRATION_PATIENTS, seed=1)
    per_patient = len(cohort.tables["exercises"]) / CALIBRATION_PATIENTS
    return max(10, round(rows / per_patient))


def prepare(rows: int, folder: Path) -> dict:
    """Generate a cohort of about ``rows`` set rows as ``folder/csv`` and ``folder/parquet``."""
    from hipdata.synth import generate

    patients = _patients_for(rows)
    began = _now()
    cohort = generate(patients, seed=rows % 10_007)
    synth_s = _now() - began
    cohort.write(folder / "csv")
    (folder / "parquet").mkdir(parents=True, exist_ok=True)
    for name, table in cohort.tables.items():
        table.to_parquet(folder / "parquet" / f"{name}.parquet", index=False)
    return {
        "patients": patients,
        "set_rows": len(cohort.tables["exercises"]),
        "synth_s": synth_s,
        "csv_bytes": sum(f.stat().st_size for f in (folder / "csv").glob("*.csv")),
        "parquet_bytes": sum(f.stat().st_size for f in (folder / "parquet").glob("*.parquet")),
    }


# --------------------------------------------------------------------------------------------
# the naive baseline: what a notebook author would write


def naive_tables(sets, patients):
    """Sessions and a per-patient summary with ``groupby(...).apply`` per patient."""
    import pandas as pd

    def per_patient_sessions(rows):
        return rows.groupby("date").apply(
            lambda day: pd.Series(
                {
                    "n_sets": len(day),
                    "total_reps": day["reps"].sum(),
                    "volume_load_kg": (day["reps"].fillna(0) * day["load_kg"].fillna(0)).sum(),
                    "max_pain_during": day["pain_during"].max(),
                    "pain_24h": day["pain_24h"].max(),
                }
            )
        )

    sessions = sets.groupby("patient_id").apply(per_patient_sessions)
    summary = sessions.groupby(level=0).apply(
        lambda rows: pd.Series(
            {
                "sessions": len(rows),
                "adherent": ((rows["max_pain_during"] <= 3) & (rows["pain_24h"] <= 3)).mean(),
            }
        )
    )
    return sessions, summary.join(patients.set_index("patient_id")[["clinic_id"]])


# --------------------------------------------------------------------------------------------
# the in-process measurements of one size (run in a child process)


def measure_in_process(folder: Path, rows: int, naive: bool) -> list[dict]:
    import pandas as pd

    import hipdata
    from hipdata.analysis.audit import audit_indicators
    from hipdata.analysis.outcomes import outcome_mixed_model
    from hipdata.analysis.trajectories import fit_pain_trajectory
    from hipdata.metrics.compute import compute_all
    from hipdata.metrics.family import _family_sessions_from_sets, _weekly_load_from
    from hipdata.metrics.outcomes import outcome_change
    from hipdata.metrics.progression import _held_back_from, _progressions_from
    from hipdata.metrics.sessions import _sessions_from_sets
    from hipdata.metrics.sets import _sets_table
    from hipdata.metrics.summary import _patient_summary_from
    from hipdata.protocol import Protocol

    # the published protocol's values, by the keyword names the table functions take
    DEFAULTS = Protocol().as_dict()  # noqa: N806 - a constant of this run

    def call(function, *positional):
        """``function`` with the published protocol's values that it takes."""
        accepted = inspect.signature(function).parameters
        return function(*positional, **{k: v for k, v in DEFAULTS.items() if k in accepted})

    results: list[dict] = []
    csv_files = sorted((folder / "csv").glob("*.csv"))
    parquet_files = sorted((folder / "parquet").glob("*.parquet"))
    floor_csv = _timed(
        results, rows, "read floor csv", lambda: [pd.read_csv(f, dtype=str) for f in csv_files]
    )
    floor_csv_s = results[-1]["seconds"]
    _timed(results, rows, "read floor parquet", lambda: [pd.read_parquet(f) for f in parquet_files])
    floor_s = results[-1]["seconds"]
    del floor_csv
    _timed(results, rows, "load csv", lambda: hipdata.load(folder / "csv"), floor=floor_csv_s)
    ds = _timed(
        results, rows, "load parquet", lambda: hipdata.load(folder / "parquet"), floor=floor_s
    )
    sets = _timed(
        results, rows, "table sets", lambda: _sets_table(ds.sets, ds.patients), floor=floor_s
    )
    sessions = _timed(
        results,
        rows,
        "table sessions",
        lambda: call(_sessions_from_sets, sets, ds.patients),
        floor=floor_s,
    )
    family = _timed(
        results,
        rows,
        "table family_sessions",
        lambda: call(_family_sessions_from_sets, sets, ds.patients),
        floor=floor_s,
    )
    weekly = _timed(
        results, rows, "table weekly_load", lambda: _weekly_load_from(sets), floor=floor_s
    )
    events = _timed(
        results, rows, "table progressions", lambda: _progressions_from(family), floor=floor_s
    )
    summary = _timed(
        results,
        rows,
        "table patient_summary",
        lambda: call(
            _patient_summary_from,
            ds,
            sets,
            sessions,
            family,
            events,
            call(_held_back_from, family),
        ),
        floor=floor_s,
    )
    outcome = _timed(
        results, rows, "table outcome_change", lambda: outcome_change(ds), floor=floor_s
    )
    tables = {
        "sets": sets,
        "sessions": sessions,
        "family_sessions": family,
        "weekly_load": weekly,
        "progressions": events,
        "patient_summary": summary,
        "outcome_change": outcome,
    }
    # the seven tables as hipdata computes them (shared steps computed once)
    _timed(results, rows, "compute_all", lambda: compute_all(ds), floor=floor_s)
    _timed(results, rows, "audit indicators", lambda: audit_indicators(ds, tables), floor=floor_s)
    _timed(
        results,
        rows,
        "model pain trajectory",
        lambda: fit_pain_trajectory(sessions),
        floor=floor_s,
    )
    _timed(
        results,
        rows,
        "model nprs over time",
        lambda: outcome_mixed_model(ds.outcomes, ds.patients),
        floor=floor_s,
    )
    if naive:
        _timed(
            results,
            rows,
            "naive baseline (groupby.apply)",
            lambda: naive_tables(ds.sets, ds.patients),
            floor=floor_s,
        )
    _record(
        results,
        {
            "rows": rows,
            "step": "in-process peak",
            "seconds": None,
            "ratio_to_read_floor": None,
            "peak_rss_mib": round(_rss_mib_self()),
        },
    )
    return results


# --------------------------------------------------------------------------------------------
# whole commands, each with its own peak RSS


def _tree_rss_mib(pid: int) -> float:
    """Resident MiB of ``pid`` and all its descendants now (from /proc; 0 elsewhere): the worker
    processes of a chunked ``hipdata metrics`` are not the command's waited children, so
    ``wait4``'s peak would leave them out."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        stack.extend(map(int, children))
        total += next(
            (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0
        )
    return total / 1024


def run_command(args: list[str], rows: int, step: str, floor_s: float | None) -> dict:
    import threading

    began = _now()
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    tree_peak = [0.0]
    finished = threading.Event()

    def sample() -> None:  # the process tree's memory at once, every 0.2 s
        while not finished.wait(0.2):
            tree_peak[0] = max(tree_peak[0], _tree_rss_mib(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(process.pid, 0)
    finished.set()
    sampler.join()
    seconds = _now() - began
    stderr = process.stderr.read().decode("utf-8", "replace") if process.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        print(f"  {step} failed ({code}): {stderr[-2000:]}", file=sys.stderr)
    peak = max(usage.ru_maxrss / 1024, tree_peak[0])
    print(f"  {step:<34} {seconds:9.2f} s  peak {peak:,.0f} MiB", flush=True)
    return {
        "rows": rows,
        "step": step,
        "seconds": round(seconds, 3) if code == 0 else None,
        "ratio_to_read_floor": round(seconds / floor_s, 2) if floor_s and code == 0 else None,
        # the command and its worker processes at once (sampled), or its own peak if higher
        "peak_rss_mib": round(peak),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "exit_code": code,
    }


# --------------------------------------------------------------------------------------------
# the report


def _value(frame, rows: int, step: str, column: str = "seconds"):
    match = frame[(frame["rows"] == rows) & (frame["step"] == step)][column]
    return float(match.iloc[0]) if len(match) and match.notna().iloc[0] else None


def write_report(frame, out: Path, synth_rows: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame.to_csv(out / "results.csv", index=False)
    sizes = sorted(int(r) for r in frame["rows"].unique() if r > 0)  # 0: the synth-only row
    steps = ["load csv", "load parquet", "read floor parquet", "hipdata metrics (parquet)"]
    steps += ["model pain trajectory", "hipdata report audit", "naive baseline (groupby.apply)"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for step in steps:
        part = frame[(frame["step"] == step) & frame["seconds"].notna()]
        if len(part):
            ax.plot(part["actual_rows"], part["seconds"], marker="o", label=step)
    ax.set(xscale="log", yscale="log", xlabel="set rows", ylabel="seconds (wall)")
    ax.set_title("hipdata scaling (2 cores)")
    ax.legend(fontsize=7, loc="upper left", frameon=False)
    fig.tight_layout()
    fig.savefig(out / "scaling.svg")
    plt.close(fig)

    lines = ["| target | limit | measured | met |", "|---|---|---|---|"]

    def add(name: str, limit: float, measured: float | None, below: bool = True) -> None:
        if measured is None:
            lines.append(f"| {name} | {limit:g} | not measured | - |")
            return
        met = measured <= limit if below else measured >= limit
        lines.append(f"| {name} | {limit:g} | {measured:,.2f} | {'yes' if met else 'NO'} |")

    big, small, mid = max(sizes), min(sizes), 1_000_000
    add(
        f"hipdata metrics, {big:,} rows, wall s",
        TARGETS["metrics_1e7_wall_s"],
        _value(frame, big, "hipdata metrics (parquet)"),
    )
    rss = _value(frame, big, "hipdata metrics (parquet)", "peak_rss_mib")
    add(
        f"hipdata metrics, {big:,} rows, peak GiB",
        TARGETS["metrics_1e7_rss_gib"],
        rss / 1024 if rss else None,
    )
    add(
        "hipdata metrics at 10^6 / read floor",
        TARGETS["metrics_1e6_vs_read_floor"],
        _value(frame, mid, "hipdata metrics (parquet)", "ratio_to_read_floor"),
    )
    per_row = {}
    for size in (small, big):
        seconds = _value(frame, size, "hipdata metrics (parquet)")
        actual = _value(frame, size, "hipdata metrics (parquet)", "actual_rows")
        per_row[size] = seconds / actual if seconds and actual else None
    add(
        f"time per row, {big:,} / {small:,} rows",
        TARGETS["time_per_row_1e7_vs_1e5"],
        per_row[big] / per_row[small] if per_row[big] and per_row[small] else None,
    )
    # the largest size at which the CSV load was timed (a stopped run may lack the largest)
    timed_csv = [size for size in sizes if _value(frame, size, "load csv") is not None]
    csv_size = max(timed_csv) if timed_csv else big
    load = _value(frame, csv_size, "load csv")
    actual = _value(frame, csv_size, "load csv", "actual_rows")
    add(
        f"CSV load, rows per second ({csv_size:,} rows)",
        TARGETS["csv_load_rows_per_s"],
        actual / load if load and actual else None,
        below=False,
    )
    add(
        f"hipdata report audit, {big:,} rows, s",
        TARGETS["report_audit_1e7_s"],
        _value(frame, big, "hipdata report audit"),
    )
    add("synth, 10^5 patients, s", TARGETS["synth_1e5_patients_s"], synth_rows.get(100_000))
    (out / "targets.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


def _measure_size(size: int, folder: Path, args, hipdata_cli: str) -> list[dict]:
    """Every measurement of one size; what was measured is kept even when a step fails."""
    print(f"{size:,} set rows", flush=True)
    began = _now()
    # in a child process, so that the generator's memory is given back before the measurements
    prepared = subprocess.run(
        [sys.executable, __file__, "--prepare", str(folder), str(size)],
        capture_output=True,
        text=True,
        check=True,
    )
    facts = json.loads(prepared.stdout.splitlines()[-1])
    print(
        f"  {facts['patients']:,} patients, {facts['set_rows']:,} set rows; "
        f"csv {facts['csv_bytes'] / 2**20:,.0f} MiB, "
        f"parquet {facts['parquet_bytes'] / 2**20:,.0f} MiB (prepared in {_now() - began:.0f} s)",
        flush=True,
    )
    partial = folder / "measured.jsonl"
    partial.unlink(missing_ok=True)
    child = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            str(folder),
            str(size),
            "1" if size <= args.naive_max_rows else "0",
        ],
        stdout=sys.stdout,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    measured = []
    if partial.exists():
        measured = [json.loads(line) for line in partial.read_text().splitlines() if line]
    if child.returncode != 0:
        steps = [r["step"] for r in measured]
        print(
            f"  in-process steps stopped after {steps[-1] if steps else 'nothing'!r} "
            f"(exit {child.returncode}):\n{child.stderr[-3000:]}",
            file=sys.stderr,
            flush=True,
        )
        measured.append({"rows": size, "step": "in-process stopped", "exit_code": child.returncode})
    floor = next((r["seconds"] for r in measured if r["step"] == "read floor parquet"), None)
    commands = {
        "hipdata metrics (parquet)": [
            hipdata_cli,
            "metrics",
            str(folder / "parquet"),
            "--out",
            str(folder / "tables"),
            "--format",
            "parquet",
        ],
        "hipdata report audit": [
            hipdata_cli,
            "report",
            "audit",
            "--data",
            str(folder / "parquet"),
            "--out",
            str(folder / "audit"),
            "--generated",
            "2026-11-28",
        ],
    }
    for step, command in commands.items():
        measured.append(run_command(command, size, step, floor))
    if args.registry:
        # one clinic's audit from the cohort written as a registry, and metrics partition by
        # partition (appends to OUT/registry_results.csv; see bench_registry.py)
        subprocess.run(
            [
                sys.executable,
                str(Path(__file__).with_name("bench_registry.py")),
                str(folder / "parquet"),
                "--label",
                str(size),
                "--out",
                str(args.out),
            ],
            check=False,
        )
    measured.append({"rows": size, "step": "synth", "seconds": round(facts["synth_s"], 3)})
    for record in measured:
        record.update(
            actual_rows=facts["set_rows"],
            patients=facts["patients"],
            csv_bytes=facts["csv_bytes"],
            parquet_bytes=facts["parquet_bytes"],
        )
    return measured


def main() -> None:
    global _PARTIAL
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", nargs="+", type=float, default=[1e5, 1e6, 1e7])
    parser.add_argument("--out", type=Path, default=Path("reports/benchmarks"))
    parser.add_argument(
        "--synth-patients",
        type=int,
        default=100_000,
        help="also time the generator alone at this many patients (0: skip)",
    )
    parser.add_argument(
        "--naive-max-rows",
        type=float,
        default=NAIVE_MAX_ROWS,
        help="time the naive groupby.apply baseline up to this many rows (0: never)",
    )
    parser.add_argument(
        "--no-registry",
        dest="registry",
        action="store_false",
        help="skip bench_registry.py (one clinic's audit from a registry) at each size",
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="keep the generated cohorts and outputs here (default: a temporary folder)",
    )
    parser.add_argument(
        "--child", nargs=3, metavar=("FOLDER", "ROWS", "NAIVE"), help=argparse.SUPPRESS
    )
    parser.add_argument("--prepare", nargs=2, metavar=("FOLDER", "ROWS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare:
        print(json.dumps(prepare(int(args.prepare[1]), Path(args.prepare[0]))))
        return
    if args.child:
        folder, rows, naive = args.child
        _PARTIAL = Path(folder) / "measured.jsonl"
        measure_in_process(Path(folder), int(rows), naive == "1")
        return

    import pandas as pd

    args.out.mkdir(parents=True, exist_ok=True)
    hipdata_cli = str(Path(sys.executable).with_name("hipdata"))
    records: list[dict] = []
    synth_seconds: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="hipdata-bench-") as scratch:
        work = args.work or Path(scratch)
        for size in (int(r) for r in args.rows):
            records.extend(_measure_size(size, work / str(size), args, hipdata_cli))
            # results so far, after every size: a long run killed later still leaves them
            pd.DataFrame.from_records(records).to_csv(args.out / "results.csv", index=False)
    if args.synth_patients:
        from hipdata.synth import generate

        began = _now()
        generate(args.synth_patients, seed=1)
        synth_seconds[args.synth_patients] = _now() - began
        print(f"synth {args.synth_patients:,} patients: {synth_seconds[args.synth_patients]:.1f} s")
        records.append(
            {
                "rows": 0,
                "step": f"synth {args.synth_patients} patients",
                "seconds": round(synth_seconds[args.synth_patients], 3),
                "patients": args.synth_patients,
                "peak_rss_mib": round(_rss_mib_self()),
            }
        )
    if not records:
        sys.exit("no size was measured")
    write_report(pd.DataFrame.from_records(records), args.out, synth_seconds)
    print(f"results in {args.out}/results.csv, targets.md, scaling.svg")


if __name__ == "__main__":
    main()
