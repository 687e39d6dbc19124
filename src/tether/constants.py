"""Mirrors ``langgraph.constants``: the virtual ``START`` and ``END`` nodes."""

from tether.types import END, START

__all__ = ["END", "START"]
