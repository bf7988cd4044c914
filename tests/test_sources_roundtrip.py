"""Round trip: one known list of sets, written in each app's format, imports to the same sets."""

from __future__ import annotations

import csv

import pandas as pd
import pytest

import hipdata
from hipdata.sources import fitnotes, hevy, strong
from tests.sources_helpers import TODAY

# (date, name as the app writes it, set type, reps, hold_s, load_kg, the id it must load as)
KNOWN = [
    ("2026-03-02", "Hip Thrust (Barbell)", "warmup", 10, None, 20.0, "bridge_loaded"),
    ("2026-03-02", "Hip Thrust (Barbell)", "working", 10, None, 42.5, "bridge_loaded"),
    ("2026-03-02", "Hip Thrust (Barbell)", "working", 10, None, 42.5, "bridge_loaded"),
    ("2026-03-02", "Hip Thrust (Barbell)", "working", 9, None, 42.5, "bridge_loaded"),
    ("2026-03-02", "Side Plank", "working", None, 30, 0.0, "side_plank"),
    ("2026-03-02", "Side Plank", "working", None, 25, 0.0, "side_plank"),
    ("2026-03-02", "Side Lying Hip Adduction", "working", 10, None, 0.0, "side_lying_adduction"),
    ("2026-03-02", "Side Lying Hip Adduction", "working", 10, None, 0.0, "side_lying_adduction"),
    ("2026-03-05", "Split Squat (Dumbbell)", "working", 8, None, 7.5, "split_squat"),
    ("2026-03-05", "Split Squat (Dumbbell)", "drop", 12, None, 5.0, "split_squat"),
    ("2026-03-05", "Split Squat (Dumbbell)", "failure", 6, None, 7.5, "split_squat"),
    ("2026-03-05", "Copenhagen Plank", "working", None, 20, 0.0, "copenhagen_short_lever"),
    ("2026-03-05", "Glute Bridge", "working", 12, None, 0.0, "bridge"),
]
STRONG_ORDER = {"warmup": "W", "drop": "D", "failure": "F"}
HEVY_TYPE = {"working": "normal", "warmup": "warmup", "drop": "dropset", "failure": "failure"}


def _expected(with_types: bool) -> pd.DataFrame:
    frame = pd.DataFrame(
        KNOWN, columns=["date", "name", "set_type", "reps", "hold_s", "load_kg", "exercise"]
    )
    frame["date"] = pd.to_datetime(frame["date"])
    frame["set"] = frame.groupby(["date", "name"]).cumcount() + 1
    if not with_types:
        frame["set_type"] = "working"  # FitNotes has no set types
    return frame


def _write(path, header, rows, delimiter=","):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows(rows)


def _strong_semicolon(path):
    rows, counters = [], {}
    for date, name, kind, reps, hold, load, _ in KNOWN:
        if kind == "working":
            counters[(date, name)] = counters.get((date, name), 0) + 1
        order = STRONG_ORDER.get(kind, str(counters.get((date, name), 0)))
        weight = f"{load:g}".replace(".", ",")
        rows.append(
            [f"{date} 07:30:00", "Hips", name, order, weight, "kg", reps or 0, "", 0, "km"]
            + [hold or 0, "", ""]
        )
        rows.append(
            [f"{date} 07:30:00", "Hips", name, "Rest Timer", 0, "kg", 0, "", 0, "km"] + [90, "", ""]
        )
    header = "Date;Workout Name;Exercise Name;Set Order;Weight;Weight Unit;Reps;RPE;Distance;"
    _write(path, (header + "Distance Unit;Seconds;Notes;Workout Notes").split(";"), rows, ";")
    return strong.read(path, patient_id="P1")


def _strong_comma(path):
    rows, counters = [], {}
    for date, name, kind, reps, hold, load, _ in KNOWN:
        counters[(date, name)] = counters.get((date, name), 0) + (kind == "working")
        order = STRONG_ORDER.get(kind, str(counters[(date, name)]))
        rows.append([f"{date} 18:00:00", "Hips", "1h 2min", name, order, load, reps or 0, 0])
        rows[-1] += [hold or 0, "", "", "7"]
    header = "Date,Workout Name,Duration,Exercise Name,Set Order,Weight,Reps,Distance,Seconds,"
    _write(path, (header + "Notes,Workout Notes,RPE").split(","), rows)
    return strong.read(path, patient_id="P1", weight_unit="kg")


def _hevy(path):
    rows, index = [], {}
    for date, name, kind, reps, hold, load, _ in KNOWN:
        index[(date, name)] = index.get((date, name), -1) + 1
        stamp = pd.Timestamp(date).strftime("%-d %b %Y") + ", 07:48"
        rows.append(
            ["Hips", stamp, stamp, "", name, "", "", index[(date, name)], HEVY_TYPE[kind]]
            + [load if load else "", reps if reps is not None else "", "", hold or "", ""]
        )
    # newest workout first, as Hevy writes it
    rows.sort(key=lambda r: pd.to_datetime(r[1], format="%d %b %Y, %H:%M"), reverse=True)
    header = "title,start_time,end_time,description,exercise_title,superset_id,exercise_notes,"
    header += "set_index,set_type,weight_kg,reps,distance_km,duration_seconds,rpe"
    _write(path, header.split(","), rows)
    return hevy.read(path, patient_id="P1")


def _fitnotes(path):
    rows = []
    for date, name, _, reps, hold, load, _ in KNOWN:
        time = "" if hold is None else f"0:{hold // 60:02d}:{hold % 60:02d}"
        rows.append([date, name, "Legs", f"{load:.1f}", reps or "", "", "", time])
    _write(
        path,
        "Date,Exercise,Category,Weight (kgs),Reps,Distance,Distance Unit,Time".split(","),
        rows,
    )
    return fitnotes.read(path, patient_id="P1")


@pytest.mark.parametrize(
    ("writer", "with_types"),
    [(_strong_semicolon, True), (_strong_comma, True), (_hevy, True), (_fitnotes, False)],
)
def test_known_sets_survive_each_app_format(tmp_path, writer, with_types):
    result = writer(tmp_path / "export.csv")
    assert result.quarantine["reason"].str.startswith("a rest timer row").all()
    result.write(tmp_path / "data")
    ds = hipdata.load(tmp_path / "data", today=TODAY)
    assert ds.quarantine.empty
    columns = ["date", "exercise", "set", "set_type", "reps", "hold_s", "load_kg"]
    got = ds.sets.sort_values(["date", "source_row"])[columns].reset_index(drop=True)
    expected = _expected(with_types)[columns].astype(got.dtypes.to_dict())
    pd.testing.assert_frame_equal(got, expected)
