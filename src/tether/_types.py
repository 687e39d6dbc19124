"""Tether's value types: the bottom layer, importing nothing from Tether.

The public home of these names is :mod:`tether.types`, which adds the node-facing
``interrupt`` and ``RetryPolicy``; Tether's own modules below the graph runtime
(``tether.errors``, ``tether._context``) import them from here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Literal, NewType, TypedDict, TypeVar

__all__ = [
    "END",
    "START",
    "CheckpointId",
    "Command",
    "Durability",
    "GraphInterrupt",
    "Interrupt",
    "RunnableConfig",
    "Runtime",
    "Send",
    "StateSnapshot",
    "StreamMode",
    "StreamWriter",
    "TaskSnapshot",
    "ThreadId",
]


START = "__start__"
"""The virtual node a graph starts from."""
END = "__end__"
"""The virtual node a graph finishes at."""

ThreadId = NewType("ThreadId", str)
CheckpointId = NewType("CheckpointId", str)

StreamMode = Literal["values", "updates", "debug", "checkpoints", "tasks", "custom"]

Durability = Literal["sync", "async", "exit"]
"""When a run's checkpoints are stored: ``"sync"`` and ``"async"`` (the default) commit each
step before the next one starts; ``"exit"`` stores only the run's last checkpoint, when it ends."""

StreamWriter = Callable[[Any], None]
"""What ``get_stream_writer()`` returns: call it with a chunk for ``stream_mode="custom"``."""


class RunnableConfig(TypedDict, total=False):
    """The per-call configuration: ``{"configurable": {"thread_id": …}}`` and friends."""

    configurable: dict[str, Any]
    metadata: dict[str, Any]
    tags: list[str]
    recursion_limit: int
    run_name: str
    run_id: Any
    max_concurrency: int
    callbacks: Any


@dataclass(frozen=True, slots=True)
class Send:
    """Run ``node`` in the next step with ``arg`` as its whole input (map-reduce fan-out)."""

    node: str
    arg: Any

    def __repr__(self) -> str:
        return f"Send(node={self.node!r}, arg={self.arg!r})"


N = TypeVar("N")


@dataclass(frozen=True, slots=True, kw_only=True)
class Command(Generic[N]):
    """Update the state and choose where to go, from a node or as run input.

    * ``update``: a partial state update, applied through the reducers.
    * ``goto``: node name(s) or ``Send`` objects to run next.
    * ``resume``: the value ``interrupt()`` returns when the run continues; a mapping
      of interrupt id to value resumes several interrupts at once.
    """

    update: Any = None
    goto: str | Send | Sequence[str | Send] = ()
    resume: Any = None
    graph: str | None = None

    PARENT: ClassVar[str] = "__parent__"

    def goto_targets(self) -> list[str | Send]:
        if isinstance(self.goto, (str, Send)):
            return [self.goto]
        return list(self.goto)


@dataclass(frozen=True, slots=True, kw_only=True)
class Runtime(Generic[N]):
    """What a node that asks for ``runtime`` gets: the run's ``context`` (``invoke(..., context=…)``)
    and a ``stream_writer`` for ``stream_mode="custom"``."""

    context: N | None = None
    stream_writer: Any = None
    store: Any = None
    previous: Any = None


@dataclass(frozen=True, slots=True)
class Interrupt:
    """A pause requested by ``interrupt(value)``; ``id`` is what a resume mapping keys on."""

    value: Any
    id: str


class GraphInterrupt(Exception):  # noqa: N818 - control flow, deliberately not "…Error"
    """Raised inside a node by ``interrupt()``; the runtime catches it and pauses the run."""

    def __init__(self, interrupts: Sequence[Interrupt]) -> None:
        super().__init__(tuple(interrupts))
        self.interrupts = tuple(interrupts)


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskSnapshot:
    """A task due at a checkpoint: what will run next, or what ran / paused / failed there."""

    id: str
    name: str
    path: tuple[Any, ...]
    error: str | None = None
    interrupts: tuple[Interrupt, ...] = ()
    state: Any = None
    result: Any = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StateSnapshot:
    """The state of a thread at one checkpoint, as ``get_state`` returns it."""

    values: dict[str, Any]
    next: tuple[str, ...]
    config: RunnableConfig
    metadata: dict[str, Any] | None
    created_at: str | None
    parent_config: RunnableConfig | None
    tasks: tuple[TaskSnapshot, ...]
    interrupts: tuple[Interrupt, ...] = ()


# Their public home: reprs, pickles and the error names stored with a failed task keep saying
# `tether.types.…`, as they did before these classes moved down here.
for _public in (
    ThreadId,
    CheckpointId,
    RunnableConfig,
    Send,
    Command,
    Runtime,
    Interrupt,
    GraphInterrupt,
    TaskSnapshot,
    StateSnapshot,
):
    _public.__module__ = "tether.types"
del _public
