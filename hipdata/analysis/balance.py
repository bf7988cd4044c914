"""Balance between groups: standardised mean differences and Table 1 by any grouping.

:func:`table_one` describes the patients at the start of care by a grouping column of the
patients table (clinic, condition, sex, a study arm): counts and shares of the categorical
characteristics, mean (SD), median [IQR] and missing counts of the continuous ones, and the
largest standardised mean difference (SMD) between two groups. It is a publication table: its
counts go through :func:`hipdata.disclosure.suppress` with every additive line of the table, so
it can be printed, written with ``to_csv`` / ``to_latex`` / ``to_html`` or added to a report.

Values outside a known vocabulary (free text in ``sex`` or ``condition``) are never printed:
an unknown condition counts as "other", an unknown sex as not recorded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np
import pandas as pd

from hipdata.dataset import Dataset
from hipdata.disclosure import SECONDARY_MARKER, format_share, suppress
from hipdata.outcome_measures import MEASURES, Measure
from hipdata.protocol import SUPPRESSION_K, Protocol

__all__ = [
    "CONDITION_LABELS",
    "SEX_LABELS",
    "TABLE_ONE_MEASURES",
    "patient_characteristics",
    "smd_categorical",
    "smd_continuous",
    "table_one",
]

#: Measures whose baseline Table 1 shows (when present in the data).
TABLE_ONE_MEASURES = (
    "nprs",
    "hoos_pain",
    "hoos_symptoms",
    "hoos_adl",
    "hoos_sport",
    "hoos_qol",
    "ihot12",
)
#: The ``condition`` vocabulary and its printed labels (anything else counts as "other").
CONDITION_LABELS = {
    "hip_oa": "Hip osteoarthritis",
    "fai_syndrome": "FAI syndrome",
    "gtps": "Greater trochanteric pain",
    "groin_adductor": "Adductor-related groin pain",
    "other": "Other",
}
#: The ``sex`` vocabulary and its printed labels (anything else, "unknown" included, is missing).
SEX_LABELS = {"F": "Female", "M": "Male", "X": "X (diverse)"}
#: Label of a missing value (a row of Table 1, or a group when the grouping value is missing).
MISSING = "Not recorded"
#: Label of the all-patients column.
ALL = "All"
#: Most groups :func:`table_one` accepts (a grouping with more is not a grouping).
MAX_GROUPS = 20
_DASH = "–"


def smd_continuous(mean_a, sd_a, mean_b, sd_b) -> float:
    """Standardised mean difference of a continuous variable: ``|m_a - m_b| / sqrt((s_a² + s_b²)/2)``.

    >>> smd_continuous(1.0, 1.0, 0.0, 1.0)
    1.0
    """
    pooled = np.sqrt((sd_a**2 + sd_b**2) / 2)
    return float(abs(mean_a - mean_b) / pooled) if pooled > 0 else np.nan


def smd_categorical(p_a: Sequence[float], p_b: Sequence[float]) -> float:
    """Standardised difference of a categorical variable (Yang & Dalton 2012).

    With the level shares ``p_a`` and ``p_b`` (summing to 1; the first level is the reference and
    dropped), ``T = p_a - p_b`` over the other levels and ``S`` the pooled covariance of the
    multinomial indicators (``S_kk = (p_ak(1 - p_ak) + p_bk(1 - p_bk)) / 2``, ``S_kl = -(p_ak p_al
    + p_bk p_bl) / 2``): ``SMD = sqrt(T' S^-1 T)`` (a pseudo-inverse when S is singular). For two
    levels this is ``|p_a - p_b| / sqrt((p_a(1 - p_a) + p_b(1 - p_b)) / 2)``.
    """
    a = np.asarray(p_a, dtype=float)[1:]
    b = np.asarray(p_b, dtype=float)[1:]
    if a.size == 0:
        return np.nan
    difference = a - b
    covariance = -(np.outer(a, a) + np.outer(b, b)) / 2
    np.fill_diagonal(covariance, (a * (1 - a) + b * (1 - b)) / 2)
    value = float(difference @ np.linalg.pinv(covariance) @ difference)
    return float(np.sqrt(value)) if value >= 0 else np.nan


def _largest(values: list[float]) -> float:
    finite = [v for v in values if pd.notna(v)]
    return max(finite) if finite else np.nan


def _number(value, decimals: int) -> str:
    """A mean, SD or quantile as Table 1 prints it (an en dash when missing)."""
    if value is None or pd.isna(value) or not np.isfinite(float(value)):
        return _DASH
    text = f"{float(value):,.{decimals}f}"
    return text.removeprefix("-") if float(text.replace(",", "")) == 0 else text


def _vocabulary(values: pd.Series, labels: dict, other: str | None) -> pd.Series:
    """Values inside ``labels``; others become ``other`` (None: missing)."""
    values = values.astype("object")
    known = values.isna() | values.isin(list(labels))
    return values.where(known, other)


def patient_characteristics(
    patients: pd.DataFrame,
    outcome_change: pd.DataFrame | None = None,
    *,
    measures: dict[str, Measure] | None = None,
) -> tuple[pd.DataFrame, list, list]:
    """Per-patient columns of Table 1 and their descriptions.

    Parameters
    ----------
    patients : DataFrame
        The patients table.
    outcome_change : DataFrame, optional
        The ``outcome_change`` metric table (baseline scores); without it no baseline row.
    measures : dict of str to Measure, optional
        The study's measures (labels; default the shipped ones).

    Returns
    -------
    frame : DataFrame
        Indexed by ``patient_id``: ``sex`` and ``condition`` within their vocabularies (else
        missing / "other"), ``athlete`` ("Yes" / "No"), ``age`` and ``baseline_<measure>``.
    categorical : list of (column, label, levels)
    continuous : list of (column, label)
    """
    measures = MEASURES if measures is None else measures
    frame = pd.DataFrame(
        {
            "age": pd.to_numeric(patients["age_years"]).astype("float64").to_numpy(),
            "sex": _vocabulary(patients["sex"], SEX_LABELS, None).to_numpy(),
            "condition": _vocabulary(patients["condition"], CONDITION_LABELS, "other").to_numpy(),
            "athlete": patients["athlete"]
            .astype("boolean")
            .map({True: "Yes", False: "No"}, na_action="ignore")
            .astype("object")
            .to_numpy(),
        },
        index=patients["patient_id"].to_numpy(),
    )
    frame = frame.where(frame.notna(), None)
    categorical = [
        ("sex", "Sex", list(SEX_LABELS)),
        (
            "condition",
            "Condition",
            [c for c in CONDITION_LABELS if (frame["condition"] == c).any()],
        ),
        ("athlete", "Athlete", ["Yes", "No"]),
    ]
    continuous = [("age", "Age, years")]
    change = outcome_change if outcome_change is not None else pd.DataFrame({"measure": []})
    for name in TABLE_ONE_MEASURES:
        if name not in measures or not (change["measure"] == name).any():
            continue
        baseline = change.loc[change["measure"] == name].set_index("patient_id")["baseline"]
        frame[f"baseline_{name}"] = baseline.reindex(frame.index).astype("float64").to_numpy()
        continuous.append((f"baseline_{name}", f"Baseline {measures[name].label or name}"))
    return frame, categorical, continuous


def _level_label(name: str, level: str) -> str:
    if name == "sex":
        return SEX_LABELS.get(level, level)
    if name == "condition":
        return CONDITION_LABELS.get(level, level)
    return level


def _groups(patients: pd.DataFrame, by: str) -> pd.Series:
    """Each patient's group label (printed as a column header)."""
    if by not in patients:
        raise ValueError(f"table_one: by={by!r} is not a column of the patients table")
    if by in ("sex", "condition"):
        labels = SEX_LABELS if by == "sex" else CONDITION_LABELS
        values = _vocabulary(patients[by], labels, None if by == "sex" else "other")
        groups = values.map(labels, na_action="ignore")
    else:
        groups = patients[by].astype("string").astype("object")
    groups = pd.Series(groups.to_numpy(), index=patients["patient_id"].to_numpy(), dtype="object")
    return groups.where(groups.notna(), MISSING)


def _group_order(groups: pd.Series, by: str) -> list[str]:
    present = set(groups)
    if by in ("sex", "condition"):
        labels = SEX_LABELS if by == "sex" else CONDITION_LABELS
        order = [label for label in labels.values() if label in present]
    else:
        order = sorted(present - {MISSING})
    order += [MISSING] if MISSING in present else []
    if len(order) > MAX_GROUPS:
        raise ValueError(
            f"table_one: by={by!r} has {len(order)} groups; at most {MAX_GROUPS} are shown"
        )
    return order


def _inputs(data, measures, protocol) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    if isinstance(data, Dataset):
        from hipdata.metrics.outcomes import outcome_change

        p = Protocol() if protocol is None else protocol
        change = outcome_change(
            data,
            measures=measures,
            baseline_window_days=p.baseline_window_days,
            followup_window_days=p.followup_window_days,
            responder_rule=p.responder_rule,
        )
        return data.patients, change
    if isinstance(data, Mapping) and "patients" in data:
        return data["patients"], data.get("outcome_change")
    raise TypeError(
        "table_one needs a Dataset or a dict of tables with 'patients' (and 'outcome_change' "
        "for the baseline scores)"
    )


def table_one(
    data: Dataset | Mapping[str, pd.DataFrame],
    by: str = "clinic_id",
    *,
    k: int = SUPPRESSION_K,
    measures: dict[str, Measure] | None = None,
    protocol: Protocol | None = None,
) -> pd.DataFrame:
    """Table 1: patient characteristics by a grouping, through disclosure control.

    Categorical variables (sex, condition, athlete): ``n (%)`` of the group's patients (missing
    shown as its own row, so a group's shares add to 100 %). Continuous variables (age, the
    baseline score of each measure in :data:`TABLE_ONE_MEASURES`): mean (SD) and median [IQR]
    over the patients with a value, and the number missing. ``SMD`` is the largest standardised
    mean difference between any two groups with at least ``k`` patients
    (:func:`smd_continuous`, :func:`smd_categorical`; missing values left out); 0.1 is the usual
    mark of imbalance. The grouping variable itself is not a row.

    All counts of the table (group sizes, category counts, missing counts) are suppressed
    together in one system of lines (each group's levels add up to its patients; each row's
    groups add up to the All column); a mean or quantile over fewer than ``k`` patients, or of a
    group whose size is hidden, is shown as :data:`~hipdata.disclosure.SECONDARY_MARKER`.

    Parameters
    ----------
    data : Dataset or dict of DataFrame
        A loaded cohort, or tables holding ``patients`` and (for baseline scores)
        ``outcome_change``, such as a report context's ``ctx.tables``.
    by : str
        A column of the patients table: ``clinic_id``, ``condition``, ``sex``, ``clinician_id``,
        a study arm. Patients without a value form a "Not recorded" group.
    k : int
        Suppression threshold: counts 1..k-1 are shown as ``"<k"`` (1: no suppression).
    measures : dict of str to Measure, optional
        Outcome measures (labels; default the shipped ones).
    protocol : Protocol, optional
        Baseline window, when ``data`` is a Dataset (default ``Protocol()``).

    Returns
    -------
    DataFrame
        Display strings: ``Characteristic``, one column per group, ``All``, ``SMD``.

    Examples
    --------
    >>> import hipdata  # doctest: +SKIP
    >>> ds = hipdata.load("data/demo")  # doctest: +SKIP
    >>> table_one(ds, by="sex").to_csv("table1_by_sex.csv", index=False)  # doctest: +SKIP
    """
    patients, change = _inputs(data, measures, protocol)
    frame, categorical, continuous = patient_characteristics(patients, change, measures=measures)
    categorical = [item for item in categorical if item[0] != by]
    frame["group"] = _groups(patients, by).to_numpy()
    groups = _group_order(frame["group"], by)
    columns = [*groups, ALL]
    counts: dict[str, float] = {}
    lines: list[tuple[str, list[str]]] = []

    def per_group(mask: pd.Series) -> pd.Series:
        by_group = mask.groupby(frame["group"]).sum().reindex(groups, fill_value=0)
        return pd.concat([by_group, pd.Series({ALL: int(mask.sum())})])

    def add_counts(prefix: str, parts: dict[str, pd.Series], *, add_to_n: bool = True) -> None:
        """Counts per group for the parts of a variable (``add_to_n``: they add up to N)."""
        for part, series in parts.items():
            for column, value in series.items():
                counts[f"{prefix}|{part}|{column}"] = float(value)
        if add_to_n:
            for column in columns:
                lines.append((f"N||{column}", [f"{prefix}|{part}|{column}" for part in parts]))
        for part in parts:
            lines.append((f"{prefix}|{part}|{ALL}", [f"{prefix}|{part}|{g}" for g in groups]))

    for column, value in per_group(pd.Series(True, index=frame.index)).items():
        counts[f"N||{column}"] = float(value)
    lines.append((f"N||{ALL}", [f"N||{g}" for g in groups]))
    for name, _, levels in categorical:
        parts = {level: per_group(frame[name] == level) for level in levels}
        parts[MISSING] = per_group(frame[name].isna())
        add_counts(name, parts)
    for name, _ in continuous:
        # Only the missing count is printed: the number with a value (N - missing) is not, so it
        # is no line member; a mean is shown when that number is at least k.
        add_counts(name, {MISSING: per_group(frame[name].isna())}, add_to_n=False)
    values = pd.Series(counts)
    display, mask = suppress(values, lines, k=k)
    n_hidden = {c: bool(mask[f"N||{c}"]) for c in columns}
    n_value = {c: values[f"N||{c}"] for c in columns}
    large = [g for g in groups if not n_hidden[g] and n_value[g] >= k]

    rows = [{"Characteristic": "Patients", **{c: display[f"N||{c}"] for c in columns}, "SMD": ""}]
    for name, label, levels in categorical:
        shares = {
            g: frame.loc[frame["group"] == g, name].value_counts(normalize=True).reindex(levels)
            for g in large
        }
        smd = _largest(
            [
                smd_categorical(shares[a].fillna(0).to_numpy(), shares[b].fillna(0).to_numpy())
                for a, b in combinations(large, 2)
            ]
        )
        rows.append({"Characteristic": f"{label}, n (%)", **dict.fromkeys(columns, "")})
        rows[-1]["SMD"] = _number(smd, 2)
        for level in [*levels, MISSING]:
            keys = {c: f"{name}|{level}|{c}" for c in columns}
            if level == MISSING and values[keys[ALL]] == 0:
                continue
            cells = {
                c: format_share(
                    display[keys[c]], bool(mask[keys[c]]), values[keys[c]], n_value[c], n_hidden[c]
                )
                for c in columns
            }
            rows.append({"Characteristic": f"    {_level_label(name, level)}", **cells, "SMD": ""})
    for name, label in continuous:
        grouped = frame.groupby("group")[name]
        stats = grouped.agg(["mean", "std", "median", "count"])
        stats["q1"] = grouped.quantile(0.25)
        stats["q3"] = grouped.quantile(0.75)
        overall = frame[name]
        stats.loc[ALL] = [
            overall.mean(),
            overall.std(),
            overall.median(),
            overall.count(),
            overall.quantile(0.25),
            overall.quantile(0.75),
        ]
        stats = stats.reindex(columns)
        smd = _largest(
            [
                smd_continuous(
                    stats.at[a, "mean"], stats.at[a, "std"], stats.at[b, "mean"], stats.at[b, "std"]
                )
                for a, b in combinations(large, 2)
            ]
        )
        shown = {c: stats.at[c, "count"] >= k and not n_hidden[c] for c in columns}
        d = 0 if name == "age" else 1

        def cell(c: str, text: str, shown: dict = shown) -> str:
            return text if shown[c] else SECONDARY_MARKER

        rows.append(
            {
                "Characteristic": f"{label}, mean (SD)",
                **{
                    c: cell(
                        c, f"{_number(stats.at[c, 'mean'], d)} ({_number(stats.at[c, 'std'], d)})"
                    )
                    for c in columns
                },
                "SMD": _number(smd, 2),
            }
        )
        rows.append(
            {
                "Characteristic": "    median [IQR]",
                **{
                    c: cell(
                        c,
                        f"{_number(stats.at[c, 'median'], d)} [{_number(stats.at[c, 'q1'], d)}, "
                        f"{_number(stats.at[c, 'q3'], d)}]",
                    )
                    for c in columns
                },
                "SMD": "",
            }
        )
        rows.append(
            {
                "Characteristic": "    missing, n",
                **{c: display[f"{name}|{MISSING}|{c}"] for c in columns},
                "SMD": "",
            }
        )
    return pd.DataFrame(rows, columns=["Characteristic", *columns, "SMD"])
