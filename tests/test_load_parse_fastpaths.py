"""The parsers' one-pass fast paths give exactly what their Series expressions give.

``parse_dates`` reads cells that are exactly ``yyyy-mm-dd`` (and empty cells) in one Python
pass and sends every other cell through the general parser; ``parse_numbers`` decides text
cells in one Python pass. Both are compared here with the plain Series expressions they stand
in for (``_parse_dates_general``, ``_parse_numbers_series``), value, dtype, index and reason,
on hostile cells: empty, whitespace of every kind, impossible and implausible days, leap days,
non-ASCII digits, both decimal marks, long decimals, missing values, ties (repeated cells).
"""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from hipdata.io import parse

SPACES = ["\x1c", "\x1f", "\x85", "\u2003", "\u3000", "\u200b", "\ufeff", "\t", "\n", "\r",
          "\x0b", "\u00a0", "\u202f", "\u2028", " "]  # fmt: skip

DATES = [
    "", " ", "2026-01-05", "2026-01-05", "2026-02-30", "2026-13-01", "2026-00-10", "2026-01-00",
    "1899-12-31", "1900-01-01", "2200-12-31", "2201-01-01", "9999-12-31", "1000-01-01",
    "2024-02-29", "2023-02-29", "2000-02-29", "1900-02-29", "0000-00-00", "2026-1-5",
    "2026/01/05", "2026.01.05", "20260105", "2026-01-05T10:00", "2026-01-05 10:00:00+01:00",
    "05/01/2026", "13/01/2026", "01/13/2026", "05/05/2026", "13/13/2026", "3 Apr 2026",
    "April 3, 2026", "3 Foo 2026", "05/01/26", "٢٠٢٦-٠١-٠٥", "２０２６-01-05", "2026-01-0５",
    "abc", "nan", "NaT", "None", "2026-01-05x", "x2026-01-05", "+026-01-05", "2026_01_05",
]  # fmt: skip
DATES += [w + "2026-01-05" for w in SPACES] + ["2026-01-05" + w for w in SPACES] + SPACES

NUMBERS = [
    "", " ", "3", "3", "3.5", "3,5", "1.234,5", "1,234.5", "+4", "-0", "-0.0", "1e3", "1E-2",
    ".5", "5.", "abc", "١٢", "١.٥", "1e400", "-1e400", "99999999999999999999", "0.1",
    "0.30000000000000004", "2.675", "1/2", "nan", "inf", "NaN", "-", "+", "1..2", "1,,2",
    "0x10", "1_000", " 12 ", "3\u202f000", "\u00a03", "00012", "1e", "e3",
]  # fmt: skip
NUMBERS += [w + "3" for w in SPACES] + ["3" + w for w in SPACES] + SPACES


def _random_cells(seed: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = "0123456789-/.,: eE+aT"
    cells = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(500)]
    cells += [
        f"{rng.randint(1890, 2210):04d}-{rng.randint(0, 13):02d}-{rng.randint(0, 32):02d}"
        for _ in range(500)
    ]
    return cells


def _samples(cells: list[str]):
    rng = random.Random(1)
    yield cells
    yield []
    yield cells[:1]
    yield ["2026-01-05"]
    yield rng.sample(cells, len(cells))
    yield [c for c in cells if c.strip()][:3]


def _assert_same(got, expected):
    for left, right in zip(got, expected, strict=True):
        pd.testing.assert_series_equal(left, right, check_exact=True)


@pytest.mark.parametrize("dayfirst", [None, True, False])
@pytest.mark.parametrize("cells", [DATES, _random_cells(0)], ids=["hostile", "random"])
def test_plain_iso_dates_equal_the_general_parser(cells, dayfirst):
    for sample in _samples(cells):
        series = pd.Series(sample, dtype=object, index=pd.RangeIndex(len(sample)) + 7)
        _assert_same(
            parse.parse_dates.__wrapped__(series, dayfirst=dayfirst),
            parse._parse_dates_general(series, dayfirst=dayfirst),
        )


@pytest.mark.parametrize("cells", [NUMBERS, _random_cells(2)], ids=["hostile", "random"])
def test_number_texts_equal_the_series_expression(cells):
    for sample in _samples(cells):
        series = pd.Series(sample, dtype=object, index=pd.RangeIndex(len(sample)) + 3)
        _assert_same(parse.parse_numbers.__wrapped__(series), parse._parse_numbers_series(series))


def test_missing_cells_take_the_series_expression():
    # NaN / None are not text: the whole call goes through the Series expression
    series = pd.Series(["3", np.nan, None, "4,5"], dtype=object)
    values, reasons = parse.parse_numbers.__wrapped__(series)
    np.testing.assert_array_equal(values.to_numpy(), [3.0, np.nan, np.nan, 4.5])
    assert reasons.tolist() == ["", "", "", ""]
    dates, reasons = parse.parse_dates(pd.Series(["2026-01-05", np.nan, None], dtype=object))
    assert dates.tolist()[0] == pd.Timestamp("2026-01-05")
    assert dates.isna().tolist() == [False, True, True]
    assert reasons.tolist() == ["", "", ""]


def test_fast_dates_keep_the_reasons_of_the_rest():
    dates, reasons = parse.parse_dates(
        pd.Series(["2026-01-05", "2026-02-30", "", "1899-12-31", "05/01/2026"], dtype=object)
    )
    assert dates.dtype == "datetime64[ns]"
    assert dates.iloc[0] == pd.Timestamp("2026-01-05")
    assert dates.iloc[1:].isna().all()
    assert reasons.tolist() == [
        "",
        "impossible date (no such day)",
        "",
        "implausible date: before 1900",
        "ambiguous date: day/month order unknown; "
        "pass dayfirst=True (dd/mm/yyyy) or dayfirst=False (mm/dd/yyyy)",
    ]
    values, reasons = parse.parse_numbers(pd.Series(["3,5", "1.234,5", "x", "", "7"]))
    np.testing.assert_array_equal(values.to_numpy(), [3.5, np.nan, np.nan, np.nan, 7.0])
    assert reasons.tolist() == [
        "",
        "ambiguous number: both '.' and ',' in it",
        "not a number",
        "",
        "",
    ]


@pytest.mark.parametrize(
    "texts",
    [["a", "b"], ["Pätiént-ü", "", "ÿ"], ["x", np.nan, "z"], ["only"], []],
    ids=["plain", "unicode", "missing", "one", "empty"],
)
def test_take_text_equals_take(texts):
    from hipdata.io.loader import _take_text

    values = pd.array(texts, dtype="str")
    rng = np.random.default_rng(4)
    cases = [np.array([], dtype=np.int64)]
    if len(texts):
        cases += [
            rng.integers(0, len(texts), 50),  # ties: each text many times
            np.zeros(3, dtype=np.int8),
            np.arange(len(texts), dtype=np.int32)[::-1],
        ]
    for positions in cases:
        got = _take_text(values, positions)
        expected = values.take(positions)
        assert got.dtype == expected.dtype
        pd.testing.assert_extension_array_equal(got, expected, check_exact=True)
    if len(texts):  # negative positions count from the end, as in take
        negative = np.array([-1, 0])
        pd.testing.assert_extension_array_equal(_take_text(values, negative), values.take(negative))
        with pytest.raises(IndexError):
            _take_text(values, np.array([len(texts)]))


def _assert_same_coded(got: pd.Series, expected: pd.Series) -> None:
    # the same categories in the same order and the same codes, not only the same texts
    pd.testing.assert_index_equal(got.cat.categories, expected.cat.categories, exact=True)
    np.testing.assert_array_equal(got.cat.codes.to_numpy(), expected.cat.codes.to_numpy())
    pd.testing.assert_series_equal(got, expected, check_exact=True, check_names=False)


TEXT_CHUNKS = [
    ["P2", " P1 ", None, "P2", "Pätiént-ü", "", "P1"],
    ["P3", None, "P1 ", "\u00a0", "P3"],
    [],
    [None, None],
]


@pytest.mark.parametrize("chunks", [TEXT_CHUNKS, TEXT_CHUNKS[:1], [[None, None]], [[]]])
def test_parquet_dictionary_columns_equal_the_encoded_text(chunks):
    import pyarrow as pa

    from hipdata.io.readers import _arrow_coded, _first_appearance_coded

    plain = pa.chunked_array([pa.array(c, type=pa.large_string()) for c in chunks])
    expected = _arrow_coded(plain, "patient_id")
    # per chunk its own dictionary, in another order than first appearance, with an entry no
    # row uses and a repeated value (a writer other than Arrow may do either)
    dictionary_chunks = []
    for c in chunks:
        values = sorted({v for v in c if v is not None}, reverse=True) + ["unused", "P2"]
        indices = [None if v is None else values.index(v) for v in c]
        dictionary_chunks.append(
            pa.DictionaryArray.from_arrays(pa.array(indices, type=pa.int32()), pa.array(values))
        )
    as_dictionary = pa.chunked_array(dictionary_chunks)
    _assert_same_coded(_first_appearance_coded(as_dictionary, "patient_id"), expected)


def test_parquet_text_read_as_dictionary_equals_the_plain_read(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hipdata.io.readers import _arrow_coded, read_raw

    rng = np.random.default_rng(3)
    ids = np.array(["P1", " P2", "Pätiént-ü", "", "P10"], dtype=object)[rng.integers(0, 5, 3000)]
    ids[rng.integers(0, 3000, 40)] = None
    table = pa.table(
        {
            "patient_id": pa.array(ids, type=pa.large_string()),
            "exercise": pa.array(np.where(rng.random(3000) < 0.5, "bridge", " clamshell")),
            "reps": pa.array(rng.integers(0, 20, 3000)),
        }
    )
    path = tmp_path / "exercises.parquet"
    pq.write_table(table, path, row_group_size=700)  # several row groups, each a dictionary
    raw = read_raw(path, coded=True)
    for name in ("patient_id", "exercise", "reps"):
        _assert_same_coded(raw.cells[name], _arrow_coded(table[name], name))


@pytest.mark.parametrize(
    "texts",
    [
        ["b", "a", "b", "", "Pätiént-ü", " a"],  # repeats: the codes follow the categories
        ["x"],
        [],
        ["", ""],
        ["1", "2"],
    ],
)
def test_coded_cells_of_plain_text_equal_the_str_path(texts):
    from hipdata.io.readers import coded_cells

    codes = np.array([i % (len(texts) + 1) - 1 for i in range(11)]) if texts else -np.ones(3, int)
    got = coded_cells(codes, texts)
    # the general path (taken when a text is missing): the same texts and a missing one at
    # the end, which no row uses and which is "" as the empty cell is
    expected = coded_cells(codes, [*texts, np.nan])
    _assert_same_coded(got, expected)
    assert got.tolist() == [texts[c] if c >= 0 else "" for c in codes]
