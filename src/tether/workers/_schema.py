"""The tables the workers need: procrastinate's own, and ``tether_runs``, Tether's record of each run.

``setup(conn)`` brings both up to date in one transaction that first takes a transaction-level
advisory lock, so any number of workers and clients may call it at once, as often as they like:
one creates, the others wait and then find everything in place.

* procrastinate's schema (``SchemaManager.get_schema()``, the text ``apply_schema`` runs) is
  not idempotent (``CREATE TYPE``, ``CREATE TABLE`` without ``IF NOT EXISTS``), so it is applied
  only when ``procrastinate_jobs`` is missing from the search path. An older procrastinate schema
  is left alone: upgrade it with procrastinate's own migrations (``procrastinate schema --migrate``).
* ``tether_runs`` follows Tether's rule for schemas: numbered migrations, each recorded in
  ``tether_runs_schema`` in the same transaction as the change. It has a version table of its
  own rather than rows in the checkpoint store's ``tether_schema``, so the two evolve apart.
"""

from __future__ import annotations

from typing import Any

import psycopg
from procrastinate.schema import SchemaManager

from tether.errors import SchemaVersionError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SETUP_LOCK", "SWEEP_LOCK", "setup"]

# first keys of the two-key advisory locks (the second is the schema's name, hashed)
SETUP_LOCK = 0x7E7E_5C4F  # creating or migrating these tables
SWEEP_LOCK = 0x7E7E_5C50  # one stalled-job sweep at a time

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "tether_runs: one row per queued run",
        [
            """CREATE TABLE tether_runs (
                run_id           text COLLATE "C" PRIMARY KEY,  -- UUIDv7: sorts by creation time
                thread_id        text NOT NULL,
                status           text NOT NULL DEFAULT 'pending' CHECK (status IN
                                 ('pending', 'running', 'interrupted', 'success', 'error', 'cancelled')),
                input            jsonb,            -- tagged JSON: {"input": …} | {"command": …} | NULL
                config           jsonb NOT NULL,   -- the run's config, tagged JSON
                retry            jsonb NOT NULL,   -- RunRetry: max_attempts, initial_interval, …
                attempts         integer NOT NULL DEFAULT 0,  -- starts by a worker
                failures         integer NOT NULL DEFAULT 0,  -- starts that raised
                error            text,             -- the last failure
                output           jsonb,            -- state values when it stopped, tagged JSON
                start_state      text,             -- the thread before the input went in (exactly once)
                cancel_requested boolean NOT NULL DEFAULT false,
                job_id           bigint,           -- procrastinate_jobs.id
                worker           text,             -- host:pid of the last worker to start it
                created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
                started_at       timestamptz,
                finished_at      timestamptz
            )""",
            "CREATE INDEX tether_runs_thread ON tether_runs (thread_id, run_id)",
            "CREATE INDEX tether_runs_open ON tether_runs (status) WHERE status IN ('pending', 'running')",
        ],
    ),
]

SCHEMA_VERSION = MIGRATIONS[-1][0]


def setup(conn: psycopg.Connection[Any]) -> int:
    """Create or migrate procrastinate's tables and ``tether_runs``; return the runs schema version.

    Commits on success. Safe to run concurrently and repeatedly (see the module docstring).
    Raises ``SchemaVersionError`` for a ``tether_runs`` newer than this Tether.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(current_schema()))", (SETUP_LOCK,))
        row = conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").fetchone()
        if not (row and row[0]):
            conn.execute(SchemaManager.get_schema())  # no parameters: sent as written
        row = conn.execute(
            "SELECT to_regclass(quote_ident(current_schema()) || '.tether_runs_schema') IS NOT NULL"
        ).fetchone()
        if not (row and row[0]):
            conn.execute(
                "CREATE TABLE tether_runs_schema (version integer PRIMARY KEY, description text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
        row = conn.execute("SELECT coalesce(max(version), 0) FROM tether_runs_schema").fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"this database has tether_runs schema version {version}, but this Tether understands "
                f"versions up to {SCHEMA_VERSION}: upgrade Tether on this machine"
            )
        for number, description, statements in MIGRATIONS:
            if number > version:
                for statement in statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO tether_runs_schema (version, description) VALUES (%s, %s)", (number, description)
                )
    return SCHEMA_VERSION
