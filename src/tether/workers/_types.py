"""The run record: what a client enqueued, where it stands, and what it ended with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NewType

__all__ = ["FINAL", "RETRY_DEFAULTS", "Run", "RunId", "RunRetry", "RunStatus"]

RunId = NewType("RunId", str)

RunStatus = Literal["pending", "running", "interrupted", "success", "error", "cancelled"]
"""``pending``: queued (or waiting for a retry); ``running``: a worker holds it; the other four are final."""

FINAL: frozenset[str] = frozenset({"interrupted", "success", "error", "cancelled"})


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRetry:
    """How often and how patiently a worker runs a failed run again.

    ``max_attempts`` counts attempts that *failed* (a node raised past its own ``RetryPolicy``,
    or the database went away); a worker killed mid-run does not use one up. The wait before
    attempt ``k + 1`` is ``initial_interval * backoff_factor ** (k - 1)``, at most ``max_interval``.
    Which errors are worth another attempt is ``tether.graph.default_retry_on``'s rule: lost
    connections, 5xx answers and Tether's storage errors yes, programming mistakes no.
    """

    max_attempts: int = 3
    initial_interval: float = 1.0
    backoff_factor: float = 2.0
    max_interval: float = 60.0

    def delay(self, failures: int) -> float | None:
        """Seconds before the next attempt after ``failures`` failed ones, or None to give up."""
        if failures >= self.max_attempts:
            return None
        return min(self.max_interval, self.initial_interval * self.backoff_factor ** max(0, failures - 1))

    def as_json(self) -> dict[str, Any]:
        return {
            "max_attempts": self.max_attempts,
            "initial_interval": self.initial_interval,
            "backoff_factor": self.backoff_factor,
            "max_interval": self.max_interval,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> RunRetry:
        return cls(**(data or {}))


RETRY_DEFAULTS = RunRetry()


@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    """One row of ``tether_runs``, as ``client.runs.get`` returns it."""

    run_id: RunId
    thread_id: str
    status: RunStatus
    input: Any  # the graph input, a Command, or None (continue the thread)
    config: dict[str, Any]
    retry: RunRetry
    attempts: int  # how many times a worker started it (a killed worker's start counts)
    failures: int  # attempts that raised
    error: str | None  # the last failure, kept when a retry then succeeds
    output: Any  # the thread's state values when the run stopped (success or interrupted)
    job_id: int | None  # the procrastinate job that carries it
    worker: str | None  # host:pid of the worker that last started it
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def done(self) -> bool:
        """Whether the run has stopped for good: success, interrupted, error or cancelled."""
        return self.status in FINAL
