"""The one confidence keyword of :mod:`hipdata.analysis` and :mod:`hipdata.plots`: ``alpha``.

Every public function that returns or draws an interval takes ``alpha`` (``1 - confidence
level``, as statsmodels' ``conf_int(alpha=0.05)``). The earlier spelling ``ci=0.95`` (the level
itself) is still accepted for one release and emits a :class:`DeprecationWarning`.
"""

from __future__ import annotations

import functools
import warnings


def accepts_ci(function):
    """Let ``function(..., ci=level)`` mean ``function(..., alpha=1 - level)``, with a warning.

    >>> @accepts_ci
    ... def interval(*, alpha=0.05):
    ...     return alpha
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     round(interval(ci=0.9), 10), caught[0].category.__name__
    (0.1, 'DeprecationWarning')
    """

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        if "ci" in kwargs:
            level = kwargs.pop("ci")
            if "alpha" in kwargs:
                raise TypeError(f"{function.__name__}: give alpha= only (ci= is its old name)")
            warnings.warn(
                f"{function.__name__}(ci={level!r}) is deprecated and will be removed in the "
                f"next release: use alpha={1 - level:g} (1 - confidence level, as statsmodels)",
                DeprecationWarning,
                stacklevel=2,
            )
            kwargs["alpha"] = 1 - level
        return function(*args, **kwargs)

    return wrapper
