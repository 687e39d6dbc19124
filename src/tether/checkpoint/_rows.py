"""Rows read back from a store, checked before anything else trusts them.

A database can be edited by hand, restored from a bad backup or damaged on disk. Every store
turns its rows into records here, so a column holding what Tether never writes (a NULL, a
number where text belongs, an unknown ``source`` or ``kind``) and parent links that loop or
lead to no row fail as one error, :class:`~tether.errors.CorruptCheckpointError`, naming the
thread, the checkpoint and the column, instead of as a raw ``TypeError`` three calls later or
as a state rebuilt from the wrong rows. The checks are type tests on the columns of rows
already read, and one set of visited ids per chain walk: O(rows read), nothing more.

JSON columns are checked where they are decoded (``tether.graph._state``): stores move text.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping, Sequence
from typing import Any, NoReturn

from tether._names import PENDING_KINDS
from tether.checkpoint._base import CheckpointRecord, PendingWrite
from tether.errors import CorruptCheckpointError, SchemaVersionError

__all__ = [
    "KINDS",
    "SOURCES",
    "checked_pending",
    "checked_record",
    "checked_thread",
    "corrupt",
    "follow_links",
    "recorded_version",
]

SOURCES = frozenset({"input", "loop", "update", "fork"})
KINDS = PENDING_KINDS
# checkpoints columns in the order every store selects them
_CHECKPOINT_COLUMNS = ("checkpoint_id", "parent_id", "step", "source", "created_at", "next", "writes", "metadata")


def _same(text: str) -> str:
    return text


def corrupt(thread_id: object, checkpoint_id: object, column: str, problem: str) -> NoReturn:
    raise CorruptCheckpointError(problem, thread_id=thread_id, checkpoint_id=checkpoint_id, column=column)


def _describe(value: object) -> str:
    if value is None:
        return "NULL"
    shown = repr(value)
    return f"a {type(value).__name__} ({shown[:40] + '…' if len(shown) > 40 else shown})"


def checked_record(
    thread_id: str,
    ns: str,
    row: Sequence[Any],
    snapshot: Any = None,
    *,
    text: Callable[[str], str] | None = None,
) -> CheckpointRecord:
    """A ``checkpoints`` row (``_CHECKPOINT_COLUMNS`` order) and its snapshot as a record.

    ``text`` turns a stored JSON column back into JSON text (PostgreSQL's jsonb escapes)."""
    cid, parent, step, source, created, next_, writes, metadata = row
    if not (  # one expression on the hot path (every row of every chain); the details only on failure
        type(cid) is str
        and (parent is None or type(parent) is str)
        and type(step) is int
        and source in SOURCES
        and type(created) is str
        and type(next_) is str
        and type(writes) is str
        and (metadata is None or type(metadata) is str)
        and (snapshot is None or type(snapshot) is str)
    ):
        _refuse_record(thread_id, row, snapshot)
    if text is not None:
        next_, writes = text(next_), text(writes)
        metadata = text(metadata) if metadata is not None else None
        snapshot = text(snapshot) if snapshot is not None else None
    return CheckpointRecord(
        thread_id=thread_id,
        checkpoint_ns=ns,
        checkpoint_id=cid,
        parent_id=parent,
        step=step,
        source=source,
        created_at=created,
        next=next_,
        writes=writes,
        metadata=metadata if metadata is not None else "{}",
        snapshot=snapshot,
    )


def _refuse_record(thread_id: str, row: Sequence[Any], snapshot: Any) -> NoReturn:
    checkpoint_id = row[0]
    if type(checkpoint_id) is not str:
        corrupt(thread_id, checkpoint_id, "checkpoints.checkpoint_id", f"is {_describe(checkpoint_id)}, not text")
    for i, column in enumerate(_CHECKPOINT_COLUMNS[1:], start=1):
        value = row[i]
        if column == "step":
            ok = type(value) is int
        elif column in ("parent_id", "metadata"):
            ok = value is None or type(value) is str
        else:
            ok = type(value) is str
        if not ok:
            want = "an integer" if column == "step" else "text"
            corrupt(thread_id, checkpoint_id, f"checkpoints.{column}", f"is {_describe(value)}, not {want}")
    if row[3] not in SOURCES:
        corrupt(thread_id, checkpoint_id, "checkpoints.source", f"is {row[3]!r}, not one of {sorted(SOURCES)}")
    corrupt(thread_id, checkpoint_id, "snapshots.state", f"is {_describe(snapshot)}, not text")


def checked_pending(
    thread_id: str, checkpoint_id: str, row: Sequence[Any], *, text: Callable[[str], str] = _same
) -> PendingWrite:
    """A ``pending_writes`` row (task_id, kind, value) as a pending write."""
    for value, column in zip(row, ("task_id", "kind", "value"), strict=True):
        if type(value) is not str:
            corrupt(thread_id, checkpoint_id, f"pending_writes.{column}", f"is {_describe(value)}, not text")
    if row[1] not in KINDS:
        corrupt(thread_id, checkpoint_id, "pending_writes.kind", f"is {row[1]!r}, not one of {sorted(KINDS)}")
    return PendingWrite(task_id=row[0], kind=row[1], value=text(row[2]))


def checked_thread(thread_id: Any, ns: Any, count: Any) -> tuple[str, str, int]:
    """A ``threads`` row's names and its checkpoint count, as listed by ``threads()``."""
    if type(thread_id) is not str:
        corrupt(thread_id, None, "threads.thread_id", f"is {_describe(thread_id)}, not text")
    if type(ns) is not str:
        corrupt(thread_id, None, "threads.checkpoint_ns", f"is {_describe(ns)}, not text")
    return thread_id, ns, int(count)


def follow_links(
    thread_id: str,
    target: str,
    parents: Mapping[str, object],
    stops: Container[str],
    *,
    complete: bool,
) -> list[str] | None:
    """The ids from the nearest snapshot (an id in ``stops``) or root back up to ``target``, oldest first.

    ``parents`` maps ids to parent ids for the rows at hand. With ``complete``, it holds every row
    the walk can reach, so a parent that is not in it is missing; without, it holds a key range
    and the walk returns None when it leaves the range (the caller then reads more). A parent
    link seen twice is a cycle: raised at once, so a loop costs one pass over the rows, never a hang.
    """
    path: list[str] = []
    seen: set[str] = set()
    cursor = target
    while True:
        if cursor not in parents:
            if not complete:
                return None
            if not path:
                corrupt(thread_id, cursor, "checkpoints.checkpoint_id", "was not found while reading its chain")
            corrupt(thread_id, path[-1], "checkpoints.parent_id", f"names parent {cursor!r}, which is not stored")
        seen.add(cursor)
        path.append(cursor)
        if cursor in stops:
            break
        parent = parents[cursor]
        if parent is None:
            break
        if type(parent) is not str:
            corrupt(thread_id, cursor, "checkpoints.parent_id", f"is {_describe(parent)}, not text")
        if parent in seen:
            corrupt(
                thread_id,
                cursor,
                "checkpoints.parent_id",
                f"names {parent!r}, which is already among its descendants: the parent links form a cycle",
            )
        cursor = parent
    path.reverse()
    return path


def recorded_version(count: int, lowest: int, highest: int, *, newest: int) -> int:
    """The schema version ``tether_schema`` records. Up to ``newest`` (the version this code
    knows) its rows must be exactly 1..N, one per migration applied: anything else (a row edited
    to 0, a gap) would re-run migrations on a database that already has them, so it is refused
    rather than trusted. A version past ``newest`` is returned for the caller to refuse as newer."""
    if count == 0 or highest > newest:
        return highest
    if lowest != 1 or highest != count:
        raise SchemaVersionError(
            f"tether_schema is damaged: it records {count} migration(s) numbered {lowest} to {highest}, "
            "not 1 to N; restore the database from a backup (Tether will not migrate it as it is)"
        )
    return highest
