"""Mirrors ``langgraph.checkpoint.memory``: ``InMemorySaver`` and its alias ``MemorySaver``."""

from tether.checkpoint._memory import InMemorySaver, MemorySaver

__all__ = ["InMemorySaver", "MemorySaver"]
