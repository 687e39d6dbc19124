"""The procrastinate wiring: one App per process, on the same database as the checkpoints.

A run is a job of the task ``tether.run`` in the queue ``tether``, whose only argument is the
run id (everything else is on the ``tether_runs`` row), and whose ``lock`` is the thread id:
procrastinate runs jobs with the same lock one at a time, in the order they were deferred (a
job waiting for a retry keeps its place), which is exactly "one run per thread, in order".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from procrastinate import App, PsycopgConnector, RetryDecision
from procrastinate.exceptions import JobAborted
from procrastinate.jobs import Job
from procrastinate.retry import BaseRetryStrategy

from tether.workers._execute import RetryRun

__all__ = ["QUEUE", "TASK_NAME", "RunRetryStrategy", "make_app"]

TASK_NAME = "tether.run"
QUEUE = "tether"


class RunRetryStrategy(BaseRetryStrategy):
    """Tether decides, procrastinate schedules: a ``RetryRun`` comes back after its delay, and a
    job stopped by a worker's shutdown comes back at once; anything else is final."""

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if isinstance(exception, RetryRun):
            return RetryDecision(retry_at=datetime.now(UTC) + timedelta(seconds=exception.delay))
        if isinstance(exception, JobAborted):  # procrastinate asks only when the abort was a shutdown
            return RetryDecision()
        return None


def make_app(conninfo: str, *, max_size: int = 4, **pool: Any) -> App:
    """A procrastinate ``App`` over a psycopg pool of at most ``max_size`` connections to ``conninfo``."""
    connector = PsycopgConnector(conninfo=conninfo, min_size=1, max_size=max_size, **pool)
    return App(connector=connector)
