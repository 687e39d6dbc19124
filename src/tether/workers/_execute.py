"""One attempt at one run, on a worker: the exactly-once rule lives here.

A run's input must go into its thread once, however many attempts the run takes (a worker
killed mid-run, a failure retried). Before its first attempt applies the input, the worker
records the thread's *start state* on the run row: the id of the thread's newest checkpoint and
a digest of that checkpoint's pending writes. Every write a run makes changes one of the two (a
new turn commits its input checkpoint with its first step, or alone if the step fails; a
``Command(resume=…)`` or ``Command(update=…)`` to a paused thread writes pending ``resume`` /
``input`` writes), and no other run writes to the thread in between (the job lock on the thread
id, and the saver's advisory lock behind it). So at the start of a later attempt:

* the thread still has the recorded start state: nothing of this run committed; apply the input;
* it has changed: the input (and maybe more) committed; continue with ``invoke(None)``, which
  resumes from the last committed checkpoint and its pending writes, so no step runs twice.

The record is written (and committed) before the input is applied, so a crash between the two
leaves a record equal to the thread, and the input is applied again: correct, since it was not.
The checkpoint metadata also carries ``run_id``, for people and tools reading the history.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
from collections.abc import Callable, Iterator
from typing import Any, Literal

from psycopg_pool import ConnectionPool

from tether.checkpoint._base import BaseCheckpointSaver
from tether.errors import ThreadBusyError
from tether.graph._compiled import CompiledStateGraph
from tether.graph._loop import INTERRUPT
from tether.graph._retry import default_retry_on
from tether.graph._thread_status import read_thread_status
from tether.workers import _store as store
from tether.workers._types import Run

__all__ = ["Abort", "RetryRun", "RunExecutor", "thread_state", "worker_name"]

Abort = Literal["cancel", "shutdown"]
_log = logging.getLogger("tether.workers")


class RetryRun(Exception):  # noqa: N818 - control flow for the job engine, not an error
    """Raised by an attempt that should be tried again in ``delay`` seconds (the run row says why)."""

    def __init__(self, delay: float) -> None:
        super().__init__(delay)
        self.delay = delay


class _Aborted(Exception):  # noqa: N818
    def __init__(self, why: Abort) -> None:
        super().__init__(why)
        self.why = why


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def thread_state(saver: BaseCheckpointSaver, thread_id: str, ns: str) -> str:
    """The thread's newest checkpoint id and a digest of its pending writes (``-`` for a new thread)."""
    loaded = saver.get(thread_id, ns)
    if loaded is None:
        return "-"
    digest = hashlib.sha256()
    for w in sorted(loaded.pending, key=lambda w: (w.task_id, w.kind)):
        for part in (w.task_id, w.kind, w.value):
            digest.update(part.encode())
            digest.update(b"\0")
    return f"{loaded.record.checkpoint_id}:{digest.hexdigest()[:32]}"


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class RunExecutor:
    """Carries out attempts of runs of one compiled graph (whose checkpointer is the shared store)."""

    def __init__(self, graph: CompiledStateGraph, pool: ConnectionPool[Any], *, worker: str | None = None) -> None:
        if graph.checkpointer is None:
            raise ValueError("the workers' graph needs a checkpointer: the PostgreSQL saver the runs share")
        self.graph = graph
        self.saver: BaseCheckpointSaver = graph.checkpointer
        self.pool = pool
        self.worker = worker or worker_name()

    def execute(self, run_id: str, abort: Callable[[], Abort | None] = lambda: None) -> None:
        """One attempt at ``run_id``. Returns when the run is final (or was already); raises
        ``RetryRun`` when it should be tried again, after recording why on the run row."""
        with self.pool.connection() as conn:
            started = store.start_attempt(conn, run_id, self.worker)
        if started is None or started[0].status == "cancelled":
            return  # final already: a stalled copy of a job another worker finished, or cancelled
        run, recorded = started
        configurable = dict(run.config.get("configurable") or {})
        configurable["thread_id"] = run.thread_id
        ns = str(configurable.get("checkpoint_ns", ""))
        apply = run.input
        try:
            if apply is not None:
                now = thread_state(self.saver, run.thread_id, ns)
                if recorded is None:
                    with self.pool.connection() as conn:
                        recorded = store.record_start_state(conn, run_id, now)
                if recorded != now:
                    apply = None  # an earlier attempt committed the input: continue from there
            if apply is None and run.attempts > 1:
                configurable.pop("checkpoint_id", None)  # a fork happened already: go on from the head
            metadata = {**(run.config.get("metadata") or {}), "run_id": run_id}
            config: Any = {**run.config, "configurable": configurable, "metadata": metadata}
            output = self._stream(apply, config, abort)
            # the one reader of open interrupts and status: a run that leaves tasks due (an
            # interrupt() waiting for its answer, a breakpoint) ends interrupted
            interrupted = read_thread_status(self.saver, run.thread_id, ns).status() != "done"
        except _Aborted as stop:
            self._stopped(run, stop.why)
            raise
        except BaseException as exc:
            self._failed(run, exc, abort())
            raise
        with self.pool.connection() as conn:
            store.finish(conn, run_id, "interrupted" if interrupted else "success", output=output)

    def _stream(self, input: Any, config: Any, abort: Callable[[], Abort | None]) -> Any:
        output: Any = None
        chunks: Iterator[Any] = self.graph.stream(input, config, stream_mode="values")
        with contextlib.closing(chunks):  # type: ignore[type-var]
            for chunk in chunks:
                output = self.graph.output_values({k: v for k, v in chunk.items() if k != INTERRUPT})
                why = abort()  # a "values" chunk follows a committed step: a step boundary
                if why is not None:
                    raise _Aborted(why)
        return output

    def _stopped(self, run: Run, why: Abort) -> None:
        with self.pool.connection() as conn:
            if why == "cancel":
                store.finish(conn, run.run_id, "cancelled", error="cancelled while running")
            else:
                store.requeue(conn, run.run_id, "the worker shut down during the run", failed=False)

    def _failed(self, run: Run, exc: BaseException, why: Abort | None) -> None:
        text = _describe(exc)
        with self.pool.connection() as conn:
            if why == "cancel":
                store.finish(conn, run.run_id, "cancelled", error=text)
                return
            if isinstance(exc, ThreadBusyError):  # another session still holds the thread: wait for it
                store.requeue(conn, run.run_id, text, failed=False)
                raise RetryRun(run.retry.initial_interval) from exc
            if isinstance(exc, Exception) and default_retry_on(exc):
                delay = run.retry.delay(run.failures + 1)
                if delay is not None:
                    _log.warning("run %s failed, retrying in %.1fs: %s", run.run_id, delay, text)
                    store.requeue(conn, run.run_id, text, failed=True)
                    raise RetryRun(delay) from exc
            store.finish(conn, run.run_id, "error", error=text)
