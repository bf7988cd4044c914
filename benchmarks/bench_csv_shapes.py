"""CSV input shapes the benchmark cohorts never have: is there a performance cliff?

``make``: writes variants of a plain CSV cohort (``hipdata synth`` / ``make bench``: comma
separated, ISO dates, catalogue ids, set level, sorted, nothing bad) into OUT/<variant>/:
``;`` with ``,`` decimals, CRLF, a BOM, every cell quoted, a quoted text column with commas,
Windows-1252, UTF-8 with a few Windows-1252 lines, other headers and column order with extra
columns, aliases and display names, ``dd/mm/yyyy`` dates, the exercise-level layout, ``load_lb``,
pain on ``vas100``, shuffled rows, 1.5 % bad rows of every kind, 10^5 patients x 10 sets, and
all of it at once (``hostile``).

``time``: loads every variant with :func:`hipdata.load` in a fresh process, then the plain cohort
in the same process, and prints CPU seconds, the ratio, rows/s and the process's peak RSS; with
``--check`` it also compares the variant's Dataset with the plain one's (after what the variant
changes on purpose) and prints the differences.

    python benchmarks/bench_csv_shapes.py make /tmp/s5/benchwork/1000000/csv /tmp/s6/A
    python benchmarks/bench_csv_shapes.py time /tmp/s5/benchwork/1000000/csv /tmp/s6/A [--check]
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

TODAY = "2026-11-27"
TABLES = ("patients", "exercises", "activity", "outcomes", "treatments")
DATE_COLUMNS = {"date", "start_date", "discharge_date"}
NUMBER_COLUMNS = {"load_kg", "score", "cardio_min", "hold_s"}
#: load options per variant (hipdata.load keyword arguments)
OPTIONS = {"dayfirst": {"dayfirst": True}, "vas100": {"pain_scale": "vas100"}}
OPTIONS["hostile"] = {"dayfirst": True}


def _read(folder: Path) -> dict[str, pd.DataFrame]:
    return {
        t: pd.read_csv(folder / f"{t}.csv", dtype=str, keep_default_na=False)
        for t in TABLES
        if (folder / f"{t}.csv").exists()
    }


def _write(tables, out: Path, *, sep=",", encoding="utf-8", crlf=False, quote_all=False):
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(
            out / f"{name}.csv",
            index=False,
            sep=sep,
            encoding=encoding,
            lineterminator="\r\n" if crlf else "\n",
            quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL,
        )


def _decimal_comma(tables):
    for frame in tables.values():
        for column in frame.columns:
            if column in NUMBER_COLUMNS:
                frame[column] = frame[column].str.replace(".", ",", regex=False)
    return tables


def _dayfirst(tables):
    for frame in tables.values():
        for column in frame.columns:
            if column in DATE_COLUMNS:
                text = frame[column]
                parts = text.str.split("-", expand=True)
                if parts.shape[1] == 3:
                    frame[column] = (parts[2] + "/" + parts[1] + "/" + parts[0]).where(
                        text != "", ""
                    )
    return tables


HEADERS = {
    "patient_id": "Patient ID",
    "date": "Date",
    "exercise": "Exercise Name",
    "set": "Set No",
    "reps": "Reps",
    "hold_s": "Hold (s)",
    "load_kg": "Load KG",
    "pain_during": "Pain During",
    "pain_24h": "Pain 24h",
    "clinic_id": "Clinic",
    "clinician_id": "Therapist",
    "start_date": "Start Date",
    "discharge_date": "Discharge Date",
    "age_years": "Age",
}


def _headers(tables):
    rng = np.random.default_rng(1)
    for name, frame in list(tables.items()):
        frame = frame.rename(columns=HEADERS)
        frame["Comment"] = np.where(np.arange(len(frame)) % 7 == 0, "ok", "")
        frame["App Version"] = "4.2.1"
        tables[name] = frame[list(rng.permutation(frame.columns))]
    return tables


def _alias_names(catalogue) -> dict[str, list[str]]:
    """Names that resolve to each id: the display name, aliases, in other case."""
    from hipdata.catalogue import alias_table, resolve_exercises

    names: dict[str, list[str]] = {}
    for row in catalogue.itertuples(index=False):
        found = [row.name] + [a for a in str(row.aliases).split("|") if a.strip()]
        found += [a.upper() for a in found[:2]] + [a.title() for a in found[:3]]
        resolved = resolve_exercises(pd.Series(found), catalogue)
        names[row.id] = [n for n, r in zip(found, resolved, strict=True) if r == row.id]
    del alias_table
    return names


def _aliases(tables):
    from hipdata.catalogue import load_catalogue

    names = _alias_names(load_catalogue())
    frame = tables["exercises"]
    exercise = frame["exercise"].to_numpy(dtype=object).copy()
    position = np.arange(len(frame))
    for ex_id, options in names.items():
        rows = exercise == ex_id
        if options:
            pick = np.asarray(options, dtype=object)[position[rows] % len(options)]
            exercise[rows] = pick
    frame["exercise"] = exercise
    return tables


def _exercise_level(tables):
    frame = tables["exercises"]
    key = ["patient_id", "date", "exercise"]
    group = frame.groupby(key, sort=False)
    first = group.first().reset_index()

    def joined(column):
        values = group[column].agg(lambda s: "/".join(s) if (s != "").any() else "")
        return values.to_numpy()

    first["sets"] = group.size().to_numpy().astype(str)
    first["reps"] = joined("reps")
    first["hold_s"] = joined("hold_s")
    tables["exercises"] = first.drop(columns=["set"])
    return tables


def _load_lb(tables):
    frame = tables["exercises"]
    kg = pd.to_numeric(frame["load_kg"], errors="coerce")
    lb = (kg / 0.45359237).round(1)
    frame["load_lb"] = lb.map(lambda v: "" if pd.isna(v) else f"{v:g}")
    tables["exercises"] = frame.drop(columns=["load_kg"])
    return tables


def _vas100(tables):
    frame = tables["exercises"]
    for column in ("pain_during", "pain_24h"):
        value = pd.to_numeric(frame[column], errors="coerce") * 10
        frame[column] = value.map(lambda v: "" if pd.isna(v) else f"{v:g}")
    return tables


def _shuffle(tables):
    rng = np.random.default_rng(2)
    for name, frame in tables.items():
        tables[name] = frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)
    return tables


def _bad_rows(tables, share=0.015):
    """About ``share`` of the exercises rows (and a few patients) broken, every kind."""
    rng = np.random.default_rng(3)
    frame = tables["exercises"]
    n = len(frame)
    rows = np.sort(rng.choice(np.arange(1, n), size=int(n * share), replace=False))
    kinds = rows % 14
    ex = frame["exercise"].to_numpy(dtype=object).copy()
    columns = {c: frame[c].to_numpy(dtype=object).copy() for c in frame.columns}

    def put(column, at, value):
        if column in columns:
            columns[column][at] = value

    at = rows[kinds == 0]
    put("pain_during", at, "11")
    at = rows[kinds == 1]  # misspellings: a letter dropped, thousands of distinct names
    misspelt = []
    for number, row in enumerate(at):
        name = str(ex[row])
        cut = 1 + number % max(1, len(name) - 2)
        misspelt.append(f"{name[:cut]}{name[cut + 1 :]}" + (f" v{number}" if number % 2 else ""))
    ex[at] = misspelt
    put("date", rows[kinds == 2], "2026-02-30")
    put("date", rows[kinds == 3], "03/04/2026")
    at = rows[kinds == 4]  # a copy of the row before it
    for column in columns:
        columns[column][at] = columns[column][at - 1]
    ex[at] = ex[at - 1]
    put("patient_id", rows[kinds == 5], "P99999")
    put("date", rows[kinds == 6], "2031-01-01")
    put("reps", rows[kinds == 7], "-3")
    put("reps", rows[kinds == 8], "ten")
    put("load_kg", rows[kinds == 9], "900")
    put("set", rows[kinds == 10], "0")
    ex[rows[kinds == 11]] = ""
    put("hold_s", rows[kinds == 12], "700")
    put("pain_24h", rows[kinds == 13], "4/100")
    columns["exercise"] = ex
    tables["exercises"] = pd.DataFrame(columns)
    patients = tables["patients"]
    bad = np.arange(3, len(patients), 97)
    age = patients["age_years"].to_numpy(dtype=object).copy()
    age[bad] = "7"
    patients["age_years"] = age
    return tables


def _many_patients(tables):
    """Each patient's sets cut into blocks of 10: ~10^5 patients with 10 sets each."""
    frame = tables["exercises"]
    within = frame.groupby("patient_id", sort=False).cumcount().to_numpy() // 10
    new_id = frame["patient_id"] + "-" + pd.Series(within, index=frame.index).astype(str)
    frame["patient_id"] = new_id
    patients = tables["patients"].set_index("patient_id")
    pairs = pd.DataFrame({"old": frame["patient_id"].str.rsplit("-", n=1).str[0], "new": new_id})
    pairs = pairs.drop_duplicates("new")
    new_patients = patients.loc[pairs["old"].to_numpy()].reset_index(drop=True)
    new_patients.insert(0, "patient_id", pairs["new"].to_numpy())
    tables["patients"] = new_patients
    for name in ("activity", "outcomes", "treatments"):
        tables.pop(name, None)
    return tables


def _text_comma(tables):
    frame = tables["exercises"]
    notes = np.array(["", "left, then right", 'felt "easy", ok', "knee, hip, back"], dtype=object)
    frame["note"] = notes[np.arange(len(frame)) % 4]
    return tables


def _cp1252(tables):
    frame = tables["exercises"]
    notes = np.array(["", "Übung gut", "Schmerz – leicht", "très bien", "€5 band"], dtype=object)
    frame["Kommentar"] = notes[np.arange(len(frame)) % 5]
    tables["patients"]["clinician_id"] = tables["patients"]["clinician_id"] + "-Søren"
    return tables


def make(source: Path, out: Path, only: list[str] | None = None) -> None:
    plain = _read(source)

    def fresh():
        return {k: v.copy() for k, v in plain.items()}

    builders = {
        "plain": lambda: _write(fresh(), out / "plain"),
        "semicolon": lambda: _write(_decimal_comma(fresh()), out / "semicolon", sep=";"),
        "crlf": lambda: _write(fresh(), out / "crlf", crlf=True),
        "bom": lambda: _write(fresh(), out / "bom", encoding="utf-8-sig"),
        "quoteall": lambda: _write(fresh(), out / "quoteall", quote_all=True),
        "textcomma": lambda: _write(_text_comma(fresh()), out / "textcomma"),
        "cp1252": lambda: _write(_cp1252(fresh()), out / "cp1252", encoding="cp1252"),
        "mixed": lambda: _mixed(fresh(), out / "mixed"),
        "headers": lambda: _write(_headers(fresh()), out / "headers"),
        "aliases": lambda: _write(_aliases(fresh()), out / "aliases"),
        "dayfirst": lambda: _write(_dayfirst(fresh()), out / "dayfirst"),
        "exlevel": lambda: _write(_exercise_level(fresh()), out / "exlevel"),
        "load_lb": lambda: _write(_load_lb(fresh()), out / "load_lb"),
        "vas100": lambda: _write(_vas100(fresh()), out / "vas100"),
        "shuffled": lambda: _write(_shuffle(fresh()), out / "shuffled"),
        "bad": lambda: _write(_bad_rows(fresh()), out / "bad"),
        "manypatients": lambda: _write(_many_patients(fresh()), out / "manypatients"),
        "hostile": lambda: _write(
            _headers(_shuffle(_bad_rows(_aliases(_dayfirst(_decimal_comma(fresh())))))),
            out / "hostile",
            sep=";",
            encoding="utf-8-sig",
            crlf=True,
            quote_all=True,
        ),
    }
    for name, build in builders.items():
        if only and name not in only:
            continue
        started = time.perf_counter()
        build()
        print(f"{name}: {time.perf_counter() - started:.1f} s", flush=True)


def _mixed(tables, out: Path) -> None:
    """UTF-8 with 40 lines in Windows-1252 (a comment pasted from another program)."""
    frame = tables["exercises"]
    note = np.full(len(frame), "", dtype=object)
    note[::50] = "Übung gut"
    frame["note"] = note
    _write(tables, out)
    path = out / "exercises.csv"
    lines = path.read_bytes().split(b"\n")
    step = max(1, len(lines) // 40)
    for number in range(1, len(lines) - 1, step):
        if lines[number].endswith(b","):
            lines[number] = lines[number][:-1] + ",Müde".encode("cp1252")
    path.write_bytes(b"\n".join(lines))


def _load(folder: Path, options: dict):
    import hipdata

    started = time.process_time()
    data = hipdata.load(folder, today=TODAY, **options)
    return data, time.process_time() - started


def _compare(name: str, plain, variant) -> list[str]:
    """Differences between the variant's Dataset and the plain one's, after what the variant
    changes on purpose."""
    out = []
    exact = name in ("semicolon", "crlf", "bom", "quoteall", "textcomma", "mixed", "headers")
    exact |= name in ("aliases", "dayfirst", "cp1252")

    def same(label, a, b, **kw):
        try:
            pd.testing.assert_frame_equal(a, b, check_exact=True, **kw)
        except AssertionError as exc:
            out.append(f"{label}: {str(exc).splitlines()[0:6]}")

    if name == "cp1252":
        fixed = variant.patients.copy()
        fixed["clinician_id"] = fixed["clinician_id"].str.removesuffix("-Søren")
        same("patients", fixed, plain.patients)
    elif name == "shuffled":  # the patients table keeps the file's order
        same(
            "patients",
            variant.patients.sort_values("patient_id").reset_index(drop=True),
            plain.patients,
        )
    elif name not in ("bad", "hostile", "manypatients"):
        same("patients", variant.patients, plain.patients)
    if exact:
        same("sets", variant.sets, plain.sets)
        for table in ("activity", "outcomes", "treatments"):
            same(table, getattr(variant, table), getattr(plain, table))
        if len(variant.quarantine) or len(plain.quarantine):
            out.append(f"quarantine {len(variant.quarantine)} vs {len(plain.quarantine)}")
    elif name == "shuffled":
        key = ["patient_id", "date", "exercise", "set"]
        a = variant.sets.drop(columns="source_row").sort_values(key).reset_index(drop=True)
        b = plain.sets.drop(columns="source_row").sort_values(key).reset_index(drop=True)
        same("sets (sorted)", a, b)
        for table in ("activity", "outcomes", "treatments"):
            tv, tp = getattr(variant, table), getattr(plain, table)
            keys = [c for c in tv.columns if c != "source_row"]
            same(
                table,
                tv.drop(columns="source_row").sort_values(keys).reset_index(drop=True),
                tp.drop(columns="source_row").sort_values(keys).reset_index(drop=True),
            )
    elif name in ("load_lb", "vas100"):
        column = "load_kg" if name == "load_lb" else "pain_during"
        diff = (variant.sets[column] - plain.sets[column]).abs().max()
        if not diff < 0.05:
            out.append(f"{column} differs by up to {diff}")
        rest = [c for c in plain.sets.columns if c not in ("load_kg", "pain_during", "pain_24h")]
        rest = [c for c in rest if c not in ("exercise", "family", "level", "dose")]
        same("sets (other columns)", variant.sets[rest], plain.sets[rest])
    elif name == "exlevel":
        cols = ["patient_id", "date", "exercise", "set", "reps", "hold_s", "load_kg"]
        same(
            "sets (patient, date, exercise, set, reps, hold, load)",
            variant.sets[cols],
            plain.sets[cols],
        )
    report = variant.load_report
    if not (report["rows_read"] == report["rows_kept"] + report["rows_quarantined"]).all():
        out.append("load report does not reconcile")
    return out


def time_one(source: Path, folder: Path, check: bool) -> dict:
    name = folder.name
    options = OPTIONS.get(name, {})
    variant, cpu = _load(folder, options)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    rows = int(variant.load_report["rows_read"].sum())
    quarantined = len(variant.quarantine)
    plain, plain_cpu = _load(source, {})
    result = {
        "variant": name,
        "rows": rows,
        "quarantined": quarantined,
        "cpu_s": round(cpu, 2),
        "plain_cpu_s": round(plain_cpu, 2),
        "ratio": round(cpu / plain_cpu, 2),
        "rows_per_s": int(rows / cpu),
        "peak_mib": int(peak),
    }
    if check:
        result["differences"] = _compare(name, plain, variant)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["make", "time", "one"])
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    if args.what == "make":
        make(args.source, args.out, args.only)
    elif args.what == "one":
        print(json.dumps(time_one(args.source, args.out, args.check)), flush=True)
    else:
        folders = sorted(p for p in args.out.iterdir() if p.is_dir())
        if args.only:
            folders = [p for p in folders if p.name in args.only]
        for folder in folders:
            command = [sys.executable, __file__, "one", str(args.source), str(folder)]
            command += ["--check"] if args.check else []
            done = subprocess.run(command, capture_output=True, text=True)
            print(done.stdout.strip() or done.stderr.strip()[-2000:], flush=True)


if __name__ == "__main__":
    main()
