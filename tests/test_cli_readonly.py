"""The reading commands (threads, history, show, tune export) never write to the database they read."""

from __future__ import annotations

import dataclasses
import hashlib
import sqlite3
from pathlib import Path
from typing import TypedDict

import pytest
from typer.testing import CliRunner

from tether import START, SqliteSaver, StateGraph
from tether.checkpoint import open_saver
from tether.checkpoint._sqlite_schema import MIGRATIONS
from tether.cli import app
from tether.errors import CheckpointError

from .security.damage import pg_url
from .test_cli import make_db

runner = CliRunner()

READERS = [["threads"], ["history", "any-thread"], ["show", "any-thread"]]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tables(path: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master"))
    finally:
        conn.close()


def read(command: list[str], db: Path | str) -> tuple[int, str]:
    result = runner.invoke(app, [command[0], str(db), *command[1:]])
    return result.exit_code, result.output


@pytest.mark.parametrize("command", READERS)
def test_a_missing_file_is_an_error_and_is_not_created(tmp_path: Path, command: list[str]) -> None:
    db = tmp_path / "typo.sqlite"
    code, out = read(command, db)
    assert code == 1 and "no database" in out and "typo.sqlite" in out
    assert not db.exists()


@pytest.mark.parametrize("command", READERS)
def test_an_empty_file_is_not_a_tether_database_and_stays_empty(tmp_path: Path, command: list[str]) -> None:
    db = tmp_path / "empty.sqlite"
    db.touch()
    code, out = read(command, db)
    assert code == 1 and "not a Tether database" in out
    assert db.stat().st_size == 0


@pytest.mark.parametrize("command", READERS)
def test_an_unrelated_sqlite_file_is_refused_byte_for_byte_unchanged(tmp_path: Path, command: list[str]) -> None:
    db = tmp_path / "shop.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT)")
    conn.execute("INSERT INTO orders (item) VALUES ('tea')")
    conn.commit()
    conn.close()
    before = digest(db)
    code, out = read(command, db)
    assert code == 1 and "not a Tether database" in out and "shop.sqlite" in out
    assert digest(db) == before
    assert tables(db) == ["orders"]


def test_a_file_that_is_not_sqlite_is_one_line(tmp_path: Path) -> None:
    db = tmp_path / "notes.txt"
    db.write_text("not a database at all\n" * 50)
    code, out = read(["threads"], db)
    assert code == 1 and "not a database" in out and "Traceback" not in out
    assert db.read_text() == "not a database at all\n" * 50


def langgraph_db(path: Path) -> None:
    """A database written by the real LangGraph SqliteSaver."""
    from langgraph.checkpoint.sqlite import SqliteSaver as LangGraphSqliteSaver
    from langgraph.graph import END
    from langgraph.graph import START as LG_START
    from langgraph.graph import StateGraph as LangGraphStateGraph

    class Count(TypedDict):
        n: int

    graph = LangGraphStateGraph(Count)
    graph.add_node("inc", lambda s: {"n": s["n"] + 1})
    graph.add_edge(LG_START, "inc")
    graph.add_edge("inc", END)
    conn = sqlite3.connect(path, check_same_thread=False)
    try:
        graph.compile(checkpointer=LangGraphSqliteSaver(conn)).invoke({"n": 1}, {"configurable": {"thread_id": "lg"}})
    finally:
        conn.close()


@pytest.mark.parametrize("command", [["threads"], ["history", "lg"], ["show", "lg"]])
def test_a_langgraph_database_is_named_as_such(tmp_path: Path, command: list[str]) -> None:
    db = tmp_path / "langgraph.sqlite"
    langgraph_db(db)
    before = digest(db)
    code, out = read(command, db)
    assert code == 1, out
    assert "LangGraph checkpoint database" in out and "already exists" not in out
    assert digest(db) == before
    assert "tether_schema" not in tables(db)


def test_reading_a_tether_database_leaves_it_byte_for_byte_unchanged(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite"
    make_db(db)
    conn = sqlite3.connect(db)  # fold the WAL in, so the main file holds everything
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    before = digest(db)
    for command in (["threads"], ["history", "waiting-one"], ["show", "waiting-one"], ["show", "done-one"]):
        code, out = read(command, db)
        assert code == 0, out
    assert digest(db) == before


def test_an_older_tether_schema_is_read_without_migrating_it(tmp_path: Path) -> None:
    """Version 1 (before lease expiry) holds every table the readers use: read as it is."""
    db = tmp_path / "v1.sqlite"
    make_db(db)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("DELETE FROM tether_schema WHERE version > 1")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    assert len(MIGRATIONS) > 1
    before = digest(db)
    code, out = read(["threads"], db)
    assert code == 0 and "waiting-one" in out
    assert digest(db) == before
    with SqliteSaver.from_conn_string(db, read_only=True) as saver:
        assert saver.schema_version == 1


def test_a_newer_tether_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "future.sqlite"
    make_db(db)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("INSERT INTO tether_schema VALUES (999, 'from the future', '2099-01-01')")
    conn.close()
    code, out = read(["threads"], db)
    assert code == 1 and "999" in out and "upgrade Tether" in out


def test_a_read_only_saver_refuses_writes(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite"
    make_db(db)
    with open_saver(db, read_only=True) as saver:
        head = next(saver.list("done-one"))
        record = dataclasses.replace(head, checkpoint_id="z" + head.checkpoint_id[1:])
        with pytest.raises(CheckpointError, match="read-only"):
            saver.put(record)
        with pytest.raises(CheckpointError, match="read-only"):
            saver.delete_thread("done-one")
        with pytest.raises(CheckpointError, match="read-only"):
            saver.acquire("done-one", "", "me")
    with open_saver(db) as saver:
        assert [t.thread_id for t in saver.threads()].count("done-one") == 1


def test_a_graph_cannot_run_on_a_read_only_saver(tmp_path: Path) -> None:
    class S(TypedDict):
        n: int

    db = tmp_path / "t.sqlite"
    make_db(db)
    g = StateGraph(S)
    g.add_node("inc", lambda s: {"n": s["n"] + 1})
    g.add_edge(START, "inc")
    with SqliteSaver.from_conn_string(db, read_only=True) as saver, pytest.raises(CheckpointError, match="read-only"):
        g.compile(checkpointer=saver).invoke({"n": 1}, {"configurable": {"thread_id": "new"}})


def test_tune_export_reads_without_creating(tmp_path: Path) -> None:
    shop = tmp_path / "shop.sqlite"
    conn = sqlite3.connect(shop)
    conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    before = digest(shop)
    result = runner.invoke(app, ["tune", "export", str(shop), "--out", str(tmp_path / "prefs.jsonl")])
    assert result.exit_code == 1 and "not a Tether database" in result.output
    assert digest(shop) == before
    missing = runner.invoke(app, ["tune", "export", str(tmp_path / "none.sqlite"), "--out", str(tmp_path / "p.jsonl")])
    assert missing.exit_code == 1 and not (tmp_path / "none.sqlite").exists()
    db = tmp_path / "t.sqlite"
    make_db(db)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    before = digest(db)
    ok = runner.invoke(app, ["tune", "export", str(db), "--out", str(tmp_path / "out.jsonl")])
    assert ok.exit_code == 0, ok.output
    assert digest(db) == before


def _pg_tables(url: str) -> list[str]:
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        ).fetchall()
    return sorted(r[0] for r in rows)


@pytest.mark.parametrize("command", READERS)
def test_postgres_an_empty_schema_stays_empty(postgres_schema: str, command: list[str]) -> None:
    code, out = read(command, pg_url(postgres_schema))
    assert code == 1 and "not a Tether database" in out, out
    assert _pg_tables(postgres_schema) == []


def test_postgres_reading_runs_no_migration_and_writes_are_refused(postgres_schema: str) -> None:
    import psycopg

    from tether.checkpoint import PostgresSaver

    g = StateGraph(TypedDict("N", {"n": int}))  # type: ignore[operator]
    g.add_node("inc", lambda s: {"n": s["n"] + 1})
    g.add_edge(START, "inc")
    with PostgresSaver.from_conn_string(postgres_schema) as saver:
        g.compile(checkpointer=saver).invoke({"n": 1}, {"configurable": {"thread_id": "pg"}})
    with psycopg.connect(postgres_schema, autocommit=True) as conn:  # as if written by an older Tether
        conn.execute("DELETE FROM tether_schema WHERE version > 1")
    code, out = read(["threads"], pg_url(postgres_schema))
    assert code == 0 and "pg" in out, out
    code, out = read(["show", "pg"], pg_url(postgres_schema))
    assert code == 0 and '"n": 2' in out, out
    with psycopg.connect(postgres_schema) as conn:
        assert conn.execute("SELECT max(version) FROM tether_schema").fetchone() == (1,)
    with open_saver(pg_url(postgres_schema), read_only=True) as saver:
        with pytest.raises(CheckpointError, match="read-only"):
            saver.delete_thread("pg")
        with pytest.raises(CheckpointError, match="read-only"):
            g.compile(checkpointer=saver).invoke({"n": 1}, {"configurable": {"thread_id": "pg2"}})
        assert [t.thread_id for t in saver.threads()] == ["pg"]


def test_postgres_a_langgraph_database_is_named_as_such(postgres_schema: str) -> None:
    from langgraph.checkpoint.postgres import PostgresSaver as LangGraphPostgresSaver

    with LangGraphPostgresSaver.from_conn_string(postgres_schema) as lg:
        lg.setup()
    before = _pg_tables(postgres_schema)
    code, out = read(["threads"], pg_url(postgres_schema))
    assert code == 1 and "LangGraph checkpoint database" in out, out
    assert _pg_tables(postgres_schema) == before and "tether_schema" not in before
