"""hipdata: outcome research for hip-pain rehabilitation.

Load exercise-session logs with :func:`load`, compute the contract's tables with
:mod:`hipdata.metrics`, and turn them into reports with :mod:`hipdata.report`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from hipdata.catalogue import load_catalogue
from hipdata.dataset import Dataset
from hipdata.errors import DataError
from hipdata.protocol import Protocol

try:
    __version__ = version("hipdata")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"


def load(folder, *, clinics=None, quarters=None, **options) -> Dataset:
    """Load a data folder or a partitioned registry; see :func:`hipdata.io.loader.load`.

    Parameters
    ----------
    folder : path
        A data folder (CONTRACT §1), or a registry written by
        :func:`hipdata.registry.write_registry` (Parquet partitioned by clinic and patient hash).
    clinics : list of str, optional
        Load only these clinics' patients, with all their rows.
    quarters : list of str, optional
        Calendar quarters such as ``"2026Q3"``: load only the episodes of care in progress in at
        least one of them, with all their rows, also those dated outside the quarters (rule:
        :func:`hipdata.registry.selected_patients`). That is what a quarterly audit needs: every
        session and progression dated in the quarters, with the history it is judged against,
        and every episode discharged in them; ``hipdata.registry.quarter_window("2026Q3")`` is
        the quarter and its four-quarter trend.
    **options
        Passed to :func:`hipdata.io.loader.load` (``dayfirst``, ``today``, ...).

    Returns
    -------
    Dataset
        With a filter, rows of other patients are not loaded (neither kept nor quarantined): the
        load report counts them in ``rows_outside_filter`` and ``meta["filter"]`` records the
        filter. From a registry the filter is pushed down to the partitions: other clinics'
        files are never opened (``load_report.attrs["registry_scan"]``); from a plain folder the
        files are read and validated whole, then filtered, and the quarantine stays whole.
    """
    from collections.abc import Mapping

    from hipdata.io.loader import load as _load

    if not isinstance(folder, Mapping):
        from hipdata.registry import is_registry, load_registry

        if is_registry(folder):
            return load_registry(folder, clinics=clinics, quarters=quarters, **options)
    dataset = _load(folder, **options)
    if clinics is None and quarters is None:
        return dataset
    from hipdata.registry import select

    return select(dataset, clinics=clinics, quarters=quarters)


def validate(*args, **kwargs) -> Dataset:
    """Validate DataFrames like files (same rules and quarantine); see
    :func:`hipdata.io.frames.validate`."""
    from hipdata.io.frames import validate as _validate

    return _validate(*args, **kwargs)


def pseudonymise(*args, **kwargs):
    """Replace patient (and clinician) ids by keyed pseudonyms; see
    :func:`hipdata.pseudonymisation.pseudonymise_folder`."""
    from hipdata.pseudonymisation import pseudonymise_folder

    return pseudonymise_folder(*args, **kwargs)


#: Subpackages reachable as attributes after ``import hipdata`` (``hipdata.analysis.fit_mixed``),
#: imported on first use: plots loads matplotlib and seaborn, analysis statsmodels, and
#: ``import hipdata`` should not pay for them (``python -X importtime -c 'import hipdata'``).
_SUBPACKAGES = ("analysis", "metrics", "plots", "report")


def __getattr__(name: str):
    if name in _SUBPACKAGES:
        import importlib

        return importlib.import_module(f"hipdata.{name}")
    raise AttributeError(f"module 'hipdata' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SUBPACKAGES))


__all__ = [
    "Protocol",
    "Dataset",
    "DataError",
    "load",
    "load_catalogue",
    "pseudonymise",
    "validate",
    "__version__",
]
