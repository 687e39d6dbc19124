"""record_feedback: verdicts stored in the thread's own database, readable with sqlite3 and psql."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.pg import sql
from tests.tune.people import Store, chat_graph, config, store
from tether.checkpoint import InMemorySaver, SqliteSaver
from tether.errors import SchemaVersionError
from tether.messages import AIMessage
from tether.tune import find_decisions, list_feedback, record_feedback
from tether.tune.feedback import FEEDBACK_SCHEMA_VERSION, FeedbackError

__all__ = ["store"]


def raw(store: Store, query: str) -> list[tuple[Any, ...]]:
    """Rows as a person reads them, over a connection of their own."""
    if store.backend == "postgres":
        return sql(store.target, query)
    conn = sqlite3.connect(store.target)
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


def one_reply(store: Store, thread: str = "t", text: str = "Is the sky blue?") -> Any:
    app = chat_graph(with_review=False).compile(checkpointer=store.saver)
    app.invoke({"messages": [("user", text)]}, config(thread))
    return app


def test_rows_are_readable_with_sqlite3_and_psql(store: Store) -> None:
    app = one_reply(store)
    head = app.get_state(config("t"))
    reply = head.values["messages"][-1]
    row = record_feedback(app, config("t"), choice="reject", reason="not sourced", rater="alice")
    assert row.checkpoint_id == head.config["configurable"]["checkpoint_id"] and row.message_id == reply.id
    record_feedback(store.target, config("t"), score=0.25, rater="model:judge")
    record_feedback(store.saver, config("t"), correction="Usually, yes: Rayleigh scattering.", rater="bob")

    rows = raw(
        store, "SELECT thread_id, checkpoint_id, message_id, kind, value, rater, machine FROM feedback ORDER BY id"
    )
    assert [(r[0], r[1], r[2], r[3], r[5], bool(r[6])) for r in rows] == [
        ("t", row.checkpoint_id, reply.id, "choice", "alice", False),
        ("t", row.checkpoint_id, reply.id, "score", "model:judge", True),
        ("t", row.checkpoint_id, reply.id, "correction", "bob", False),
    ]
    values = [r[4] if isinstance(r[4], dict) else json.loads(r[4]) for r in rows]
    assert values[0] == {"choice": "reject", "reason": "not sourced"}
    assert values[1] == {"score": 0.25}
    assert values[2] == {"content": "Usually, yes: Rayleigh scattering.", "tool_calls": []}
    assert raw(store, "SELECT version FROM tether_tune_schema") == [(FEEDBACK_SCHEMA_VERSION,)]
    assert [f.kind for f in list_feedback(store.saver)] == ["choice", "score", "correction"]


def test_judging_again_replaces_the_earlier_verdict(store: Store) -> None:
    app = one_reply(store)
    first = record_feedback(app, config("t"), choice="approve", rater="alice")
    again = record_feedback(app, config("t"), choice=False, reason="changed my mind", rater="alice")
    other = record_feedback(app, config("t"), choice=True, rater="bob")
    assert again.id == first.id and other.id != first.id
    rows = list_feedback(store.saver, thread_id="t")
    assert [(f.rater, f.value["choice"]) for f in rows] == [("alice", "reject"), ("bob", "approve")]


def test_feedback_becomes_decisions_at_its_checkpoint(store: Store) -> None:
    app = one_reply(store)
    at = app.get_state(config("t")).config
    app.invoke({"messages": [("user", "And the sea?")]}, config("t"))  # the thread goes on
    record_feedback(app, at, choice="approve", rater="alice")
    record_feedback(app, at, correction=AIMessage(content="Yes, on a clear day."), rater="bob")
    record_feedback(app, config("t"), choice="reject", reason="vague", rater="carol")

    found = find_decisions(store.saver)
    assert [(d.kind, d.rater, d.origin) for d in found] == [
        ("approval", "alice", "feedback"),
        ("edit", "bob", "feedback"),
        ("rejection", "carol", "feedback"),
    ]
    approval, edit, rejection = found
    assert [m.text for m in approval.prompt] == ["Is the sky blue?"]
    assert edit.edited is not None and edit.edited.text == "Yes, on a clear day."
    assert edit.output.text == "Answer: Is the sky blue?"
    assert rejection.output.text == "Answer: And the sea?" and rejection.reason == "vague"
    assert [m.text for m in rejection.prompt] == ["Is the sky blue?", "Answer: Is the sky blue?", "And the sea?"]


def test_reading_never_creates_the_table(store: Store) -> None:
    one_reply(store)
    assert list_feedback(store.saver) == []
    table = (
        "to_regclass('feedback')"
        if store.backend == "postgres"
        else "(SELECT name FROM sqlite_master WHERE name = 'feedback')"
    )
    assert raw(store, f"SELECT {table}") == [(None,)]


def test_clear_errors(store: Store) -> None:
    app = one_reply(store)
    with pytest.raises(FeedbackError, match="exactly one"):
        record_feedback(app, config("t"), choice="approve", score=1, rater="a")
    with pytest.raises(FeedbackError, match="exactly one"):
        record_feedback(app, config("t"), rater="a")
    with pytest.raises(FeedbackError, match="choice must be"):
        record_feedback(app, config("t"), choice="maybe", rater="a")  # type: ignore[arg-type]
    with pytest.raises(FeedbackError, match="finite number"):
        record_feedback(app, config("t"), score=float("nan"), rater="a")
    with pytest.raises(FeedbackError, match="rater"):
        record_feedback(app, config("t"), score=1, rater="")
    with pytest.raises(FeedbackError, match="no AIMessage with id 'nope'"):
        record_feedback(app, config("t"), score=1, rater="a", message_id="nope")
    with pytest.raises(FeedbackError, match="thread_id"):
        record_feedback(app, {"configurable": {}}, score=1, rater="a")


def test_a_store_without_a_database_has_no_feedback() -> None:
    saver = InMemorySaver()
    app = chat_graph(with_review=False).compile(checkpointer=saver)
    app.invoke({"messages": [("user", "hi")]}, config("t"))
    with pytest.raises(FeedbackError, match="InMemorySaver has none"):
        record_feedback(app, config("t"), choice="approve", rater="a")
    assert list_feedback(saver) == []


def test_a_newer_feedback_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"
    with SqliteSaver.from_conn_string(path) as saver:
        app = chat_graph(with_review=False).compile(checkpointer=saver)
        app.invoke({"messages": [("user", "hi")]}, config("t"))
        record_feedback(app, config("t"), choice="approve", rater="a")
        conn = sqlite3.connect(path)
        conn.execute("INSERT INTO tether_tune_schema VALUES (99, 'from the future', '2100-01-01')")
        conn.commit()
        conn.close()
        with pytest.raises(SchemaVersionError, match="version 99"):
            list_feedback(saver)
        with pytest.raises(SchemaVersionError, match="version 99"):
            record_feedback(app, config("t"), choice="approve", rater="b")


def test_config_first_with_the_store_as_a_keyword(store: Store) -> None:
    """The issue's spelling: record_feedback(config, verdict, rater=…), the store named by store=."""
    app = one_reply(store)
    reply = app.get_state(config("t")).values["messages"][-1]
    approved = record_feedback(config("t"), "approve", rater="alice", store=app)
    scored = record_feedback(config("t"), 0.75, rater="bob", store=store.target)
    corrected = record_feedback(config("t"), correction="Yes, by day.", rater="carol", store=store.saver)
    assert [(f.kind, f.value, f.message_id) for f in (approved, scored, corrected)] == [
        ("choice", {"choice": "approve"}, reply.id),
        ("score", {"score": 0.75}, reply.id),
        ("correction", {"content": "Yes, by day.", "tool_calls": []}, reply.id),
    ]
    with pytest.raises(FeedbackError, match="store="):
        record_feedback(config("t"), choice="approve", rater="alice")
    with pytest.raises(FeedbackError, match="given twice"):
        record_feedback(app, config("t"), choice="approve", rater="alice", store=app)
    with pytest.raises(FeedbackError, match="run config"):
        record_feedback(app, "t", choice="approve", rater="alice")
