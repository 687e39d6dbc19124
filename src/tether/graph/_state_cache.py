"""Decoded states kept in memory, by checkpoint: what makes reading a thread again cheap.

A checkpoint is immutable once written, so the state rebuilt for it can be kept under its id
and never invalidated. Runs, ``get_state`` and ``get_state_history`` share one cache per
compiled graph: a run's last state is what the next ``get_state`` (or the next run) reads, and a
history page read once is served from memory the next time. A chain read from storage is folded
from the newest cached state on it rather than from its snapshot.

The cache is bounded by entries and by approximate bytes (the JSON size of the state, which
the snapshot accounting already tracks), so memory stays flat with any number of threads; the
least recently used state goes first. The newest checkpoint id seen per thread is kept in a
second bounded map: a reader passes it to the store (``have=``), which skips the chain when the
thread has not moved.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from tether.checkpoint._base import CheckpointRecord
from tether.graph._algo import Topology
from tether.graph._state import DecodedCheckpoint, SnapshotPolicy, rebuild_states

__all__ = ["CachedState", "StateCache"]

DEFAULT_MAX_ENTRIES = 20_000
DEFAULT_MAX_BYTES = 128 * 1024 * 1024
_ENTRY_OVERHEAD = 1024  # the record, its decoded columns, the key and Python object overhead, roughly


@dataclass(frozen=True, slots=True)
class CachedState:
    """The state at one checkpoint. Shared: callers copy before changing ``values``."""

    decoded: DecodedCheckpoint
    values: dict[str, Any]
    policy: SnapshotPolicy
    size: int

    @property
    def checkpoint_id(self) -> str:
        return self.decoded.record.checkpoint_id


class StateCache:
    """States by ``(thread_id, checkpoint_ns, checkpoint_id)``, and each thread's newest id."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self._states: OrderedDict[tuple[str, str, str], CachedState] = OrderedDict()
        self._heads: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._lock = threading.Lock()  # aget_state reads from worker threads

    def __len__(self) -> int:
        return len(self._states)

    def get(self, thread_id: str, ns: str, checkpoint_id: str) -> CachedState | None:
        key = (thread_id, ns, checkpoint_id)
        with self._lock:
            entry = self._states.get(key)
            if entry is not None:
                self._states.move_to_end(key)
            return entry

    def head(self, thread_id: str, ns: str) -> CachedState | None:
        """The newest state seen for a thread, if still cached (the store confirms it is newest)."""
        with self._lock:
            checkpoint_id = self._heads.get((thread_id, ns))
        return None if checkpoint_id is None else self.get(thread_id, ns, checkpoint_id)

    def put(
        self,
        decoded: DecodedCheckpoint,
        values: dict[str, Any],
        policy: SnapshotPolicy,
        *,
        head: bool = False,
    ) -> CachedState:
        record = decoded.record
        size = policy.snapshot_bytes + policy.bytes_since + len(record.writes) + _ENTRY_OVERHEAD
        entry = CachedState(decoded, values, policy.copy(), size)
        key = (record.thread_id, record.checkpoint_ns, record.checkpoint_id)
        with self._lock:
            old = self._states.pop(key, None)
            if old is not None:
                self.bytes -= old.size
            if size <= self.max_bytes:
                self._states[key] = entry
                self.bytes += size
            while self._states and (len(self._states) > self.max_entries or self.bytes > self.max_bytes):
                _, evicted = self._states.popitem(last=False)
                self.bytes -= evicted.size
            if head:
                self._heads[key[:2]] = record.checkpoint_id
                self._heads.move_to_end(key[:2])
                while len(self._heads) > self.max_entries:
                    self._heads.popitem(last=False)
        return entry

    def rebuild(
        self,
        topo: Topology,
        chain: list[CheckpointRecord],
        initial: dict[str, Any],
        *,
        keep: int = 1,
        head: bool = False,
    ) -> list[CachedState]:
        """The newest ``keep`` states of ``chain``, folded from the newest cached state on it, and cached."""
        found = self.nearest(chain[: max(len(chain) - keep + 1, 1)])
        if found is None:
            states, _ = rebuild_states(topo, chain, initial, keep=keep)
        else:
            i, entry = found
            states, _ = rebuild_states(
                topo, chain[i:], initial, keep=keep, start=(entry.decoded, entry.values, entry.policy)
            )
        last = len(states) - 1
        return [self.put(d, v, p, head=head and n == last) for n, (d, v, p) in enumerate(states)]

    def nearest(self, chain: list[CheckpointRecord]) -> tuple[int, CachedState] | None:
        """The newest record of ``chain`` whose state is cached, with its position."""
        for i in range(len(chain) - 1, -1, -1):
            record = chain[i]
            entry = self.get(record.thread_id, record.checkpoint_ns, record.checkpoint_id)
            if entry is not None:
                return i, entry
        return None
