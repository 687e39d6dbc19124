"""Reading a thread without its graph: what the ``tether`` command line uses.

Every snapshot names the reducer of each key (a thread's first checkpoint always carries
one), so the state at any checkpoint can be rebuilt from the log with the standard reducers.
A key whose reducer is custom needs the graph itself (``--graph module:attr``).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tether._names import is_join
from tether.checkpoint._base import BaseCheckpointSaver, CheckpointRecord, PendingWrite
from tether.errors import CheckpointNotFoundError
from tether.graph._algo import Topology
from tether.graph._schema import Channel
from tether.graph._state import DecodedCheckpoint, decode_record, decode_snapshot, rebuild
from tether.graph._thread_status import Status, ThreadStatus, thread_status
from tether.messages import add_messages

__all__ = ["KNOWN_REDUCERS", "ThreadState", "read_state"]

KNOWN_REDUCERS: dict[str, Callable[[Any, Any], Any]] = {
    "tether.messages._reducer:add_messages": add_messages,
    "_operator:add": operator.add,
    "operator:add": operator.add,
    "_operator:or_": operator.or_,
    "operator:or_": operator.or_,
    "_operator:concat": operator.concat,
    "operator:concat": operator.concat,
}


@dataclass(frozen=True, slots=True)
class ThreadState:
    decoded: DecodedCheckpoint
    values: dict[str, Any]
    pending: list[PendingWrite]
    unknown_reducers: dict[str, str]

    @property
    def record(self) -> CheckpointRecord:
        return self.decoded.record

    @property
    def tasks(self) -> ThreadStatus:
        """The due tasks and where each stands (``tether.graph._thread_status``)."""
        return thread_status(self.decoded, self.pending)

    @property
    def next(self) -> list[str]:
        return self.tasks.next

    def interrupts(self) -> list[dict[str, Any]]:
        """The open interrupts: those of tasks that have not finished."""
        return self.tasks.open_interrupts()

    def status(self) -> Status:
        return self.tasks.status()


def read_state(
    saver: BaseCheckpointSaver, thread_id: str, checkpoint_id: str | None = None, checkpoint_ns: str = ""
) -> ThreadState:
    """The state of a thread at a checkpoint (its newest by default), rebuilt from the log."""
    loaded = saver.get(thread_id, checkpoint_ns, checkpoint_id)
    if loaded is None:
        what = f"checkpoint {checkpoint_id!r}" if checkpoint_id else "checkpoints"
        raise CheckpointNotFoundError(f"thread {thread_id!r} has no {what}")
    first = loaded.chain[0] if loaded.chain else None
    # the snapshot a chain starts from names the reducers (rebuild refuses a chain without one)
    snapshot = decode_snapshot(first) if first is not None and first.snapshot is not None else {}
    names: dict[str, str] = snapshot.get("reducers", {})
    channels: dict[str, Channel] = {}
    unknown: dict[str, str] = {}
    keys: set[str] = set(names) | set(snapshot.get("values", {}))
    for record in loaded.chain[1:]:
        for entry in decode_record(record).writes:
            keys |= {k for k, _ in entry.get("writes", ())}
    for key in keys:
        name = names.get(key)
        if name is None:
            channels[key] = Channel(key)
        elif name in KNOWN_REDUCERS:
            channels[key] = Channel(key, KNOWN_REDUCERS[name])
        else:
            unknown[key] = name
            channels[key] = Channel(key)  # shows the last write; flagged to the reader
    topology = Topology(channels=channels, node_order={})
    states, _ = rebuild(topology, loaded.chain, {})
    decoded, values = states[-1]
    visible = {k: v for k, v in values.items() if not is_join(k)}
    return ThreadState(decoded, visible, loaded.pending, unknown)
