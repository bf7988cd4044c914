"""How fast :func:`hipdata.metrics.compute_all` and the pain-trajectory model run, alone.

The loader's speed is another benchmark's business (``bench_scale.py``); here a cohort is loaded
once, the :class:`~hipdata.Dataset` is pickled, and each timing run unpickles it in a fresh child
process, so only the metrics are timed. Every run also times the read floor
(``pandas.read_parquet`` of the cohort's files) in the same process, because absolute seconds
drift by 2x on a shared machine and only ratios to something timed alongside compare.

Commands::

    # a cohort of about 10^6 set rows: synthetic generator -> Parquet -> hipdata.load -> pickle
    python benchmarks/bench_metrics.py prepare --rows 1e6 --dir /tmp/bench-metrics/1e6
    # a 10^7 cohort as 10 renamed copies of the 10^6 one (same shape per patient)
    python benchmarks/bench_metrics.py replicate --source /tmp/bench-metrics/1e6 --copies 10 \
        --dir /tmp/bench-metrics/1e7
    # time compute_all (each table) and the pain-trajectory model; --code runs another checkout
    python benchmarks/bench_metrics.py time --dir /tmp/bench-metrics/1e6 [--code OLD/] \
        [--profile out.prof]
    # the whole `hipdata metrics` command (Parquet in), wall time and peak RSS of that child
    python benchmarks/bench_metrics.py cli --dir /tmp/bench-metrics/1e6

Each ``time`` / ``cli`` run prints one JSON line (seconds, ratio to the read floor, peak RSS in
MiB of the measuring child) and appends it to ``--results`` (default
``reports/benchmarks/metrics_results.jsonl``).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Set rows per patient of the synthetic generator (measured on a small cohort).
CALIBRATION_PATIENTS = 300


def _now() -> float:
    return time.perf_counter()


def _peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


#: The read floor is the fastest of this many reads (one read drifts by 3x on a busy machine).
FLOOR_REPEATS = 3


def _read_floor(folder: Path) -> float:
    """Seconds of ``pandas.read_parquet`` of the cohort's files: the best of
    :data:`FLOOR_REPEATS` reads."""
    import pandas as pd

    best = float("inf")
    for _ in range(FLOOR_REPEATS):
        began = _now()
        frames = [pd.read_parquet(f) for f in sorted((folder / "parquet").glob("*.parquet"))]
        best = min(best, _now() - began)
        del frames
    return best


def _read_floor_cpu(folder: Path) -> float:
    """CPU seconds of one ``pandas.read_parquet`` of the cohort's files (this process)."""
    import pandas as pd

    began = time.process_time()
    frames = [pd.read_parquet(f) for f in sorted((folder / "parquet").glob("*.parquet"))]
    del frames
    return time.process_time() - began


# --------------------------------------------------------------------------------------------
# cohorts


def prepare(rows: int, folder: Path, seed: int) -> None:
    """Generate about ``rows`` set rows as Parquet, load them once and pickle the Dataset."""
    import hipdata
    from hipdata.synth import generate

    calibration = generate(CALIBRATION_PATIENTS, seed=1)
    per_patient = len(calibration.tables["exercises"]) / CALIBRATION_PATIENTS
    patients = max(10, round(rows / per_patient))
    began = _now()
    cohort = generate(patients, seed=seed)
    print(f"generated {patients} patients in {_now() - began:.1f} s", flush=True)
    _write_parquet(cohort.tables, folder)
    began = _now()
    ds = hipdata.load(folder / "parquet")
    print(f"loaded {len(ds.sets):,} set rows in {_now() - began:.1f} s", flush=True)
    with open(folder / "dataset.pkl", "wb") as handle:
        pickle.dump(ds, handle, protocol=pickle.HIGHEST_PROTOCOL)


def _write_parquet(tables: dict, folder: Path) -> None:
    (folder / "parquet").mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        table.to_parquet(folder / "parquet" / f"{name}.parquet", index=False)


def replicate(source: Path, copies: int, folder: Path) -> None:
    """``copies`` copies of ``source``'s cohort with renamed patients (``P1`` -> ``P1_r2``).

    Both the Parquet files and the pickled Dataset are replicated (the Dataset is not re-loaded:
    loading is timed elsewhere), so the copy has ``copies`` x the rows with the same shape per
    patient. Clinics and clinicians keep their ids (bigger clinics, as in a registry).
    """
    import pandas as pd

    def renamed(frame: pd.DataFrame, k: int) -> pd.DataFrame:
        if "patient_id" not in frame.columns or k == 0:
            return frame
        ids = frame["patient_id"].astype("str") + f"_r{k}"
        return frame.assign(patient_id=ids.astype(frame["patient_id"].dtype))

    tables = {f.stem: pd.read_parquet(f) for f in sorted((source / "parquet").glob("*.parquet"))}
    _write_parquet(
        {
            name: pd.concat([renamed(t, k) for k in range(copies)], ignore_index=True)
            for name, t in tables.items()
        },
        folder,
    )
    with open(source / "dataset.pkl", "rb") as handle:
        ds = pickle.load(handle)
    for name in ("patients", "sets", "activity", "outcomes", "treatments"):
        frame = getattr(ds, name, None)
        if isinstance(frame, pd.DataFrame):
            setattr(
                ds,
                name,
                pd.concat([renamed(frame, k) for k in range(copies)], ignore_index=True),
            )
    with open(folder / "dataset.pkl", "wb") as handle:
        pickle.dump(ds, handle, protocol=pickle.HIGHEST_PROTOCOL)
    print(f"{copies} copies: {len(ds.sets):,} set rows", flush=True)


# --------------------------------------------------------------------------------------------
# timing (in a child process)


def time_metrics(folder: Path, profile: Path | None, tables_each: bool) -> dict:
    """Read floor, then compute_all and the pain-trajectory model on the pickled Dataset."""
    floor = _read_floor(folder)
    floor_cpu = _read_floor_cpu(folder)
    with open(folder / "dataset.pkl", "rb") as handle:
        ds = pickle.load(handle)
    import hipdata
    from hipdata.analysis.trajectories import fit_pain_trajectory
    from hipdata.metrics import compute_all

    rss_loaded = _current_rss_mib()
    peak_loaded = _peak_rss_mib()
    result = {
        "rows": len(ds.sets),
        "code": str(Path(hipdata.__file__).resolve().parent),
        "read_floor_s": round(floor, 3),
        "read_floor_cpu_s": round(floor_cpu, 3),
        "rss_after_unpickle_mib": round(rss_loaded, 1),
    }
    if profile is not None:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    began, cpu = _now(), time.process_time()
    tables = compute_all(ds)
    result["compute_all_s"] = round(_now() - began, 3)
    # CPU seconds of this process: less blurred than wall time when other jobs share the cores
    result["compute_all_cpu_s"] = round(time.process_time() - cpu, 3)
    if profile is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    result["compute_all_peak_mib"] = round(_peak_rss_mib(), 1)
    began, cpu = _now(), time.process_time()
    fit_pain_trajectory(tables["sessions"])
    result["pain_trajectory_s"] = round(_now() - began, 3)
    result["pain_trajectory_cpu_s"] = round(time.process_time() - cpu, 3)
    result["peak_rss_mib"] = round(_peak_rss_mib(), 1)
    result["peak_before_compute_mib"] = round(peak_loaded, 1)
    for key in ("compute_all_s", "pain_trajectory_s"):
        result[key.replace("_s", "_per_floor")] = round(result[key] / floor, 2)
    result["compute_all_cpu_per_floor_cpu"] = round(result["compute_all_cpu_s"] / floor_cpu, 2)
    result["us_per_row_compute_all"] = round(1e6 * result["compute_all_s"] / result["rows"], 3)
    if tables_each:
        result.update(_time_each_table(ds))
    return result


def _time_each_table(ds) -> dict:
    """Seconds (wall and CPU) of each step of compute_all, run one after another as compute_all
    runs them."""
    from hipdata.metrics.family import _family_sessions_from_sets, _weekly_load_from
    from hipdata.metrics.outcomes import outcome_change
    from hipdata.metrics.progression import _held_back_from, _progressions_from
    from hipdata.metrics.sessions import _sessions_from_sets
    from hipdata.metrics.sets import _sets_table
    from hipdata.metrics.summary import _patient_summary_from
    from hipdata.protocol import Protocol

    p = Protocol()
    out = {}

    def step(name, action):
        began, cpu = _now(), time.process_time()
        value = action()
        out[f"step_{name}_s"] = round(_now() - began, 3)
        out[f"step_{name}_cpu_s"] = round(time.process_time() - cpu, 3)
        return value

    sets = step("sets", lambda: _sets_table(ds.sets, ds.patients))
    try:  # the session / family-session runs numbered once (this branch; older code: not)
        from hipdata.metrics._common import FAMILY_SESSION_KEYS, nested_groups

        session_groups, family_groups = step(
            "groups", lambda: nested_groups(sets, FAMILY_SESSION_KEYS, [2, 3])
        )
        shared = {"groups": session_groups}
        family_shared = {"groups": family_groups, "session_groups": session_groups}
        summary_shared = {"session_groups": session_groups}
        weekly_args = (family_groups,)
    except ImportError:
        shared, family_shared, summary_shared, weekly_args = {}, {}, {}, ()
    sessions = step(
        "sessions",
        lambda: _sessions_from_sets(sets, ds.patients, pain_threshold=p.pain_threshold, **shared),
    )
    family = step(
        "family_sessions",
        lambda: _family_sessions_from_sets(
            sets,
            ds.patients,
            pain_threshold=p.pain_threshold,
            criterion_sets=p.criterion_sets,
            criterion_reps=p.criterion_reps,
            criterion_hold_s=p.criterion_hold_s,
            **family_shared,
        ),
    )
    events = step("progressions", lambda: _progressions_from(family))
    held = step(
        "held_back", lambda: _held_back_from(family, held_back_sessions=p.held_back_sessions)
    )
    step(
        "patient_summary",
        lambda: _patient_summary_from(
            ds,
            sets,
            sessions,
            family,
            events,
            held,
            who_cardio_min=p.who_cardio_min,
            who_strength_sessions=p.who_strength_sessions,
            **summary_shared,
        ),
    )
    step("weekly_load", lambda: _weekly_load_from(sets, *weekly_args))
    step("outcome_change", lambda: outcome_change(ds))
    return out


def run_cli(folder: Path, code: Path | None = None) -> dict:
    """The whole ``hipdata metrics`` on the Parquet files, with the read floor timed just before
    (``code``: run the ``hipdata`` package of that checkout instead of the installed one)."""
    floor = _read_floor(folder)
    path = "" if code is None else str(code.resolve())
    start = f"import sys; sys.path.insert(0, {path!r}) if {path!r} else None; "
    start += "from hipdata.cli import app; app()"
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-c", start, "metrics", str(folder / "parquet"), "--out", out]
        command += ["--format", "parquet"]
        began = _now()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = _now() - began
    return {
        "step": "hipdata metrics (parquet)",
        "folder": str(folder),
        "code": path or "installed",
        "exit_status": status,
        "read_floor_s": round(floor, 3),
        "seconds": round(seconds, 2),
        "per_floor": round(seconds / floor, 1),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
    }


def _record(result: dict, results: Path) -> None:
    line = json.dumps(result)
    print(line, flush=True)
    results.parent.mkdir(parents=True, exist_ok=True)
    with open(results, "a") as handle:
        handle.write(line + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--rows", type=float, required=True)
    p.add_argument("--dir", type=Path, required=True)
    p.add_argument("--seed", type=int, default=20261128)
    r = sub.add_parser("replicate")
    r.add_argument("--source", type=Path, required=True)
    r.add_argument("--copies", type=int, required=True)
    r.add_argument("--dir", type=Path, required=True)
    for name in ("time", "cli", "_child"):
        t = sub.add_parser(name)
        t.add_argument("--dir", type=Path, required=True)
        t.add_argument("--code", type=Path, help="a checkout whose hipdata/ is timed instead")
        t.add_argument("--profile", type=Path)
        t.add_argument("--each", action="store_true", help="also time each table's step")
        t.add_argument(
            "--results", type=Path, default=Path("reports/benchmarks/metrics_results.jsonl")
        )
    args = parser.parse_args(argv)
    if args.command == "prepare":
        prepare(int(args.rows), args.dir, args.seed)
    elif args.command == "replicate":
        replicate(args.source, args.copies, args.dir)
    elif args.command == "_child":
        if args.code is not None:
            sys.path.insert(0, str(args.code.resolve()))
        print(json.dumps(time_metrics(args.dir, args.profile, args.each)), flush=True)
    elif args.command == "time":
        # a fresh child per run, so that peak RSS is this run's alone
        command = [sys.executable, __file__, "_child", "--dir", str(args.dir)]
        for flag, value in (("--code", args.code), ("--profile", args.profile)):
            if value is not None:
                command += [flag, str(value)]
        if args.each:
            command.append("--each")
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        _record(json.loads(output.strip().splitlines()[-1]), args.results)
    else:
        _record(run_cli(args.dir, args.code), args.results)


if __name__ == "__main__":
    main()
