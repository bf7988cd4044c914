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
    typer.Option(
        help="A study's outcome measures (CSV: name, low, high, higher_is_better, mcid_points, "
        "[mcid_pct, label, source, aliases]) merged over the shipped ones."
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


@app.command()
@_friendly_errors
def validate(
    folder: Annotated[Path, typer.Argument(help="Data folder (patients, exercises, ...).")],
    out: Annotated[
        Path | None, typer.Option(help="Write quarantine.csv and load_report.csv here.")
    ] = None,
    dayfirst: DayFirst = None,
    pain_scale: PainScale = "nrs",
    catalogue: CatalogueOpt = None,
    measures: MeasuresOpt = None,
) -> None:
    """Load FOLDER, report rows read / kept / quarantined per file and the top reasons."""
    options = _input_options(dayfirst, pain_scale, catalogue, measures)
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
            {"quarantine": dataset.quarantine, "load_report": dataset.load_report}, out, "csv"
        )
        console.print(f"Quarantine written to {out / 'quarantine.csv'}")


@app.command("catalogue")
@_friendly_errors
def catalogue_command(
    clinic_file: Annotated[
        Path | None, typer.Argument(help="Optional clinic catalogue to merge on top.")
    ] = None,
) -> None:
    """Print the exercise catalogue: ladders, levels, doses, targets and aliases."""
    from hipdata.catalogue import load_catalogue

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


def _compute_metrics(dataset, out: Path, fmt: str, measures=None) -> dict:
    """Compute and write every metric table plus the pain-trajectory model and quarantine."""
    from hipdata.analysis.trajectories import fit_pain_trajectory
    from hipdata.metrics import compute_all

    with console.status("computing metrics"):
        tables = (
            compute_all(dataset) if measures is None else compute_all(dataset, measures=measures)
        )
        model = fit_pain_trajectory(tables["sessions"])
    outputs = {name: frame for name, frame in tables.items() if name != "family_sessions"}
    outputs["pain_trajectory_model"] = model.summary
    outputs["quarantine"] = dataset.quarantine
    _write_tables_whole(outputs, out, fmt)
    for warning in model.warnings:
        err_console.print(f"[yellow]pain trajectory model:[/yellow] {warning}")
    return {"tables": tables, "model": model}


def _print_metrics_summary(tables: dict) -> None:
    sessions = tables["sessions"]
    summary = tables["patient_summary"]
    progressions = tables["progressions"]
    outcome = tables["outcome_change"]
    rises = progressions[progressions["kind"].isin(["up", "load_up"])]
    on_criteria = (rises["criterion_before"] == "met").mean() if len(rises) else float("nan")
    flare_known = sessions["flare"].dropna()
    adherent = (~flare_known.astype(bool)).mean() if len(flare_known) else float("nan")
    nprs = outcome[(outcome["measure"] == "nprs") & outcome["responder"].notna()]
    responders = nprs["responder"].astype(bool).mean() if len(nprs) else float("nan")
    console.print(
        f"{len(summary):,} patients, {len(sessions):,} sessions; "
        f"progressions on criteria {on_criteria:.0%} ({len(rises):,} rises); "
        f"sessions within 3/10 pain {adherent:.0%} (of {len(flare_known):,} with pain known); "
        f"NPRS responders {responders:.0%} (of {len(nprs):,} with follow-up)."
    )


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
) -> None:
    """Compute the contract's tables (sets, sessions, weekly_load, progressions,
    patient_summary, outcome_change), the pain-trajectory model and the quarantine."""
    if format not in ("csv", "parquet"):
        raise DataError(f"unknown format {format!r}", fix="use --format csv or --format parquet")
    options = _load_options(_input_options(dayfirst, pain_scale, catalogue, measures))
    dataset = _load_with_progress(folder, **options)
    _print_rows_per_file(dataset.load_report)
    result = _compute_metrics(dataset, out, format, measures=options["measures"])
    _print_metrics_summary(result["tables"])
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
) -> None:
    """The main job on the synthetic demo cohort: validate, metrics, reports."""
    from hipdata.protocol import SUPPRESSION_K

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
    result = _compute_metrics(dataset, out / "metrics", "csv")
    _print_metrics_summary(result["tables"])
    console.print(f"Metric tables in {(out / 'metrics').resolve()}")
    base = {"k": SUPPRESSION_K, "audience": "external"}
    audit = _run_report("audit", data, out, {**base, "quarter": None, "clinic": None}, None)
    cohort = _run_report("cohort", data, out, base, None)
    console.print("[bold]Reports:[/bold]")
    for paths in (audit, cohort):
        console.print(f"  {paths['pdf'].resolve()}")
    console.print(f"Outputs in {out.resolve()} ({time.perf_counter() - started:.1f} s).")


#: The demo cohort ``hipdata demo`` generates (the same as data/demo in the repository).
DEMO_PATIENTS = 300
DEMO_SEED = 20261127

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
        bool, typer.Option(help="Widen funnel limits for overdispersion (winsorised z-scores).")
    ] = False,
    generated: Generated = None,
    dayfirst: DayFirst = None,
    pain_scale: PainScale = "nrs",
    catalogue: CatalogueOpt = None,
    measures: MeasuresOpt = None,
) -> None:
    """Quarterly clinic audit: indicators, funnel plots, trends; PDF + HTML + CSV."""
    parameters = {
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
) -> None:
    """Researcher's cohort report: Table 1, flow, progression, pain, adherence, outcomes."""
    parameters = {
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


def main() -> None:  # pragma: no cover - console entry point alias
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
