"""The deterministic core: which tasks run next, and how their writes fold into state.

Everything here is a pure function of its arguments. The same functions commit a step
during a run and replay a step from the log when a thread is loaded, so a state rebuilt
from storage is exactly the state the run had.

Apply order is stable: tasks triggered by edges ("pull") in node-name order, then
``Send`` tasks ("push") in the order they were sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tether._context import interrupt_id
from tether.errors import InvalidUpdateError
from tether.graph._schema import Channel
from tether.types import END, START, Interrupt, Send

__all__ = [
    "Join",
    "Task",
    "TaskResult",
    "Topology",
    "apply_order",
    "apply_step",
    "interrupt_id",
    "plan_next",
    "task_id",
]

PUSH = "__pregel_push"
PULL = "__pregel_pull"


@dataclass(frozen=True, slots=True)
class Join:
    """``add_edge([a, b], c)``: ``c`` runs once both ``a`` and ``b`` have run."""

    channel: str
    sources: frozenset[str]
    target: str


@dataclass(slots=True)
class Topology:
    """What the core needs to know about a compiled graph."""

    channels: dict[str, Channel]
    node_order: dict[str, int]
    joins: list[Join] = field(default_factory=list)
    joins_into: dict[str, list[Join]] = field(init=False, default_factory=dict)
    joins_from: dict[str, list[Join]] = field(init=False, default_factory=dict)
    join_channels: dict[str, Join] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        for join in self.joins:
            self.joins_into.setdefault(join.target, []).append(join)
            for source in join.sources:
                self.joins_from.setdefault(source, []).append(join)
        self.join_channels = {j.channel: j for j in self.joins}


@dataclass(slots=True)
class Task:
    """One node execution in a step."""

    index: int  # position in the checkpoint's `next` list
    id: str
    node: str
    push: bool  # started by Send (its input is `arg`) rather than by an edge
    arg: Any = None

    @property
    def path(self) -> tuple[Any, ...]:
        return (PUSH, self.index, False) if self.push and self.node != START else (PULL, self.node)

    def spec(self) -> Any:
        """How this task is stored in a checkpoint's ``next`` list."""
        return {"node": self.node, "arg": self.arg} if self.push else self.node


@dataclass(slots=True)
class TaskResult:
    """What a task produced: state writes, where to go next, what to stream."""

    task: Task
    writes: list[tuple[str, Any]] = field(default_factory=list)
    goto: list[str | Send] = field(default_factory=list)
    update: Any = None
    interrupts: tuple[Interrupt, ...] = ()
    error: BaseException | None = None
    cached: bool = False  # restored from pending writes, not run again
    paused: bool = False  # stopped by interrupt() (or a subgraph's breakpoint: no interrupts then)

    def to_pending(self) -> dict[str, Any]:
        return {
            "node": self.task.node,
            "writes": [[k, v] for k, v in self.writes],
            "goto": [{"node": g.node, "arg": g.arg} if isinstance(g, Send) else g for g in self.goto],
            "update": self.update,
        }

    @classmethod
    def from_pending(cls, task: Task, data: dict[str, Any]) -> TaskResult:
        goto: list[str | Send] = [Send(g["node"], g["arg"]) if isinstance(g, dict) else g for g in data["goto"]]
        return cls(task, [(k, v) for k, v in data["writes"]], goto, data.get("update"), cached=True)


def _uuid_from(text: str) -> str:
    h = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def task_id(checkpoint_id: str, index: int, node: str) -> str:
    """Deterministic: the same checkpoint always yields the same task ids."""
    return _uuid_from(f"{checkpoint_id}|{index}|{node}")


def tasks_from_specs(checkpoint_id: str, specs: Sequence[Any]) -> list[Task]:
    tasks = []
    for i, spec in enumerate(specs):
        if isinstance(spec, str):
            tasks.append(Task(i, task_id(checkpoint_id, i, spec), spec, False))
        else:
            tasks.append(Task(i, task_id(checkpoint_id, i, spec["node"]), spec["node"], True, spec.get("arg")))
    return tasks


def apply_order(results: Iterable[TaskResult]) -> list[TaskResult]:
    """Pull tasks by node name, then push tasks by position: independent of finish order."""
    return sorted(results, key=lambda r: (r.task.push, r.task.node if not r.task.push else "", r.task.index))


def apply_step(
    topo: Topology,
    values: dict[str, Any],
    ran_nodes: Iterable[str],
    writes: Sequence[tuple[str, Sequence[tuple[str, Any]]]],
    *,
    check: bool,
) -> dict[str, Any]:
    """The state after a step: consume the joins of nodes that ran, then merge ``writes``.

    ``writes`` is ``[(node, [(key, value), …]), …]`` in apply order. With ``check``, a key
    without a reducer that receives two values raises ``InvalidUpdateError``.
    """
    out = dict(values)
    for node in ran_nodes:
        for join in topo.joins_into.get(node, ()):
            seen = out.get(join.channel)
            if seen is not None and set(seen) >= join.sources:
                del out[join.channel]
    by_key: dict[str, list[tuple[str, Any]]] = {}
    for node, pairs in writes:
        for key, value in pairs:
            by_key.setdefault(key, []).append((node, value))
    for key, items in by_key.items():
        channel = topo.channels.get(key)
        if channel is None:
            if key not in topo.join_channels:
                if check:
                    raise InvalidUpdateError(f"write to unknown state key {key!r} by node {items[0][0]!r}")
                continue
            out[key] = sorted(set(out.get(key, ())) | {v for _, v in items})
            continue
        if channel.reducer is None:
            if check and len(items) > 1:
                nodes = ", ".join(repr(n) for n, _ in items)
                raise InvalidUpdateError(
                    f"state key {key!r} received {len(items)} values in one step (from nodes {nodes}) "
                    f"but has no reducer; give it one, e.g. Annotated[list, operator.add], "
                    "or let only one node write it per step"
                )
            out[key] = items[-1][1]
            continue
        if key in out:
            current = out[key]
            if type(current) in (list, dict, set):
                current = current.copy()  # a reducer that mutates must not alter earlier states
            rest = items
        elif channel.initial is not None:
            current = channel.initial()
            rest = items
        else:
            current, rest = items[0][1], items[1:]
        for node, value in rest:
            try:
                current = channel.reducer(current, value)
            except Exception as exc:
                if not check:
                    raise
                raise InvalidUpdateError(
                    f"reducer of state key {key!r} failed on the value written by node {node!r}: {exc!r}"
                ) from exc
        out[key] = current
    return out


def join_writes(topo: Topology, node: str) -> list[tuple[str, Any]]:
    """The marks a finished node leaves on the joins it feeds."""
    return [(join.channel, node) for join in topo.joins_from.get(node, ())]


def plan_next(topo: Topology, values: dict[str, Any], results: Sequence[TaskResult]) -> list[Any]:
    """The ``next`` specs after a step: sends first (in order), then triggered nodes."""
    sends: list[Any] = []
    pulls: set[str] = set()
    for result in results:
        for target in result.goto:
            if isinstance(target, Send):
                sends.append({"node": target.node, "arg": target.arg})
            elif target != END:
                pulls.add(target)
    for join in topo.joins:
        seen = values.get(join.channel)
        if seen is not None and set(seen) >= join.sources:
            pulls.add(join.target)
    return sends + sorted(pulls, key=lambda n: topo.node_order.get(n, 1 << 30))
