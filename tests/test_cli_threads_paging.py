"""``tether threads`` a page at a time: --limit, --after, --status, --meta, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypedDict

from typer.testing import CliRunner

from tether import START, StateGraph, interrupt
from tether.checkpoint import SqliteSaver
from tether.cli import app

runner = CliRunner()


class S(TypedDict, total=False):
    ask: bool
    answer: str


def make_db(path: Path, n: int = 9) -> None:
    def node(state: S) -> S:
        return {"answer": interrupt("approve?") if state.get("ask") else "none"}

    g = StateGraph(S)
    g.add_node("node", node)
    g.add_edge(START, "node")
    with SqliteSaver.from_conn_string(path) as saver:
        graph = g.compile(checkpointer=saver)
        for i in range(n):
            config = {"configurable": {"thread_id": f"t{i}"}, "metadata": {"user": "ann" if i % 2 else "bob"}}
            graph.invoke({"ask": i % 3 == 0}, config)


def page(db: Path, *args: str) -> tuple[list[dict], str | None]:
    result = runner.invoke(app, ["threads", str(db), "--json", *args])
    assert result.exit_code == 0, result.output
    more = [line for line in result.stderr.splitlines() if line.startswith("more threads: --after ")]
    return json.loads(result.stdout), more[0].split()[-1] if more else None


def test_pages_cover_every_thread_once_newest_first(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite"
    make_db(db)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        rows, cursor = page(db, "--limit", "4", *(["--after", cursor] if cursor else []))
        seen += [r["thread_id"] for r in rows]
        if cursor is None:
            break
    assert seen == [f"t{i}" for i in reversed(range(9))]


def test_status_and_metadata_filters(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite"
    make_db(db)
    waiting, _ = page(db, "--status", "waiting")
    assert [r["thread_id"] for r in waiting] == ["t6", "t3", "t0"]
    assert all(r["interrupts"][0]["value"] == "approve?" for r in waiting)
    assert page(db, "--waiting")[0] == waiting
    ann, _ = page(db, "--meta", "user=ann")
    assert [r["thread_id"] for r in ann] == ["t7", "t5", "t3", "t1"]
    both, _ = page(db, "--meta", "user=ann", "--status", "waiting")
    assert [r["thread_id"] for r in both] == ["t3"]
    table = runner.invoke(app, ["threads", str(db), "--limit", "2"])
    assert table.exit_code == 0 and "t8" in table.stdout and "--after " in table.stderr


def test_bad_options_are_one_line_errors(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite"
    make_db(db, n=2)
    bad_cursor = runner.invoke(app, ["threads", str(db), "--after", "nonsense"])
    assert bad_cursor.exit_code == 1 and "bad thread listing cursor" in bad_cursor.stderr
    bad_status = runner.invoke(app, ["threads", str(db), "--status", "sleeping"])
    assert bad_status.exit_code == 1 and "unknown thread status" in bad_status.stderr
    bad_meta = runner.invoke(app, ["threads", str(db), "--meta", "user"])
    assert bad_meta.exit_code == 2 and "key=value" in bad_meta.stderr
    bad_limit = runner.invoke(app, ["threads", str(db), "--limit", "0"])
    assert bad_limit.exit_code == 1 and "limit" in bad_limit.stderr
