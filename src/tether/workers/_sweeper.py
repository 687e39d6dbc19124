"""Stalled-run recovery: a dead worker's jobs go back in the queue.

procrastinate keeps a heartbeat per worker (``procrastinate_workers.last_heartbeat``) and can
list the jobs still ``doing`` on workers that stopped beating (``get_stalled_jobs``), but moving
them on is left to the application. Every worker runs this sweep: each ``every`` seconds, the
worker that wins a try-lock (so sweeps never overlap and no job is retried twice from one stale
reading) retries every Tether job whose worker has been silent for ``stalled_after`` seconds.

A retried job keeps its id, hence its place in its thread's order, and the next worker to take it
starts a new attempt of the run (``_execute``): it resumes from the last committed checkpoint.
The dead worker's hold on the thread (an advisory lock on its saver's connection) went with its
connection; should that connection linger (a half-open TCP connection to a machine that lost its
network), the new attempt gets ``ThreadBusyError`` and waits its turn through the retry schedule.
A job whose run was being cancelled is failed by procrastinate instead of retried; its run row is
marked ``cancelled`` here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import psycopg
from procrastinate import App

from tether.workers._app import TASK_NAME
from tether.workers._schema import SWEEP_LOCK
from tether.workers._store import CHANNEL

__all__ = ["sweep_once", "sweep_stalled"]

_log = logging.getLogger("tether.workers")


async def sweep_once(app: App, conn: psycopg.AsyncConnection[Any], stalled_after: float) -> list[int]:
    """One sweep, if no other worker is sweeping; the ids of the jobs put back in the queue."""
    cur = await conn.execute("SELECT pg_try_advisory_lock(%s, hashtext(current_schema()))", (SWEEP_LOCK,))
    row = await cur.fetchone()
    if not (row and row[0]):
        return []
    retried: list[int] = []
    try:
        jobs = await app.job_manager.get_stalled_jobs(task_name=TASK_NAME, seconds_since_heartbeat=stalled_after)
        for job in jobs:
            assert job.id is not None
            try:
                await app.job_manager.retry_job(job)
            except Exception as exc:  # finished or retried meanwhile: nothing to do
                _log.debug("stalled job %s not retried: %s", job.id, exc)
                continue
            retried.append(job.id)
        if retried:
            _log.warning("picked up %d run(s) of stalled workers: jobs %s", len(retried), retried)
            # a run being cancelled is failed by procrastinate rather than retried: it ends cancelled.
            # The others keep their rows as they are: the next attempt's start takes them over (setting
            # them back to pending here would race with a worker that already took the job again).
            await conn.execute(
                """WITH u AS (UPDATE tether_runs r SET status = 'cancelled', finished_at = clock_timestamp()
                              FROM procrastinate_jobs j
                              WHERE j.id = ANY(%(ids)s) AND j.status = 'failed' AND r.job_id = j.id
                                AND r.status IN ('pending', 'running')
                              RETURNING r.run_id)
                   SELECT pg_notify(%(channel)s, run_id) FROM u""",
                {"ids": retried, "channel": CHANNEL},
            )
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s, hashtext(current_schema()))", (SWEEP_LOCK,))
    return retried


async def sweep_stalled(app: App, conninfo: str, *, stalled_after: float, every: float) -> None:
    """Sweep every ``every`` seconds until cancelled; survives the database going away and back."""
    conn: psycopg.AsyncConnection[Any] | None = None
    try:
        while True:
            await asyncio.sleep(every)
            try:
                if conn is None or conn.closed:
                    conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
                await sweep_once(app, conn, stalled_after)
            except (psycopg.Error, OSError) as exc:
                _log.warning("stalled-run sweep failed, trying again in %.1fs: %s", every, exc)
                if conn is not None:
                    await conn.close()
                conn = None
    finally:
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.close()
