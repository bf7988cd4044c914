"""Shared helpers of the importer tests: the example files and an independent row count."""

from __future__ import annotations

import csv
import io
from pathlib import Path

DATA = Path(__file__).parent / "data" / "sources"
TODAY = "2026-11-01"


def data_rows(path: Path, delimiter: str) -> int:
    """Non-blank records after the header, counted with the csv module (independent of hipdata)."""
    text = path.read_bytes().decode("utf-8-sig")
    records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    return sum(1 for record in records[1:] if any(cell.strip() for cell in record))


def quarantine_rows(result, file: str) -> list[tuple]:
    """(row, column, reason) of a file's quarantine rows, in row order."""
    q = result.quarantine[result.quarantine["source_file"] == file]
    return list(zip(q["source_row"].astype(int), q["column"], q["reason"], strict=True))
