"""PostgreSQL store: ``PostgresSaver`` (threads and a connection pool) and ``AsyncPostgresSaver`` (asyncio).

The same log, snapshots and pending writes as the SQLite store, in the same logical schema
(``_postgres_schema``), with JSON columns as ``jsonb`` so that ``psql`` can read and query them.

One run per thread, across processes and machines: a run holds a session-level advisory lock
(``pg_try_advisory_lock``) keyed by the thread, on a connection the saver keeps out of its pool
while it has runs in progress. PostgreSQL frees the lock when ``release()`` unlocks it or when
that connection ends, so a run whose process dies or loses the network frees its thread at once,
with no heartbeat and no expiry to wait for. ``thread_leases`` rows say who holds a thread, for
people and for the error a second run gets; the lock, not the row, is what excludes.

Every query is written once, as a *plan*: a generator that yields SQL statements and receives
their rows. The sync saver drives plans over ``psycopg.Connection``s, the async saver over
``psycopg.AsyncConnection``s, so both run the very same SQL.

``jsonb`` keeps values, not text: object keys come back in jsonb's order (values compare equal),
and two things jsonb cannot hold are written in a form it can and turned back on reading:
floats in exponent notation (jsonb would give ``1e+16`` back as the integer
``10000000000000000``) are written in positional notation with a fraction, and the NUL character
(``\\u0000``, which jsonb refuses) is written as ``U+FFFE 0`` (with ``U+FFFE`` itself doubled).
``-0.0`` comes back as ``0.0``.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import functools
import logging
import re
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from decimal import Decimal
from typing import Any, TypeVar

try:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict
    from psycopg.rows import TupleRow, tuple_row
    from psycopg_pool import AsyncConnectionPool, ConnectionPool
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "the PostgreSQL checkpointer needs psycopg 3 and psycopg-pool: pip install 'tether[postgres]'"
    ) from exc

from tether.checkpoint._base import (
    BaseCheckpointSaver,
    CheckpointRecord,
    LoadedCheckpoint,
    PendingWrite,
    ThreadSummary,
    busy_error,
    lease_lost_error,
)
from tether.checkpoint._postgres_schema import Statement, migrate_plan
from tether.checkpoint._rows import checked_pending, checked_record, checked_thread, follow_links
from tether.errors import CheckpointError, TetherError

__all__ = ["AsyncPostgresSaver", "PostgresSaver"]

T = TypeVar("T")
Row = tuple[Any, ...]
Plan = Generator[Statement, list[Row], T]
Connection = psycopg.Connection[TupleRow]
AsyncConnection = psycopg.AsyncConnection[TupleRow]

_log = logging.getLogger("tether.checkpoint")
_TRY_LOCK = "SELECT pg_try_advisory_lock(%s::int4, %s::int4)"
_COLUMNS = "checkpoint_id, parent_id, step, source, created_at, next::text, writes::text, metadata::text"
_C_COLUMNS = ", ".join(f"c.{c.strip()}" for c in _COLUMNS.split(","))
_PAGE = 200
_CONSUMED = "('result', 'error', 'input')"  # folded into the next checkpoint; interrupts and resumes stay

# -- JSON text in and out of jsonb ----------------------------------------------------------------
_ESC = "\ufffe"  # a noncharacter: stands in for NUL, which jsonb cannot store
_NUL_TOKENS = re.compile(r"\\\\|\\u0000|\\u[fF]{3}[eE]|\ufffe")
_ESC_TOKENS = re.compile("\ufffe(.)", re.S)
_HAS_EXPONENT = re.compile(r"\d[eE][-+]?\d")
_STRING_OR_EXP_NUMBER = re.compile(r'"(?:[^"\\]|\\.)*"|(-?\d+(?:\.\d+)?[eE][-+]?\d+)', re.S)


def _escape_nul(m: re.Match[str]) -> str:
    token = m.group(0)
    return token if token == "\\\\" else _ESC + "0" if token == "\\u0000" else _ESC + _ESC  # U+FFFE, raw or escaped


def _positional(m: re.Match[str]) -> str:
    number = m.group(1)
    if number is None:  # a string: left as it is
        return m.group(0)
    text = format(Decimal(number), "f")
    return text if "." in text else text + ".0"  # a fraction keeps it a float when jsonb gives it back


def _to_db(text: str) -> str:
    """JSON text as jsonb can store it (see the module's docstring)."""
    if "\\u0000" in text or _ESC in text or "\\uf" in text or "\\uF" in text:
        text = _NUL_TOKENS.sub(_escape_nul, text)
    if _HAS_EXPONENT.search(text):
        text = _STRING_OR_EXP_NUMBER.sub(_positional, text)
    return text


def _from_db(text: str) -> str:
    if _ESC in text:
        return _ESC_TOKENS.sub(lambda m: "\\u0000" if m.group(1) == "0" else m.group(1), text)
    return text


def _record(thread_id: str, ns: str, row: Sequence[Any], snapshot: str | None = None) -> CheckpointRecord:
    return checked_record(thread_id, ns, row, snapshot, text=_from_db)  # the values a row holds: checked


def _pending_write(thread_id: str, checkpoint_id: str, row: Sequence[Any]) -> PendingWrite:
    return checked_pending(thread_id, checkpoint_id, row, text=_from_db)


def _int4(n: int) -> int:
    """``n`` as the signed 32-bit integer with the same low 32 bits (an advisory lock key)."""
    n &= 0xFFFF_FFFF
    return n - (1 << 32) if n >= 1 << 31 else n


def _where(conninfo: str) -> str:
    """Where a connection string points, without its password."""
    try:
        parts = conninfo_to_dict(conninfo)
    except psycopg.Error:
        return "the given connection string"
    host, port, db = parts.get("host") or "localhost", parts.get("port") or "5432", parts.get("dbname") or ""
    return f"{host}:{port}/{db}"


@contextmanager
def _translate(doing: str) -> Iterator[None]:
    try:
        yield
    except TetherError:
        raise
    except psycopg.Error as exc:
        raise CheckpointError(f"PostgreSQL error while {doing}: {str(exc).strip()}") from exc


# -- plans: every query, written once for both drivers ----------------------------------------------
class _Plans:
    """The SQL of the store. Each method returns a plan (see the module docstring)."""

    _keys: dict[tuple[str, str], int]
    _lock_class: int  # the first key of a thread's advisory lock: the OID of the `threads` table

    def _key_plan(self, thread_id: str, ns: str, *, create: bool = False) -> Plan[int | None]:
        """The integer key of a thread; with ``create``, add the thread.

        Plans run in autocommit, so a thread row commits by itself, before the write that needs it:
        a thread whose first write then fails is left with no checkpoints, which reads as no thread.
        """
        key = self._keys.get((thread_id, ns))
        if key is not None:
            return key
        select = "SELECT id FROM threads WHERE thread_id = %s AND checkpoint_ns = %s"
        rows = yield select, (thread_id, ns), True
        if not rows and create:
            rows = yield (
                "INSERT INTO threads (thread_id, checkpoint_ns) VALUES (%s, %s)"
                " ON CONFLICT (thread_id, checkpoint_ns) DO NOTHING RETURNING id",
                (thread_id, ns),
                True,
            )
            if not rows:
                rows = yield select, (thread_id, ns), True  # another session created it meanwhile
        if not rows:
            return None
        self._keys[(thread_id, ns)] = int(rows[0][0])
        return int(rows[0][0])

    # -- reading ----------------------------------------------------------------------------------
    def _get_plan(self, thread_id: str, ns: str, checkpoint_id: str | None, have: str | None) -> Plan[Any]:
        key = yield from self._key_plan(thread_id, ns)
        if key is None:
            return None
        # the checkpoint and its pending writes in one query: a row per pending write (or one with NULLs)
        where = "ORDER BY checkpoint_id DESC LIMIT 1" if checkpoint_id is None else "AND checkpoint_id = %(id)s"
        rows = yield (
            f"""SELECT {_C_COLUMNS}, p.task_id, p.kind, p.value::text
                FROM (SELECT * FROM checkpoints WHERE thread = %(key)s {where}) c
                LEFT JOIN pending_writes p ON p.thread = %(key)s AND p.checkpoint_id = c.checkpoint_id
                ORDER BY p.task_id, p.kind""",
            {"key": key, "id": checkpoint_id},
            True,
        )
        if not rows:
            return None
        record = _record(thread_id, ns, rows[0][:8])
        target = record.checkpoint_id
        pending = [_pending_write(thread_id, target, r[8:11]) for r in rows if r[8] is not None]
        chain: builtins.list[CheckpointRecord] = []
        if target != have:
            chain = yield from self._chain_plan(thread_id, ns, key, target)
        return LoadedCheckpoint(record=chain[-1] if chain else record, chain=chain, pending=pending)

    def _chain_plan(
        self, thread_id: str, ns: str, key: int, checkpoint_id: str
    ) -> Plan[builtins.list[CheckpointRecord]]:
        """From ``checkpoint_id`` back to the nearest snapshot (or the root), oldest first.

        Fast path: ancestors are older, so read the key range from the newest snapshot at or
        before the target and follow parent links in memory. If that snapshot sits on
        another branch, walk the parent links in SQL instead. Either walk stops on a cycle
        and fails on a parent that is not stored (``follow_links``).
        """
        rows = yield (
            f"""WITH snap AS (SELECT checkpoint_id, state FROM snapshots
                              WHERE thread = %(key)s AND checkpoint_id <= %(id)s
                              ORDER BY checkpoint_id DESC LIMIT 1)
                SELECT {_C_COLUMNS}, CASE WHEN c.checkpoint_id = snap.checkpoint_id THEN snap.state::text END
                FROM snap JOIN checkpoints c ON c.thread = %(key)s
                 AND c.checkpoint_id BETWEEN snap.checkpoint_id AND %(id)s""",
            {"key": key, "id": checkpoint_id},
            True,
        )
        by_id = {r[0]: r for r in rows}
        stops = [i for i, r in by_id.items() if r[8] is not None]  # the snapshot the range started from
        ids = follow_links(thread_id, checkpoint_id, {i: r[1] for i, r in by_id.items()}, stops, complete=False)
        if ids is not None:
            return [_record(thread_id, ns, by_id[i][:8], by_id[i][8]) for i in ids]
        # UNION (not UNION ALL) adds an id once: parent links that loop end the walk instead of
        # looping forever; follow_links then names the cycle
        rows = yield (
            f"""WITH RECURSIVE chain (id) AS (
                    SELECT %(id)s::text COLLATE "C"
                    UNION
                    SELECT c.parent_id
                    FROM chain JOIN checkpoints c ON c.thread = %(key)s AND c.checkpoint_id = chain.id
                    WHERE c.parent_id IS NOT NULL
                      AND NOT EXISTS (SELECT 1 FROM snapshots s WHERE s.thread = %(key)s AND s.checkpoint_id = chain.id)
                )
                SELECT {_C_COLUMNS}, s.state::text
                FROM chain
                JOIN checkpoints c ON c.thread = %(key)s AND c.checkpoint_id = chain.id
                LEFT JOIN snapshots s ON s.thread = %(key)s AND s.checkpoint_id = chain.id""",
            {"key": key, "id": checkpoint_id},
            True,
        )
        by_id = {r[0]: r for r in rows}
        stops = [i for i, r in by_id.items() if r[8] is not None]
        ids = follow_links(thread_id, checkpoint_id, {i: r[1] for i, r in by_id.items()}, set(stops), complete=True)
        assert ids is not None
        return [_record(thread_id, ns, by_id[i][:8], by_id[i][8]) for i in ids]

    def _pending_plan(self, thread_id: str, key: int, checkpoint_id: str) -> Plan[builtins.list[PendingWrite]]:
        rows = yield (
            "SELECT task_id, kind, value::text FROM pending_writes WHERE thread = %s AND checkpoint_id = %s"
            " ORDER BY task_id, kind",
            (key, checkpoint_id),
            True,
        )
        return [_pending_write(thread_id, checkpoint_id, r) for r in rows]

    def _pending_of_plan(self, thread_id: str, ns: str, checkpoint_id: str) -> Plan[builtins.list[PendingWrite]]:
        key = yield from self._key_plan(thread_id, ns)
        if key is None:
            return []
        return (yield from self._pending_plan(thread_id, key, checkpoint_id))

    def _first_child_plan(self, thread_id: str, ns: str, checkpoint_id: str) -> Plan[CheckpointRecord | None]:
        key = yield from self._key_plan(thread_id, ns)
        if key is None:
            return None
        # children are newer: walk the key forward from the parent. "not another source" rather than
        # "= 'loop'": a damaged source is read (and refused), not skipped
        rows = yield (
            f"SELECT {_COLUMNS} FROM checkpoints WHERE thread = %s AND checkpoint_id > %s"
            " AND parent_id = %s AND source NOT IN ('input', 'update', 'fork') ORDER BY checkpoint_id LIMIT 1",
            (key, checkpoint_id, checkpoint_id),
            True,
        )
        return _record(thread_id, ns, rows[0]) if rows else None

    def _page_plan(self, thread_id: str, ns: str, before: str | None) -> Plan[builtins.list[CheckpointRecord]]:
        """One page of a thread's checkpoints, newest first, older than ``before``."""
        key = yield from self._key_plan(thread_id, ns)
        if key is None:
            return []
        if before is None:
            rows = yield (
                f"SELECT {_COLUMNS} FROM checkpoints WHERE thread = %s ORDER BY checkpoint_id DESC LIMIT %s",
                (key, _PAGE),
                True,
            )
        else:
            rows = yield (
                f"SELECT {_COLUMNS} FROM checkpoints WHERE thread = %s AND checkpoint_id < %s"
                " ORDER BY checkpoint_id DESC LIMIT %s",
                (key, before, _PAGE),
                True,
            )
        return [_record(thread_id, ns, r) for r in rows]

    def _threads_plan(self) -> Plan[builtins.list[ThreadSummary]]:
        heads = yield (
            f"""SELECT t.thread_id, t.checkpoint_ns, t.id, {_C_COLUMNS},
                       (SELECT count(*) FROM checkpoints n WHERE n.thread = t.id)
                FROM threads t
                JOIN LATERAL (SELECT * FROM checkpoints h WHERE h.thread = t.id
                              ORDER BY h.checkpoint_id DESC LIMIT 1) c ON true
                ORDER BY c.checkpoint_id DESC""",
            None,
            True,
        )
        pending: dict[tuple[int, str], builtins.list[PendingWrite]] = {}
        if heads:
            rows = yield (
                """SELECT p.thread, p.checkpoint_id, p.task_id, p.kind, p.value::text
                   FROM pending_writes p
                   JOIN unnest(%s::bigint[], %s::text[]) AS h (thread, checkpoint_id)
                     ON p.thread = h.thread AND p.checkpoint_id = h.checkpoint_id COLLATE "C"
                   ORDER BY p.task_id, p.kind""",
                ([h[2] for h in heads], [h[3] for h in heads]),
                True,
            )
            names = {h[2]: h[0] for h in heads}
            for r in rows:
                write = _pending_write(names[r[0]], r[1], r[2:5])
                pending.setdefault((r[0], r[1]), []).append(write)
        out = []
        for h in heads:
            thread_id, ns, count = checked_thread(h[0], h[1], h[11])
            out.append(
                ThreadSummary(
                    thread_id=thread_id,
                    checkpoint_ns=ns,
                    checkpoints=count,
                    head=_record(thread_id, ns, h[3:11]),
                    pending=pending.get((h[2], h[3]), []),
                )
            )
        return out

    # -- writing: each write is one statement, so it commits atomically by itself -------------------
    # A write on a thread this saver holds for a run is *fenced*: it commits only if the run's
    # ``thread_leases`` row still names it (and locks that row while it commits). A run that lost its
    # lock (its lease connection was cut) and whose thread another run has since taken cannot commit.
    def _fences(
        self, threads: Sequence[tuple[str, str, int]], leases: Mapping[tuple[str, str], tuple[int, str]]
    ) -> tuple[builtins.list[str], dict[str, Any], dict[str, str]]:
        """CTEs ending in ``go``, a row only while every held thread among ``threads`` is still this run's."""
        ctes: builtins.list[str] = []
        params: dict[str, Any] = {}
        names: dict[str, str] = {}
        for thread_id, ns, key in threads:
            held = leases.get((thread_id, ns))
            if held is None or held[0] != key or thread_id in names:
                continue
            name = f"fence{len(names)}"
            names[thread_id] = name
            params[f"{name}_thread"], params[f"{name}_owner"] = key, held[1]
            ctes.append(
                f"{name} AS (SELECT 1 FROM thread_leases WHERE thread = %({name}_thread)s"
                f" AND owner = %({name}_owner)s FOR SHARE)"
            )
        if names:
            ctes.append(f"go AS (SELECT 1 FROM {', '.join(names.values())})")
        return ctes, params, names

    def _fenced_out(self, thread_id: str, key: int) -> Plan[None]:
        rows = yield "SELECT owner FROM thread_leases WHERE thread = %s", (key,), True
        raise lease_lost_error(
            thread_id, rows[0][0] if rows else None, "this run's lease connection to PostgreSQL was lost"
        )

    def _put_plan(
        self, records: Sequence[CheckpointRecord], leases: Mapping[tuple[str, str], tuple[int, str]]
    ) -> Plan[None]:
        """Every record in one statement: its checkpoint row, its snapshot, and its parent's consumed
        pending writes (results, errors and inputs are now in ``writes``; interrupts stay as history)."""
        keys = []
        for r in records:
            key = yield from self._key_plan(r.thread_id, r.checkpoint_ns, create=True)
            assert key is not None
            keys.append(key)
        ctes, params, fences = self._fences([(r.thread_id, r.checkpoint_ns, k) for r, k in zip(records, keys)], leases)
        go = " FROM go" if fences else ""
        rows: builtins.list[str] = []
        for i, (r, key) in enumerate(zip(records, keys)):
            params.update(
                {
                    f"thread{i}": key,
                    f"id{i}": r.checkpoint_id,
                    f"parent{i}": r.parent_id,
                    f"step{i}": r.step,
                    f"source{i}": r.source,
                    f"created{i}": r.created_at,
                    f"next{i}": _to_db(r.next),
                    f"writes{i}": _to_db(r.writes),
                    f"metadata{i}": None if r.metadata == "{}" else _to_db(r.metadata),
                }
            )
            rows.append(
                f"(%(thread{i})s, %(id{i})s, %(parent{i})s, %(step{i})s, %(source{i})s, %(created{i})s,"
                f" %(next{i})s::jsonb, %(writes{i})s::jsonb, %(metadata{i})s::jsonb)"
            )
            if r.snapshot is not None:
                params[f"snapshot{i}"] = _to_db(r.snapshot)
                ctes.append(
                    f"snap{i} AS (INSERT INTO snapshots (thread, checkpoint_id, state)"
                    f" SELECT %(thread{i})s, %(id{i})s, %(snapshot{i})s::jsonb{go})"
                )
            if r.parent_id is not None and r.source == "loop" and r.clears_pending:
                ctes.append(
                    f"done{i} AS (DELETE FROM pending_writes WHERE thread = %(thread{i})s"
                    f" AND checkpoint_id = %(parent{i})s AND kind IN {_CONSUMED}"
                    f"{' AND EXISTS (SELECT 1 FROM go)' if fences else ''})"
                )
        head = f"WITH {', '.join(ctes)} " if ctes else ""
        columns = "thread, checkpoint_id, parent_id, step, source, created_at, next, writes, metadata"
        if not fences:
            yield f"{head}INSERT INTO checkpoints ({columns}) VALUES {', '.join(rows)}", params, False
            return
        written = yield (
            f"{head}INSERT INTO checkpoints ({columns})"
            f" SELECT v.* FROM (VALUES {', '.join(rows)}) AS v CROSS JOIN go RETURNING 1",
            params,
            True,
        )
        if len(written) < len(records):
            yield from self._fenced_out(records[0].thread_id, keys[0])

    def _put_pending_plan(
        self,
        thread_id: str,
        ns: str,
        checkpoint_id: str,
        writes: Sequence[PendingWrite],
        leases: Mapping[tuple[str, str], tuple[int, str]],
    ) -> Plan[None]:
        latest = {(w.task_id, w.kind): w for w in writes}  # a later write of a (task, kind) replaces an earlier one
        if not latest:
            return
        key = yield from self._key_plan(thread_id, ns, create=True)
        assert key is not None
        ctes, params, fences = self._fences([(thread_id, ns, key)], leases)
        params.update(
            {
                "thread": key,
                "id": checkpoint_id,
                "tasks": [w.task_id for w in latest.values()],
                "kinds": [w.kind for w in latest.values()],
                "values": [_to_db(w.value) for w in latest.values()],
            }
        )
        written = yield (
            f"""{"WITH " + ", ".join(ctes) if ctes else ""}
                INSERT INTO pending_writes (thread, checkpoint_id, task_id, kind, value)
                SELECT %(thread)s, %(id)s, w.task_id, w.kind, w.value::jsonb
                FROM unnest(%(tasks)s::text[], %(kinds)s::text[], %(values)s::text[]) AS w (task_id, kind, value)
                {"CROSS JOIN go" if fences else ""}
                ON CONFLICT (thread, checkpoint_id, task_id, kind) DO UPDATE SET value = EXCLUDED.value
                RETURNING 1""",
            params,
            True,
        )
        if len(written) < len(latest):
            yield from self._fenced_out(thread_id, key)

    def _delete_plan(self, thread_id: str) -> Plan[None]:
        # the threads row stays, so keys cached by other savers stay valid
        yield (
            """WITH keys AS (SELECT id FROM threads WHERE thread_id = %s),
                    c AS (DELETE FROM checkpoints WHERE thread IN (SELECT id FROM keys)),
                    s AS (DELETE FROM snapshots WHERE thread IN (SELECT id FROM keys)),
                    p AS (DELETE FROM pending_writes WHERE thread IN (SELECT id FROM keys))
               DELETE FROM thread_leases WHERE thread IN (SELECT id FROM keys)""",
            (thread_id,),
            False,
        )

    # -- leases: run on the lease connection, in autocommit ----------------------------------------
    def _lock_plan(self, key: int, owner: str) -> Plan[str | None]:
        """Take a thread's advisory lock; return None, or who holds it when another session does.

        One statement: the lock (a volatile function, so its CTE runs exactly once), then, if it was
        taken, the ``thread_leases`` row saying who holds the thread, for people and for the next run's
        error. A lease needs no durability (the lock is what excludes): it commits without waiting
        for the disk. ``holder`` reads the table as it was before this statement.
        """
        rows = yield (
            """WITH lock AS (SELECT pg_try_advisory_lock(%(class)s::int4, %(key4)s::int4) AS taken),
                    quiet AS (SELECT set_config('synchronous_commit', 'off', true)),
                    lease AS (INSERT INTO thread_leases (thread, owner, acquired_at)
                              SELECT %(key)s, %(owner)s, now() FROM lock, quiet WHERE lock.taken
                              ON CONFLICT (thread) DO UPDATE
                              SET owner = EXCLUDED.owner, acquired_at = EXCLUDED.acquired_at)
               SELECT lock.taken, (SELECT owner FROM thread_leases WHERE thread = %(key)s) FROM lock""",
            {"class": self._lock_class, "key4": _int4(key), "key": key, "owner": owner},
            True,
        )
        taken, holder = rows[0]
        return None if taken else str(holder or "another process")

    def _unlock_plan(self, key: int, owner: str, *, last: bool) -> Plan[None]:
        unlock = "pg_advisory_unlock_all()" if last else "pg_advisory_unlock(%(class)s::int4, %(key4)s::int4)"
        yield (
            f"""WITH quiet AS (SELECT set_config('synchronous_commit', 'off', true)),
                     gone AS (DELETE FROM thread_leases USING quiet WHERE thread = %(key)s AND owner = %(owner)s)
                SELECT {unlock}""",
            {"key": key, "owner": owner, "class": self._lock_class, "key4": _int4(key)},
            True,
        )


# -- drivers ---------------------------------------------------------------------------------------
# Cursors ask for tuples whatever the connection's own row factory (a connection made for
# LangGraph's saver has ``row_factory=dict_row``): the plans index rows by position.
def _drive(conn: Connection, plan: Plan[T]) -> T:
    with conn.cursor(row_factory=tuple_row) as cur:
        try:
            sql, params, fetch = next(plan)
            while True:
                cur.execute(sql, params)
                sql, params, fetch = plan.send(cur.fetchall() if fetch else [])
        except StopIteration as stop:
            result: T = stop.value
            return result


async def _adrive(conn: AsyncConnection, plan: Plan[T]) -> T:
    async with conn.cursor(row_factory=tuple_row) as cur:
        try:
            sql, params, fetch = next(plan)
            while True:
                await cur.execute(sql, params)
                sql, params, fetch = plan.send(await cur.fetchall() if fetch else [])
        except StopIteration as stop:
            result: T = stop.value
            return result


def _usable(conn: Connection | AsyncConnection | None) -> bool:
    return conn is not None and not conn.closed and not conn.broken


class PostgresSaver(_Plans, BaseCheckpointSaver):
    """Checkpoints in a PostgreSQL database that ``psql`` can read.

    ``PostgresSaver.from_conn_string(url)`` opens a connection pool (and closes it on ``close()``
    or at the end of a ``with`` block); ``PostgresSaver(pool)`` uses a ``psycopg_pool.ConnectionPool``
    and ``PostgresSaver(conn)`` a single ``psycopg.Connection`` (switched to autocommit, shared under
    a lock), both left open by ``close()``. The schema is created or migrated by ``setup()``, which
    runs by itself on first use. Safe to share between threads; any number of processes and
    machines may use one database.
    """

    def __init__(self, conn: ConnectionPool[Connection] | Connection) -> None:
        self._pool: ConnectionPool[Connection] | None = None
        self._conn: Connection | None = None
        if isinstance(conn, ConnectionPool):
            self._pool = conn
        elif isinstance(conn, psycopg.Connection):
            self._conn = conn
            with _translate("switching the connection to autocommit"):
                conn.autocommit = True  # every statement commits by itself
        else:
            raise TypeError(f"PostgresSaver needs a psycopg_pool.ConnectionPool or psycopg.Connection, got {conn!r}")
        self._owns_pool = False
        self._lock = threading.RLock()  # guards the single connection (unused with a pool)
        self._keys = {}
        self._lock_class = 0
        self.schema_version = 0
        self._ready = False
        self._setup_lock = threading.Lock()
        # leases: which runs of this process hold which threads, and the connection holding the locks
        self._lease_lock = threading.Lock()
        self._leases: dict[tuple[str, str], tuple[int, str]] = {}  # (thread, ns) -> (key, owner)
        self._lease_conn: Connection | None = None
        self._lease_autocommit = True

    @classmethod
    def from_conn_string(cls, conn_string: str, *, min_size: int = 1, max_size: int = 16) -> PostgresSaver:
        """Open a pool of ``min_size``…``max_size`` connections to ``conn_string`` (a URL or
        ``key=value`` string) and create or migrate the schema.

        Usable directly or as a context manager that closes the pool. A run in progress keeps
        one connection of the pool, for all the runs of this saver, so ``max_size`` is at least 2.
        """
        if max_size < 2:
            raise CheckpointError("max_size must be at least 2: runs in progress hold one connection for their leases")
        try:  # one plain connection first: a wrong URL or password fails now, with the server's own words
            with psycopg.connect(conn_string, autocommit=True) as conn, conn.transaction():
                version, oid = _drive(conn, migrate_plan())
        except TetherError:
            raise
        except psycopg.Error as exc:
            raise CheckpointError(f"cannot open PostgreSQL database {_where(conn_string)}: {str(exc).strip()}") from exc
        pool: ConnectionPool[Connection] = ConnectionPool(
            conn_string,
            min_size=min_size,
            max_size=max(min_size, max_size),
            kwargs={"autocommit": True},
            open=True,
            name="tether",
        )
        saver = cls(pool)
        saver._owns_pool = True
        saver._mark_ready(version, oid)
        return saver

    def __enter__(self) -> PostgresSaver:
        return self

    # -- plumbing ---------------------------------------------------------------------------------
    def _mark_ready(self, version: int, oid: int) -> None:
        self.schema_version, self._lock_class, self._ready = version, _int4(oid), True

    def setup(self) -> None:
        """Create the schema, or migrate it to this Tether's version. Idempotent; safe to call
        from several processes at once. Raises ``SchemaVersionError`` for a newer schema."""
        with self._setup_lock, _translate("setting up the Tether schema"), self._connection() as conn:
            with conn.transaction():
                version, oid = _drive(conn, migrate_plan())
            self._mark_ready(version, oid)

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        """A connection in autocommit: every plan statement commits by itself (a pool's own setting
        is put back afterwards; psycopg keeps autocommit on the client, so switching costs nothing)."""
        if self._pool is None:
            assert self._conn is not None
            with self._lock:
                yield self._conn
            return
        with self._pool.connection() as conn:
            if conn.autocommit:
                yield conn
                return
            conn.autocommit = True
            try:
                yield conn
            finally:
                if _usable(conn):
                    conn.autocommit = False

    def _run(self, plan: Plan[T], doing: str) -> T:
        if not self._ready:
            self.setup()
        with _translate(doing), self._connection() as conn:
            return _drive(conn, plan)

    # -- reading ----------------------------------------------------------------------------------
    def get(
        self, thread_id: str, checkpoint_ns: str = "", checkpoint_id: str | None = None, *, have: str | None = None
    ) -> LoadedCheckpoint | None:
        result: LoadedCheckpoint | None = self._run(
            self._get_plan(thread_id, checkpoint_ns, checkpoint_id, have), f"loading thread {thread_id!r}"
        )
        return result

    def list(self, thread_id: str, checkpoint_ns: str = "", *, before: str | None = None) -> Iterator[CheckpointRecord]:
        while True:
            page = self._run(self._page_plan(thread_id, checkpoint_ns, before), f"listing thread {thread_id!r}")
            yield from page
            if len(page) < _PAGE:
                return
            before = page[-1].checkpoint_id

    def first_child(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> CheckpointRecord | None:
        return self._run(
            self._first_child_plan(thread_id, checkpoint_ns, checkpoint_id), f"reading thread {thread_id!r}"
        )

    def pending(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> builtins.list[PendingWrite]:
        return self._run(
            self._pending_of_plan(thread_id, checkpoint_ns, checkpoint_id),
            f"reading pending writes of thread {thread_id!r}",
        )

    def threads(self) -> builtins.list[ThreadSummary]:
        return self._run(self._threads_plan(), "listing threads")

    # -- writing ----------------------------------------------------------------------------------
    def put(self, record: CheckpointRecord) -> None:
        self.put_many([record])

    def put_many(self, records: Sequence[CheckpointRecord]) -> None:
        if records:
            self._run(
                self._put_plan(records, self._leases), f"committing a checkpoint of thread {records[0].thread_id!r}"
            )

    def put_pending(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, writes: Sequence[PendingWrite]
    ) -> None:
        self._run(
            self._put_pending_plan(thread_id, checkpoint_ns, checkpoint_id, writes, self._leases),
            f"saving pending writes of thread {thread_id!r}",
        )

    def delete_thread(self, thread_id: str) -> None:
        self._run(self._delete_plan(thread_id), f"deleting thread {thread_id!r}")

    # -- one run per thread -----------------------------------------------------------------------
    @contextmanager
    def _lease_connection(self) -> Iterator[Connection]:
        """The connection holding this saver's thread locks: taken from the pool while runs are in
        progress, given back (every lock released) when the last one ends. Call with ``_lease_lock``."""
        if self._pool is None:
            assert self._conn is not None
            with self._lock:
                yield self._conn
            return
        if not _usable(self._lease_conn):  # none yet, or it died (and its locks with it)
            self._drop_lease_connection()
            conn = self._pool.getconn()
            try:
                self._lease_autocommit = conn.autocommit
                conn.autocommit = True  # a lock query must not leave a transaction open for the whole run
                for thread_id, _key, _owner in self._relock(conn):
                    _log.warning("thread %r lost its lock with its connection and another run took it", thread_id)
            except BaseException:
                self._pool.putconn(conn)
                raise
            self._lease_conn = conn
        lease = self._lease_conn
        assert lease is not None
        try:
            yield lease
        finally:
            if not self._leases or not _usable(lease):
                self._drop_lease_connection()

    def _relock(self, conn: Connection) -> builtins.list[tuple[str, int, str]]:
        """Take the locks of runs still in progress again, on a new lease connection; return those lost."""
        lost = []
        for (thread_id, _ns), (key, owner) in self._leases.items():
            row = conn.cursor(row_factory=tuple_row).execute(_TRY_LOCK, (self._lock_class, _int4(key))).fetchone()
            if not row or not row[0]:
                lost.append((thread_id, key, owner))
        return lost

    def _drop_lease_connection(self) -> None:
        conn, self._lease_conn = self._lease_conn, None
        if conn is None or self._pool is None:
            return
        if _usable(conn):
            try:
                conn.autocommit = self._lease_autocommit
            except psycopg.Error:
                conn.close()
        self._pool.putconn(conn)  # the pool discards a closed or broken connection

    def _on_lease_connection(self, work: Callable[[Connection], T], doing: str, *, retry: bool = True) -> T | None:
        """Run ``work`` on the lease connection. If that connection turns out dead (the server or the
        network closed it while idle), run ``work`` again on a new one, or with ``retry=False`` return None."""
        for attempt in range(2):
            with _translate(doing), self._lease_connection() as conn:
                try:
                    return work(conn)
                except psycopg.OperationalError:
                    if self._pool is None or _usable(conn) or (retry and attempt):
                        raise
                    if not retry:
                        return None
        raise AssertionError("unreachable")

    def acquire(self, thread_id: str, checkpoint_ns: str, owner: str) -> None:
        if not self._ready:
            self.setup()
        with self._lease_lock:
            held = self._leases.get((thread_id, checkpoint_ns))
            if held is not None:
                if held[1] == owner:
                    return
                raise busy_error(thread_id, held[1])  # a run of this very saver

            def take(conn: Connection) -> str | None:
                key = _drive(conn, self._key_plan(thread_id, checkpoint_ns, create=True))  # autocommit: committed
                assert key is not None
                self._keys[(thread_id, checkpoint_ns)] = key
                try:
                    holder = _drive(conn, self._lock_plan(key, owner))
                except BaseException:
                    _unlock_quietly(conn, self._lock_class, key)  # the lock may be taken, the row not written
                    raise
                if holder is None:
                    self._leases[(thread_id, checkpoint_ns)] = (key, owner)
                return holder

            holder = self._on_lease_connection(take, f"starting a run on thread {thread_id!r}")
            if holder is not None:
                raise busy_error(thread_id, holder)

    def release(self, thread_id: str, checkpoint_ns: str, owner: str) -> None:
        with self._lease_lock:
            held = self._leases.get((thread_id, checkpoint_ns))
            if held is None or held[1] != owner:
                return  # not the holder: nothing to do
            del self._leases[(thread_id, checkpoint_ns)]
            if self._pool is not None and not _usable(self._lease_conn):
                self._drop_lease_connection()  # the connection died, and PostgreSQL freed its locks with it
                return
            last = not self._leases and self._pool is not None
            plan = self._unlock_plan(held[0], owner, last=last)

            def unlock(conn: Connection) -> None:
                try:
                    _drive(conn, plan)
                except psycopg.Error:  # the row could not be deleted: still free the lock, which is what excludes
                    _free_locks_quietly(conn, self._lock_class, held[0], every=last, pooled=self._pool is not None)
                    raise

            # a dead connection took the lock with it: nothing left to release
            self._on_lease_connection(unlock, f"ending a run on thread {thread_id!r}", retry=False)

    def close(self) -> None:
        """Release the threads this saver holds; close the pool if ``from_conn_string`` opened it."""
        with self._lease_lock:
            held = [*self._leases.values()]
            self._leases.clear()
            if held and (self._pool is None or _usable(self._lease_conn)):
                with contextlib.suppress(psycopg.Error), self._lease_connection() as conn:
                    for key, owner in held:
                        _drive(conn, self._unlock_plan(key, owner, last=False))
            self._drop_lease_connection()
        if self._owns_pool and self._pool is not None:
            self._pool.close()


def _unlock_quietly(conn: Connection, lock_class: int, key: int) -> None:
    if _usable(conn):
        with contextlib.suppress(psycopg.Error):
            conn.execute("SELECT pg_advisory_unlock(%s::int4, %s::int4)", (lock_class, _int4(key)))


async def _aunlock_quietly(conn: AsyncConnection, lock_class: int, key: int) -> None:
    if _usable(conn):
        with contextlib.suppress(psycopg.Error):
            await conn.execute("SELECT pg_advisory_unlock(%s::int4, %s::int4)", (lock_class, _int4(key)))


# After a failed release: free a thread's lock (``every``: all of the session's locks) with a
# statement that writes nothing, so a full disk cannot stop it. If even that fails, end a pooled
# session: PostgreSQL frees its locks, and runs still in progress on it lock again on a new one
# (a connection the caller gave us stays theirs to close).
def _free_locks_quietly(conn: Connection, lock_class: int, key: int, *, every: bool, pooled: bool) -> None:
    if not _usable(conn):
        return  # a dead session holds no locks
    try:
        if every:
            conn.execute("SELECT pg_advisory_unlock_all()")
        else:
            conn.execute("SELECT pg_advisory_unlock(%s::int4, %s::int4)", (lock_class, _int4(key)))
    except psycopg.Error:
        if pooled:
            conn.close()


async def _afree_locks_quietly(conn: AsyncConnection, lock_class: int, key: int, *, every: bool, pooled: bool) -> None:
    if not _usable(conn):
        return
    try:
        if every:
            await conn.execute("SELECT pg_advisory_unlock_all()")
        else:
            await conn.execute("SELECT pg_advisory_unlock(%s::int4, %s::int4)", (lock_class, _int4(key)))
    except psycopg.Error:
        if pooled:
            await conn.close()


class AsyncPostgresSaver(_Plans, BaseCheckpointSaver):
    """The PostgreSQL store for asyncio programs, on ``psycopg``'s async driver.

    ``async with AsyncPostgresSaver.from_conn_string(url) as saver:`` opens a pool and closes it at
    the end; ``AsyncPostgresSaver(pool)`` takes a ``psycopg_pool.AsyncConnectionPool`` and
    ``AsyncPostgresSaver(conn)`` a ``psycopg.AsyncConnection``. The ``a…`` methods are native
    async. The plain methods (``get``, ``put``…) work from *another* thread while the saver's
    event loop runs (as ``graph.aget_state`` calls them); called on the event loop itself they
    raise ``CheckpointError`` rather than block it: await the ``a…`` method instead.
    """

    def __init__(self, conn: AsyncConnectionPool[AsyncConnection] | AsyncConnection | None = None) -> None:
        self._pool: AsyncConnectionPool[AsyncConnection] | None = None
        self._conn: AsyncConnection | None = None
        if isinstance(conn, AsyncConnectionPool):
            self._pool = conn
        elif isinstance(conn, psycopg.AsyncConnection):
            self._conn = conn
        elif conn is not None:
            raise TypeError(
                f"AsyncPostgresSaver needs a psycopg_pool.AsyncConnectionPool or psycopg.AsyncConnection, got {conn!r}"
            )
        self._conn_string: str | None = None  # set by from_conn_string: the pool is opened on first use
        self._pool_size = (1, 16)
        self._owns_pool = False
        self._keys = {}
        self._lock_class = 0
        self.schema_version = 0
        self._ready = False
        self._alock: asyncio.Lock | None = None
        self._setup_lock: asyncio.Lock | None = None
        self._lease_lock: asyncio.Lock | None = None
        self._leases: dict[tuple[str, str], tuple[int, str]] = {}  # (thread, ns) -> (key, owner)
        self._lease_conn: AsyncConnection | None = None
        self._lease_autocommit = True
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None

    @classmethod
    def from_conn_string(cls, conn_string: str, *, min_size: int = 1, max_size: int = 16) -> AsyncPostgresSaver:
        """A saver for ``conn_string``: ``async with AsyncPostgresSaver.from_conn_string(url) as saver``.

        The pool opens (and the schema is created or migrated) on ``async with`` or on first use;
        ``await saver.aclose()`` closes it when not used as a context manager.
        """
        if max_size < 2:
            raise CheckpointError("max_size must be at least 2: runs in progress hold one connection for their leases")
        saver = cls()
        saver._conn_string = conn_string
        saver._pool_size = (min_size, max(min_size, max_size))
        return saver

    async def __aenter__(self) -> AsyncPostgresSaver:
        await self._aready()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __enter__(self) -> AsyncPostgresSaver:
        raise CheckpointError("AsyncPostgresSaver is an async context manager: use `async with`")

    # -- plumbing ---------------------------------------------------------------------------------
    def _locks(self) -> tuple[asyncio.Lock, asyncio.Lock, asyncio.Lock]:
        if self._alock is None or self._setup_lock is None or self._lease_lock is None:
            self._alock, self._setup_lock, self._lease_lock = asyncio.Lock(), asyncio.Lock(), asyncio.Lock()
        return self._alock, self._setup_lock, self._lease_lock

    async def _aready(self) -> None:
        if self._ready:
            return
        _, setup_lock, _ = self._locks()
        async with setup_lock:
            if self._ready:
                return
            self._loop = asyncio.get_running_loop()
            if self._pool is None and self._conn is None:
                await self._open()
            else:
                await self.setup()

    async def _open(self) -> None:
        conn_string = self._conn_string
        if conn_string is None:
            raise CheckpointError(
                "AsyncPostgresSaver has no database: pass a pool or connection, or use from_conn_string"
            )
        try:
            conn = await psycopg.AsyncConnection.connect(conn_string, autocommit=True)
            async with conn, conn.transaction():
                version, oid = await _adrive(conn, migrate_plan())
        except TetherError:
            raise
        except psycopg.Error as exc:
            raise CheckpointError(f"cannot open PostgreSQL database {_where(conn_string)}: {str(exc).strip()}") from exc
        pool: AsyncConnectionPool[AsyncConnection] = AsyncConnectionPool(
            conn_string,
            min_size=self._pool_size[0],
            max_size=self._pool_size[1],
            kwargs={"autocommit": True},
            open=False,
            name="tether-async",
        )
        await pool.open()
        self._pool, self._owns_pool = pool, True
        self._mark_ready(version, oid)

    def _mark_ready(self, version: int, oid: int) -> None:
        self.schema_version, self._lock_class, self._ready = version, _int4(oid), True

    async def setup(self) -> None:
        """Create the schema, or migrate it to this Tether's version. Idempotent; safe to call
        from several processes at once. Raises ``SchemaVersionError`` for a newer schema."""
        if self._pool is None and self._conn is None:
            await self._aready()
            return
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        with _translate("setting up the Tether schema"):
            async with self._connection() as conn:
                if self._conn is not None:
                    await conn.set_autocommit(True)  # every statement commits by itself
                async with conn.transaction():
                    version, oid = await _adrive(conn, migrate_plan())
        self._mark_ready(version, oid)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection]:
        """A connection in autocommit (see ``PostgresSaver._connection``)."""
        if self._pool is None:
            assert self._conn is not None
            alock, _, _ = self._locks()
            async with alock:
                yield self._conn
            return
        async with self._pool.connection() as conn:
            if conn.autocommit:
                yield conn
                return
            await conn.set_autocommit(True)
            try:
                yield conn
            finally:
                if _usable(conn):
                    await conn.set_autocommit(False)

    async def _run(self, plan: Plan[T], doing: str) -> T:
        try:
            await self._aready()
            with _translate(doing):
                async with self._connection() as conn:
                    return await _adrive(conn, plan)
        finally:
            plan.close()

    def _blocking(self, work: Callable[[], Coroutine[Any, Any, T]], doing: str) -> T:
        """Run an ``a…`` method from a plain (non-async) call: on the saver's loop, from another thread."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise CheckpointError(
                f"AsyncPostgresSaver cannot {doing} synchronously inside a running event loop "
                "(it would block the loop): await the a… method instead (aget, alist, aput…)"
            )
        loop = self._loop
        if loop is None or loop.is_closed() or not loop.is_running():
            raise CheckpointError(
                f"AsyncPostgresSaver cannot {doing} synchronously: its plain methods work only from another "
                "thread while its event loop runs; use the async methods (aget, alist, aput…) or PostgresSaver"
            )
        return asyncio.run_coroutine_threadsafe(work(), loop).result()

    # -- async reading ----------------------------------------------------------------------------
    async def aget(
        self, thread_id: str, checkpoint_ns: str = "", checkpoint_id: str | None = None, *, have: str | None = None
    ) -> LoadedCheckpoint | None:
        result: LoadedCheckpoint | None = await self._run(
            self._get_plan(thread_id, checkpoint_ns, checkpoint_id, have), f"loading thread {thread_id!r}"
        )
        return result

    async def alist(
        self, thread_id: str, checkpoint_ns: str = "", *, before: str | None = None
    ) -> builtins.list[CheckpointRecord]:
        out: builtins.list[CheckpointRecord] = []
        while True:
            page = await self._run(self._page_plan(thread_id, checkpoint_ns, before), f"listing thread {thread_id!r}")
            out += page
            if len(page) < _PAGE:
                return out
            before = page[-1].checkpoint_id

    async def afirst_child(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> CheckpointRecord | None:
        return await self._run(
            self._first_child_plan(thread_id, checkpoint_ns, checkpoint_id), f"reading thread {thread_id!r}"
        )

    async def apending(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> builtins.list[PendingWrite]:
        return await self._run(
            self._pending_of_plan(thread_id, checkpoint_ns, checkpoint_id),
            f"reading pending writes of thread {thread_id!r}",
        )

    async def athreads(self) -> builtins.list[ThreadSummary]:
        return await self._run(self._threads_plan(), "listing threads")

    # -- async writing ----------------------------------------------------------------------------
    async def aput(self, record: CheckpointRecord) -> None:
        await self.aput_many([record])

    async def aput_many(self, records: Sequence[CheckpointRecord]) -> None:
        if records:
            await self._run(
                self._put_plan(records, self._leases), f"committing a checkpoint of thread {records[0].thread_id!r}"
            )

    async def aput_pending(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, writes: Sequence[PendingWrite]
    ) -> None:
        await self._run(
            self._put_pending_plan(thread_id, checkpoint_ns, checkpoint_id, writes, self._leases),
            f"saving pending writes of thread {thread_id!r}",
        )

    async def adelete_thread(self, thread_id: str) -> None:
        await self._run(self._delete_plan(thread_id), f"deleting thread {thread_id!r}")

    # -- async leases (the same as PostgresSaver's) -----------------------------------------------------
    @asynccontextmanager
    async def _lease_connection(self) -> AsyncIterator[AsyncConnection]:
        if self._pool is None:
            assert self._conn is not None
            alock, _, _ = self._locks()
            async with alock:
                yield self._conn
            return
        if not _usable(self._lease_conn):
            await self._drop_lease_connection()
            conn = await self._pool.getconn()
            try:
                self._lease_autocommit = conn.autocommit
                await conn.set_autocommit(True)
                for thread_id, _key, _owner in await self._relock(conn):
                    _log.warning("thread %r lost its lock with its connection and another run took it", thread_id)
            except BaseException:
                await self._pool.putconn(conn)
                raise
            self._lease_conn = conn
        lease = self._lease_conn
        assert lease is not None
        try:
            yield lease
        finally:
            if not self._leases or not _usable(lease):
                await self._drop_lease_connection()

    async def _relock(self, conn: AsyncConnection) -> builtins.list[tuple[str, int, str]]:
        lost = []
        for (thread_id, _ns), (key, owner) in self._leases.items():
            cur = await conn.cursor(row_factory=tuple_row).execute(_TRY_LOCK, (self._lock_class, _int4(key)))
            row = await cur.fetchone()
            if not row or not row[0]:
                lost.append((thread_id, key, owner))
        return lost

    async def _drop_lease_connection(self) -> None:
        conn, self._lease_conn = self._lease_conn, None
        if conn is None or self._pool is None:
            return
        if _usable(conn):
            try:
                await conn.set_autocommit(self._lease_autocommit)
            except psycopg.Error:
                await conn.close()
        await self._pool.putconn(conn)

    async def _on_lease_connection(
        self, work: Callable[[AsyncConnection], Coroutine[Any, Any, T]], doing: str, *, retry: bool = True
    ) -> T | None:
        for attempt in range(2):
            with _translate(doing):
                async with self._lease_connection() as conn:
                    try:
                        return await work(conn)
                    except psycopg.OperationalError:
                        if self._pool is None or _usable(conn) or (retry and attempt):
                            raise
                        if not retry:
                            return None
        raise AssertionError("unreachable")

    async def aacquire(self, thread_id: str, checkpoint_ns: str, owner: str) -> None:
        await self._aready()
        _, _, lease_lock = self._locks()
        async with lease_lock:
            held = self._leases.get((thread_id, checkpoint_ns))
            if held is not None:
                if held[1] == owner:
                    return
                raise busy_error(thread_id, held[1])

            async def take(conn: AsyncConnection) -> str | None:
                key = await _adrive(conn, self._key_plan(thread_id, checkpoint_ns, create=True))
                assert key is not None
                self._keys[(thread_id, checkpoint_ns)] = key
                try:
                    holder = await _adrive(conn, self._lock_plan(key, owner))
                except BaseException:
                    await _aunlock_quietly(conn, self._lock_class, key)
                    raise
                if holder is None:
                    self._leases[(thread_id, checkpoint_ns)] = (key, owner)
                return holder

            holder = await self._on_lease_connection(take, f"starting a run on thread {thread_id!r}")
            if holder is not None:
                raise busy_error(thread_id, holder)

    async def arelease(self, thread_id: str, checkpoint_ns: str, owner: str) -> None:
        _, _, lease_lock = self._locks()
        async with lease_lock:
            held = self._leases.get((thread_id, checkpoint_ns))
            if held is None or held[1] != owner:
                return
            del self._leases[(thread_id, checkpoint_ns)]
            if self._pool is not None and not _usable(self._lease_conn):
                await self._drop_lease_connection()
                return
            last = not self._leases and self._pool is not None
            plan = self._unlock_plan(held[0], owner, last=last)

            async def unlock(conn: AsyncConnection) -> None:
                try:
                    await _adrive(conn, plan)
                except psycopg.Error:  # the row could not be deleted: still free the lock, which is what excludes
                    await _afree_locks_quietly(
                        conn, self._lock_class, held[0], every=last, pooled=self._pool is not None
                    )
                    raise

            await self._on_lease_connection(unlock, f"ending a run on thread {thread_id!r}", retry=False)

    async def aclose(self) -> None:
        """Release the threads this saver holds; close the pool if ``from_conn_string`` opened it."""
        _, _, lease_lock = self._locks()
        async with lease_lock:
            held = [*self._leases.values()]
            self._leases.clear()
            if held and (self._pool is None or _usable(self._lease_conn)):
                with contextlib.suppress(psycopg.Error):
                    async with self._lease_connection() as conn:
                        for key, owner in held:
                            await _adrive(conn, self._unlock_plan(key, owner, last=False))
            await self._drop_lease_connection()
        if self._owns_pool and self._pool is not None:
            await self._pool.close()
            self._pool, self._owns_pool, self._ready = None, False, False

    # -- the plain methods, run on the saver's event loop -------------------------------------------
    def get(
        self, thread_id: str, checkpoint_ns: str = "", checkpoint_id: str | None = None, *, have: str | None = None
    ) -> LoadedCheckpoint | None:
        return self._blocking(lambda: self.aget(thread_id, checkpoint_ns, checkpoint_id, have=have), "load a thread")

    def list(self, thread_id: str, checkpoint_ns: str = "", *, before: str | None = None) -> Iterator[CheckpointRecord]:
        while True:
            plan = self._page_plan(thread_id, checkpoint_ns, before)
            page = self._blocking(functools.partial(self._run, plan, f"listing thread {thread_id!r}"), "list a thread")
            yield from page
            if len(page) < _PAGE:
                return
            before = page[-1].checkpoint_id

    def first_child(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> CheckpointRecord | None:
        return self._blocking(lambda: self.afirst_child(thread_id, checkpoint_ns, checkpoint_id), "read a thread")

    def pending(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> builtins.list[PendingWrite]:
        return self._blocking(lambda: self.apending(thread_id, checkpoint_ns, checkpoint_id), "read pending writes")

    def threads(self) -> builtins.list[ThreadSummary]:
        return self._blocking(self.athreads, "list threads")

    def put(self, record: CheckpointRecord) -> None:
        self._blocking(lambda: self.aput(record), "commit a checkpoint")

    def put_many(self, records: Sequence[CheckpointRecord]) -> None:
        self._blocking(lambda: self.aput_many(records), "commit checkpoints")

    def put_pending(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, writes: Sequence[PendingWrite]
    ) -> None:
        self._blocking(
            lambda: self.aput_pending(thread_id, checkpoint_ns, checkpoint_id, writes), "save pending writes"
        )

    def delete_thread(self, thread_id: str) -> None:
        self._blocking(lambda: self.adelete_thread(thread_id), "delete a thread")

    def acquire(self, thread_id: str, checkpoint_ns: str, owner: str) -> None:
        self._blocking(lambda: self.aacquire(thread_id, checkpoint_ns, owner), "start a run")

    def release(self, thread_id: str, checkpoint_ns: str, owner: str) -> None:
        self._blocking(lambda: self.arelease(thread_id, checkpoint_ns, owner), "end a run")

    def close(self) -> None:
        if self._pool is None and self._conn is None:
            return  # never opened
        self._blocking(self.aclose, "close")
