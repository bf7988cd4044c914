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
from hipdata.errors import DataError
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

    from hipdata.io.loader import load

    ds = source if isinstance(source, Dataset) else load(source, **load_options)
    root = Path(root)
    if any((root / name).exists() for name in REGISTRY_TABLES):
        raise FileExistsError(f"{root} already holds a registry; write to a new folder")
    root.mkdir(parents=True, exist_ok=True)
    keys = ds.patients[["patient_id", "clinic_id"]].assign(
        bucket=patient_bucket(ds.patients["patient_id"], buckets)
    )
    for name, table in _input_tables(ds).items():
        write_partitioned(pa.Table.from_pandas(table, preserve_index=False), root / name, keys)
    ds.quarantine.to_parquet(root / "quarantine.parquet", index=False)
    ds.load_report.to_parquet(root / "load_report.parquet", index=False)
    return root


def write_partitioned(table, folder: str | os.PathLike, keys: pd.DataFrame) -> None:
    """Write one table (a ``pyarrow.Table`` with ``patient_id``) under ``folder``, partitioned by
    its patients' ``clinic_id`` and ``bucket`` (``keys``: one row per patient), in Arrow: the
    table is never converted to pandas, so a large table costs about its own size in memory.

    Raises
    ------
    ValueError
        When a row's patient is not in ``keys`` (it would have no partition).
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as pads

    ids = pa.array(keys["patient_id"].astype(str).to_numpy(dtype=object), pa.string())
    table = table.drop_columns([c for c in ("clinic_id", "bucket") if c in table.column_names])
    where = pc.index_in(table.column("patient_id").cast(pa.string()), value_set=ids)
    if where.null_count:
        raise ValueError(f"{where.null_count} rows of {folder} belong to no patient of the keys")
    clinic = pa.array(keys["clinic_id"].astype(str).to_numpy(dtype=object), pa.string())
    bucket = pa.array(keys["bucket"].to_numpy(dtype="int32"), pa.int32())
    table = table.append_column("clinic_id", clinic.take(where))
    table = table.append_column("bucket", bucket.take(where))
    pads.write_dataset(
        table,
        folder,
        format="parquet",
        partitioning=_partitioning(),
        basename_template="part-{i}.parquet",
        max_partitions=1 << 20,
    )


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


def _partitioning():
    """Hive partitioning with declared types: a clinic id such as ``007`` stays the text
    ``"007"`` (pyarrow would otherwise infer an integer from the folder names)."""
    import pyarrow as pa
    import pyarrow.dataset as pads

    return pads.partitioning(
        pa.schema([("clinic_id", pa.string()), ("bucket", pa.int32())]), flavor="hive"
    )


def _dataset(root: Path, name: str):
    import pyarrow.dataset as pads

    return pads.dataset(root / name, format="parquet", partitioning=_partitioning())


def is_registry(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a registry written by :func:`write_registry` (a ``patients`` folder
    partitioned by clinic), rather than a plain data folder."""
    return Path(path, "patients").is_dir() and any(Path(path, "patients").glob("clinic_id=*"))


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


#: What ``quarters=`` selects, in one line (recorded in ``meta["filter"]``).
_QUARTERS_RULE = "episodes of care in progress in at least one of the quarters, with all their rows"


def quarter_window(quarter: str, previous: int = 4) -> list[str]:
    """The quarters a quarterly audit reads: ``quarter`` and the ``previous`` ones before it
    (its trend), oldest first.

    >>> quarter_window("2026Q2")
    ['2025Q2', '2025Q3', '2025Q4', '2026Q1', '2026Q2']
    """
    last = pd.Period(quarter, freq="Q")
    return [str(last - n) for n in range(previous, -1, -1)]


def _listed(values: Iterable[str] | str) -> list[str]:
    return [values] if isinstance(values, str) else [str(v) for v in values]


def _quarter_periods(quarters: Iterable[str] | str) -> pd.PeriodIndex:
    listed = _listed(quarters)
    try:
        return pd.PeriodIndex(listed, freq="Q")
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"quarters must be calendar quarters such as '2026Q3', got {listed!r} ({error})"
        ) from None


def _check_clinics(wanted: list[str] | None, known, where: str) -> None:
    """A clinic id that is not in the data is a mistake to report, not an empty selection."""
    if wanted is None:
        return
    missing = sorted(set(wanted) - {str(c) for c in known})
    if missing:
        shown = sorted({str(c) for c in known})
        raise DataError(
            f"no clinic {', '.join(missing)} in the data",
            file=where,
            fix=f"use clinic ids that occur in clinic_id: {', '.join(shown[:20])}"
            + (" ..." if len(shown) > 20 else ""),
        )


def _filter_meta(clinics, quarters) -> dict:
    return {
        "clinics": None if clinics is None else sorted(_listed(clinics)),
        "quarters": None if quarters is None else [str(q) for q in _quarter_periods(quarters)],
        "rule": _QUARTERS_RULE,
    }


def selected_patients(
    patients: pd.DataFrame,
    dated: Iterable[pd.DataFrame] = (),
    *,
    clinics: Iterable[str] | None = None,
    quarters: Iterable[str] | None = None,
) -> pd.Series:
    """Which patients (episodes of care) a ``clinics=`` / ``quarters=`` filter keeps.

    Rule (what one clinic's quarterly audit needs, CONTRACT §6):

    - ``clinics``: the patient's ``clinic_id`` is one of them.
    - ``quarters``: the episode is *in progress* in at least one of the quarters, i.e. its span
      overlaps the quarter. The span runs from the earlier of ``start_date`` and the patient's
      first dated row (sessions in the week before the start count, CONTRACT §4) to the later of
      ``discharge_date`` and the last dated row; an episode not discharged is in progress from
      its start onwards. A selected episode keeps **all** its rows, also those dated outside the
      quarters: a progression dated in the quarter is judged against the family's earlier
      sessions, and an episode discharged in the quarter (the episode indicators) is judged on
      its whole course. So every session, progression and discharge dated in a selected quarter
      belongs to a selected episode, and the audit's figures for those quarters are those of the
      whole data. :func:`quarter_window` gives a quarter and its four-quarter trend.

    Parameters
    ----------
    patients : DataFrame
        ``patient_id, clinic_id, start_date, discharge_date``.
    dated : iterable of DataFrame
        Tables with ``patient_id, date`` (sets, activity, outcomes, treatments).
    clinics, quarters : list of str, optional
        ``None``: no filter on that key.

    Returns
    -------
    Series of bool
        Aligned with ``patients``.
    """
    keep = pd.Series(True, index=patients.index)
    if clinics is not None:
        keep &= patients["clinic_id"].astype(str).isin(_listed(clinics))
    if quarters is None:
        return keep
    periods = _quarter_periods(quarters)
    first = pd.to_datetime(patients["start_date"]).to_numpy(dtype="datetime64[ns]")
    last = pd.to_datetime(patients["discharge_date"]).to_numpy(dtype="datetime64[ns]")
    open_episode = np.isnat(last)
    rows = [t[["patient_id", "date"]] for t in dated if t is not None and len(t)]
    if rows:
        dates = pd.concat(rows, ignore_index=True)
        dates["date"] = pd.to_datetime(dates["date"]).astype("datetime64[ns]")
        span = dates.groupby("patient_id", sort=False)["date"].agg(["min", "max"])
        span = span.reindex(patients["patient_id"].to_numpy())
        earliest = span["min"].to_numpy(dtype="datetime64[ns]")
        latest = span["max"].to_numpy(dtype="datetime64[ns]")
        first = np.where(~np.isnat(earliest) & (earliest < first), earliest, first)
        last = np.where(~np.isnat(latest) & (latest > last), latest, last)
    in_any = np.zeros(len(patients), dtype=bool)
    for period in periods:
        begins = np.datetime64(period.start_time, "ns")
        ends = np.datetime64(period.end_time, "ns")
        in_any |= (first <= ends) & (open_episode | (last >= begins))
    return keep & in_any


def _loaded_tables(ds: Dataset) -> dict[str, pd.DataFrame]:
    return {
        "exercises": ds.sets,
        "activity": ds.activity,
        "outcomes": ds.outcomes,
        "treatments": ds.treatments,
    }


def select(
    ds: Dataset,
    *,
    clinics: Iterable[str] | None = None,
    quarters: Iterable[str] | None = None,
) -> Dataset:
    """The part of a loaded dataset that ``clinics=`` / ``quarters=`` select: the patients of
    :func:`selected_patients` with all their rows.

    Rows of other patients are not loaded, which is not the same as quarantined: the load report
    counts them in a ``rows_outside_filter`` column, so that for every file ``rows_read ==
    rows_kept + rows_quarantined + rows_outside_filter``. The quarantine is kept whole (a
    quarantined row has no trustworthy patient or clinic to filter on). ``meta["filter"]``
    records the filter.
    """
    from dataclasses import replace

    tables = _loaded_tables(ds)
    if clinics is not None:
        _check_clinics(_listed(clinics), ds.patients["clinic_id"].unique(), ds.source)
    keep = selected_patients(ds.patients, tables.values(), clinics=clinics, quarters=quarters)
    ids = pd.Index(ds.patients.loc[keep, "patient_id"])
    kept = {"patients": ds.patients[keep].reset_index(drop=True)}
    for name, table in tables.items():
        kept[name] = table[table["patient_id"].isin(ids)].reset_index(drop=True)
    dropped = {"patients": len(ds.patients) - len(kept["patients"])}
    dropped.update({name: len(t) - len(kept[name]) for name, t in tables.items()})
    report = ds.load_report.copy()
    outside = report["table"].map(dropped).fillna(0).astype("int64")
    report["rows_kept"] = report["rows_kept"] - outside
    if "rows_outside_filter" in report:
        outside = outside + report["rows_outside_filter"]
    report["rows_outside_filter"] = outside
    return replace(
        ds,
        patients=kept["patients"],
        sets=kept["exercises"],
        activity=kept["activity"],
        outcomes=kept["outcomes"],
        treatments=kept["treatments"],
        load_report=report,
        meta={**ds.meta, "filter": _filter_meta(clinics, quarters)},
    )


def load_registry(
    root: str | os.PathLike,
    *,
    clinics: Iterable[str] | None = None,
    buckets: Sequence[int] | None = None,
    quarters: Iterable[str] | None = None,
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
        Quarters such as ``"2026Q3"`` (see :func:`quarter_window`): keep the episodes of care in
        progress in at least one of them, with all their rows (:func:`selected_patients`).
        Applied to the chosen partitions' rows before they are validated (the registry is
        partitioned by clinic and patient, not by quarter: one episode's rows span quarters).
    **load_options
        Passed to :func:`hipdata.load` (``dayfirst``, ``catalogue``, ``measures``, ``today``...).

    Returns
    -------
    Dataset
        As :func:`hipdata.load` returns it, for the rows read from the chosen partitions. With a
        filter, the load report's ``rows_outside_filter`` counts the rows read but not selected
        by ``quarters`` (rows of partitions never opened are not counted: the
        :class:`RegistryScan` in ``load_report.attrs["registry_scan"]`` says how many files and
        bytes were read, of how many). The quarantine is that of validating the registry's rows
        again (normally empty); what the source load quarantined is in ``root/quarantine.parquet``.
    """
    from hipdata.io.loader import load

    clinics = None if clinics is None else _listed(clinics)
    _check_clinics(clinics, {p.clinic_id for p in partitions(root)}, str(root))
    tables, scan = read_tables(root, clinics=clinics, buckets=buckets)
    outside: dict[str, int] = {}
    if quarters is not None:
        patients = tables["patients"]
        dated = [t for n, t in tables.items() if n != "patients"]
        ids = pd.Index(
            patients.loc[selected_patients(patients, dated, quarters=quarters), "patient_id"]
        )
        chosen = {n: t[t["patient_id"].isin(ids)] for n, t in tables.items()}
        outside = {n: len(tables[n]) - len(chosen[n]) for n in tables}
        tables = chosen
    with tempfile.TemporaryDirectory(prefix="hipdata-registry-") as scratch:
        for name, table in tables.items():
            table.to_parquet(Path(scratch, f"{name}.parquet"), index=False)
        ds = load(scratch, **load_options)
    ds.source = str(root)
    if clinics is not None or quarters is not None:
        report = ds.load_report
        report["rows_outside_filter"] = report["table"].map(outside).fillna(0).astype("int64")
        report["rows_read"] = report["rows_read"] + report["rows_outside_filter"]
        ds.meta["filter"] = _filter_meta(clinics, quarters)
    ds.load_report.attrs["registry_scan"] = scan
    return ds


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
