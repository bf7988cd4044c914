"""Write the small mixed-model fixtures of ``tests/test_mixed_lme4.py`` (run once; kept for the record).

``python tests/data/make_mixed_fixtures.py`` generates two cohorts with :func:`hipdata.synth.generate`
(fixed seeds) and writes, from the first, the ``sessions`` pain of the pain-trajectory model
(``mixed_pain_sessions.csv``: patient_id, week, pain_24h) and, from the second, the NPRS scores of
the outcome model (``mixed_nprs_scores.csv``: patient_id, weeks_since_start, score). The
synthetic generator plants no between-patient variation in the pain slope, so a third file,
``mixed_slope_sessions.csv``, plants one: 40 patients x 10 weekly sessions, ``pain_24h = 4 - 0.3
week + b0 + b1 week + e`` with SD(b0) 1, SD(b1) 0.15, SD(e) 0.7, rounded to 0.1. The lme4
reference values written into the tests were computed from these CSVs with R (see the test module).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import hipdata
from hipdata.metrics import compute_all
from hipdata.synth import generate

HERE = Path(__file__).parent
PAIN_SEED, PAIN_PATIENTS = 7, 120
NPRS_SEED, NPRS_PATIENTS = 7, 80
SLOPE_SEED = 20261128


def main(out: Path = HERE) -> None:
    cohort = generate(PAIN_PATIENTS, seed=PAIN_SEED)
    folder = out / "_tmp_pain"
    cohort.write(folder)
    sessions = compute_all(hipdata.load(folder))["sessions"]
    pain = sessions[["patient_id", "week", "pain_24h"]].dropna()
    pain.to_csv(out / "mixed_pain_sessions.csv", index=False)

    cohort = generate(NPRS_PATIENTS, seed=NPRS_SEED)
    outcomes, patients = cohort.tables["outcomes"], cohort.tables["patients"]
    scores = outcomes.loc[outcomes["measure"] == "nprs", ["patient_id", "date", "score"]].merge(
        patients[["patient_id", "start_date"]], on="patient_id"
    )
    days = pd.to_datetime(scores["date"]) - pd.to_datetime(scores["start_date"])
    scores["weeks_since_start"] = (days.dt.days / 7).round(6)
    scores[["patient_id", "weeks_since_start", "score"]].to_csv(
        out / "mixed_nprs_scores.csv", index=False
    )
    rng = np.random.default_rng(SLOPE_SEED)
    patient = np.repeat(np.arange(40), 10)
    week = np.tile(np.arange(10), 40)
    pain = (
        4.0
        + rng.normal(0, 1.0, 40)[patient]
        + (-0.3 + rng.normal(0, 0.15, 40)[patient]) * week
        + rng.normal(0, 0.7, week.size)
    )
    pd.DataFrame(
        {"patient_id": [f"S{i:02d}" for i in patient], "week": week, "pain_24h": pain.round(1)}
    ).to_csv(out / "mixed_slope_sessions.csv", index=False)
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()


if __name__ == "__main__":
    main()
