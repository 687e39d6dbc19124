"""The shapes the runtime reads a graph through.

``StateGraph`` (the builder) fills :class:`NodeSpec` and :class:`Branch` records and satisfies
:class:`BuiltGraph`; ``CompiledStateGraph`` satisfies :class:`RunGraph`. The compiled graph,
the loop and the task runner are typed against these protocols rather than against each
other's modules, so the builder can name ``CompiledStateGraph`` as what ``compile()`` returns
without the graph modules importing one another in a circle.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, get_args, get_origin

from tether._retry import RetryPolicy
from tether.graph._schema import Channel, Schema
from tether.types import Command

if TYPE_CHECKING:
    from tether.checkpoint._base import BaseCheckpointSaver
    from tether.graph._algo import Task, Topology
    from tether.graph._state import DecodedCheckpoint
    from tether.graph._state_cache import StateCache

__all__ = ["Branch", "BuiltGraph", "NodeSpec", "RunGraph", "literal_targets", "return_hint"]


@dataclass(slots=True)
class NodeSpec:
    name: str
    fn: Callable[..., Any]
    input_schema: Schema
    wants_config: bool
    is_async: bool
    declared_targets: tuple[str, ...] | None  # from `-> Command[Literal[...]]`; None: unknown
    may_route: bool  # the function may return Command/Send with goto
    metadata: dict[str, Any] | None = None
    wants_runtime: bool = False  # second parameter is `runtime` (LangGraph 0.6+ style)
    keywords: tuple[tuple[str, str], ...] = ()  # (parameter, "config"/"runtime"/"writer") passed by name
    retry: tuple[RetryPolicy, ...] = ()
    afn: Callable[..., Any] | None = None  # an object's async `ainvoke`, used by async runs


@dataclass(slots=True)
class Branch:
    """A conditional edge: ``router(state)`` picks the next node(s)."""

    source: str
    router: Callable[..., Any]
    path_map: dict[Hashable, str] | None
    wants_config: bool
    is_async: bool

    def targets(self) -> tuple[str, ...] | None:
        """Every node this branch can reach, or None when it cannot be known statically."""
        if self.path_map is not None:
            return tuple(self.path_map.values())
        return literal_targets(return_hint(self.router))


def return_hint(fn: Callable[..., Any]) -> Any:
    target = fn if inspect.isfunction(fn) or inspect.ismethod(fn) else getattr(fn, "__call__", fn)
    try:
        return typing.get_type_hints(target).get("return")
    except Exception:
        return getattr(target, "__annotations__", {}).get("return")


def literal_targets(hint: Any) -> tuple[str, ...] | None:
    if hint is None:
        return None
    if get_origin(hint) is Literal:
        return tuple(str(a) for a in get_args(hint))
    if get_origin(hint) is Command or (isinstance(hint, type) and issubclass(hint, Command)):
        args = get_args(hint)
        return literal_targets(args[0]) if args else None
    return None


class BuiltGraph(Protocol):
    """A built graph as the compiled graph and the drawing read it (``StateGraph`` is one)."""

    @property
    def state_schema(self) -> Schema: ...
    @property
    def input_schema(self) -> Schema: ...
    @property
    def output_schema(self) -> Schema: ...
    @property
    def channels(self) -> dict[str, Channel]: ...
    @property
    def nodes(self) -> dict[str, NodeSpec]: ...
    @property
    def edges(self) -> list[tuple[str, str]]: ...
    @property
    def joins(self) -> list[tuple[tuple[str, ...], str]]: ...
    @property
    def branches(self) -> list[Branch]: ...


class RunGraph(Protocol):
    """A compiled graph as the loop and the task runner read it (``CompiledStateGraph`` is one)."""

    @property
    def builder(self) -> BuiltGraph: ...
    @property
    def checkpointer(self) -> BaseCheckpointSaver | None: ...
    @property
    def default_recursion_limit(self) -> int: ...
    @property
    def topology(self) -> Topology: ...
    @property
    def edges_from(self) -> dict[str, list[str]]: ...
    @property
    def branches_from(self) -> dict[str, list[Branch]]: ...
    @property
    def state_cache(self) -> StateCache: ...
    @property
    def reducer_names(self) -> dict[str, str]: ...

    def initial_values(self) -> dict[str, Any]: ...
    def stream_values(self, values: dict[str, Any]) -> dict[str, Any]: ...
    def coerce_input(self, value: Any) -> dict[str, Any]: ...
    def node_input(self, task: Task, values: dict[str, Any]) -> Any: ...
    def checkpoint_event(
        self, decoded: DecodedCheckpoint, values: dict[str, Any], config: dict[str, Any], *, parent_id: str | None
    ) -> dict[str, Any]: ...
