"""``Client(url).runs``: enqueue runs, read their status, cancel them, wait for them.

The sync methods do the work; their ``*_async`` twins run them in a thread, so an asyncio
program can await them without blocking its loop.
"""

from __future__ import annotations

import asyncio
import builtins
import time
from types import TracebackType
from typing import Any

import psycopg
from procrastinate import App, SyncPsycopgConnector
from psycopg_pool import ConnectionPool

from tether.checkpoint._base import new_checkpoint_id
from tether.errors import CheckpointError, ConfigError
from tether.types import RunnableConfig
from tether.workers import _store as store
from tether.workers._app import QUEUE, TASK_NAME
from tether.workers._errors import RunFailedError, RunNotFoundError, RunTimeoutError
from tether.workers._schema import setup
from tether.workers._types import Run, RunRetry

__all__ = ["Client", "Runs"]


class Client:
    """A handle on the runs queue in the PostgreSQL database at ``url`` (a URL or ``key=value`` string).

    Creates the tables on first use (idempotent, safe from many processes). Closes its small
    connection pool on ``close()`` or at the end of a ``with`` block.
    """

    def __init__(self, url: str, *, max_size: int = 4) -> None:
        self.url = url
        try:
            self._pool: ConnectionPool[Any] = ConnectionPool(
                url, min_size=1, max_size=max_size, kwargs={"autocommit": True}, open=True, name="tether-client"
            )
            with self._pool.connection() as conn:
                setup(conn)
        except psycopg.Error as exc:
            raise CheckpointError(f"cannot open the runs queue: {str(exc).strip()}") from exc
        # never opened: every call below hands procrastinate the connection (and transaction) to use
        self._app = App(connector=SyncPsycopgConnector(conninfo=url))
        self.runs = Runs(self)

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Runs:
    """The runs of a ``Client``: ``create``, ``get``, ``list``, ``cancel``, ``wait``, ``join``."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._pool = client._pool

    def create(
        self,
        thread_id: str,
        input: Any = None,
        config: RunnableConfig | dict[str, Any] | None = None,
        *,
        retry: RunRetry | None = None,
    ) -> Run:
        """Enqueue a run of ``thread_id``: ``input`` is the graph input, a ``Command`` (say
        ``Command(resume=…)``), or None to continue the thread. The run row and its job commit
        together; runs of one thread run one at a time, in the order they were created."""
        if not thread_id:
            raise ConfigError("a run needs a thread_id")
        config = dict(config or {})
        configurable = dict(config.get("configurable") or {})
        if configurable.setdefault("thread_id", thread_id) != thread_id:
            raise ConfigError(f"config names thread {configurable['thread_id']!r} but the run is for {thread_id!r}")
        config["configurable"] = configurable
        run_id = new_checkpoint_id()  # UUIDv7: runs sort by creation
        with self._pool.connection() as conn, conn.transaction():
            store.insert_run(conn, run_id, thread_id, input, config, retry or RunRetry())
            deferrer = self._client._app.configure_task(TASK_NAME, lock=thread_id, queue=QUEUE, connection=conn)
            job_id = deferrer.defer(run_id=run_id)
            conn.execute("UPDATE tether_runs SET job_id = %s WHERE run_id = %s", (job_id, run_id))
            run = store.get_run(conn, run_id)
        assert run is not None
        return run

    def get(self, run_id: str) -> Run:
        with self._pool.connection() as conn:
            run = store.get_run(conn, run_id)
        if run is None:
            raise RunNotFoundError(f"no run {run_id!r} in this database")
        return run

    def list(
        self, thread_id: str | None = None, *, status: str | None = None, limit: int = 100, offset: int = 0
    ) -> builtins.list[Run]:
        """Runs, oldest first: all of them, or a thread's, or those with a ``status``."""
        with self._pool.connection() as conn:
            return store.list_runs(conn, thread_id=thread_id, status=status, limit=limit, offset=offset)

    def cancel(self, run_id: str) -> Run:
        """Cancel a run; return its record.

        A ``pending`` run is ``cancelled`` at once and never runs. A ``running`` run is asked to stop:
        its worker marks it ``cancelled`` at the next step boundary (what it committed stays), unless
        it finishes first. A final run is returned as it is.
        """
        with self._pool.connection() as conn:
            with conn.transaction():
                run = store.get_run(conn, run_id, lock=True)  # the worker's start of an attempt waits for us
                if run is None:
                    raise RunNotFoundError(f"no run {run_id!r} in this database")
                if run.done:
                    return run
                manager = self._client._app.job_manager
                stopped = run.job_id is not None and manager.cancel_job_by_id(run.job_id, connection=conn)
                if stopped or run.job_id is None:  # still queued: it never runs
                    conn.execute(
                        "UPDATE tether_runs SET status = 'cancelled', finished_at = clock_timestamp(),"
                        " cancel_requested = true WHERE run_id = %s",
                        (run_id,),
                    )
                    conn.execute("SELECT pg_notify(%s, %s)", (store.CHANNEL, run_id))
                else:  # a worker has it: ask it to stop at the next step boundary
                    assert run.job_id is not None
                    manager.cancel_job_by_id(run.job_id, abort=True, connection=conn)
                    conn.execute("UPDATE tether_runs SET cancel_requested = true WHERE run_id = %s", (run_id,))
            return store.get_run(conn, run_id) or run

    def wait(self, run_id: str, timeout: float | None = None) -> Run:
        """Block until the run is final (``success``, ``interrupted``, ``error`` or ``cancelled``)
        and return it; ``RunTimeoutError`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._pool.connection() as conn:
            conn.execute(f"LISTEN {store.CHANNEL}")
            try:
                while True:
                    run = store.get_run(conn, run_id)
                    if run is None:
                        raise RunNotFoundError(f"no run {run_id!r} in this database")
                    if run.done:
                        return run
                    left = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
                    if left <= 0:
                        raise RunTimeoutError(f"run {run_id} is still {run.status} after {timeout}s")
                    for note in conn.notifies(timeout=left):  # a missed note costs at most a second
                        if note.payload == run_id:
                            break
            finally:
                conn.execute(f"UNLISTEN {store.CHANNEL}")

    def join(self, run_id: str, timeout: float | None = None) -> Any:
        """Wait for the run and return the thread's state values where it stopped (as ``invoke``
        would); ``RunFailedError`` if it ended in ``error`` or was ``cancelled``."""
        run = self.wait(run_id, timeout)
        if run.status in ("error", "cancelled"):
            raise RunFailedError(f"run {run_id} of thread {run.thread_id!r} ended {run.status}: {run.error}", run)
        return run.output

    # -- asyncio ------------------------------------------------------------------------------------
    async def create_async(
        self,
        thread_id: str,
        input: Any = None,
        config: RunnableConfig | dict[str, Any] | None = None,
        *,
        retry: RunRetry | None = None,
    ) -> Run:
        return await asyncio.to_thread(self.create, thread_id, input, config, retry=retry)

    async def get_async(self, run_id: str) -> Run:
        return await asyncio.to_thread(self.get, run_id)

    async def list_async(
        self, thread_id: str | None = None, *, status: str | None = None, limit: int = 100, offset: int = 0
    ) -> builtins.list[Run]:
        return await asyncio.to_thread(self.list, thread_id, status=status, limit=limit, offset=offset)

    async def cancel_async(self, run_id: str) -> Run:
        return await asyncio.to_thread(self.cancel, run_id)

    async def wait_async(self, run_id: str, timeout: float | None = None) -> Run:
        return await asyncio.to_thread(self.wait, run_id, timeout)

    async def join_async(self, run_id: str, timeout: float | None = None) -> Any:
        return await asyncio.to_thread(self.join, run_id, timeout)
