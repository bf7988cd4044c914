"""Property: random corruption of an app export never crashes its importer, and every data row
of the corrupted file is still accounted for (read = kept + quarantined = the file's rows)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hipdata.sources import fitnotes, hevy, strong
from tests.sources_helpers import DATA, data_rows

VALUES = st.one_of(
    st.sampled_from(
        ["", "-1", "1e9", "3,5", "1.234,5", "NaN", "W", "Rest Timer", "warmup", "0:00:90", "1:30"]
        + ["31 Feb 2026, 07:48", "2026-02-31", "kgs", "stone", ";", ",", '"', "\u00a0", "🙂"]
    ),
    st.text(max_size=8),
)
FILES = [
    (strong.read, "strong_semicolon.csv", ";", {}),
    (strong.read, "strong_comma.csv", ",", {"weight_unit": "kg"}),
    (hevy.read, "hevy.csv", ",", {}),
    (fitnotes.read, "fitnotes.csv", ",", {}),
    (fitnotes.read, "fitnotes_units.csv", ",", {}),
    (fitnotes.read, "fitnotes_locale.csv", ",", {}),
]


@st.composite
def corruptions(draw):
    reader, name, sep, options = draw(st.sampled_from(FILES))
    lines = (DATA / name).read_bytes().decode("utf-8-sig").replace("\r\n", "\n").split("\n")
    lines = [line for line in lines if line]
    for _ in range(draw(st.integers(1, 4))):
        row = draw(st.integers(1, len(lines) - 1))  # never the header
        cells = lines[row].split(sep)
        action = draw(st.sampled_from(["replace", "drop", "add", "garbage", "copy"]))
        column = draw(st.integers(0, len(cells) - 1))
        if action == "replace":
            cells[column] = draw(VALUES)
        elif action == "drop":
            del cells[column]
        elif action == "add":
            cells.insert(column, draw(VALUES))
        elif action == "garbage":
            cells = [draw(VALUES)]
        else:
            lines.insert(row, lines[row])
        lines[row] = sep.join(cells)
    return reader, name, sep, options, "\n".join(lines) + "\n"


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(corruptions())
def test_corrupted_app_files_never_crash_and_always_reconcile(case):
    reader, name, sep, options, text = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_text(text, encoding="utf-8")
        result = reader(path, patient_id="P1", **options)
        report = result.report.iloc[0]
        assert report["read"] == data_rows(path, sep)
        assert report["read"] == report["kept"] + report["quarantined"]
        assert len(result.quarantine) == report["quarantined"]
        # kept rows are really in the tables: sets plus the rows summed into activity
        kept_rows = set(result.tables["exercises"]["app_row"].astype(int))
        for rows in result.tables["activity"]["app_rows"]:
            kept_rows |= {int(r) for r in rows.split("|")}
        assert len(kept_rows) == report["kept"]
        assert kept_rows.isdisjoint(set(result.quarantine["source_row"]))
