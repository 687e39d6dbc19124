from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tether.checkpoint import BaseCheckpointSaver, InMemorySaver, SqliteSaver


@pytest.fixture(params=["memory", "sqlite"])
def saver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BaseCheckpointSaver]:
    """Every checkpointer backend; tests using it form the conformance suite."""
    if request.param == "memory":
        yield InMemorySaver()
    else:
        s = SqliteSaver.from_conn_string(tmp_path / "checkpoints.sqlite")
        yield s
        s.close()


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
