"""Time and check ``hipdata.load`` on Parquet files written in shapes our own cohorts never have.

Our benchmark cohorts are all written by ``hipdata synth`` (pandas, sorted by patient, dates as
``timestamp[ns]``, text as ``large_string``). A registry's files come from other tools. This
script rewrites one Parquet cohort in many shapes (``build``), then loads each shape and the
plain cohort in the same process (``load``): CPU seconds of :func:`hipdata.load`, the ratio to
the plain cohort's, and whether every table of the ``Dataset`` (patients, sets, activity,
outcomes, treatments, quarantine, load report; the column report where the headers are the
plain ones) equals the plain load's (``assert_frame_equal(check_exact=True)``). Shuffled rows
keep their file row numbers (``source_row``), so those are mapped back to the plain file's
before comparing.

Run::

    python benchmarks/bench_shapes.py build SRC_PARQUET_FOLDER OUT_ROOT [--only NAME ...]
    python benchmarks/bench_shapes.py load OUT_ROOT [--only NAME ...] [--repeat 2]

Above 2x10^6 set rows wrap it in ``flock /tmp/s4/big.lock``.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

TABLES = ("patients", "exercises", "activity", "outcomes", "treatments")
DATE_COLUMNS = ("date", "start_date", "discharge_date")
TEXT_COLUMNS = (
    "patient_id",
    "clinic_id",
    "clinician_id",
    "sex",
    "condition",
    "discharge_reason",
    "exercise",
    "measure",
    "treatment",
)
#: row order of the shuffled variants (fixed seed, so a rebuild gives the same files)
SEED = 11
STRING = pa.string()


def _read(src: Path) -> dict[str, pd.DataFrame]:
    return {
        t: pd.read_parquet(src / f"{t}.parquet") for t in TABLES if (src / f"{t}.parquet").exists()
    }


def _numbers(frame: pd.DataFrame) -> list[str]:
    return [
        c
        for c in frame.columns
        if c not in DATE_COLUMNS and c not in TEXT_COLUMNS and frame[c].dtype != bool
    ]


def _cast_dates(kind):
    def apply(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        for c in DATE_COLUMNS:
            if c not in frame:
                continue
            if kind == "text":
                frame[c] = frame[c].dt.strftime("%Y-%m-%d").astype(object)
            elif kind == "date32":
                days = pa.array(frame[c].to_numpy(), type=pa.timestamp("ns")).cast(pa.date32())
                frame[c] = pd.Series(pd.arrays.ArrowExtensionArray(days), index=frame.index)
            elif kind == "tz":
                frame[c] = frame[c].dt.tz_localize("Europe/Copenhagen")
            else:
                frame[c] = frame[c].astype(f"datetime64[{kind}]")
        return frame

    return apply


def _small_ints(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    kinds = {
        "set": "uint8",
        "reps": "Int16",
        "hold_s": "Int16",
        "pain_during": "Int8",
        "pain_24h": "Int8",
        "prescribed_sets": "UInt8",
        "prescribed_reps": "Int32",
        "prescribed_hold_s": "Int16",
        "age_years": "int8",
        "planned_sessions_per_week": "uint8",
        "cardio_min": "int16",
        "strength_sessions": "int32",
    }
    for c, kind in kinds.items():
        if c in frame:
            if frame[c].isna().any() and kind[0] != kind[0].upper():
                kind = kind.capitalize().replace("Uint", "UInt")
            frame[c] = frame[c].astype(kind)
    return frame


def _ints_as_float(frame: pd.DataFrame) -> pd.DataFrame:
    """Integers with missing values as float64 with NaN (pandas without nullable dtypes)."""
    frame = frame.copy()
    for c in _numbers(frame):
        frame[c] = frame[c].astype("float64")
    return frame


def _float32(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for c in _numbers(frame):
        frame[c] = frame[c].astype("float32")
    return frame


def _numbers_text(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for c in _numbers(frame):
        values = frame[c].astype(object)
        frame[c] = [
            "" if pd.isna(v) else (str(int(v)) if float(v).is_integer() else repr(float(v)))
            for v in values
        ]
    if "athlete" in frame:
        frame["athlete"] = frame["athlete"].map({True: "yes", False: "no"}).astype(object)
    return frame


def _dictionary(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for c in TEXT_COLUMNS:
        if c in frame:
            frame[c] = frame[c].astype("category")
    return frame


def _nullable_bool(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    if "athlete" in frame:
        values = frame["athlete"].astype("boolean")
        values[::7] = pd.NA
        frame["athlete"] = values
    return frame


def _extra_columns(frame: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(SEED)
    frame = frame.copy()
    frame["note"] = np.where(rng.random(len(frame)) < 0.1, "gave up early: knee ü", None)
    frame["device_score"] = rng.normal(size=len(frame))
    frame["visit_time"] = pd.Timestamp("2026-01-01 08:15")
    return frame


def _renamed(frame: pd.DataFrame) -> pd.DataFrame:
    spelling = {c: " ".join(w.capitalize() for w in c.split("_")) for c in frame.columns}
    spelling["patient_id"] = "Patient ID"
    return frame[list(frame.columns)[::-1]].rename(columns=spelling)


def _shuffle(frame: pd.DataFrame) -> pd.DataFrame:
    order = np.random.default_rng(SEED).permutation(len(frame))
    return frame.take(order)


def _arrow_table(frame: pd.DataFrame, *, text=STRING) -> pa.Table:
    """Written by pyarrow directly: no pandas metadata, text as ``string``."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    fields = []
    for f in table.schema:
        kind = f.type
        if pa.types.is_large_string(kind) or pa.types.is_string(kind):
            kind = text
        fields.append(pa.field(f.name, kind))
    return table.cast(pa.schema(fields)).replace_schema_metadata(None)


def _write_pandas(index):
    def write(frame, path):
        frame.to_parquet(path, index=index)

    return write


def _write_arrow(row_group=None, text=STRING):
    def write(frame, path):
        table = _arrow_table(frame, text=text)
        pq.write_table(table, path, row_group_size=row_group or max(len(frame), 1))

    return write


def _plain_write(frame, path):
    frame.to_parquet(path)


#: name -> (frame transform, writer, whether the headers are the plain ones)
VARIANTS = {
    "pandas_index": (lambda f: f, _write_pandas(True), False),
    "pandas_noindex": (lambda f: f, _write_pandas(False), True),
    "pandas_index_shuffled": (_shuffle, _write_pandas(None), False),
    "arrow_string": (lambda f: f, _write_arrow(), True),
    "arrow_large_string": (lambda f: f, _write_arrow(text=pa.large_string()), True),
    "dates_date32": (_cast_dates("date32"), _plain_write, True),
    "dates_us": (_cast_dates("us"), _plain_write, True),
    "dates_ms": (_cast_dates("ms"), _plain_write, True),
    "dates_s": (_cast_dates("s"), _plain_write, True),
    "dates_tz": (_cast_dates("tz"), _plain_write, True),
    "dates_text": (_cast_dates("text"), _plain_write, True),
    "ints_small": (_small_ints, _plain_write, True),
    "ints_float64": (_ints_as_float, _plain_write, True),
    "floats_float32": (_float32, _plain_write, True),
    "numbers_text": (_numbers_text, _plain_write, True),
    "text_dictionary": (_dictionary, _plain_write, True),
    "bool_nullable": (_nullable_bool, _plain_write, True),
    "extra_columns": (_extra_columns, _plain_write, False),
    "renamed_reordered": (_renamed, _plain_write, False),
    "rowgroups_1000": (lambda f: f, _write_arrow(1000, pa.large_string()), True),
    "rowgroup_one": (lambda f: f, _write_arrow(None, pa.large_string()), True),
    "shuffled": (_shuffle, _write_pandas(False), True),
    # a registry export: shuffled, pyarrow-written, small row groups, dictionary text, date32,
    # narrow integers (the 10^7 chunked run's input)
    "shuffled_mixed": (
        lambda f: _dictionary(_small_ints(_cast_dates("date32")(_shuffle(f)))),
        _write_arrow(50_000),
        True,
    ),
}


def build(src: Path, root: Path, only: list[str] | None) -> None:
    frames = _read(src)
    root.mkdir(parents=True, exist_ok=True)
    plain = root / "plain"
    if not plain.exists():
        shutil.copytree(src, plain)
    for name, (transform, write, _) in VARIANTS.items():
        if only and name not in only:
            continue
        folder = root / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        for table, frame in frames.items():
            # a frame's own column order for the shuffled patient rows: patients shuffled too
            write(transform(frame), folder / f"{table}.parquet")
        print(f"built {name}", flush=True)


def _row_maps(src: Path, folder: Path) -> dict[str, np.ndarray]:
    """File row of the plain file for each row of a shuffled variant's file (empty: same)."""
    maps = {}
    for table in TABLES:
        path = folder / f"{table}.parquet"
        if not path.exists():
            continue
        n = pq.ParquetFile(path).metadata.num_rows
        order = np.random.default_rng(SEED).permutation(n)
        maps[table] = order + 2  # variant row r (from 2) holds plain row order[r-2] + 2
    return maps


def _remap_rows(frame: pd.DataFrame, maps: dict[str, np.ndarray], file_table: dict) -> pd.DataFrame:
    if "source_row" not in frame or not len(frame):
        return frame
    frame = frame.copy()
    rows = np.asarray(frame["source_row"], dtype=np.int64).copy()
    for source_file, table in file_table.items():
        where = (frame["source_file"] == source_file).to_numpy()
        rows[where] = maps[table][rows[where] - 2]
    frame["source_row"] = rows.astype(frame["source_row"].dtype)
    return frame


def compare(
    ds, reference, *, shuffled: bool, headers: bool, maps=None, bool_nulls: bool = False
) -> list[str]:
    """Names of the Dataset's tables that differ from the reference's (empty: all equal)."""
    file_table = dict(zip(ds.load_report["source_file"], ds.load_report["table"], strict=True))
    differ = []
    names = ["patients", "sets", "activity", "outcomes", "treatments", "quarantine", "load_report"]
    if headers:
        names.append("columns")
    for name in names:
        got, expected = getattr(ds, name), getattr(reference, name)
        if shuffled:
            got = _remap_rows(got, maps, file_table)
            if name == "patients":  # the file's order: put back in the plain file's order
                got = got.set_index("patient_id").loc[expected["patient_id"]].reset_index()
            elif "source_row" in got and len(got):
                # sets keep the file order within a session, the other tables the file's order:
                # both compared in the plain file's order
                keys = [c for c in ("source_file", "source_row", "column") if c in got]
                got = got.sort_values(keys, kind="stable")
                expected = expected.sort_values(keys, kind="stable")
        if name == "patients" and bool_nulls:  # the variant's missing athlete values
            expected = expected.copy()
            athlete = expected["athlete"].astype("boolean")
            athlete.iloc[::7] = pd.NA
            expected["athlete"] = athlete.astype(got["athlete"].dtype)
        try:
            pd.testing.assert_frame_equal(
                got.reset_index(drop=True), expected.reset_index(drop=True), check_exact=True
            )
        except AssertionError as exc:
            differ.append(f"{name}: {str(exc).splitlines()[0:4]}")
    return differ


def load_all(root: Path, only: list[str] | None, repeat: int) -> list[dict]:
    import hipdata

    def timed(folder):
        best = None
        for _ in range(repeat):
            gc.collect()
            cpu, wall = time.process_time(), time.perf_counter()
            ds = hipdata.load(folder)
            took = (time.process_time() - cpu, time.perf_counter() - wall)
            best = took if best is None or took[0] < best[0] else best
            if _ + 1 < repeat:
                del ds
        return ds, best

    hipdata.load(root / "plain")  # first call: imports and caches, not timed
    reference, (plain_cpu, plain_wall) = timed(root / "plain")
    print(f"plain: load {plain_cpu:.2f} CPU s ({plain_wall:.2f} wall)", flush=True)
    results = [{"variant": "plain", "cpu_s": round(plain_cpu, 2), "ratio": 1.0, "equal": "yes"}]
    for name, (_, _, headers) in VARIANTS.items():
        if only and name not in only:
            continue
        folder = root / name
        if not folder.exists():
            continue
        try:
            ds, (cpu, wall) = timed(folder)
        except Exception as exc:  # a refused shape is a finding, not a crash of the bench
            print(f"{name}: FAILED {type(exc).__name__}: {exc}", flush=True)
            results.append({"variant": name, "error": f"{type(exc).__name__}: {exc}"})
            continue
        shuffled = "shuffled" in name
        maps = _row_maps(root / "plain", folder) if shuffled else None
        differ = compare(
            ds,
            reference,
            shuffled=shuffled,
            headers=headers,
            maps=maps,
            bool_nulls=name == "bool_nullable",
        )
        ratio = cpu / plain_cpu
        print(
            f"{name}: load {cpu:.2f} CPU s ({wall:.2f} wall), {ratio:.2f}x plain; "
            + ("equal" if not differ else "DIFFERS: " + "; ".join(differ)),
            flush=True,
        )
        results.append(
            {
                "variant": name,
                "cpu_s": round(cpu, 2),
                "ratio": round(ratio, 2),
                "equal": "yes" if not differ else "; ".join(differ),
            }
        )
        del ds
    return results


def write_xlsx(src: Path, folder: Path, rows: int | None) -> None:
    """The cohort's tables as .xlsx workbooks (openpyxl, write-only), dates as Excel dates;
    ``rows``: the first that many exercise rows (Excel holds at most 1 048 576 rows)."""
    from openpyxl import Workbook

    folder.mkdir(parents=True, exist_ok=True)
    for table, frame in _read(src).items():
        if table == "exercises" and rows:
            frame = frame.iloc[:rows]
        book = Workbook(write_only=True)
        sheet = book.create_sheet("data")
        sheet.append(list(frame.columns))
        columns = [frame[c].astype(object).where(frame[c].notna(), None) for c in frame.columns]
        for values in zip(*columns, strict=True):
            sheet.append([v.to_pydatetime() if isinstance(v, pd.Timestamp) else v for v in values])
        book.save(folder / f"{table}.xlsx")
        print(f"wrote {table}.xlsx ({len(frame):,} rows)", flush=True)


def time_xlsx(folder: Path) -> None:
    """CPU and wall seconds of ``hipdata.load`` on an .xlsx folder."""
    import hipdata

    cpu, wall = time.process_time(), time.perf_counter()
    ds = hipdata.load(folder)
    print(
        f"xlsx load: {time.process_time() - cpu:.1f} CPU s, {time.perf_counter() - wall:.1f} "
        f"wall s; {len(ds.sets):,} sets, {len(ds.quarantine):,} quarantined",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build")
    b.add_argument("src", type=Path)
    b.add_argument("root", type=Path)
    b.add_argument("--only", nargs="*")
    ld = sub.add_parser("load")
    ld.add_argument("root", type=Path)
    ld.add_argument("--only", nargs="*")
    ld.add_argument("--repeat", type=int, default=1)
    ld.add_argument("--json", type=Path)
    x = sub.add_parser("xlsx")
    x.add_argument("src", type=Path)
    x.add_argument("folder", type=Path)
    x.add_argument("--rows", type=float)
    t = sub.add_parser("time-xlsx")
    t.add_argument("folder", type=Path)
    args = parser.parse_args()
    if args.command == "xlsx":
        write_xlsx(args.src, args.folder, int(args.rows) if args.rows else None)
    elif args.command == "time-xlsx":
        time_xlsx(args.folder)
    elif args.command == "build":
        build(args.src, args.root, args.only)
    else:
        results = load_all(args.root, args.only, args.repeat)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
