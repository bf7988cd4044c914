"""The one exception hipdata raises for input it cannot use."""

from __future__ import annotations


class DataError(Exception):
    """A file (or the call) cannot be used at all.

    The message names the file, the problem and the fix, so that the CLI can print it as it
    is, without a traceback. Row-level problems never raise: they go to the quarantine.
    """

    def __init__(self, problem: str, *, file: str | None = None, fix: str | None = None):
        self.file = file
        self.problem = problem
        self.fix = fix
        parts = [f"{file}: {problem}" if file else problem]
        if fix:
            parts.append(f"Fix: {fix}")
        super().__init__("\n".join(parts))
