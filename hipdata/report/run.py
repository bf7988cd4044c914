"""Run a report notebook with papermill and swap its outputs into place whole.

The notebook does the work (it builds a :class:`~hipdata.report.document.Document` from the
library's functions and saves the PDF); this module executes it in a staging folder inside the
output folder (``.hipdata-run-*``), exports the executed notebook to HTML, and only then moves the
PDF, the HTML and any tables into place with :func:`os.replace`, with SIGINT and SIGTERM held back
for the few renames of that commit. An interrupted run therefore leaves the previous complete
outputs and, once its ``finally`` blocks have run, no staging folder or temporary file.

The notebooks are package data (``hipdata/report/notebooks/``), so a wheel install runs them too.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import html
import json
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

#: report kind -> notebook file name in ``hipdata/report/notebooks/``
NOTEBOOKS = {"cohort": "cohort_report.ipynb", "audit": "quarterly_audit.ipynb"}
#: report kind -> whether the HTML export hides the code cells (clinic leads read the audit)
HIDE_CODE = {"cohort": False, "audit": True}
KERNEL = "python3"
#: Folder of the report notebooks inside the installed package.
NOTEBOOK_DIR = Path(__file__).resolve().parent / "notebooks"
#: Prefix of the staging folder a run writes into (inside the output folder).
STAGING_PREFIX = ".hipdata-run-"
#: The two audiences of a report: ``external`` (default, small counts suppressed) and
#: ``internal`` (no suppression, marked on every page, for the clinic's own staff).
AUDIENCES = ("external", "internal")
#: Printed on every page of an internal report.
INTERNAL_BANNER = "internal — not for circulation"
#: Smallest suppression threshold an external report accepts (counts 1..k-1 are hidden).
MIN_K = 3
#: The suppression threshold that switches suppression off (internal reports only).
NO_SUPPRESSION_K = 1
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def notebook_path(kind: str) -> Path:
    """The report notebook of ``kind``, from the installed package's ``report/notebooks``."""
    if kind not in NOTEBOOKS:
        raise ValueError(f"unknown report {kind!r}: use one of {', '.join(NOTEBOOKS)}")
    path = NOTEBOOK_DIR / NOTEBOOKS[kind]
    if not path.is_file():
        from hipdata.errors import DataError

        raise DataError(
            f"the {kind} notebook is missing from the installed package",
            file=str(path),
            fix="reinstall hipdata (pip install --force-reinstall hipdata)",
        )
    return path


def audience_k(audience: str, k: int) -> int:
    """The suppression threshold a report uses for ``audience``.

    ``external`` reports need ``k >= 3`` (:data:`MIN_K`); ``internal`` ones switch suppression
    off (threshold 1: no count is small). This is the one way to switch it off.

    >>> audience_k("external", 5), audience_k("internal", 5)
    (5, 1)
    """
    from hipdata.errors import DataError

    if audience not in AUDIENCES:
        raise DataError(f"unknown audience {audience!r}", fix="use external or internal")
    if audience == "internal":
        return NO_SUPPRESSION_K
    if int(k) < MIN_K:
        raise DataError(
            f"k = {k} would show small counts",
            fix=f"use k >= {MIN_K}, or audience='internal' for a report that stays in the clinic",
        )
    return int(k)


def safe_name(text: str) -> str:
    """A file-name part from data-borne text (a clinic id): letters, digits, ``.``, ``_``, ``-``.

    Other characters (``/``, spaces, ``<``) become ``-``; when anything was changed a short hash
    of the original keeps two different ids from sharing a file name.

    >>> safe_name("C01"), safe_name("C/01")
    ('C01', 'C-01-7cae20')
    """
    cleaned = _SAFE_NAME.sub("-", str(text)).strip(".-") or "unit"
    if cleaned == str(text):
        return cleaned
    return f"{cleaned}-{hashlib.sha256(str(text).encode()).hexdigest()[:6]}"


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back while the block runs (they are delivered after it)."""
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - Windows
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def commit(staging: Path, out: Path, names: list[str]) -> dict[str, Path]:
    """Move ``names`` from ``staging`` into ``out`` in one step that signals cannot split."""
    missing = [name for name in names if not (staging / name).is_file()]
    if missing:
        raise RuntimeError(f"the run did not write {', '.join(missing)}")
    final: dict[str, Path] = {}
    with signals_held():
        for name in names:
            os.replace(staging / name, out / name)
            final[name] = out / name
    return final


@contextlib.contextmanager
def staging_folder(out: Path) -> Iterator[Path]:
    """A fresh staging folder inside ``out``, removed afterwards whatever happens."""
    staging = Path(tempfile.mkdtemp(dir=out, prefix=STAGING_PREFIX))
    try:
        yield staging
    finally:
        with signals_held():
            shutil.rmtree(staging, ignore_errors=True)


def _cell_sections(notebook: dict) -> dict[int, str]:
    """Code cell index -> the title of the Markdown heading above it (for progress messages)."""
    sections: dict[int, str] = {}
    title = "setup"
    for index, cell in enumerate(notebook["cells"]):
        source = "".join(cell.get("source", ""))
        if cell["cell_type"] == "markdown":
            heading = re.search(r"^#+\s+(.+)$", source, flags=re.MULTILINE)
            if heading:
                title = heading.group(1).strip()
        elif cell["cell_type"] == "code":
            sections[index] = title
    return sections


def _sanitise(notebook, *, data: Path, out: Path, staging: Path) -> None:
    """Remove absolute paths from the executed notebook before it is exported as HTML.

    The injected parameters cell (and any output) would show the server's folders; they are
    replaced by the folders' own names.
    """
    replacements = {
        str(staging): "<output>",
        str(out): "<output>",
        str(data): f"<data: {data.name}>",
    }

    def clean(text: str) -> str:
        for path, label in sorted(replacements.items(), key=lambda item: -len(item[0])):
            text = text.replace(path, label)
        return text

    for cell in notebook.cells:
        cell.source = clean(cell.source)
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = clean(output["text"])
            for key, value in output.get("data", {}).items():
                if isinstance(value, str) and key.startswith("text/"):
                    output["data"][key] = clean(value)


def _banner_html(page: str, banner: str) -> str:
    """Insert a banner at the top of the HTML page's body."""
    block = (
        '<div style="background:#fde8e8;border:2px solid #b00;padding:6px;'
        f'font-weight:bold;text-align:center">{html.escape(banner)}</div>'
    )
    return re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + block, page, count=1)


@contextlib.contextmanager
def _without_iri_grammars() -> Iterator[None]:
    """Import the notebook tools without jsonschema's optional IRI format checker.

    jsonschema registers it when ``rfc3987_syntax`` imports, which compiles dozens of lark
    grammars (3 CPU seconds, a tenth of a small audit); notebook validation never checks IRI
    formats. Only when the module is not loaded yet; it stays importable afterwards.
    """
    import sys

    if "rfc3987_syntax" in sys.modules or "jsonschema" in sys.modules:
        yield
        return
    sys.modules["rfc3987_syntax"] = None  # an import of it raises ImportError meanwhile
    try:
        yield
    finally:
        if sys.modules.get("rfc3987_syntax", 0) is None:
            del sys.modules["rfc3987_syntax"]


def run_report(
    kind: str,
    *,
    data: str | Path,
    out: str | Path,
    parameters: dict | None = None,
    generated: dt.date | None = None,
    timeout_s: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Execute the ``kind`` notebook on ``data`` and write its PDF, HTML and tables to ``out``.

    Parameters
    ----------
    kind : {"cohort", "audit"}
    data : path
        The data folder.
    out : path
        Output folder (created).
    parameters : dict
        Extra notebook parameters (quarter, clinic, k, audience, dayfirst, ...); ``protocol``
        is a dict of :class:`~hipdata.protocol.Protocol` field overrides
        (:meth:`~hipdata.protocol.Protocol.overrides`), which the notebook reads as
        ``Protocol(**protocol)``.
    generated : date
        The report's generation date (default: today); same inputs and date, same PDF bytes.
    timeout_s : int, optional
        Per-cell execution timeout in seconds; default none (a registry's first cell, loading
        and computing 10^7 set rows, takes minutes).
    progress : callable, optional
        Called with the title of each notebook section as it starts.

    Returns
    -------
    dict
        ``paths``: ``pdf``, ``html`` and any tables the notebook listed, as final paths;
        ``load_report``: the loader's rows read / kept / quarantined per file (list of dicts);
        ``protocol``: the protocol's fields the report used, as its notebook recorded them with
        :func:`write_manifest` (``None`` when the notebook did not record them).
    """
    with _without_iri_grammars():
        import nbformat
        import papermill
        from nbconvert import HTMLExporter

    notebook = notebook_path(kind)
    data = Path(data).resolve()
    out = Path(out).resolve()  # the notebook runs in its package folder: paths must be absolute
    out.mkdir(parents=True, exist_ok=True)
    generated = generated or dt.date.today()
    parameters = dict(parameters or {})
    sections = _cell_sections(json.loads(notebook.read_text(encoding="utf-8")))
    extra = {}
    if progress is not None:
        shown: set[str] = set()

        def on_cell_start(cell, cell_index, **_):
            # papermill inserts its parameters cell, so match on the source, not the index
            title = cell.get("metadata", {}).get("hipdata_section")
            if title and title not in shown:
                shown.add(title)
                progress(title)

        extra["on_cell_start"] = on_cell_start
    with staging_folder(out) as staging:
        source = nbformat.read(str(notebook), as_version=4)
        for index, title in sections.items():
            source.cells[index].metadata["hipdata_section"] = title
        values = {
            **parameters,
            "data_folder": str(data),
            "generated": generated.isoformat(),
            "output_dir": str(staging),
        }
        executed = staging / notebook.name
        papermill.execute_notebook(
            source,
            str(executed),
            parameters=values,
            kernel_name=KERNEL,
            cwd=str(notebook.parent),
            execution_timeout=timeout_s,
            start_timeout=120,
            progress_bar=False,
            log_output=False,
            **extra,
        )
        manifest = json.loads((staging / "manifest.json").read_text())
        stem = manifest["stem"]
        result = nbformat.read(str(executed), as_version=4)
        _sanitise(result, data=data, out=out, staging=staging)
        exporter = HTMLExporter(exclude_input=HIDE_CODE[kind], exclude_input_prompt=True)
        page, _ = exporter.from_notebook_node(result)
        if parameters.get("audience") == "internal":
            page = _banner_html(page, INTERNAL_BANNER)
        (staging / f"{stem}.html").write_text(page, encoding="utf-8")
        produced = {"pdf": f"{stem}.pdf", "html": f"{stem}.html", **manifest.get("tables", {})}
        moved = commit(staging, out, list(produced.values()))
        paths = {name: moved[file_name] for name, file_name in produced.items()}
    return {
        "paths": paths,
        "load_report": manifest.get("load_report", []),
        "protocol": manifest.get("protocol"),
    }


def write_manifest(
    output_dir: str | Path,
    stem: str,
    tables: dict[str, str] | None = None,
    *,
    load_report=None,
    protocol=None,
) -> None:
    """Called by a notebook's last cell: the base name of its outputs, the tables it wrote, the
    loader's report (rows read / kept / quarantined per file, for the command line) and the
    :class:`~hipdata.protocol.Protocol` the report used (all its fields, windows as lists)."""
    rows = [] if load_report is None else load_report.to_dict(orient="records")
    payload = {"stem": stem, "tables": tables or {}, "load_report": rows}
    if protocol is not None:
        fields = protocol.as_dict() if hasattr(protocol, "as_dict") else dict(protocol)
        payload["protocol"] = {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in fields.items()
        }
    Path(output_dir, "manifest.json").write_text(json.dumps(payload, default=str), encoding="utf-8")
