from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pg import PostgresUnavailableError, fresh_schema, postgres_url
from tether.checkpoint import BaseCheckpointSaver, InMemorySaver, SqliteSaver


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def saver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BaseCheckpointSaver]:
    """Every checkpointer backend; tests using it form the conformance suite."""
    if request.param == "memory":
        yield InMemorySaver()
    elif request.param == "sqlite":
        s = SqliteSaver.from_conn_string(tmp_path / "checkpoints.sqlite")
        yield s
        s.close()
    else:
        from tether.checkpoint import PostgresSaver

        with PostgresSaver.from_conn_string(request.getfixturevalue("postgres_schema")) as pg:
            yield pg


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL database for the whole session (a private server, started once).

    Without PostgreSQL the postgres tests are skipped, saying how to install it, except in CI
    (the ``CI`` environment variable is set), where they fail: CI must never skip them silently.
    """
    stack = contextlib.ExitStack()
    try:
        url = stack.enter_context(postgres_url())
    except PostgresUnavailableError as exc:
        stack.close()
        problem = str(exc)
    else:
        with stack:
            yield url
        return
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is required in CI (CI is set): {problem}", pytrace=False)
    pytest.skip(f"PostgreSQL is not available: {problem}")


@pytest.fixture
def postgres_schema(postgres_server: str) -> Iterator[str]:
    """A connection string whose tables live in a schema of their own, dropped after the test."""
    with fresh_schema(postgres_server) as conninfo:
        yield conninfo


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "tether.sqlite"


def raw(path: Path, sql: str) -> list[tuple[object, ...]]:
    """Read the database the way a person would, with a separate plain connection."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()
