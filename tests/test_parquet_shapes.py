"""Parquet files written by other tools, in other shapes, load exactly as our own files do.

Our cohorts are written by pandas from ``hipdata synth``: sorted by patient, dates as
``timestamp[ns]``, text as ``large_string``. A registry's export may come from pyarrow, with the
pandas index, shuffled rows, dictionary text, ``date32`` or zoned time stamps, narrow or
float32 numbers, tiny row groups and extra columns of unique ids. Each shape of the hostile
cohort of ``test_io_typed_fastpath`` (values out of range, a time of day, an 1850 date, an
unknown exercise, missing scores) must give the Dataset of the plain file: every table, the
quarantine and the load report. The fast paths of ``hipdata.io.readers`` for such shapes are
also checked against the plain expressions they replace.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_io_typed_fastpath import _hostile

import hipdata
from hipdata.io import readers
from hipdata.io.readers import decode_cells, read_raw
from hipdata.synth import generate

TODAY = "2027-01-01"
TABLES = ("patients", "sets", "activity", "outcomes", "treatments")
SEED = 3


def _order(n: int) -> np.ndarray:
    """A shuffled row order in which the hostile rows (the first 20) keep their relative order:
    of two duplicate rows the loader keeps the first in the file, so their order decides which
    one is quarantined."""
    order = np.random.default_rng(SEED).permutation(n)
    hostile = order < 20
    order[hostile] = np.sort(order[hostile])
    return order


def _shuffle(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.take(_order(len(frame)))


def _to_arrow(frame: pd.DataFrame) -> pa.Table:
    """As pyarrow writes a frame itself: no pandas metadata, text as ``string``."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    schema = pa.schema(
        [
            pa.field(f.name, pa.string() if pa.types.is_large_string(f.type) else f.type)
            for f in table.schema
        ]
    )
    return table.cast(schema).replace_schema_metadata(None)


def _dates(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    frame = frame.copy()
    for column in ("date", "start_date", "discharge_date"):
        if column not in frame:
            continue
        if kind == "date32":  # whole days only: a time of day stays a time stamp
            if (frame[column].dropna() == frame[column].dropna().dt.normalize()).all():
                days = pa.array(frame[column].to_numpy(), type=pa.timestamp("ns"))
                frame[column] = pd.Series(
                    pd.arrays.ArrowExtensionArray(days.cast(pa.date32())), index=frame.index
                )
        elif kind == "tz":
            frame[column] = frame[column].dt.tz_localize("Europe/Copenhagen")
        else:
            frame[column] = frame[column].astype(f"datetime64[{kind}]")
    return frame


def _narrow(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for column in frame.columns:
        if pd.api.types.is_integer_dtype(frame[column].dtype):
            frame[column] = frame[column].astype("Int16")
        elif pd.api.types.is_float_dtype(frame[column].dtype):
            frame[column] = frame[column].astype("float32")
    return frame


def _extra(frame: pd.DataFrame) -> pd.DataFrame:
    """A unique row id, a time stamp with milliseconds and a note: columns the loader ignores."""
    frame = frame.copy()
    n = len(frame)
    frame["row_id"] = np.arange(n, dtype=np.int64) * 7919 % (n + 101)
    frame["logged_at"] = pd.Timestamp("2026-03-01 08:00") + pd.to_timedelta(
        np.arange(n) * 1234567, unit="ms"
    )
    frame["device_score"] = np.random.default_rng(SEED).normal(size=n)
    frame["note"] = np.where(np.arange(n) % 3 == 0, "knäet ömt", None)
    return frame


def _write_pandas(index):
    return lambda frame, path: frame.to_parquet(path, index=index)


def _write_arrow(row_group_size=None):
    return lambda frame, path: pq.write_table(
        _to_arrow(frame), path, row_group_size=row_group_size or max(len(frame), 1)
    )


SHAPES = {
    "pandas_index": (lambda f: f, _write_pandas(True)),
    "shuffled_with_index": (_shuffle, _write_pandas(None)),
    "pyarrow_string": (lambda f: f, _write_arrow()),
    "dictionary": (
        lambda f: f.astype({c: "category" for c in f.columns if f[c].dtype == "str"}),
        _write_pandas(False),
    ),
    "date32": (lambda f: _dates(f, "date32"), _write_pandas(False)),
    "timestamp_ms": (lambda f: _dates(f, "ms"), _write_pandas(False)),
    "zoned": (lambda f: _dates(f, "tz"), _write_pandas(False)),
    "narrow_and_float32": (_narrow, _write_pandas(False)),
    "row_groups_of_3": (lambda f: f, _write_arrow(3)),
    "extra_columns": (_extra, _write_pandas(False)),
    "everything": (
        lambda f: _extra(_narrow(_dates(_shuffle(f), "date32"))).astype(
            {c: "category" for c in f.columns if f[c].dtype == "str"}
        ),
        _write_arrow(5),
    ),
}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    tables = _hostile(generate(12, seed=5))
    root = tmp_path_factory.mktemp("shapes")
    (root / "plain").mkdir()
    for name, frame in tables.items():
        frame.to_parquet(root / "plain" / f"{name}.parquet", index=False)
    return root, tables, hipdata.load(root / "plain", today=TODAY)


def _file_rows(shape: str, tables: dict) -> dict[str, np.ndarray]:
    """Plain file row of each row of the shape's files (shuffled shapes)."""
    if "shuffled" not in shape and shape != "everything":
        return {}
    return {f"{name}.parquet": _order(len(frame)) + 2 for name, frame in tables.items()}


def _in_plain_order(frame: pd.DataFrame, rows: dict[str, np.ndarray]) -> pd.DataFrame:
    """The rows numbered as in the plain files (``rows``: the plain row of each file row) and
    sorted by file and row: sets keep the file order within a session, the other tables the
    file order, so a shuffled file gives the same rows in another order."""
    if "source_row" not in frame or not len(frame):
        return frame.reset_index(drop=True)
    frame = frame.copy()
    source = np.asarray(frame["source_row"], dtype=np.int64).copy()
    for file, plain_rows in rows.items():
        where = (frame["source_file"] == file).to_numpy()
        source[where] = plain_rows[source[where] - 2]
    frame["source_row"] = source.astype(frame["source_row"].dtype)
    if "reason" in frame and rows:  # row numbers named in a reason, as in the plain files

        def renumber(reasons: pd.Series, pattern: str, plain_rows: np.ndarray) -> pd.Series:
            return reasons.str.replace(
                pattern,
                lambda m: m.group(0).replace(m.group(1), str(plain_rows[int(m.group(1)) - 2])),
                regex=True,
            )

        reasons = frame["reason"]
        reasons = renumber(reasons, r"patients\.parquet row (\d+)", rows["patients.parquet"])
        for file, plain_rows in rows.items():
            mine = (frame["source_file"] == file).to_numpy()
            reasons[mine] = renumber(reasons[mine], r"duplicate of row (\d+)", plain_rows)
        frame["reason"] = reasons
    keys = [c for c in ("source_file", "source_row", "column") if c in frame]
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_shape_loads_as_the_plain_file(cohort, tmp_path, monkeypatch, shape):
    root, tables, plain = cohort
    # the mostly-distinct path on this small cohort too (its extra columns are unique)
    monkeypatch.setattr(readers, "MANY_DISTINCT_MIN", 5)
    transform, write = SHAPES[shape]
    for name, frame in tables.items():
        write(transform(frame), tmp_path / f"{name}.parquet")
    ds = hipdata.load(tmp_path, today=TODAY)
    rows = _file_rows(shape, tables)
    assert len(plain.quarantine) >= 14  # the hostile values are there to be quarantined
    for name in (*TABLES, "quarantine", "load_report"):
        got, expected = getattr(ds, name), getattr(plain, name)
        if rows:
            got, expected = _in_plain_order(got, rows), _in_plain_order(expected, {})
            if name == "patients":  # kept in the file's order
                got = got.set_index("patient_id").loc[expected["patient_id"]].reset_index()
        pd.testing.assert_frame_equal(
            got.reset_index(drop=True), expected.reset_index(drop=True), check_exact=True
        )


def test_float32_values_load_as_the_decimals_written(tmp_path):
    # a float32 0.1 is 0.100000001490116...; the value written was 0.1, and a CSV export of the
    # same column shows 0.1: the loader reads the shortest text of the float32, as for float64
    exercises = pd.DataFrame(
        {
            "patient_id": ["P1"] * 4,
            "date": pd.to_datetime(["2026-03-02"] * 4),
            "exercise": ["bridge_loaded"] * 4,
            "set": [1, 2, 3, 4],
            "reps": np.array([10, 10, 8, np.nan], dtype=np.float32),
            "load_kg": np.array([62.3, 0.1, 17.5, np.nan], dtype=np.float32),
            "pain_during": np.array([2.4, 0.1, 3, 1], dtype=np.float16),
        }
    )
    patients = pd.DataFrame(
        {"patient_id": ["P1"], "clinic_id": ["C1"], "start_date": pd.to_datetime(["2026-03-02"])}
    )
    patients.to_parquet(tmp_path / "patients.parquet")
    exercises.to_parquet(tmp_path / "exercises.parquet")
    ds = hipdata.load(tmp_path, today=TODAY)
    assert len(ds.quarantine) == 0
    assert ds.sets["load_kg"].tolist() == [62.3, 0.1, 17.5, 0.0]  # empty load = 0 (CONTRACT)
    assert ds.sets["pain_during"].tolist() == [2.4, 0.1, 3.0, 1.0]
    assert ds.sets["reps"].tolist()[:3] == [10.0, 10.0, 8.0]
    assert np.isnan(ds.sets["reps"].iloc[3])


def test_float32_frames_validate_as_the_parquet_file(tmp_path):
    # the same rule for DataFrames given to Dataset.from_frames / hipdata.validate
    sets = pd.DataFrame(
        {
            "patient_id": ["P1", "P1", "P1"],
            "date": ["2026-03-02"] * 3,
            "exercise": ["bridge_loaded"] * 3,
            "set": [1, 2, 3],
            "reps": [10, 10, 8],
            "load_kg": np.array([62.3, 0.1, np.nan], dtype=np.float32),
            "pain_during": pd.array([2.4, None, 0.1], dtype="Float32"),
            "pain_24h": np.array([0.1, 1, 2], dtype=np.float16),
        }
    )
    patients = pd.DataFrame(
        {"patient_id": ["P1"], "clinic_id": ["C1"], "start_date": ["2026-03-02"]}
    )
    ds = hipdata.Dataset.from_frames(patients, sets, today=TODAY)
    assert len(ds.quarantine) == 0
    assert ds.sets["load_kg"].tolist() == [62.3, 0.1, 0.0]
    assert ds.sets["pain_during"].tolist()[::2] == [2.4, 0.1]
    assert ds.sets["pain_24h"].tolist() == [0.1, 1.0, 2.0]


HOSTILE_FLOATS = [
    0.1,
    0.1 + 0.2,
    -0.0,
    0.0,
    5e-324,
    1e-5,
    1e-4,
    9.999e-5,
    1e16,
    1e22,
    2.0**63,
    -(2.0**63),
    123456789012345.6,
    1.7976931348623157e308,
    np.inf,
    -np.inf,
    np.nan,
    2.5,
    -7.25,
    1 / 3,
]


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
def test_float_text_equals_pandas_text(dtype):
    rng = np.random.default_rng(0)
    random = rng.normal(size=2000) * 10.0 ** rng.integers(-30, 30, size=2000)
    with np.errstate(over="ignore"):  # 1e300 is inf in float32
        values = np.concatenate([HOSTILE_FLOATS, random]).astype(dtype)
        text, why = readers._arrow_text(pa.chunked_array([pa.array(values)]), "x")
    assert why is None
    # the plain expression: pandas' text of each value in its own dtype, whole numbers as
    # integers, missing as empty
    expected = pd.Series(values).astype(str).to_numpy(dtype=object)
    as64 = values.astype("float64")
    with np.errstate(invalid="ignore"):
        whole = np.isfinite(as64) & (np.mod(as64, 1) == 0) & (np.abs(as64) < 2**63)
    expected[whole] = [str(int(v)) for v in as64[whole]]
    expected[np.isnan(as64)] = ""
    assert list(text) == list(expected)
    if dtype == "float32":
        assert text[0] == "0.1"


def _columns() -> dict[str, pa.Array]:
    """Typed columns that are mostly distinct, with ties, nulls and texts that coincide."""
    n = 40
    base = pd.Timestamp("2026-10-24 23:00", tz="UTC")
    return {
        "ids": pa.array([None if i % 9 == 0 else (i * 37) % 101 for i in range(n)], pa.int64()),
        "small_ints": pa.array([i % 3 - 1 for i in range(n)], pa.int8()),
        # time stamps 900 ms apart: several share one second, hence one text
        "stamps_ms": pa.array(
            pd.date_range("2026-03-01 08:00", periods=n, freq="900ms").as_unit("ms")
        ),
        # through the autumn clock change: 02:30 local happens twice, one text
        "zoned": pa.array(
            (base + pd.to_timedelta(np.arange(n) * 15, unit="min")).tz_convert("Europe/Copenhagen")
        ),
        "days": pa.array(
            [None if i == 3 else dt for i, dt in enumerate(pd.date_range("2026-01-01", periods=n))],
            pa.timestamp("ns"),
        ).cast(pa.date32()),
        # -0.0 and 0.0 share the text "0"; NaN and null are empty
        "floats": pa.array(
            [
                (-0.0 if i % 2 else 0.0) if i % 5 == 0 else (np.nan if i == 7 else i / 3)
                for i in range(n)
            ],
            pa.float64(),
        ),
        "floats32": pa.array(np.arange(n, dtype=np.float32) / 10),
    }


@pytest.mark.parametrize("rows", [0, 1, 2, 40])
@pytest.mark.parametrize("name", list(_columns()))
def test_mostly_distinct_columns_give_the_per_value_cells(monkeypatch, name, rows):
    column = pa.chunked_array([_columns()[name].slice(0, rows)])
    plain_text, _ = readers._arrow_text(column, name)
    per_value = readers._arrow_coded(column, name)  # the per-value path (default threshold)
    assert per_value is not None
    assert decode_cells(per_value).tolist() == list(plain_text)
    monkeypatch.setattr(readers, "MANY_DISTINCT_MIN", 2)
    monkeypatch.setattr(readers, "MANY_DISTINCT_SHARE", 0.0)
    if rows > 2:
        assert readers._arrow_coded(column, name) is None  # the per-row text is taken


def test_mostly_distinct_file_reads_the_same_cells(tmp_path, monkeypatch):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table(_columns()), path, row_group_size=7)
    monkeypatch.setattr(readers, "MANY_DISTINCT_MIN", 10)
    text = read_raw(path).cells
    coded = read_raw(path, coded=True).cells
    assert not isinstance(coded["ids"].dtype, pd.CategoricalDtype)  # per-row: mostly distinct
    assert isinstance(coded["small_ints"].dtype, pd.CategoricalDtype)
    decoded = coded.apply(
        lambda c: decode_cells(c) if isinstance(c.dtype, pd.CategoricalDtype) else c
    )
    pd.testing.assert_frame_equal(decoded, text, check_exact=True)
    assert text["zoned"].tolist().count("2026-10-25T02:30:00") == 2


def test_a_table_written_in_parts_is_refused_not_skipped(tmp_path):
    # Spark and Dask write a table as a folder of parts named like the file; skipped, the
    # exercises (an optional table) would vanish without a word
    tables = _hostile(generate(12, seed=5))
    tables["patients"].to_parquet(tmp_path / "patients.parquet", index=False)
    parts = tmp_path / "exercises.parquet"
    parts.mkdir()
    tables["exercises"].iloc[:10].to_parquet(parts / "part-0.parquet", index=False)
    tables["exercises"].iloc[10:].to_parquet(parts / "part-1.parquet", index=False)
    with pytest.raises(hipdata.DataError, match="exercises.parquet is a folder, not a file"):
        hipdata.load(tmp_path, today=TODAY)
