"""Tests for hipdata.analysis.adherence and plots.progress.plot_adherence."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from hipdata.analysis.adherence import (  # noqa: E402
    activity_target_summary,
    adherence_distribution,
    completion,
)
from hipdata.plots.progress import plot_adherence  # noqa: E402

DAY = pd.Timestamp("2026-03-01")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def patients() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient_id": ["P1", "P2", "P3", "P4", "P5", "P6"],
            "clinic_id": ["A", "A", "A", "A", "B", "B"],
            "clinician_id": ["T1", "T1", "T2", "T2", "T3", None],
            "discharge_date": [DAY, DAY, pd.NaT, DAY, DAY, pd.NaT],
        }
    )


@pytest.fixture
def summary() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient_id": ["P1", "P2", "P3", "P4", "P5", "P6"],
            "clinic_id": ["A", "A", "A", "A", "B", "B"],
            "clinician_id": ["T1", "T1", "T2", "T2", "T3", None],
            "attendance": [0.75, 0.7499, 1.0, 1.1, 0.2, 0.9],
            "activity_weeks_met_share": [0.5, 1.0, np.nan, 0.0, 0.25, np.nan],
        }
    )


def test_adherence_distribution_hand_computed():
    data = pd.DataFrame(
        {
            "clinic_id": ["A", "A", "A", "A", "B", "B"],
            "attendance": [0.5, 0.75, 1.0, 1.25, 0.6, np.nan],
        }
    )
    table = adherence_distribution(data).set_index("clinic_id")
    a = table.loc["A"]
    # mean 0.875; deviations -.375, -.125, .125, .375 -> sd = sqrt(0.3125 / 3) = 0.322749
    # quartiles (linear, type 7): q1 at position 0.75 -> 0.5 + 0.75 x 0.25 = 0.6875,
    # q3 at position 2.25 -> 1.0 + 0.25 x 0.25 = 1.0625; IQR 0.375
    assert (a["n"], a["n_missing"]) == (4, 0)
    assert a["mean"] == pytest.approx(0.875)
    assert a["sd"] == pytest.approx(0.322749, abs=1e-6)
    assert a["median"] == pytest.approx(0.875)
    assert (a["q1"], a["q3"], a["iqr"]) == pytest.approx((0.6875, 1.0625, 0.375))
    assert (a["min"], a["max"]) == (0.5, 1.25)
    b = table.loc["B"]
    assert (b["n"], b["n_missing"], b["mean"]) == (1, 1, 0.6) and np.isnan(b["sd"])
    assert (table["measure"] == "attendance").all()
    overall = adherence_distribution(data, by=None)
    assert overall["n"].tolist() == [5] and overall["group"].tolist() == ["all"]


def test_completion_counts_discharged_only(patients, summary):
    table = completion(summary, patients).set_index("clinic_id")
    # A: discharged P1 (0.75: exactly on the threshold, completed), P2 (0.7499: not), P4 (1.1);
    # P3 (in care, 1.0) is not judged -> 2 of 3 (3 of 4 if in-care episodes were counted)
    a = table.loc["A"]
    assert (a["n_discharged"], a["n_completed"]) == (3, 2)
    assert a["completion_rate"] == pytest.approx(2 / 3)
    # Wilson 2 of 3: centre (0.6667 + z^2/6) / (1 + z^2/3) = 0.573083,
    # half = z sqrt(0.6667 x 0.3333 / 3 + z^2 / 36) / (1 + z^2/3) = 0.365424
    assert a["ci_low"] == pytest.approx(0.573083 - 0.365424, abs=1e-5)
    assert a["ci_high"] == pytest.approx(0.573083 + 0.365424, abs=1e-5)
    b = table.loc["B"]  # P5 discharged at 0.2; P6 in care
    assert (b["n_discharged"], b["n_completed"], b["completion_rate"]) == (1, 0, 0.0)


def test_completion_threshold_parameter_and_tolerance(patients, summary):
    nudged = summary.assign(attendance=summary["attendance"].replace(0.75, 0.75 - 1e-12))
    table = completion(nudged, patients, by=None)
    # discharged: P1 (0.75 - 1e-12, on the threshold within tolerance), P2 0.7499, P4 1.1, P5 0.2
    assert table["n_completed"].tolist() == [2]  # P1 and P4
    strict = completion(summary, patients, by="clinician_id", threshold=1.0)
    # discharged: T1 P1 0.75, P2 0.7499; T2 P4 1.1; T3 P5 0.2
    assert strict.set_index("clinician_id")["n_completed"].to_dict() == {"T1": 0, "T2": 1, "T3": 0}


def test_completion_missing_attendance_left_out_of_denominator(patients, summary):
    table = completion(summary.drop(index=0), patients, by=None).iloc[0]
    # P1 has no summary row: 4 discharged, 1 without attendance -> 1 completed (P4) of 3
    assert (table["n_discharged"], table["n_attendance_missing"], table["n_completed"]) == (4, 1, 1)
    assert table["completion_rate"] == pytest.approx(1 / 3)


def test_activity_target_summary_from_weekly_table():
    weeks = pd.DataFrame(
        {
            "patient_id": ["P1", "P1", "P1", "P2", "P3"],
            "cardio_min": [150.0, 149.9, 300.0, 200.0, 0.0],
            "strength_sessions": [2.0, 2.0, 1.0, 3.0, 0.0],
        }
    )
    patients = pd.DataFrame({"patient_id": ["P1", "P2", "P3"], "clinic_id": ["A", "A", "B"]})
    table = activity_target_summary(weeks, patients=patients).set_index("clinic_id")
    # A: P1 150/2 met (inclusive), 149.9/2 not, 300/1 not; P2 200/3 met -> 2 of 4 weeks
    assert table.loc["A", ["n_patients", "n_weeks", "n_weeks_met"]].tolist() == [2, 4, 2]
    assert table.loc["A", "weeks_met_share"] == 0.5
    assert table.loc["B", "n_weeks_met"] == 0
    flagged = weeks.assign(target_met=[True, False, False, True, None])
    table = activity_target_summary(flagged, patients=patients).set_index("clinic_id")
    assert table.loc["B", "n_weeks"] == 0 and np.isnan(table.loc["B", "weeks_met_share"])


def test_activity_target_summary_from_patient_summary(summary):
    table = activity_target_summary(summary).set_index("clinic_id")
    # A: shares 0.5, 1.0, 0.0 (P3 without activity) -> mean 0.5; B: 0.25 (P6 none)
    assert table.loc["A", ["n_patients", "n_without_activity"]].tolist() == [3, 1]
    assert table.loc["A", "mean"] == pytest.approx(0.5)
    assert table.loc["B", "median"] == pytest.approx(0.25)


def test_plot_adherence_draws_with_completion_line(summary):
    ax = plot_adherence(data=summary)
    assert isinstance(ax, matplotlib.axes.Axes)
    assert len(ax.patches) + len(ax.collections) > 0
    assert any(np.allclose(line.get_xdata(), 75.0) for line in ax.lines)
    assert "Attendance" in ax.get_xlabel()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["A (n=4)", "B (n=2)"]
    ax = plot_adherence(data=summary, by=None)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["All patients (n=6)"]


def test_plot_adherence_drops_the_dots_above_max_dots(summary):
    # summary: 6 patients with attendance -> one dot each up to max_dots, none above
    def dots(ax):
        return sum(len(c.get_offsets()) for c in ax.collections)

    ax = plot_adherence(data=summary, max_dots=6)
    assert dots(ax) == 6
    # every dot is drawn above the boxes: none hidden inside an IQR
    assert min(c.get_zorder() for c in ax.collections) > max(p.get_zorder() for p in ax.patches)
    ax = plot_adherence(data=summary, max_dots=5)
    assert dots(ax) == 0
    # the boxes, their labels and the completion line stay
    assert [t.get_text() for t in ax.get_yticklabels()] == ["A (n=4)", "B (n=2)"]
    assert any(np.allclose(line.get_xdata(), 75.0) for line in ax.lines)


def test_attendance_caption_says_when_the_dots_are_left_out():
    from hipdata.plots.progress import MAX_PATIENT_DOTS
    from hipdata.report.cohort.adherence import attendance_caption

    assert "dots: patients" in attendance_caption(5)
    assert "dots: patients" in attendance_caption(5, patients=MAX_PATIENT_DOTS)
    above = attendance_caption(5, patients=MAX_PATIENT_DOTS + 1)
    assert "dots: patients" not in above and f"above {MAX_PATIENT_DOTS:,} patients" in above
