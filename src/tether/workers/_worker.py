"""A worker process: procrastinate's worker running Tether runs, plus the stalled-run sweep.

``run_worker(url, graph)`` (what ``tether worker`` calls) sets up the tables, opens one
``PostgresSaver`` for all its runs, registers the ``tether.run`` task and runs until SIGINT or
SIGTERM (then it finishes the runs in progress, waiting up to ``shutdown_timeout`` seconds, after
which the runs still going stop at their next step boundary and go back in the queue).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from procrastinate import JobContext
from procrastinate.app import WorkerOptions
from procrastinate.exceptions import JobAborted
from procrastinate.job_context import AbortReason
from psycopg_pool import ConnectionPool

from tether.checkpoint._postgres import PostgresSaver
from tether.graph._builder import StateGraph
from tether.graph._compiled import CompiledStateGraph
from tether.graph._loading import compile_for
from tether.workers._app import QUEUE, TASK_NAME, RunRetryStrategy, make_app
from tether.workers._execute import Abort, RunExecutor, _Aborted, worker_name
from tether.workers._schema import setup
from tether.workers._sweeper import sweep_stalled

__all__ = ["WorkerSettings", "run_worker", "run_worker_async"]

_log = logging.getLogger("tether.workers")


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerSettings:
    """How a worker behaves. The defaults suit production; tests shorten the timings."""

    concurrency: int = 1  # runs at once in this process (threads)
    heartbeat: float = 2.0  # seconds between this worker's heartbeats
    stalled_after: float = 15.0  # a worker silent this long is taken for dead: its runs move on
    sweep_every: float = 2.0  # seconds between stalled-run sweeps
    poll: float = 5.0  # fallback polling for new jobs and cancellations (LISTEN/NOTIFY comes first)
    shutdown_timeout: float | None = 30.0  # on SIGTERM, wait this long for runs in progress
    name: str | None = None  # in logs and on run rows; host:pid by default
    install_signal_handlers: bool = True  # False when the worker runs in a thread of a bigger program


def _abort_of(context: JobContext) -> Abort | None:
    reason = context.abort_reason()
    if reason is None:
        return None
    return "shutdown" if reason == AbortReason.SHUTDOWN else "cancel"


async def run_worker_async(
    url: str, graph: StateGraph | CompiledStateGraph, settings: WorkerSettings | None = None
) -> None:
    """Run a worker in this event loop until it is stopped (SIGINT/SIGTERM, or cancelling the task)."""
    settings = settings or WorkerSettings()
    if settings.concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {settings.concurrency}")
    name = settings.name or worker_name()

    def open_sync() -> tuple[PostgresSaver, ConnectionPool[Any]]:
        with psycopg.connect(url, autocommit=True) as conn:
            setup(conn)
        saver = PostgresSaver.from_conn_string(url, max_size=settings.concurrency + 2)
        pool: ConnectionPool[Any] = ConnectionPool(
            url, min_size=1, max_size=settings.concurrency + 1, kwargs={"autocommit": True}, open=True, name="runs"
        )
        return saver, pool

    saver, pool = await asyncio.to_thread(open_sync)
    try:
        executor = RunExecutor(compile_for(graph, saver), pool, worker=name)
        app = make_app(url, max_size=settings.concurrency + 3)

        @app.task(name=TASK_NAME, queue=QUEUE, pass_context=True, retry=RunRetryStrategy())
        def run(context: JobContext, run_id: str) -> None:
            try:
                executor.execute(run_id, lambda: _abort_of(context))
            except _Aborted as stop:
                raise JobAborted(f"run {run_id}: {stop.why}") from None

        async with app.open_async():
            sweeper = asyncio.create_task(
                sweep_stalled(app, url, stalled_after=settings.stalled_after, every=settings.sweep_every),
                name="tether stalled-run sweep",
            )
            try:
                options: WorkerOptions = {
                    "queues": [QUEUE],
                    "name": name,
                    "concurrency": settings.concurrency,
                    "fetch_job_polling_interval": settings.poll,
                    "abort_job_polling_interval": settings.poll,
                    "update_heartbeat_interval": settings.heartbeat,
                    "stalled_worker_timeout": settings.stalled_after,
                    "install_signal_handlers": settings.install_signal_handlers,
                }
                if settings.shutdown_timeout is not None:
                    options["shutdown_graceful_timeout"] = settings.shutdown_timeout
                await app.run_worker_async(**options)
            finally:
                sweeper.cancel()
                await asyncio.gather(sweeper, return_exceptions=True)
    finally:
        await asyncio.to_thread(pool.close)
        await asyncio.to_thread(saver.close)


def run_worker(url: str, graph: StateGraph | CompiledStateGraph, settings: WorkerSettings | None = None) -> None:
    """Run a worker until SIGINT or SIGTERM: what ``tether worker`` does."""
    asyncio.run(run_worker_async(url, graph, settings))
