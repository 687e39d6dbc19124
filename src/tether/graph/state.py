"""Mirrors ``langgraph.graph.state``: ``StateGraph`` and the ``CompiledStateGraph`` it compiles to."""

from tether.graph._builder import StateGraph
from tether.graph._compiled import CompiledStateGraph

__all__ = ["CompiledStateGraph", "StateGraph"]
