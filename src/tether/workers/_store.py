"""``tether_runs`` rows in and out: the SQL of the run record, on a psycopg connection.

Values are tagged JSON (``tether.checkpoint._serde``) stored as ``jsonb``, through the same
escaping as the checkpoint store (jsonb keeps neither NUL characters nor the float-ness of
``1e16``). Every change that ends a run also sends ``NOTIFY tether_runs, '<run_id>'`` in the
same statement, which is what ``client.runs.wait`` listens for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import psycopg

from tether.checkpoint import _serde as serde
from tether.checkpoint._postgres_text import from_db as _from_db  # jsonb-safe JSON text, shared with the saver
from tether.checkpoint._postgres_text import to_db as _to_db
from tether.types import Command, Send
from tether.workers._types import Run, RunId, RunRetry, RunStatus

__all__ = [
    "CHANNEL",
    "decode_input",
    "encode_input",
    "finish",
    "get_run",
    "insert_run",
    "list_runs",
    "requeue",
    "start_attempt",
]

CHANNEL = "tether_runs"
Conn = psycopg.Connection[Any]

_COLUMNS = (
    "run_id, thread_id, status, input::text, config::text, retry, attempts, failures, error, output::text,"
    " job_id, worker, created_at, started_at, finished_at"
)


# -- values --------------------------------------------------------------------------------------
def encode_input(value: Any) -> str | None:
    """The run input as jsonb text: ``{"input": …}``, ``{"command": …}``, or NULL for None."""
    if value is None:
        return None
    if isinstance(value, Command):
        goto = [g if isinstance(g, str) else {"send": [g.node, g.arg]} for g in value.goto_targets()]
        data: dict[str, Any] = {
            "command": {"update": value.update, "goto": goto, "resume": value.resume, "graph": value.graph}
        }
    else:
        data = {"input": value}
    return _to_db(serde.dumps(data))


def decode_input(text: str | None) -> Any:
    if text is None:
        return None
    data = serde.loads(_from_db(text))
    if "command" not in data:
        return data["input"]
    c = data["command"]
    goto = [g if isinstance(g, str) else Send(g["send"][0], g["send"][1]) for g in c["goto"]]
    return Command(update=c["update"], goto=tuple(goto), resume=c["resume"], graph=c["graph"])


def _json(value: Any) -> str:
    return _to_db(serde.dumps(value))


def _unjson(text: str | None) -> Any:
    return None if text is None else serde.loads(_from_db(text))


def _run(row: Sequence[Any]) -> Run:
    return Run(
        run_id=RunId(row[0]),
        thread_id=row[1],
        status=cast(RunStatus, row[2]),
        input=decode_input(row[3]),
        config=_unjson(row[4]) or {},
        retry=RunRetry.from_json(row[5]),
        attempts=row[6],
        failures=row[7],
        error=row[8],
        output=_unjson(row[9]),
        job_id=row[10],
        worker=row[11],
        created_at=row[12],
        started_at=row[13],
        finished_at=row[14],
    )


# -- client side -----------------------------------------------------------------------------------
def insert_run(conn: Conn, run_id: str, thread_id: str, input: Any, config: dict[str, Any], retry: RunRetry) -> None:
    conn.execute(
        "INSERT INTO tether_runs (run_id, thread_id, input, config, retry)"
        " VALUES (%s, %s, %s::jsonb, %s::jsonb, %s::jsonb)",
        (run_id, thread_id, encode_input(input), _json(config), serde.dumps(retry.as_json())),
    )


def get_run(conn: Conn, run_id: str, *, lock: bool = False) -> Run | None:
    query = f"SELECT {_COLUMNS} FROM tether_runs WHERE run_id = %s{' FOR UPDATE' if lock else ''}"
    row = conn.execute(query, (run_id,)).fetchone()
    return _run(row) if row else None


def list_runs(
    conn: Conn, *, thread_id: str | None = None, status: str | None = None, limit: int = 100, offset: int = 0
) -> list[Run]:
    rows = conn.execute(
        f"""SELECT {_COLUMNS} FROM tether_runs
            WHERE (%(thread)s::text IS NULL OR thread_id = %(thread)s)
              AND (%(status)s::text IS NULL OR status = %(status)s)
            ORDER BY run_id LIMIT %(limit)s OFFSET %(offset)s""",
        {"thread": thread_id, "status": status, "limit": limit, "offset": offset},
    ).fetchall()
    return [_run(r) for r in rows]


# -- worker side ------------------------------------------------------------------------------------
def start_attempt(conn: Conn, run_id: str, worker: str) -> tuple[Run, str | None] | None:
    """Mark the run ``running`` and count the attempt; return it with its recorded ``start_state``.

    None when there is nothing to do: the run is final already (a stalled copy of a job whose
    first worker finished it). A run whose cancellation was asked for is marked ``cancelled``
    here and returned with that status.
    """
    row = conn.execute(
        f"""WITH u AS (
                UPDATE tether_runs
                SET status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'running' END,
                    finished_at = CASE WHEN cancel_requested THEN clock_timestamp() END,
                    attempts = attempts + (NOT cancel_requested)::int,
                    started_at = coalesce(started_at, clock_timestamp()),
                    worker = %s
                WHERE run_id = %s AND status IN ('pending', 'running')
                RETURNING *)
            SELECT {_COLUMNS}, start_state,
                   CASE WHEN status = 'cancelled' THEN pg_notify(%s, run_id) END
            FROM u""",
        (worker, run_id, CHANNEL),
    ).fetchone()
    return (_run(row), row[15]) if row else None


def record_start_state(conn: Conn, run_id: str, state: str) -> str:
    """Remember the thread as it was before this run's input went in; return what is recorded
    (an earlier attempt's record stays: the first one is the one that counts)."""
    row = conn.execute(
        "UPDATE tether_runs SET start_state = coalesce(start_state, %s) WHERE run_id = %s RETURNING start_state",
        (state, run_id),
    ).fetchone()
    return str(row[0]) if row else state


def finish(conn: Conn, run_id: str, status: RunStatus, *, output: Any = None, error: str | None = None) -> bool:
    """End a running run: ``success``, ``interrupted``, ``error`` or ``cancelled``; False if it was not running."""
    row = conn.execute(
        """WITH u AS (
               UPDATE tether_runs
               SET status = %s, output = %s::jsonb, error = coalesce(%s, error),
                   failures = failures + (%s = 'error')::int, finished_at = clock_timestamp()
               WHERE run_id = %s AND status = 'running'
               RETURNING run_id)
           SELECT pg_notify(%s, run_id) FROM u""",
        (status, None if output is None else _json(output), error, status, run_id, CHANNEL),
    ).fetchone()
    return row is not None


def requeue(conn: Conn, run_id: str, error: str, *, failed: bool) -> None:
    """Back to ``pending`` for another attempt, keeping ``error``; ``failed`` counts it as a failure."""
    conn.execute(
        "UPDATE tether_runs SET status = 'pending', error = %s, failures = failures + %s::int"
        " WHERE run_id = %s AND status = 'running'",
        (error, failed, run_id),
    )
