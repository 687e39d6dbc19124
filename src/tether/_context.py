"""What a running node can reach: ``interrupt()``, the stream writer, the run's config and
runtime, and the sink a chat model streams its tokens to.

The graph runtime sets the current :class:`TaskScope` around each node call; everything here
reads it. This module sits just above the value types (it imports only ``tether._types``,
``tether.errors`` and ``tether._names``), so :mod:`tether.types`, :mod:`tether.config`,
:mod:`tether.runtime` and the model clients can offer these functions without loading the
graph package, and the graph package imports them from here rather than the other way round.
"""

from __future__ import annotations

import contextvars
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tether._types import GraphInterrupt, Interrupt, Runtime
from tether.errors import GraphRuntimeError

if TYPE_CHECKING:  # only for the type of TaskScope.env; tether.graph._live imports nothing above _types
    from tether.graph._live import StepEnv

__all__ = [
    "TaskScope",
    "current_scope",
    "get_config",
    "get_runtime",
    "get_stream_writer",
    "interrupt",
    "interrupt_id",
    "message_sink",
    "scope_var",
]


@dataclass(slots=True)
class TaskScope:
    """What a running node can reach through ``interrupt()`` and ``get_stream_writer()``."""

    task_id: str
    resume: dict[str, Any]  # interrupt id -> the answer given for it
    config: dict[str, Any]
    runtime: Runtime[Any]
    node: str = ""
    step: int = 0
    messages: Callable[[Any, dict[str, Any]], None] | None = None  # stream_mode="messages" sink
    counter: int = 0
    extras: dict[str, Any] = field(default_factory=dict)
    env: StepEnv | None = None  # the step's environment: a subgraph run here inherits its saver


scope_var: contextvars.ContextVar[TaskScope | None] = contextvars.ContextVar("tether_task_scope", default=None)
"""The task running in this context; the graph runner sets and resets it around each node call."""


def current_scope() -> TaskScope | None:
    """The task running in this context, if any (a subgraph invoked here runs as its child)."""
    return scope_var.get()


def interrupt_id(task_id_: str, index: int) -> str:
    """The id of the ``index``-th ``interrupt()`` a task asks: what a resume mapping keys on."""
    return hashlib.blake2b(f"{task_id_}|{index}".encode(), digest_size=16).hexdigest()


def interrupt(value: Any) -> Any:
    """Pause the run and surface ``value`` to a person; return what they resume with.

    The first call in a node pauses; ``invoke(Command(resume=answer), config)`` runs the
    node again from the top, and this call then returns ``answer``. Several calls in one
    node are resumed in order.
    """
    scope = scope_var.get()
    if scope is None:
        raise GraphRuntimeError("interrupt() can only be called inside a node of a running graph")
    index = scope.counter
    scope.counter += 1
    key = interrupt_id(scope.task_id, index)
    if key in scope.resume:
        return scope.resume[key]
    raise GraphInterrupt([Interrupt(value=value, id=key)])


def get_stream_writer() -> Callable[[Any], None]:
    """A function that sends a chunk to ``stream_mode="custom"`` from inside a node."""
    scope = scope_var.get()
    if scope is None:
        return lambda chunk: None
    writer: Callable[[Any], None] = scope.runtime.stream_writer
    return writer


def message_sink() -> Callable[[Any], None] | None:
    """Inside a node run with ``stream_mode="messages"``: where a chat model sends its chunks."""
    scope = scope_var.get()
    if scope is None or scope.messages is None:
        return None
    sink = scope.messages
    metadata = {"langgraph_node": scope.node, "langgraph_step": scope.step, "langgraph_task_id": scope.task_id}
    return lambda chunk: sink(chunk, metadata)


def get_runtime(context_schema: type[Any] | None = None) -> Runtime[Any]:
    """Inside a node: the run's ``Runtime`` (its ``context`` and ``stream_writer``).

    ``context_schema`` only tells a type checker what ``context`` holds, as in LangGraph's
    ``get_runtime(Context)``; nothing is checked at run time."""
    scope = scope_var.get()
    if scope is None:
        raise GraphRuntimeError("get_runtime() can only be called inside a node of a running graph")
    return scope.runtime


def get_config() -> dict[str, Any]:
    """Inside a node: the run's config, the same dict a node with a ``config`` parameter gets."""
    scope = scope_var.get()
    if scope is None:
        raise GraphRuntimeError("get_config() can only be called inside a node of a running graph")
    return scope.config
