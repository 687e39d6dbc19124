"""Mirrors ``langgraph.runtime``: the ``Runtime`` a node receives, and ``get_runtime()`` inside one."""

from tether._context import get_runtime
from tether.types import Runtime

__all__ = ["Runtime", "get_runtime"]
