"""A page of threads with where each stands: what ``tether threads`` and the server list.

Status and open interrupts come from the one reader, ``_thread_status.thread_status``, over
each thread's head checkpoint and the pending writes the store returns with it, so a listing
never disagrees with ``get_state``. Stores page by newest activity with an indexed keyset query
(``checkpoint._listing``); status is not stored, so a status filter reads pages of heads and
keeps the matching ones, until ``limit`` match or ``max_scan`` threads were read. A page may then
hold fewer than ``limit`` threads (even none) and still carry a ``next_cursor``: keep paging.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_args

from tether.checkpoint._base import BaseCheckpointSaver
from tether.checkpoint._listing import MAX_LIMIT, encode_cursor, listing_key
from tether.errors import CheckpointError
from tether.graph._state import decode_record
from tether.graph._thread_status import Status, thread_status

__all__ = ["DEFAULT_MAX_SCAN", "ThreadInfo", "ThreadInfoPage", "list_threads"]

DEFAULT_MAX_SCAN = 5000  # heads a status-filtered page reads at most before it returns what it found


@dataclass(frozen=True, kw_only=True, slots=True)
class ThreadInfo:
    """A thread at its head checkpoint. ``interrupts`` are the open questions, ``[{"id", "value"}]``."""

    thread_id: str
    checkpoint_ns: str
    status: Status
    interrupts: list[dict[str, Any]]
    next: list[str]
    step: int
    checkpoints: int
    updated_at: str
    checkpoint_id: str
    metadata: dict[str, Any]


@dataclass(frozen=True, kw_only=True, slots=True)
class ThreadInfoPage:
    items: list[ThreadInfo]
    next_cursor: str | None  # None: no thread is left after this page


def _statuses(status: str | Collection[str] | None) -> frozenset[str] | None:
    if status is None:
        return None
    wanted = frozenset([status] if isinstance(status, str) else status)
    known = set(get_args(Status))
    if not wanted or not wanted <= known:
        raise CheckpointError(f"unknown thread status {sorted(wanted - known) or status!r}: use {sorted(known)}")
    return wanted


def list_threads(
    saver: BaseCheckpointSaver,
    *,
    limit: int = 50,
    after: str | None = None,
    status: str | Collection[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    updated_after: datetime | None = None,
    updated_before: datetime | None = None,
    max_scan: int = DEFAULT_MAX_SCAN,
) -> ThreadInfoPage:
    """Threads newest activity first, ``limit`` a page, after the cursor ``after``.

    ``status``: one of ``waiting``/``error``/``paused``/``done`` or several; ``metadata``: exact
    match on keys of the head checkpoint's metadata; ``updated_after``/``updated_before``: bounds
    on the head's time (timezone-aware). Bad filters and cursors raise ``CheckpointError``.
    """
    wanted = _statuses(status)
    if type(max_scan) is not int or max_scan < 1:
        raise CheckpointError(f"max_scan must be a positive integer, got {max_scan!r}")
    if type(limit) is not int or not 1 <= limit <= MAX_LIMIT:
        raise CheckpointError(f"thread listing limit must be an integer from 1 to {MAX_LIMIT}, got {limit!r}")
    # a status is known only once a head is read: read bigger pages and keep the matching threads
    batch = limit if wanted is None else min(MAX_LIMIT, max(limit * 4, 200))
    meta = dict(metadata) if metadata else None
    items: list[ThreadInfo] = []
    scanned = 0
    cursor = after
    while True:
        page = saver.list_threads(
            limit=batch, after=cursor, metadata=meta, updated_after=updated_after, updated_before=updated_before
        )
        for position, summary in enumerate(page.items):
            scanned += 1
            decoded = decode_record(summary.head)
            where = thread_status(decoded, summary.pending)
            state = where.status()
            if wanted is None or state in wanted:
                items.append(
                    ThreadInfo(
                        thread_id=summary.thread_id,
                        checkpoint_ns=summary.checkpoint_ns,
                        status=state,
                        interrupts=where.open_interrupts(),
                        next=where.next,
                        step=summary.head.step,
                        checkpoints=summary.checkpoints,
                        updated_at=summary.head.created_at,
                        checkpoint_id=summary.head.checkpoint_id,
                        metadata=decoded.metadata,
                    )
                )
            last_read = position == len(page.items) - 1
            more = not last_read or page.next_cursor is not None
            if len(items) == limit or (scanned >= max_scan and more):
                return ThreadInfoPage(items=items, next_cursor=encode_cursor(listing_key(summary)) if more else None)
        if page.next_cursor is None:
            return ThreadInfoPage(items=items, next_cursor=None)
        cursor = page.next_cursor
