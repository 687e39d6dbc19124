"""One run per thread on PostgreSQL: advisory-lock leases, written once for both savers.

A run holds a session-level advisory lock (``pg_try_advisory_lock``) keyed by its thread, on a
connection the saver keeps out of its pool while it has runs in progress (the *lease
connection*). PostgreSQL frees the lock when ``release()`` unlocks it or when that connection
ends, so a run whose process dies or loses the network frees its thread at once, with no
heartbeat and no expiry to wait for. ``thread_leases`` rows say who holds a thread, for people
and for the error a second run gets; the lock, not the row, is what excludes.

The lease logic (``Leases``) is written once, as generators that yield the few connection
operations it needs (``LeaseOp``: run a plan, take or give back a pooled connection, switch
autocommit, close, hold the shared connection) and receive their results, or their exceptions
thrown back in. ``PostgresSaver`` performs these operations with plain calls, ``AsyncPostgresSaver``
awaits them: each face is about twenty lines, and both take, keep and free locks in the same order.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg

from tether.checkpoint._base import busy_error
from tether.checkpoint._postgres_driver import Plan, translate, usable
from tether.checkpoint._postgres_plans import Plans

__all__ = [
    "Close",
    "Drive",
    "GetConn",
    "HoldShared",
    "LeaseOp",
    "LeaseSteps",
    "Leases",
    "PutConn",
    "ReleaseShared",
    "SetAutocommit",
    "aperform",
    "int4",
    "perform",
]

T = TypeVar("T")
_log = logging.getLogger("tether.checkpoint")
_TRY_LOCK = "SELECT pg_try_advisory_lock(%s::int4, %s::int4)"
_UNLOCK = "SELECT pg_advisory_unlock(%s::int4, %s::int4)"
_UNLOCK_ALL = "SELECT pg_advisory_unlock_all()"


def int4(n: int) -> int:
    """``n`` as the signed 32-bit integer with the same low 32 bits (an advisory lock key)."""
    n &= 0xFFFF_FFFF
    return n - (1 << 32) if n >= 1 << 31 else n


# -- the operations a lease step asks its saver to perform --------------------------------------------
# ``conn`` is a psycopg.Connection for PostgresSaver, a psycopg.AsyncConnection for AsyncPostgresSaver.
@dataclass(frozen=True, slots=True)
class Drive:
    """Run ``plan`` on ``conn``; the result is the plan's."""

    conn: Any
    plan: Plan[Any]


@dataclass(frozen=True, slots=True)
class GetConn:
    """Take a connection out of the saver's pool."""


@dataclass(frozen=True, slots=True)
class PutConn:
    """Give ``conn`` back to the pool (which discards a closed or broken connection)."""

    conn: Any


@dataclass(frozen=True, slots=True)
class SetAutocommit:
    conn: Any
    value: bool


@dataclass(frozen=True, slots=True)
class Close:
    conn: Any


@dataclass(frozen=True, slots=True)
class HoldShared:
    """Take the lock that guards a saver's single connection (a saver given one connection, no pool)."""


@dataclass(frozen=True, slots=True)
class ReleaseShared:
    pass


LeaseOp = Drive | GetConn | PutConn | SetAutocommit | Close | HoldShared | ReleaseShared
LeaseSteps = Generator[LeaseOp, Any, T]


def perform(steps: LeaseSteps[T], do: Callable[[LeaseOp], Any]) -> T:
    """Run ``steps`` with plain calls: ``do`` performs each operation; what it raises goes back in."""
    reply: Any = None
    error: BaseException | None = None
    while True:
        try:
            op = steps.send(reply) if error is None else steps.throw(error)
        except StopIteration as stop:
            result: T = stop.value
            return result
        try:
            reply, error = do(op), None
        except BaseException as exc:  # thrown back into the steps, which clean up as they choose
            reply, error = None, exc


async def aperform(steps: LeaseSteps[T], do: Callable[[LeaseOp], Awaitable[Any]]) -> T:
    """Run ``steps`` in asyncio: ``do`` performs each operation; what it raises goes back in."""
    reply: Any = None
    error: BaseException | None = None
    while True:
        try:
            op = steps.send(reply) if error is None else steps.throw(error)
        except StopIteration as stop:
            result: T = stop.value
            return result
        try:
            reply, error = await do(op), None
        except BaseException as exc:  # cancellation included: the steps give the connection back
            reply, error = None, exc


def _one(sql: str, params: Any, *, fetch: bool = True) -> Plan[builtins.list[Any]]:
    rows: builtins.list[Any] = yield sql, params, fetch
    return rows


class _Retry:
    """What one attempt on a lease connection returns when that connection died and it may retry."""


_RETRY = _Retry()


class Leases(Plans):
    """Which runs of this saver hold which threads, and how their locks are taken and freed.

    Lease steps run under the saver's lease lock (a ``threading.Lock`` or an ``asyncio.Lock``).
    """

    _pool: Any  # a psycopg_pool pool (sync or async), or None with a single connection
    _conn: Any  # the single connection, without a pool
    _leases: dict[tuple[str, str], tuple[int, str]]  # (thread, ns) -> (key, owner)
    _lease_conn: Any  # the connection holding this saver's locks, while it holds any
    _lease_autocommit: bool  # the pool's autocommit setting, put back on the lease connection

    # -- plans: run on the lease connection, in autocommit -----------------------------------------
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
            {"class": self._lock_class, "key4": int4(key), "key": key, "owner": owner},
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
            {"key": key, "owner": owner, "class": self._lock_class, "key4": int4(key)},
            True,
        )

    # -- the lease connection ---------------------------------------------------------------------
    def _with_lease_connection(self, work: Callable[[Any], LeaseSteps[T]]) -> LeaseSteps[T]:
        """Run ``work`` on the connection holding this saver's thread locks: taken from the pool while
        runs are in progress, given back (every lock released) when the last one ends."""
        if self._pool is None:
            yield HoldShared()
            try:
                return (yield from work(self._conn))
            finally:
                yield ReleaseShared()
        if not usable(self._lease_conn):  # none yet, or it died (and its locks with it)
            yield from self._drop_lease_connection()
            conn = yield GetConn()
            try:
                self._lease_autocommit = conn.autocommit
                yield SetAutocommit(conn, True)  # a lock query must not leave a transaction open for the whole run
                for thread_id, _key, _owner in (yield from self._relock(conn)):
                    _log.warning("thread %r lost its lock with its connection and another run took it", thread_id)
            except BaseException:
                yield PutConn(conn)
                raise
            self._lease_conn = conn
        lease = self._lease_conn
        assert lease is not None
        try:
            return (yield from work(lease))
        finally:
            if not self._leases or not usable(lease):
                yield from self._drop_lease_connection()

    def _relock(self, conn: Any) -> LeaseSteps[builtins.list[tuple[str, int, str]]]:
        """Take the locks of runs still in progress again, on a new lease connection; return those lost."""
        lost = []
        for (thread_id, _ns), (key, owner) in self._leases.items():
            rows = yield Drive(conn, _one(_TRY_LOCK, (self._lock_class, int4(key))))
            if not rows or not rows[0][0]:
                lost.append((thread_id, key, owner))
        return lost

    def _drop_lease_connection(self) -> LeaseSteps[None]:
        conn, self._lease_conn = self._lease_conn, None
        if conn is None or self._pool is None:
            return
        if usable(conn):
            try:
                yield SetAutocommit(conn, self._lease_autocommit)
            except psycopg.Error:
                yield Close(conn)
        yield PutConn(conn)  # the pool discards a closed or broken connection

    def _on_lease_connection(
        self, work: Callable[[Any], LeaseSteps[T]], doing: str, *, retry: bool = True
    ) -> LeaseSteps[T | None]:
        """Run ``work`` on the lease connection. If that connection turns out dead (the server or the
        network closed it while idle), run ``work`` again on a new one, or with ``retry=False`` return None."""
        for attempt in range(2):

            def attempt_once(conn: Any, attempt: int = attempt) -> LeaseSteps[T | _Retry | None]:
                try:
                    return (yield from work(conn))
                except psycopg.OperationalError:
                    if self._pool is None or usable(conn) or (retry and attempt):
                        raise
                    return _RETRY if retry else None

            with translate(doing):
                result = yield from self._with_lease_connection(attempt_once)
            if not isinstance(result, _Retry):
                return result
        raise AssertionError("unreachable")

    # -- one run per thread -----------------------------------------------------------------------
    def _acquire_steps(self, thread_id: str, checkpoint_ns: str, owner: str) -> LeaseSteps[None]:
        held = self._leases.get((thread_id, checkpoint_ns))
        if held is not None:
            if held[1] == owner:
                return
            raise busy_error(thread_id, held[1])  # a run of this very saver

        def take(conn: Any) -> LeaseSteps[str | None]:
            key = yield Drive(conn, self._key_plan(thread_id, checkpoint_ns, create=True))  # autocommit: committed
            assert key is not None
            self._keys[(thread_id, checkpoint_ns)] = key
            try:
                holder: str | None = yield Drive(conn, self._lock_plan(key, owner))
            except BaseException:
                yield from self._unlock_quietly(conn, key)  # the lock may be taken, the row not written
                raise
            if holder is None:
                self._leases[(thread_id, checkpoint_ns)] = (key, owner)
            return holder

        holder = yield from self._on_lease_connection(take, f"starting a run on thread {thread_id!r}")
        if holder is not None:
            raise busy_error(thread_id, holder)

    def _release_steps(self, thread_id: str, checkpoint_ns: str, owner: str) -> LeaseSteps[None]:
        held = self._leases.get((thread_id, checkpoint_ns))
        if held is None or held[1] != owner:
            return  # not the holder: nothing to do
        del self._leases[(thread_id, checkpoint_ns)]
        if self._pool is not None and not usable(self._lease_conn):
            yield from self._drop_lease_connection()  # the connection died, and PostgreSQL freed its locks with it
            return
        last = not self._leases and self._pool is not None
        plan = self._unlock_plan(held[0], owner, last=last)

        def unlock(conn: Any) -> LeaseSteps[None]:
            try:
                yield Drive(conn, plan)
            except psycopg.Error:  # the row could not be deleted: still free the lock, which is what excludes
                yield from self._free_locks_quietly(conn, held[0], every=last)
                raise

        # a dead connection took the lock with it: nothing left to release
        yield from self._on_lease_connection(unlock, f"ending a run on thread {thread_id!r}", retry=False)

    def _close_steps(self) -> LeaseSteps[None]:
        """Release every thread this saver holds, and give the lease connection back."""
        held = [*self._leases.values()]
        self._leases.clear()
        if held and (self._pool is None or usable(self._lease_conn)):

            def unlock_all(conn: Any) -> LeaseSteps[None]:
                for key, owner in held:
                    yield Drive(conn, self._unlock_plan(key, owner, last=False))

            with contextlib.suppress(psycopg.Error):
                yield from self._with_lease_connection(unlock_all)
        yield from self._drop_lease_connection()

    def _unlock_quietly(self, conn: Any, key: int) -> LeaseSteps[None]:
        if usable(conn):
            with contextlib.suppress(psycopg.Error):
                yield Drive(conn, _one(_UNLOCK, (self._lock_class, int4(key)), fetch=False))

    # After a failed release: free a thread's lock (``every``: all of the session's locks) with a
    # statement that writes nothing, so a full disk cannot stop it. If even that fails, end a pooled
    # session: PostgreSQL frees its locks, and runs still in progress on it lock again on a new one
    # (a connection the caller gave us stays theirs to close).
    def _free_locks_quietly(self, conn: Any, key: int, *, every: bool) -> LeaseSteps[None]:
        if not usable(conn):
            return  # a dead session holds no locks
        try:
            if every:
                yield Drive(conn, _one(_UNLOCK_ALL, None, fetch=False))
            else:
                yield Drive(conn, _one(_UNLOCK, (self._lock_class, int4(key)), fetch=False))
        except psycopg.Error:
            if self._pool is not None:
                yield Close(conn)
