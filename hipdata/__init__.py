"""hipdata: outcome research for hip-pain rehabilitation.

Load exercise-session logs with :func:`load`, compute the contract's tables with
:mod:`hipdata.metrics`, and turn them into reports with :mod:`hipdata.report`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from hipdata.catalogue import load_catalogue
from hipdata.dataset import Dataset
from hipdata.errors import DataError

try:
    __version__ = version("hipdata")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"


def load(*args, **kwargs) -> Dataset:
    """Load a data folder; see :func:`hipdata.io.loader.load`."""
    from hipdata.io.loader import load as _load

    return _load(*args, **kwargs)


__all__ = ["Dataset", "DataError", "load", "load_catalogue", "__version__"]
