"""Loader: every accepted format and locale variant gives the same canonical tables."""

from __future__ import annotations

import pandas as pd
import pytest

import hipdata
from tests.io_helpers import PATIENTS, SETS, TODAY, write_folder

COMPARE = [
    "patient_id",
    "date",
    "exercise",
    "family",
    "level",
    "set",
    "reps",
    "hold_s",
    "load_kg",
    "pain_during",
    "pain_24h",
]


@pytest.fixture
def reference(tmp_path):
    return hipdata.load(write_folder(tmp_path / "ref"), today=TODAY)


def assert_same(ds, reference):
    assert len(ds.quarantine) == 0, ds.quarantine
    pd.testing.assert_frame_equal(
        ds.sets[COMPARE].reset_index(drop=True), reference.sets[COMPARE].reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(
        ds.patients.reset_index(drop=True), reference.patients.reset_index(drop=True)
    )


def test_semicolon_and_decimal_comma(tmp_path, reference):
    # a European Excel export: ';' separated, ',' as decimal mark
    exercises = SETS.assign(load_kg=["20,0", "20", "20,00", "", "", ""])
    folder = write_folder(tmp_path, exercises=exercises, sep=";")
    assert_same(hipdata.load(folder, today=TODAY), reference)


def test_decimal_comma_value(tmp_path):
    exercises = SETS.assign(load_kg=["17,5", "17,5", "17,5", "", "", ""])
    ds = hipdata.load(write_folder(tmp_path, exercises=exercises, sep=";"), today=TODAY)
    assert ds.sets["load_kg"].iloc[0] == 17.5


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
def test_encodings(tmp_path, encoding):
    patients = PATIENTS.assign(clinic_id=["Clinique Genève", "Zürich Süd"])
    ds = hipdata.load(write_folder(tmp_path, patients=patients, encoding=encoding), today=TODAY)
    assert ds.patients["clinic_id"].tolist() == ["Clinique Genève", "Zürich Süd"]
    assert "patient_id" in ds.patients.columns  # the BOM did not stick to the first header


def test_utf16_export(tmp_path, reference):
    folder = write_folder(tmp_path)
    text = (folder / "exercises.csv").read_text(encoding="utf-8")
    (folder / "exercises.csv").write_bytes(text.replace(",", "\t").encode("utf-16"))
    assert_same(hipdata.load(folder, today=TODAY), reference)


def test_column_names_match_ignoring_case_and_spaces(tmp_path, reference):
    exercises = SETS.rename(
        columns={
            "patient_id": "Patient ID",
            "hold_s": "Hold (s)",
            "load_kg": "LOAD KG",
            "pain_24h": "Pain 24h",
            "pain_during": "pain-during",
        }
    )
    assert_same(hipdata.load(write_folder(tmp_path, exercises=exercises), today=TODAY), reference)


def test_load_in_pounds_is_converted(tmp_path):
    exercises = SETS.rename(columns={"load_kg": "load_lb"}).assign(
        load_lb=["44.0925", "44.0925", "44.0925", "", "", ""]
    )
    ds = hipdata.load(write_folder(tmp_path, exercises=exercises), today=TODAY)
    # 44.0925 lb x 0.45359237 kg/lb = 20.0000 kg
    assert ds.sets["load_kg"].iloc[0] == pytest.approx(20.0, abs=1e-4)


def test_xlsx(tmp_path, reference):
    folder = tmp_path / "xlsx"
    folder.mkdir()
    patients = PATIENTS.copy()
    patients["start_date"] = pd.to_datetime(patients["start_date"])  # real Excel dates
    patients["age_years"] = patients["age_years"].astype(int)
    patients.to_excel(folder / "patients.xlsx", index=False)
    exercises = SETS.copy()
    exercises["date"] = pd.to_datetime(exercises["date"])
    exercises["set"] = exercises["set"].astype(int)
    exercises.to_excel(folder / "exercises.xlsx", index=False)
    assert_same(hipdata.load(folder, today=TODAY), reference)


def test_parquet(tmp_path, reference):
    folder = tmp_path / "pq"
    folder.mkdir()
    patients = PATIENTS.copy()
    patients["start_date"] = pd.to_datetime(patients["start_date"])
    patients.to_parquet(folder / "patients.parquet")
    exercises = SETS.copy()
    exercises["date"] = pd.to_datetime(exercises["date"])
    for column in ("set", "reps", "hold_s", "load_kg", "pain_during", "pain_24h"):
        exercises[column] = pd.to_numeric(exercises[column])
    exercises.to_parquet(folder / "exercises.parquet")
    assert_same(hipdata.load(folder, today=TODAY), reference)


def test_excel_row_numbers_match_the_sheet(tmp_path):
    folder = tmp_path / "xlsx"
    folder.mkdir()
    PATIENTS.to_excel(folder / "patients.xlsx", index=False)
    bad = pd.concat([SETS, SETS.iloc[[0]].assign(patient_id="P9")], ignore_index=True)
    bad.to_excel(folder / "exercises.xlsx", index=False)
    ds = hipdata.load(folder, today=TODAY)
    assert ds.quarantine["source_row"].tolist() == [8]
    assert ds.quarantine["source_file"].tolist() == ["exercises.xlsx"]


def test_unknown_file_types_are_ignored_but_listed(tmp_path):
    folder = write_folder(tmp_path)
    (folder / "notes.txt").write_text("hello")
    ds = hipdata.load(folder, today=TODAY)
    assert ds.meta["ignored_files"] == ["notes.txt"]
