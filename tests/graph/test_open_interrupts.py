"""One answer to "which interrupts are still open", whoever asks.

Two parallel nodes both call ``interrupt()``; a person answers one of them. ``get_state``,
``tether threads --waiting``, ``tether show``, the ``waiting_interrupts`` SQL view and a worker's
run status must all report exactly one open interrupt: the unanswered one.
"""

from __future__ import annotations

import json
import operator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from typer.testing import CliRunner

from tests.conftest import raw
from tests.pg import sql
from tests.tune.people import conninfo_url
from tether import START, Command, StateGraph, interrupt
from tether.checkpoint import BaseCheckpointSaver, InMemorySaver, PostgresSaver, SqliteSaver
from tether.cli import app

runner = CliRunner()
THREAD = {"configurable": {"thread_id": "two-asks"}}


class S(TypedDict, total=False):
    msgs: Annotated[list[str], operator.add]


def two_asks() -> StateGraph:
    """fork -> (ask_a, ask_b) -> done; ask_a and ask_b both interrupt."""

    def ask(name: str) -> Any:
        def fn(state: S) -> S:
            return {"msgs": [f"{name}={interrupt(f'{name}?')}"]}

        return fn

    g = StateGraph(S)
    g.add_node("fork", lambda s: {"msgs": ["fork"]})
    g.add_node("ask_a", ask("ask_a"))
    g.add_node("ask_b", ask("ask_b"))
    g.add_node("done", lambda s: {"msgs": ["done"]})
    g.add_edge(START, "fork")
    g.add_edge("fork", "ask_a")
    g.add_edge("fork", "ask_b")
    g.add_edge(["ask_a", "ask_b"], "done")
    return g


def _db(saver: BaseCheckpointSaver, request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """What the ``tether`` command is given to open the saver's database (None: in memory)."""
    if isinstance(saver, SqliteSaver):
        return str(tmp_path / "checkpoints.sqlite")  # where the ``saver`` fixture puts it
    if isinstance(saver, PostgresSaver):
        return conninfo_url(request.getfixturevalue("postgres_schema"))
    assert isinstance(saver, InMemorySaver)
    return None


def test_one_of_two_parallel_interrupts_answered(
    saver: BaseCheckpointSaver, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    graph = two_asks().compile(checkpointer=saver)
    graph.invoke({"msgs": []}, THREAD)
    asked = {i.value: i.id for i in graph.get_state(THREAD).interrupts}
    assert set(asked) == {"ask_a?", "ask_b?"}
    graph.invoke(Command(resume={asked["ask_b?"]: "B"}), THREAD)
    open_id = asked["ask_a?"]

    state = graph.get_state(THREAD)
    assert [(i.id, i.value) for i in state.interrupts] == [(open_id, "ask_a?")]
    assert {t.name: [i.id for i in t.interrupts] for t in state.tasks} == {"ask_a": [open_id], "ask_b": []}
    assert state.next == ("ask_a",)

    db = _db(saver, request, tmp_path)
    if db is None:
        return  # the command line and the SQL view read a database
    waiting = runner.invoke(app, ["threads", db, "--waiting", "--json"])
    assert waiting.exit_code == 0, waiting.output
    [row] = json.loads(waiting.output)
    assert (row["thread_id"], row["status"], row["next"]) == ("two-asks", "waiting", ["ask_a"])
    assert [(i["id"], i["value"]) for i in row["interrupts"]] == [(open_id, "ask_a?")]
    table = runner.invoke(app, ["threads", db, "--waiting"])
    assert table.exit_code == 0, table.output
    assert "ask_a?" in table.output and "ask_b?" not in table.output  # ids are cut to fit the table

    shown = runner.invoke(app, ["show", db, "two-asks", "--json"])
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    assert [(i["id"], i["value"]) for i in data["interrupts"]] == [(open_id, "ask_a?")]
    assert (data["next"], data["status"]) == (["ask_a"], "waiting")
    text = runner.invoke(app, ["show", db, "two-asks"])
    assert text.output.count("waiting on interrupt") == 1 and "ask_b?" not in text.output

    rows = _view_rows(saver, request, db)
    assert len(rows) == 1
    thread_id, interrupts = rows[0]
    payload = json.loads(interrupts) if isinstance(interrupts, str) else interrupts
    assert thread_id == "two-asks"
    assert [(i["id"], i["value"]) for i in payload] == [(open_id, "ask_a?")]


def _view_rows(saver: BaseCheckpointSaver, request: pytest.FixtureRequest, db: str) -> list[tuple[Any, ...]]:
    query = "SELECT thread_id, interrupts FROM waiting_interrupts"
    if isinstance(saver, SqliteSaver):
        return raw(Path(db), query)
    return sql(request.getfixturevalue("postgres_schema"), query)


def test_a_subgraph_breakpoint_is_not_an_open_interrupt(
    saver: BaseCheckpointSaver, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A subgraph stopping at its breakpoint pauses its task without asking anything: every
    reader says the thread is paused, not waiting for a person (the view listed it before)."""
    sub = StateGraph(S)
    sub.add_node("x", lambda s: {"msgs": ["x"]})
    sub.add_node("y", lambda s: {"msgs": ["y"]})
    sub.add_edge(START, "x")
    sub.add_edge("x", "y")
    parent = StateGraph(S)
    parent.add_node("sub", sub.compile(interrupt_before=["y"]))
    parent.add_edge(START, "sub")
    graph = parent.compile(checkpointer=saver)
    graph.invoke({"msgs": []}, THREAD)
    state = graph.get_state(THREAD)
    assert (state.next, state.interrupts) == (("sub",), ())

    db = _db(saver, request, tmp_path)
    if db is None:
        return
    assert json.loads(runner.invoke(app, ["threads", db, "--waiting", "--json"]).output) == []
    rows = json.loads(runner.invoke(app, ["threads", db, "--json"]).output)
    # the parent thread and the subgraph's own namespace: both paused, neither asks anything
    assert sorted((r["status"], r["next"], r["interrupts"]) for r in rows) == [
        ("paused", ["sub"], []),
        ("paused", ["y"], []),
    ]
    shown = json.loads(runner.invoke(app, ["show", db, "two-asks", "--json"]).output)
    assert (shown["status"], shown["interrupts"]) == ("paused", [])
    assert _view_rows(saver, request, db) == []


def test_a_breakpoint_is_not_an_open_interrupt(saver: BaseCheckpointSaver) -> None:
    """A static breakpoint pauses the thread but asks nothing: paused, with no interrupts."""
    graph = two_asks().compile(checkpointer=saver, interrupt_before=["ask_a"])
    graph.invoke({"msgs": []}, THREAD)
    state = graph.get_state(THREAD)
    assert state.interrupts == ()
    assert set(state.next) == {"ask_a", "ask_b"}
