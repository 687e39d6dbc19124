from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import raw
from tether.checkpoint import SqliteSaver
from tether.checkpoint._base import run_owner
from tether.checkpoint._sqlite_schema import SCHEMA_VERSION
from tether.errors import CheckpointError, SchemaVersionError, ThreadBusyError


def test_wal_mode_and_synchronous_setting(sqlite_path: Path) -> None:
    for mode, number in (("OFF", 0), ("NORMAL", 1), ("FULL", 2), ("EXTRA", 3)):
        with SqliteSaver.from_conn_string(sqlite_path, synchronous=mode) as saver:  # type: ignore[arg-type]
            assert saver.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert saver.conn.execute("PRAGMA synchronous").fetchone()[0] == number
    with pytest.raises(CheckpointError, match="synchronous"):
        SqliteSaver.from_conn_string(sqlite_path, synchronous="SOMETIMES")  # type: ignore[arg-type]


def test_schema_version_is_recorded_and_migration_is_idempotent(sqlite_path: Path) -> None:
    SqliteSaver.from_conn_string(sqlite_path).close()
    SqliteSaver.from_conn_string(sqlite_path).close()
    assert raw(sqlite_path, "SELECT version FROM tether_schema") == [(v,) for v in range(1, SCHEMA_VERSION + 1)]


def test_unknown_schema_version_is_refused(sqlite_path: Path) -> None:
    SqliteSaver.from_conn_string(sqlite_path).close()
    conn = sqlite3.connect(sqlite_path)
    conn.execute("INSERT INTO tether_schema VALUES (99, 'from the future', 'now')")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaVersionError, match="version 99"):
        SqliteSaver.from_conn_string(sqlite_path)


def test_user_connection_is_accepted(sqlite_path: Path) -> None:
    conn = sqlite3.connect(sqlite_path, check_same_thread=False)
    saver = SqliteSaver(conn)
    assert saver.get("t") is None
    conn.close()


def test_unopenable_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="cannot open"):
        SqliteSaver.from_conn_string(tmp_path / "missing-dir" / "x.sqlite")


def _hold_lease(path: str, ready: multiprocessing.synchronize.Event, stop: multiprocessing.synchronize.Event) -> None:
    saver = SqliteSaver.from_conn_string(path)
    saver.acquire("shared", "", run_owner())
    ready.set()
    stop.wait(10)


def test_lease_is_respected_across_processes_and_freed_when_the_holder_dies(sqlite_path: Path) -> None:
    SqliteSaver.from_conn_string(sqlite_path).close()
    ctx = multiprocessing.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_lease, args=(str(sqlite_path), ready, stop))
    proc.start()
    assert ready.wait(30)
    saver = SqliteSaver.from_conn_string(sqlite_path)
    with pytest.raises(ThreadBusyError):
        saver.acquire("shared", "", run_owner())
    proc.kill()  # a crashed run must not block the thread forever
    proc.join()
    saver.acquire("shared", "", run_owner())
    saver.close()


def test_documented_views_answer_the_documented_queries(sqlite_path: Path) -> None:
    import operator
    from typing import Annotated, TypedDict

    from tether import START, StateGraph, interrupt

    class S(TypedDict, total=False):
        log: Annotated[list[str], operator.add]

    g = StateGraph(S)
    g.add_node("work", lambda s: {"log": ["w"]})
    g.add_node("ask", lambda s: {"log": [interrupt({"q": "ok?"})]})
    g.add_edge(START, "work")
    g.add_edge("work", "ask")
    with SqliteSaver.from_conn_string(sqlite_path) as saver:
        g.compile(checkpointer=saver).invoke({}, {"configurable": {"thread_id": "quickstart"}})
    steps = raw(
        sqlite_path, "SELECT step, source FROM thread_checkpoints WHERE thread_id = 'quickstart' ORDER BY checkpoint_id"
    )
    assert steps == [(-1, "input"), (0, "loop"), (1, "loop")]
    assert raw(sqlite_path, "SELECT node, writes FROM checkpoint_writes WHERE step = 1") == [
        ("work", '[["log",["w"]]]')
    ]
    waiting = raw(sqlite_path, "SELECT thread_id, interrupts FROM waiting_interrupts")
    assert len(waiting) == 1 and waiting[0][0] == "quickstart" and '"q":"ok?"' in waiting[0][1]
