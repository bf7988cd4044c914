"""``hipdata metrics`` in chunks of patients in worker processes (issue 11, item 5) writes the
same files as the one-process run: values, dtypes, columns, row order, quarantine, load report.

The reference is the one-process path itself (``hipdata.io.loader.load`` +
``hipdata.metrics.compute_all`` + ``write_tables``, which the rest of the suite checks against
hand-computed values): a chunked run is right exactly when its files equal that run's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from typer.testing import CliRunner

from hipdata.cli import app
from hipdata.metrics.chunked import _assign_chunks, compute_chunked

runner = CliRunner()
TODAY = "2026-11-28"


def _hostile(folder: Path, *, seed: int = 5, n_patients: int = 60) -> Path:
    """A synthetic cohort made hostile: exercise rows in random order (each patient's rows
    split across the file), rows of unknown patients, duplicate sets, bad pain scores, ids
    written with surrounding spaces (the reader strips them: the same patient), a duplicated
    and a quarantined patient, an empty id and a malformed line."""
    from hipdata.synth import write_cohort

    write_cohort(folder, n_patients, seed=seed)
    rng = np.random.default_rng(seed)
    patients = pd.read_csv(folder / "patients.csv", dtype=str, keep_default_na=False)
    extra = patients.iloc[[3, 10]].copy()
    extra.iloc[1, patients.columns.get_loc("start_date")] = "31/02/2026"  # impossible date
    extra.iloc[1, 0] = "P09999"  # a patient quarantined in the patients table
    empty = patients.iloc[[0]].copy()
    empty.iloc[0, 0] = ""
    patients = pd.concat([patients, extra, empty], ignore_index=True)  # P00004 twice
    # in no particular order: patient_summary keeps the file's order, the other tables sort
    patients.iloc[rng.permutation(len(patients))].to_csv(folder / "patients.csv", index=False)

    sets = pd.read_csv(folder / "exercises.csv", dtype=str, keep_default_na=False)
    ids = sets["patient_id"].unique()
    duplicates = sets.iloc[rng.choice(len(sets), 15, replace=False)]
    unknown = sets.iloc[rng.choice(len(sets), 12, replace=False)].assign(patient_id="Q77777")
    of_quarantined = sets.iloc[:5].assign(patient_id="P09999")
    spaced = sets.iloc[rng.choice(len(sets), 20, replace=False)].copy()
    spaced["patient_id"] = "  " + spaced["patient_id"] + " "
    sets = sets.drop(spaced.index)
    bad_pain = rng.choice(len(sets), 10, replace=False)
    sets.iloc[bad_pain, sets.columns.get_loc("pain_during")] = [
        "11",
        "-1",
        "abc",
        "7.5.1",
        "99",
    ] * 2
    sets = pd.concat([sets, duplicates, unknown, of_quarantined, spaced], ignore_index=True)
    sets = sets.iloc[rng.permutation(len(sets))]
    text = sets.to_csv(index=False, lineterminator="\n")
    lines = text.splitlines(keepends=True)
    lines.insert(40, "P00002,2026-01-05,clamshell,1,10,,0,2,2,3,10,,stray,cells\n")  # malformed
    (folder / "exercises.csv").write_text("".join(lines))

    outcomes = pd.read_csv(folder / "outcomes.csv", dtype=str, keep_default_na=False)
    outcomes = pd.concat(
        [outcomes, outcomes.iloc[:3].assign(patient_id="Q77777"), outcomes.iloc[:2]],
        ignore_index=True,
    )
    outcomes.iloc[rng.permutation(len(outcomes))].to_csv(folder / "outcomes.csv", index=False)
    assert len(ids) >= 50
    return folder


def _one_process(folder: Path, out: Path, fmt: str) -> None:
    from hipdata.cli import _compute_metrics
    from hipdata.io.loader import load
    from hipdata.protocol import Protocol

    dataset = load(folder, today=TODAY)
    _compute_metrics(dataset, out, fmt, protocol=Protocol())
    return dataset


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, keep_default_na=False, dtype=str)


def _assert_same_folders(one: Path, chunked: Path) -> None:
    names = sorted(p.name for p in one.iterdir())
    assert names == sorted(p.name for p in chunked.iterdir())  # no staging or scratch left
    for name in names:
        if name.endswith(".csv"):  # the same bytes: the same text a user opens
            assert (one / name).read_bytes() == (chunked / name).read_bytes(), name
        assert_frame_equal(_read(one / name), _read(chunked / name), check_exact=True, obj=name)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    return _hostile(tmp_path_factory.mktemp("hostile") / "data")


def _as_parquet(folder: Path, out: Path) -> Path:
    """The cohort as typed Parquet files (numbers as numbers; the malformed CSV line, which a
    Parquet file cannot hold, is left out)."""
    out.mkdir()
    for path in folder.glob("*.csv"):
        frame = pd.read_csv(path, on_bad_lines="skip", dtype={"patient_id": str})
        frame.to_parquet(out / f"{path.stem}.parquet", index=False)
    return out


@pytest.mark.parametrize(
    "source, fmt", [("csv", "csv"), ("csv", "parquet"), ("parquet", "parquet")]
)
def test_chunked_files_equal_the_one_process_run(hostile, tmp_path, source, fmt):
    from hipdata.protocol import Protocol

    if source == "parquet":
        hostile = _as_parquet(hostile, tmp_path / "typed")
    dataset = _one_process(hostile, tmp_path / "one", fmt)
    result = compute_chunked(
        hostile,
        tmp_path / "chunked",
        fmt=fmt,
        protocol=Protocol(),
        workers=2,
        chunk_rows=1_500,  # about 8 500 set rows: 5 or more chunks
        extra_tables={"protocol": _protocol_table()},
        today=TODAY,
    )
    assert result.chunks >= 5
    _assert_same_folders(tmp_path / "one", tmp_path / "chunked")
    # the hostile rows all reached the quarantine, once each
    quarantine = dataset.quarantine
    reasons = quarantine["reason"]
    assert reasons.str.startswith("unknown patient id").sum() == 12 + 3
    assert reasons.str.startswith("patient is quarantined").sum() == 5
    assert reasons.str.contains("duplicate of row").sum() >= 15 + 2 + 1
    assert reasons.str.contains("more cells than the header").sum() == (source == "csv")
    assert (quarantine["column"] == "pain_during").sum() >= 10
    assert_frame_equal(result.quarantine, quarantine, check_exact=True)
    # the load report reconciles and equals the one-process run's, row for row
    assert_frame_equal(result.load_report, dataset.load_report, check_exact=True)
    report = result.load_report
    assert (report["rows_read"] == report["rows_kept"] + report["rows_quarantined"]).all()
    # the spaced ids are the same patients: their sets are kept, not quarantined
    sets = _read(tmp_path / "one" / f"sets.{'csv' if fmt == 'csv' else 'parquet'}")
    assert not sets["patient_id"].astype(str).str.startswith(" ").any()


def _protocol_table():
    from hipdata.cli import _protocol_table
    from hipdata.protocol import Protocol

    return _protocol_table(Protocol())


def test_assign_chunks_keeps_patients_whole_and_ranges_sorted():
    ids = {
        "patients": pd.Series(["b", "a", "c", "d", "e"], dtype="category"),
        # "a": 4 rows, "b": 1, "d": 4, "x" (unknown to patients): 2; "c", "e": none
        "exercises": pd.Series(list("daxbadaxdda"), dtype="category"),
    }
    chunks = _assign_chunks(ids, chunk_rows=4)
    # sorted ids a(4) b(1) c(0) d(4) e(0) x(2); rows before each: 0 4 5 5 9 9, // 4 -> chunks
    # 0 1 1 1 2 2 (4, 5 and 2 exercise rows)
    by_id = dict(zip(ids["exercises"], chunks["exercises"], strict=True))
    assert by_id == {"a": 0, "b": 1, "d": 1, "x": 2}
    assert dict(zip(ids["patients"], chunks["patients"], strict=True)) == {
        "a": 0,
        "b": 1,
        "c": 1,
        "d": 1,
        "e": 2,
    }
    # one patient with more rows than a chunk stays whole; ids after the last set join it
    ids = {
        "patients": pd.Series(list("abc"), dtype="category"),
        "exercises": pd.Series(list("aaaaaaab"), dtype="category"),
    }
    chunks = _assign_chunks(ids, chunk_rows=3)
    assert chunks["exercises"].tolist() == [0] * 7 + [1]
    assert chunks["patients"].tolist() == [0, 1, 1]


@pytest.mark.parametrize("case", ["one_chunk", "one_patient", "no_exercises", "per_patient"])
def test_edge_cohorts(tmp_path, case):
    from hipdata.protocol import Protocol
    from hipdata.synth import write_cohort

    data = tmp_path / "data"
    write_cohort(data, 8, seed=11)
    if case == "one_patient":
        for table in ("patients", "exercises", "activity", "outcomes", "treatments"):
            frame = pd.read_csv(data / f"{table}.csv", dtype=str, keep_default_na=False)
            frame[frame["patient_id"] == "P00002"].to_csv(data / f"{table}.csv", index=False)
    if case == "no_exercises":
        (data / "exercises.csv").unlink()
    if case == "per_patient":  # one chunk per id, one of them of an id unknown to patients
        sets = pd.read_csv(data / "exercises.csv", dtype=str, keep_default_na=False)
        unknown = sets.iloc[:7].assign(patient_id="ZZ-unknown")
        pd.concat([unknown, sets], ignore_index=True).to_csv(data / "exercises.csv", index=False)
    _one_process(data, tmp_path / "one", "parquet")
    result = compute_chunked(
        data,
        tmp_path / "chunked",
        fmt="parquet",
        protocol=Protocol(),
        workers=2,
        chunk_rows=10**9 if case == "one_chunk" else 1,
        extra_tables={"protocol": _protocol_table()},
        today=TODAY,
    )
    # chunk_rows=1: every id with exercise rows starts a chunk (the patients + the unknown id)
    expected_chunks = 1
    if case == "per_patient":
        expected_chunks = pd.read_csv(data / "exercises.csv", dtype=str)["patient_id"].nunique()
        assert expected_chunks >= 6
    assert result.chunks == expected_chunks
    _assert_same_folders(tmp_path / "one", tmp_path / "chunked")


def test_cli_workers_two_equals_workers_one(hostile, tmp_path):
    one = runner.invoke(
        app,
        [
            "metrics",
            str(hostile),
            "--out",
            str(tmp_path / "a"),
            "--format",
            "parquet",
            "--workers",
            "1",
            "--dayfirst",
        ],
    )
    two = runner.invoke(
        app,
        [
            "metrics",
            str(hostile),
            "--out",
            str(tmp_path / "b"),
            "--format",
            "parquet",
            "--workers",
            "2",
            "--chunk-rows",
            "2000",
            "--dayfirst",
        ],
    )
    assert one.exit_code == 0, one.output
    assert two.exit_code == 0, two.output
    _assert_same_folders(tmp_path / "a", tmp_path / "b")
    # the same printed lines (rows per file, protocol, model warnings, summary)
    assert one.output.replace(str((tmp_path / "a").resolve()), "OUT") == two.output.replace(
        str((tmp_path / "b").resolve()), "OUT"
    )
    assert "Rows per file" in two.output and "patients," in two.output


def test_cli_input_error_is_the_same_message(tmp_path):
    from hipdata.synth import write_cohort

    data = tmp_path / "data"
    write_cohort(data, 6, seed=2)
    sets = pd.read_csv(data / "exercises.csv", dtype=str)
    sets.drop(columns=["date"]).to_csv(data / "exercises.csv", index=False)
    one = runner.invoke(app, ["metrics", str(data), "--out", str(tmp_path / "a"), "--workers", "1"])
    two = runner.invoke(
        app,
        [
            "metrics",
            str(data),
            "--out",
            str(tmp_path / "b"),
            "--workers",
            "2",
            "--chunk-rows",
            "50",
        ],
    )
    assert one.exit_code == two.exit_code == 2
    assert "lacks the required column(s) date" in two.output
    assert one.output == two.output


def _pieces(folder: Path, frames: list[pd.DataFrame]) -> list[tuple]:
    """Each frame as a worker hands it over: Arrow piece, CSV piece (fast writer), first row,
    rows, whole-number flags."""
    from hipdata.io.writers import csv_ready, write_csv_text
    from hipdata.metrics.chunked import _float_whole, _write_piece

    folder.mkdir()
    parts = []
    for number, frame in enumerate(frames):
        piece, csv = folder / f"{number}.arrow", folder / f"{number}.csv"
        _write_piece(frame, piece)
        write_csv_text(csv_ready(frame), csv)
        parts.append((piece, csv, frame.iloc[:1].copy(), len(frame), _float_whole(frame)))
    return parts


def _chunk_frames(case: str) -> list[pd.DataFrame]:
    """Chunks of one table that agree, or disagree in ways only known after later chunks."""

    def frame(ids, dose, count, count_dtype="int64"):
        return pd.DataFrame(
            {
                "patient_id": pd.array(ids, dtype="str"),
                "dose_kg": pd.array(dose, dtype="float64"),
                "sessions": pd.array(count, dtype=count_dtype),
            }
        )

    first = frame(["Ärzte-1", "P 2", "日本"], [2.0, np.nan, 4.0], [1, 2, 3])
    later = frame(["P3", "P3"], [5.0, 5.0], [7, 7])  # ties
    if case == "agree":
        return [first, later.iloc[:0], later, frame(["P4"], [np.nan], [0])]
    if case == "whole_then_fraction":  # CSV: "2" in the first chunk must become "2.0"
        return [first, later, frame(["P5"], [2.5], [1])]
    if case == "fraction_then_whole":  # the later chunk is re-formatted, no rewrite
        return [frame(["P5"], [2.5], [1]), first, later]
    if case == "dtype_later":  # a later chunk's count column is float (a NaN)
        return [first, later, frame(["P6"], [1.0], [np.nan], "float64")]
    if case == "empty":
        return [first.iloc[:0], later.iloc[:0]]
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case", ["agree", "whole_then_fraction", "fraction_then_whole", "dtype_later", "empty"]
)
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_stream_writes_what_waiting_for_every_chunk_writes(tmp_path, case, fmt):
    """The streamed table (written while later chunks run) equals the table written after the
    last chunk from all pieces (the rules the one-process equality above is proven for), and
    the stream gives up exactly when a later chunk changes what earlier rows should be."""
    from hipdata.metrics.chunked import _TableStream, _target, _write_csv, _write_parquet

    parts = _pieces(tmp_path / "pieces", _chunk_frames(case))
    heads, rows = [p[2] for p in parts], [p[3] for p in parts]
    target = _target(heads, rows)
    waited = tmp_path / f"waited.{fmt}"
    if fmt == "parquet":
        _write_parquet(waited, [p[0] for p in parts if p[3]] or [parts[0][0]], target)
    else:
        _write_csv(waited, [(p[0], p[1], p[2], p[4]) for p in parts if p[3]], target)
    stream = _TableStream(tmp_path / f"streamed.{fmt}", fmt)
    for part in parts:
        stream.append(*part)
    stream.close()
    broken = {"csv": ["whole_then_fraction", "dtype_later"], "parquet": ["dtype_later"]}[fmt]
    assert stream.complete == (case not in broken + ["empty"])
    if not stream.complete:
        return  # compute_chunked writes this table again with the functions above
    streamed = tmp_path / f"streamed.{fmt}"
    if fmt == "csv":
        assert streamed.read_bytes() == waited.read_bytes()
        if case == "fraction_then_whole":  # the whole table is not whole: "2.0", not "2"
            assert "Ärzte-1,2.0,1\n" in streamed.read_text(encoding="utf-8")
    assert_frame_equal(_read(streamed), _read(waited), check_exact=True)
    assert len(_read(streamed)) == sum(rows)


def test_model_error_is_raised_and_nothing_is_written(hostile, tmp_path, monkeypatch):
    """The pain-trajectory model is fitted in a thread while the last rows are written: its
    error still reaches the caller, and the output folder receives no table."""
    import hipdata.analysis.trajectories as trajectories

    def failing(*args, **kwargs):
        raise np.linalg.LinAlgError("singular matrix (planted)")

    # the fit from the chunks' per-patient pieces, and the fit from the sessions without them
    monkeypatch.setattr(trajectories, "fit_pain_trajectory", failing)
    monkeypatch.setattr(trajectories, "fit_pain_trajectory_pieces", failing)
    out = tmp_path / "chunked"
    with pytest.raises(np.linalg.LinAlgError, match="planted"):
        compute_chunked(hostile, out, fmt="parquet", workers=2, chunk_rows=2_000, today=TODAY)
    assert list(out.iterdir()) == []  # no table, no staging or scratch folder left


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_tables_written_again_from_all_chunks_equal_the_one_process_run(
    hostile, tmp_path, monkeypatch, fmt
):
    """When the chunks disagree (every stream forced to give up after its first chunk here),
    compute_chunked writes each table again from all the chunks' pieces: still the files of the
    one-process run."""
    from hipdata.metrics import chunked
    from hipdata.protocol import Protocol

    append = chunked._TableStream.append
    gave_up = []

    def give_up_after_first(self, *args):
        if self.appended:
            self.broken = True
            gave_up.append(self.path.name)
            return
        append(self, *args)

    monkeypatch.setattr(chunked._TableStream, "append", give_up_after_first)
    _one_process(hostile, tmp_path / "one", fmt)
    result = compute_chunked(
        hostile,
        tmp_path / "chunked",
        fmt=fmt,
        protocol=Protocol(),
        workers=2,
        chunk_rows=1_500,
        extra_tables={"protocol": _protocol_table()},
        today=TODAY,
    )
    assert result.chunks >= 5
    assert {"sets", "sessions", "weekly_load"} <= {name.split(".")[0] for name in gave_up}
    _assert_same_folders(tmp_path / "one", tmp_path / "chunked")


def test_model_is_fitted_from_the_workers_pieces(hostile, tmp_path, monkeypatch):
    """The workers hand over the pain-trajectory model's per-patient statistics: the parent
    never fits from the sessions (a fit from them fails here), and the model table is the
    one-process run's, to the byte."""
    import hipdata.analysis.trajectories as trajectories
    from hipdata.protocol import Protocol

    _one_process(hostile, tmp_path / "one", "csv")

    def from_sessions(*args, **kwargs):
        raise AssertionError("the parent fitted the model from the sessions")

    monkeypatch.setattr(trajectories, "fit_pain_trajectory", from_sessions)
    result = compute_chunked(
        hostile,
        tmp_path / "chunked",
        fmt="csv",
        protocol=Protocol(),
        workers=2,
        chunk_rows=1_500,
        extra_tables={"protocol": _protocol_table()},
        today=TODAY,
    )
    assert result.chunks >= 5 and result.model is not None
    _assert_same_folders(tmp_path / "one", tmp_path / "chunked")
