"""Scale-out: runs as jobs of procrastinate, in the PostgreSQL database that holds the checkpoints.

``Client(url).runs.create(thread_id, input)`` enqueues a run; ``tether worker --db URL --graph
module:attr`` processes runs, on as many machines as share the database. Runs of one thread run
one at a time and in order; a dead worker's run is picked up by another from the last committed
checkpoint, and its input is applied once. See docs/scale-out.md.

Needs the ``workers`` extra (``pip install 'tether[workers]'``). The names below are imported on
first use, so that ``tether.workers.cli`` (and with it ``tether --help``) loads without the extra.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tether.workers._client import Client, Runs
    from tether.workers._errors import RunError, RunFailedError, RunNotFoundError, RunTimeoutError
    from tether.workers._schema import setup
    from tether.workers._types import FINAL, Run, RunId, RunRetry, RunStatus
    from tether.workers._worker import WorkerSettings, run_worker, run_worker_async

_WHERE = {
    "FINAL": "_types",
    "Client": "_client",
    "Run": "_types",
    "RunError": "_errors",
    "RunFailedError": "_errors",
    "RunId": "_types",
    "RunNotFoundError": "_errors",
    "RunRetry": "_types",
    "RunStatus": "_types",
    "RunTimeoutError": "_errors",
    "Runs": "_client",
    "WorkerSettings": "_worker",
    "run_worker": "_worker",
    "run_worker_async": "_worker",
    "setup": "_schema",
}

__all__ = [
    "FINAL",
    "Client",
    "Run",
    "RunError",
    "RunFailedError",
    "RunId",
    "RunNotFoundError",
    "RunRetry",
    "RunStatus",
    "RunTimeoutError",
    "Runs",
    "WorkerSettings",
    "run_worker",
    "run_worker_async",
    "setup",
]


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        module = importlib.import_module(f"{__name__}.{where}")
    except ImportError as exc:
        if exc.name in {"procrastinate", "psycopg", "psycopg_pool"}:
            raise ImportError(
                f"tether.workers needs procrastinate and psycopg ({exc.name} is missing): pip install 'tether[workers]'"
            ) from exc
        raise
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
