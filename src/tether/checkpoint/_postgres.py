"""PostgreSQL store: ``PostgresSaver`` (threads and a connection pool) and ``AsyncPostgresSaver`` (asyncio).

The same log, snapshots and pending writes as the SQLite store, in the same logical schema
(``_postgres_schema``), with JSON columns as ``jsonb`` so that ``psql`` can read and query them
(``_postgres_text`` says how JSON text goes in and out of jsonb).

Both savers run the same SQL: every query is written once as a plan (``_postgres_plans``), driven
over ``psycopg.Connection``s or ``psycopg.AsyncConnection``s (``_postgres_driver``). One run per
thread, across processes and machines, comes from advisory-lock leases (``_postgres_leases``),
also written once; each saver here only opens connections and performs the leases' steps.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

try:
    import psycopg
    from psycopg_pool import AsyncConnectionPool, ConnectionPool
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "the PostgreSQL checkpointer needs psycopg 3 and psycopg-pool: pip install 'tether[postgres]'"
    ) from exc

from tether.checkpoint._base import BaseCheckpointSaver, CheckpointRecord, LoadedCheckpoint, PendingWrite, ThreadSummary
from tether.checkpoint._key_cache import ThreadKeys
from tether.checkpoint._listing import ThreadFilter, ThreadPage
from tether.checkpoint._postgres_driver import (
    AsyncConnection,
    Connection,
    Plan,
    adrive,
    drive,
    translate,
    usable,
    where,
)
from tether.checkpoint._postgres_leases import (
    Close,
    Drive,
    GetConn,
    HoldShared,
    LeaseOp,
    Leases,
    PutConn,
    ReleaseShared,
    SetAutocommit,
    aperform,
    int4,
    perform,
)
from tether.checkpoint._postgres_plans import PAGE
from tether.checkpoint._postgres_schema import migrate_plan, readable_plan
from tether.errors import CheckpointError, TetherError

__all__ = ["AsyncPostgresSaver", "PostgresSaver"]

T = TypeVar("T")


class PostgresSaver(Leases, BaseCheckpointSaver):
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
            with translate("switching the connection to autocommit"):
                conn.autocommit = True  # every statement commits by itself
        else:
            raise TypeError(f"PostgresSaver needs a psycopg_pool.ConnectionPool or psycopg.Connection, got {conn!r}")
        self._owns_pool = False
        self._lock = threading.RLock()  # guards the single connection (unused with a pool)
        self._keys = ThreadKeys()  # bounded: a cache of the threads table
        self._lock_class = 0
        self.schema_version = 0
        self._ready = False
        self.read_only = False  # set by from_conn_string(read_only=True)
        self._setup_lock = threading.Lock()
        # leases: which runs of this process hold which threads, and the connection holding the locks
        self._lease_lock = threading.Lock()
        self._leases: dict[tuple[str, str], tuple[int, str]] = {}  # (thread, ns) -> (key, owner)
        self._lease_conn: Connection | None = None
        self._lease_autocommit = True

    @classmethod
    def from_conn_string(
        cls, conn_string: str, *, min_size: int = 1, max_size: int = 16, read_only: bool = False
    ) -> PostgresSaver:
        """Open a pool of ``min_size``…``max_size`` connections to ``conn_string`` (a URL or
        ``key=value`` string) and create or migrate the schema.

        Usable directly or as a context manager that closes the pool. A run in progress keeps
        one connection of the pool, for all the runs of this saver, so ``max_size`` is at least 2.

        ``read_only=True`` (the ``tether`` reading commands): the schema is checked, never created
        or migrated; every session is ``default_transaction_read_only``, and writes raise
        ``CheckpointError``.
        """
        if max_size < 2:
            raise CheckpointError("max_size must be at least 2: runs in progress hold one connection for their leases")
        try:  # one plain connection first: a wrong URL or password fails now, with the server's own words
            with psycopg.connect(conn_string, autocommit=True) as conn:
                if read_only:
                    _read_only_session(conn)
                with conn.transaction():
                    version, oid = drive(conn, readable_plan(where(conn_string)) if read_only else migrate_plan())
        except TetherError:
            raise
        except psycopg.Error as exc:
            raise CheckpointError(f"cannot open PostgreSQL database {where(conn_string)}: {str(exc).strip()}") from exc
        pool: ConnectionPool[Connection] = ConnectionPool(
            conn_string,
            min_size=min_size,
            max_size=max(min_size, max_size),
            kwargs={"autocommit": True},
            configure=_read_only_session if read_only else None,
            open=True,
            name="tether",
        )
        saver = cls(pool)
        saver._owns_pool = True
        saver.read_only = read_only
        saver._mark_ready(version, oid)
        return saver

    def _refuse_if_read_only(self, doing: str) -> None:
        if self.read_only:
            raise CheckpointError(
                f"cannot write while {doing}: this PostgresSaver was opened read-only (read_only=True); "
                "open the database without read_only to write"
            )

    def __enter__(self) -> PostgresSaver:
        return self

    # -- plumbing ---------------------------------------------------------------------------------
    def _mark_ready(self, version: int, oid: int) -> None:
        self.schema_version, self._lock_class, self._ready = version, int4(oid), True

    def setup(self) -> None:
        """Create the schema, or migrate it to this Tether's version. Idempotent; safe to call
        from several processes at once. Raises ``SchemaVersionError`` for a newer schema."""
        with self._setup_lock, translate("setting up the Tether schema"), self._connection() as conn:
            with conn.transaction():
                version, oid = drive(conn, readable_plan("the database") if self.read_only else migrate_plan())
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
                if usable(conn):
                    conn.autocommit = False

    def _run(self, plan: Plan[T], doing: str) -> T:
        if not self._ready:
            self.setup()
        with translate(doing), self._connection() as conn:
            return drive(conn, plan)

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
            if len(page) < PAGE:
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

    def _threads_page(self, flt: ThreadFilter) -> ThreadPage:
        return self._run(self._list_threads_plan(flt), "listing threads")

    # -- writing ----------------------------------------------------------------------------------
    def put(self, record: CheckpointRecord) -> None:
        self.put_many([record])

    def put_many(self, records: Sequence[CheckpointRecord]) -> None:
        if records:
            self._refuse_if_read_only(f"committing a checkpoint of thread {records[0].thread_id!r}")
            self._run(
                self._put_plan(records, self._leases), f"committing a checkpoint of thread {records[0].thread_id!r}"
            )

    def put_pending(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, writes: Sequence[PendingWrite]
    ) -> None:
        self._refuse_if_read_only(f"saving pending writes of thread {thread_id!r}")
        self._run(
            self._put_pending_plan(thread_id, checkpoint_ns, checkpoint_id, writes, self._leases),
            f"saving pending writes of thread {thread_id!r}",
        )

    def delete_thread(self, thread_id: str) -> None:
        self._refuse_if_read_only(f"deleting thread {thread_id!r}")
        self._run(self._delete_plan(thread_id), f"deleting thread {thread_id!r}")

    # -- one run per thread (the steps are ``Leases``'; here, how this saver performs them) ---------
    def _do(self, op: LeaseOp) -> Any:
        match op:
            case Drive(conn, plan):
                return drive(conn, plan)
            case GetConn():
                assert self._pool is not None
                return self._pool.getconn()
            case PutConn(conn):
                assert self._pool is not None
                self._pool.putconn(conn)
            case SetAutocommit(conn, value):
                conn.autocommit = value
            case Close(conn):
                conn.close()
            case HoldShared():
                self._lock.acquire()
            case ReleaseShared():
                self._lock.release()
        return None

    def acquire(self, thread_id: str, checkpoint_ns: str, owner: str) -> None:
        self._refuse_if_read_only(f"taking thread {thread_id!r} for a run")
        if not self._ready:
            self.setup()
        with self._lease_lock:
            perform(self._acquire_steps(thread_id, checkpoint_ns, owner), self._do)

    def release(self, thread_id: str, checkpoint_ns: str, owner: str) -> None:
        with self._lease_lock:
            perform(self._release_steps(thread_id, checkpoint_ns, owner), self._do)

    def close(self) -> None:
        """Release the threads this saver holds; close the pool if ``from_conn_string`` opened it."""
        with self._lease_lock:
            perform(self._close_steps(), self._do)
        if self._owns_pool and self._pool is not None:
            self._pool.close()


def _read_only_session(conn: Connection) -> None:
    """Every transaction of this session is READ ONLY: the server itself refuses a write."""
    conn.execute("SET default_transaction_read_only = on")


class AsyncPostgresSaver(Leases, BaseCheckpointSaver):
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
        self._keys = ThreadKeys()  # bounded: a cache of the threads table
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
                version, oid = await adrive(conn, migrate_plan())
        except TetherError:
            raise
        except psycopg.Error as exc:
            raise CheckpointError(f"cannot open PostgreSQL database {where(conn_string)}: {str(exc).strip()}") from exc
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
        self.schema_version, self._lock_class, self._ready = version, int4(oid), True

    async def setup(self) -> None:
        """Create the schema, or migrate it to this Tether's version. Idempotent; safe to call
        from several processes at once. Raises ``SchemaVersionError`` for a newer schema."""
        if self._pool is None and self._conn is None:
            await self._aready()
            return
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        with translate("setting up the Tether schema"):
            async with self._connection() as conn:
                if self._conn is not None:
                    await conn.set_autocommit(True)  # every statement commits by itself
                async with conn.transaction():
                    version, oid = await adrive(conn, migrate_plan())
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
                if usable(conn):
                    await conn.set_autocommit(False)

    async def _run(self, plan: Plan[T], doing: str) -> T:
        try:
            await self._aready()
            with translate(doing):
                async with self._connection() as conn:
                    return await adrive(conn, plan)
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
            if len(page) < PAGE:
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

    async def _athreads_page(self, flt: ThreadFilter) -> ThreadPage:
        return await self._run(self._list_threads_plan(flt), "listing threads")

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

    # -- async leases (the steps are ``Leases``'; here, how this saver awaits them) ------------------
    async def _ado(self, op: LeaseOp) -> Any:
        match op:
            case Drive(conn, plan):
                return await adrive(conn, plan)
            case GetConn():
                assert self._pool is not None
                return await self._pool.getconn()
            case PutConn(conn):
                assert self._pool is not None
                await self._pool.putconn(conn)
            case SetAutocommit(conn, value):
                await conn.set_autocommit(value)
            case Close(conn):
                await conn.close()
            case HoldShared():
                await self._locks()[0].acquire()
            case ReleaseShared():
                self._locks()[0].release()
        return None

    async def aacquire(self, thread_id: str, checkpoint_ns: str, owner: str) -> None:
        await self._aready()
        _, _, lease_lock = self._locks()
        async with lease_lock:
            await aperform(self._acquire_steps(thread_id, checkpoint_ns, owner), self._ado)

    async def arelease(self, thread_id: str, checkpoint_ns: str, owner: str) -> None:
        _, _, lease_lock = self._locks()
        async with lease_lock:
            await aperform(self._release_steps(thread_id, checkpoint_ns, owner), self._ado)

    async def aclose(self) -> None:
        """Release the threads this saver holds; close the pool if ``from_conn_string`` opened it."""
        _, _, lease_lock = self._locks()
        async with lease_lock:
            await aperform(self._close_steps(), self._ado)
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
            if len(page) < PAGE:
                return
            before = page[-1].checkpoint_id

    def first_child(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> CheckpointRecord | None:
        return self._blocking(lambda: self.afirst_child(thread_id, checkpoint_ns, checkpoint_id), "read a thread")

    def pending(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> builtins.list[PendingWrite]:
        return self._blocking(lambda: self.apending(thread_id, checkpoint_ns, checkpoint_id), "read pending writes")

    def threads(self) -> builtins.list[ThreadSummary]:
        return self._blocking(self.athreads, "list threads")

    def _threads_page(self, flt: ThreadFilter) -> ThreadPage:
        return self._blocking(lambda: self._athreads_page(flt), "list threads")

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
