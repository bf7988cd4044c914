"""Fast paths for input shapes the benchmark cohorts never have (benchmarks/bench_shapes.py),
each checked against the plain code it replaces, on hostile and edge data."""

from __future__ import annotations

import random

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
