"""The SQLite schema, as numbered migrations recorded in ``tether_schema``.

Each migration runs in the same transaction as the row that records it, so a database
is always at exactly one known version. A database newer than this code is refused.
"""

from __future__ import annotations

import sqlite3

from tether.checkpoint._rows import recorded_version
from tether.errors import CheckpointError, SchemaVersionError

__all__ = ["MIGRATIONS", "READABLE_FROM", "SCHEMA_VERSION", "check_readable", "migrate"]

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "threads, checkpoints log, snapshots, pending writes, thread leases",
        [
            """CREATE TABLE threads (
                id            INTEGER PRIMARY KEY,  -- the short key the other tables use
                thread_id     TEXT NOT NULL,
                checkpoint_ns TEXT NOT NULL DEFAULT '',
                created_at    TEXT NOT NULL,
                UNIQUE (thread_id, checkpoint_ns)
            )""",
            """CREATE TABLE checkpoints (
                thread        INTEGER NOT NULL REFERENCES threads (id),
                checkpoint_id TEXT    NOT NULL,   -- UUIDv7: sorts by creation time
                parent_id     TEXT,
                step          INTEGER NOT NULL,
                source        TEXT    NOT NULL,   -- input | loop | update | fork
                created_at    TEXT    NOT NULL,   -- ISO 8601, UTC
                next          TEXT    NOT NULL,   -- JSON: tasks due after this checkpoint
                writes        TEXT    NOT NULL,   -- JSON: the writes that produced it, in order
                metadata      TEXT,               -- JSON: the run's metadata (NULL when none)
                PRIMARY KEY (thread, checkpoint_id)
            ) WITHOUT ROWID""",
            """CREATE TABLE snapshots (
                thread        INTEGER NOT NULL REFERENCES threads (id),
                checkpoint_id TEXT    NOT NULL,
                state         TEXT    NOT NULL,   -- JSON: {"values": every state key, "reducers": …}
                PRIMARY KEY (thread, checkpoint_id)
            ) WITHOUT ROWID""",
            """CREATE TABLE pending_writes (
                thread        INTEGER NOT NULL REFERENCES threads (id),
                checkpoint_id TEXT    NOT NULL,   -- the checkpoint the task ran from
                task_id       TEXT    NOT NULL,
                kind          TEXT    NOT NULL,   -- result | interrupt | resume | error | input
                value         TEXT    NOT NULL,   -- JSON
                PRIMARY KEY (thread, checkpoint_id, task_id, kind)
            ) WITHOUT ROWID""",
            """CREATE TABLE thread_leases (
                thread        INTEGER PRIMARY KEY REFERENCES threads (id),
                owner         TEXT NOT NULL,      -- host:pid:tag of the running process
                acquired_at   TEXT NOT NULL
            )""",
            """CREATE VIEW thread_checkpoints AS
                SELECT t.thread_id, t.checkpoint_ns, c.checkpoint_id, c.parent_id, c.step, c.source,
                       c.created_at, c.next, c.writes, c.metadata
                FROM checkpoints AS c JOIN threads AS t ON t.id = c.thread""",
            """CREATE VIEW checkpoint_writes AS
                SELECT t.thread_id, t.checkpoint_ns, c.checkpoint_id, c.step, c.source,
                       json_extract(w.value, '$.node') AS node,
                       json_extract(w.value, '$.writes') AS writes
                FROM checkpoints AS c JOIN threads AS t ON t.id = c.thread, json_each(c.writes) AS w""",
            """CREATE VIEW waiting_interrupts AS
                SELECT t.thread_id, t.checkpoint_ns, p.checkpoint_id, p.task_id, p.value AS interrupts
                FROM pending_writes AS p JOIN threads AS t ON t.id = p.thread
                WHERE p.kind = 'interrupt'
                  AND p.checkpoint_id = (SELECT MAX(c.checkpoint_id) FROM checkpoints c WHERE c.thread = p.thread)
                  AND NOT EXISTS (SELECT 1 FROM pending_writes r WHERE r.thread = p.thread
                                  AND r.checkpoint_id = p.checkpoint_id AND r.task_id = p.task_id
                                  AND r.kind = 'result')""",
        ],
    ),
    (
        2,
        "thread leases expire unless renewed (expires_at), so a run on another host cannot hold a thread forever",
        [
            # Unix seconds after which any process may take the thread over; the holder renews it.
            "ALTER TABLE thread_leases ADD COLUMN expires_at REAL NOT NULL DEFAULT 0",
            # leases taken before this version were never renewed: they expire 30 s after they were taken
            "UPDATE thread_leases SET expires_at = (julianday(acquired_at) - 2440587.5) * 86400.0 + 30.0",
        ],
    ),
    (
        3,
        "waiting_interrupts leaves out tasks paused without a question (a subgraph's breakpoint), as get_state does",
        [
            "DROP VIEW waiting_interrupts",
            # the open interrupts of tether.graph._thread_status: interrupt rows at the thread's
            # newest checkpoint whose task has no result, holding at least one question
            """CREATE VIEW waiting_interrupts AS
                SELECT t.thread_id, t.checkpoint_ns, p.checkpoint_id, p.task_id, p.value AS interrupts
                FROM pending_writes AS p JOIN threads AS t ON t.id = p.thread
                WHERE p.kind = 'interrupt' AND p.value <> '[]'
                  AND p.checkpoint_id = (SELECT MAX(c.checkpoint_id) FROM checkpoints c WHERE c.thread = p.thread)
                  AND NOT EXISTS (SELECT 1 FROM pending_writes r WHERE r.thread = p.thread
                                  AND r.checkpoint_id = p.checkpoint_id AND r.task_id = p.task_id
                                  AND r.kind = 'result')""",
        ],
    ),
]

SCHEMA_VERSION = MIGRATIONS[-1][0]

# The oldest version the read-only path understands: reading uses only the tables of version 1
# (version 2 changed leases, which readers never touch). Raise it when a migration changes what
# readers select; an older database is then refused with the advice to open it once for writing.
READABLE_FROM = 1

# What LangGraph's SqliteSaver creates: told apart so its users learn what the file is.
_LANGGRAPH_TABLES = {
    "checkpoints": {"thread_id", "checkpoint_ns", "checkpoint_id", "type", "checkpoint"},
    "writes": {"thread_id", "checkpoint_ns", "checkpoint_id", "task_id", "channel", "value"},
}


def current_version(conn: sqlite3.Connection) -> int:
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tether_schema'").fetchone()
    if not exists:
        return 0
    row = conn.execute("SELECT COUNT(*), MIN(version), MAX(version) FROM tether_schema").fetchone()
    return recorded_version(int(row[0]), int(row[1] or 0), int(row[2] or 0), newest=SCHEMA_VERSION)


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {str(row[1]) for row in conn.execute("SELECT * FROM pragma_table_info(?)", (table,))}


def check_readable(conn: sqlite3.Connection, path: str) -> int:
    """The schema version of a database opened read-only, which is never migrated.

    A file without Tether's tables is refused (a LangGraph checkpoint database by name), and so
    is a version this code cannot read; nothing is written either way.
    """
    version = current_version(conn)
    if version == 0:
        if all(cols <= _columns(conn, table) for table, cols in _LANGGRAPH_TABLES.items()):
            raise CheckpointError(
                f"{path!r} is a LangGraph checkpoint database (tables checkpoints and writes), not a Tether one; "
                "Tether reads only databases its own savers wrote, and it does not convert LangGraph's yet"
            )
        raise CheckpointError(
            f"{path!r} is not a Tether database (no tether_schema table); it was left unchanged. "
            "Name the file a Tether SqliteSaver wrote"
        )
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{path!r} has Tether schema version {version}, but this Tether understands "
            f"versions up to {SCHEMA_VERSION}: upgrade Tether to read it"
        )
    if version < READABLE_FROM:
        raise SchemaVersionError(
            f"{path!r} has Tether schema version {version}, older than this Tether reads without migrating it "
            f"({READABLE_FROM}); open it once with a program that writes (any Tether graph run on it) to upgrade it"
        )
    return version


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
