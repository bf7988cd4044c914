"""hipdata.io.writers.write_csv_text: the CSV text pandas writes, byte for byte, through Arrow.

The reference is pandas itself: every expected text below is ``DataFrame.to_csv`` with the
options the writer promises to reproduce (``index=False, na_rep="", lineterminator="\\n",
date_format="%Y-%m-%d"``, and ``float_format`` when given). Each test also says which path
wrote the table (Arrow, or pandas for the tables whose text Arrow cannot give), so a silent
fall-back cannot pass for the fast path.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hipdata.io.writers as writers
from hipdata.io.writers import csv_ready, write_csv_text, write_tables


def pandas_text(frame: pd.DataFrame, float_format: str | None = None) -> bytes:
    buffer = io.BytesIO()
    frame.to_csv(
        buffer,
        index=False,
        na_rep="",
        lineterminator="\n",
        date_format="%Y-%m-%d",
        float_format=float_format,
    )
    return buffer.getvalue()


def written_text(frame: pd.DataFrame, float_format: str | None = None) -> bytes:
    buffer = io.BytesIO()
    write_csv_text(frame, buffer, float_format=float_format)
    return buffer.getvalue()


def takes_arrow_path(frame: pd.DataFrame, float_format: str | None = None) -> bool:
    return writers._arrow_converters(frame, float_format, "%Y-%m-%d") is not None


def every_kind(n: int = 500, seed: int = 1) -> pd.DataFrame:
    """A column of each kind the Arrow path writes, with the values where texts could differ."""
    rng = np.random.default_rng(seed)
    floats = np.concatenate(
        [
            rng.normal(0, 1, n // 4),
            rng.normal(0, 1e6, n // 4),
            10.0 ** rng.uniform(-30, 30, n // 4),
            np.round(rng.uniform(0, 100, n - 3 * (n // 4)), 1),
        ]
    )
    # NaN, infinities, both zeros, the repr's switch to exponents (1e16, 1e-5), 12 digits
    floats[:9] = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e16, 1e-5, 123456789012.0, 0.1]
    texts = np.array(
        ["P00001", "hip_oa", "", " lead", "trail ", "ünïcödé", "x;=1", "'=a", "tab\tin", "1e5"],
        dtype=object,
    )
    frame = pd.DataFrame(
        {
            "text": pd.array(rng.choice(texts, n), dtype="str"),
            "object_text": pd.Series(rng.choice(texts, n), dtype=object),
            "int": rng.integers(-(10**12), 10**12, n),
            "uint8": rng.integers(0, 255, n).astype(np.uint8),
            "Int64": pd.array(rng.integers(-5, 5, n), dtype="Int64"),
            "float": floats,
            "float32": floats.astype(np.float32),
            "bool": rng.random(n) > 0.5,
            "boolean": pd.array(rng.random(n) > 0.5, dtype="boolean"),
            # times of day and days before 1970: written as the calendar day (floored)
            "datetime": pd.Timestamp("2025-01-01")
            + pd.to_timedelta(rng.integers(-40_000, 40_000, n), unit="D")
            + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s"),
            "datetime_us": (
                pd.Timestamp("1960-01-01") + pd.to_timedelta(rng.integers(0, 300_000, n), unit="h")
            ).astype("datetime64[us]"),
        }
    )
    frame.loc[::13, "text"] = None
    frame.loc[::11, "object_text"] = None
    frame.loc[::7, "Int64"] = pd.NA
    frame.loc[::5, "boolean"] = pd.NA
    frame.loc[::3, "datetime"] = pd.NaT
    return frame


@pytest.mark.parametrize("float_format", [None, "%.10g", "%.3f"])
@pytest.mark.parametrize("slice_rows", [None, 1, 7])
def test_arrow_path_writes_pandas_text_byte_for_byte(float_format, slice_rows, monkeypatch):
    if slice_rows is not None:  # slices of a few rows: their seams must not show in the text
        monkeypatch.setattr(writers, "CSV_SLICE_ROWS", slice_rows)
    frame = every_kind()
    assert takes_arrow_path(frame, float_format)
    assert written_text(frame, float_format) == pandas_text(frame, float_format)


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"a": pd.array([], dtype="str"), "b": np.array([], dtype=float)}),
        pd.DataFrame({"a": [None, None], "b": [np.nan, np.nan], "c": ["", ""]}),
        pd.DataFrame({"a": pd.to_datetime(["1677-09-22", "2262-04-11", None]), "b": [1, 2, 3]}),
    ],
    ids=["no rows", "all missing and empty text", "ns date limits"],
)
def test_arrow_path_edge_tables(frame):
    assert takes_arrow_path(frame)
    assert written_text(frame) == pandas_text(frame)
    assert written_text(frame, "%.10g") == pandas_text(frame, "%.10g")


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"a": ["x,y", "z"], "b": [1, 2]}),  # pandas quotes the cell
        pd.DataFrame({"a": ['say "hi"', "z"], "b": [1, 2]}),
        pd.DataFrame({"a": ["two\nlines", "z"], "b": [1, 2]}),
        pd.DataFrame({"a": ["carriage\rreturn", "z"], "b": [1, 2]}),  # not quoted by pandas
        pd.DataFrame({"a,b": [1], "c": [2]}),  # a name with a comma
        pd.DataFrame({"a": ["x", None]}),  # one column: an empty cell is written ""
        pd.DataFrame({0: [1], 1: [2]}),  # names that are not text
        pd.DataFrame({"a": ["x", 1], "b": [1, 2]}),  # mixed objects
        pd.DataFrame({"a": pd.Categorical(["x", "y"]), "b": [1, 2]}),
        pd.DataFrame({"a": pd.to_datetime(["2025-01-01 23:00"], utc=True), "b": [1]}),
        pd.DataFrame({"a": pd.to_timedelta([1], unit="D"), "b": [1]}),
        pd.DataFrame({"a": pd.array([1.5, None], dtype="Float64"), "b": [1, 2]}),
        pd.DataFrame(
            {"a": np.array(["0999-01-01", "2000-01-01"], dtype="datetime64[s]"), "b": [1, 2]}
        ),  # pandas writes year 999 unpadded
    ],
    ids=[
        "comma",
        "quote",
        "line end",
        "carriage return",
        "name with comma",
        "one column",
        "int names",
        "mixed objects",
        "categorical",
        "timezone",
        "timedelta",
        "Float64",
        "year 999",
    ],
)
def test_tables_arrow_cannot_write_are_written_by_pandas(frame):
    assert not takes_arrow_path(frame)
    assert written_text(frame) == pandas_text(frame)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    texts=st.lists(st.one_of(st.none(), st.text(max_size=6)), min_size=1, max_size=30),
    data=st.data(),
)
def test_any_text_and_numbers_give_pandas_text(texts, data):
    n = len(texts)
    numbers = data.draw(
        st.lists(
            st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
            min_size=n,
            max_size=n,
        )
    )
    whole = data.draw(
        st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)), min_size=n, max_size=n)
    )
    frame = pd.DataFrame(
        {
            "text": pd.array(texts, dtype="str"),
            "object": pd.Series(texts, dtype=object),
            "float": np.array([np.nan if v is None else v for v in numbers], dtype=float),
            "Int64": pd.array(whole, dtype="Int64"),
        }
    )
    for float_format in (None, "%.10g"):
        try:
            expected = pandas_text(frame, float_format)
        except UnicodeEncodeError:  # a lone surrogate: pandas refuses it, so must the writer
            with pytest.raises(UnicodeEncodeError):
                written_text(frame, float_format)
            continue
        assert written_text(frame, float_format) == expected


def test_write_tables_writes_the_text_it_wrote_with_pandas(tmp_path):
    """The metric tables of a synthetic cohort: the same files as ``csv_ready(frame).to_csv``."""
    from hipdata import load
    from hipdata.metrics import compute_all
    from hipdata.synth import write_cohort

    write_cohort(tmp_path / "data", n_patients=25, seed=4)
    tables = compute_all(load(tmp_path / "data"))
    written = write_tables(tables, tmp_path / "out")
    for name, frame in tables.items():
        assert takes_arrow_path(csv_ready(frame)), name
        expected = pandas_text(csv_ready(frame))
        assert written[name].read_bytes() == expected, name
