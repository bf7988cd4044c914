"""hipdata.io.writers.write_table_csv: ``write_csv_text(csv_ready(frame))`` in one pass.

The fast writer replaces the plain expression ``csv_ready(frame).to_csv(...)`` (pandas, with the
options ``write_csv_text`` promises to reproduce) and ``write_csv_text(csv_ready(frame))``; each
test asserts the bytes of all three are equal on edge data, and says whether the direct path
(no ``csv_ready`` copy) wrote the table, so a silent fall-back cannot pass for the fast path.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hipdata.io.writers as writers
from hipdata.io.writers import csv_ready, write_csv_text, write_table_csv
from tests.test_io_writers_csv_text import every_kind


def plain_text(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    csv_ready(frame).to_csv(
        buffer, index=False, na_rep="", lineterminator="\n", date_format="%Y-%m-%d"
    )
    return buffer.getvalue()


def old_text(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    write_csv_text(csv_ready(frame), buffer)
    return buffer.getvalue()


def direct_text(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    write_table_csv(frame, buffer)
    return buffer.getvalue()


def takes_direct_path(frame: pd.DataFrame) -> bool:
    return writers._direct_plan(frame) is not None


def assert_same_text(frame: pd.DataFrame) -> None:
    expected = plain_text(frame)
    assert old_text(frame) == expected
    assert direct_text(frame) == expected


@pytest.mark.parametrize("slice_rows", [None, 1, 7])
def test_every_kind_of_column(slice_rows, monkeypatch):
    if slice_rows is not None:  # the dictionaries are shared by all slices of a column
        monkeypatch.setattr(writers, "CSV_SLICE_ROWS", slice_rows)
    frame = every_kind()
    assert takes_direct_path(frame)
    assert_same_text(frame)


FORMULAS = ["=1+1", "-2+3", "-3", "@SUM(A1)", "x;=2", " +1", "P0001", "ünïcödé-ид", ""]


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"a": pd.array([], dtype="str"), "b": np.array([], dtype=float)}),
        pd.DataFrame(
            {
                "id": pd.array([], dtype="str"),
                "n": np.array([], dtype=np.int64),
                "d": np.array([], dtype="datetime64[ns]"),
                "f": pd.array([], dtype="boolean"),
            }
        ),
        pd.DataFrame({"patient_id": ["P1"], "pain": [3.0], "day": pd.to_datetime(["2025-02-03"])}),
        pd.DataFrame({"a": [np.nan, np.nan], "b": [None, None], "c": ["", ""]}),
        # whole floats: -0.0, 1e16, 2**53, just under the 2**62 switch, NaN among them
        pd.DataFrame({"a": [-0.0, 1e16, 2.0**53, np.nan, 2.0**62 - 1024], "b": [1.0] * 5}),
        pd.DataFrame({"a": [2.0**62, -(2.0**62), np.nan], "b": [0.5, -0.0, 0.0]}),
        # not whole: both zeros apart, the repr's switch to exponents, ties, huge
        pd.DataFrame(
            {
                "a": [0.1, -0.0, 0.0, 1e-5, 1e16 + 2.0, 0.1, 1e300, np.nan, 2.5],
                "b": np.array([0.1, -0.0, 0.0, 1e-5, 3.0, 0.1, 1e30, np.nan, 2.5], np.float32),
            }
        ),
        pd.DataFrame({"a": [np.inf, 1.0], "b": [-np.inf, np.nan]}),  # whole but not finite
        pd.DataFrame(
            {
                "flag": pd.array([True, None, False, True], dtype="boolean"),
                "bool": [True, False, False, True],
                "all_na": pd.array([None] * 4, dtype="boolean"),
            }
        ),
        pd.DataFrame(
            {
                "str": pd.array(FORMULAS, dtype="str"),
                "object": pd.Series(FORMULAS, dtype=object),
                "=name": range(len(FORMULAS)),
            }
        ),
        pd.DataFrame(
            {
                "min_max": np.array([np.iinfo(np.int64).min, np.iinfo(np.int64).max, 0]),
                "int8": np.array([-100, 100, 0], dtype=np.int8),  # span over int8's range
                "uint64": np.array([2**64 - 1, 2**64 - 2, 2**64 - 3], dtype=np.uint64),
                "negative": [-5, -3, -4],
                "Int64": pd.array([None, None, None], dtype="Int64"),
                "Int64_small": pd.array([7, None, -2], dtype="Int64"),
                "wide": [0, writers.DICTIONARY_SPAN + 1, 3],
            }
        ),
        pd.DataFrame(
            {
                "one_day": pd.to_datetime(["2025-01-01"] * 3),
                "nat": pd.to_datetime([None, None, None]),
                "times": pd.to_datetime(["1969-12-31 23:59", "1970-01-01 00:01", None]),
                "wide": pd.to_datetime(["1700-01-01", "2200-12-31", "2025-06-01"]),
            }
        ),
    ],
    ids=[
        "no rows",
        "no rows, more kinds",
        "one patient",
        "all missing",
        "whole floats",
        "whole floats at 2**62",
        "floats",
        "infinities",
        "booleans with NA",
        "formulas and unicode",
        "integers",
        "dates",
    ],
)
def test_edge_tables(frame):
    assert takes_direct_path(frame)
    assert_same_text(frame)


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"a": ["x", None]}),  # one column: an empty cell is written ""
        pd.DataFrame({"a": ["x,y", "z"], "b": [1, 2]}),
        pd.DataFrame({"a": pd.array(["=x,1", "z"], dtype="str"), "b": [1, 2]}),
        pd.DataFrame({"a,b": [1], "c": [2]}),
        pd.DataFrame({0: [1], 1: [2]}),
        pd.DataFrame({"a": pd.to_datetime(["2025-01-01"], utc=True), "b": [1]}),
        pd.DataFrame({"a": np.array(["0999-01-01"], dtype="datetime64[s]"), "b": [1]}),
    ],
    ids=["one column", "comma", "formula with comma", "name", "int names", "tz", "year 999"],
)
def test_tables_for_pandas(frame):
    assert not takes_direct_path(frame)
    assert_same_text(frame)


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"a": pd.Categorical(["=x", "y", None]), "b": [1.0, 2.0, 3.0]}),
        pd.DataFrame({"a": pd.Categorical([True, False]), "b": [1, 2]}),
        pd.DataFrame({"a": ["x", 1], "b": [1, 2]}),  # mixed objects
        pd.DataFrame({"a": pd.array([1.5, None], dtype="Float64"), "b": [1, 2]}),
        pd.DataFrame({"a": pd.array([1.0, None], dtype="Float64"), "b": [1, 2]}),
    ],
    ids=["categorical", "categorical booleans", "mixed objects", "Float64", "whole Float64"],
)
def test_columns_left_to_csv_ready(frame):
    assert_same_text(frame)


@pytest.mark.parametrize("huge", [1e20, -1e20, 2.0**63, -(2.0**63)])
def test_whole_floats_past_int64_keep_their_float_text(huge):
    # csv_ready's astype("Int64") raised TypeError on a whole float past int64 (1e20), so such a
    # table could not be written: now the column is not "whole" and keeps pandas' float text
    frame = pd.DataFrame({"a": [huge, 1.0, np.nan], "b": [1, 2, 3]})
    assert csv_ready(frame)["a"].dtype == np.float64
    text = f"a,b\n{np.float64(huge)},1\n1.0,2\n,3\n"
    assert direct_text(frame) == text.encode()
    assert_same_text(frame)
    # just inside int64's range the column is still written without ".0"
    inside = pd.DataFrame({"a": [2.0**62, 1.0], "b": [1, 2]})
    assert direct_text(inside) == f"a,b\n{2**62},1\n1,2\n".encode()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    texts=st.lists(
        st.one_of(st.none(), st.text(alphabet="=+-@;a1 é\t", max_size=5)), min_size=1, max_size=25
    ),
    data=st.data(),
)
def test_any_columns(texts, data):
    n = len(texts)

    def draw(strategy):
        return data.draw(st.lists(st.one_of(st.none(), strategy), min_size=n, max_size=n))

    floats = draw(st.one_of(st.floats(-1e18, 1e18), st.just(np.nan), st.just(-0.0)))
    whole = draw(st.integers(-(2**40), 2**40).map(float))
    small = draw(st.integers(-3, 3))
    truth = draw(st.booleans())
    days = draw(st.integers(-30_000, 30_000))
    frame = pd.DataFrame(
        {
            "text": pd.array(texts, dtype="str"),
            "object": pd.Series(texts, dtype=object),
            "float": np.array([np.nan if v is None else v for v in floats], dtype=float),
            "whole": np.array([np.nan if v is None else v for v in whole], dtype=float),
            "Int64": pd.array(small, dtype="Int64"),
            "boolean": pd.array(truth, dtype="boolean"),
            "date": pd.to_datetime([None if d is None else d * 86_400 for d in days], unit="s"),
        }
    )
    assert_same_text(frame)
