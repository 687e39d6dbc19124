"""Mirrors ``langgraph.checkpoint.postgres.aio``: ``AsyncPostgresSaver`` (imports psycopg)."""

from tether.checkpoint._postgres import AsyncPostgresSaver

__all__ = ["AsyncPostgresSaver"]
