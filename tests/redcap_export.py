"""Write a hipdata data folder as a REDCap records export of hipdata's template (test helper).

The export is what REDCap's "CSV (raw data)" download of a project built from
``hipdata/data/redcap/hipdata_data_dictionary.csv`` looks like: one row per record and event for
the non-repeating forms, one row per instance of a repeating instrument, checkbox fields as
``field___code`` columns, a ``<form>_complete`` column per form (2 = complete).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hipdata.sources.redcap import TEMPLATE_DICTIONARY, _expected_columns, read_dictionary

FIELDS = read_dictionary(TEMPLATE_DICTIONARY)
HEADER = [
    "record_id",
    "redcap_event_name",
    "redcap_repeat_instrument",
    "redcap_repeat_instance",
] + [name for name, _ in _expected_columns(FIELDS) if name != "record_id"]
QUESTIONNAIRE = {
    "nprs": "q_nprs",
    "hoos_pain": "q_hoos_pain",
    "hoos_symptoms": "q_hoos_symptoms",
    "hoos_adl": "q_hoos_adl",
    "hoos_sport": "q_hoos_sport",
    "hoos_qol": "q_hoos_qol",
    "ihot12": "q_ihot12",
    "eq5d_index": "q_eq5d_index",
}


def _text(value) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def template_rows(folder: Path) -> list[dict]:
    """The export's rows (dicts of raw column -> text) for the data folder ``folder``."""
    read = lambda name: (  # noqa: E731
        pd.read_csv(folder / f"{name}.csv", dtype=str, keep_default_na=False)
        if (folder / f"{name}.csv").exists()
        else None
    )
    patients, exercises = read("patients"), read("exercises")
    activity, outcomes, treatments = read("activity"), read("outcomes"), read("treatments")
    rows: list[dict] = []

    def add(record, event, instrument="", instance="", **values):
        rows.append(
            {
                "record_id": record,
                "redcap_event_name": event,
                "redcap_repeat_instrument": instrument,
                "redcap_repeat_instance": str(instance) if instance != "" else "",
                **{k: _text(v) for k, v in values.items()},
            }
        )

    athlete = {"true": "1", "false": "0", "True": "1", "False": "0", "": ""}
    for p in patients.itertuples(index=False):
        add(
            p.patient_id,
            "enrolment_arm_1",
            clinic_id=p.clinic_id,
            clinician_id=p.clinician_id,
            sex=p.sex,
            age_years=p.age_years,
            condition=p.condition,
            athlete=athlete[p.athlete],
            start_date=p.start_date,
            planned_sessions_per_week=p.planned_sessions_per_week,
            enrolment_complete="2",
        )
    groups = {}
    if outcomes is not None:
        for (pid, date), group in outcomes.groupby(["patient_id", "date"], sort=True):
            groups.setdefault(pid, []).append(
                (date, dict(zip(group.measure, group.score, strict=True)))
            )
    discharge = patients.set_index("patient_id")[["discharge_date", "discharge_reason"]]
    for pid in patients["patient_id"]:
        visits = groups.get(pid, [])
        q = lambda date, scores: {  # noqa: E731
            "q_date": date,
            **{QUESTIONNAIRE[m]: v for m, v in scores.items()},
            "questionnaires_complete": "2",
        }
        if visits:
            add(pid, "baseline_arm_1", **q(*visits[0]))
        for number, visit in enumerate(visits[1:-1], start=1):
            add(pid, "therapy_arm_1", "questionnaires", number, **q(*visit))
        last = q(*visits[-1]) if len(visits) > 1 else {}
        date, reason = discharge.loc[pid]
        values = {}
        if date or reason:
            values = {
                "discharge_date": date,
                "discharge_reason": reason,
                "discharge_complete": "2",
            }
        if values or last:
            add(pid, "discharge_arm_1", **values, **last)
    if exercises is not None:
        exercises = exercises.sort_values(["patient_id", "date"], kind="stable")
        instance = exercises.groupby("patient_id").cumcount() + 1
        for row, number in zip(exercises.itertuples(index=False), instance, strict=True):
            add(
                row.patient_id,
                "therapy_arm_1",
                "exercise_log",
                number,
                ex_date=row.date,
                ex_exercise=row.exercise,
                ex_set=row.set,
                ex_reps=row.reps,
                ex_hold_s=row.hold_s,
                ex_load_kg=row.load_kg,
                ex_pain_during=row.pain_during,
                ex_prescribed_sets=row.prescribed_sets,
                ex_prescribed_reps=row.prescribed_reps,
                ex_prescribed_hold_s=row.prescribed_hold_s,
                exercise_log_complete="2",
            )
        diary = exercises[exercises["pain_24h"] != ""].drop_duplicates(["patient_id", "date"])
        diary_instance = diary.groupby("patient_id").cumcount() + 1
        for row, number in zip(diary.itertuples(index=False), diary_instance, strict=True):
            add(
                row.patient_id,
                "therapy_arm_1",
                "pain_diary",
                number,
                pd_date=row.date,
                pd_pain_24h=row.pain_24h,
                pain_diary_complete="2",
            )
    if activity is not None:
        number = activity.groupby("patient_id").cumcount() + 1
        for row, n in zip(activity.itertuples(index=False), number, strict=True):
            add(
                row.patient_id,
                "therapy_arm_1",
                "activity",
                n,
                act_date=row.date,
                act_cardio_min=row.cardio_min,
                act_strength_sessions=row.strength_sessions,
                activity_complete="2",
            )
    if treatments is not None:
        days = treatments.groupby(["patient_id", "date"], sort=True)["treatment"].agg(set)
        number = days.groupby(level=0).cumcount() + 1
        codes = list(FIELDS["tx_given"].choices)
        for ((pid, date), given), n in zip(days.items(), number, strict=True):
            boxes = {f"tx_given___{c}": "1" if c in given else "0" for c in codes}
            add(pid, "therapy_arm_1", "treatment", n, tx_date=date, **boxes, treatment_complete="2")
    return rows


def write_template_export(folder: Path, path: Path) -> Path:
    """Write ``folder`` (a hipdata data folder) as a raw CSV export of the template."""
    frame = pd.DataFrame(template_rows(Path(folder)), columns=HEADER).astype(object).fillna("")
    frame.to_csv(path, index=False, lineterminator="\n")
    return path
