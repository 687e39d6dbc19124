"""Running plans on psycopg connections, sync and async, and turning psycopg's errors into Tether's.

A *plan* is a generator that yields SQL statements ``(sql, params, fetch)`` and receives their
rows; it holds every query of the PostgreSQL store once, and ``drive``/``adrive`` run it over a
``psycopg.Connection`` or a ``psycopg.AsyncConnection``.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow, tuple_row

from tether.checkpoint._postgres_schema import Statement
from tether.errors import CheckpointError, TetherError

__all__ = ["AsyncConnection", "Connection", "Plan", "Row", "adrive", "drive", "translate", "usable", "where"]

T = TypeVar("T")
Row = tuple[Any, ...]
Plan = Generator[Statement, list[Row], T]
Connection = psycopg.Connection[TupleRow]
AsyncConnection = psycopg.AsyncConnection[TupleRow]


# Cursors ask for tuples whatever the connection's own row factory (a connection made for
# LangGraph's saver has ``row_factory=dict_row``): the plans index rows by position.
def drive(conn: Connection, plan: Plan[T]) -> T:
    with conn.cursor(row_factory=tuple_row) as cur:
        try:
            sql, params, fetch = next(plan)
            while True:
                cur.execute(sql, params)
                sql, params, fetch = plan.send(cur.fetchall() if fetch else [])
        except StopIteration as stop:
            result: T = stop.value
            return result


async def adrive(conn: AsyncConnection, plan: Plan[T]) -> T:
    async with conn.cursor(row_factory=tuple_row) as cur:
        try:
            sql, params, fetch = next(plan)
            while True:
                await cur.execute(sql, params)
                sql, params, fetch = plan.send(await cur.fetchall() if fetch else [])
        except StopIteration as stop:
            result: T = stop.value
            return result


def usable(conn: Connection | AsyncConnection | None) -> bool:
    return conn is not None and not conn.closed and not conn.broken


def where(conninfo: str) -> str:
    """Where a connection string points, without its password."""
    try:
        parts = conninfo_to_dict(conninfo)
    except psycopg.Error:
        return "the given connection string"
    host, port, db = parts.get("host") or "localhost", parts.get("port") or "5432", parts.get("dbname") or ""
    return f"{host}:{port}/{db}"


@contextmanager
def translate(doing: str) -> Iterator[None]:
    try:
        yield
    except TetherError:
        raise
    except psycopg.Error as exc:
        raise CheckpointError(f"PostgreSQL error while {doing}: {str(exc).strip()}") from exc
