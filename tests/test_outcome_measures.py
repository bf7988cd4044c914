"""Custom outcome measures from a file: reading, errors, and their use in load and metrics."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

import hipdata
from hipdata.cli import app
from hipdata.errors import DataError
from hipdata.metrics import compute_all, outcome_change
from hipdata.outcome_measures import MEASURES, read_measures, with_measures

TODAY = "2026-11-28"


def _folder(tmp_path, outcomes: str):
    (tmp_path / "patients.csv").write_text(
        "patient_id,clinic_id,start_date,discharge_date\n"
        "P1,C1,2026-01-05,2026-03-02\n"
        "P2,C1,2026-01-12,2026-03-09\n"
    )
    (tmp_path / "outcomes.csv").write_text("patient_id,date,measure,score\n" + outcomes)
    return tmp_path


ODI = (
    "P1,2026-01-05,odi,40\n"  # 40 -> 28: 12 points (>= 10): responder
    "P1,2026-03-02,odi,28\n"
    "P2,2026-01-12,odi,20\n"  # 20 -> 14: 6 points (< 10) but 30 % (>= 30 %): responder
    "P2,2026-03-09,odi,14\n"
    "P2,2026-03-09,nprs,4\n"
)


def test_read_measures_csv_and_toml_agree(tmp_path):
    (tmp_path / "m.csv").write_text(
        "Measure,Min,Max,Better,MCID,MCID_pct,Label,Aliases\n"
        "odi,0,100,lower,10,30,Oswestry,oswestry|odi score\n"
    )
    (tmp_path / "m.toml").write_text(
        '[measures.odi]\nmin = 0\nmax = 100\nbetter = "lower"\nmcid = 10\nmcid_pct = 30\n'
        'label = "Oswestry"\naliases = ["oswestry", "odi score"]\n'
    )
    csv_odi = read_measures(tmp_path / "m.csv")["odi"]
    toml_odi = read_measures(tmp_path / "m.toml")["odi"]
    assert csv_odi.source != toml_odi.source  # names its own file
    for field in ("low", "high", "higher_is_better", "mcid_points", "mcid_pct", "label", "aliases"):
        assert getattr(csv_odi, field) == getattr(toml_odi, field)
    assert (csv_odi.low, csv_odi.high, csv_odi.higher_is_better) == (0.0, 100.0, False)
    assert (csv_odi.mcid_points, csv_odi.mcid_pct) == (10.0, 30.0)
    registry = with_measures(tmp_path / "m.csv")
    assert set(registry) == set(MEASURES) | {"odi"}
    assert "odi" not in MEASURES  # the package-wide registry is left unchanged


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("measure,min,max,better,mcid\nodi,0,100,down,10\n", "must be 'higher' or 'lower'"),
        ("measure,min,max,better,mcid\nodi,100,0,lower,10\n", "min must be below max"),
        ("measure,min,max,better,mcid\nodi,0,100,lower,0\n", "MCID must be above 0"),
        ("measure,min,max,better\nodi,0,100,lower\n", "mcid is missing"),
        ("measure,min,max,better,mcid\nODI score,0,100,lower,5\n", "not lower-case"),
        ("measure,min,max,better,mcid,colour\nodi,0,100,lower,5,red\n", "unknown field"),
        ("measure,min,max,better,mcid\nodi,0,x,lower,5\n", "'x' is not a number"),
        ("measure,min,max,better,mcid\nodi,0,9,lower,5\nodi,0,9,lower,5\n", "defined twice"),
    ],
)
def test_bad_measures_files_name_the_row_and_the_problem(tmp_path, text, fragment):
    path = tmp_path / "m.csv"
    path.write_text(text)
    with pytest.raises(DataError, match="row 2|row 3") as error:
        read_measures(path)
    assert fragment in str(error.value)


def test_custom_measure_rows_kept_and_responders_use_its_mcid(tmp_path):
    folder = _folder(tmp_path, ODI)
    (tmp_path / "m.csv").write_text("measure,min,max,better,mcid,mcid_pct\nodi,0,100,lower,10,30\n")
    without = hipdata.load(folder, today=TODAY)
    assert (without.quarantine["reason"].str.startswith("unknown measure")).sum() == 4
    ds = hipdata.load(folder, today=TODAY, measures=tmp_path / "m.csv")
    assert ds.quarantine.empty
    assert len(ds.outcomes) == 5
    table = outcome_change(ds).set_index(["patient_id", "measure"])
    assert table.loc[("P1", "odi"), ["improvement", "responder"]].tolist() == [12.0, True]
    assert table.loc[("P2", "odi"), "pct_improvement"] == pytest.approx(30.0)
    assert table.loc[("P2", "odi"), "responder"]
    same = compute_all(ds)["outcome_change"]
    pd.testing.assert_frame_equal(same, outcome_change(ds))


def test_cli_measures_option_on_validate_and_metrics(tmp_path):
    (tmp_path / "data").mkdir()
    folder = _folder(tmp_path / "data", ODI)
    measures = tmp_path / "m.toml"
    measures.write_text('[measures.odi]\nmin = 0\nmax = 100\nbetter = "lower"\nmcid = 10\n')
    runner = CliRunner()
    result = runner.invoke(app, ["validate", str(folder), "--measures", str(measures)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["metrics", str(folder), "--out", str(out), "--measures", str(measures)]
    )
    assert result.exit_code == 0, result.output
    change = pd.read_csv(out / "outcome_change.csv")
    odi = change[change["measure"] == "odi"].set_index("patient_id")
    # P2: 6 points < 10 and no percent MCID in this file: not a responder
    assert odi["responder"].tolist() == [True, False]
    assert not (out / "pain_trajectory_model.csv").exists()  # no exercise sessions
    bad = tmp_path / "bad.csv"
    bad.write_text("measure,min,max\nodi,0,100\n")
    result = runner.invoke(app, ["validate", str(folder), "--measures", str(bad)])
    assert result.exit_code == 2
    assert "mcid is missing" in result.output


def test_column_names_of_the_long_form_and_no_file(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(
        "name,low,high,higher_is_better,mcid_points,mcid_pct,label,source,aliases\n"
        "koos_jr,0,100,true,14,,KOOS JR,Lyman 2018,koos jr\n"
        "nprs,0,10,false,1.5,20,NPRS,stricter,\n"
    )
    registry = read_measures(path)
    assert registry["koos_jr"].higher_is_better is True
    assert registry["koos_jr"].mcid_pct is None
    assert (registry["nprs"].mcid_points, registry["nprs"].mcid_pct) == (1.5, 20.0)  # replaced
    assert MEASURES["nprs"].mcid_points == 2.0  # the shipped registry is unchanged
    assert read_measures(None) == MEASURES
