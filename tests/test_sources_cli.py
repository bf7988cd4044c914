"""`hipdata import strong|hevy|fitnotes` as a user runs it."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from hipdata.cli import app
from tests.sources_helpers import DATA

runner = CliRunner()


def test_import_strong_writes_a_folder_that_validates(tmp_path):
    out = tmp_path / "data"
    result = runner.invoke(
        app,
        ["import", "strong", str(DATA / "strong_semicolon.csv"), "--out", str(out)]
        + [
            "--patient-id",
            "P01",
            "--clinic-id",
            "C1",
            "--pain-diary",
            str(DATA / "pain_diary.csv"),
        ],
    )
    assert result.exit_code == 0, result.output
    report = pd.read_csv(out / "import_report.csv")
    assert report.values.tolist() == [
        ["strong_semicolon.csv", 20, 14, 6],
        ["pain_diary.csv", 7, 2, 5],
    ]
    assert pd.read_csv(out / "patients.csv")["clinic_id"].tolist() == ["C1"]
    check = runner.invoke(app, ["validate", str(out)])
    assert check.exit_code == 0, check.output


def test_import_without_the_weight_unit_is_a_clear_error(tmp_path):
    result = runner.invoke(
        app, ["import", "strong", str(DATA / "strong_comma.csv"), "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "--weight-unit kg or --weight-unit lbs" in result.output


def test_import_hevy_and_fitnotes(tmp_path):
    for app_name, file in (("hevy", "hevy.csv"), ("fitnotes", "fitnotes.csv")):
        out = tmp_path / app_name
        result = runner.invoke(app, ["import", app_name, str(DATA / file), "--out", str(out)])
        assert result.exit_code == 0, result.output
        # one patient per file: the id is the file name without suffix
        assert pd.read_csv(out / "patients.csv")["patient_id"].tolist() == [file[:-4]]
