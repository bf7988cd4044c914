"""compute_all and write_tables: the §5 tables as returned and as written (CSV / Parquet)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.csv
import pytest

from hipdata import Dataset, Protocol
from hipdata.metrics import (
    CONTRACT_COLUMNS,
    TABLE_NAMES,
    compute_all,
    family_sessions,
    outcome_change,
    patient_summary,
    progressions,
    sessions_table,
    sets_table,
    weekly_load,
    write_tables,
)

NaN = np.nan


def small_ds() -> Dataset:
    patients = pd.DataFrame(
        {
            "patient_id": ["P1", "P2"],
            "clinic_id": ["C1", "C2"],
            "clinician_id": ["K1", None],
            "start_date": ["2026-01-05", "2026-01-05"],
            "discharge_date": ["2026-02-02", None],
        }
    )
    rows = [
        # P1 week -1 (2026-01-01): 3 x 10 bridge, pain 2 and 3 -> flare False, criterion met
        *[("P1", "2026-01-01", "bridge", s, 10, NaN, NaN, 2.0, 3.0) for s in (1, 2, 3)],
        # P1 week 1: up to bridge_loaded 10 kg, pain_24h missing -> flare missing
        *[("P1", "2026-01-12", "bridge_loaded", s, 10, NaN, 10.0, 2.0, NaN) for s in (1, 2, 3)],
        # P1 week 1: side plank 25 s, pain 5 -> flare True on 2026-01-14
        ("P1", "2026-01-14", "side_plank", 1, NaN, 25.0, NaN, 5.0, 1.0),
    ]
    sets = pd.DataFrame(
        rows,
        columns=[
            "patient_id",
            "date",
            "exercise",
            "set",
            "reps",
            "hold_s",
            "load_kg",
            "pain_during",
            "pain_24h",
        ],
    )
    outcomes = pd.DataFrame(
        {
            "patient_id": ["P1", "P1"],
            "date": ["2026-01-05", "2026-02-02"],
            "measure": ["nprs", "nprs"],
            "score": [6.0, 3.0],
        }
    )
    return Dataset.from_frames(patients, sets, outcomes=outcomes)


def test_compute_all_matches_the_individual_functions():
    ds = small_ds()
    tables = compute_all(ds, Protocol(pain_threshold=2.0))
    assert tuple(tables) == TABLE_NAMES
    for name, columns in CONTRACT_COLUMNS.items():
        assert list(tables[name].columns[: len(columns)]) == columns, name
    individual = {
        "sets": sets_table(ds),
        "sessions": sessions_table(ds, pain_threshold=2.0),
        "family_sessions": family_sessions(ds, pain_threshold=2.0),
        "weekly_load": weekly_load(ds),
        "progressions": progressions(ds, pain_threshold=2.0),
        "patient_summary": patient_summary(ds, pain_threshold=2.0),
        "outcome_change": outcome_change(ds),
    }
    for name, expected in individual.items():
        pd.testing.assert_frame_equal(tables[name], expected, obj=name)
    # the parameter reached the tables: with a 2/10 limit, pain 3 after 2026-01-01 is a flare
    assert bool(tables["sessions"].loc[0, "flare"]) is True


def test_write_tables_csv_round_trip(tmp_path):
    tables = compute_all(small_ds())
    written = write_tables(tables, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"{name}.csv" for name in TABLE_NAMES
    )  # no temporary files left behind
    assert written["sessions"] == tmp_path / "out" / "sessions.csv"
    # files get the permissions of any new file (the umask), not a private temp file's 0600
    probe = tmp_path / "probe.txt"
    probe.write_text("x")
    assert written["sessions"].stat().st_mode == probe.stat().st_mode

    # read as text: the contract's header, ISO dates, true/false/empty, whole numbers plain
    text = {name: path.read_text(encoding="utf-8").splitlines() for name, path in written.items()}
    for name, columns in CONTRACT_COLUMNS.items():
        header = text[name][0].split(",")
        assert header[: len(columns)] == columns, name
    sessions = pd.read_csv(written["sessions"], dtype=str, keep_default_na=False)
    assert sessions["date"].tolist() == ["2026-01-01", "2026-01-12", "2026-01-14"]
    assert sessions["week"].tolist() == ["-1", "1", "1"]
    assert sessions["flare"].tolist() == ["false", "", "true"]
    assert sessions["n_sets"].tolist() == ["3", "3", "1"]
    assert sessions["total_reps"].tolist() == ["30", "30", "0"]  # not "30.0"
    assert sessions["pain_24h"].tolist() == ["3", "", "1"]
    summary = pd.read_csv(written["patient_summary"], dtype=str, keep_default_na=False)
    # P1: 28 days -> 4 weeks, 8 planned, 3 sessions -> attendance 0.375
    assert summary.loc[0, "attendance"] == "0.375"
    assert summary.loc[1, "top_level_extensors"] == ""  # P2 never did the family
    outcome = pd.read_csv(written["outcome_change"], dtype=str, keep_default_na=False)
    # nprs 6 -> 3: 3 points, 50 % -> responder
    assert outcome.loc[0, ["improvement", "pct_improvement", "responder"]].tolist() == [
        "3",
        "50",
        "true",
    ]

    # read back as numbers: the same values as the DataFrames
    back = pd.read_csv(written["sets"], parse_dates=["date"])
    np.testing.assert_allclose(back["volume_load_kg"], tables["sets"]["volume_load_kg"])
    assert (back["date"] == tables["sets"]["date"]).all()


def test_write_tables_parquet_round_trip(tmp_path):
    tables = compute_all(small_ds())
    written = write_tables(tables, tmp_path, format="parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{name}.parquet" for name in TABLE_NAMES
    )
    for name, frame in tables.items():
        back = pd.read_parquet(written[name])
        pd.testing.assert_frame_equal(back, frame, check_dtype=False, obj=name)
    assert pd.read_parquet(written["sessions"])["flare"].dtype == "boolean"


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    tables = {"sessions": compute_all(small_ds())["sessions"]}
    write_tables(tables, tmp_path)
    before = (tmp_path / "sessions.csv").read_bytes()

    def broken(self, path, *args, **kwargs):
        with open(path, "w") as handle:
            handle.write("half a ta")
        raise OSError("disk full")

    def broken_arrow(table, handle, *args, **kwargs):  # the Arrow writer fails the same way
        handle.write(b"half a ta")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken)
    monkeypatch.setattr(pyarrow.csv, "write_csv", broken_arrow)
    with pytest.raises(OSError, match="disk full"):
        write_tables(tables, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["sessions.csv"]
    assert (tmp_path / "sessions.csv").read_bytes() == before


def test_write_tables_rejects_unknown_formats_and_path_names(tmp_path):
    with pytest.raises(ValueError, match="format"):
        write_tables({}, tmp_path, format="xlsx")
    with pytest.raises(ValueError, match="file name"):
        write_tables({"../escape": pd.DataFrame()}, tmp_path)


def test_empty_dataset_gives_empty_tables_with_the_contract_columns():
    patients = pd.DataFrame(
        {"patient_id": ["P1"], "clinic_id": ["C1"], "start_date": ["2026-01-05"]}
    )
    sets = pd.DataFrame(columns=["patient_id", "date", "exercise", "set"])
    # validate=False: an exercises table without reps or hold_s is refused by the loader's rules
    tables = compute_all(Dataset.from_frames(patients, sets, validate=False))
    for name, columns in CONTRACT_COLUMNS.items():
        assert list(tables[name].columns[: len(columns)]) == columns, name
    assert len(tables["patient_summary"]) == 1  # every patient gets a row
    assert tables["patient_summary"].loc[0, "sessions"] == 0
    assert all(tables[name].empty for name in TABLE_NAMES if name != "patient_summary")
