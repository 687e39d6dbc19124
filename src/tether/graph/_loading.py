"""``module:attr`` to a graph, compiled against a checkpointer (the CLI and the workers load graphs so)."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any, cast

from tether.checkpoint._base import BaseCheckpointSaver
from tether.errors import ConfigError
from tether.graph._builder import StateGraph
from tether.graph._compiled import CompiledStateGraph

__all__ = ["compile_for", "import_graph"]


def import_graph(spec: str) -> StateGraph | CompiledStateGraph:
    """Import ``module:attr`` (dots allowed in ``attr``): a ``StateGraph``, a compiled graph, or a
    function of no arguments returning either. The current directory is importable, as with ``python -m``.

    Only for a spec the operator gives (``--graph``, ``TETHER_GRAPH``): never for a name read from
    a database or a request, which would let whoever wrote it choose the code that runs.
    """
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"a graph is given as module:attribute (myapp.graphs:support), got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot import graph {spec!r}: {exc}") from exc
    if callable(target) and not isinstance(target, (StateGraph, CompiledStateGraph)):
        target = target()
    if not isinstance(target, (StateGraph, CompiledStateGraph)):
        raise ConfigError(f"{spec!r} is a {type(target).__name__}, not a StateGraph or a compiled graph")
    return target


def compile_for(graph: StateGraph | CompiledStateGraph, saver: BaseCheckpointSaver) -> CompiledStateGraph:
    """``graph`` compiled with ``saver`` (a compiled graph keeps its breakpoints; its own checkpointer is replaced)."""
    if isinstance(graph, CompiledStateGraph):
        builder = cast(StateGraph, graph.builder)  # what compiled it (typed by its shape, to keep imports acyclic)
        compiled: CompiledStateGraph = builder.compile(
            checkpointer=saver,
            interrupt_before=list(graph.interrupt_before),
            interrupt_after=list(graph.interrupt_after),
            name=graph.name,
        )
        return compiled
    result: CompiledStateGraph = graph.compile(checkpointer=saver)
    return result
