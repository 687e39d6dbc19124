"""The checkpointer protocol: what every store (memory, SQLite, PostgreSQL) provides.

A store keeps a *log*. Each checkpoint row records the writes that produced it from
its parent and the tasks due next; every so often it also keeps a *snapshot* of the
whole state. The runtime rebuilds the state at any checkpoint from the nearest
snapshot at or before it plus the writes after it, so the store never needs to know
what a reducer is, and a thread's bytes grow with what it wrote, not with steps × state.

Values reach the store already encoded as tagged JSON text (``_serde``): stores move
text, they never serialize, and they never unpickle anything.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import os
import random
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tether.errors import ThreadBusyError

__all__ = [
    "BaseCheckpointSaver",
    "CheckpointRecord",
    "ListingKey",
    "LoadedCheckpoint",
    "PendingWrite",
    "ThreadFilter",
    "ThreadPage",
    "ThreadSummary",
    "arelease_after_run",
    "new_checkpoint_id",
    "release_after_run",
    "run_owner",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class CheckpointRecord:
    """One row of the log. ``next``, ``writes``, ``metadata`` and ``snapshot`` are JSON text."""

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_id: str | None
    step: int
    source: str  # input | loop | update | fork
    created_at: str
    next: str  # tasks due: ["node", {"node": "n", "arg": …}, …]
    writes: str  # [{"task": i, "node": "n", "writes": [[key, value], …]}, …] in apply order
    metadata: str  # user metadata from the run's config
    snapshot: str | None = None  # the full state, present on snapshot checkpoints
    # False when the writer knows the parent has no pending writes to drop (saves a statement)
    clears_pending: bool = True


@dataclass(frozen=True, kw_only=True, slots=True)
class PendingWrite:
    """Work done from a checkpoint whose step has not committed yet.

    ``kind`` is ``result`` (a finished task's outcome), ``interrupt`` (the payloads a task
    paused with), ``resume`` (values given to a paused task) or ``error`` (why it failed).
    """

    task_id: str
    kind: str
    value: str


@dataclass(frozen=True, kw_only=True, slots=True)
class LoadedCheckpoint:
    """A checkpoint and what is needed to rebuild its state.

    ``chain`` runs oldest to newest and ends with ``record``; its first element carries a
    snapshot unless it is the thread's first checkpoint. ``chain`` is empty when the caller
    said it already holds the state of ``record`` (``have=``).
    """

    record: CheckpointRecord
    chain: list[CheckpointRecord]
    pending: list[PendingWrite]


@dataclass(frozen=True, kw_only=True, slots=True)
class ThreadSummary:
    thread_id: str
    checkpoint_ns: str
    checkpoints: int
    head: CheckpointRecord
    pending: list[PendingWrite] = field(default_factory=list)


ListingKey = tuple[str, str, str]  # (head checkpoint id, thread id, namespace)


@dataclass(frozen=True, kw_only=True, slots=True)
class ThreadFilter:
    """Checked filters: ``metadata`` as (key, JSON text of the value) pairs; times as ISO text in UTC."""

    limit: int
    after: ListingKey | None
    metadata: tuple[tuple[str, str], ...]
    updated_after: str | None
    updated_before: str | None


@dataclass(frozen=True, kw_only=True, slots=True)
class ThreadPage:
    """One page of threads, newest activity first; ``next_cursor`` is None on the last page."""

    items: list[ThreadSummary]
    next_cursor: str | None


_id_lock = threading.Lock()
_random = random.Random(os.urandom(16))  # ids need uniqueness, not secrecy
os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(16)))  # forked workers must not repeat ids
_last_id = [0]


def new_checkpoint_id() -> str:
    """A UUIDv7-shaped id: sorts by creation time, strictly increasing within a process."""
    with _id_lock:
        now = time.time_ns() // 1_000  # microseconds
        value = max(now, _last_id[0] + 1)
        _last_id[0] = value
    ms, sub_ms = divmod(value, 1000)
    rand = _random.getrandbits(64)  # uniqueness within a process comes from the counter above
    # RFC 9562 v7 layout: 48-bit ms timestamp | version | 12 bits (here: the microseconds) | variant | random
    hi = (ms << 16) | (0x7 << 12) | sub_ms
    lo = (0b10 << 62) | (rand >> 2)
    h = f"{hi:016x}{lo:016x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def run_owner() -> str:
    """Who holds a thread while a run is in progress: host, process, and a unique tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"


# Owners of this process that hold a lease now (a count per owner: one run may hold several
# threads). A lease row naming this process but no owner here is left over from a run whose
# release failed (a full disk, a lost connection), or from an earlier process that had this pid.
_held_here: dict[str, int] = {}
_held_here_lock = threading.Lock()


def lease_taken(owner: str) -> None:
    """Record that ``owner``, a run of this process, now holds one more thread."""
    with _held_here_lock:
        _held_here[owner] = _held_here.get(owner, 0) + 1


def lease_given_back(owner: str) -> None:
    """Record that ``owner`` ended its hold on one thread (whether or not the store heard of it)."""
    with _held_here_lock:
        left = _held_here.pop(owner, 0) - 1
        if left > 0:
            _held_here[owner] = left


def owner_is_alive(owner: str) -> bool:
    """Whether the run that took a lease may still be running.

    Knowable only on this host: a run of this process is alive while it holds a lease here
    (``lease_taken``); another process of this host while its pid exists. For another host
    this says True, and only the lease's expiry can free the thread.
    """
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True  # another machine: trust the lease until it expires
    if int(pid_text) == os.getpid():
        with _held_here_lock:
            return owner in _held_here
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def busy_error(thread_id: str, owner: str, expires_at: float | None = None) -> ThreadBusyError:
    """``ThreadBusyError`` naming the holder and, for a lease with an expiry, when it frees the thread."""
    until = ""
    if expires_at is not None:
        when = datetime.fromtimestamp(expires_at, UTC).isoformat(timespec="milliseconds")
        until = f", lease expires at {when} ({max(0.0, expires_at - time.time()):.1f} s from now) unless renewed"
    return ThreadBusyError(
        f"thread {thread_id!r} already has a run in progress (held by {owner}{until}); "
        "wait for it to finish, or use another thread_id"
    )


def lease_lost_error(thread_id: str, holder: str | None, why: str) -> ThreadBusyError:
    """A run's write refused because another run took its thread (the write was not saved)."""
    return ThreadBusyError(
        f"thread {thread_id!r} was taken by another run (held by {holder or 'nobody now'}) while this run "
        f"was in progress: {why}, and this step was not saved; the other run's work is intact, "
        "so load the thread's state again before continuing it"
    )


def _checked_filter(
    limit: int,
    after: str | None,
    metadata: dict[str, Any] | None,
    updated_after: datetime | None,
    updated_before: datetime | None,
) -> ThreadFilter:
    from tether.checkpoint._listing import thread_filter  # imports this module: a lazy import, not a cycle

    return thread_filter(
        limit=limit, after=after, metadata=metadata, updated_after=updated_after, updated_before=updated_before
    )


class BaseCheckpointSaver(ABC):
    """Storage for checkpoints. Subclasses implement the sync methods; the async ones
    run them in a worker thread unless a store has a native async driver."""

    # -- reading --------------------------------------------------------------------
    @abstractmethod
    def get(
        self, thread_id: str, checkpoint_ns: str = "", checkpoint_id: str | None = None, *, have: str | None = None
    ) -> LoadedCheckpoint | None:
        """The checkpoint (the newest when ``checkpoint_id`` is None) with its rebuild chain."""

    @abstractmethod
    def list(self, thread_id: str, checkpoint_ns: str = "", *, before: str | None = None) -> Iterator[CheckpointRecord]:
        """A thread's checkpoints, newest first, without snapshots."""

    @abstractmethod
    def first_child(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> CheckpointRecord | None:
        """The oldest ``loop`` checkpoint whose parent is ``checkpoint_id``: what its tasks produced."""

    @abstractmethod
    def pending(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> builtins.list[PendingWrite]:
        """Pending writes recorded against a checkpoint."""

    @abstractmethod
    def threads(self) -> builtins.list[ThreadSummary]:
        """Every thread with its newest checkpoint, most recently active first."""

    def list_threads(
        self,
        *,
        limit: int = 50,
        after: str | None = None,
        metadata: dict[str, Any] | None = None,
        updated_after: datetime | None = None,
        updated_before: datetime | None = None,
    ) -> ThreadPage:
        """One page (a ``ThreadPage``) of threads with their head checkpoint and its pending writes,
        newest activity first, after the cursor ``after`` (a previous page's ``next_cursor``).

        ``metadata`` keeps threads whose head checkpoint's metadata has each key with an equal
        value; ``updated_after``/``updated_before`` bound the head's time. This default reads every
        thread; the database stores override ``_threads_page`` with one query a page (``_listing``)."""
        return self._threads_page(_checked_filter(limit, after, metadata, updated_after, updated_before))

    async def alist_threads(
        self,
        *,
        limit: int = 50,
        after: str | None = None,
        metadata: dict[str, Any] | None = None,
        updated_after: datetime | None = None,
        updated_before: datetime | None = None,
    ) -> ThreadPage:
        """``list_threads`` for async callers (the server), in a worker thread unless a store is async."""
        return await self._athreads_page(_checked_filter(limit, after, metadata, updated_after, updated_before))

    def _threads_page(self, flt: ThreadFilter) -> ThreadPage:
        """One page of threads for checked filters; this default filters ``threads()``."""
        from tether.checkpoint._listing import filter_summaries

        return filter_summaries(self.threads(), flt)

    async def _athreads_page(self, flt: ThreadFilter) -> ThreadPage:
        return await asyncio.to_thread(self._threads_page, flt)

    # -- writing --------------------------------------------------------------------
    @abstractmethod
    def put(self, record: CheckpointRecord) -> None:
        """Commit a checkpoint atomically, with its snapshot. A ``loop`` checkpoint also drops
        its parent's pending results and errors (now part of ``record.writes``); interrupt and
        resume records stay, as the history of what was asked and answered."""

    def put_many(self, records: Sequence[CheckpointRecord]) -> None:
        """Commit several checkpoints (each the parent of the next) in one transaction."""
        for record in records:
            self.put(record)

    @abstractmethod
    def put_pending(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, writes: Sequence[PendingWrite]
    ) -> None:
        """Record (or replace) pending writes for tasks of a checkpoint, atomically."""

    @abstractmethod
    def delete_thread(self, thread_id: str) -> None:
        """Remove every checkpoint and pending write of a thread."""

    # -- one run per thread -----------------------------------------------------------
    @abstractmethod
    def acquire(self, thread_id: str, checkpoint_ns: str, owner: str) -> None:
        """Take the thread for a run, or raise ``ThreadBusyError`` naming the live run that holds it.

        A lease whose holder is gone is taken over: at once when the store can tell (a dead
        process of this host, a closed PostgreSQL session), otherwise once its expiry passes."""

    @abstractmethod
    def release(self, thread_id: str, checkpoint_ns: str, owner: str) -> None:
        """Give the thread back; a no-op if ``owner`` does not hold it.

        May raise ``CheckpointError`` when the store cannot be written (a full disk, a lost
        connection). The store has forgotten the lease by then: it no longer renews it, a later
        run of this process may take the thread at once, and other processes once it expires."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources held by the store."""

    # -- async face ---------------------------------------------------------------------
    async def aget(
        self, thread_id: str, checkpoint_ns: str = "", checkpoint_id: str | None = None, *, have: str | None = None
    ) -> LoadedCheckpoint | None:
        return await asyncio.to_thread(self.get, thread_id, checkpoint_ns, checkpoint_id, have=have)

    async def alist(
        self, thread_id: str, checkpoint_ns: str = "", *, before: str | None = None
    ) -> builtins.list[CheckpointRecord]:
        return await asyncio.to_thread(lambda: list(self.list(thread_id, checkpoint_ns, before=before)))

    async def apending(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> builtins.list[PendingWrite]:
        return await asyncio.to_thread(self.pending, thread_id, checkpoint_ns, checkpoint_id)

    async def aput(self, record: CheckpointRecord) -> None:
        await asyncio.to_thread(self.put, record)

    async def aput_many(self, records: Sequence[CheckpointRecord]) -> None:
        await asyncio.to_thread(self.put_many, records)

    async def aput_pending(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, writes: Sequence[PendingWrite]
    ) -> None:
        await asyncio.to_thread(self.put_pending, thread_id, checkpoint_ns, checkpoint_id, writes)

    async def aacquire(self, thread_id: str, checkpoint_ns: str, owner: str) -> None:
        await asyncio.to_thread(self.acquire, thread_id, checkpoint_ns, owner)

    async def arelease(self, thread_id: str, checkpoint_ns: str, owner: str) -> None:
        await asyncio.to_thread(self.release, thread_id, checkpoint_ns, owner)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_log = logging.getLogger("tether")


def _log_release_failure(thread_id: str, exc: Exception) -> None:
    _log.warning(
        "the run on thread %r ended but its lease could not be given back (%s); what it committed is "
        "saved, and the thread frees itself when the lease expires (at once for runs of this process)",
        thread_id,
        exc,
        exc_info=exc,
    )


def release_after_run(saver: BaseCheckpointSaver, thread_id: str, checkpoint_ns: str, owner: str) -> None:
    """``release`` at the end of a run, which must not fail because of it: the run's steps are
    committed (raising would invite a retry that applies the input twice), and the store frees
    a lease it could not delete by itself. A failure is logged on the ``tether`` logger."""
    try:
        saver.release(thread_id, checkpoint_ns, owner)
    except Exception as exc:
        _log_release_failure(thread_id, exc)


async def arelease_after_run(saver: BaseCheckpointSaver, thread_id: str, checkpoint_ns: str, owner: str) -> None:
    """The async twin of ``release_after_run``."""
    try:
        await saver.arelease(thread_id, checkpoint_ns, owner)
    except Exception as exc:
        _log_release_failure(thread_id, exc)
