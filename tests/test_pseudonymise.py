"""hipdata pseudonymise: keyed HMAC pseudonyms, every table and row kept, key never written."""

from __future__ import annotations

import hashlib
import hmac

import pandas as pd
import pytest
from typer.testing import CliRunner

import hipdata
from hipdata import DataError
from hipdata.cli import app
from hipdata.pseudonymisation import KEY_ENV, pseudonyms, read_key
from hipdata.synth import generate

runner = CliRunner()
KEY = "4f1c0d9e8b7a6f5e4d3c2b1a09f8e7d6c5b4a3928170f6e5d4c3b2a1908f7e6d"  # 64 hex digits
OTHER_KEY = "0123456789abcdef0123456789abcdef"


def cohort_folder(folder, *, formats=None):
    """A synthetic cohort, with one table as xlsx and one as Parquet, an unknown patient id in
    exercises, a bad date (kept, not validated away) and a notes column."""
    tables = {name: table.copy() for name, table in generate(20, seed=5).tables.items()}
    exercises = tables["exercises"]
    exercises.loc[exercises.index[0], "patient_id"] = "GHOST-1"  # unknown in patients
    exercises["date"] = exercises["date"].dt.strftime("%Y-%m-%d")
    exercises.loc[exercises.index[1], "date"] = "31/02/2026"  # the loader would quarantine it
    tables["patients"]["notes"] = "called " + tables["patients"]["patient_id"] + " at home"
    folder.mkdir()
    formats = formats or {"outcomes": "xlsx", "activity": "parquet"}
    for name, table in tables.items():
        kind = formats.get(name, "csv")
        if kind == "xlsx":
            table.to_excel(folder / f"{name}.xlsx", index=False)
        elif kind == "parquet":
            table.to_parquet(folder / f"{name}.parquet", index=False)
        else:
            table.to_csv(folder / f"{name}.csv", index=False, date_format="%Y-%m-%d")
    (folder / "README.txt").write_text("not a table")
    return folder, tables


def all_bytes(folder) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file())


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return cohort_folder(tmp_path_factory.mktemp("ps") / "data")


def test_pseudonym_matches_an_independent_hmac():
    # R 4.x digest: substr(hmac("0123456789abcdef0123456789abcdef", "patient:P001",
    #   "sha256"), 1, 16) == "52491203b0667be4"
    assert pseudonyms(pd.Series(["P001"]), OTHER_KEY.encode()).tolist() == ["P-52491203b0667be4"]
    expected = hmac.new(KEY.encode(), b"clinician:T9", hashlib.sha256).hexdigest()[:16]
    assert pseudonyms(pd.Series(["T9"]), KEY.encode(), "clinician").tolist() == [f"CL-{expected}"]


def test_no_original_id_in_any_output_and_every_row_kept(tmp_path, source):
    folder, tables = source
    out = tmp_path / "out"
    report = hipdata.pseudonymise(folder, out, key=KEY, clinicians=True)
    written = all_bytes(out)
    ids = set(tables["patients"]["patient_id"]) | {"GHOST-1"}
    clinicians = set(tables["patients"]["clinician_id"].dropna())
    for value in ids | clinicians:
        assert value.encode() not in written, value
    assert KEY.encode() not in written
    assert KEY[:16].encode() not in written
    counts = report.tables.set_index("table")["rows"]
    for name, table in tables.items():
        assert counts[name] == len(table), name
        assert len(pd.read_csv(out / f"{name}.csv", dtype=str)) == len(table), name
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{name}.csv" for name in tables] + ["pseudonymise_report.csv"]
    )
    assert report.ignored_files == ["README.txt"]
    # the notes column (free text naming the patient) is dropped and reported, never silently
    assert report.tables.set_index("table").loc["patients", "dropped_columns"] == "notes"
    assert "notes" not in pd.read_csv(out / "patients.csv").columns


def test_ids_replaced_consistently_across_tables(tmp_path, source):
    folder, tables = source
    out = tmp_path / "out"
    hipdata.pseudonymise(folder, out, key=KEY)
    patients = pd.read_csv(out / "patients.csv", dtype=str)
    expected = pseudonyms(tables["patients"]["patient_id"], KEY.encode()).tolist()
    assert patients["patient_id"].tolist() == expected  # same rows, same order
    assert patients["patient_id"].str.fullmatch(r"P-[0-9a-f]{16}").all()
    for name in ("exercises", "activity", "outcomes", "treatments"):
        ids = set(pd.read_csv(out / f"{name}.csv", dtype=str)["patient_id"])
        known = ids & set(patients["patient_id"])
        assert known, name
    ghost = pseudonyms(pd.Series(["GHOST-1"]), KEY.encode()).iloc[0]
    exercises = pd.read_csv(out / "exercises.csv", dtype=str, keep_default_na=False)
    assert exercises["patient_id"].iloc[0] == ghost  # unknown ids are replaced too
    assert exercises["date"].iloc[1] == "31/02/2026"  # a bad row is kept as it was
    # clinician ids stay without --clinicians
    assert set(patients["clinician_id"].dropna()) <= set(tables["patients"]["clinician_id"])
    # the pseudonymised folder loads like the original: same rows kept and quarantined
    original = hipdata.load(folder, today="2026-11-27").load_report
    again = hipdata.load(out, today="2026-11-27").load_report
    columns = ["table", "rows_read", "rows_kept", "rows_quarantined"]
    pd.testing.assert_frame_equal(original[columns], again[columns])


def test_same_key_same_result_other_key_other_result(tmp_path, source):
    folder, _ = source
    first, second, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    hipdata.pseudonymise(folder, first, key=KEY, clinicians=True)
    hipdata.pseudonymise(folder, second, key=KEY, clinicians=True)
    hipdata.pseudonymise(folder, other, key=OTHER_KEY, clinicians=True)
    assert all_bytes(first) == all_bytes(second)
    a = pd.read_csv(first / "patients.csv", dtype=str)
    c = pd.read_csv(other / "patients.csv", dtype=str)
    assert not set(a["patient_id"]) & set(c["patient_id"])
    assert not set(a["clinician_id"].dropna()) & set(c["clinician_id"].dropna())


def test_cli_with_key_file_and_environment(tmp_path, source, monkeypatch):
    folder, tables = source
    key_file = tmp_path / "pseudonym.key"
    key_file.write_text(KEY + "\n")  # a trailing newline is not part of the key
    result = runner.invoke(
        app,
        ["pseudonymise", str(folder), "--out", str(tmp_path / "f"), "--key-file", str(key_file)],
    )
    assert result.exit_code == 0, result.output
    assert KEY not in result.output
    monkeypatch.setenv(KEY_ENV, KEY)
    result = runner.invoke(app, ["pseudonymise", str(folder), "--out", str(tmp_path / "e")])
    assert result.exit_code == 0, result.output
    assert all_bytes(tmp_path / "f") == all_bytes(tmp_path / "e")


@pytest.mark.parametrize(
    ("content", "message"),
    [("", "is empty"), ("\n", "is empty"), ("short-key-123", "too short (13 bytes")],
)
def test_empty_or_short_key_is_refused_with_the_fix(tmp_path, source, content, message):
    key_file = tmp_path / "k"
    key_file.write_text(content)
    result = runner.invoke(
        app,
        ["pseudonymise", str(source[0]), "--out", str(tmp_path / "o"), "--key-file", str(key_file)],
    )
    assert result.exit_code == 2
    assert message in result.output and "secrets.token_hex" in result.output
    if content.strip():
        assert content.strip() not in result.output  # the key is never echoed
    assert not (tmp_path / "o").exists()


def test_missing_key_is_refused(monkeypatch, tmp_path, source):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(DataError, match="no key"):
        hipdata.pseudonymise(source[0], tmp_path / "o")
    with pytest.raises(DataError, match="the output folder is the data folder"):
        hipdata.pseudonymise(source[0], source[0], key=KEY)


def test_free_text_condition_is_refused_or_dropped(tmp_path):
    folder, _ = cohort_folder(tmp_path / "data", formats={})
    patients = pd.read_csv(folder / "patients.csv", dtype=str)
    patients.loc[2, "condition"] = "hip OA, lives with daughter Anna (tel. 0123)"
    patients.to_csv(folder / "patients.csv", index=False)
    with pytest.raises(DataError, match=r"free text in rows 4\b"):
        hipdata.pseudonymise(folder, tmp_path / "o", key=KEY)
    assert not (tmp_path / "o").exists()
    report = hipdata.pseudonymise(folder, tmp_path / "o", key=KEY, drop_columns=["condition"])
    assert report.tables.set_index("table").loc["patients", "dropped_columns"] == "condition|notes"
    kept = hipdata.pseudonymise(
        folder, tmp_path / "k", key=KEY, keep_columns=["notes"], drop_columns=["condition"]
    )
    assert kept.tables.set_index("table").loc["patients", "dropped_columns"] == "condition"


def test_read_key_strips_whitespace_only():
    assert read_key(key=f"  {KEY}\r\n") == KEY.encode()
    with pytest.raises(DataError, match="not both"):
        read_key(key=KEY, key_file="x")


def test_a_collision_stops_the_run_and_writes_nothing(tmp_path, source, monkeypatch):
    import hipdata.pseudonymisation as module

    # one hex digit leaves 16 possible pseudonyms for 21 distinct ids: a collision is certain
    monkeypatch.setattr(module, "PSEUDONYM_HEX_DIGITS", 1)
    with pytest.raises(DataError, match="share a pseudonym"):
        hipdata.pseudonymise(source[0], tmp_path / "o", key=KEY)
    assert not (tmp_path / "o").exists()
