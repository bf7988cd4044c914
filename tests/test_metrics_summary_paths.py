"""The patient summary's and ``agg_by``'s fast paths give exactly what the plain expressions give.

Inside :func:`hipdata.metrics.compute_all` the patient summary places every per-patient count
by the patient's position in the patients table (``bincount``; the mean dose adherence and the
last session as pandas group-bys of the same rows by that position), its ``top_level_<family>``
columns by ``np.maximum.at`` on a patients x families grid, the activity weeks by a patient
position x week number, and the end of ``dose_units`` on float64 arrays; ``agg_by`` calls each
named reduction directly instead of ``agg(**named)``. Each is compared here, with
``check_exact``, against the general path it replaces (text-id group-bys, ``unstack`` and
joins; ``activity_weeks``; the Series expressions; ``agg``) on a shuffled synthetic cohort with
warm-up sets and missing cells, the hostile cohort of the chunked tests (read by the loader),
and hand-made edge cases: no sets, one patient, unicode ids, patients without sessions,
activity weeks without exercise sessions or without any recorded value, ties at the WHO
thresholds, an extra family and duplicated patient ids (which take the general path).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import hipdata
from hipdata.metrics import _common, compute_all
from hipdata.metrics import summary as summary_module
from hipdata.metrics._common import agg_by, coded, group_codes
from hipdata.synth import generate
from tests.io_helpers import shuffled_dataset


def _plain(ds, monkeypatch) -> dict[str, pd.DataFrame]:
    """``compute_all(ds)`` with the fast paths of this file switched off."""
    with monkeypatch.context() as patch:
        patch.setattr(
            summary_module,
            "_per_patient_by_position",
            summary_module._per_patient_joined,
        )
        patch.setattr(summary_module, "_top_levels_by_position", lambda ids, table: None)
        patch.setattr(summary_module, "_activity_week_flags", lambda *a, **k: None)
        patch.setattr(summary_module, "_dose_by_arrays", lambda units, columns: None)
        patch.setattr(_common, "_NAMED_REDUCTIONS", frozenset())
        return compute_all(ds)


def _assert_fast_equals_plain(ds, monkeypatch) -> dict[str, pd.DataFrame]:
    fast = compute_all(ds)
    plain = _plain(ds, monkeypatch)
    assert list(fast) == list(plain)
    for name in fast:
        pd.testing.assert_frame_equal(fast[name], plain[name], check_exact=True, obj=name)
    return fast


@pytest.fixture(scope="module")
def messy_cohort():
    return _messy_cohort()


def _messy_cohort():
    """About 3 x 10^4 set rows, rows shuffled, a fifth of the sets warm-up, 5 % of the pain,
    dose and activity cells emptied, an extra family, and activity rows of patients in weeks
    without exercise sessions."""
    cohort = generate(200, seed=23)
    tables = {name: table.copy() for name, table in cohort.tables.items()}
    rng = np.random.default_rng(23)
    sets = tables["exercises"]
    sets["set_type"] = np.where(rng.random(len(sets)) < 0.2, "warmup", "work")
    for column in ("reps", "pain_during", "pain_24h", "hold_s", "prescribed_reps"):
        sets.loc[rng.random(len(sets)) < 0.05, column] = np.nan
    activity = tables["activity"]
    for column in ("cardio_min", "strength_sessions"):
        activity.loc[rng.random(len(activity)) < 0.05, column] = np.nan
    # whole weeks of activity with nothing recorded, and activity long after the sessions
    late = activity.iloc[:30].assign(
        date=pd.to_datetime(activity["date"].iloc[:30]) + pd.Timedelta(days=400),
        cardio_min=np.nan,
        strength_sessions=np.nan,
    )
    tables["activity"] = pd.concat([activity, late], ignore_index=True)
    return shuffled_dataset(tables, rng)


def test_compute_all_fast_paths_equal_the_plain_ones_on_a_messy_cohort(messy_cohort, monkeypatch):
    fast = _assert_fast_equals_plain(messy_cohort, monkeypatch)
    summary = fast["patient_summary"]
    # the paths were exercised: counts, means and top levels are not all empty
    assert summary["dose_adherence"].notna().sum() > 100
    assert summary["activity_weeks"].sum() > 100 and summary["activity_weeks_met"].sum() > 0
    assert summary["top_level_extensors"].notna().sum() > 100
    assert summary["forward_progressions"].sum() > 100
    assert summary["held_back_episodes"].sum() > 0 and summary["flare_sessions"].sum() > 0


def test_compute_all_fast_paths_equal_the_plain_ones_on_the_hostile_cohort(tmp_path, monkeypatch):
    from hipdata.io.loader import load
    from tests.test_metrics_chunked import _hostile

    ds = load(_hostile(tmp_path / "hostile"), today="2026-11-28")
    assert len(ds.quarantine) > 0
    _assert_fast_equals_plain(ds, monkeypatch)


def _tiny(ids: list[str], *, sets_of: list[int], activity=None, families=None):
    """A hand-made dataset: patients ``ids`` (maybe repeated), sets for ``ids[i]`` in
    ``sets_of`` (two sessions a week apart, two exercises each)."""
    patients = pd.DataFrame(
        {
            "patient_id": ids,
            "clinic_id": "C1",
            "start_date": "2026-01-05",
            "discharge_date": [None if i % 2 else "2026-03-02" for i in range(len(ids))],
            "planned_sessions_per_week": 2.0,
        }
    )
    rows = []
    for i in sets_of:
        for date in ("2026-01-05", "2026-01-12"):
            for exercise, pain in (("bridge", 2.0), ("standing_hip_abduction", np.nan)):
                for s in (1, 2, 3):
                    rows.append(
                        {
                            "patient_id": ids[i],
                            "date": date,
                            "exercise": exercise,
                            "set": s,
                            "reps": 10.0 if s < 3 else np.nan,
                            "pain_during": pain,
                            "pain_24h": 3.0,
                            "prescribed_sets": 3.0,
                            "prescribed_reps": 10.0,
                        }
                    )
    sets = pd.DataFrame(rows, columns=["patient_id", "date", "exercise", "set", "reps"])
    if rows:
        sets = pd.DataFrame(rows)
    kwargs = {} if activity is None else {"activity": activity}
    return hipdata.Dataset.from_frames(patients, sets, **kwargs)


@pytest.mark.parametrize(
    "case",
    ["one_patient", "unicode_ids", "no_sessions_for_some", "ties_at_who", "no_activity"],
)
def test_edge_cases_equal_the_plain_paths(case, monkeypatch):
    if case == "one_patient":
        ds = _tiny(["P1"], sets_of=[0])
    elif case == "unicode_ids":
        ds = _tiny(["Ä3", "p1", "P10", "P2", "ß"], sets_of=[0, 2, 4])
    elif case == "no_sessions_for_some":
        ds = _tiny(["P3", "P1", "P2"], sets_of=[1])
    elif case == "ties_at_who":
        # 100 + 50 = 150 min (the threshold, inclusive), 149.9999999995 (within the 1e-9
        # tolerance), 0.1 + 0.2 (not met); strength recorded, else the week's exercise sessions
        activity = pd.DataFrame(
            {
                "patient_id": ["P1", "P1", "P1", "P2", "P2", "P2", "P2"],
                "date": [
                    "2026-01-05",
                    "2026-01-06",
                    "2026-01-12",
                    "2026-01-05",
                    "2026-01-19",
                    "2026-01-20",
                    "2026-02-02",
                ],
                "cardio_min": [100.0, 50.0, 149.9999999995, 150.0, 0.1, 0.2, np.nan],
                "strength_sessions": [np.nan, np.nan, 2.0, 2.0, np.nan, 2.0, np.nan],
            }
        )
        ds = _tiny(["P1", "P2"], sets_of=[0, 1], activity=activity.iloc[:-1])
        # the loader quarantines an activity row with nothing recorded; a hand-made dataset
        # may hold one (a week with activity rows but 0 minutes)
        empty_row = ds.activity.iloc[[-1]].assign(
            date=pd.Timestamp("2026-02-02"), cardio_min=np.nan, strength_sessions=np.nan
        )
        ds = dataclasses.replace(ds, activity=pd.concat([ds.activity, empty_row]))
        summary = compute_all(ds)["patient_summary"]
        # P1: week 0 150 min but strength from its 1 exercise session (< 2): not met; week 1
        # 149.9999999995 min and 2 recorded: met. P2: week 0 met (150, 2); week 2 0.3 min;
        # week 4 nothing recorded (0 min): weeks 3, met 1
        assert summary["activity_weeks"].tolist() == [2, 3]
        assert summary["activity_weeks_met"].tolist() == [1, 1]
    else:
        ds = _tiny(["P1", "P2"], sets_of=[0])
    _assert_fast_equals_plain(ds, monkeypatch)


def test_no_sets_at_all_equals_the_plain_paths(monkeypatch):
    activity = pd.DataFrame(
        {
            "patient_id": ["P1", "P1", "P2"],
            "date": ["2026-01-05", "2026-01-13", "2026-01-06"],
            "cardio_min": [150.0, 30.0, 200.0],
            "strength_sessions": [2.0, np.nan, np.nan],
        }
    )
    ds = _tiny(["P1", "P2"], sets_of=[], activity=activity)
    fast = _assert_fast_equals_plain(ds, monkeypatch)
    assert fast["patient_summary"]["sessions"].tolist() == [0, 0]
    # P1 week 0 (150 min, 2 recorded) met, week 1 (30 min) not; P2 week 0 200 min but no
    # strength recorded and no exercise session (0 < 2): not met
    assert fast["patient_summary"]["activity_weeks"].tolist() == [2, 1]
    assert fast["patient_summary"]["activity_weeks_met"].tolist() == [1, 0]
    assert fast["patient_summary"]["top_level_extensors"].isna().all()


def test_top_levels_and_counts_by_position_equal_the_joins(messy_cohort):
    """The helpers themselves, on the cohort's tables (every family, an extra one, patients
    without rows)."""
    from hipdata.metrics.compute import (
        _family_sessions_from_sets,
        _sessions_from_sets,
        _sets_table,
    )

    ds = messy_cohort
    sets = _sets_table(ds.sets, ds.patients)
    family_table = _family_sessions_from_sets(
        sets,
        ds.patients,
        pain_threshold=3,
        criterion_sets=3,
        criterion_reps=8,
        criterion_hold_s=20,
    )
    # an extra family, coded among the others, and a patient with no row at all
    family_table = coded(
        family_table.assign(family=family_table["family"].astype("str")).assign(
            family=lambda t: t["family"].where(t.index % 7 != 0, "zz_extra")
        ),
        ["family"],
    )
    ids = pd.Index([*ds.patients["patient_id"].astype("str"), "NOBODY"])
    fast = summary_module._top_levels_by_position(ids, family_table)
    plain = summary_module._top_levels_joined(ids, family_table)
    assert list(fast) == list(plain) and "top_level_zz_extra" in fast
    for name in fast:
        pd.testing.assert_series_equal(fast[name], plain[name], check_exact=True)
    assert fast["top_level_extensors"].iloc[-1] is pd.NA

    sessions = _sessions_from_sets(sets, ds.patients, pain_threshold=3)
    weeks = summary_module.activity_weeks(ds.activity, sessions, ds.patients)
    patients = ds.patients.set_index(ds.patients["patient_id"].astype("str"))
    flags = summary_module._activity_week_flags(
        ds.activity, sessions, patients, who_cardio_min=150, who_strength_sessions=2
    )
    # the same patient weeks and the same met flags (weeks in patient-position order there,
    # text order here: compared per patient)
    position = summary_module.patient_positions(patients.index, weeks["patient_id"])
    assert len(flags) == len(weeks) > 100 and 0 < flags["met"].sum() < len(flags)
    for column, values in (("weeks", None), ("met", "met")):
        plain = np.bincount(
            position[weeks[values].to_numpy()] if values else position, minlength=len(patients)
        )
        codes = flags["patient_id"].cat.codes.to_numpy()
        fast = np.bincount(
            codes[flags[values].to_numpy()] if values else codes, minlength=len(patients)
        )
        np.testing.assert_array_equal(fast, plain, err_msg=column)


def test_agg_by_direct_reductions_equal_agg():
    rng = np.random.default_rng(4)
    n = 2000
    frame = pd.DataFrame(
        {
            "patient_id": pd.Series(rng.choice(["P2", "p1", "Ä"], n), dtype="str"),
            "date": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 9, n), "D"),
            "x": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n) * 1e6),
            "y": rng.integers(0, 5, n),
            "e": pd.Series(rng.choice(["a", "b", None], n), dtype="str"),
        }
    )
    frame = coded(frame, ["patient_id", "e"])
    frame = frame.sort_values(["patient_id", "date"], kind="stable").reset_index(drop=True)
    keys = ["patient_id", "date"]
    named = {
        "n": ("x", "size"),
        "s": ("x", "sum"),
        "m": ("x", "max"),
        "lo": ("y", "min"),
        "f": ("x", "first"),
        "la": ("x", "last"),
        "u": ("e", "nunique"),
        "avg": ("x", "mean"),
    }
    groups = group_codes(frame, keys)
    assert groups is not None
    fast = agg_by(frame, keys, groups=groups, **named)
    plain = frame.groupby(keys, sort=True, observed=True).agg(**named).reset_index()
    pd.testing.assert_frame_equal(fast, plain, check_exact=True)
    # empty frame
    empty = frame.iloc[:0]
    fast = agg_by(empty, keys, **named)
    plain = empty.groupby(keys, sort=True, observed=True).agg(**named).reset_index()
    pd.testing.assert_frame_equal(fast, plain, check_exact=True, check_index_type=False)


@pytest.mark.parametrize("unit", ["ns", "us", "ms", "s"])
def test_quarter_label_from_months_equals_the_dt_fields(unit):
    from hipdata.metrics.sessions import quarter_label

    dates = pd.Series(
        pd.to_datetime(
            ["1969-12-31", "1970-01-01", "2026-03-31", "2026-04-01", "1899-07-04", None]
            + ["2262-04-11", "2026-12-31", "2026-06-30", "2026-07-01"]
        )
    ).astype(f"datetime64[{unit}]")
    fast = quarter_label(dates)
    number = dates.dt.year * 4 + dates.dt.quarter - 1
    plain = number.map(lambda q: np.nan if pd.isna(q) else f"{int(q) // 4}Q{int(q) % 4 + 1}")
    pd.testing.assert_series_equal(fast, plain.astype("str"), check_exact=True)
    # hand-checked: 31 Dec 1969 is 1969Q4, 1 Jan 1970 1970Q1, 30 Jun / 1 Jul 2026 Q2 / Q3
    assert fast.tolist()[:2] == ["1969Q4", "1970Q1"] and fast.tolist()[-2:] == ["2026Q2", "2026Q3"]
    assert quarter_label(dates.iloc[:0]).tolist() == []
