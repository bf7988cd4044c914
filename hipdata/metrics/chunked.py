"""``hipdata metrics`` in chunks of patients, in parallel worker processes, in bounded memory.

Every contract table is per patient (CONTRACT §5): nothing in a patient's rows depends on
another patient's. So the input rows can be split by patient into chunks, each chunk loaded
(:func:`hipdata.io.loader.load`) and computed (:func:`hipdata.metrics.compute_all`) in a worker
process that holds only its chunk, and the per-chunk tables written one after the other. The
parent reads each input file once, assigns every record to a chunk by its patient id (the cell
text the loader compares ids by, so rows the loader treats as one patient share a chunk and a
patient's duplicates are all seen), and makes the chunks contiguous ranges of the sorted ids:
the tables, sorted by patient first, come out in the single-process run's row order. The records
keep their file's name and 1-based row numbers, so the quarantine and the sets' ``source_row``
are those of the whole file. The pain-trajectory model, the one thing fitted across patients, is
fitted from the per-patient statistics each worker hands over with its tables
(:func:`hipdata.analysis.trajectories.pain_trajectory_pieces`), so the parent only optimises
once the last chunk is done: the fit of the single-process run, bit for bit.

The workers hand each table over as an uncompressed Arrow IPC file (no encoding), which the
parent memory-maps and encodes once into the table's output file (for CSV output the workers
also write the CSV text, which the parent copies). The parent appends each chunk's rows as soon
as that chunk and every chunk before it are done, for the first chunks (:data:`TAIL_SHARE`)
while the later chunks run, and the last ones while a thread fits the model; a chunk that
shows the whole table's dtypes differ from the first chunks' (rare: a column all missing in one
chunk) makes the parent write that table again from all the chunks' files.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import resource
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from hipdata.errors import DataError

#: Exercise (set) rows above which ``hipdata metrics`` takes the chunked path by default.
CHUNKED_MIN_ROWS = 2_000_000
#: Target exercise rows per chunk: a worker's memory grows with its chunk (about 1 GiB per
#: 10^6 set rows loaded and computed, measured: 0.6 GiB at 500 000), and a fixed cost per chunk
#: (about 1.4 CPU s) favours fewer, larger chunks. Measured at 10^7 set rows with 2 workers:
#: 750 000 rows (15 chunks) 56 workers' CPU s, 2.31 GiB peak (parent and workers at once);
#: 1 000 000 (11 chunks) 50 CPU s, 2.66 GiB. 900 000 keeps the peak near 2.5 GiB.
DEFAULT_CHUNK_ROWS = 900_000
#: Share of the chunks whose rows the parent writes after the last chunk, while a thread fits
#: the pain-trajectory model (one core). The workers hand over the model's per-patient
#: statistics, so only its optimisation is left then: at 10^7 set rows about 2.5 CPU s, about
#: the Parquet encode of 2-3 of the 12 chunks (1 CPU s each); the others are written while
#: the later chunks run (it was 0.5 while the fit took 5-8 s there).
TAIL_SHARE = 0.25
#: Columns of ``sessions`` the parent keeps: the pain-trajectory model's and the CLI summary's.
SESSION_COLUMNS = ("patient_id", "week", "max_pain_during", "pain_24h", "flare")
#: Loader tables in the order the loader validates (and the quarantine lists) them.
_TABLE_ORDER = ("patients", "exercises", "activity", "outcomes", "treatments")
#: Suffix of the chunks' table pieces: uncompressed Arrow IPC (Feather v2) files.
_PIECE = ".arrow"
_CSV_OPTIONS = {"date_format": "%Y-%m-%d", "na_rep": "", "lineterminator": "\n"}


@dataclass
class ChunkedResult:
    """What the parent keeps of a chunked run: small tables and counts, never the big tables.

    Attributes
    ----------
    load_report : DataFrame
        Rows read / kept / quarantined per file, summed over the chunks (the loader's columns).
    quarantine : DataFrame
        The whole run's quarantine, in the single-process order.
    tables : dict of str to DataFrame
        Reduced tables for the CLI's summary line: ``sessions`` (:data:`SESSION_COLUMNS`),
        ``patient_summary`` (``patient_id``), ``progressions`` (the rises: ``kind``,
        ``criterion_before``), ``outcome_change`` (NPRS rows with a responder verdict).
    model : MixedModelFit or None
        The pain-trajectory model (None without two patients with sessions).
    written : dict of str to Path
        Table name -> file written.
    chunks : int
        Number of chunks.
    peak_rss : dict
        Peak resident memory in bytes: ``parent`` (whole run), ``parent_after_read`` (its peak
        once the inputs are read), ``workers`` (one per worker process), ``children_at_once``
        (the workers' sum) and ``parent_and_children_at_once`` (both, sampled every half second
        while the chunks run).
    workers_cpu : float
        CPU seconds of the workers (user + system), up to their last chunk's computation.
    timings : dict
        Wall seconds of the parent's steps: ``read`` (the inputs, split into chunks),
        ``chunks`` (until the last chunk is done; the tables of the chunks done in order are
        written meanwhile), ``write`` (from then to the commit: the last chunks' rows and the
        small tables, while the pain-trajectory model is fitted in a thread) and ``model``
        (the fit's own seconds, inside ``write``).
    parent_cpu : dict
        CPU seconds of the parent process (all its threads) in ``read``, ``chunks``,
        ``write``.
    """

    load_report: pd.DataFrame
    quarantine: pd.DataFrame
    tables: dict[str, pd.DataFrame]
    model: object
    written: dict[str, Path]
    chunks: int
    peak_rss: dict = field(default_factory=dict)
    workers_cpu: float = 0.0
    timings: dict = field(default_factory=dict)
    parent_cpu: dict = field(default_factory=dict)


def exercise_rows(folder: str | Path) -> int:
    """Rows of the folder's exercises file, counted cheaply (0 without one).

    Parquet: the file's metadata; CSV: its line count (an upper bound: quoted line breaks count
    too); other formats (``.xlsx``) 0, so they never take the chunked path.
    """
    from hipdata.io.loader import _find_files

    files, _ = _find_files(Path(folder))
    path = files.get("exercises")
    if path is None:
        return 0
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            return pq.ParquetFile(path).metadata.num_rows
        except (pa.ArrowException, OSError):
            return 0  # the loader reports the unreadable file
    if suffix in (".csv", ".txt", ".tsv"):
        lines = 0
        with open(path, "rb") as stream:
            while block := stream.read(1 << 24):
                lines += block.count(b"\n")
        return lines
    return 0


def _id_cells(raw, table: str) -> pd.Series:
    """The patient-id cells of a raw table as the loader compares them: a ``category`` Series
    of the cell texts (``_Checked.coded``), after the loader's own column mapping (which raises
    the loader's :class:`DataError` for a missing column)."""
    from hipdata.io.columns import KNOWN_COLUMNS
    from hipdata.io.loader import _Checked, _map_columns, _with_report

    mapping = _with_report(_map_columns(raw, table, KNOWN_COLUMNS[table]))
    return _Checked(raw, table, *mapping).coded("patient_id")


def _assign_chunks(ids: dict[str, pd.Series], chunk_rows: int) -> dict[str, np.ndarray]:
    """Chunk number of every record: contiguous ranges of the sorted distinct ids holding about
    ``chunk_rows`` exercise rows each (a patient is never split; every chunk has exercise rows
    when the file has any)."""
    distinct = pd.Index(
        np.unique(
            np.concatenate(
                [np.asarray(cells.cat.categories, dtype=object) for cells in ids.values()]
            )
        ),
        dtype=object,
    )  # sorted as the loader sorts ids (Python's text order)
    exercise_counts = np.zeros(len(distinct), dtype=np.int64)
    if "exercises" in ids:
        cells = ids["exercises"]
        where = distinct.get_indexer(pd.Index(cells.cat.categories, dtype=object))
        exercise_counts[where] = np.bincount(cells.cat.codes.to_numpy(), minlength=len(where))
    total = int(exercise_counts.sum())
    if total == 0:
        chunk_of_id = np.zeros(len(distinct), dtype=np.int64)
    else:
        before = np.cumsum(exercise_counts) - exercise_counts
        chunk_of_id = before // max(int(chunk_rows), 1)
        # a chunk without exercise rows (ids after the last set, or between a huge patient and
        # the next) joins the chunk before it (or, at the start, the first one with rows)
        rows = np.bincount(chunk_of_id, weights=exercise_counts)
        with_rows = np.flatnonzero(rows > 0)
        target = with_rows[
            np.clip(np.searchsorted(with_rows, np.arange(len(rows)), "right") - 1, 0, None)
        ]
        chunk_of_id = np.unique(target[chunk_of_id], return_inverse=True)[1]
    out = {}
    for table, cells in ids.items():
        where = distinct.get_indexer(pd.Index(cells.cat.categories, dtype=object))
        out[table] = chunk_of_id[where][cells.cat.codes.to_numpy()]
    return out


def _slice(raw, positions: np.ndarray, *, malformed: bool):
    """The records of ``raw`` at ``positions`` as a RawTable of the same file (original row
    numbers, file-level facts kept); the malformed records go to one chunk only."""
    source_row = raw.source_row[positions]
    problems = raw.problems
    if len(problems):
        problems = problems[problems["source_row"].isin(source_row)].reset_index(drop=True)
    return replace(
        raw,
        cells=raw.cells.take(positions).reset_index(drop=True),
        source_row=source_row,
        malformed=list(raw.malformed) if malformed else [],
        problems=problems,
    )


def _float_whole(frame: pd.DataFrame) -> dict[str, bool]:
    """For each float column: all present values whole numbers in int64's range (``csv_ready``'s
    test, :func:`hipdata.io.writers.whole_numbers`)."""
    from hipdata.io.writers import whole_numbers

    out = {}
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_float_dtype(values.dtype):
            out[column] = whole_numbers(values.dropna())
    return out


def _write_piece(frame: pd.DataFrame, path: Path) -> None:
    """One chunk's table as an uncompressed Arrow IPC file (the Feather v2 format): the Arrow
    table ``to_parquet`` would encode, written as its buffers (no encoding), for the parent to
    memory-map and encode once into the whole table's file."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def _read_piece(path: Path) -> pa.Table:
    """A piece written by :func:`_write_piece`, memory-mapped (its buffers are not copied)."""
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_file(source).read_all()


def _piece_frame(path: Path) -> pd.DataFrame:
    """A piece as the pandas frame it was written from (dtypes from its pandas metadata)."""
    return _read_piece(path).to_pandas()


def _run_chunk(number: int, raws: dict, options: dict, protocol, measures, scratch: str, fmt: str):
    """Load and compute one chunk in a worker; write its tables to ``scratch``; return the small
    parts the parent needs (or the loader's DataError as a tuple)."""
    from hipdata.io.loader import load
    from hipdata.io.writers import write_table_csv
    from hipdata.metrics import compute_all

    patient_source_rows = raws["patients"].source_row
    try:
        dataset = load(raws, **options, measures=measures, categorical=True)
    except DataError as exc:
        return {"error": (exc.problem, exc.file, exc.fix)}
    del raws
    tables = compute_all(dataset, protocol, measures=measures)
    del tables["family_sessions"]
    folder = Path(scratch) / f"chunk{number:05d}"
    folder.mkdir()
    info = {}
    for name, frame in tables.items():
        _write_piece(frame, folder / f"{name}{_PIECE}")
        entry = {"rows": len(frame), "head": frame.iloc[:1].copy(), "whole": _float_whole(frame)}
        if fmt == "csv":  # with its header line (the fast writer's), which the parent skips
            write_table_csv(frame, folder / f"{name}.csv")
        info[name] = entry
    sessions = tables["sessions"]
    # the pain-trajectory model's per-patient statistics, so that the parent has only the
    # optimisation left once every chunk is done (None: the parent fits from the sessions)
    try:
        from hipdata.analysis.trajectories import pain_trajectory_pieces

        model_pieces = pain_trajectory_pieces(sessions)
    except Exception:  # noqa: BLE001 - the parent's fit from the sessions reports it
        model_pieces = None
    # the patients table keeps the file's order, and so does patient_summary: the file row of
    # each kept patient lets the parent restore that order across the chunks
    patients_file = dataset.load_report["source_file"].iloc[0]
    quarantined = dataset.quarantine.loc[
        dataset.quarantine["source_file"] == patients_file, "source_row"
    ]
    patient_rows = patient_source_rows[~np.isin(patient_source_rows, quarantined.to_numpy())]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    progressions = tables["progressions"]
    outcome = tables["outcome_change"]
    return {
        "number": number,
        "tables": info,
        "sessions": sessions[[c for c in SESSION_COLUMNS if c in sessions.columns]],
        "model_pieces": model_pieces,
        "patient_summary": tables["patient_summary"][["patient_id"]],
        "patient_rows": pd.Series(
            patient_rows, index=dataset.patients["patient_id"].to_numpy(), dtype="int64"
        ),
        "progressions": progressions.loc[
            progressions["kind"].isin(["up", "load_up"]), ["kind", "criterion_before"]
        ],
        "outcome_change": outcome.loc[
            (outcome["measure"] == "nprs") & outcome["responder"].notna(), ["measure", "responder"]
        ],
        "quarantine": dataset.quarantine,
        "load_report": dataset.load_report,
        "pid": os.getpid(),
        "max_rss": usage.ru_maxrss * 1024,
        "cpu": usage.ru_utime + usage.ru_stime,
    }


def _warm_up() -> None:
    """Import what a chunk needs, in a worker, while the parent still reads the inputs."""
    import hipdata.analysis.trajectories  # noqa: F401
    import hipdata.io.loader  # noqa: F401
    import hipdata.io.writers  # noqa: F401
    import hipdata.metrics  # noqa: F401


def _fit_model(sessions: pd.DataFrame, pieces: list | None):
    """The pain-trajectory model on the whole run's sessions, and its wall seconds: from the
    chunks' per-patient pieces when every chunk has them (the same fit, bit for bit: see
    :class:`hipdata.analysis.models.GroupPieces`), else from the sessions."""
    from hipdata.analysis import trajectories

    clock = time.perf_counter()
    if pieces is not None and all(piece is not None for piece in pieces):
        model = trajectories.fit_pain_trajectory_pieces(pieces)
    else:
        model = trajectories.fit_pain_trajectory(sessions)
    return model, time.perf_counter() - clock


def _target(heads: list[pd.DataFrame], rows: list[int]) -> pd.DataFrame:
    """An empty frame with the dtypes of the whole table: those of the chunks with rows (their
    common dtype when they differ), or the first chunk's when no chunk has rows."""
    full = [head for head, n in zip(heads, rows, strict=True) if n]
    if not full:
        return heads[0].iloc[:0]
    if all(head.dtypes.equals(full[0].dtypes) for head in full[1:]):
        return full[0].iloc[:0]
    return pd.concat(full, ignore_index=True).iloc[:0]


def _append_parquet(writer: pq.ParquetWriter, schema: pa.Schema, piece: Path, target) -> None:
    """Encode one chunk's piece into the whole table's Parquet file (``schema``, that of
    ``target``; a piece of other column types is converted to the target's dtypes first)."""
    table = _read_piece(piece)
    if not table.schema.equals(schema, check_metadata=False):
        frame = table.to_pandas().astype(target.dtypes.to_dict())
        table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    writer.write_table(table.replace_schema_metadata(schema.metadata))


def _write_parquet(path: Path, parts: list[Path], target: pd.DataFrame) -> None:
    schema = pa.Schema.from_pandas(target, preserve_index=False)
    with pq.ParquetWriter(path, schema) as writer:
        for part in parts:
            _append_parquet(writer, schema, part, target)


def _whole_flags(target: pd.DataFrame, flags: list[dict]) -> dict[str, bool]:
    """For each float column of the whole table: whole numbers in every chunk."""
    return {column: all(f.get(column, True) for f in flags) for column in _float_whole(target)}


def _append_csv(stream, part: tuple[Path, Path, pd.DataFrame, dict], target, whole) -> None:
    """One chunk's rows: its own CSV when it was formatted as the whole table is (same dtypes;
    whole-number float columns as in the whole table, ``whole``), else re-formatted here from
    its Arrow piece."""
    from hipdata.io.writers import csv_ready

    piece, csv, head, flags = part
    same = head.dtypes.equals(target.dtypes) and all(
        flags.get(column, True) == value for column, value in whole.items()
    )
    if same:
        with open(csv, encoding="utf-8", newline="") as source:
            source.readline()  # the piece's own header: the table has one, written before
            shutil.copyfileobj(source, stream, 1 << 22)
        return
    frame = _piece_frame(piece).astype(target.dtypes.to_dict())
    ready = csv_ready(frame)
    for position, column in enumerate(frame.columns):
        if column in whole and not whole[column]:
            ready.isetitem(position, frame[column])  # keep "3.0" as the whole table does
    ready.to_csv(stream, index=False, header=False, **_CSV_OPTIONS)


def _csv_header(stream, target: pd.DataFrame) -> None:
    from hipdata.io.writers import csv_ready

    csv_ready(target).to_csv(stream, index=False, **_CSV_OPTIONS)


def _write_csv(path: Path, parts: list[tuple[Path, Path, pd.DataFrame, dict]], target) -> None:
    """Header once, then each chunk's rows (:func:`_append_csv`)."""
    whole = _whole_flags(target, [flags for *_, flags in parts])
    with open(path, "w", encoding="utf-8", newline="") as stream:
        _csv_header(stream, target)
        for part in parts:
            _append_csv(stream, part, target, whole)


class _TableStream:
    """One output table written chunk by chunk, in chunk order, while later chunks still run.

    The whole table's dtypes (and, for CSV, which float columns hold only whole numbers) are
    known only once every chunk is done. The stream takes them from the first chunk with rows
    and keeps writing while every later chunk agrees; a chunk that does not (other dtypes, or a
    float column no longer whole after rows were written) marks the stream ``broken``, and the
    table is then written again from all its pieces after the last chunk (:func:`_write_parquet`
    / :func:`_write_csv`, the rules of a run that waits for every chunk). Either way the file
    is that of the one-process run.
    """

    def __init__(self, path: Path, fmt: str):
        self.path, self.fmt = path, fmt
        self.file = None  # ParquetWriter or text stream, opened with the first chunk with rows
        self.target: pd.DataFrame | None = None
        self.whole: dict[str, bool] = {}
        self.appended = 0
        self.broken = False

    def append(self, piece: Path, csv: Path, head: pd.DataFrame, rows: int, flags: dict) -> None:
        if self.broken or not rows:
            return
        if self.target is None:
            self.target = head.iloc[:0]
            self.whole = _whole_flags(self.target, [])
            if self.fmt == "parquet":
                self.schema = pa.Schema.from_pandas(self.target, preserve_index=False)
                self.file = pq.ParquetWriter(self.path, self.schema)
            else:
                self.file = open(self.path, "w", encoding="utf-8", newline="")  # noqa: SIM115
                _csv_header(self.file, self.target)
        elif not head.dtypes.equals(self.target.dtypes):
            self.broken = True
            return
        if self.fmt == "parquet":
            _append_parquet(self.file, self.schema, piece, self.target)
        else:
            whole = _whole_flags(self.target, [self.whole, flags])
            if whole != self.whole and self.appended:
                self.broken = True
                return
            self.whole = whole
            _append_csv(self.file, (piece, csv, head, flags), self.target, whole)
        self.appended += 1

    @property
    def complete(self) -> bool:
        """Whether the file holds the whole table once closed (else it must be rewritten)."""
        return self.appended > 0 and not self.broken

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def _merge_quarantine(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The chunks' quarantines in the loader's order: by file (in validation order), then row."""
    full = [part for part in parts if len(part)]
    if not full:
        return parts[0]
    merged = pd.concat(full, ignore_index=True) if len(full) > 1 else full[0]
    order = merged["table"].map({t: i for i, t in enumerate(_TABLE_ORDER)}).to_numpy()
    keys = pd.DataFrame({"table": order, "row": merged["source_row"].to_numpy()})
    return merged.take(keys.sort_values(["table", "row"], kind="stable").index).reset_index(
        drop=True
    )


def _merge_load_report(parts: list[pd.DataFrame], files: list[str]) -> pd.DataFrame:
    """The per-file counts summed over the chunks, in the loader's file order (``files``); a
    chunk without rows of an optional table did not load it, so not every part lists every
    file."""
    both = pd.concat(parts, ignore_index=True)
    columns = list(parts[0].columns)
    counts = ["rows_read", "rows_kept", "rows_quarantined"]
    grouped = both.groupby("source_file", sort=False)
    report = grouped[[c for c in columns if c not in counts and c != "source_file"]].first()
    report[counts] = grouped[counts].sum()
    report = report.reindex(files).rename_axis("source_file").reset_index()[columns]
    if not (report["rows_read"] == report["rows_kept"] + report["rows_quarantined"]).all():
        raise AssertionError("chunked load report does not reconcile")  # a bug, never the data
    return report


def _own_rss_peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _status_rss(pid: int) -> int:
    """Resident memory of ``pid`` now (bytes; 0 when /proc cannot tell)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _tree_rss(pid: int) -> int:
    """Resident memory of ``pid``'s descendants now (bytes, from /proc; 0 elsewhere). The
    workers are the forkserver's children, so the whole tree below ``pid`` is summed."""
    total = 0
    stack = [pid]
    while stack:
        parent = stack.pop()
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            stack.append(child)
            total += _status_rss(child)
    return total


def compute_chunked(
    folder: str | Path,
    out: str | Path,
    *,
    fmt: str = "csv",
    protocol=None,
    workers: int | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    measures=None,
    extra_tables: dict[str, pd.DataFrame] | None = None,
    progress: Callable[[int, int], None] | None = None,
    **load_options,
) -> ChunkedResult:
    """Compute and write the metric tables of ``folder`` chunk by chunk in worker processes.

    The files written equal those of the single-process run (``load`` + ``compute_all`` +
    ``write_tables``): same values, dtypes, columns and row order, the quarantine and the load
    report included.

    Parameters
    ----------
    folder : path
        The data folder (as :func:`hipdata.io.loader.load`).
    out : path
        Output folder; the tables are staged inside it and moved into place together, so an
        interrupted run leaves the previous set.
    fmt : {"csv", "parquet"}
        Output format.
    protocol : Protocol, optional
        As :func:`hipdata.metrics.compute_all`.
    workers : int, optional
        Worker processes (default ``os.cpu_count()``).
    chunk_rows : int
        Target exercise rows per chunk (a patient is never split).
    measures : dict, optional
        Outcome-measure registry (as :func:`hipdata.io.loader.load`).
    extra_tables : dict of str to DataFrame, optional
        Small tables written with the others (the CLI's ``protocol`` table), after the
        pain-trajectory model and the quarantine.
    progress : callable, optional
        Called as ``progress(chunks_done, chunks)``.
    **load_options
        ``dayfirst``, ``pain_scale``, ``catalogue``, ``today``.

    Returns
    -------
    ChunkedResult
    """
    from hipdata.io.loader import _find_files
    from hipdata.io.readers import read_raw
    from hipdata.report.run import commit, staging_folder

    folder, out = Path(folder), Path(out)
    if not folder.is_dir():
        raise DataError(
            "no such folder", file=str(folder), fix="give the folder that holds patients.csv"
        )
    workers = max(1, int(workers or os.cpu_count() or 1))
    today = load_options.pop("today", None)
    options = {
        **load_options,
        "today": pd.Timestamp.today().normalize() if today is None else pd.Timestamp(today),
    }
    clock, cpu = time.perf_counter(), time.process_time()
    timings, parent_cpu = {}, {}
    context = multiprocessing.get_context("forkserver" if os.name == "posix" else "spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    model_thread = ThreadPoolExecutor(1)
    try:
        # while the parent reads (one core): a worker imports the loader and the metrics, a
        # thread the model's modules (scipy)
        pool.submit(_warm_up)
        model_thread.submit(importlib.import_module, "hipdata.analysis.trajectories")
        model_thread.submit(importlib.import_module, "scipy.optimize")
        files, _ = _find_files(folder)
        raws = {t: read_raw(files[t], coded=True) for t in _TABLE_ORDER if t in files}
        ids = {table: _id_cells(raw, table) for table, raw in raws.items()}
        chunk_of = _assign_chunks(ids, chunk_rows)
        del ids
        n_chunks = int(max((int(c.max()) for c in chunk_of.values() if len(c)), default=0)) + 1
        positions = {}
        for table, chunks in chunk_of.items():
            order = np.argsort(chunks, kind="stable")
            bounds = np.concatenate([[0], np.cumsum(np.bincount(chunks, minlength=n_chunks))])
            positions[table] = (order, bounds)
        del chunk_of
    except BaseException:
        pool.shutdown(cancel_futures=True)
        model_thread.shutdown()
        raise
    pa.default_memory_pool().release_unused()  # the reader's buffers: before the workers start
    timings["read"] = time.perf_counter() - clock
    parent_cpu["read"] = time.process_time() - cpu
    parent_after_read = _own_rss_peak()

    file_names = [raw.name for raw in raws.values()]
    has_rows = {table: len(raw.cells) + len(raw.malformed) > 0 for table, raw in raws.items()}

    def chunk_raws(number: int) -> dict:
        parts = {}
        for table, raw in raws.items():
            order, bounds = positions[table]
            rows = order[bounds[number] : bounds[number + 1]]
            part = _slice(raw, rows, malformed=number == 0)
            # an optional table with no rows of this chunk's patients is left out of the
            # chunk (as a folder without that file: the same empty table)
            if table in ("activity", "outcomes", "treatments") and has_rows[table]:
                if not len(part.cells) and not part.malformed:
                    continue
            parts[table] = part
        return parts

    out.mkdir(parents=True, exist_ok=True)
    scratch = tempfile.mkdtemp(dir=out, prefix=".hipdata-chunks-")
    results: dict[int, dict] = {}
    streams: dict[str, _TableStream] = {}
    peak_children = peak_tree = 0
    from hipdata.io.writers import FORMATS, write_tables

    def stream_chunk(number: int, staging: Path) -> None:
        """Append chunk ``number``'s rows to every streamed table (chunks in order)."""
        tables = results[number]["tables"]
        chunk_dir = Path(scratch) / f"chunk{number:05d}"
        for name, entry in tables.items():
            if name == "patient_summary":  # small, reordered at the end
                continue
            if name not in streams:
                streams[name] = _TableStream(staging / f"{name}{FORMATS[fmt]}", fmt)
            streams[name].append(
                chunk_dir / f"{name}{_PIECE}",
                chunk_dir / f"{name}.csv",
                entry["head"],
                entry["rows"],
                entry["whole"],
            )

    try:
        with staging_folder(out) as staging:
            try:
                with pool:
                    pending = set()
                    next_chunk = next_stream = 0
                    streamed_early = n_chunks - int(n_chunks * TAIL_SHARE)
                    while next_chunk < n_chunks or pending:
                        # at most one chunk waiting per worker: the parent never holds many
                        # slices
                        while next_chunk < n_chunks and len(pending) < workers + 1:
                            future = pool.submit(
                                _run_chunk,
                                next_chunk,
                                chunk_raws(next_chunk),
                                options,
                                protocol,
                                measures,
                                scratch,
                                fmt,
                            )
                            pending.add(future)
                            next_chunk += 1
                            if next_chunk == n_chunks:
                                raws.clear()
                        done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                        children = _tree_rss(os.getpid())
                        peak_children = max(peak_children, children)
                        peak_tree = max(peak_tree, children + _status_rss(os.getpid()))
                        for future in done:
                            result = future.result()
                            if "error" in result:
                                for other in pending:
                                    other.cancel()
                                problem, file, fix = result["error"]
                                raise DataError(problem, file=file, fix=fix)
                            results[result["number"]] = result
                            if progress is not None:
                                progress(len(results), n_chunks)
                        if len(results) == n_chunks:
                            break  # the last chunks' rows are written with the model's fit
                        # the rows of every chunk done with all chunks before it, but for the
                        # last ones (:data:`TAIL_SHARE`)
                        while next_stream in results and next_stream < streamed_early:
                            stream_chunk(next_stream, staging)
                            next_stream += 1
                ordered = [results[number] for number in range(n_chunks)]
                sessions = pd.concat([r.pop("sessions") for r in ordered], ignore_index=True)
                model_pieces = [r.pop("model_pieces") for r in ordered]
                timings["chunks"] = time.perf_counter() - clock - timings["read"]
                parent_cpu["chunks"] = time.process_time() - cpu - parent_cpu["read"]
                if sessions["patient_id"].nunique() >= 2:
                    model_future = model_thread.submit(_fit_model, sessions, model_pieces)
                else:
                    model_future = None
                while next_stream < n_chunks:
                    stream_chunk(next_stream, staging)
                    next_stream += 1
            finally:
                for stream in streams.values():
                    stream.close()
            small = {
                name: pd.concat([r.pop(name) for r in ordered], ignore_index=True)
                for name in ("patient_summary", "progressions", "outcome_change")
            }
            patient_rows = pd.concat([r.pop("patient_rows") for r in ordered])
            quarantine = _merge_quarantine([r.pop("quarantine") for r in ordered])
            load_report = _merge_load_report([r.pop("load_report") for r in ordered], file_names)
            chunk_dirs = [Path(scratch) / f"chunk{n:05d}" for n in range(n_chunks)]
            written = {}
            for name in ordered[0]["tables"]:
                heads = [r["tables"][name]["head"] for r in ordered]
                rows = [r["tables"][name]["rows"] for r in ordered]
                keep = [i for i in range(n_chunks) if rows[i]] or [0]
                path = staging / f"{name}{FORMATS[fmt]}"
                if name == "patient_summary":  # small: in the patients file's order, as one run
                    target = _target(heads, rows)
                    frame = pd.concat(
                        [_piece_frame(chunk_dirs[i] / f"{name}{_PIECE}") for i in keep],
                        ignore_index=True,
                    ).astype(target.dtypes.to_dict())
                    position = patient_rows.reindex(frame["patient_id"].astype(object)).to_numpy()
                    frame = frame.take(np.argsort(position, kind="stable")).reset_index(drop=True)
                    written.update(write_tables({name: frame}, staging, format=fmt))
                    continue
                if not streams[name].complete:  # chunks disagreed: written again from all
                    target = _target(heads, rows)
                    if fmt == "parquet":
                        _write_parquet(
                            path, [chunk_dirs[i] / f"{name}{_PIECE}" for i in keep], target
                        )
                    else:
                        parts = [
                            (
                                chunk_dirs[i] / f"{name}{_PIECE}",
                                chunk_dirs[i] / f"{name}.csv",
                                heads[i],
                                ordered[i]["tables"][name]["whole"],
                            )
                            for i in keep
                            if rows[i]
                        ]
                        _write_csv(path, parts, target)
                written[name] = path
            model, timings["model"] = None, 0.0
            if model_future is not None:
                model, timings["model"] = model_future.result()  # its error, as one run's
            extras = {}
            if model is not None:
                extras["pain_trajectory_model"] = model.table()
            extras["quarantine"] = quarantine
            extras.update(extra_tables or {})
            written.update(write_tables(extras, staging, format=fmt))
            moved = commit(staging, out, [path.name for path in written.values()])
        timings["write"] = time.perf_counter() - clock - timings["read"] - timings["chunks"]
        parent_cpu["write"] = time.process_time() - cpu - sum(parent_cpu.values())
    finally:
        pool.shutdown(cancel_futures=True)
        model_thread.shutdown()
        shutil.rmtree(scratch, ignore_errors=True)
    workers_rss, workers_cpu = {}, {}
    for r in ordered:
        workers_rss[r["pid"]] = max(workers_rss.get(r["pid"], 0), r["max_rss"])
        workers_cpu[r["pid"]] = max(workers_cpu.get(r["pid"], 0.0), r["cpu"])
    return ChunkedResult(
        load_report=load_report,
        quarantine=quarantine,
        tables={"sessions": sessions, **small},
        model=model,
        written={name: moved[path.name] for name, path in written.items()},
        chunks=n_chunks,
        peak_rss={
            "parent": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "workers": list(workers_rss.values()),
            "children_at_once": peak_children,
            "parent_after_read": parent_after_read,
            "parent_and_children_at_once": peak_tree,
        },
        workers_cpu=sum(workers_cpu.values()),
        timings=timings,
        parent_cpu=parent_cpu,
    )
