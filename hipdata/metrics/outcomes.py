"""The ``outcome_change`` table (CONTRACT §4-5): baseline, follow-up, improvement, responders."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hipdata.dataset import Dataset
from hipdata.metrics._common import at_least, attach_patients, days_between, safe_ratio
from hipdata.outcome_measures import MEASURES, Measure
from hipdata.protocol import BASELINE_WINDOW_DAYS, FOLLOWUP_WINDOW_DAYS

OUTCOME_CHANGE_COLUMNS = [
    "patient_id",
    "measure",
    "baseline",
    "followup",
    "improvement",
    "pct_improvement",
    "responder",
]
#: Kept after the contract's columns: when the two scores were taken.
OUTCOME_CHANGE_EXTRA_COLUMNS = ["baseline_date", "followup_date"]

_KEYS = ["patient_id", "measure"]
#: How the absolute and relative MCIDs combine: either suffices ("or", the contract's default)
#: or both are needed ("and").
RESPONDER_RULES = ("or", "and")


def outcome_change(
    ds: Dataset,
    *,
    measures: dict[str, Measure] | None = None,
    baseline_window_days: tuple[int, int] = BASELINE_WINDOW_DAYS,
    followup_window_days: tuple[int, int] = FOLLOWUP_WINDOW_DAYS,
    responder_rule: str = "or",
) -> pd.DataFrame:
    """Change in each outcome measure from baseline to follow-up, per patient (CONTRACT §4).

    - baseline: the score closest to ``start_date`` within ``[start + baseline_window_days[0],
      start + baseline_window_days[1]]`` days (inclusive; ties go to the earlier score);
    - follow-up: the latest score within ``[discharge + followup_window_days[0], discharge +
      followup_window_days[1]]`` dated after the baseline (when there is one); empty while in
      care. A missing follow-up is never carried forward from an earlier score;
    - ``improvement`` = follow-up - baseline for a measure where higher is better, baseline -
      follow-up where lower is better, so positive is always better; ``pct_improvement`` = 100 x
      improvement / |baseline| (empty when the baseline is 0);
    - ``responder`` (``responder_rule="or"``, the contract's): improvement >= the measure's
      ``mcid_points`` or, when it has one, pct_improvement >= its ``mcid_pct`` (nprs: 2 points
      or 30 %); with ``responder_rule="and"`` both are needed (a measure without ``mcid_pct``
      needs the points only; a baseline of 0 has no percentage, so no responder). Inclusive with
      1e-9 tolerance; empty when baseline or follow-up is missing.

    A measure missing from the registry keeps its baseline and follow-up; its improvement and
    responder stay empty (their direction and MCID are unknown).

    Parameters
    ----------
    ds : Dataset
        The loaded cohort.
    measures : dict of str to Measure, optional
        The measure registry (default: the one ``ds`` was loaded with, ``ds.meta["measures"]``,
        else :data:`hipdata.outcome_measures.MEASURES`); pass a modified copy to change an MCID.
    baseline_window_days, followup_window_days : (int, int)
        Windows in days relative to start and to discharge (protocol: (-30, 7) and (-14, 30)).
    responder_rule : {"or", "and"}
        Whether the absolute or the relative MCID suffices (``"or"``) or both are needed.

    Returns
    -------
    DataFrame
        One row per patient and measure with any score: ``patient_id, measure, baseline,
        followup, improvement, pct_improvement, responder`` (nullable ``boolean``), then
        ``baseline_date, followup_date``.

    Examples
    --------
    >>> import pandas as pd
    >>> from hipdata import Dataset
    >>> ds = Dataset.from_frames(
    ...     pd.DataFrame({"patient_id": ["P1"], "clinic_id": ["C1"], "start_date": ["2026-01-05"],
    ...                   "discharge_date": ["2026-03-02"]}),
    ...     pd.DataFrame({"patient_id": ["P1"], "date": ["2026-01-05"], "exercise": ["bridge"],
    ...                   "set": [1], "reps": [10]}),
    ...     outcomes=pd.DataFrame({"patient_id": "P1", "date": ["2026-01-05", "2026-03-02"],
    ...                            "measure": "nprs", "score": [6.0, 4.5]}))
    >>> outcome_change(ds)[["improvement", "pct_improvement", "responder"]].to_dict("records")
    [{'improvement': 1.5, 'pct_improvement': 25.0, 'responder': False}]
    """
    if responder_rule not in RESPONDER_RULES:
        raise ValueError(f"responder_rule must be one of {RESPONDER_RULES}, not {responder_rule!r}")
    if measures is None:  # the registry the data were loaded with (custom measures), else default
        measures = ds.meta.get("measures") or MEASURES
    scores = attach_patients(
        ds.outcomes[["patient_id", "date", "measure", "score"]],
        ds.patients,
        ["start_date", "discharge_date"],
    )
    table = _baseline_followup_by_codes(scores, baseline_window_days, followup_window_days)
    if table is None:
        table = scores[_KEYS].drop_duplicates().sort_values(_KEYS)

        from_start = days_between(scores["date"], scores["start_date"])
        low, high = baseline_window_days
        in_baseline = scores[(from_start >= low) & (from_start <= high)].assign(
            distance=from_start.abs()
        )
        baseline = (
            in_baseline.sort_values(["distance", "date"], kind="stable")
            .drop_duplicates(_KEYS, keep="first")
            .rename(columns={"score": "baseline", "date": "baseline_date"})[
                [*_KEYS, "baseline", "baseline_date"]
            ]
        )
        table = table.merge(baseline, on=_KEYS, how="left", validate="one_to_one")

        from_discharge = days_between(scores["date"], scores["discharge_date"])
        low, high = followup_window_days
        in_followup = scores[(from_discharge >= low) & (from_discharge <= high)]
        in_followup = in_followup.merge(baseline[[*_KEYS, "baseline_date"]], on=_KEYS, how="left")
        in_followup = in_followup[
            in_followup["baseline_date"].isna()
            | (in_followup["date"] > in_followup["baseline_date"])
        ]
        followup = (
            in_followup.sort_values("date", kind="stable")
            .drop_duplicates(_KEYS, keep="last")
            .rename(columns={"score": "followup", "date": "followup_date"})[
                [*_KEYS, "followup", "followup_date"]
            ]
        )
        table = table.merge(followup, on=_KEYS, how="left", validate="one_to_one")

    registry = pd.DataFrame(
        [(m.name, m.higher_is_better, m.mcid_points, m.mcid_pct) for m in measures.values()],
        columns=["measure", "higher_is_better", "mcid_points", "mcid_pct"],
    ).astype({"measure": "str", "mcid_points": "float64", "mcid_pct": "float64"})
    table, direction = _join_registry(table, registry)
    # "+ 0.0" turns the -0.0 of a lower-is-better measure with no change into 0.0
    table["improvement"] = (direction * (table["followup"] - table["baseline"]) + 0.0).astype(
        "float64"
    )
    table["pct_improvement"] = 100 * safe_ratio(table["improvement"], table["baseline"].abs())
    by_points = at_least(table["improvement"], table["mcid_points"])
    has_pct = table["mcid_pct"].notna()
    by_pct = has_pct & at_least(table["pct_improvement"], table["mcid_pct"])
    judged = table["improvement"].notna() & table["mcid_points"].notna()
    if responder_rule == "or":
        responder = by_points | by_pct
    else:
        responder = by_points & (by_pct | ~has_pct)
    table["responder"] = pd.Series(
        np.where(judged, responder, None), index=table.index, dtype="object"
    ).astype("boolean")
    for column in _KEYS:
        table[column] = table[column].astype("str")
    for column in ("baseline", "followup"):
        table[column] = table[column].astype("float64")
    table = table.sort_values(_KEYS)
    return table[OUTCOME_CHANGE_COLUMNS + OUTCOME_CHANGE_EXTRA_COLUMNS].reset_index(drop=True)


def _join_registry(table: pd.DataFrame, registry: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """``table`` with the registry's ``mcid_points`` and ``mcid_pct`` of its measure, and the
    measure's direction (1.0 higher is better, -1.0 lower, NaN for a measure not in the
    registry): the left many-to-one merge on ``measure``, as one lookup per row and a take of
    each column (no merge, which factorizes both key columns and copies every column). The
    merge itself when the registry names a measure twice (it then raises, as before)."""
    names = pd.Index(registry["measure"])
    if not names.is_unique or names.hasnans:
        table = table.merge(registry, on="measure", how="left", validate="many_to_one")
        direction = table["higher_is_better"].map({True: 1.0, False: -1.0}).astype("float64")
        return table, direction
    position = names.get_indexer(table["measure"])
    found = position >= 0
    at = np.maximum(position, 0)

    def taken(values: pd.Series) -> np.ndarray:
        values = values.to_numpy(dtype="float64", na_value=np.nan)
        if len(values) == 0:
            return np.full(len(position), np.nan)
        return np.where(found, values[at], np.nan)

    # the direction of each registry row, as the merge's column mapped (NaN where not found)
    directions = registry["higher_is_better"].map({True: 1.0, False: -1.0}).astype("float64")
    table = table.assign(
        mcid_points=taken(registry["mcid_points"]), mcid_pct=taken(registry["mcid_pct"])
    )
    direction = pd.Series(taken(directions), index=table.index, name="higher_is_better")
    return table, direction


def _baseline_followup_by_codes(
    scores: pd.DataFrame,
    baseline_window_days: tuple[int, int],
    followup_window_days: tuple[int, int],
) -> pd.DataFrame | None:
    """The baseline and follow-up of each patient and measure (the merges of
    :func:`outcome_change`), chosen by sorting integer-coded keys.

    Baseline: among the scores in the baseline window, the one with the smallest distance to
    the start, then the earliest date, then the first row; follow-up: among the scores in the
    follow-up window dated after the baseline (or all, without a baseline), the latest date,
    then the last row. Returns ``patient_id, measure, baseline, baseline_date, followup,
    followup_date`` ordered by patient and measure (text order), or None when a key or date is
    missing or the score is not float64 (the caller then merges).
    """
    date = scores["date"]
    if (
        date.dtype.kind != "M"
        or isinstance(date.dtype, pd.DatetimeTZDtype)
        or scores["score"].dtype != "float64"
        or scores[[*_KEYS, "date"]].isna().any().any()
    ):
        return None
    ids = [
        scores[k].astype("str") if isinstance(scores[k].dtype, pd.CategoricalDtype) else scores[k]
        for k in _KEYS
    ]
    patient_codes, patients = pd.factorize(ids[0], sort=True)
    measure_codes, measures = pd.factorize(ids[1], sort=True)
    width = max(len(measures), 1)
    key = patient_codes.astype("int64") * width + measure_codes
    keys, key_of_row = np.unique(key, return_inverse=True)
    rows = np.arange(len(key))
    ticks = date.to_numpy().view("int64")

    def pick(candidates: np.ndarray, sort_keys: list[np.ndarray], *, last: bool) -> np.ndarray:
        # the row of each key chosen by ``sort_keys`` (first = smallest), -1 where none
        order = candidates[np.lexsort([k[candidates] for k in [rows, *sort_keys[::-1]]])]
        ranked = key_of_row[order]
        change = ranked[1:] != ranked[:-1]
        edge = (np.r_[change, True] if last else np.r_[True, change])[: len(ranked)]
        chosen = np.full(len(keys), -1, dtype="int64")
        chosen[ranked[edge]] = order[edge]
        return chosen

    from_start = days_between(date, scores["start_date"]).to_numpy()
    low, high = baseline_window_days
    in_baseline = np.flatnonzero((from_start >= low) & (from_start <= high))
    baseline = pick(in_baseline, [key_of_row, np.abs(from_start), ticks], last=False)

    from_discharge = days_between(date, scores["discharge_date"]).to_numpy()
    low, high = followup_window_days
    baseline_row = baseline[key_of_row]
    after_baseline = (baseline_row < 0) | (ticks > ticks[np.maximum(baseline_row, 0)])
    in_followup = np.flatnonzero(
        (from_discharge >= low) & (from_discharge <= high) & after_baseline
    )
    followup = pick(in_followup, [key_of_row, ticks], last=True)

    score = scores["score"].to_numpy()
    dates = date.to_numpy()
    missing_date = np.array("NaT", dtype=dates.dtype)
    table = pd.DataFrame(
        {
            "patient_id": patients.take(keys // width),
            "measure": measures.take(keys % width),
        }
    )
    for name, chosen in (("baseline", baseline), ("followup", followup)):
        found = chosen >= 0
        table[name] = np.where(found, score[np.maximum(chosen, 0)], np.nan)
        table[f"{name}_date"] = np.where(found, dates[np.maximum(chosen, 0)], missing_date)
    return table
