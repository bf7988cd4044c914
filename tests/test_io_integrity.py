"""Input integrity (issue 8): nothing shifted, dropped, invented or crashing, whatever the file.

Each case is a small file built here, with the exact quarantine row, column and reason, or the
exact refusal.
"""

from __future__ import annotations

import datetime as dt
import zipfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openpyxl import Workbook
from typer.testing import CliRunner

import hipdata
from hipdata import DataError
from hipdata.cli import app
from hipdata.io import readers
from tests.io_helpers import EXERCISES, PATIENTS, SETS, TODAY, with_row, write_folder

HEADER = ",".join(SETS.columns)  # patient_id,date,exercise,set,reps,hold_s,load_kg,pain_*


def load(folder, **options):
    return hipdata.load(folder, today=TODAY, **options)


def only_quarantine_row(ds):
    assert len(ds.quarantine) == 1, ds.quarantine
    report = ds.load_report
    assert (report["rows_read"] == report["rows_kept"] + report["rows_quarantined"]).all()
    return ds.quarantine.iloc[0]


def write_exercises_text(folder, text, encoding="utf-8"):
    write_folder(folder)
    (folder / "exercises.csv").write_bytes(text.encode(encoding))
    return folder


# ------------------------------------------------------------------ 1. cells and columns

GOOD_ROWS = SETS.to_csv(index=False, header=False)
# load_kg was 4.5, written with an unquoted decimal comma: 10 cells under a 9-column header,
# and only 8 of them non-empty (the old rule let it through as load 4, pain_during 5)
DECIMAL_COMMA_ROW = "P1,2026-03-02,bridge,7,10,,4,5,1,\n"


def test_unquoted_decimal_comma_is_quarantined_not_shifted(tmp_path):
    folder = write_exercises_text(tmp_path, f"{HEADER}\n{GOOD_ROWS}{DECIMAL_COMMA_ROW}")
    ds = load(folder)
    row = only_quarantine_row(ds)
    assert (row["source_file"], row["source_row"], row["column"]) == ("exercises.csv", 8, "")
    assert row["value"] == "P1,2026-03-02,bridge,7,10,,4,5,1,"
    assert row["reason"].startswith("the row has more cells than the header has columns")
    assert len(ds.sets) == 6 and 4.0 not in ds.sets["load_kg"].tolist()


def test_extra_cells_in_the_first_data_row_are_quarantined(tmp_path):
    folder = write_exercises_text(tmp_path, f"{HEADER}\n{DECIMAL_COMMA_ROW}{GOOD_ROWS}")
    row = only_quarantine_row(load(folder))
    assert (row["source_row"], row["column"]) == (2, "")
    assert "more cells than the header" in row["reason"]


def test_one_stray_trailing_delimiter_is_quarantined(tmp_path):
    # indistinguishable from a decimal comma in the last cell: refused too
    lines = GOOD_ROWS.splitlines()
    lines[2] += ","
    folder = write_exercises_text(tmp_path, HEADER + "\n" + "\n".join(lines) + "\n")
    row = only_quarantine_row(load(folder))
    assert row["source_row"] == 4 and "more cells than the header" in row["reason"]


@pytest.mark.parametrize("header_too", [False, True])
def test_systematic_trailing_delimiter_is_read_normally(tmp_path, header_too):
    reference = load(write_folder(tmp_path / "ref"))
    lines = [line + "," for line in GOOD_ROWS.splitlines()]
    header = HEADER + ("," if header_too else "")
    folder = write_exercises_text(tmp_path / "t", header + "\n" + "\n".join(lines) + "\n")
    ds = load(folder)
    assert len(ds.quarantine) == 0
    pd.testing.assert_frame_equal(ds.sets, reference.sets)
    columns = ds.columns[ds.columns["source_file"] == "exercises.csv"]
    if header_too:
        assert "empty column without a header" in columns["note"].str.cat()
    else:
        notes = ds.load_report.set_index("source_file").loc["exercises.csv", "notes"]
        assert "every line ends in 1 extra empty cell(s)" in notes


def test_excel_separator_hint_line_is_refused_with_the_fix(tmp_path):
    folder = write_exercises_text(tmp_path, "sep=;\n" + HEADER.replace(",", ";") + "\n")
    with pytest.raises(DataError) as error:
        load(folder)
    assert error.value.problem == "the first line 'sep=;' is Excel's delimiter hint, not a header"


def test_xlsx_row_with_a_cell_beyond_the_header_is_quarantined(tmp_path):
    folder = write_folder(tmp_path)
    (folder / "exercises.csv").unlink()
    book = Workbook()
    sheet = book.active
    sheet.append(list(SETS.columns))
    for record in SETS.itertuples(index=False):
        sheet.append(list(record))
    sheet.append(["P1", "2026-03-02", "bridge", "7", "10", "", "4", "5", "1", "3"])
    book.save(folder / "exercises.xlsx")
    row = only_quarantine_row(load(folder))
    assert (row["source_file"], row["source_row"]) == ("exercises.xlsx", 8)
    assert "more cells than the header" in row["reason"]


def test_every_column_is_accounted_for(tmp_path):
    exercises = SETS.assign(Notes="felt fine", RPE="7")
    ds = load(write_folder(tmp_path, exercises=exercises))
    table = ds.columns[ds.columns["source_file"] == "exercises.csv"].set_index("column")
    assert list(table.index) == list(exercises.columns)  # each column once, in file order
    assert table.loc["load_kg", "status"] == "used" and table.loc["load_kg", "used_as"] == "load_kg"
    assert table.loc["Notes", "status"] == "ignored" and table.loc["Notes", "used_as"] == ""
    assert table.loc["RPE", "note"] == "ignored: not a field of the exercises table"
    patients = ds.columns[ds.columns["source_file"] == "patients.csv"]
    assert set(patients["column"]) == set(PATIENTS.columns)
    assert (patients["status"] == "used").all()


def test_validate_prints_the_columns(tmp_path):
    folder = write_folder(tmp_path / "in", exercises=SETS.assign(Notes="x"))
    result = CliRunner().invoke(app, ["validate", str(folder), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "Columns" in result.output and "Notes" in result.output
    written = pd.read_csv(tmp_path / "out" / "columns.csv", keep_default_na=False)
    assert written.set_index("column").loc["Notes", "status"] == "ignored"


# --------------------------------------------------------- units and forms of known fields

# Strong's export: Weight with a per-row Weight Unit (kg / lbs), Seconds for timed sets (0 when
# not timed), Duration of the whole workout.
STRONG_LIKE = pd.DataFrame(
    {
        "patient_id": ["P1", "P1", "P1", "P1", "P1", "P2"],
        "date": ["2026-03-02"] * 5 + ["2026-03-10"],
        "exercise": ["bridge_loaded"] * 3 + ["side_plank"] * 2 + ["squat_comfortable"],
        "set": ["1", "2", "3", "1", "2", "1"],
        "reps": ["10", "10", "8", "", "", "12"],
        "Weight": ["20", "44.0925", "20", "0", "0", ""],
        "Weight Unit": ["kg", "lbs", "kg", "kg", "kg", ""],
        "Seconds": ["0", "0", "0", "25", "30", "0"],
        "Duration": ["45m", "45m", "45m", "45m", "45m", "30m"],
        "pain_during": ["2", "2", "2", "1", "1", "4"],
    }
)


def test_weight_with_a_unit_column_is_converted_per_row(tmp_path):
    ds = load(write_folder(tmp_path, exercises=STRONG_LIKE))
    assert len(ds.quarantine) == 0, ds.quarantine
    # 44.0925 lb x 0.45359237 kg/lb = 20.0000 kg
    np.testing.assert_allclose(ds.sets["load_kg"], [20, 20, 20, 0, 0, 0], atol=1e-4)
    # Seconds is the hold of the side planks; on the reps exercises it is "not timed"
    assert ds.sets["hold_s"].iloc[3:5].tolist() == [25, 30]
    assert ds.sets["hold_s"].iloc[[0, 1, 2, 5]].isna().all()
    assert ds.sets["pain_24h"].isna().all()  # no pain_24h column: unknown, never 0
    table = ds.columns[ds.columns["source_file"] == "exercises.csv"].set_index("column")
    assert table.loc["Weight", "used_as"] == "load_kg"
    assert table.loc["Seconds", "used_as"] == "hold_s"
    assert table.loc["Duration", "status"] == "ignored"


@pytest.mark.parametrize(
    ("row", "column", "value", "reason"),
    [
        (4, "Weight Unit", "stone", "unknown load unit (write kg or lbs)"),
        (5, "Weight Unit", "", "the load's unit is missing (write kg or lbs in 'Weight Unit')"),
        (2, "Weight", "-5", "Weight below 0 is impossible"),
        (3, "Seconds", "40", "Seconds gives a duration, but this exercise is dosed in reps"),
        (6, "Seconds", "1h", "not a duration (write seconds, mm:ss or h:mm:ss)"),
    ],
)
def test_bad_unit_or_duration_is_quarantined(tmp_path, row, column, value, reason):
    exercises = STRONG_LIKE.copy()
    exercises.loc[row - 2, column] = value
    if column == "Weight Unit" and value == "":
        exercises.loc[row - 2, "Weight"] = "12"
    quarantined = only_quarantine_row(load(write_folder(tmp_path, exercises=exercises)))
    assert (quarantined["source_row"], quarantined["column"]) == (row, column)
    assert quarantined["value"] == value
    assert quarantined["reason"].startswith(reason)


def test_weight_without_a_unit_is_refused_with_the_fix(tmp_path):
    exercises = STRONG_LIKE.drop(columns=["Weight Unit"])
    with pytest.raises(DataError) as error:
        load(write_folder(tmp_path, exercises=exercises))
    assert error.value.file == "exercises.csv"
    assert error.value.problem == "the column 'Weight' gives a load without its unit"
    assert "rename it to load_kg (kilograms) or load_lb (pounds)" in error.value.fix


def test_an_unrecognised_load_like_column_is_refused_not_read_as_zero(tmp_path):
    exercises = SETS.rename(columns={"load_kg": "Gewicht kg"})
    with pytest.raises(DataError) as error:
        load(write_folder(tmp_path, exercises=exercises))
    assert "'Gewicht kg' looks like a load" in error.value.problem
    assert "load_kg" in error.value.fix


@pytest.mark.parametrize(
    ("header", "values"),
    [("weight_lbs", ["44.0925"] * 3), ("Weight (kg)", ["20"] * 3), ("weight_kg", ["20"] * 3)],
)
def test_weight_columns_with_their_unit_in_the_name(tmp_path, header, values):
    exercises = SETS.drop(columns=["load_kg"]).assign(**{header: values + ["", "", ""]})
    ds = load(write_folder(tmp_path, exercises=exercises))
    np.testing.assert_allclose(ds.sets["load_kg"], [20, 20, 20, 0, 0, 0], atol=1e-4)


@pytest.mark.parametrize(
    ("header", "cells"),
    [("Time", ["0:00:25", "00:30"]), ("duration_seconds", ["25", "30"])],
)
def test_durations_become_holds_of_hold_exercises(tmp_path, header, cells):
    exercises = SETS.drop(columns=["hold_s"]).assign(**{header: ["", "", ""] + cells + [""]})
    ds = load(write_folder(tmp_path, exercises=exercises))
    assert len(ds.quarantine) == 0
    assert ds.sets["hold_s"].iloc[3:5].tolist() == [25, 30]


def test_duration_lists_in_the_exercise_layout(tmp_path):
    exercises = EXERCISES.drop(columns=["hold_s"]).assign(Seconds=["", "0:25/0:30", ""])
    ds = load(write_folder(tmp_path, exercises=exercises))
    assert len(ds.quarantine) == 0
    assert ds.sets.loc[ds.sets["exercise"] == "side_plank", "hold_s"].tolist() == [25, 30]


# ---------------------------------------------------------------------------- 2. values


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("1026-02-05", "implausible date: before 1900"),
        ("1899-12-31", "implausible date: before 1900"),
        ("9999-12-31", "implausible date: after 2200 (a placeholder such as 9999-12-31?)"),
        ("2300-01-01", "implausible date: after 2200 (a placeholder such as 9999-12-31?)"),
    ],
)
def test_implausible_dates_in_csv_are_quarantined(tmp_path, value, reason):
    patients = with_row(PATIENTS, patient_id="P3", discharge_date=value)
    row = only_quarantine_row(load(write_folder(tmp_path, patients=patients)))
    assert (row["source_file"], row["source_row"], row["column"]) == (
        "patients.csv",
        4,
        "discharge_date",
    )
    assert (row["value"], row["reason"]) == (value, reason)


def test_implausible_dates_in_parquet_are_quarantined(tmp_path):
    folder = write_folder(tmp_path)
    (folder / "exercises.csv").unlink()
    table = pa.Table.from_pandas(SETS.drop(columns=["date"]), preserve_index=False)
    days = [dt.date(2026, 3, 2)] * 5 + [dt.date(1026, 2, 5)]
    table = table.append_column("date", pa.array(days, pa.date32()))
    pq.write_table(table, folder / "exercises.parquet")
    stamps = pa.array([dt.datetime(2026, 3, 2), dt.datetime(9999, 12, 31)], pa.timestamp("us"))
    patients = pa.Table.from_pandas(PATIENTS.drop(columns=["start_date"]), preserve_index=False)
    pq.write_table(patients.append_column("start_date", stamps), folder / "patients.parquet")
    (folder / "patients.csv").unlink()
    ds = load(folder)
    q = ds.quarantine.set_index("source_file")
    assert q.loc["patients.parquet", "source_row"] == 3
    assert q.loc["patients.parquet", "value"] == "9999-12-31"
    assert q.loc["patients.parquet", "reason"].startswith("implausible date: after 2200")
    # P2's exercise row is quarantined as the patient's, naming the patient row
    assert q.loc["exercises.parquet", "source_row"] == 7
    assert "patient is quarantined" in q.loc["exercises.parquet", "reason"]


def test_implausible_dates_in_parquet_exercises(tmp_path):
    folder = write_folder(tmp_path)
    (folder / "exercises.csv").unlink()
    table = pa.Table.from_pandas(SETS.drop(columns=["date"]), preserve_index=False)
    days = [dt.datetime(2026, 3, 2)] * 5 + [dt.datetime(1026, 2, 5, 10, 30)]
    pq.write_table(
        table.append_column("date", pa.array(days, pa.timestamp("s"))),
        folder / "exercises.parquet",
    )
    row = only_quarantine_row(load(folder))
    assert (row["source_row"], row["column"]) == (7, "date")
    assert (row["value"], row["reason"]) == ("1026-02-05T10:30:00", "implausible date: before 1900")


def test_implausible_dates_in_xlsx_are_quarantined(tmp_path):
    folder = write_folder(tmp_path)
    (folder / "patients.csv").unlink()
    book = Workbook()
    sheet = book.active
    sheet.append(list(PATIENTS.columns))
    for record in PATIENTS.itertuples(index=False):
        sheet.append(list(record))
    sheet["G3"] = dt.datetime(9999, 12, 31)  # discharge_date of P2, a real Excel date
    sheet["G2"] = "1026-02-05"  # typed as text
    book.save(folder / "patients.xlsx")
    ds = load(folder)
    q = ds.quarantine[ds.quarantine["source_file"] == "patients.xlsx"].set_index("source_row")
    assert q.loc[2, "reason"] == "implausible date: before 1900"
    assert q.loc[3, "value"] == "9999-12-31"
    assert q.loc[3, "reason"].startswith("implausible date: after 2200")


def test_mixed_encodings_are_decoded_line_by_line(tmp_path):
    folder = write_folder(tmp_path)
    lines = (folder / "patients.csv").read_text(encoding="utf-8").splitlines()
    first = (lines[1].replace("C1", "C04-Tü") + "\n").encode("utf-8")
    second = (lines[2].replace("C2", "C04-Tü") + "\n").encode("cp1252")
    (folder / "patients.csv").write_bytes((lines[0] + "\n").encode() + first + second)
    ds = load(folder)
    assert ds.patients["clinic_id"].tolist() == ["C04-Tü", "C04-Tü"]
    notes = ds.load_report.set_index("source_file").loc["patients.csv", "notes"]
    assert "mixed encodings: 1 line(s) are Windows-1252 (lines 3)" in notes


def test_undecodable_line_is_named(tmp_path):
    folder = write_folder(tmp_path)
    data = (folder / "patients.csv").read_bytes().replace(b"C2", b"C\x81\xc3")
    (folder / "patients.csv").write_bytes(data)
    with pytest.raises(DataError) as error:
        load(folder)
    assert error.value.problem.startswith("line 3 is neither UTF-8 nor Windows-1252")


def _exercises_parquet(folder, table):
    (folder / "exercises.csv").unlink()
    pq.write_table(table, folder / "exercises.parquet")
    return folder


def test_parquet_durations_times_and_lists_are_converted(tmp_path):
    table = pa.table(
        {
            "patient_id": ["P1", "P1", "P2"],
            "date": pa.array([dt.date(2026, 3, 2)] * 2 + [dt.date(2026, 3, 10)], pa.date32()),
            "exercise": ["bridge_loaded", "side_plank", "squat_comfortable"],
            "sets": [3, 2, 1],
            "reps": pa.array([[10, 10, 8], None, [12]], pa.list_(pa.int64())),
            "hold_s": pa.array([None, 25, None], pa.duration("s")),
            "load_kg": [20.0, None, None],
            "logged_at": pa.array([dt.time(10, 30)] * 3, pa.time64("us")),
        }
    )
    ds = load(_exercises_parquet(write_folder(tmp_path), table))
    assert len(ds.quarantine) == 0, ds.quarantine
    assert ds.sets["reps"].tolist()[:3] == [10, 10, 8]
    assert ds.sets.loc[ds.sets["exercise"] == "side_plank", "hold_s"].tolist() == [25, 25]
    columns = ds.columns[ds.columns["source_file"] == "exercises.parquet"].set_index("column")
    assert columns.loc["logged_at", "status"] == "ignored"


def test_parquet_nested_column_used_as_a_field_is_refused(tmp_path):
    table = pa.table(
        {
            "patient_id": ["P1"],
            "date": ["2026-03-02"],
            "exercise": pa.array([{"name": "bridge"}], pa.struct([("name", pa.string())])),
            "set": [1],
            "reps": [10],
        }
    )
    with pytest.raises(DataError) as error:
        load(_exercises_parquet(write_folder(tmp_path), table))
    assert error.value.file == "exercises.parquet"
    assert error.value.problem.startswith("column 'exercise' (exercise) holds struct<name: string>")
    assert "plain numbers or text" in error.value.fix


def test_parquet_unused_nested_column_is_listed_as_ignored(tmp_path):
    table = pa.Table.from_pandas(SETS, preserve_index=False).append_column(
        "tags", pa.array([{"a": 1}] * 6, pa.map_(pa.string(), pa.int64()))
    )
    ds = load(_exercises_parquet(write_folder(tmp_path), table))
    assert len(ds.quarantine) == 0
    note = ds.columns.set_index("column").loc["tags", "note"]
    assert note.startswith("ignored: not a field of the exercises table (holds map<")


def _sheet(book, title, frame, *, hidden=False):
    sheet = book.create_sheet(title)
    sheet.append(list(frame.columns))
    for record in frame.itertuples(index=False):
        sheet.append(list(record))
    if hidden:
        sheet.sheet_state = "hidden"
    return sheet


def test_xlsx_hidden_first_sheet_is_skipped_and_reported(tmp_path):
    folder = write_folder(tmp_path)
    (folder / "exercises.csv").unlink()
    book = Workbook()
    book.remove(book.active)
    _sheet(book, "old", SETS.assign(patient_id="P9"), hidden=True)
    _sheet(book, "sets", SETS)
    book.save(folder / "exercises.xlsx")
    ds = load(folder)
    assert len(ds.quarantine) == 0 and len(ds.sets) == 6
    notes = ds.load_report.set_index("source_file").loc["exercises.xlsx", "notes"]
    assert "hidden sheet(s) 'old' skipped; read the first visible sheet 'sets'" in notes


def test_xlsx_formula_without_saved_result_is_quarantined(tmp_path):
    folder = write_folder(tmp_path)
    (folder / "exercises.csv").unlink()
    book = Workbook()
    book.remove(book.active)
    sheet = _sheet(book, "sets", SETS)
    sheet["E3"] = "=5+5"  # reps of row 3, written by a program: no cached result
    book.save(folder / "exercises.xlsx")
    row = only_quarantine_row(load(folder))
    assert (row["source_file"], row["source_row"], row["column"]) == ("exercises.xlsx", 3, "reps")
    assert row["value"] == "=5+5"
    assert row["reason"].startswith("formula without a saved result")


# ---------------------------------------------------------------------------- 3. limits


def test_overlong_cell_is_quarantined_and_echoed_short(tmp_path):
    exercises = SETS.copy()
    exercises.loc[1, "exercise"] = "x" * (readers.MAX_CELL_CHARS + 1)
    row = only_quarantine_row(load(write_folder(tmp_path, exercises=exercises)))
    assert (row["source_row"], row["column"]) == (3, "exercise")
    assert row["value"] == "x" * 200 + "…"
    assert row["reason"] == "cell has 10,001 characters (at most 10,000); split or shorten it"


def test_too_many_columns_are_refused(tmp_path):
    wide = SETS.assign(**{f"extra{i}": "" for i in range(readers.MAX_COLUMNS)})
    with pytest.raises(DataError) as error:
        load(write_folder(tmp_path, exercises=wide))
    assert error.value.problem == "the table has 509 columns; hipdata reads at most 500"


def test_a_million_column_header_is_refused_before_parsing(tmp_path):
    folder = write_exercises_text(tmp_path, ",".join(["c"] * 10**6) + "\n" + "1," * 10)
    with pytest.raises(DataError, match="1,000,000 columns"):
        load(folder)


@pytest.mark.parametrize(
    ("parts", "reason"),
    [
        (51, "per-set list with 51 values (at most 50)"),
        (3_000, "per-set list with 3,000 values (at most 50)"),
        # 200 000 parts are 599 999 characters: the cell limit refuses it first
        (200_000, "cell has 599,999 characters (at most 10,000); split or shorten it"),
    ],
)
def test_long_per_set_list_is_quarantined(tmp_path, parts, reason):
    exercises = EXERCISES.copy()
    text = "/".join(["10"] * parts)
    exercises.loc[0, "reps"] = text
    row = only_quarantine_row(load(write_folder(tmp_path, exercises=exercises)))
    assert (row["source_row"], row["column"]) == (2, "reps")
    assert row["reason"] == reason
    assert row["value"] == (text if len(text) <= 200 else text[:200] + "…")


def test_xlsx_with_a_huge_shared_strings_part_is_refused(tmp_path, monkeypatch):
    folder = write_folder(tmp_path)
    (folder / "exercises.csv").unlink()
    book = Workbook()
    _sheet(book, "sets", SETS)
    book.save(folder / "exercises.xlsx")
    padded = tmp_path / "padded.xlsx"
    with zipfile.ZipFile(folder / "exercises.xlsx") as source:
        with zipfile.ZipFile(padded, "w", zipfile.ZIP_DEFLATED) as target:
            for item in source.infolist():
                target.writestr(item, source.read(item.filename))
            target.writestr("xl/sharedStrings.xml", b" " * 2048)
    padded.replace(folder / "exercises.xlsx")
    monkeypatch.setattr(readers, "MAX_XLSX_SHARED_STRINGS_BYTES", 1024)
    with pytest.raises(DataError) as error:
        load(folder)
    assert error.value.problem.startswith("the workbook part xl/sharedStrings.xml unpacks to")
    assert "CSV" in error.value.fix
