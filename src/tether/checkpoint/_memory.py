"""An in-process store: for tests, notebooks and runs that need no durability."""

from __future__ import annotations

import builtins
import dataclasses
import threading
from collections.abc import Container, Iterator, Mapping, Sequence

from tether._names import CONSUMED_KINDS
from tether.checkpoint._base import (
    BaseCheckpointSaver,
    CheckpointRecord,
    LoadedCheckpoint,
    PendingWrite,
    ThreadSummary,
    busy_error,
)
from tether.checkpoint._rows import follow_links

__all__ = ["InMemorySaver", "MemorySaver"]


class _Parents(Mapping[str, str | None]):
    """A thread's records seen as the id → parent id map ``follow_links`` walks, without a copy."""

    def __init__(self, records: dict[str, CheckpointRecord]) -> None:
        self._records = records
        self.stops = _Snapshots(records)

    def __getitem__(self, key: str) -> str | None:
        return self._records[key].parent_id

    def __contains__(self, key: object) -> bool:
        return key in self._records

    def __iter__(self) -> Iterator[str]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)


class _Snapshots(Container[str]):
    def __init__(self, records: dict[str, CheckpointRecord]) -> None:
        self._records = records

    def __contains__(self, key: object) -> bool:
        record = self._records.get(key)  # type: ignore[call-overload]
        return record is not None and record.snapshot is not None


class InMemorySaver(BaseCheckpointSaver):
    """Keeps the same log and snapshots as the database stores, in dictionaries.

    Values are stored as tagged JSON text, exactly as a database would hold them, so a
    graph that runs here also serializes correctly on SQLite or PostgreSQL.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._records: dict[tuple[str, str], dict[str, CheckpointRecord]] = {}
        self._pending: dict[tuple[str, str, str], dict[tuple[str, str], PendingWrite]] = {}
        self._leases: dict[tuple[str, str], str] = {}

    def get(
        self, thread_id: str, checkpoint_ns: str = "", checkpoint_id: str | None = None, *, have: str | None = None
    ) -> LoadedCheckpoint | None:
        with self._lock:
            records = self._records.get((thread_id, checkpoint_ns))
            if not records:
                return None
            target_id = checkpoint_id if checkpoint_id is not None else max(records)
            record = records.get(target_id)
            if record is None:
                return None
            chain: builtins.list[CheckpointRecord] = []
            if target_id != have:
                parents = _Parents(records)
                ids = follow_links(thread_id, target_id, parents, parents.stops, complete=True)
                chain = [records[i] for i in ids or ()]
            return LoadedCheckpoint(
                record=record, chain=chain, pending=self._pending_of(thread_id, checkpoint_ns, target_id)
            )

    def _pending_of(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> builtins.list[PendingWrite]:
        return list(self._pending.get((thread_id, checkpoint_ns, checkpoint_id), {}).values())

    def list(self, thread_id: str, checkpoint_ns: str = "", *, before: str | None = None) -> Iterator[CheckpointRecord]:
        with self._lock:
            records = dict(self._records.get((thread_id, checkpoint_ns), {}))
        for cid in sorted(records, reverse=True):
            if before is None or cid < before:
                yield dataclasses.replace(records[cid], snapshot=None)

    def first_child(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> CheckpointRecord | None:
        with self._lock:
            records = self._records.get((thread_id, checkpoint_ns), {})
            children = [r for r in records.values() if r.parent_id == checkpoint_id and r.source == "loop"]
        return dataclasses.replace(min(children, key=lambda r: r.checkpoint_id), snapshot=None) if children else None

    def pending(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> builtins.list[PendingWrite]:
        with self._lock:
            return self._pending_of(thread_id, checkpoint_ns, checkpoint_id)

    def threads(self) -> builtins.list[ThreadSummary]:
        with self._lock:
            out = [
                ThreadSummary(
                    thread_id=tid,
                    checkpoint_ns=ns,
                    checkpoints=len(records),
                    head=records[max(records)],
                    pending=self._pending_of(tid, ns, max(records)),
                )
                for (tid, ns), records in self._records.items()
                if records
            ]
        return sorted(out, key=lambda t: t.head.checkpoint_id, reverse=True)

    def put(self, record: CheckpointRecord) -> None:
        with self._lock:
            self._records.setdefault((record.thread_id, record.checkpoint_ns), {})[record.checkpoint_id] = record
            if record.parent_id is not None and record.source == "loop":
                bucket = self._pending.get((record.thread_id, record.checkpoint_ns, record.parent_id), {})
                for key in [k for k in bucket if k[1] in CONSUMED_KINDS]:
                    del bucket[key]

    def put_pending(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, writes: Sequence[PendingWrite]
    ) -> None:
        with self._lock:
            bucket = self._pending.setdefault((thread_id, checkpoint_ns, checkpoint_id), {})
            for w in writes:
                bucket[(w.task_id, w.kind)] = w

    def delete_thread(self, thread_id: str) -> None:
        with self._lock:
            for key in [k for k in self._records if k[0] == thread_id]:
                del self._records[key]
            for pkey in [k for k in self._pending if k[0] == thread_id]:
                del self._pending[pkey]

    def acquire(self, thread_id: str, checkpoint_ns: str, owner: str) -> None:
        with self._lock:
            holder = self._leases.get((thread_id, checkpoint_ns))
            if holder is not None and holder != owner:
                raise busy_error(thread_id, holder)
            self._leases[(thread_id, checkpoint_ns)] = owner

    def release(self, thread_id: str, checkpoint_ns: str, owner: str) -> None:
        with self._lock:
            if self._leases.get((thread_id, checkpoint_ns)) == owner:
                del self._leases[(thread_id, checkpoint_ns)]


MemorySaver = InMemorySaver
