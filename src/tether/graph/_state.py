"""Rebuilding a thread's state from the log, and deciding when to snapshot it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tether.checkpoint import _serde as serde
from tether.checkpoint._base import CheckpointRecord
from tether.graph._algo import Topology, apply_step

__all__ = ["DecodedCheckpoint", "SnapshotPolicy", "decode_record", "rebuild"]

INPUT_NODE = "__input__"
SNAPSHOT_FLOOR_BYTES = 16 * 1024
SNAPSHOT_MAX_STEPS = 5000
SNAPSHOT_GROWTH = 2


@dataclass(slots=True)
class SnapshotPolicy:
    """Snapshot once the log written since the last snapshot reaches twice its size.

    Snapshot sizes then grow geometrically while the state grows, so all snapshots
    together stay within a constant factor of all bytes written, and loading a checkpoint
    folds at most ``max(2 × snapshot size, floor)`` bytes of log or ``SNAPSHOT_MAX_STEPS`` steps.
    """

    snapshot_bytes: int = 0
    bytes_since: int = 0
    steps_since: int = 0

    def record(self, written: int) -> bool:
        """Account for a step that wrote ``written`` bytes; return whether to snapshot it."""
        self.bytes_since += written
        self.steps_since += 1
        return (
            self.bytes_since >= max(SNAPSHOT_GROWTH * self.snapshot_bytes, SNAPSHOT_FLOOR_BYTES)
            or self.steps_since >= SNAPSHOT_MAX_STEPS
        )

    def snapshotted(self, size: int) -> None:
        self.snapshot_bytes, self.bytes_since, self.steps_since = size, 0, 0

    def copy(self) -> SnapshotPolicy:
        return SnapshotPolicy(self.snapshot_bytes, self.bytes_since, self.steps_since)


@dataclass(frozen=True, slots=True)
class DecodedCheckpoint:
    record: CheckpointRecord
    next: list[Any]
    writes: list[dict[str, Any]]
    metadata: dict[str, Any]


def decode_record(record: CheckpointRecord) -> DecodedCheckpoint:
    return DecodedCheckpoint(
        record=record,
        next=serde.loads(record.next),
        writes=serde.loads(record.writes),
        metadata=serde.loads(record.metadata),
    )


def pull_nodes(specs: list[Any]) -> list[str]:
    return [s for s in specs if isinstance(s, str)]


def step_writes(decoded: DecodedCheckpoint) -> list[tuple[str, list[tuple[str, Any]]]]:
    return [(e["node"], [(k, v) for k, v in e.get("writes", ())]) for e in decoded.writes]


def fold(
    topo: Topology, values: dict[str, Any], parent: DecodedCheckpoint | None, child: DecodedCheckpoint
) -> dict[str, Any]:
    """The state at ``child`` given the state at its parent."""
    entries = step_writes(child)
    if entries and entries[0][0] == INPUT_NODE:  # a Command(update=…) applied before the step's tasks
        values = apply_step(topo, values, (), entries[:1], check=False)
        entries = entries[1:]
    ran = pull_nodes(parent.next) if parent is not None and child.record.source == "loop" else []
    return apply_step(topo, values, ran, entries, check=False)


def rebuild(
    topo: Topology, chain: list[CheckpointRecord], initial: dict[str, Any]
) -> tuple[list[tuple[DecodedCheckpoint, dict[str, Any]]], SnapshotPolicy]:
    """States along ``chain`` (oldest first), and the snapshot accounting at its end."""
    out: list[tuple[DecodedCheckpoint, dict[str, Any]]] = []
    policy = SnapshotPolicy()
    parent: DecodedCheckpoint | None = None
    values: dict[str, Any] = {}
    for i, record in enumerate(chain):
        decoded = decode_record(record)
        if i == 0 and record.snapshot is not None:
            values = serde.loads(record.snapshot)["values"]
            policy.snapshotted(len(record.snapshot))
        else:
            if i == 0:
                values = dict(initial)
            values = fold(topo, values, parent, decoded)
            policy.record(len(record.writes))
        out.append((decoded, values))
        parent = decoded
    return out, policy


def reducer_name(fn: Any) -> str:
    module = getattr(fn, "__module__", None) or type(fn).__module__
    qualname = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{module}:{qualname}"
