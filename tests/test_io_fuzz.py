"""Fuzzing every reader (issue 8 item 7): whatever the bytes, the loader returns a dataset whose
rows reconcile (read = kept + quarantined) or raises one DataError; never another exception.
Bounded time is kept by hypothesis' deadline per example (generous: the machine is shared)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz_helpers import (
    assert_loads_or_refuses,
    csv_files,
    exercise_frames,
    parquet_bytes,
    wide_header,
    write_case,
    xlsx_bytes,
)

FUZZ = settings(
    max_examples=8,
    deadline=20_000,  # ms per example: bounded time, with room for a loaded machine
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)


@FUZZ
@given(csv_files())
def test_damaged_csv_never_crashes(data):
    with tempfile.TemporaryDirectory() as folder:
        assert_loads_or_refuses(write_case(Path(folder), data))


@FUZZ
@given(st.binary(max_size=300), st.sampled_from([".csv", ".xlsx", ".parquet"]))
def test_random_bytes_never_crash(data, suffix):
    with tempfile.TemporaryDirectory() as folder:
        assert_loads_or_refuses(write_case(Path(folder), data, suffix))


@FUZZ
@given(exercise_frames(), st.booleans(), st.sampled_from([None, "=1+1", "=A1&B1", "@SUM(1)"]))
def test_xlsx_never_crashes(frame, hidden_first, formula):
    data = xlsx_bytes(frame, hidden_first=hidden_first, formula=formula)
    with tempfile.TemporaryDirectory() as folder:
        ds = assert_loads_or_refuses(write_case(Path(folder), data, ".xlsx"))
    if ds is not None and hidden_first:
        assert "hidden sheet(s) 'hidden' skipped" in ds.load_report["notes"].str.cat()


@FUZZ
@given(exercise_frames(), st.integers(0, 10))
def test_truncated_xlsx_and_parquet_never_crash(frame, cut):
    for suffix, data in ((".xlsx", xlsx_bytes(frame)), (".parquet", parquet_bytes(frame))):
        end = max(0, len(data) - cut * max(1, len(data) // 10))
        with tempfile.TemporaryDirectory() as folder:
            assert_loads_or_refuses(write_case(Path(folder), data[:end], suffix))


@FUZZ
@given(exercise_frames())
def test_parquet_of_nasty_text_never_crashes(frame):
    with tempfile.TemporaryDirectory() as folder:
        assert_loads_or_refuses(write_case(Path(folder), parquet_bytes(frame), ".parquet"))


@settings(max_examples=3, deadline=30_000, derandomize=True)
@given(st.sampled_from([501, 5_000, 100_000]))
def test_very_wide_headers_are_refused_quickly(columns):
    with tempfile.TemporaryDirectory() as folder:
        assert assert_loads_or_refuses(write_case(Path(folder), wide_header(columns))) is None
