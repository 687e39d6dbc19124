"""Mirrors ``langgraph.runtime``: the ``Runtime`` a node receives, and ``get_runtime()`` inside one."""

from tether.graph._runner import get_runtime
from tether.types import Runtime

__all__ = ["Runtime", "get_runtime"]
