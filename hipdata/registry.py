"""A registry kept as a partitioned Parquet dataset: write it, read one clinic's slice, and compute
the contract's tables partition by partition (in bounded memory, or on a Dask cluster).

Layout (Hive partitioning, readable by pyarrow, DuckDB, Spark and Dask alike)::

    ROOT/patients/clinic_id=C01/bucket=07/part-0.parquet
    ROOT/exercises/clinic_id=C01/bucket=07/part-0.parquet     (one row per set)
    ROOT/activity/...  ROOT/outcomes/...  ROOT/treatments/...
    ROOT/quarantine.parquet  ROOT/load_report.parquet          (what the source load set aside)

Every row of every table sits in its patient's clinic and in a bucket fixed by a keyed hash of the
patient id, so all the rows of one patient are in one partition. Every metric of the contract is
computed per patient, which is why a partition's tables need nothing from any other partition:
the tables of the whole registry are the partitions' tables stacked.

The registry holds *validated* tables: :func:`write_registry` loads a data folder with
:func:`hipdata.load`, keeps its quarantine beside the tables, and writes the clean rows in the
input layout, so :func:`load_registry` validates them again cheaply (nothing is ever lost between
the two: a row the first load kept, the second keeps).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hipdata.dataset import Dataset
from hipdata.io.columns import KNOWN_COLUMNS

#: Tables of a registry, in the input layout (CONTRACT §1).
REGISTRY_TABLES = ("patients", "exercises", "activity", "outcomes", "treatments")
#: Patient-hash buckets per clinic (a partition holds one clinic's patients of one bucket).
DEFAULT_BUCKETS = 16
#: Columns of the input layout written for each table (from the loader's clean tables).
_INPUT_COLUMNS = KNOWN_COLUMNS  # present ones only: the clean tables' set, load_kg
_HASH_KEY = "hipdata-registry"  # 16 characters, as pandas' hash_array requires


def patient_bucket(patient_ids: pd.Series, buckets: int = DEFAULT_BUCKETS) -> np.ndarray:
    """The bucket (``0 .. buckets-1``) of each patient id: a fixed hash, the same on every run and
    machine, so a patient's rows always land in the same partition.

    >>> buckets = patient_bucket(pd.Series(["P001", "P002", "P001"]), 16)
    >>> bool(buckets[0] == buckets[2] == patient_bucket(pd.Series(["P001"]), 16)[0])
    True
    """
    hashes = pd.util.hash_array(patient_ids.astype(str).to_numpy(dtype=object), hash_key=_HASH_KEY)
    return (hashes % np.uint64(buckets)).astype(np.int64)


def _input_tables(ds: Dataset) -> dict[str, pd.DataFrame]:
    from hipdata.dataset import PATIENT_COLUMNS

    tables = {"patients": ds.patients[PATIENT_COLUMNS]}
    sources = {"exercises": ds.sets, "activity": ds.activity, "outcomes": ds.outcomes}
    sources["treatments"] = ds.treatments
    for name, frame in sources.items():
        if frame is not None and len(frame):
            tables[name] = frame[[c for c in _INPUT_COLUMNS[name] if c in frame.columns]]
    return tables


def write_registry(
    source: str | os.PathLike | Dataset,
    root: str | os.PathLike,
    *,
    buckets: int = DEFAULT_BUCKETS,
    **load_options,
) -> Path:
    """Write a data folder (or a loaded :class:`Dataset`) as a partitioned registry at ``root``.

    Parameters
    ----------
    source : path or Dataset
        A data folder (loaded with ``hipdata.load(source, **load_options)``) or a dataset.
    root : path
        The registry folder (created; must not hold a registry already).
    buckets : int
        Patient-hash buckets per clinic.

    Returns
    -------
    Path
        ``root``.
    """
    import pyarrow as pa
    import pyarrow.dataset as pads

    from hipdata.io.loader import load

    ds = source if isinstance(source, Dataset) else load(source, **load_options)
    root = Path(root)
    if any((root / name).exists() for name in REGISTRY_TABLES):
        raise FileExistsError(f"{root} already holds a registry; write to a new folder")
    root.mkdir(parents=True, exist_ok=True)
    patients = ds.patients[["patient_id", "clinic_id"]].assign(
        bucket=patient_bucket(ds.patients["patient_id"], buckets)
    )
    for name, table in _input_tables(ds).items():
        if name != "patients":
            table = table.merge(patients, on="patient_id", how="left", validate="many_to_one")
        else:
            table = table.assign(bucket=patient_bucket(table["patient_id"], buckets))
        pads.write_dataset(
            pa.Table.from_pandas(table, preserve_index=False),
            root / name,
            format="parquet",
            partitioning=["clinic_id", "bucket"],
            partitioning_flavor="hive",
            basename_template="part-{i}.parquet",
        )
    ds.quarantine.to_parquet(root / "quarantine.parquet", index=False)
    ds.load_report.to_parquet(root / "load_report.parquet", index=False)
    return root


@dataclass(frozen=True)
class Partition:
    """One clinic's patients of one bucket."""

    clinic_id: str
    bucket: int

    @property
    def label(self) -> str:
        return f"{self.clinic_id}-{self.bucket:03d}"


def partitions(root: str | os.PathLike, clinics: Iterable[str] | None = None) -> list[Partition]:
    """The registry's partitions (from the patients table's folders), optionally of some clinics."""
    wanted = None if clinics is None else {str(c) for c in clinics}
    found = []
    for clinic_dir in sorted(Path(root, "patients").glob("clinic_id=*")):
        clinic = _unescape(clinic_dir.name.split("=", 1)[1])
        if wanted is not None and clinic not in wanted:
            continue
        for bucket_dir in sorted(clinic_dir.glob("bucket=*")):
            found.append(Partition(clinic, int(bucket_dir.name.split("=", 1)[1])))
    return found


def _unescape(value: str) -> str:
    from urllib.parse import unquote

    return unquote(value)


@dataclass
class RegistryScan:
    """What reading a slice of the registry touches: files and bytes, against the whole."""

    files: list[Path]
    bytes_read: int
    bytes_total: int

    @property
    def fraction(self) -> float:
        return self.bytes_read / self.bytes_total if self.bytes_total else 0.0


def _filter(clinics: Sequence[str] | None, buckets: Sequence[int] | None):
    import pyarrow.dataset as pads

    condition = None
    if clinics is not None:
        condition = pads.field("clinic_id").isin(list(clinics))
    if buckets is not None:
        by_bucket = pads.field("bucket").isin([int(b) for b in buckets])
        condition = by_bucket if condition is None else condition & by_bucket
    return condition


def _dataset(root: Path, name: str):
    import pyarrow.dataset as pads

    return pads.dataset(root / name, format="parquet", partitioning="hive")


def read_tables(
    root: str | os.PathLike,
    *,
    clinics: Sequence[str] | None = None,
    buckets: Sequence[int] | None = None,
) -> tuple[dict[str, pd.DataFrame], RegistryScan]:
    """The input-layout tables of some clinics (and buckets), reading only their partitions.

    The clinic and bucket filters are pushed down to the file listing (pyarrow datasets prune the
    Hive partitions before opening any file), so the bytes read are those of the chosen
    partitions only; the returned :class:`RegistryScan` says how many.
    """
    root = Path(root)
    condition = _filter(clinics, buckets)
    tables: dict[str, pd.DataFrame] = {}
    files: list[Path] = []
    total = 0
    for name in REGISTRY_TABLES:
        if not (root / name).is_dir():
            continue
        dataset = _dataset(root, name)
        total += sum(Path(f).stat().st_size for f in dataset.files)
        chosen = [Path(f.path) for f in dataset.get_fragments(filter=condition)]
        files.extend(chosen)
        table = dataset.to_table(filter=condition).to_pandas()
        if name != "patients":
            table = table.drop(columns=["clinic_id"])
        tables[name] = table.drop(columns=["bucket"])
    scan = RegistryScan(files, sum(f.stat().st_size for f in files), total)
    return tables, scan


def load_registry(
    root: str | os.PathLike,
    *,
    clinics: Sequence[str] | None = None,
    buckets: Sequence[int] | None = None,
    quarters: Sequence[str] | None = None,
    **load_options,
) -> Dataset:
    """Load some clinics of a registry as a :class:`Dataset`, reading only their partitions.

    Parameters
    ----------
    root : path
        A registry written by :func:`write_registry`.
    clinics : list of str, optional
        Clinic ids to read (default: all). Pushed down: other clinics' files are never opened.
    buckets : list of int, optional
        Patient-hash buckets to read (default: all).
    quarters : list of str, optional
        Keep only episodes of care active in these quarters (``"2026Q3"``: started by the
        quarter's end and not discharged before its start), with all their rows. Applied after
        reading (a patient's rows span quarters, so the registry is not partitioned by quarter).
    **load_options
        Passed to :func:`hipdata.load` (``dayfirst``, ``catalogue``, ``measures``, ``today``...).

    Returns
    -------
    Dataset
        As :func:`hipdata.load` returns it; ``attrs`` of its ``load_report`` hold the
        :class:`RegistryScan` under ``"registry_scan"``.
    """
    from hipdata.io.loader import load

    tables, scan = read_tables(root, clinics=clinics, buckets=buckets)
    if quarters is not None:
        tables = _active_in(tables, quarters)
    with tempfile.TemporaryDirectory(prefix="hipdata-registry-") as scratch:
        for name, table in tables.items():
            table.to_parquet(Path(scratch, f"{name}.parquet"), index=False)
        ds = load(scratch, **load_options)
    ds.load_report.attrs["registry_scan"] = scan
    return ds


def _active_in(tables: dict[str, pd.DataFrame], quarters: Sequence[str]) -> dict[str, pd.DataFrame]:
    periods = pd.PeriodIndex(list(quarters), freq="Q")
    first, last = periods.min().start_time, periods.max().end_time
    patients = tables["patients"]
    start = pd.to_datetime(patients["start_date"])
    discharge = pd.to_datetime(patients["discharge_date"])
    active = (start <= last) & (discharge.isna() | (discharge >= first))
    keep = set(patients.loc[active, "patient_id"])
    return {
        name: (table[table["patient_id"].isin(keep)] if name != "patients" else patients[active])
        for name, table in tables.items()
    }


def partition_tables(root: str | os.PathLike, partition: Partition, **options) -> dict:
    """The contract's tables (:func:`hipdata.metrics.compute_all`) of one partition."""
    from hipdata.metrics import compute_all
    from hipdata.protocol import Protocol

    load_options = {k: v for k, v in options.items() if k in _LOAD_OPTIONS}
    metric_options = {k: v for k, v in options.items() if k not in _LOAD_OPTIONS}
    ds = load_registry(
        root, clinics=[partition.clinic_id], buckets=[partition.bucket], **load_options
    )
    tables = compute_all(ds, Protocol(**metric_options))
    tables["quarantine"] = ds.quarantine
    return tables


_LOAD_OPTIONS = ("dayfirst", "pain_scale", "catalogue", "measures", "today")


def _write_partition(root: str, out: str, partition: Partition, options: dict) -> dict[str, int]:
    """Compute one partition and write each table as ``out/<table>/<partition>.parquet``."""
    tables = partition_tables(root, partition, **options)
    rows = {}
    for name, table in tables.items():
        folder = Path(out, name)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{partition.label}.parquet"
        temp = folder / f".{partition.label}.parquet.tmp"
        table.to_parquet(temp, index=False)
        os.replace(temp, target)
        rows[name] = len(table)
    return rows


def metrics_by_partition(
    root: str | os.PathLike,
    out: str | os.PathLike,
    *,
    clinics: Sequence[str] | None = None,
    client=None,
    progress: Callable[[int, int], None] | None = None,
    **options,
) -> pd.DataFrame:
    """Compute the contract's tables partition by partition, writing ``out/<table>/*.parquet``.

    Memory is bounded by the largest partition, not by the registry. With a Dask ``client``
    (``dask.distributed.Client``; ``pip install hipdata[dask]``) the partitions are computed on
    its workers, each reading its own files (the workers must see ``root`` and ``out``, e.g. a
    shared or object-store path); the result is the same files either way.

    Returns
    -------
    DataFrame
        One row per partition: ``clinic_id, bucket`` and the row count of each table written.
    """
    root, out = str(Path(root).resolve()), str(Path(out).resolve())
    parts = partitions(root, clinics)
    if client is not None:
        futures = client.map(
            _write_partition, [root] * len(parts), [out] * len(parts), parts, [options] * len(parts)
        )
        counts = client.gather(futures)
    else:
        counts = []
        for done, part in enumerate(parts, start=1):
            counts.append(_write_partition(root, out, part, options))
            if progress is not None:
                progress(done, len(parts))
    frame = pd.DataFrame.from_records(counts)
    frame.insert(0, "bucket", [p.bucket for p in parts])
    frame.insert(0, "clinic_id", [p.clinic_id for p in parts])
    return frame


def read_partitioned(out: str | os.PathLike, table: str) -> pd.DataFrame:
    """One table written by :func:`metrics_by_partition`, all partitions stacked."""
    files = sorted(Path(out, table).glob("*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
