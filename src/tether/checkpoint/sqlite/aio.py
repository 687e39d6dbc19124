"""Mirrors ``langgraph.checkpoint.sqlite.aio``: ``AsyncSqliteSaver``."""

from tether.checkpoint._sqlite import AsyncSqliteSaver

__all__ = ["AsyncSqliteSaver"]
