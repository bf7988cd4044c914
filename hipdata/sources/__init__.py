"""Importers: turn real exports into a canonical hipdata data folder.

Each importer module has ``read(source, ...) -> ImportResult``; ``ImportResult.write(folder)``
writes the tables (``patients.csv``, ``exercises.csv``, ``activity.csv``, ...) with
``quarantine.csv`` and ``import_report.csv`` (every source row kept or quarantined, with
``read = kept + quarantined``), and the folder loads with :func:`hipdata.load`.

- :mod:`hipdata.sources.strong`, :mod:`hipdata.sources.hevy`, :mod:`hipdata.sources.fitnotes`:
  workout-app exports, one patient per file;
- :mod:`hipdata.sources.pain_diary`: pains from a separate diary merged onto app sessions;
- :mod:`hipdata.sources._common`: the shared core (record reading, row accounting, writing).
"""

from hipdata.sources._common import ImportResult, read_records

__all__ = ["ImportResult", "read_records"]
