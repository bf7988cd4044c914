"""REDCap importer: template round trip, both export and dictionary forms, bad rows, mapping."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hipdata
from hipdata.errors import DataError
from hipdata.metrics import compute_all
from hipdata.sources import redcap
from hipdata.synth import write_cohort

sys.path.insert(0, str(Path(__file__).parent))
from redcap_export import write_template_export  # noqa: E402

DATA = Path(__file__).parent / "data" / "sources" / "redcap"
TODAY = "2026-11-28"


def _read(name: str, **options) -> redcap.ImportResult:
    return redcap.read(DATA / name, today=TODAY, **options)


def _reasons(result) -> dict[int, tuple[str, str, str]]:
    q = result.quarantine
    return {int(r.source_row): (r.column, r.value, r.reason) for r in q.itertuples(index=False)}


# --------------------------------------------------------------------------- the template


def test_template_dictionary_passes_redcap_rules_and_lists_the_catalogue():
    assert redcap.check_dictionary(redcap.TEMPLATE_DICTIONARY).empty
    fields = redcap.read_dictionary(redcap.TEMPLATE_DICTIONARY)
    catalogue = hipdata.catalogue.load_catalogue()
    assert list(fields["ex_exercise"].choices) == catalogue["id"].tolist()
    forms = {f.form for f in fields.values()}
    assert forms == {
        "enrolment",
        "discharge",
        "exercise_log",
        "pain_diary",
        "activity",
        "treatment",
        "questionnaires",
    }
    designation = pd.read_csv(redcap.TEMPLATE / "hipdata_instrument_designation.csv")
    assert set(designation["form"]) == forms


def test_check_dictionary_reports_broken_rules(tmp_path):
    bad = tmp_path / "dd.csv"
    bad.write_text(
        "field_name,form_name,field_type,field_label,select_choices_or_calculations\n"
        "record_id,enrol,text,ID,\n"
        "Age,enrol,text,Age,\n"
        "sex,enrol,radio,Sex,Male | Female\n"
        'sex,enrol,dropdown,Sex again,"1, a | 1, b"\n'
        "pain,enrol,number,Pain,\n"
        'tx,enrol,checkbox,Tx,"a b, x"\n'
    )
    problems = redcap.check_dictionary(bad)
    got = list(problems.itertuples(index=False, name=None))
    assert (3, "Age", "field name must be lower-case letters, digits and _ (max 100)") in got
    assert (4, "sex", "choices must be written 'code, label | code, label'") in got
    assert (5, "sex", "field name already used in row 4") in got
    assert (5, "sex", "choice codes must be unique and not empty") in got
    assert any(r[0] == 6 and "field type 'number'" in r[2] for r in got)
    assert (7, "tx", "checkbox code 'a b' must be letters, digits and _") in got


def test_parse_choices_keeps_commas_in_labels():
    assert redcap.parse_choices("0, No | 1, Yes, daily") == {"0": "No", "1": "Yes, daily"}


# the fixture's rows (header = row 1): see tests/data/sources/redcap/README.md
EXPECTED_QUARANTINE = {
    10: (
        "record_id",
        "P1",
        "nothing to import: no value in the fields the mapping reads (event therapy_arm_1, "
        "instrument treatment)",
    ),
    14: ("ex_date", "2026-31-03", "impossible date (no such day)"),
    15: ("outcomes.score", "12", "score outside the measure's range 0 to 10 (never clipped)"),
    17: ("record_id", "P3", "record P3 has no enrolment (no patients data for it)"),
    18: (
        "record_id",
        "P1",
        "duplicate of row 6 (same record, event, repeating instrument and instance)",
    ),
    19: (
        "pain_diary.date",
        "2026-03-10",
        "pain diary entry without an exercise session of this record on that date",
    ),
}


@pytest.mark.parametrize(
    "name", ["template_records_raw.csv", "template_records_labels.csv", "template_records_api.json"]
)
def test_template_export_every_row_accounted_for(name):
    result = _read(name)
    report = result.report.iloc[0]
    # 19 data rows in each form of the export (tests/data/sources/redcap/README.md)
    assert (report["read"], report["kept"], report["quarantined"]) == (19, 11, 8)
    got = _reasons(result)
    offset = -1 if name.endswith(".json") else 0  # JSON rows are record numbers (1 = first)
    for row, (column, value, reason) in EXPECTED_QUARANTINE.items():
        if offset:  # the duplicate's first copy is record 5 of the JSON
            reason = reason.replace("row 6", "row 5")
        assert got[row + offset] == (column, value, reason)
    column, value, reason = got[13 + offset]
    assert (column, value) == ("ex_exercise", "bridge_lodaed")
    assert reason.startswith("bridge_lodaed is not a choice of ex_exercise (codes: ")
    column, value, reason = got[16 + offset]
    assert column == "redcap_event_name"
    assert value == ("Follow-up" if "labels" in name else "followup_arm_1")
    assert reason.startswith(f"unknown event {value} (the mapping's events: enrolment_arm_1")


def test_template_export_values():
    tables = _read("template_records_raw.csv").tables
    patients = tables["patients"].set_index("patient_id")
    # choice codes kept as codes where the mapping says so; yesno -> true/false
    assert patients.loc["P1", ["sex", "condition", "athlete", "discharge_reason"]].tolist() == [
        "F",
        "fai_syndrome",
        "false",
        "completed",
    ]
    assert patients.loc["P2", "athlete"] == "true"
    assert patients.loc["P2", "discharge_date"] == ""
    # the diary's pain_24h (2) is written onto the three sets of that session
    ex = tables["exercises"]
    assert ex.loc[ex["patient_id"] == "P1", "pain_24h"].tolist() == ["2", "2", "2"]
    assert ex.loc[ex["patient_id"] == "P2", "pain_24h"].tolist() == [""]
    # checkbox: one row per ticked box; the all-unticked incomplete form gives none
    assert tables["treatments"][["date", "treatment"]].values.tolist() == [
        ["2026-01-07", "soft_tissue"],
        ["2026-01-07", "education_activity"],
    ]
    # wide scores melted: 3 measures at baseline and at discharge
    out = tables["outcomes"].sort_values(["date", "measure"])
    assert out[["date", "measure", "score"]].values.tolist() == [
        ["2026-01-05", "hoos_pain", "50"],
        ["2026-01-05", "ihot12", "40"],
        ["2026-01-05", "nprs", "6"],
        ["2026-02-20", "hoos_pain", "70"],
        ["2026-02-20", "ihot12", "60"],
        ["2026-02-20", "nprs", "2"],
    ]


def test_labels_and_json_exports_give_the_same_tables_as_raw():
    raw = _read("template_records_raw.csv").tables
    for name in ("template_records_labels.csv", "template_records_api.json"):
        other = _read(name).tables
        assert other.keys() == raw.keys()
        for table in raw:
            pd.testing.assert_frame_equal(
                other[table].reset_index(drop=True), raw[table].reset_index(drop=True)
            )


def test_written_folder_loads_without_quarantine_and_reconciles(tmp_path):
    result = _read("template_records_raw.csv")
    result.write(tmp_path)
    report = pd.read_csv(tmp_path / "import_report.csv")
    assert (report["read"] == report["kept"] + report["quarantined"]).all()
    quarantine = pd.read_csv(tmp_path / "quarantine.csv")
    assert len(quarantine) == report["quarantined"].sum() == 8
    ds = hipdata.load(tmp_path, today=TODAY)
    assert ds.quarantine.empty
    change = compute_all(ds)["outcome_change"].set_index(["patient_id", "measure"])
    # P1: nprs 6 -> 2 (improvement 4 >= 2), hoos_pain 50 -> 70 (20 >= 10), ihot12 40 -> 60
    assert change.loc[("P1", "nprs"), ["improvement", "responder"]].tolist() == [4.0, True]
    assert change.loc[("P1", "hoos_pain"), "improvement"] == 20.0
    assert change.loc[("P1", "ihot12"), ["improvement", "responder"]].tolist() == [20.0, True]
    columns = pd.read_csv(tmp_path / "import_columns.csv", keep_default_na=False)
    header = pd.read_csv(DATA / "template_records_raw.csv", nrows=0).columns.tolist()
    assert columns["column"].tolist() == header  # every column accounted for
    assert (columns["used_as"] != "").all()


# --------------------------------------------------------------------------- round trip


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cohort")
    write_cohort(folder, 25, seed=7)
    export = write_template_export(folder, folder.parent / "export.csv")
    imported = tmp_path_factory.mktemp("imported")
    result = redcap.read(export)
    result.write(imported)
    return folder, imported, result


def test_round_trip_demo_cohort_gives_identical_metrics(cohort):
    folder, imported, result = cohort
    assert result.quarantine.empty
    original = compute_all(hipdata.load(folder))
    again = compute_all(hipdata.load(imported))
    keys = {
        "sets": ["patient_id", "date", "exercise", "set"],
        "sessions": ["patient_id", "date"],
        "progressions": ["patient_id", "family", "date"],
        "weekly_load": ["patient_id", "week", "family"],
        "patient_summary": ["patient_id"],
        "outcome_change": ["patient_id", "measure"],
    }
    for table, key in keys.items():
        a = original[table].drop(columns=["source_file", "source_row"], errors="ignore")
        b = again[table].drop(columns=["source_file", "source_row"], errors="ignore")
        assert len(a) > 0
        pd.testing.assert_frame_equal(
            a.sort_values(key).reset_index(drop=True),
            b.sort_values(key).reset_index(drop=True),
            obj=table,
        )


# --------------------------------------------------------------------------- a team's project


def test_team_project_with_own_fields_and_custom_measure():
    result = _read(
        "team_records_raw.csv",
        dictionary=DATA / "team_dictionary_api.csv",
        mapping=DATA / "team_mapping.toml",
        measures=DATA / "team_measures.toml",
    )
    assert result.report[["read", "kept", "quarantined"]].values.tolist() == [[6, 5, 1]]
    assert _reasons(result) == {
        6: ("outcomes.score", "101", "score outside the measure's range 0 to 100 (never clipped)")
    }
    patients = result.tables["patients"].set_index("patient_id")
    # data access group -> clinic; radio labels; checkbox column as a yes/no field: unticked on a
    # complete form is "no" (S2), unticked on an incomplete form (S4) is missing
    assert patients["clinic_id"].tolist() == ["north", "south", "south"]
    assert patients["sex"].tolist() == ["Female", "Male", "Female"]
    assert patients["athlete"].tolist() == ["true", "false", ""]
    assert "exercises" not in result.tables  # outcome-only project


def test_team_project_outcome_only_metrics_with_custom_mcid(tmp_path):
    result = _read(
        "team_records_raw.csv",
        dictionary=DATA / "team_dictionary_api.csv",
        mapping=DATA / "team_mapping.toml",
        measures=DATA / "team_measures.csv",
    )
    result.write(tmp_path)
    ds = hipdata.load(tmp_path, today=TODAY, measures=DATA / "team_measures.csv")
    tables = compute_all(ds)
    change = tables["outcome_change"].set_index(["patient_id", "measure"])
    # hip_vas lower is better, MCID 20 points or 30 %: S1 70 -> 40 = 30 (responder);
    # S2 60 -> 50 = 10 points, 16.7 % (not a responder)
    assert change.loc[("S1", "hip_vas"), ["improvement", "responder"]].tolist() == [30.0, True]
    assert change.loc[("S2", "hip_vas"), "improvement"] == 10.0
    assert not change.loc[("S2", "hip_vas"), "responder"]
    assert change.loc[("S2", "hip_vas"), "pct_improvement"] == pytest.approx(100 * 10 / 60)
    summary = tables["patient_summary"].set_index("patient_id")
    assert summary["sessions"].tolist() == [0, 0, 0]
    assert summary["attendance"].isna().all()  # no exercise data: unknown, not 0


def test_unknown_measure_in_mapping_is_a_clear_error():
    with pytest.raises(DataError, match="(?s)unknown measure.*hip_vas.*--measures"):
        _read(
            "team_records_raw.csv",
            dictionary=DATA / "team_dictionary_api.csv",
            mapping=DATA / "team_mapping.toml",
        )


@pytest.mark.parametrize(
    ("mapping", "fragment"),
    [
        ({"patients": {"clinic_id": "no_such_field"}}, "no_such_field"),
        ({"patients": {"shoe_size": "gender"}}, "unknown key(s) shoe_size"),
        ({"exercise": {}}, "unknown section"),
        (
            {"exercises": {"instrument": "baseline", "date": "bl_date"}},
            "[exercises] names no exercise field",
        ),
        (
            {"patients": {"clinic_id": "redcap_data_access_group"}},
            "[patients] names no start_date field",
        ),
        ({"outcomes": {"date": "bl_date"}}, "[outcomes] maps no measures"),
    ],
)
def test_bad_mappings_raise_one_clear_error(mapping, fragment):
    with pytest.raises(DataError, match=re.escape(fragment)):
        _read("team_records_raw.csv", dictionary=DATA / "team_dictionary_api.csv", mapping=mapping)


def test_web_and_api_dictionary_forms_read_the_same(tmp_path):
    api = pd.read_csv(DATA / "team_dictionary_api.csv", dtype=str, keep_default_na=False)
    web = api.rename(columns=redcap.DICTIONARY_COLUMNS)
    web.to_csv(tmp_path / "web.csv", index=False)
    (tmp_path / "api.json").write_text(json.dumps(api.to_dict("records")))
    expected = redcap.read_dictionary(DATA / "team_dictionary_api.csv")
    assert redcap.read_dictionary(tmp_path / "web.csv") == expected
    assert redcap.read_dictionary(tmp_path / "api.json") == expected


def test_conflicting_patient_values_across_events_are_quarantined(tmp_path):
    text = (
        (DATA / "team_records_raw.csv")
        .read_text()
        .replace("S1,week_12_arm_1,north,,,,,,", "S1,week_12_arm_1,north,2,,,,,")
    )
    (tmp_path / "records.csv").write_text(text)
    mapping = redcap.read_mapping(DATA / "team_mapping.toml")
    mapping["patients"]["events"] = ["baseline_arm_1", "week_12_arm_1"]
    result = redcap.read(
        tmp_path / "records.csv",
        DATA / "team_dictionary_api.csv",
        mapping=mapping,
        measures=DATA / "team_measures.toml",
        today=TODAY,
    )
    got = _reasons(result)
    assert got[3] == ("record", "Male", "sex conflicts with row 2 (Female)")


# --------------------------------------------------------------------------- fuzz


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    edits=st.lists(
        st.tuples(
            st.integers(0, 18),
            st.integers(0, 60),
            st.sampled_from(["", "x", "2026-02-30", "-1", "999", "1", "0", "P9", "a,b", "\n"]),
        ),
        max_size=12,
    )
)
def test_fuzz_random_corruption_never_crashes_and_reconciles(tmp_path, edits):
    frame = pd.read_csv(DATA / "template_records_raw.csv", dtype=str, keep_default_na=False)
    for row, column, value in edits:
        frame.iat[row, column % frame.shape[1]] = value
    path = tmp_path / "fuzz.csv"
    frame.to_csv(path, index=False)
    try:
        result = redcap.read(path, today=TODAY)
    except DataError:
        return  # e.g. the record id header itself corrupted: one clear error is fine
    result.check()
    report = result.report.iloc[0]
    assert report["read"] == report["kept"] + report["quarantined"]
    assert report["read"] == len(pd.read_csv(path, dtype=str, keep_default_na=False))


def test_cli_import_redcap_template_without_mapping(tmp_path):
    from typer.testing import CliRunner

    from hipdata.cli import app

    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["import", "redcap", str(DATA / "template_records_labels.csv"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    report = pd.read_csv(out / "import_report.csv")
    assert report[["read", "kept", "quarantined"]].values.tolist() == [[19, 11, 8]]
    assert sorted(p.name for p in out.glob("*.csv")) == [
        "activity.csv",
        "exercises.csv",
        "import_columns.csv",
        "import_notes.csv",
        "import_report.csv",
        "outcomes.csv",
        "patients.csv",
        "quarantine.csv",
        "treatments.csv",
    ]
    bad = CliRunner().invoke(
        app,
        ["import", "redcap", str(DATA / "team_records_raw.csv"), "--out", str(out)],
    )
    assert bad.exit_code == 2  # the team's export does not match the template's mapping
    assert "record id column 'record_id'" in bad.output


def test_enrolment_rejected_by_the_loader_quarantines_the_record(tmp_path):
    frame = pd.read_csv(DATA / "template_records_raw.csv", dtype=str, keep_default_na=False)
    frame.loc[0, "age_years"] = "130"  # row 2: P1's enrolment
    frame.to_csv(tmp_path / "records.csv", index=False)
    result = redcap.read(tmp_path / "records.csv", today=TODAY)
    got = _reasons(result)
    assert got[2] == ("patients.age_years", "130", "age_years above 110 is impossible")
    # row 11 (discharge event) is part of the same patients row: rejected with it
    assert got[11] == got[2]
    for row in (3, 4, 5, 6, 7, 8, 9):  # every other kept row of P1
        assert got[row] == (
            "record_id",
            "P1",
            "record P1 has its enrolment quarantined (row 2: age_years above 110 is impossible)",
        )
    assert result.tables["patients"]["patient_id"].tolist() == ["P2"]
    assert result.report[["read", "kept", "quarantined"]].values.tolist() == [[19, 2, 17]]


def test_other_project_without_mapping_is_told_to_write_one():
    with pytest.raises(DataError, match="not hipdata's REDCap template") as error:
        _read("team_records_raw.csv", dictionary=DATA / "team_dictionary_api.csv")
    assert "--mapping" in str(error.value)
