"""SQLite store: the embedded default. WAL mode; one connection guarded by a lock.

Durability of a committed checkpoint under each ``synchronous`` mode (WAL journal):

* ``"FULL"``/``"EXTRA"``: survives a process crash and a power loss or OS crash.
* ``"NORMAL"`` (default): survives a process crash; a power loss may roll back the last
  few commits, never corrupting the database.
* ``"OFF"``: survives a process crash; a power loss may corrupt the database.

Threads are rows of ``threads``; the other tables refer to them by a short integer key,
so a long ``thread_id`` is stored once, not in every checkpoint row. The views
``thread_checkpoints`` and ``checkpoint_writes`` show the log with thread ids spelled out.
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

from tether._names import CONSUMED_KINDS_SQL
from tether.checkpoint._base import (
    BaseCheckpointSaver,
    CheckpointRecord,
    LoadedCheckpoint,
    PendingWrite,
    ThreadSummary,
)
from tether.checkpoint._key_cache import ThreadKeys
from tether.checkpoint._listing import ThreadFilter, ThreadPage, encode_cursor, listing_key
from tether.checkpoint._rows import checked_pending, checked_record, checked_thread, follow_links
from tether.checkpoint._sqlite_leases import DEFAULT_LEASE_TTL, SqliteLeases, check_lease_ttl
from tether.checkpoint._sqlite_schema import check_readable, migrate
from tether.errors import CheckpointError, TetherError

__all__ = ["AsyncSqliteSaver", "SqliteSaver", "Synchronous"]

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]

_COLUMNS = "checkpoint_id, parent_id, step, source, created_at, next, writes, metadata"
_C_COLUMNS = ", ".join(f"c.{c.strip()}" for c in _COLUMNS.split(","))
_PAGE = 200
_IS_HEAD = "NOT EXISTS (SELECT 1 FROM checkpoints n WHERE n.thread = c.thread AND n.checkpoint_id > c.checkpoint_id)"
# same JSON type and value (so true is not 1): json_extract alone maps true to 1
_META_EQUALS = "json_type(c.metadata, ?) = json_type(?) AND json_extract(c.metadata, ?) IS json_extract(?, '$')"


def _record(thread_id: str, ns: str, row: Sequence[Any], snapshot: Any = None) -> CheckpointRecord:
    return checked_record(thread_id, ns, row, snapshot)  # SQLite columns take any type: check them


class SqliteSaver(BaseCheckpointSaver):
    """Checkpoints in a SQLite database that ``sqlite3`` can read.

    ``SqliteSaver(conn)`` uses an open connection (it switches it to autocommit, WAL and
    the chosen ``synchronous`` mode); ``SqliteSaver.from_conn_string(path)`` opens one.
    Safe to share between threads; several processes, on one host or several, may use one file.

    ``lease_ttl`` (seconds): how long a run's hold on its thread lasts unless renewed. The saver
    renews the leases of its runs every ``lease_ttl / 3``; a run whose process died or hung frees
    its thread for other hosts ``lease_ttl`` after its last renewal (at once on its own host).

    ``read_only=True`` (``from_conn_string(path, read_only=True)``, what the ``tether`` reading
    commands use) opens the file with SQLite's ``mode=ro``: the database is never created,
    migrated or switched to WAL, a file that is not a Tether database is refused, and every write
    raises ``CheckpointError``.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        synchronous: Synchronous = "NORMAL",
        lease_ttl: float = DEFAULT_LEASE_TTL,
        read_only: bool = False,
    ) -> None:
        if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise CheckpointError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, got {synchronous!r}")
        ttl = check_lease_ttl(lease_ttl)
        self.conn = conn
        self.synchronous = synchronous
        self._lock = threading.RLock()
        self._keys = ThreadKeys()  # bounded: a cache of the threads table
        self.read_only = read_only
        if read_only:
            conn.isolation_level = None
            path = _database_path(conn)
            with self._translate(f"opening {path!r} read-only"):
                conn.execute("PRAGMA query_only = ON")  # belt and braces: SQLite refuses writes itself
                conn.execute("PRAGMA busy_timeout = 10000")
                self.schema_version = check_readable(conn, path)
            self._lease_conn = conn
            self._leases = SqliteLeases(conn, self._lock, ttl, self._key)
            return
        with self._translate("opening the database"):
            conn.isolation_level = None  # transactions are explicit below
            conn.execute("PRAGMA busy_timeout = 10000")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() not in ("wal", "memory"):
                raise CheckpointError(f"could not switch the database to WAL mode (it is in {mode!r} mode)")
            conn.execute(f"PRAGMA synchronous = {synchronous}")
            self.schema_version = migrate(conn)
            self._lease_conn = self._open_lease_connection()
        guard = self._lock if self._lease_conn is conn else threading.RLock()
        self._leases = SqliteLeases(self._lease_conn, guard, ttl, self._key)

    def _open_lease_connection(self) -> sqlite3.Connection:
        """Leases say which live run holds a thread; they need no power-loss durability (after a
        power loss every holder is gone, and each lease expires by itself), so they are written
        through a second connection with synchronous=OFF and cost no fsync, even when checkpoints
        use FULL."""
        row = self.conn.execute("PRAGMA database_list").fetchone()
        path = row[2] if row else ""
        if not path or self.synchronous == "OFF":
            return self.conn  # in-memory database: one connection only
        lease = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        lease.execute("PRAGMA busy_timeout = 10000")
        lease.execute("PRAGMA synchronous = OFF")
        return lease

    @classmethod
    def from_conn_string(
        cls,
        path: str | Path,
        *,
        synchronous: Synchronous = "NORMAL",
        lease_ttl: float = DEFAULT_LEASE_TTL,
        read_only: bool = False,
    ) -> SqliteSaver:
        """Open (creating if needed) the database at ``path``; ``":memory:"`` works too.

        With ``read_only`` the file must exist and be a Tether database; it is never written.
        Usable directly or as a context manager that closes the connection.
        """
        try:
            if read_only:
                if str(path) == ":memory:" or not Path(path).is_file():
                    raise CheckpointError(f"no database file at {str(path)!r} to read (it was not created)")
                uri = Path(path).resolve().as_uri() + "?mode=ro"
                conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
            else:
                conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise CheckpointError(f"cannot open SQLite database {str(path)!r}: {exc}") from exc
        try:
            return cls(conn, synchronous=synchronous, lease_ttl=lease_ttl, read_only=read_only)
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

    def _refuse_if_read_only(self, doing: str) -> None:
        if self.read_only:
            raise CheckpointError(
                f"cannot write while {doing}: this SqliteSaver was opened read-only (read_only=True); "
                "open the database without read_only to write"
            )

    @contextmanager
    def _transaction(self, doing: str, conn: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
        self._refuse_if_read_only(doing)
        conn = conn or self.conn
        with self._lock, self._translate(doing):
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _key(
        self, thread_id: str, ns: str, *, create: bool = False, conn: sqlite3.Connection | None = None
    ) -> int | None:
        """The integer key of a thread; with ``create``, add the thread (inside ``conn``'s transaction)."""
        key = self._keys.get((thread_id, ns))
        if key is not None:
            return key
        conn = conn or self.conn
        row = conn.execute(
            "SELECT id FROM threads WHERE thread_id = ? AND checkpoint_ns = ?", (thread_id, ns)
        ).fetchone()
        if row is None:
            if not create:
                return None
            row = conn.execute(
                "INSERT INTO threads (thread_id, checkpoint_ns, created_at) VALUES (?, ?, ?) RETURNING id",
                (thread_id, ns, datetime.now(UTC).isoformat(timespec="milliseconds")),
            ).fetchone()
            return int(row[0])  # not cached: the transaction creating it may still roll back
        self._keys[(thread_id, ns)] = row[0]
        return int(row[0])

    # -- reading --------------------------------------------------------------------
    def get(
        self, thread_id: str, checkpoint_ns: str = "", checkpoint_id: str | None = None, *, have: str | None = None
    ) -> LoadedCheckpoint | None:
        with self._lock, self._translate(f"loading thread {thread_id!r}"):
            key = self._key(thread_id, checkpoint_ns)
            if key is None:
                return None
            if checkpoint_id is None:
                row = self.conn.execute(
                    f"SELECT {_COLUMNS} FROM checkpoints WHERE thread = ? ORDER BY checkpoint_id DESC LIMIT 1",
                    (key,),
                ).fetchone()
            else:
                row = self.conn.execute(
                    f"SELECT {_COLUMNS} FROM checkpoints WHERE thread = ? AND checkpoint_id = ?",
                    (key, checkpoint_id),
                ).fetchone()
            if row is None:
                return None
            record = _record(thread_id, checkpoint_ns, row)
            target = record.checkpoint_id
            chain = [] if target == have else self._chain(thread_id, checkpoint_ns, key, target)
            return LoadedCheckpoint(
                record=chain[-1] if chain else record,
                chain=chain,
                pending=self._pending(thread_id, key, target),
            )

    def _chain(self, thread_id: str, ns: str, key: int, checkpoint_id: str) -> builtins.list[CheckpointRecord]:
        """From ``checkpoint_id`` back to the nearest snapshot (or the root), oldest first.

        Fast path: ancestors are older, so read the key range from the newest snapshot at or
        before the target and follow parent links in memory. If that snapshot sits on
        another branch, walk the parent links in SQL instead. Either walk stops on a cycle
        and fails on a parent that is not stored (``follow_links``).
        """
        snap = self.conn.execute(
            "SELECT checkpoint_id, state FROM snapshots WHERE thread = ? AND checkpoint_id <= ?"
            " ORDER BY checkpoint_id DESC LIMIT 1",
            (key, checkpoint_id),
        ).fetchone()
        if snap is not None:
            rows = self.conn.execute(
                f"SELECT {_COLUMNS} FROM checkpoints WHERE thread = ? AND checkpoint_id BETWEEN ? AND ?",
                (key, snap[0], checkpoint_id),
            ).fetchall()
            by_id = {r[0]: r for r in rows}
            parents = {i: r[1] for i, r in by_id.items()}
            ids = follow_links(thread_id, checkpoint_id, parents, (snap[0],), complete=False)
            if ids is not None:
                return [_record(thread_id, ns, by_id[i], snap[1] if i == snap[0] else None) for i in ids]
        return self._chain_by_links(thread_id, ns, key, checkpoint_id)

    def _chain_by_links(self, thread_id: str, ns: str, key: int, checkpoint_id: str) -> builtins.list[CheckpointRecord]:
        # UNION (not UNION ALL) adds an id once: parent links that loop end the walk instead of
        # looping forever; follow_links then names the cycle
        rows = self.conn.execute(
            f"""WITH RECURSIVE chain(id) AS (
                    SELECT ?2
                    UNION
                    SELECT c.parent_id
                    FROM chain JOIN checkpoints c ON c.thread = ?1 AND c.checkpoint_id = chain.id
                    WHERE c.parent_id IS NOT NULL
                      AND NOT EXISTS (SELECT 1 FROM snapshots s WHERE s.thread = ?1 AND s.checkpoint_id = chain.id)
                )
                SELECT {_C_COLUMNS}, s.state
                FROM chain
                JOIN checkpoints c ON c.thread = ?1 AND c.checkpoint_id = chain.id
                LEFT JOIN snapshots s ON s.thread = ?1 AND s.checkpoint_id = chain.id""",
            (key, checkpoint_id),
        ).fetchall()
        by_id = {r[0]: r for r in rows}
        stops = {i for i, r in by_id.items() if r[8] is not None}
        ids = follow_links(thread_id, checkpoint_id, {i: r[1] for i, r in by_id.items()}, stops, complete=True)
        assert ids is not None
        return [_record(thread_id, ns, by_id[i][:8], by_id[i][8]) for i in ids]

    def _pending(self, thread_id: str, key: int, checkpoint_id: str) -> builtins.list[PendingWrite]:
        rows = self.conn.execute(
            "SELECT task_id, kind, value FROM pending_writes WHERE thread = ? AND checkpoint_id = ?"
            " ORDER BY task_id, kind",
            (key, checkpoint_id),
        ).fetchall()
        return [checked_pending(thread_id, checkpoint_id, r) for r in rows]

    def first_child(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> CheckpointRecord | None:
        with self._lock, self._translate(f"reading thread {thread_id!r}"):
            key = self._key(thread_id, checkpoint_ns)
            if key is None:
                return None
            # children are newer: walk the key forward from the parent. "not another source" rather
            # than "= 'loop'": a damaged source is read (and refused), not skipped
            row = self.conn.execute(
                f"SELECT {_COLUMNS} FROM checkpoints WHERE thread = ? AND checkpoint_id > ?"
                " AND parent_id = ? AND source NOT IN ('input', 'update', 'fork')"
                " ORDER BY checkpoint_id LIMIT 1",
                (key, checkpoint_id, checkpoint_id),
            ).fetchone()
        return _record(thread_id, checkpoint_ns, row) if row else None

    def pending(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> builtins.list[PendingWrite]:
        with self._lock, self._translate(f"reading pending writes of thread {thread_id!r}"):
            key = self._key(thread_id, checkpoint_ns)
            return [] if key is None else self._pending(thread_id, key, checkpoint_id)

    def list(self, thread_id: str, checkpoint_ns: str = "", *, before: str | None = None) -> Iterator[CheckpointRecord]:
        with self._lock, self._translate(f"listing thread {thread_id!r}"):
            key = self._key(thread_id, checkpoint_ns)
        if key is None:
            return
        cursor_id = before
        while True:
            with self._lock, self._translate(f"listing thread {thread_id!r}"):
                rows = self.conn.execute(
                    f"SELECT {_COLUMNS} FROM checkpoints WHERE thread = ? AND checkpoint_id < ?"
                    " ORDER BY checkpoint_id DESC LIMIT ?",
                    (key, cursor_id if cursor_id is not None else "\U0010ffff", _PAGE),
                ).fetchall()
            for row in rows:
                yield _record(thread_id, checkpoint_ns, row)
            if len(rows) < _PAGE:
                return
            cursor_id = rows[-1][0]

    def threads(self) -> builtins.list[ThreadSummary]:
        with self._lock, self._translate("listing threads"):
            heads = self.conn.execute(
                f"""SELECT t.thread_id, t.checkpoint_ns, t.id, {_C_COLUMNS},
                           (SELECT COUNT(*) FROM checkpoints n WHERE n.thread = t.id)
                    FROM threads t JOIN checkpoints c ON c.thread = t.id
                     AND c.checkpoint_id = (SELECT MAX(checkpoint_id) FROM checkpoints m WHERE m.thread = t.id)
                    ORDER BY c.checkpoint_id DESC"""
            ).fetchall()
            out = []
            for row in heads:
                thread_id, ns, count = checked_thread(row[0], row[1], row[11])
                head = _record(thread_id, ns, row[3:11])
                out.append(
                    ThreadSummary(
                        thread_id=thread_id,
                        checkpoint_ns=ns,
                        checkpoints=count,
                        head=head,
                        pending=self._pending(thread_id, row[2], head.checkpoint_id),
                    )
                )
            return out

    def _threads_page(self, flt: ThreadFilter) -> ThreadPage:
        # checkpoints newest first, keeping one only when it is its thread's head (no newer one in
        # the thread: one primary-key probe); without an index on the id alone this sorts every
        # head (docs/storage.md: the index cost too many bytes per step to ship as it was)
        where = [_IS_HEAD]
        params: list[Any] = []
        if flt.after is not None:
            cid, tid, ns = flt.after
            where.append("c.checkpoint_id <= ? AND (c.checkpoint_id < ? OR (t.thread_id, t.checkpoint_ns) < (?, ?))")
            params += [cid, cid, tid, ns]
        for key, value in flt.metadata:
            path = f'$."{key}"'
            where.append(_META_EQUALS)
            params += [path, value, path, value]
        if flt.updated_after is not None:
            where.append("c.created_at >= ?")
            params.append(flt.updated_after)
        if flt.updated_before is not None:
            where.append("c.created_at < ?")
            params.append(flt.updated_before)
        sql = (
            f"SELECT t.thread_id, t.checkpoint_ns, t.id, {_C_COLUMNS},"
            " (SELECT COUNT(*) FROM checkpoints n WHERE n.thread = t.id)"
            " FROM checkpoints c CROSS JOIN threads t ON t.id = c.thread"
            f" WHERE {' AND '.join(where)}"
            " ORDER BY c.checkpoint_id DESC, t.thread_id DESC, t.checkpoint_ns DESC LIMIT ?"
        )
        with self._lock, self._translate("listing threads"):
            rows = self.conn.execute(sql, [*params, flt.limit + 1]).fetchall()
            heads = rows[: flt.limit]
            # the heads' pending writes in one statement, not one a thread
            pending: dict[tuple[Any, Any], list[Any]] = {}
            if heads:
                pairs = ", ".join(["(?, ?)"] * len(heads))
                for p in self.conn.execute(
                    f"SELECT p.thread, p.checkpoint_id, p.task_id, p.kind, p.value FROM (VALUES {pairs}) AS h"
                    " CROSS JOIN pending_writes p ON p.thread = h.column1 AND p.checkpoint_id = h.column2"
                    " ORDER BY p.task_id, p.kind",
                    [v for h in heads for v in (h[2], h[3])],
                ).fetchall():
                    pending.setdefault((p[0], p[1]), []).append(p[2:])
            items = []
            for row in heads:
                thread_id, ns, count = checked_thread(row[0], row[1], row[11])
                head = _record(thread_id, ns, row[3:11])
                writes = [checked_pending(thread_id, head.checkpoint_id, r) for r in pending.get((row[2], row[3]), [])]
                items.append(
                    ThreadSummary(thread_id=thread_id, checkpoint_ns=ns, checkpoints=count, head=head, pending=writes)
                )
        more = len(rows) > flt.limit
        return ThreadPage(items=items, next_cursor=encode_cursor(listing_key(items[-1])) if more else None)

    # -- writing --------------------------------------------------------------------
    def put(self, record: CheckpointRecord) -> None:
        self.put_many([record])

    def put_many(self, records: Sequence[CheckpointRecord]) -> None:
        if not records:
            return
        with self._transaction(f"committing a checkpoint of thread {records[0].thread_id!r}") as conn:
            for r in records:
                self._insert(conn, r)

    def _insert(self, conn: sqlite3.Connection, r: CheckpointRecord) -> None:
        """One checkpoint row, its snapshot, and the parent's now-consumed pending writes."""
        key = self._key(r.thread_id, r.checkpoint_ns, create=True)
        metadata = None if r.metadata == "{}" else r.metadata
        row = (key, r.checkpoint_id, r.parent_id, r.step, r.source, r.created_at, r.next, r.writes, metadata)
        held = self._leases.holder_of(r.thread_id, r.checkpoint_ns)
        if held is None:
            conn.execute(f"INSERT INTO checkpoints (thread, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
        else:  # fenced (see _sqlite_leases): the key comes from the lease row naming this run, or is NULL
            try:
                conn.execute(
                    f"INSERT INTO checkpoints (thread, {_COLUMNS}) VALUES"
                    " ((SELECT thread FROM thread_leases WHERE thread = ? AND owner = ?), ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*held, *row[1:]),
                )
            except sqlite3.IntegrityError:  # NOT NULL refused the key, or another constraint failed
                self._leases.check_held(conn, r.thread_id, r.checkpoint_ns)
                raise
        if r.snapshot is not None:
            conn.execute(
                "INSERT INTO snapshots (thread, checkpoint_id, state) VALUES (?, ?, ?)",
                (key, r.checkpoint_id, r.snapshot),
            )
        if r.parent_id is not None and r.source == "loop" and r.clears_pending:
            conn.execute(  # results and errors are now in r.writes; interrupts stay as history
                f"DELETE FROM pending_writes WHERE thread = ? AND checkpoint_id = ? AND kind IN {CONSUMED_KINDS_SQL}",
                (key, r.parent_id),
            )

    def put_pending(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, writes: Sequence[PendingWrite]
    ) -> None:
        with self._transaction(f"saving pending writes of thread {thread_id!r}") as conn:
            self._leases.check_held(conn, thread_id, checkpoint_ns)  # fenced: see _sqlite_leases
            key = self._key(thread_id, checkpoint_ns, create=True)
            conn.executemany(
                "INSERT OR REPLACE INTO pending_writes (thread, checkpoint_id, task_id, kind, value)"
                " VALUES (?, ?, ?, ?, ?)",
                [(key, checkpoint_id, w.task_id, w.kind, w.value) for w in writes],
            )

    def delete_thread(self, thread_id: str) -> None:
        with self._transaction(f"deleting thread {thread_id!r}") as conn:
            keys = [r[0] for r in conn.execute("SELECT id FROM threads WHERE thread_id = ?", (thread_id,))]
            for key in keys:  # the threads row stays, so keys cached by other connections stay valid
                for table in ("checkpoints", "snapshots", "pending_writes", "thread_leases"):
                    conn.execute(f"DELETE FROM {table} WHERE thread = ?", (key,))

    # -- one run per thread: leases with an expiry and a heartbeat (_sqlite_leases) -------------
    @property
    def lease_ttl(self) -> float:
        return self._leases.ttl

    def acquire(self, thread_id: str, checkpoint_ns: str, owner: str) -> None:
        self._refuse_if_read_only(f"taking thread {thread_id!r} for a run")
        self._leases.acquire(thread_id, checkpoint_ns, owner)

    def release(self, thread_id: str, checkpoint_ns: str, owner: str) -> None:
        if self.read_only:
            return  # acquire refused: nothing is held
        self._leases.release(thread_id, checkpoint_ns, owner)

    def close(self) -> None:
        self._leases.close()
        with self._lock:
            if self._lease_conn is not self.conn:
                self._lease_conn.close()
            self.conn.close()


def _database_path(conn: sqlite3.Connection) -> str:
    row = conn.execute("PRAGMA database_list").fetchone()
    return str(row[2]) if row else ""


class AsyncSqliteSaver(SqliteSaver):
    """The SQLite store for asyncio programs: ``async with AsyncSqliteSaver.from_conn_string(path)``.

    Same database and behaviour as ``SqliteSaver``; its ``a…`` methods run the SQLite calls in a
    worker thread, so the event loop never blocks on the disk.
    """

    async def __aenter__(self) -> AsyncSqliteSaver:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
