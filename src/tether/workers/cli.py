"""``tether worker``: process queued runs of a graph until stopped."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

__all__ = ["worker"]


def worker(
    db: Annotated[
        str, typer.Option("--db", help="The PostgreSQL database of the checkpoints and the queue (a postgresql:// URL)")
    ],
    graph: Annotated[
        str, typer.Option("--graph", help="The graph to run, as module:attribute (a StateGraph or compiled graph)")
    ],
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, help="Runs at once in this process")] = 1,
    heartbeat: Annotated[float, typer.Option(help="Seconds between this worker's heartbeats")] = 2.0,
    stalled_after: Annotated[
        float, typer.Option(help="Seconds without a heartbeat after which a worker's runs move to others")
    ] = 15.0,
    sweep_every: Annotated[float, typer.Option(help="Seconds between sweeps for runs of stalled workers")] = 2.0,
    poll: Annotated[float, typer.Option(help="Fallback polling for new runs and cancellations, in seconds")] = 5.0,
    shutdown_timeout: Annotated[
        float, typer.Option(help="On SIGTERM/SIGINT, seconds to let runs in progress finish before requeueing them")
    ] = 30.0,
    name: Annotated[str | None, typer.Option(help="The worker's name in logs and on run rows (host:pid)")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
) -> None:
    """Process queued runs (client.runs.create) of a graph; start any number, on any machines sharing the database.

    Runs of one thread run one at a time and in the order they were created. A worker that dies
    (SIGKILL, a lost machine) stops its heartbeat; after --stalled-after seconds another worker
    takes its runs over from their last committed checkpoint. Stop with SIGINT or SIGTERM.
    """
    from tether._cli_errors import USAGE, fail
    from tether.errors import TetherError
    from tether.graph._loading import import_graph
    from tether.workers import WorkerSettings, run_worker

    if log_level.lower() not in ("debug", "info", "warning", "error"):
        raise fail(f"--log-level is debug, info, warning or error, not {log_level!r}", USAGE)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        target = import_graph(graph)  # the operator's --graph; never a name read from the database
    except TetherError as exc:
        raise fail(f"--graph: {exc}", USAGE) from exc
    settings = WorkerSettings(
        concurrency=concurrency,
        heartbeat=heartbeat,
        stalled_after=stalled_after,
        sweep_every=sweep_every,
        poll=poll,
        shutdown_timeout=shutdown_timeout,
        name=name,
    )
    typer.echo(f"tether worker: {graph} on {_where(db)}, concurrency {concurrency}", err=True)
    run_worker(db, target, settings)


def _where(conninfo: str) -> str:
    """The database a connection string names, without its password."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(conninfo)
    except Exception:
        return "the given database"
    return f"{parts.get('host') or 'localhost'}:{parts.get('port') or 5432}/{parts.get('dbname') or ''}"
