"""The SQLite schema, as numbered migrations recorded in ``tether_schema``.

Each migration runs in the same transaction as the row that records it, so a database
is always at exactly one known version. A database newer than this code is refused.
"""

from __future__ import annotations

import sqlite3

from tether.errors import SchemaVersionError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate"]

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "checkpoints log, snapshots, pending writes, thread leases",
        [
            """CREATE TABLE checkpoints (
                thread_id     TEXT    NOT NULL,
                checkpoint_ns TEXT    NOT NULL DEFAULT '',
                checkpoint_id TEXT    NOT NULL,
                parent_id     TEXT,
                step          INTEGER NOT NULL,
                source        TEXT    NOT NULL,   -- input | loop | update | fork
                created_at    TEXT    NOT NULL,   -- ISO 8601, UTC
                next          TEXT    NOT NULL,   -- JSON: tasks due after this checkpoint
                writes        TEXT    NOT NULL,   -- JSON: the writes that produced it, in order
                metadata      TEXT    NOT NULL,   -- JSON: the run's metadata
                PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
            ) WITHOUT ROWID""",
            """CREATE TABLE snapshots (
                thread_id     TEXT NOT NULL,
                checkpoint_ns TEXT NOT NULL DEFAULT '',
                checkpoint_id TEXT NOT NULL,
                state         TEXT NOT NULL,      -- JSON: every state key at this checkpoint
                PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
            ) WITHOUT ROWID""",
            """CREATE TABLE pending_writes (
                thread_id     TEXT NOT NULL,
                checkpoint_ns TEXT NOT NULL DEFAULT '',
                checkpoint_id TEXT NOT NULL,      -- the checkpoint the task ran from
                task_id       TEXT NOT NULL,
                kind          TEXT NOT NULL,      -- result | interrupt | resume | error
                value         TEXT NOT NULL,      -- JSON
                PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, kind)
            ) WITHOUT ROWID""",
            """CREATE TABLE thread_leases (
                thread_id     TEXT NOT NULL,
                checkpoint_ns TEXT NOT NULL DEFAULT '',
                owner         TEXT NOT NULL,      -- host:pid:tag of the running process
                acquired_at   TEXT NOT NULL,
                PRIMARY KEY (thread_id, checkpoint_ns)
            ) WITHOUT ROWID""",
            """CREATE VIEW checkpoint_writes AS
                SELECT c.thread_id, c.checkpoint_ns, c.checkpoint_id, c.step, c.source,
                       json_extract(w.value, '$.node') AS node,
                       json_extract(w.value, '$.writes') AS writes
                FROM checkpoints AS c, json_each(c.writes) AS w""",
        ],
    ),
]

SCHEMA_VERSION = MIGRATIONS[-1][0]


def current_version(conn: sqlite3.Connection) -> int:
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tether_schema'").fetchone()
    if not exists:
        return 0
    row = conn.execute("SELECT MAX(version) FROM tether_schema").fetchone()
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to ``SCHEMA_VERSION``; return the version it is at."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS tether_schema ("
            " version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        version = current_version(conn)
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"this database has Tether schema version {version}, but this Tether understands "
                f"versions up to {SCHEMA_VERSION}: upgrade Tether to open it"
            )
        for number, description, statements in MIGRATIONS:
            if number <= version:
                continue
            for sql in statements:
                conn.execute(sql)
            conn.execute(
                "INSERT INTO tether_schema (version, description, applied_at)"
                " VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                (number, description),
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return SCHEMA_VERSION
