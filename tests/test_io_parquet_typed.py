"""Parquet written by pandas keeps its types (nullable Int64, datetime64, float): the loader must
read it exactly as it reads the same cohort written as CSV.

Regression: a Parquet file with nullable ``Int64`` columns (what ``DataFrame.to_parquet`` writes
for integer columns with gaps) had every empty cell read as the text ``<NA>``, so every exercise
row was quarantined as "not a number".
"""

from __future__ import annotations

import pandas as pd
import pytest

import hipdata
from hipdata.synth import generate

TABLES = ("patients", "sets", "activity", "outcomes", "treatments")


@pytest.fixture(scope="module")
def both_formats(tmp_path_factory):
    cohort = generate(25, seed=11)
    folder = tmp_path_factory.mktemp("typed")
    cohort.write(folder / "csv")
    (folder / "parquet").mkdir()
    for name, table in cohort.tables.items():
        table.to_parquet(folder / "parquet" / f"{name}.parquet", index=False)
    return cohort, hipdata.load(folder / "csv"), hipdata.load(folder / "parquet")


def test_nullable_integer_columns_are_really_nullable(both_formats):
    cohort, _, _ = both_formats
    exercises = cohort.tables["exercises"]
    # the premise of the regression: typed, with gaps
    assert str(exercises["pain_24h"].dtype) == "Int64"
    assert exercises["pain_24h"].isna().any()


def test_parquet_loads_like_csv(both_formats):
    _, from_csv, from_parquet = both_formats
    assert from_parquet.quarantine.empty
    assert (from_parquet.load_report["rows_quarantined"] == 0).all()
    for name in TABLES:
        expected = getattr(from_csv, name).drop(columns="source_file", errors="ignore")
        got = getattr(from_parquet, name).drop(columns="source_file", errors="ignore")
        pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True))
