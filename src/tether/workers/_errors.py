"""Errors of the scale-out workers, under Tether's one root.

TetherError
└── RunError                  a run in the queue could not be found, waited for or finished
    ├── RunNotFoundError      no run has this id (in this database and schema)
    ├── RunTimeoutError       wait()/join() gave up before the run finished
    └── RunFailedError        join() on a run that ended in error or was cancelled
"""

from __future__ import annotations

from tether.errors import TetherError

__all__ = ["RunError", "RunFailedError", "RunNotFoundError", "RunTimeoutError"]


class RunError(TetherError):
    """Something about a queued run went wrong."""


class RunNotFoundError(RunError, KeyError):
    """No run has this id."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class RunTimeoutError(RunError, TimeoutError):
    """The run did not finish within the time given to ``wait``/``join``."""


class RunFailedError(RunError):
    """``join`` on a run that ended in ``error`` or ``cancelled``; ``run`` is its record."""

    def __init__(self, message: str, run: object) -> None:
        super().__init__(message)
        self.run = run
