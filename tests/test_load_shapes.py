"""Fast paths for input shapes the benchmark cohorts never have
(benchmarks/bench_csv_shapes.py), each checked against the plain code it replaces, on hostile
and edge data."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

import hipdata
from hipdata.catalogue import (
    alias_table,
    load_catalogue,
    suggest_exercises,
    suggest_exercises_many,
)
from tests.io_helpers import PATIENTS, SETS, TODAY, write_folder

CATALOGUE = load_catalogue()


def _misspellings(count: int, seed: int) -> list[str]:
    """Names as people mistype them: a letter dropped or added, upper case with an equipment
    bracket, words reversed with a number, letters shuffled; plus edge cases."""
    rng = random.Random(seed)
    pool = list(alias_table(CATALOGUE).index) + list(CATALOGUE["name"])
    out = []
    for i in range(count):
        name = rng.choice(pool)
        k = rng.randrange(len(name) + 1)
        kind = i % 5
        if kind == 0:
            name = name[:k] + name[k + 1 :]
        elif kind == 1:
            name = name[:k] + rng.choice("xyzé ü-_(") + name[k:]
        elif kind == 2:
            name = name.upper() + " (Machine)"
        elif kind == 3:
            name = " ".join(reversed(name.split())) + f" v{i}"
        else:
            name = "".join(rng.sample(name, len(name)))
        out.append(name)
    edge = ["", " ", "a", "é", "日本語", "((()))", "x" * 300, "plank", "hip", "side side side"]
    return out + edge + ["Side Plank", "side plank", "SIDE PLANK", "Bridge"]  # ties, known


@pytest.mark.parametrize("n", [0, 1, 3])
@pytest.mark.parametrize(("cutoff", "token_cutoff"), [(0.6, 0.5), (0.0, 0.0), (0.9, 0.2)])
def test_many_suggestions_equal_one_by_one(n, cutoff, token_cutoff):
    names = _misspellings(40, seed=n)
    aliases = alias_table(CATALOGUE)
    expected = [
        suggest_exercises(
            x, CATALOGUE, n, aliases=aliases, cutoff=cutoff, token_cutoff=token_cutoff
        )
        for x in names
    ]
    got = suggest_exercises_many(
        names, CATALOGUE, n, aliases=aliases, cutoff=cutoff, token_cutoff=token_cutoff
    )
    assert got == expected
    assert any(got) or n == 0


def test_many_suggestions_with_long_and_unicode_aliases():
    # a clinic's alias over 64 characters (no bit-parallel bound) and non-ASCII keys
    aliases = alias_table(CATALOGUE)
    extra = pd.Series(
        {
            "very long clinic specific name for a bridge with band and a pause " * 2: "bridge",
            "übung seitstütz": "side_plank",
            "": "front_plank",
        }
    )
    table = pd.concat([aliases, extra])
    names = _misspellings(120, seed=7) + ["very long clinic specific name", "ubung seitstutz"]
    expected = [suggest_exercises(x, CATALOGUE, aliases=table) for x in names]
    assert suggest_exercises_many(names, CATALOGUE, aliases=table) == expected
    assert suggest_exercises_many([], CATALOGUE) == []


def test_unknown_names_in_a_file_get_the_one_by_one_suggestions(tmp_path):
    names = _misspellings(40, seed=3)
    copies = len(names) // len(SETS) + 1
    sets = pd.concat([SETS] * copies, ignore_index=True).iloc[: len(names)].copy()
    sets["exercise"] = names
    sets["set"] = (sets.index % 50 + 1).astype(str)  # no duplicates
    folder = write_folder(tmp_path / "d", patients=PATIENTS, exercises=sets)
    data = hipdata.load(folder, today=TODAY)
    quarantine = data.quarantine.set_index("source_row")
    aliases = alias_table(CATALOGUE)
    for row, name in enumerate(names, start=2):
        if row not in quarantine.index or quarantine.loc[row, "column"] != "exercise":
            continue
        if not name.strip():
            continue
        ids = suggest_exercises(name.strip(), CATALOGUE, aliases=aliases)
        reason = "unknown exercise" + (
            f"; did you mean {', '.join(ids)}?" if ids else "; see `hipdata catalogue`"
        )
        assert quarantine.loc[row, "reason"] == reason
    assert (data.quarantine["reason"].str.startswith("unknown exercise")).sum() >= 20


def _byte_lines(rng: random.Random) -> bytes:
    """A text file's bytes whose lines mix ASCII, UTF-8, Windows-1252, bytes Windows-1252 does
    not define, UTF-8 sequences cut at the line end, encoded surrogates, CR and empty lines."""
    pieces = [
        b"P1,2026-01-01,bridge",
        b"",
        b"\r",
        "Übung gut".encode(),
        "Übung gut".encode("cp1252"),
        "€5 – très".encode("cp1252"),
        "日本".encode(),
        b"\xc3",
        b"abc\xe2\x82",
        b"\x81",
        b"\x8d ok",
        b"\xed\xa0\x80",
        "é".encode() + "é".encode("cp1252"),
        b"x;y,z",
    ]
    lines = [
        b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 3)))
        for _ in range(rng.randint(1, 12))
    ]
    return b"\n".join(lines) + (b"\n" if rng.random() < 0.5 else b"")


@pytest.mark.parametrize("block", [1, 7, 1 << 16])
def test_fast_line_decoding_equals_line_by_line(block, monkeypatch):
    from pathlib import Path

    from hipdata.errors import DataError
    from hipdata.io import readers
    from hipdata.io.readers import _decode_lines, _decode_lines_fast

    monkeypatch.setattr(readers, "DECODE_BLOCK_BYTES", block)  # blocks of one line or more
    rng = random.Random(1)
    compared = refused = 0
    for _ in range(3000):
        data = _byte_lines(rng)
        try:
            data.decode("utf-8")
            continue  # read as UTF-8 before either path
        except UnicodeDecodeError:
            pass
        try:
            expected = _decode_lines(Path("x.csv"), data)
        except DataError:
            expected = None  # the fast path then hands over to the line-by-line one
            refused += 1
        assert _decode_lines_fast(data) == expected, data
        compared += 1
    assert compared > 2000 and refused > 100


def test_windows_1252_and_mixed_files_load_as_before(tmp_path):
    from hipdata.io.readers import _decode_lines, read_raw

    sets = SETS.copy()
    sets["note"] = ["Übung gut", "", "très bien", "€5 band", "", "ok"]
    one = write_folder(tmp_path / "cp", exercises=sets, encoding="cp1252")
    raw = read_raw(one / "exercises.csv")
    text, notes = _decode_lines(one / "exercises.csv", (one / "exercises.csv").read_bytes())
    assert notes == ["decoded as Windows-1252 (not UTF-8)"] and raw.notes == notes
    assert raw.cells["note"].tolist() == sets["note"].tolist()
    # UTF-8 with two lines pasted from a Windows-1252 program
    mixed = write_folder(tmp_path / "mixed", exercises=sets)
    path = mixed / "exercises.csv"
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2] + "Müde".encode("cp1252")
    lines[5] = lines[5] + "Müde".encode("cp1252")
    path.write_bytes(b"\n".join(lines))
    raw = read_raw(path)
    assert raw.notes == _decode_lines(path, path.read_bytes())[1]
    assert raw.notes[0].startswith("mixed encodings: 2 line(s) are Windows-1252 (lines 3, 6)")
    data = hipdata.load(mixed, today=TODAY)
    assert data.load_report["rows_read"].sum() == data.load_report["rows_kept"].sum() + len(
        data.quarantine
    )


LIST_CELLS = [
    "10/10/8",
    "",
    "10//8",
    "12",
    "8/ 9 /x",
    "/".join(["5"] * 51),  # more parts than MAX_LIST_PARTS
    "7,5/8",
    "-1/3",
    "300/2",
    "10/10/8",
    " ",
    "1:30/0:45",
    "٣/4",  # non-ASCII digit
    "12",
    "8/8/8/8/8/8/8/8/8/8/8/8",
]


def _list_checked(cells: list[str], coded: bool):
    from pathlib import Path

    import numpy as np

    from hipdata.io import loader
    from hipdata.io.readers import RawTable, coded_cells

    frame = pd.DataFrame({"reps": cells, "hold_s": cells}, dtype="str")
    if coded:  # as the CSV reader gives them: categories with a text no row has (the header)
        for column in frame.columns:
            distinct = list(dict.fromkeys([column, *cells]))
            frame[column] = coded_cells(np.array([distinct.index(t) for t in cells]), distinct)
    raw = RawTable(Path("t.csv"), frame, np.arange(len(frame), dtype=np.int64) + 2)
    return loader._Checked(raw, "exercises", {"reps": "reps", "hold_s": "hold_s"}, [])


@pytest.mark.parametrize("coded", [False, True])
@pytest.mark.parametrize("rows", [slice(None), slice(0, 0), slice(3, 4), slice(1, 2)])
@pytest.mark.parametrize(
    ("name", "high", "whole", "parser"),
    [("reps", 200, True, "numbers"), ("hold_s", 600, False, "durations")],
)
def test_lists_per_distinct_text_equal_the_per_row_rules(coded, rows, name, high, whole, parser):
    from hipdata.io import loader
    from hipdata.io.parse import parse_durations, parse_numbers

    parse = {"numbers": parse_numbers, "durations": parse_durations}[parser]
    cells = LIST_CELLS[rows]
    fast = _list_checked(cells, coded)
    table, counts = loader._check_list(fast, name, high=high, whole=whole, label=name, parser=parse)
    # the plain expression: every row's own text through the same rules
    plain = _list_checked(cells, coded)
    flags = []
    expected_table, expected_counts = loader._list_parts(
        plain.cells(name), flags, high=high, whole=whole, label=name, parser=parse
    )
    for mask, reason in flags:
        plain.flag(mask, name, reason)
    assert table.shape == expected_table.shape
    np.testing.assert_array_equal(table, expected_table)
    pd.testing.assert_series_equal(counts, expected_counts, check_exact=True)
    pd.testing.assert_frame_equal(fast.quarantine(), plain.quarantine(), check_exact=True)
    if rows == slice(None):
        assert len(fast.quarantine()) >= 4  # lists with too many, empty, bad parts


def test_lists_of_an_absent_column_are_empty():
    from hipdata.io import loader

    checked = _list_checked(["10/8", "12"], coded=False)
    checked.columns.pop("hold_s")
    table, counts = loader._check_list(checked, "hold_s", high=600, whole=False, label="hold_s")
    assert np.isnan(table).all() and table.shape == (2, 1) and counts.isna().all()
    assert not checked.problems
