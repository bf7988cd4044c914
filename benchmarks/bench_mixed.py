"""Time the pain-trajectory mixed model at registry size (issue 11 item 4, issue 7 item 1).

Run: ``python benchmarks/bench_mixed.py [n_patients] [sessions_per_patient] [--statsmodels N]``
(default 100 000 x 30). Simulates ``pain = 4 - 0.1 week + b0 + b1 week + e`` with a random
intercept (SD 1) and slope (SD 0.1, correlation -0.3) and 10 % of pain missing, then times
:func:`hipdata.analysis.models.fit_mixed` (random intercept and slope, REML, every optimiser from
several starts, nested random-intercept model, singularity test) end to end, and separately the
one-off sufficient statistics and one evaluation of the criterion. With ``--statsmodels N`` it also
times statsmodels' ``MixedLM`` (lbfgs) on the first N patients for a ratio. Target (issue 11): at
most 60 s for 10^5 patients x 30 sessions on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd

from hipdata.analysis import _reml
from hipdata.analysis.models import _design, fit_mixed


def simulate(n_patients: int, per_patient: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    patient = np.repeat(np.arange(n_patients), per_patient)
    week = np.tile(np.arange(per_patient) / 3.0, n_patients).round(0)
    cov = np.array([[1.0, -0.03], [-0.03, 0.01]])
    effects = rng.multivariate_normal([0, 0], cov, n_patients)
    pain = (
        4.0
        + effects[patient, 0]
        + (-0.1 + effects[patient, 1]) * week
        + rng.normal(0, 1.0, patient.size)
    )
    pain[rng.random(patient.size) < 0.1] = np.nan
    return pd.DataFrame(
        {"patient_id": pd.Categorical(patient), "week": week.astype(float), "pain_24h": pain}
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("patients", nargs="?", type=int, default=100_000)
    parser.add_argument("per_patient", nargs="?", type=int, default=30)
    parser.add_argument("--statsmodels", type=int, default=0, metavar="N")
    args = parser.parse_args()
    data = simulate(args.patients, args.per_patient)
    print(f"{args.patients:,} patients x {args.per_patient} sessions = {len(data):,} rows")

    began = time.perf_counter()
    design = _design(data, "pain_24h ~ week", "~week", "patient_id")
    stats = _reml.sufficient_stats(design.y, design.x, design.z, design.codes, len(design.levels))
    setup = time.perf_counter() - began
    began = time.perf_counter()
    repeats = 20
    for _ in range(repeats):
        _reml.deviance(stats, np.array([1.0, 0.0, 0.1]))
    per_eval = (time.perf_counter() - began) / repeats
    print(
        f"design + sufficient statistics: {setup:.2f} s; one criterion evaluation: "
        f"{1000 * per_eval:.1f} ms"
    )

    began, cpu = time.perf_counter(), time.process_time()
    fit = fit_mixed(data, "pain_24h ~ week", group="patient_id", group_label="patient")
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    # on a shared machine the wall time depends on the load; the CPU time of this process does not
    print(
        f"fit_mixed (intercept+slope, all optimisers, nested model): {elapsed:.1f} s wall, "
        f"{cpu:.1f} s CPU (load average {os.getloadavg()[0]:.1f})"
    )
    print(f"  selection: {fit.selection}; REML criterion {fit.reml_criterion:.2f}")
    print(fit.summary.to_string(index=False))

    if args.statsmodels:
        import statsmodels.formula.api as smf

        keep = data["patient_id"].cat.codes < args.statsmodels
        small = data[keep].dropna().astype({"patient_id": "int64"})
        began = time.perf_counter()
        smf.mixedlm("pain_24h ~ week", small, groups="patient_id", re_formula="~week").fit(
            reml=True, method="lbfgs"
        )
        sm_time = time.perf_counter() - began
        began = time.perf_counter()
        fit_mixed(small, "pain_24h ~ week", group="patient_id")
        ours = time.perf_counter() - began
        print(
            f"{args.statsmodels:,} patients: statsmodels MixedLM (lbfgs, one optimiser) "
            f"{sm_time:.1f} s, fit_mixed {ours:.1f} s"
        )


if __name__ == "__main__":
    main()
