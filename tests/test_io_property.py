"""Property: random corruption of a valid exercises file never crashes the loader, and every
row is still accounted for (read = kept + quarantined)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hipdata
from tests.io_helpers import SETS, TODAY, write_folder

CORRUPT_VALUES = st.one_of(
    st.sampled_from(
        [
            "",
            "-1",
            "1e9",
            "3,5",
            "1.234,5",
            "NaN",
            "n/a",
            "03/04/2026",
            "31/02/2026",
            "2099-01-01",
            "P9",
            "bridge",
            "copenhagen",
            "10/10/8",
            "12/10",
            "ten",
            " ",
            "\u00a0",
            '"',
            ";",
            "🙂",
        ]
    ),
    # NUL bytes make the file binary, a file-level error tested elsewhere
    # (no lone surrogates: no file can hold them, and pandas' Arrow strings refuse them)
    st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=12),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.integers(0, len(SETS) - 1),
            st.sampled_from(list(SETS.columns)),
            CORRUPT_VALUES,
        ),
        min_size=1,
        max_size=8,
    )
)
def test_corruptions_never_crash_and_always_reconcile(edits):
    exercises = SETS.copy()
    for row, column, value in edits:
        exercises.loc[row, column] = value
    with tempfile.TemporaryDirectory() as folder:
        ds = hipdata.load(write_folder(Path(folder), exercises=exercises), today=TODAY)
    report = ds.load_report.set_index("table").loc["exercises"]
    assert report["rows_read"] == report["rows_kept"] + report["rows_quarantined"]
    assert report["rows_quarantined"] == (ds.quarantine["source_file"] == "exercises.csv").sum()
    # every kept set row traces back to a row that is not in the quarantine
    kept_rows = set(ds.sets["source_row"])
    assert kept_rows.isdisjoint(set(ds.quarantine["source_row"]))
    assert ds.sets["pain_during"].dropna().between(0, 10).all()
    assert ds.sets["load_kg"].between(0, 500).all()
    assert isinstance(ds.sets, pd.DataFrame)
