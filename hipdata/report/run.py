"""Run a report notebook with papermill and collect its outputs atomically.

The notebook does the work (it builds a :class:`~hipdata.report.document.Document` from the
library's functions and saves the PDF); this module executes it in a scratch folder inside the
output folder, exports the executed notebook to HTML, and only then moves the PDF, the HTML and
any tables into place with :func:`os.replace`. An interrupted run therefore leaves no truncated
PDF or CSV that looks complete.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from pathlib import Path

#: report kind -> notebook file name in ``notebooks/``
NOTEBOOKS = {"cohort": "cohort_report.ipynb", "audit": "quarterly_audit.ipynb"}
#: report kind -> whether the HTML export hides the code cells (clinic leads read the audit)
HIDE_CODE = {"cohort": False, "audit": True}
KERNEL = "python3"


def notebook_path(kind: str) -> Path:
    """The report notebook of ``kind``, from the source tree's ``notebooks/`` folder."""
    if kind not in NOTEBOOKS:
        raise ValueError(f"unknown report {kind!r}: use one of {', '.join(NOTEBOOKS)}")
    path = Path(__file__).resolve().parents[2] / "notebooks" / NOTEBOOKS[kind]
    if not path.is_file():
        from hipdata.errors import DataError

        raise DataError(
            f"the {kind} notebook is not where hipdata expects it",
            file=str(path),
            fix="run hipdata from a clone of the repository installed with `make` "
            "(pip install -e .)",
        )
    return path


def run_report(
    kind: str,
    *,
    data: str | Path,
    out: str | Path,
    parameters: dict | None = None,
    generated: dt.date | None = None,
    timeout_s: int = 600,
) -> dict[str, Path]:
    """Execute the ``kind`` notebook on ``data`` and write its PDF, HTML and tables to ``out``.

    Parameters
    ----------
    kind : {"cohort", "audit"}
    data : path
        The data folder.
    out : path
        Output folder (created).
    parameters : dict
        Extra notebook parameters (quarter, clinic, k, ...).
    generated : date
        The report's generation date (default: today); same inputs and date, same PDF bytes.
    timeout_s : int
        Per-cell execution timeout.

    Returns
    -------
    dict
        ``pdf``, ``html`` and any tables the notebook listed, as final paths.
    """
    import papermill
    from nbconvert import HTMLExporter

    notebook = notebook_path(kind)
    out = Path(out).resolve()  # the notebook runs in notebooks/, so paths must be absolute
    out.mkdir(parents=True, exist_ok=True)
    generated = generated or dt.date.today()
    with tempfile.TemporaryDirectory(dir=out, prefix=".hipdata-run-") as scratch:
        scratch = Path(scratch)
        executed = scratch / notebook.name
        values = {
            **(parameters or {}),
            "data_folder": str(Path(data).resolve()),
            "generated": generated.isoformat(),
            "output_dir": str(scratch),
        }
        papermill.execute_notebook(
            str(notebook),
            str(executed),
            parameters=values,
            kernel_name=KERNEL,
            cwd=str(notebook.parent),
            execution_timeout=timeout_s,
            start_timeout=120,
            progress_bar=False,
            log_output=False,
        )
        manifest = json.loads((scratch / "manifest.json").read_text())
        stem = manifest["stem"]
        exporter = HTMLExporter(exclude_input=HIDE_CODE[kind], exclude_input_prompt=True)
        html, _ = exporter.from_filename(str(executed))
        (scratch / f"{stem}.html").write_text(html, encoding="utf-8")
        produced = {"pdf": f"{stem}.pdf", "html": f"{stem}.html", **manifest.get("tables", {})}
        final: dict[str, Path] = {}
        for name, file_name in produced.items():
            source = scratch / file_name
            if not source.is_file():
                raise RuntimeError(f"the {kind} notebook did not write {file_name}")
            target = out / file_name
            os.replace(source, target)
            final[name] = target
    return final


def write_manifest(output_dir: str | Path, stem: str, tables: dict[str, str] | None = None) -> None:
    """Called by a notebook's last cell: the base name of its outputs and the tables it wrote."""
    payload = {"stem": stem, "tables": tables or {}}
    Path(output_dir, "manifest.json").write_text(json.dumps(payload), encoding="utf-8")
