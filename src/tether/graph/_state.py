"""Rebuilding a thread's state from the log, and deciding when to snapshot it.

Stored JSON is data that may have been damaged or edited: each column is decoded here, once,
and checked for the shape Tether writes before anything uses it, so a bad row fails as a
``CorruptCheckpointError`` naming the thread, the checkpoint and the column.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from typing import Any

from tether._names import PENDING_ERROR, PENDING_INPUT, PENDING_INTERRUPT, PENDING_RESULT, PENDING_RESUME
from tether.checkpoint import _serde as serde
from tether.checkpoint._base import CheckpointRecord, PendingWrite
from tether.errors import CorruptCheckpointError, UnknownTypeError
from tether.graph._algo import Topology, apply_step
from tether.graph._fold import Folder
from tether.types import START

__all__ = [
    "DecodedCheckpoint",
    "SnapshotPolicy",
    "check_next_nodes",
    "decode_pending",
    "decode_record",
    "decode_snapshot",
    "rebuild",
    "rebuild_states",
]

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


class _ShapeError(Exception):
    """A decoded value is not the shape Tether writes (a message for the column's error)."""


def _read(thread_id: str, checkpoint_id: str | None, column: str, text: str, check: Any) -> Any:
    """``text`` decoded and checked by ``check``, or the column's ``CorruptCheckpointError``."""
    try:
        return check(serde.loads(text))
    except _ShapeError as exc:
        problem = str(exc)
        cause: BaseException | None = None
    except UnknownTypeError as exc:  # the row is fine: this program lacks the class it names
        where = f"thread {thread_id!r}, checkpoint {checkpoint_id!r}, {column}"
        raise UnknownTypeError(f"{where}: {exc}") from exc
    except Exception as exc:  # anything decoding stored text raises is about the text
        problem = f"cannot be read ({type(exc).__name__}: {exc})"
        cause = exc
    raise CorruptCheckpointError(problem, thread_id=thread_id, checkpoint_id=checkpoint_id, column=column) from cause


def _list(value: Any, what: str) -> list[Any]:
    if type(value) is not list:
        raise _ShapeError(f"holds {type(value).__name__} where {what} belongs")
    return value


def _pairs(value: Any, what: str) -> Any:
    for pair in _list(value, f"a list of [key, value] {what}"):
        if type(pair) not in (list, tuple) or len(pair) != 2 or type(pair[0]) is not str:
            raise _ShapeError(f"holds {_short(pair)} where a [key, value] pair with a text key belongs")
    return value


def _node_spec(spec: Any) -> None:
    """A ``next`` entry (or a goto target): a node name, or a Send as {"node": name, "arg": …}."""
    if type(spec) is str:
        return
    if type(spec) is not dict or type(spec.get("node")) is not str:
        raise _ShapeError(f"holds {_short(spec)} where a node name or {{'node': name, 'arg': …}} belongs")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _next(value: Any) -> list[Any]:
    for spec in _list(value, "a list of tasks"):
        _node_spec(spec)
    return value  # type: ignore[no-any-return]


def _writes(value: Any) -> list[dict[str, Any]]:
    for entry in _list(value, "a list of write entries"):
        if type(entry) is not dict or type(entry.get("node")) is not str:
            raise _ShapeError(f"holds {_short(entry)} where a write entry {{'node': name, 'writes': […]}} belongs")
        if "task" in entry and type(entry["task"]) is not int:
            raise _ShapeError(f"holds task position {_short(entry['task'])} where an integer belongs")
        if "writes" in entry:
            _pairs(entry["writes"], "writes")
    return value  # type: ignore[no-any-return]


def _dict(value: Any, what: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise _ShapeError(f"holds {type(value).__name__} where {what} belongs")
    return value


def _snapshot(value: Any) -> dict[str, Any]:
    state = _dict(value, "a snapshot object")
    values = _dict(state.get("values"), "the snapshot's 'values' object")
    if any(type(k) is not str for k in values):
        raise _ShapeError("holds a state key that is not text")
    reducers = _dict(state.get("reducers", {}), "the snapshot's 'reducers' object")
    if any(type(v) is not str for v in reducers.values()):
        raise _ShapeError("holds a reducer name that is not text")
    return state


def _metadata(value: Any) -> dict[str, Any]:
    return _dict(value, "an object")


def decode_record(record: CheckpointRecord) -> DecodedCheckpoint:
    """``record``'s JSON columns, decoded and checked."""
    tid, cid = record.thread_id, record.checkpoint_id
    return DecodedCheckpoint(
        record=record,
        next=_read(tid, cid, "checkpoints.next", record.next, _next),
        writes=_read(tid, cid, "checkpoints.writes", record.writes, _writes),
        metadata={} if record.metadata == "{}" else _read(tid, cid, "checkpoints.metadata", record.metadata, _metadata),
    )


def decode_snapshot(record: CheckpointRecord) -> dict[str, Any]:
    """``{"values": …, "reducers": …}`` of a record that carries a snapshot."""
    assert record.snapshot is not None
    state: dict[str, Any] = _read(record.thread_id, record.checkpoint_id, "snapshots.state", record.snapshot, _snapshot)
    return state


def _result(value: Any) -> Any:
    state = _dict(value, "a task result object")
    _pairs(state.get("writes"), "writes")
    for target in _list(state.get("goto"), "a list of goto targets"):
        _node_spec(target)
    return state


def _interrupts(value: Any) -> Any:
    for item in _list(value, "a list of interrupts"):
        if type(item) is not dict or type(item.get("id")) is not str or "value" not in item:
            raise _ShapeError(f"holds {_short(item)} where an interrupt {{'id': text, 'value': …}} belongs")
    return value


def _resume(value: Any) -> Any:
    if any(type(k) is not str for k in _dict(value, "an object of answers by interrupt id")):
        raise _ShapeError("holds an interrupt id that is not text")
    return value


def _error(value: Any) -> Any:
    if type(value) is not str:
        raise _ShapeError(f"holds {type(value).__name__} where an error description (text) belongs")
    return value


def _input(value: Any) -> Any:
    state = _dict(value, "an object of a Command's update and goto")
    _pairs(state.get("writes"), "writes")
    for target in _list(state.get("goto"), "a list of goto targets"):
        _node_spec(target)
    return state


_PENDING_SHAPES = {
    PENDING_RESULT: _result,
    PENDING_INTERRUPT: _interrupts,
    PENDING_RESUME: _resume,
    PENDING_ERROR: _error,
    PENDING_INPUT: _input,
}


def decode_pending(thread_id: str, checkpoint_id: str | None, write: PendingWrite) -> Any:
    """A pending write's value, decoded and checked for the shape its ``kind`` stores."""
    return _read(thread_id, checkpoint_id, "pending_writes.value", write.value, _PENDING_SHAPES[write.kind])


def check_next_nodes(decoded: DecodedCheckpoint, nodes: Container[str]) -> None:
    """Before running a loaded checkpoint's tasks: each names a node of the graph."""
    for spec in decoded.next:
        node = spec if type(spec) is str else spec["node"]
        if node != START and node not in nodes:
            record = decoded.record
            raise CorruptCheckpointError(
                f"names task {node!r}, which is not a node of this graph (was the node renamed or removed?)",
                thread_id=record.thread_id,
                checkpoint_id=record.checkpoint_id,
                column="checkpoints.next",
            )


def pull_nodes(specs: list[Any]) -> list[str]:
    return [s for s in specs if isinstance(s, str)]


def step_writes(decoded: DecodedCheckpoint) -> list[tuple[str, list[tuple[str, Any]]]]:
    return [(e["node"], [(k, v) for k, v in e.get("writes", ())]) for e in decoded.writes]


def _step_parts(
    parent: DecodedCheckpoint | None, child: DecodedCheckpoint
) -> list[tuple[list[str], list[tuple[str, list[tuple[str, Any]]]]]]:
    """``child``'s step as ``apply_step`` calls: a Command(update=…) first, then the tasks' writes."""
    entries = step_writes(child)
    parts: list[tuple[list[str], list[tuple[str, list[tuple[str, Any]]]]]] = []
    if entries and entries[0][0] == INPUT_NODE:  # a Command(update=…) applied before the step's tasks
        parts.append(([], entries[:1]))
        entries = entries[1:]
    ran = pull_nodes(parent.next) if parent is not None and child.record.source == "loop" else []
    parts.append((ran, entries))
    return parts


def fold(
    topo: Topology, values: dict[str, Any], parent: DecodedCheckpoint | None, child: DecodedCheckpoint
) -> dict[str, Any]:
    """The state at ``child`` given the state at its parent."""
    for ran, entries in _step_parts(parent, child):
        values = apply_step(topo, values, ran, entries, check=False)
    return values


Start = tuple[DecodedCheckpoint, dict[str, Any], SnapshotPolicy]


def rebuild(
    topo: Topology,
    chain: list[CheckpointRecord],
    initial: dict[str, Any],
    *,
    keep: int | None = None,
    start: Start | None = None,
) -> tuple[list[tuple[DecodedCheckpoint, dict[str, Any]]], SnapshotPolicy]:
    """States along ``chain``: see ``rebuild_states``, without each state's snapshot accounting."""
    states, policy = rebuild_states(topo, chain, initial, keep=keep, start=start)
    return [(d, v) for d, v, _ in states], policy


def rebuild_states(
    topo: Topology,
    chain: list[CheckpointRecord],
    initial: dict[str, Any],
    *,
    keep: int | None = None,
    start: Start | None = None,
) -> tuple[list[Start], SnapshotPolicy]:
    """States along ``chain`` (oldest first; only the newest ``keep`` of them when given), and
    the snapshot accounting at its end.

    Tether stores a snapshot with every thread's first checkpoint, so a chain that starts
    without one was cut short: its state would silently lack what came before, and is refused.
    ``start`` is the state already known at ``chain[0]`` (a cached one): folding begins there.

    Folding costs time proportional to the writes folded (``Folder``), and a state is only
    materialised for the entries kept: a ``get_state`` keeps one, a history page its length.
    """
    out: list[Start] = []
    first_kept = 0 if keep is None else max(len(chain) - keep, 0)
    policy = SnapshotPolicy()
    parent: DecodedCheckpoint | None = None
    folder: Folder | None = None
    for i, record in enumerate(chain):
        if i == 0 and start is not None:
            decoded, values, start_policy = start
            assert decoded.record.checkpoint_id == record.checkpoint_id
            policy = start_policy.copy()
            folder = Folder(topo, values)
            if i >= first_kept:
                out.append((decoded, values, policy.copy()))
            parent = decoded
            continue
        decoded = decode_record(record)
        if i == 0:
            if record.snapshot is None:
                raise CorruptCheckpointError(
                    f"is {'NULL' if record.parent_id is None else repr(record.parent_id)} and no snapshot is stored "
                    "with the checkpoint: the state before it "
                    "cannot be rebuilt (a thread's first checkpoint always has a snapshot)",
                    thread_id=record.thread_id,
                    checkpoint_id=record.checkpoint_id,
                    column="checkpoints.parent_id",
                )
            folder = Folder(topo, decode_snapshot(record)["values"])
            policy.snapshotted(len(record.snapshot))
        else:
            assert parent is not None and folder is not None
            if record.parent_id != parent.record.checkpoint_id:  # the stores walk links; never trust, check
                raise CorruptCheckpointError(
                    f"is {record.parent_id!r}, but the chain read before it ends at {parent.record.checkpoint_id!r}",
                    thread_id=record.thread_id,
                    checkpoint_id=record.checkpoint_id,
                    column="checkpoints.parent_id",
                )
            try:
                for ran, entries in _step_parts(parent, decoded):
                    folder.apply(ran, entries)
            except Exception as exc:  # the run that wrote these applied them; now they do not apply
                raise CorruptCheckpointError(
                    f"cannot be applied to the state before it ({type(exc).__name__}: {exc}); if this graph's "
                    "reducers changed since the thread was written, read it with the graph that wrote it",
                    thread_id=record.thread_id,
                    checkpoint_id=record.checkpoint_id,
                    column="checkpoints.writes",
                ) from exc
            policy.record(len(record.writes))
        if i >= first_kept:
            assert folder is not None
            out.append((decoded, folder.state(final=i == len(chain) - 1), policy.copy()))
        parent = decoded
    return out, policy


def reducer_name(fn: Any) -> str:
    module = getattr(fn, "__module__", None) or type(fn).__module__
    qualname = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{module}:{qualname}"
