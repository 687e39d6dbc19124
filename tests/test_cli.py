from __future__ import annotations

import json
import operator
from pathlib import Path
from typing import Annotated, Any, TypedDict

from typer.testing import CliRunner

from tether import START, SqliteSaver, StateGraph, interrupt
from tether.cli import app

runner = CliRunner()


class S(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    answer: Any


def make_db(path: Path) -> None:
    g = StateGraph(S)
    g.add_node("work", lambda s: {"log": ["worked"]})
    g.add_node("ask", lambda s: {"answer": interrupt({"question": "ship it?"})})
    g.add_edge(START, "work")
    g.add_conditional_edges("work", lambda s: "ask" if len(s["log"]) > 1 else "__end__")
    with SqliteSaver.from_conn_string(path) as saver:
        app_ = g.compile(checkpointer=saver)
        app_.invoke({"log": ["start"]}, {"configurable": {"thread_id": "waiting-one"}})
        app_.invoke({}, {"configurable": {"thread_id": "done-one"}})


def test_threads_lists_status_and_next(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite"
    make_db(db)
    result = runner.invoke(app, ["threads", str(db), "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["thread_id"]: r for r in json.loads(result.output)}
    assert rows["waiting-one"]["status"] == "waiting"
    assert rows["waiting-one"]["next"] == ["ask"]
    assert rows["done-one"]["status"] == "done"
    assert rows["done-one"]["step"] == 1
    table = runner.invoke(app, ["threads", str(db)])
    assert "waiting-one" in table.output and "waiting" in table.output


def test_history_and_show(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite"
    make_db(db)
    hist = json.loads(runner.invoke(app, ["history", str(db), "waiting-one", "--json"]).output)
    assert [h["source"] for h in hist] == ["loop", "loop", "input"]
    assert hist[0]["writes"] == {"work": {"log": ["worked"]}}
    shown = json.loads(runner.invoke(app, ["show", str(db), "waiting-one", "--json"]).output)
    assert shown["values"] == {"log": ["start", "worked"]}
    assert shown["interrupts"][0]["value"] == {"question": "ship it?"}
    old = json.loads(
        runner.invoke(app, ["show", str(db), "waiting-one", "--checkpoint", hist[-1]["checkpoint_id"], "--json"]).output
    )
    assert old["values"] == {"log": []}
    text = runner.invoke(app, ["show", str(db), "waiting-one"]).output
    assert "ship it?" in text


def test_clear_errors(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["threads", str(tmp_path / "nope.sqlite")])
    assert missing.exit_code == 1 and "no database" in missing.output
    db = tmp_path / "t.sqlite"
    make_db(db)
    unknown = runner.invoke(app, ["show", str(db), "no-such-thread"])
    assert unknown.exit_code == 1 and "no-such-thread" in unknown.output
    bad = runner.invoke(app, ["show", str(db), "done-one", "--checkpoint", "zzz"])
    assert bad.exit_code == 1 and "zzz" in bad.output
    assert runner.invoke(app, ["history", str(db), "nobody"]).exit_code == 1


def test_every_command_has_help() -> None:
    for command in ("threads", "history", "show", "resume"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0 and len(result.output) > 100
