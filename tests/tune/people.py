"""Real threads in which people approve, edit and reject replies, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tether import END, START, MessagesState, StateGraph, interrupt
from tether.checkpoint import BaseCheckpointSaver, SqliteSaver
from tether.messages import AIMessage, HumanMessage, RemoveMessage
from tether.tune.decisions import parse_answer


@dataclass
class Store:
    saver: BaseCheckpointSaver
    target: str  # what `tether tune export` is given: a SQLite path or a postgresql:// URL
    backend: str


def conninfo_url(conninfo: str) -> str:
    """A ``key=value`` conninfo (the test fixture's) as the postgresql:// URL the CLI takes."""
    from psycopg.conninfo import conninfo_to_dict

    parts = conninfo_to_dict(conninfo)
    url = f"postgresql://{parts.get('user', 'postgres')}@{parts['host']}:{parts.get('port', 5432)}/{parts['dbname']}"
    options = parts.get("options")
    return url + (f"?options={quote(str(options))}" if options else "")


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        path = tmp_path / "threads.sqlite"
        with SqliteSaver.from_conn_string(path) as saver:
            yield Store(saver, str(path), "sqlite")
        return
    from tether.checkpoint import PostgresSaver

    conninfo = request.getfixturevalue("postgres_schema")
    with PostgresSaver.from_conn_string(conninfo) as saver:
        yield Store(saver, conninfo_url(conninfo), "postgres")


def reply_to(state: MessagesState) -> dict[str, Any]:
    """A deterministic "model": answers the last thing the user said."""
    said = [m.text for m in state["messages"] if isinstance(m, HumanMessage)]
    return {"messages": [AIMessage(content=f"Answer: {said[-1]}")]}


def review(state: MessagesState) -> dict[str, Any]:
    """Asks a person about the reply; an edit replaces it by id, a rejection removes it."""
    reply = state["messages"][-1]
    answer = interrupt({"question": "Send this reply?", "reply": reply.text})
    decided = parse_answer(answer)
    if decided is None or decided.action == "approve":
        return {}
    if decided.action == "edit":
        return {"messages": [AIMessage(content=decided.text or "", id=reply.id)]}
    return {"messages": [RemoveMessage(reply.id or "")]}


def chat_graph(*, with_review: bool = True) -> StateGraph:
    graph = StateGraph(MessagesState)
    graph.add_node("chat", reply_to)
    graph.add_edge(START, "chat")
    if with_review:
        graph.add_node("review", review)
        graph.add_edge("chat", "review")
        graph.add_edge("review", END)
    else:
        graph.add_edge("chat", END)
    return graph


def config(thread: str, rater: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"configurable": {"thread_id": thread}}
    if rater:
        out["metadata"] = {"rater": rater}
    return out
