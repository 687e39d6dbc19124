"""Mirrors ``langgraph.checkpoint.sqlite``: ``SqliteSaver``."""

from tether.checkpoint._sqlite import SqliteSaver

__all__ = ["SqliteSaver"]
