"""Write computed tables to disk (CSV or Parquet), atomically.

The writers live in :mod:`hipdata.io.writers` (one CSV writer for every file hipdata writes,
formula-safe); they are re-exported here so ``hipdata.metrics.write_tables`` keeps working.
"""

from __future__ import annotations

from hipdata.io.writers import FORMATS, csv_ready, neutralise_text, write_csv, write_tables

__all__ = ["FORMATS", "csv_ready", "neutralise_text", "write_csv", "write_tables"]
