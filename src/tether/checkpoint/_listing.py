"""Paged thread listing: the page type, its opaque cursor and the filters every store accepts.

Threads are listed newest activity first: by their head checkpoint's id (UUIDv7, so by the time
of their last step), then thread id and namespace, descending. A cursor names the last thread of
a page by that key; the next page starts strictly after it (keyset paging, never OFFSET), so a
page costs the same at any depth, and threads created while a caller pages (newer than every
cursor) never shift or repeat what is left. A thread that takes a step while a caller pages moves
to the front: it is listed again on a fresh first page, not on the pages after the cursor.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from tether.checkpoint._base import ListingKey, ThreadFilter, ThreadPage, ThreadSummary
from tether.errors import CheckpointError

__all__ = [
    "MAX_LIMIT",
    "ListingKey",
    "ThreadFilter",
    "ThreadPage",
    "decode_cursor",
    "encode_cursor",
    "filter_summaries",
    "listing_key",
    "thread_filter",
]

MAX_LIMIT = 1000


def encode_cursor(key: ListingKey) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key), separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> ListingKey:
    """The listing key a cursor names; a cursor this code did not hand out is refused."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        key = None
    if not (isinstance(key, list) and len(key) == 3 and all(type(k) is str for k in key)):
        raise CheckpointError(
            f"bad thread listing cursor {cursor[:80]!r}: pass the next_cursor of a previous page unchanged, "
            "or no cursor for the first page"
        )
    return (key[0], key[1], key[2])


def _iso(name: str, when: datetime | None) -> str | None:
    if when is None:
        return None
    if not isinstance(when, datetime) or when.tzinfo is None:
        raise CheckpointError(f"{name} must be a timezone-aware datetime (e.g. datetime.now(UTC)), got {when!r}")
    return when.astimezone(UTC).isoformat()


def thread_filter(
    *,
    limit: int,
    after: str | None,
    metadata: Mapping[str, Any] | None,
    updated_after: datetime | None,
    updated_before: datetime | None,
) -> ThreadFilter:
    """The filters of ``list_threads`` checked, with errors that say what to pass instead."""
    if type(limit) is not int or not 1 <= limit <= MAX_LIMIT:
        raise CheckpointError(f"thread listing limit must be an integer from 1 to {MAX_LIMIT}, got {limit!r}")
    pairs: list[tuple[str, str]] = []
    for key, value in (metadata or {}).items():
        if type(key) is not str or not key or '"' in key:
            raise CheckpointError(f"metadata filter keys must be non-empty strings without '\"', got {key!r}")
        try:
            pairs.append((key, json.dumps(value, sort_keys=True)))
        except (TypeError, ValueError) as exc:
            raise CheckpointError(
                f"metadata filter {key!r}: the value {value!r} is not JSON (use a string, number, bool or null)"
            ) from exc
    return ThreadFilter(
        limit=limit,
        after=None if after is None else decode_cursor(after),
        metadata=tuple(pairs),
        updated_after=_iso("updated_after", updated_after),
        updated_before=_iso("updated_before", updated_before),
    )


def _metadata_matches(text: str, wanted: tuple[tuple[str, str], ...]) -> bool:
    if not wanted:
        return True
    try:
        meta = json.loads(text) if text else {}
    except ValueError:
        return False
    if not isinstance(meta, dict):
        return False
    return all(k in meta and json.dumps(meta[k], sort_keys=True) == v for k, v in wanted)


def _updated(created_at: str) -> str:
    try:
        return datetime.fromisoformat(created_at).astimezone(UTC).isoformat()
    except ValueError:
        return created_at


def listing_key(summary: ThreadSummary) -> ListingKey:
    return (summary.head.checkpoint_id, summary.thread_id, summary.checkpoint_ns)


def filter_summaries(summaries: Iterable[ThreadSummary], flt: ThreadFilter) -> ThreadPage:
    """A page from every thread's summary, in memory: the reference the SQL listings agree with."""
    ordered = sorted(summaries, key=listing_key, reverse=True)
    keep: Callable[[ThreadSummary], bool] = lambda s: (  # noqa: E731
        (flt.after is None or listing_key(s) < flt.after)
        and _metadata_matches(s.head.metadata, flt.metadata)
        and (flt.updated_after is None or _updated(s.head.created_at) >= flt.updated_after)
        and (flt.updated_before is None or _updated(s.head.created_at) < flt.updated_before)
    )
    matching = [s for s in ordered if keep(s)]
    items = matching[: flt.limit]
    more = len(matching) > flt.limit
    return ThreadPage(items=items, next_cursor=encode_cursor(listing_key(items[-1])) if more else None)
