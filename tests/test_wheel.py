"""Installed, not only cloned: a wheel in a fresh virtual environment produces both reports.

The wheel is built from a copy of the working tree (so the test sees exactly what would be
shipped, and writes no build/ folder into the clone) and installed into a new venv in tmp. The
venv borrows the test environment's third-party packages through a ``.pth`` file (installing
pandas, statsmodels, jupyter... from an index would take minutes and need the network), but
hipdata itself comes only from the wheel: the test checks that ``hipdata`` is imported from the
venv. Then, in a folder outside the repository, ``hipdata demo`` generates the demo cohort from
its fixed seed and writes both PDFs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def run(*args, cwd: Path, env: dict | None = None) -> str:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_wheel_install_produces_both_reports(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "reports", "build", "dist", "*.egg-info", "__pycache__", ".*cache"
        ),
    )
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", dist,
        source, cwd=tmp_path)  # fmt: skip
    (wheel,) = dist.glob("hipdata-*.whl")

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    site = Path(
        run(
            python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path
        ).strip()
    )
    # third-party dependencies from the test environment; hipdata must come from the wheel
    (site / "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # ... and the data files pip would have put under the venv's prefix (nbconvert's templates;
    # not the test environment's kernelspec, which would run the clone's hipdata)
    shutil.copytree(
        Path(sys.prefix) / "share" / "jupyter" / "nbconvert",
        venv / "share" / "jupyter" / "nbconvert",
    )
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
        wheel, cwd=tmp_path)  # fmt: skip

    work = tmp_path / "elsewhere"  # outside the repository
    work.mkdir()
    env = {
        **os.environ,
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "JUPYTER_DATA_DIR": str(tmp_path / "jupyter"),  # no user-level kernels
        "PYTHONPATH": "",
    }
    location = run(python, "-c", "import hipdata; print(hipdata.__file__)", cwd=work, env=env)
    assert Path(location.strip()).is_relative_to(venv), location
    version = run(venv / "bin" / "hipdata", "--version", cwd=work, env=env)
    assert version.strip() == "hipdata 0.1.0"
    # the public API of the installed package: subpackages after `import hipdata`, a study's
    # protocol from a TOML file
    (work / "study.toml").write_text("pain_threshold = 2\n")
    api = run(
        python,
        "-c",
        "import hipdata; p = hipdata.Protocol.from_file('study.toml'); "
        "print(p.pain_threshold, hipdata.analysis.fit_mixed.__name__, "
        "hipdata.plots.plot_pain_trajectory.__name__)",
        cwd=work,
        env=env,
    )
    assert api.split() == ["2", "fit_mixed", "plot_pain_trajectory"]

    run(venv / "bin" / "hipdata", "demo", "--out", "out", cwd=work, env=env)
    pdfs = sorted(p.name for p in (work / "out").glob("*.pdf"))
    assert pdfs == ["audit_2026Q3_all.pdf", "cohort_report.pdf"]
    for name in pdfs:
        assert (work / "out" / name).read_bytes()[:5] == b"%PDF-"
    # the generated demo cohort is the repository's data/demo, byte for byte
    for name in ("patients.csv", "exercises.csv", "outcomes.csv"):
        assert (work / "out" / "data" / name).read_bytes() == (
            ROOT / "data" / "demo" / name
        ).read_bytes()
