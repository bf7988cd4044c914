"""The ``hipdata`` command line: thin wrappers over the library's public functions.

Progress bars and colour live here only; errors from bad input print as one clear message
(no traceback) and exit with status 2.
"""

from __future__ import annotations

import functools
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


def _friendly_errors(command):
    """Print DataError as a plain message and exit 2, without a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except DataError as exc:
            err_console.print(f"[bold red]hipdata: cannot use the input[/bold red]\n{exc}")
            raise typer.Exit(code=2) from None

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


def _print_load_report(dataset) -> None:
    table = Table(title="Rows per file", title_justify="left")
    for column in ("file", "table", "read", "kept", "quarantined"):
        table.add_column(
            column, justify="right" if column in ("read", "kept", "quarantined") else "left"
        )
    for row in dataset.load_report.itertuples(index=False):
        table.add_row(
            row.source_file,
            row.table,
            f"{row.rows_read:,}",
            f"{row.rows_kept:,}",
            f"{row.rows_quarantined:,}",
        )
    console.print(table)
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
) -> None:
    """Load FOLDER, report rows read / kept / quarantined per file and the top reasons."""
    started = time.perf_counter()
    dataset = _load_with_progress(
        folder, dayfirst=dayfirst, pain_scale=pain_scale, catalogue=catalogue
    )
    elapsed = time.perf_counter() - started
    _print_load_report(dataset)
    summary = dataset.summary()
    console.print(
        f"{summary['patients']:,} patients, {summary['sessions']:,} sessions, "
        f"{summary['sets']:,} sets kept; {summary['rows_quarantined']:,} rows quarantined "
        f"(loaded in {elapsed:.1f} s)."
    )
    if out is not None:
        from hipdata.metrics import write_tables

        write_tables(
            {
                "quarantine": dataset.quarantine,
                "load_report": dataset.load_report,
                "columns": dataset.columns,
            },
            out,
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


def _compute_metrics(dataset, out: Path, fmt: str) -> dict:
    """Compute and write every metric table plus the pain-trajectory model and quarantine."""
    from hipdata.analysis.trajectories import fit_pain_trajectory
    from hipdata.metrics import compute_all, write_tables

    with console.status("computing metrics"):
        tables = compute_all(dataset)
        model = fit_pain_trajectory(tables["sessions"])
    outputs = {name: frame for name, frame in tables.items() if name != "family_sessions"}
    outputs["pain_trajectory_model"] = model.summary
    outputs["quarantine"] = dataset.quarantine
    write_tables(outputs, out, format=fmt)
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
) -> None:
    """Compute the contract's tables (sets, sessions, weekly_load, progressions,
    patient_summary, outcome_change), the pain-trajectory model and the quarantine."""
    if format not in ("csv", "parquet"):
        raise DataError(f"unknown format {format!r}", fix="use --format csv or --format parquet")
    dataset = _load_with_progress(
        folder, dayfirst=dayfirst, pain_scale=pain_scale, catalogue=catalogue
    )
    result = _compute_metrics(dataset, out, format)
    _print_metrics_summary(result["tables"])
    console.print(f"Tables written to {out.resolve()}")


@app.command()
@_friendly_errors
def demo(
    data: Annotated[Path, typer.Option(help="The demo data folder.")] = Path("data/demo"),
    out: Annotated[Path, typer.Option(help="Where the outputs go.")] = Path("reports/demo"),
) -> None:
    """The main job on the shipped synthetic demo cohort: validate, metrics, reports."""
    started = time.perf_counter()
    dataset = _load_with_progress(data)
    _print_load_report(dataset)
    from hipdata.metrics import write_tables

    write_tables({"load_report": dataset.load_report}, out)
    result = _compute_metrics(dataset, out / "metrics", "csv")
    _print_metrics_summary(result["tables"])
    console.print(f"Metric tables in {(out / 'metrics').resolve()}")
    audit = _run_report("audit", data, out, {"quarter": None, "clinic": None, "k": 5}, None)
    cohort = _run_report("cohort", data, out, {"k": 5}, None)
    console.print("[bold]Reports:[/bold]")
    for paths in (audit, cohort):
        console.print(f"  {paths['pdf'].resolve()}")
    console.print(f"Outputs in {out.resolve()} ({time.perf_counter() - started:.1f} s).")


report_app = typer.Typer(help="Cohort report and quarterly clinic audit (notebook -> HTML + PDF).")
app.add_typer(report_app, name="report")

Generated = Annotated[
    str | None,
    typer.Option(help="Generation date YYYY-MM-DD printed on the report (default: today)."),
]


def _run_report(kind: str, data: Path, out: Path, parameters: dict, generated: str | None):
    import datetime as dt

    from papermill.exceptions import PapermillExecutionError

    from hipdata.report.run import run_report

    try:
        day = dt.date.fromisoformat(generated) if generated else None
    except ValueError:
        raise DataError(
            f"--generated {generated!r} is not a date", fix="write it as YYYY-MM-DD"
        ) from None
    started = time.perf_counter()
    try:
        with console.status(f"running the {kind} notebook"):
            paths = run_report(kind, data=data, out=out, parameters=parameters, generated=day)
    except PapermillExecutionError as exc:
        if exc.ename == "DataError":
            raise DataError(exc.evalue) from None
        raise
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
    k: Annotated[int, typer.Option(help="Suppress counts 1..k-1.")] = 5,
    overdispersion: Annotated[
        bool, typer.Option(help="Widen funnel limits for overdispersion (winsorised z-scores).")
    ] = False,
    generated: Generated = None,
) -> None:
    """Quarterly clinic audit: indicators, funnel plots, trends; PDF + HTML + CSV."""
    parameters = {"quarter": quarter, "clinic": clinic, "k": k, "overdispersion": overdispersion}
    _run_report("audit", data, out, parameters, generated)


@report_app.command("cohort")
@_friendly_errors
def report_cohort(
    data: Annotated[Path, typer.Option(help="Data folder.")],
    out: Annotated[Path, typer.Option(help="Output folder.")],
    k: Annotated[int, typer.Option(help="Suppress counts 1..k-1.")] = 5,
    generated: Generated = None,
) -> None:
    """Researcher's cohort report: Table 1, flow, progression, pain, adherence, outcomes."""
    _run_report("cohort", data, out, {"k": k}, generated)


def main() -> None:  # pragma: no cover - console entry point alias
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
