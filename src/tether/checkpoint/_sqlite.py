"""SQLite store: the embedded default. WAL mode; one connection guarded by a lock.

Durability of a committed checkpoint under each ``synchronous`` mode (WAL journal):

* ``"FULL"``/``"EXTRA"``: survives a process crash and a power loss or OS crash.
* ``"NORMAL"`` (default): survives a process crash; a power loss may roll back the last
  few commits, never corrupting the database.
* ``"OFF"``: survives a process crash; a power loss may corrupt the database.
"""

from __future__ import annotations

import builtins
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from tether.checkpoint._base import (
    BaseCheckpointSaver,
    CheckpointRecord,
    LoadedCheckpoint,
    PendingWrite,
    ThreadSummary,
    busy_error,
    owner_is_alive,
)
from tether.checkpoint._sqlite_schema import migrate
from tether.errors import CheckpointError, TetherError

__all__ = ["SqliteSaver", "Synchronous"]

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]

_COLUMNS = "thread_id, checkpoint_ns, checkpoint_id, parent_id, step, source, created_at, next, writes, metadata"
_PAGE = 200


def _record(row: Sequence[Any], snapshot: str | None = None) -> CheckpointRecord:
    return CheckpointRecord(
        thread_id=row[0],
        checkpoint_ns=row[1],
        checkpoint_id=row[2],
        parent_id=row[3],
        step=row[4],
        source=row[5],
        created_at=row[6],
        next=row[7],
        writes=row[8],
        metadata=row[9],
        snapshot=snapshot,
    )


class SqliteSaver(BaseCheckpointSaver):
    """Checkpoints in a SQLite database that ``sqlite3`` can read.

    ``SqliteSaver(conn)`` uses an open connection (it switches it to autocommit, WAL and
    the chosen ``synchronous`` mode); ``SqliteSaver.from_conn_string(path)`` opens one.
    Safe to share between threads; several processes may use one file.
    """

    def __init__(self, conn: sqlite3.Connection, *, synchronous: Synchronous = "NORMAL") -> None:
        if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise CheckpointError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, got {synchronous!r}")
        self.conn = conn
        self.synchronous = synchronous
        self._lock = threading.RLock()
        with self._translate("opening the database"):
            conn.isolation_level = None  # transactions are explicit below
            conn.execute("PRAGMA busy_timeout = 10000")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() not in ("wal", "memory"):
                raise CheckpointError(f"could not switch the database to WAL mode (it is in {mode!r} mode)")
            conn.execute(f"PRAGMA synchronous = {synchronous}")
            self.schema_version = migrate(conn)

    @classmethod
    def from_conn_string(cls, path: str | Path, *, synchronous: Synchronous = "NORMAL") -> SqliteSaver:
        """Open (creating if needed) the database at ``path``; ``":memory:"`` works too.

        Usable directly or as a context manager that closes the connection.
        """
        try:
            conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise CheckpointError(f"cannot open SQLite database {str(path)!r}: {exc}") from exc
        try:
            return cls(conn, synchronous=synchronous)
        except BaseException:
            conn.close()
            raise

    # -- plumbing -------------------------------------------------------------------
    @contextmanager
    def _translate(self, doing: str) -> Iterator[None]:
        try:
            yield
        except TetherError:
            raise
        except sqlite3.Error as exc:
            raise CheckpointError(f"SQLite error while {doing}: {exc}") from exc

    @contextmanager
    def _transaction(self, doing: str) -> Iterator[sqlite3.Connection]:
        with self._lock, self._translate(doing):
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    # -- reading --------------------------------------------------------------------
    def get(
        self, thread_id: str, checkpoint_ns: str = "", checkpoint_id: str | None = None, *, have: str | None = None
    ) -> LoadedCheckpoint | None:
        with self._lock, self._translate(f"loading thread {thread_id!r}"):
            conn = self.conn
            if checkpoint_id is None:
                row = conn.execute(
                    f"SELECT {_COLUMNS} FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ?"
                    " ORDER BY checkpoint_id DESC LIMIT 1",
                    (thread_id, checkpoint_ns),
                ).fetchone()
            else:
                row = conn.execute(
                    f"SELECT {_COLUMNS} FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ?"
                    " AND checkpoint_id = ?",
                    (thread_id, checkpoint_ns, checkpoint_id),
                ).fetchone()
            if row is None:
                return None
            target = row[2]
            chain = [] if target == have else self._chain(thread_id, checkpoint_ns, target)
            record = chain[-1] if chain else _record(row)
            return LoadedCheckpoint(record=record, chain=chain, pending=self._pending(thread_id, checkpoint_ns, target))

    def _chain(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> builtins.list[CheckpointRecord]:
        rows = self.conn.execute(
            f"""WITH RECURSIVE chain(id, depth, stop) AS (
                    SELECT ?, 0, EXISTS (SELECT 1 FROM snapshots s WHERE s.thread_id = ?1
                                         AND s.checkpoint_ns = ?2 AND s.checkpoint_id = ?3)
                    UNION ALL
                    SELECT c.parent_id, chain.depth + 1,
                           EXISTS (SELECT 1 FROM snapshots s WHERE s.thread_id = ?1
                                   AND s.checkpoint_ns = ?2 AND s.checkpoint_id = c.parent_id)
                    FROM chain JOIN checkpoints c
                      ON c.thread_id = ?1 AND c.checkpoint_ns = ?2 AND c.checkpoint_id = chain.id
                    WHERE NOT chain.stop AND c.parent_id IS NOT NULL
                )
                SELECT {", ".join("c." + col.strip() for col in _COLUMNS.split(","))}, s.state
                FROM chain
                JOIN checkpoints c ON c.thread_id = ?1 AND c.checkpoint_ns = ?2 AND c.checkpoint_id = chain.id
                LEFT JOIN snapshots s ON s.thread_id = ?1 AND s.checkpoint_ns = ?2 AND s.checkpoint_id = chain.id
                ORDER BY chain.depth DESC""".replace("SELECT ?, 0", "SELECT ?3, 0"),
            (thread_id, checkpoint_ns, checkpoint_id),
        ).fetchall()
        return [_record(r[:10], r[10]) for r in rows]

    def _pending(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> builtins.list[PendingWrite]:
        rows = self.conn.execute(
            "SELECT task_id, kind, value FROM pending_writes"
            " WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ? ORDER BY task_id, kind",
            (thread_id, checkpoint_ns, checkpoint_id),
        ).fetchall()
        return [PendingWrite(task_id=r[0], kind=r[1], value=r[2]) for r in rows]

    def first_child(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> CheckpointRecord | None:
        with self._lock, self._translate(f"reading thread {thread_id!r}"):
            row = self.conn.execute(  # children are newer: walk the key forward from the parent
                f"SELECT {_COLUMNS} FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ?"
                " AND checkpoint_id > ? AND parent_id = ? AND source = 'loop' ORDER BY checkpoint_id LIMIT 1",
                (thread_id, checkpoint_ns, checkpoint_id, checkpoint_id),
            ).fetchone()
        return _record(row) if row else None

    def pending(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> builtins.list[PendingWrite]:
        with self._lock, self._translate(f"reading pending writes of thread {thread_id!r}"):
            return self._pending(thread_id, checkpoint_ns, checkpoint_id)

    def list(self, thread_id: str, checkpoint_ns: str = "", *, before: str | None = None) -> Iterator[CheckpointRecord]:
        cursor_id = before
        while True:
            with self._lock, self._translate(f"listing thread {thread_id!r}"):
                if cursor_id is None:
                    rows = self.conn.execute(
                        f"SELECT {_COLUMNS} FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ?"
                        " ORDER BY checkpoint_id DESC LIMIT ?",
                        (thread_id, checkpoint_ns, _PAGE),
                    ).fetchall()
                else:
                    rows = self.conn.execute(
                        f"SELECT {_COLUMNS} FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ?"
                        " AND checkpoint_id < ? ORDER BY checkpoint_id DESC LIMIT ?",
                        (thread_id, checkpoint_ns, cursor_id, _PAGE),
                    ).fetchall()
            for row in rows:
                yield _record(row)
            if len(rows) < _PAGE:
                return
            cursor_id = rows[-1][2]

    def threads(self) -> builtins.list[ThreadSummary]:
        with self._lock, self._translate("listing threads"):
            heads = self.conn.execute(
                f"""SELECT {_COLUMNS}, n FROM (
                        SELECT c.*, COUNT(*) OVER w AS n,
                               ROW_NUMBER() OVER (w ORDER BY checkpoint_id DESC) AS rn
                        FROM checkpoints c
                        WINDOW w AS (PARTITION BY thread_id, checkpoint_ns)
                    ) WHERE rn = 1 ORDER BY checkpoint_id DESC"""
            ).fetchall()
            return [
                ThreadSummary(
                    thread_id=row[0],
                    checkpoint_ns=row[1],
                    checkpoints=row[10],
                    head=_record(row[:10]),
                    pending=self._pending(row[0], row[1], row[2]),
                )
                for row in heads
            ]

    # -- writing --------------------------------------------------------------------
    def put(self, record: CheckpointRecord) -> None:
        r = record
        with self._transaction(f"committing a checkpoint of thread {r.thread_id!r}") as conn:
            conn.execute(
                f"INSERT INTO checkpoints ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    r.thread_id,
                    r.checkpoint_ns,
                    r.checkpoint_id,
                    r.parent_id,
                    r.step,
                    r.source,
                    r.created_at,
                    r.next,
                    r.writes,
                    r.metadata,
                ),
            )
            if r.snapshot is not None:
                conn.execute(
                    "INSERT INTO snapshots (thread_id, checkpoint_ns, checkpoint_id, state) VALUES (?, ?, ?, ?)",
                    (r.thread_id, r.checkpoint_ns, r.checkpoint_id, r.snapshot),
                )
            if r.parent_id is not None and r.source == "loop":
                conn.execute(  # results and errors are now in r.writes; interrupts stay as history
                    "DELETE FROM pending_writes WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?"
                    " AND kind IN ('result', 'error', 'input')",
                    (r.thread_id, r.checkpoint_ns, r.parent_id),
                )

    def put_pending(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, writes: Sequence[PendingWrite]
    ) -> None:
        with self._transaction(f"saving pending writes of thread {thread_id!r}") as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO pending_writes"
                " (thread_id, checkpoint_ns, checkpoint_id, task_id, kind, value) VALUES (?, ?, ?, ?, ?, ?)",
                [(thread_id, checkpoint_ns, checkpoint_id, w.task_id, w.kind, w.value) for w in writes],
            )

    def delete_thread(self, thread_id: str) -> None:
        with self._transaction(f"deleting thread {thread_id!r}") as conn:
            for table in ("checkpoints", "snapshots", "pending_writes", "thread_leases"):
                conn.execute(f"DELETE FROM {table} WHERE thread_id = ?", (thread_id,))

    def acquire(self, thread_id: str, checkpoint_ns: str, owner: str) -> None:
        with self._transaction(f"starting a run on thread {thread_id!r}") as conn:
            row = conn.execute(
                "SELECT owner FROM thread_leases WHERE thread_id = ? AND checkpoint_ns = ?",
                (thread_id, checkpoint_ns),
            ).fetchone()
            if row is not None and row[0] != owner and owner_is_alive(row[0]):
                raise busy_error(thread_id, row[0])
            conn.execute(
                "INSERT OR REPLACE INTO thread_leases (thread_id, checkpoint_ns, owner, acquired_at)"
                " VALUES (?, ?, ?, ?)",
                (thread_id, checkpoint_ns, owner, datetime.now(UTC).isoformat()),
            )

    def release(self, thread_id: str, checkpoint_ns: str, owner: str) -> None:
        with self._transaction(f"ending a run on thread {thread_id!r}") as conn:
            conn.execute(
                "DELETE FROM thread_leases WHERE thread_id = ? AND checkpoint_ns = ? AND owner = ?",
                (thread_id, checkpoint_ns, owner),
            )

    def close(self) -> None:
        with self._lock:
            self.conn.close()
