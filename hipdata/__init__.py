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


def load(*args, **kwargs) -> Dataset:
    """Load a data folder; see :func:`hipdata.io.loader.load`."""
    from hipdata.io.loader import load as _load

    return _load(*args, **kwargs)


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
