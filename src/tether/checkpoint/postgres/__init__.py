"""Mirrors ``langgraph.checkpoint.postgres``: ``PostgresSaver`` (imports psycopg)."""

from tether.checkpoint._postgres import PostgresSaver

__all__ = ["PostgresSaver"]
