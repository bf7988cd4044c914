"""The ``hipdata`` command line: thin wrappers over the library's public functions.

Progress bars and colour live here only; errors from bad input print as one clear message
(no traceback) and exit with status 2.
"""

from __future__ import annotations

import functools
import signal
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hipdata.errors import DataError

app = typer.Typer(
    help="hipdata: outcome research for hip-pain rehabilitation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

DayFirst = Annotated[
    bool | None,
    typer.Option(
        "--dayfirst/--monthfirst",
        help="Order of day and month in dates like 03/04/2026 (default: refuse ambiguous dates).",
        show_default=False,
    ),
]
PainScale = Annotated[str, typer.Option(help="Pain scale of the input: nrs (0-10) or vas100.")]
CatalogueOpt = Annotated[
    Path | None,
    typer.Option(help="A clinic's exercise catalogue (CSV) merged over the shipped one."),
]
MeasuresOpt = Annotated[
    Path | None,
    typer.Option(help="Custom outcome measures (CSV or TOML: measure, min, max, better, mcid)."),
]
ProtocolFile = Annotated[
    Path | None,
    typer.Option(
        "--protocol",
        help="A study's protocol (TOML of Protocol fields, e.g. pain_threshold = 2); fields it "
        "leaves out keep the published protocol's values.",
    ),
]
PainThreshold = Annotated[
    float | None,
    typer.Option(help="The pain rule's threshold on 0-10 (default 3; overrides --protocol)."),
]
ResponderRule = Annotated[
    str | None,
    typer.Option(
        help="or: either MCID makes a responder (default); and: both (overrides --protocol)."
    ),
]
#: Share of input rows quarantined above which the commands warn (the input options may be
#: wrong, e.g. dd/mm dates read without --dayfirst).
QUARANTINE_WARNING_SHARE = 0.05


def _input_options(
    dayfirst: bool | None, pain_scale: str, catalogue: Path | None, measures: Path | None
) -> dict:
    """The loader keywords of the shared input options (the one place they are turned into
    :func:`hipdata.load` arguments; the report commands pass the same values to the notebooks)."""
    from hipdata.outcome_measures import read_measures

    read_measures(measures)  # a bad measures file stops here, before any work
    return {
        "dayfirst": dayfirst,
        "pain_scale": pain_scale,
        "catalogue": catalogue,
        "measures": measures,
    }


def _protocol(protocol_file: Path | None, pain_threshold: float | None, responder_rule: str | None):
    """The one :class:`hipdata.Protocol` of a run: the ``--protocol`` file (or the published
    protocol), then the flags given on the command line; validated here, before any work."""
    from hipdata.protocol import Protocol

    protocol = Protocol() if protocol_file is None else Protocol.from_file(protocol_file)
    flags = {"pain_threshold": pain_threshold, "responder_rule": responder_rule}
    changes = {name: value for name, value in flags.items() if value is not None}
    try:
        return protocol.replace(**changes)
    except ValueError as exc:
        option = "--" + str(exc).split()[1].replace("_", "-")
        raise DataError(f"{option}: {exc}", fix="give a value the protocol allows") from None


def _protocol_parameters(protocol) -> dict:
    """The notebook parameter that carries ``protocol``: the field overrides, as the notebooks'
    ``Protocol(**protocol)`` reads them."""
    return {"protocol": protocol.overrides()}


def _load_options(options: dict) -> dict:
    """:func:`hipdata.load` keywords from :func:`_input_options` (the measures file parsed)."""
    from hipdata.outcome_measures import read_measures

    return {**options, "measures": read_measures(options["measures"])}


def _version(value: bool) -> None:
    if value:
        import hipdata

        console.print(f"hipdata {hipdata.__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """hipdata: outcome research for hip-pain rehabilitation."""


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _friendly_errors(command):
    """Print DataError and OS errors as one plain message and exit 2, without a traceback.

    SIGTERM is turned into the same interruption as Ctrl-C, so that every ``finally`` block
    (staging folders, temporary files) runs; an interrupted command exits with status 130.
    """

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            previous = signal.signal(signal.SIGTERM, _interrupt)
        except ValueError:  # not the main thread
            previous = None
        try:
            return command(*args, **kwargs)
        except DataError as exc:
            err_console.print(f"[bold red]hipdata: cannot use the input[/bold red]\n{exc}")
            raise typer.Exit(code=2) from None
        except TimeoutError as exc:  # an OSError subclass, but not a file problem
            err_console.print(f"[bold red]hipdata: a step took too long[/bold red]\n{exc}")
            raise typer.Exit(code=2) from None
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            err_console.print(
                f"[bold red]hipdata: cannot read or write a file[/bold red]\n"
                f"{exc.strerror or exc}{where}\nFix: check that the folder exists, is a folder "
                "(not a file), is writable and has free space; previous outputs are unchanged.",
                highlight=False,
            )
            raise typer.Exit(code=2) from None
        except KeyboardInterrupt:
            err_console.print("hipdata: interrupted; previous outputs are unchanged.")
            raise typer.Exit(code=130) from None
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    return wrapper


def _load_with_progress(folder: Path, **options):
    from hipdata.io.loader import load

    with Progress(
        TextColumn("[bold]loading[/bold] {task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} tables"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    ) as bar:
        task = bar.add_task(str(folder), total=None)

        def progress(step: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=step)

        return load(folder, progress=progress, **options)


def _print_rows_per_file(load_report) -> None:
    """The loader's rows read / kept / quarantined per file, and a warning when many rows were
    quarantined (more than ``QUARANTINE_WARNING_SHARE`` of those read)."""
    import pandas as pd

    load_report = pd.DataFrame(load_report)
    table = Table(title="Rows per file", title_justify="left")
    for column in ("file", "table", "read", "kept", "quarantined"):
        table.add_column(
            column, justify="right" if column in ("read", "kept", "quarantined") else "left"
        )
    for row in load_report.itertuples(index=False):
        table.add_row(
            str(row.source_file),
            str(row.table),
            f"{row.rows_read:,}",
            f"{row.rows_kept:,}",
            f"{row.rows_quarantined:,}",
        )
    console.print(table)
    read = int(load_report["rows_read"].sum()) if len(load_report) else 0
    quarantined = int(load_report["rows_quarantined"].sum()) if len(load_report) else 0
    if read and quarantined / read > QUARANTINE_WARNING_SHARE:
        err_console.print(
            f"[bold yellow]warning:[/bold yellow] {quarantined:,} of {read:,} input rows "
            f"({quarantined / read:.0%}) were quarantined and are in no table or figure. Check "
            "--dayfirst/--monthfirst, --pain-scale, --catalogue and --measures, and the reasons "
            "with `hipdata validate`.",
            highlight=False,
        )


def _print_load_report(dataset) -> None:
    _print_rows_per_file(dataset.load_report)
    quarantine = dataset.quarantine
    if len(quarantine):
        reasons = (
            quarantine.assign(
                reason=quarantine["reason"].str.replace(r"row \d+", "row N", regex=True)
            )
            .groupby(["source_file", "column", "reason"], dropna=False)
            .size()
            .sort_values(ascending=False)
            .head(15)
        )
        top = Table(title="Top quarantine reasons", title_justify="left")
        for column in ("file", "column", "reason", "rows"):
            top.add_column(column, justify="right" if column == "rows" else "left", overflow="fold")
        for (file, column, reason), count in reasons.items():
            top.add_row(file, column, reason, f"{count:,}")
        console.print(top)
    if dataset.meta.get("ignored_files"):
        console.print(
            "Ignored files (not a known table): " + ", ".join(dataset.meta["ignored_files"])
        )
    _print_columns(dataset)


def _print_columns(dataset) -> None:
    """Every column of every file: used (as which field) or ignored; and the files' notes."""
    columns = getattr(dataset, "columns", None)
    if columns is None or not len(columns):
        return
    table = Table(title="Columns", title_justify="left")
    for column in ("file", "column", "used as", "note"):
        table.add_column(column, overflow="fold")
    for row in columns.itertuples(index=False):
        used = row.used_as or "[yellow]ignored[/yellow]"
        table.add_row(row.source_file, row.column, used, row.note)
    console.print(table)
    notes = dataset.load_report.get("notes")
    if notes is not None:
        for file, note in zip(dataset.load_report["source_file"], notes, strict=True):
            if note:
                console.print(f"Note on {file}: {note}", markup=False)


@app.command()
@_friendly_errors
def validate(
    folder: Annotated[Path, typer.Argument(help="Data folder (patients, exercises, ...).")],
    out: Annotated[
        Path | None,
        typer.Option(help="Write quarantine.csv, load_report.csv and columns.csv here."),
    ] = None,
    dayfirst: DayFirst = None,
    pain_scale: PainScale = "nrs",
    catalogue: CatalogueOpt = None,
    measures: MeasuresOpt = None,
    protocol_file: ProtocolFile = None,
) -> None:
    """Load FOLDER, report rows read / kept / quarantined per file and the top reasons.

    With --protocol, the study's protocol file is checked too (before the data)."""
    options = _input_options(dayfirst, pain_scale, catalogue, measures)
    if protocol_file is not None:
        _print_protocol(_protocol(protocol_file, None, None))
    started = time.perf_counter()
    dataset = _load_with_progress(folder, **_load_options(options))
    elapsed = time.perf_counter() - started
    _print_load_report(dataset)
    summary = dataset.summary()
    console.print(
        f"{summary['patients']:,} patients, {summary['sessions']:,} sessions, "
        f"{summary['sets']:,} sets kept; {summary['rows_quarantined']:,} rows quarantined "
        f"(loaded in {elapsed:.1f} s)."
    )
    if out is not None:
        _write_tables_whole(
            {
                "quarantine": dataset.quarantine,
                "load_report": dataset.load_report,
                "columns": dataset.columns,
            },
            out,
            "csv",
        )
        console.print(f"Quarantine written to {out / 'quarantine.csv'}")


@app.command("catalogue")
@_friendly_errors
def catalogue_command(
    clinic_file: Annotated[
        Path | None,
        typer.Argument(help="Optional clinic catalogue to merge on top, or 'unmatched'."),
    ] = None,
    folder: Annotated[
        Path | None, typer.Argument(help="With 'unmatched': the data folder to scan.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="With 'unmatched': write the mapping template here.")
    ] = None,
    catalogue: CatalogueOpt = None,
) -> None:
    """Print the exercise catalogue: ladders, levels, doses, targets and aliases.

    `hipdata catalogue unmatched FOLDER --out mapping.csv` lists every exercise name in FOLDER
    the catalogue does not know, with its count and the closest ids: fill in `id` (an existing
    exercise: an alias) or `id, family, level, dose` (a new one), then pass the file back with
    `--catalogue mapping.csv`.
    """
    from hipdata.catalogue import load_catalogue

    if clinic_file is not None and str(clinic_file) == "unmatched":
        from hipdata.catalogue import unmatched_names

        if folder is None:
            raise DataError("give the data folder: hipdata catalogue unmatched FOLDER --out FILE")
        table = unmatched_names(folder, load_catalogue(catalogue))
        if out is not None:
            from hipdata.io.writers import write_csv

            out.parent.mkdir(parents=True, exist_ok=True)
            write_csv(table, out)
        for row in table.itertuples(index=False):
            console.print(
                f"{row.count:>6}  {row.name}  -> {row.suggestions or '?'}", highlight=False
            )
        console.print(
            f"{len(table)} unmatched name(s)" + (f"; template written to {out}" if out else "")
        )
        return
    catalogue = load_catalogue(clinic_file)
    table = Table(title="hipdata exercise catalogue", title_justify="left")
    for column in ("family", "level", "id", "dose", "target"):
        table.add_column(column, no_wrap=True)
    for row in catalogue.itertuples(index=False):
        unit = "reps" if row.dose == "reps" else "s"
        table.add_row(
            row.family,
            str(row.level),
            row.id,
            row.dose,
            f"{row.target_sets} x {row.target_min:g}-{row.target_max:g} {unit}",
        )
    console.print(table)
    console.print("[bold]Aliases[/bold] (names matched ignoring case, spaces and punctuation)")
    for row in catalogue.itertuples(index=False):
        aliases = ", ".join(a for a in row.aliases.split("|") if a)
        console.print(f"[bold]{row.id}[/bold]: {aliases}", highlight=False)


@app.command()
@_friendly_errors
def synth(
    out: Annotated[Path, typer.Argument(help="Folder to write the synthetic cohort to.")],
    patients: Annotated[int, typer.Option(help="Number of patients.")] = 300,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same cohort).")] = 20261127,
) -> None:
    """Generate a synthetic cohort with planted effects (ground_truth.json beside it)."""
    from hipdata.synth import write_cohort

    started = time.perf_counter()
    with console.status(f"generating {patients:,} patients"):
        cohort = write_cohort(out, patients, seed=seed)
    rows = ", ".join(f"{name} {len(frame):,}" for name, frame in cohort.tables.items())
    console.print(f"Wrote {out} in {time.perf_counter() - started:.1f} s ({rows} rows).")


def _write_tables_whole(tables: dict, out: Path, fmt: str) -> dict:
    """Write the tables into a staging folder inside ``out``, then move them all into place in
    one step that SIGINT/SIGTERM cannot split: an interrupted run leaves the previous set."""
    from hipdata.metrics import write_tables
    from hipdata.report.run import commit, staging_folder

    out.mkdir(parents=True, exist_ok=True)
    with staging_folder(out) as staging:
        written = write_tables(tables, staging, format=fmt)
        moved = commit(staging, out, [path.name for path in written.values()])
    return {name: moved[path.name] for name, path in written.items()}


def _compute_metrics(dataset, out: Path, fmt: str, measures=None, protocol=None) -> dict:
    """Compute and write every metric table plus the pain-trajectory model and quarantine.

    The model is fitted in a second thread while the tables are written: both spend most of
    their time in numpy, BLAS and Arrow code that releases the GIL, so on two cores the model
    costs little wall time. The files are those of fitting first and writing after, and they are
    moved into place together (:func:`_write_tables_whole`'s staging and commit)."""
    from concurrent.futures import ThreadPoolExecutor

    from hipdata.analysis.trajectories import fit_pain_trajectory
    from hipdata.metrics import compute_all, write_tables
    from hipdata.report.run import commit, staging_folder

    with console.status("computing metrics"):
        tables = compute_all(dataset, protocol, measures=measures)
        # outcome-only data (no exercise sessions): no pain trajectory to model
        has_sessions = tables["sessions"]["patient_id"].nunique() >= 2
        outputs = {name: frame for name, frame in tables.items() if name != "family_sessions"}
        out.mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor(max_workers=1) as pool, staging_folder(out) as staging:
            fitting = pool.submit(fit_pain_trajectory, tables["sessions"]) if has_sessions else None
            written = write_tables(outputs, staging, format=fmt)
            model = fitting.result() if fitting is not None else None
            extras = {}
            if model is not None:
                extras["pain_trajectory_model"] = model.table()  # summary + which model and why
            extras["quarantine"] = dataset.quarantine
            extras["protocol"] = _protocol_table(protocol)  # the values these tables used
            written.update(write_tables(extras, staging, format=fmt))
            commit(staging, out, [path.name for path in written.values()])
    _print_model_warnings(model)
    return {"tables": tables, "model": model}


def _print_model_warnings(model) -> None:
    """The pain-trajectory model's warnings, or why it was not fitted."""
    unfitted = "not fitted (it needs exercise sessions of at least two patients)"
    for warning in model.warnings if model is not None else [unfitted]:
        err_console.print(f"[yellow]pain trajectory model:[/yellow] {warning}")


def _share(value: float) -> str:
    """A share as a whole percentage, ``n/a`` when there is nothing to divide (no rises, no
    sessions with both pains, nobody followed up)."""
    return "n/a" if value != value else f"{value:.0%}"


def _protocol_table(protocol):
    """``field, value, changed``: the protocol a metrics run used (values as JSON text)."""
    import json

    import pandas as pd

    from hipdata.protocol import Protocol

    protocol = protocol or Protocol()
    fields = protocol.as_dict()
    changed = protocol.overrides()
    return pd.DataFrame(
        {
            "field": list(fields),
            "value": [json.dumps(list(v) if isinstance(v, tuple) else v) for v in fields.values()],
            "changed": [name in changed for name in fields],
        }
    )


def _print_protocol(protocol) -> None:
    """One line: the protocol's values a run uses, marking those a study changed."""
    changed = protocol.overrides()
    text = (
        f"pain <= {protocol.pain_threshold:g}/10; criterion {protocol.criterion_sets} x "
        f">= {protocol.criterion_reps:g} reps or >= {protocol.criterion_hold_s:g} s; responder "
        f"rule '{protocol.responder_rule}'"
    )
    note = f" (changed: {', '.join(changed)})" if changed else " (the published protocol)"
    console.print(f"Protocol: {text}{note}.", highlight=False)


def _print_metrics_summary(tables: dict, protocol=None) -> None:
    from hipdata.protocol import Protocol

    protocol = protocol or Protocol()
    sessions = tables["sessions"]
    summary = tables["patient_summary"]
    progressions = tables["progressions"]
    outcome = tables["outcome_change"]
    rises = progressions[progressions["kind"].isin(["up", "load_up"])]
    on_criteria = (rises["criterion_before"] == "met").mean() if len(rises) else float("nan")
    # CONTRACT §4: complete case, over sessions with both pains recorded
    both = sessions["max_pain_during"].notna() & sessions["pain_24h"].notna()
    recorded = sessions.loc[both, "flare"]
    adherent = (~recorded.astype(bool)).mean() if len(recorded) else float("nan")
    nprs = outcome[(outcome["measure"] == "nprs") & outcome["responder"].notna()]
    responders = nprs["responder"].astype(bool).mean() if len(nprs) else float("nan")
    console.print(
        f"{len(summary):,} patients, {len(sessions):,} sessions; "
        f"progressions on criteria ({protocol.criterion_sets} x >= {protocol.criterion_reps:g} "
        f"reps / >= {protocol.criterion_hold_s:g} s) {_share(on_criteria)} ({len(rises):,} rises); "
        f"sessions within {protocol.pain_threshold:g}/10 pain {_share(adherent)} "
        f"(of {len(recorded):,} with both pains); NPRS responders "
        f"(rule '{protocol.responder_rule}') {_share(responders)} (of {len(nprs):,} with follow-up).",
        highlight=False,
    )


def _metrics_chunked(folder, out, fmt, protocol, options, workers, chunk_rows) -> bool:
    """``hipdata metrics`` chunk by chunk in worker processes (:mod:`hipdata.metrics.chunked`)
    when more than one worker and a large exercises table (or ``--chunk-rows``); the same files
    and printed lines as the one-process run. False: the caller runs the one-process path."""
    import os

    from hipdata.metrics import chunked

    workers = workers or os.cpu_count() or 1
    if workers < 2 or not Path(folder).is_dir():
        return False
    if chunk_rows is None and chunked.exercise_rows(folder) <= chunked.CHUNKED_MIN_ROWS:
        return False
    with console.status(f"computing metrics with {workers} workers"):
        result = chunked.compute_chunked(
            folder,
            out,
            fmt=fmt,
            protocol=protocol,
            workers=workers,
            chunk_rows=chunk_rows or chunked.DEFAULT_CHUNK_ROWS,
            extra_tables={"protocol": _protocol_table(protocol)},
            **options,
        )
    _print_rows_per_file(result.load_report)
    _print_protocol(protocol)
    model = result.model
    _print_model_warnings(model)
    _print_metrics_summary(result.tables, protocol)
    console.print(f"Tables written to {out.resolve()}")
    return True


@app.command()
@_friendly_errors
def metrics(
    folder: Annotated[Path, typer.Argument(help="Data folder (patients, exercises, ...).")],
    out: Annotated[Path, typer.Option(help="Folder for the metric tables.")],
    format: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    dayfirst: DayFirst = None,
    pain_scale: PainScale = "nrs",
    catalogue: CatalogueOpt = None,
    measures: MeasuresOpt = None,
    protocol_file: ProtocolFile = None,
    pain_threshold: PainThreshold = None,
    responder_rule: ResponderRule = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Worker processes for large inputs (default: one per CPU; 1: one process).",
        ),
    ] = None,
    chunk_rows: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Set rows per chunk of patients; given, the run is chunked whatever its size "
            "(default: chunks of 900,000 above 2,000,000 set rows).",
        ),
    ] = None,
) -> None:
    """Compute the contract's tables (sets, sessions, weekly_load, progressions,
    patient_summary, outcome_change), the pain-trajectory model, the quarantine and the
    protocol the tables were computed with (protocol.csv)."""
    if format not in ("csv", "parquet"):
        raise DataError(f"unknown format {format!r}", fix="use --format csv or --format parquet")
    protocol = _protocol(protocol_file, pain_threshold, responder_rule)
    options = _load_options(_input_options(dayfirst, pain_scale, catalogue, measures))
    if _metrics_chunked(folder, out, format, protocol, options, workers, chunk_rows):
        return
    dataset = _load_with_progress(folder, **options, categorical=True)  # ids as codes
    _print_rows_per_file(dataset.load_report)
    _print_protocol(protocol)
    result = _compute_metrics(dataset, out, format, measures=options["measures"], protocol=protocol)
    _print_metrics_summary(result["tables"], protocol)
    console.print(f"Tables written to {out.resolve()}")


@app.command()
@_friendly_errors
def demo(
    data: Annotated[
        Path | None,
        typer.Option(
            help="A data folder to use instead of the demo cohort (default: generate the "
            "synthetic demo cohort, seed 20261127, into OUT/data)."
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Where the outputs go.")] = Path("reports/demo"),
    protocol_file: ProtocolFile = None,
    pain_threshold: PainThreshold = None,
    responder_rule: ResponderRule = None,
) -> None:
    """The main job on the synthetic demo cohort: validate, metrics, reports."""
    from hipdata.protocol import SUPPRESSION_K

    protocol = _protocol(protocol_file, pain_threshold, responder_rule)
    started = time.perf_counter()
    if data is None:
        from hipdata.synth import write_cohort

        data = out / "data"
        with console.status("generating the demo cohort"):
            write_cohort(data, DEMO_PATIENTS, seed=DEMO_SEED)
        console.print(
            f"Demo cohort (synthetic, {DEMO_PATIENTS} patients, seed {DEMO_SEED}) in {data}"
        )
    dataset = _load_with_progress(data)
    _print_load_report(dataset)
    _write_tables_whole({"load_report": dataset.load_report}, out, "csv")
    _print_protocol(protocol)
    result = _compute_metrics(dataset, out / "metrics", "csv", protocol=protocol)
    _print_metrics_summary(result["tables"], protocol)
    console.print(f"Metric tables in {(out / 'metrics').resolve()}")
    base = {"k": SUPPRESSION_K, "audience": "external", **_protocol_parameters(protocol)}
    audit = _run_report("audit", data, out, {**base, "quarter": None, "clinic": None}, None)
    cohort = _run_report("cohort", data, out, base, None)
    console.print("[bold]Reports:[/bold]")
    for paths in (audit, cohort):
        console.print(f"  {paths['pdf'].resolve()}")
    console.print(f"Outputs in {out.resolve()} ({time.perf_counter() - started:.1f} s).")


#: The demo cohort ``hipdata demo`` generates (the same as data/demo in the repository).
DEMO_PATIENTS = 300
DEMO_SEED = 20261127


@app.command()
@_friendly_errors
def pseudonymise(
    folder: Annotated[Path, typer.Argument(help="Data folder (patients, exercises, ...).")],
    out: Annotated[Path, typer.Option(help="Folder for the pseudonymised copy (CSV).")],
    key_file: Annotated[
        Path | None,
        typer.Option(help="File holding the secret key (default: $HIPDATA_PSEUDONYM_KEY)."),
    ] = None,
    clinicians: Annotated[bool, typer.Option(help="Also replace clinician ids.")] = False,
    keep: Annotated[
        list[str] | None, typer.Option(help="A non-contract column to keep (repeatable).")
    ] = None,
    drop: Annotated[
        list[str] | None, typer.Option(help="A contract column to drop too (repeatable).")
    ] = None,
) -> None:
    """Copy FOLDER to --out with patient ids (and clinician ids) replaced by keyed pseudonyms."""
    from hipdata.pseudonymisation import pseudonymise_folder

    result = pseudonymise_folder(
        folder,
        out,
        key_file=key_file,
        clinicians=clinicians,
        keep_columns=keep or (),
        drop_columns=drop or (),
    )
    table = Table(title="Pseudonymised tables", title_justify="left")
    for column in ("file", "rows", "patient ids", "clinician ids", "columns dropped"):
        table.add_column(column, overflow="fold")
    for row in result.tables.itertuples(index=False):
        table.add_row(
            row.source_file,
            f"{row.rows:,}",
            f"{row.patient_ids:,}",
            f"{row.clinician_ids:,}",
            row.dropped_columns.replace("|", ", ") or "-",
        )
    console.print(table)
    if result.ignored_files:
        console.print("Not copied (not a known table): " + ", ".join(result.ignored_files))
    console.print(f"Pseudonymised copy written to {out.resolve()}")


report_app = typer.Typer(help="Cohort report and quarterly clinic audit (notebook -> HTML + PDF).")
app.add_typer(report_app, name="report")

Generated = Annotated[
    str | None,
    typer.Option(help="Generation date YYYY-MM-DD printed on the report (default: today)."),
]
KOpt = Annotated[
    int,
    typer.Option(min=3, help="Suppress counts 1..k-1 (at least 3; see --audience internal)."),
]
AudienceOpt = Annotated[
    str,
    typer.Option(
        help="external (default: small counts suppressed) or internal (no suppression, every "
        "page marked 'internal — not for circulation'; for the clinic's own staff only)."
    ),
]


#: Names of the OS errors a notebook's kernel can report (shown as one message, no traceback).
_OS_ERRORS = {
    cls.__name__
    for cls in (OSError, PermissionError, FileNotFoundError, FileExistsError, IsADirectoryError)
} | {"NotADirectoryError"}


def _run_report(kind: str, data: Path, out: Path, parameters: dict, generated: str | None):
    import datetime as dt

    from papermill.exceptions import PapermillExecutionError

    from hipdata.report.run import AUDIENCES, run_report

    try:
        day = dt.date.fromisoformat(generated) if generated else None
    except ValueError:
        raise DataError(
            f"--generated {generated!r} is not a date", fix="write it as YYYY-MM-DD"
        ) from None
    if parameters.get("audience", "external") not in AUDIENCES:
        raise DataError(
            f"unknown audience {parameters['audience']!r}",
            fix="use --audience external or internal",
        )
    if out.exists() and not out.is_dir():
        raise DataError("the output folder is a file", file=str(out), fix="give a folder")
    started = time.perf_counter()

    def progress(section: str) -> None:
        err_console.print(f"running the {kind} notebook: {section}", highlight=False)

    try:
        result = run_report(
            kind, data=data, out=out, parameters=parameters, generated=day, progress=progress
        )
    except PapermillExecutionError as exc:
        if exc.ename == "DataError":
            raise DataError(exc.evalue) from None
        if exc.ename in _OS_ERRORS:  # raised inside the notebook's kernel: same one message
            raise OSError(exc.evalue) from None
        raise
    _print_rows_per_file(result["load_report"])
    from hipdata.protocol import Protocol

    if result.get("protocol") is not None:
        _print_protocol(Protocol(**result["protocol"]))
    elif parameters.get("protocol"):
        err_console.print(
            f"[bold yellow]warning:[/bold yellow] the {kind} notebook did not record the "
            f"protocol it used; it was given {parameters['protocol']} (check that the notebook "
            "reads its `protocol` parameter).",
            highlight=False,
        )
    paths = result["paths"]
    for name, path in paths.items():
        console.print(f"{name:>18}: {path}")
    console.print(f"{kind} report written in {time.perf_counter() - started:.1f} s.")
    return paths


@report_app.command("audit")
@_friendly_errors
def report_audit(
    data: Annotated[Path, typer.Option(help="Data folder.")],
    out: Annotated[Path, typer.Option(help="Output folder.")],
    quarter: Annotated[
        str | None, typer.Option(help="Quarter like 2026Q3 (default: latest complete one).")
    ] = None,
    clinic: Annotated[str | None, typer.Option(help="One clinic id (default: all).")] = None,
    k: KOpt = 5,
    audience: AudienceOpt = "external",
    overdispersion: Annotated[
        str,
        typer.Option(
            help="Funnel limits for overdispersion: none, multiplicative or additive (applied "
            "only when a test finds it, with at least 10 units)."
        ),
    ] = "additive",
    generated: Generated = None,
    dayfirst: DayFirst = None,
    pain_scale: PainScale = "nrs",
    catalogue: CatalogueOpt = None,
    measures: MeasuresOpt = None,
    protocol_file: ProtocolFile = None,
    pain_threshold: PainThreshold = None,
    responder_rule: ResponderRule = None,
) -> None:
    """Quarterly clinic audit: indicators, funnel plots, trends; PDF + HTML + CSV."""
    protocol = _protocol(protocol_file, pain_threshold, responder_rule)
    parameters = {
        "protocol": protocol.overrides(),
        "quarter": quarter,
        "clinic": clinic,
        "k": k,
        "audience": audience,
        "overdispersion": overdispersion,
        **_notebook_options(_input_options(dayfirst, pain_scale, catalogue, measures)),
    }
    _run_report("audit", data, out, parameters, generated)


@report_app.command("cohort")
@_friendly_errors
def report_cohort(
    data: Annotated[Path, typer.Option(help="Data folder.")],
    out: Annotated[Path, typer.Option(help="Output folder.")],
    k: KOpt = 5,
    audience: AudienceOpt = "external",
    generated: Generated = None,
    dayfirst: DayFirst = None,
    pain_scale: PainScale = "nrs",
    catalogue: CatalogueOpt = None,
    measures: MeasuresOpt = None,
    protocol_file: ProtocolFile = None,
    pain_threshold: PainThreshold = None,
    responder_rule: ResponderRule = None,
) -> None:
    """Researcher's cohort report: Table 1, flow, progression, pain, adherence, outcomes."""
    protocol = _protocol(protocol_file, pain_threshold, responder_rule)
    parameters = {
        **_protocol_parameters(protocol),
        "k": k,
        "audience": audience,
        **_notebook_options(_input_options(dayfirst, pain_scale, catalogue, measures)),
    }
    _run_report("cohort", data, out, parameters, generated)


@report_app.command("notebook")
@_friendly_errors
def report_notebook(
    kind: Annotated[str, typer.Argument(help="cohort or audit.")],
    dest: Annotated[Path, typer.Argument(help="Folder to copy the notebook into.")],
) -> None:
    """Copy a report notebook out of the installed package, to adapt it in JupyterLab."""
    import shutil

    from hipdata.report.run import NOTEBOOKS, notebook_path

    if kind not in NOTEBOOKS:
        raise DataError(f"unknown report {kind!r}", fix="use cohort or audit")
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / NOTEBOOKS[kind]
    if target.exists():
        raise DataError("the notebook is already there", file=str(target), fix="remove it first")
    shutil.copyfile(notebook_path(kind), target)
    console.print(f"Copied to {target}; set data_folder in its first cell.")


def _notebook_options(options: dict) -> dict:
    """The shared input options as notebook parameters (paths absolute: the notebook runs in
    its own folder)."""
    return {
        name: str(Path(value).resolve()) if isinstance(value, Path) else value
        for name, value in options.items()
    }


import_app = typer.Typer(
    help="Import workout-app exports into a data folder (every source row accounted for)."
)
app.add_typer(import_app, name="import")

Source = Annotated[
    Path, typer.Argument(help="An export file, or a folder of them (one patient per file).")
]
OutFolder = Annotated[Path, typer.Option(help="Folder to write the data folder to.")]
PatientId = Annotated[
    str | None, typer.Option(help="Patient id of a single file (default: file name).")
]
PatientMap = Annotated[
    Path | None, typer.Option(help="For a folder: CSV file,patient_id (default: file names).")
]
ClinicId = Annotated[str, typer.Option(help="clinic_id written to patients.csv.")]
StartDate = Annotated[
    str | None, typer.Option(help="start_date of every patient (default: first session date).")
]
WeightUnit = Annotated[
    str | None, typer.Option(help="kg or lbs, when the file does not name the unit.")
]
PainDiary = Annotated[
    Path | None, typer.Option(help="Pain diary CSV (patient_id, date, pain_during, pain_24h).")
]


def _run_import(module: str, source: Path, out: Path, **options) -> None:
    import importlib

    reader = importlib.import_module(f"hipdata.sources.{module}")
    result = reader.read(source, **{k: v for k, v in options.items() if v is not None})
    result.write(out)
    table = Table(title=f"{module} import", title_justify="left")
    for column in ("file", "read", "kept", "quarantined"):
        table.add_column(column, justify="left" if column == "file" else "right")
    for row in result.report.itertuples(index=False):
        table.add_row(row.file, f"{row.read:,}", f"{row.kept:,}", f"{row.quarantined:,}")
    console.print(table)
    if len(result.quarantine):
        top = result.quarantine["reason"].value_counts().head(5)
        for reason, count in top.items():
            console.print(f"  {count:>6,}  {reason}", highlight=False)
    console.print(f"Wrote {out} (check it with: hipdata validate {out})")


@import_app.command("strong")
@_friendly_errors
def import_strong(
    source: Source,
    out: OutFolder,
    patient_id: PatientId = None,
    patient_map: PatientMap = None,
    clinic_id: ClinicId = "app",
    start_date: StartDate = None,
    weight_unit: WeightUnit = None,
    catalogue: CatalogueOpt = None,
    pain_diary: PainDiary = None,
    dayfirst: DayFirst = None,
) -> None:
    """Strong CSV export (semicolon or comma layout)."""
    _run_import(
        "strong",
        source,
        out,
        patient_id=patient_id,
        patient_map=patient_map,
        clinic_id=clinic_id,
        start_date=start_date,
        weight_unit=weight_unit,
        catalogue=catalogue,
        pain_diary=pain_diary,
        dayfirst=dayfirst,
    )


@import_app.command("hevy")
@_friendly_errors
def import_hevy(
    source: Source,
    out: OutFolder,
    patient_id: PatientId = None,
    patient_map: PatientMap = None,
    clinic_id: ClinicId = "app",
    start_date: StartDate = None,
    catalogue: CatalogueOpt = None,
    pain_diary: PainDiary = None,
    dayfirst: DayFirst = None,
) -> None:
    """Hevy CSV export."""
    _run_import(
        "hevy",
        source,
        out,
        patient_id=patient_id,
        patient_map=patient_map,
        clinic_id=clinic_id,
        start_date=start_date,
        catalogue=catalogue,
        pain_diary=pain_diary,
        dayfirst=dayfirst,
    )


@import_app.command("fitnotes")
@_friendly_errors
def import_fitnotes(
    source: Source,
    out: OutFolder,
    patient_id: PatientId = None,
    patient_map: PatientMap = None,
    clinic_id: ClinicId = "app",
    start_date: StartDate = None,
    weight_unit: WeightUnit = None,
    catalogue: CatalogueOpt = None,
    pain_diary: PainDiary = None,
    dayfirst: DayFirst = None,
) -> None:
    """FitNotes CSV export."""
    _run_import(
        "fitnotes",
        source,
        out,
        patient_id=patient_id,
        patient_map=patient_map,
        clinic_id=clinic_id,
        start_date=start_date,
        weight_unit=weight_unit,
        catalogue=catalogue,
        pain_diary=pain_diary,
        dayfirst=dayfirst,
    )


@import_app.command("redcap")
@_friendly_errors
def import_redcap(
    records: Annotated[Path, typer.Argument(help="REDCap records export (CSV raw/labels, JSON).")],
    out: OutFolder,
    dictionary: Annotated[
        Path | None, typer.Option(help="The project's data dictionary (default: the template's).")
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option(help="Mapping TOML (docs/redcap.md; default: the template's).")
    ] = None,
    measures: MeasuresOpt = None,
    catalogue: CatalogueOpt = None,
    dayfirst: DayFirst = None,
) -> None:
    """REDCap records export of a longitudinal project, with its data dictionary."""
    _run_import(
        "redcap",
        records,
        out,
        dictionary=dictionary,
        mapping=mapping,
        measures=measures,
        catalogue=catalogue,
        dayfirst=dayfirst,
    )


def main() -> None:  # pragma: no cover - console entry point alias
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
