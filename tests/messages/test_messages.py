from __future__ import annotations

import operator
from pathlib import Path
from typing import Annotated, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether import START, SqliteSaver, StateGraph
from tether.checkpoint._serde import dumps, loads
from tether.graph import MessagesState
from tether.messages import (
    REMOVE_ALL_MESSAGES,
    AIMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
    add_messages,
    convert_to_messages,
)


def test_messages_from_what_people_write() -> None:
    msgs = convert_to_messages(
        [
            ("system", "be brief"),
            ("user", "hi"),
            {"role": "assistant", "content": "", "tool_calls": [{"name": "add", "args": {"a": 1}, "id": "c1"}]},
            {"role": "tool", "content": "2", "tool_call_id": "c1"},
            "plain text",
            AIMessage("done"),
        ]
    )
    assert [type(m) for m in msgs] == [SystemMessage, HumanMessage, AIMessage, ToolMessage, HumanMessage, AIMessage]
    assert msgs[2].tool_calls == [{"name": "add", "args": {"a": 1}, "id": "c1", "type": "tool_call"}]
    openai_style = convert_to_messages(
        {
            "role": "assistant",
            "content": None or "",
            "tool_calls": [{"id": "x", "type": "function", "function": {"name": "f", "arguments": '{"q": "z"}'}}],
        }
    )
    assert openai_style[0].tool_calls[0]["args"] == {"q": "z"}
    with pytest.raises(ValueError, match="role 'wizard'"):
        convert_to_messages({"role": "wizard", "content": "?"})
    with pytest.raises(ValueError, match="cannot make a message from 42"):
        convert_to_messages([42])  # type: ignore[list-item]


def test_add_messages_appends_replaces_and_removes() -> None:
    first = add_messages([], [("user", "hi"), ("ai", "hello")])
    assert all(m.id for m in first)
    edited = AIMessage("hello, edited", id=first[1].id)
    second = add_messages(first, [edited, HumanMessage("more")])
    assert [m.text for m in second] == ["hi", "hello, edited", "more"]  # replaced in place
    third = add_messages(second, [RemoveMessage(id=first[0].id)])
    assert [m.text for m in third] == ["hello, edited", "more"]
    with pytest.raises(ValueError, match="no message with that id"):
        add_messages(third, [RemoveMessage(id="missing")])
    cleared = add_messages(third, [RemoveMessage(id=REMOVE_ALL_MESSAGES), SystemMessage("summary")])
    assert [m.text for m in cleared] == ["summary"]
    assert add_messages(third, "a string")[-1].text == "a string"


@given(
    st.lists(st.tuples(st.sampled_from(["user", "ai", "system"]), st.text(max_size=8)), max_size=8),
    st.lists(st.tuples(st.sampled_from(["user", "ai"]), st.text(max_size=8)), max_size=8),
)
def test_add_messages_keeps_order_and_unique_ids(left: list[tuple[str, str]], right: list[tuple[str, str]]) -> None:
    merged = add_messages(left, right)
    assert [m.text for m in merged] == [t for _, t in left + right]
    ids = [m.id for m in merged]
    assert len(set(ids)) == len(ids)
    again = add_messages(merged, [m.model_copy(update={"content": "x"}) for m in merged])
    assert [m.id for m in again] == ids and all(m.text == "x" for m in again)  # same ids: replaced, not added


def test_messages_round_trip_through_storage_as_the_same_types() -> None:
    msgs = add_messages(
        [],
        [
            SystemMessage("s"),
            HumanMessage([{"type": "text", "text": "multi"}, {"type": "image_url", "image_url": {"url": "x"}}]),
            AIMessage(
                "",
                tool_calls=[{"name": "f", "args": {"x": [1, 2]}, "id": "c", "type": "tool_call"}],
                usage_metadata={"input_tokens": 3, "output_tokens": 4, "total_tokens": 7},
            ),
            ToolMessage("ok", tool_call_id="c", status="error"),
        ],
    )
    text = dumps(msgs)
    assert '"cls":"tether.messages:AIMessage"' in text and "additional_kwargs" not in text  # stable, compact
    back = loads(text)
    assert back == msgs and [type(m) for m in back] == [type(m) for m in msgs]
    assert back[2].usage == {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7}


def test_messages_state_in_a_durable_graph(tmp_path: Path) -> None:
    class State(MessagesState):
        turns: Annotated[int, operator.add]

    def reply(state: State) -> dict[str, Any]:
        last = state["messages"][-1]
        return {"messages": [("ai", f"you said {last.text!r}")], "turns": 1}

    g = StateGraph(State)
    g.add_node(reply)
    g.add_edge(START, "reply")
    db = tmp_path / "chat.sqlite"
    config = {"configurable": {"thread_id": "c"}}
    with SqliteSaver.from_conn_string(db) as saver:
        app = g.compile(checkpointer=saver)
        app.invoke({"messages": [("user", "one")]}, config)
        app.invoke({"messages": [{"role": "user", "content": "two"}]}, config)
    with SqliteSaver.from_conn_string(db) as saver:  # a new process would see the same
        state = g.compile(checkpointer=saver).get_state(config)
    assert [m.text for m in state.values["messages"]] == ["one", "you said 'one'", "two", "you said 'two'"]
    assert [type(m).__name__ for m in state.values["messages"]] == ["HumanMessage", "AIMessage"] * 2
    assert state.values["turns"] == 2

    from typer.testing import CliRunner

    from tether.cli import app as cli

    shown = CliRunner().invoke(cli, ["show", str(db), "c", "--json"])
    assert shown.exit_code == 0 and "you said 'two'" in shown.output  # rebuilt without the graph


def test_trim_with_a_real_tokenizer_and_partial_messages() -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    from tether.messages import count_tokens_approximately, tokenizer_counter, trim_messages

    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    corpus = ["the durable thread resumes where it stopped", "a person approves the draft"] * 20
    tokenizer.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=200, special_tokens=["[UNK]"]))
    count = tokenizer_counter(tokenizer, per_message=0)
    chat = [("human", "the durable thread"), ("ai", "resumes where it stopped"), ("human", "a person approves")]
    assert count(convert_to_messages(chat)) == 3 + 4 + 3
    assert [m.text for m in trim_messages(chat, max_tokens=7, token_counter=count)] == [
        "resumes where it stopped",
        "a person approves",
    ]
    long = [("human", "line one\nline two\nline three"), ("ai", "ok")]
    words = lambda ms: sum(len(m.text.split()) for m in ms)  # noqa: E731
    partial = trim_messages(long, max_tokens=5, token_counter=words, allow_partial=True)
    assert [m.text for m in partial] == ["line two\nline three", "ok"]
    assert count_tokens_approximately(convert_to_messages(chat)) > 0


def test_ids_given_to_id_less_messages_are_stored_so_every_read_agrees(tmp_path: Path) -> None:
    g = StateGraph(MessagesState)
    g.add_node("echo", lambda s: {"messages": [("ai", "echo: " + s["messages"][-1].text)]})
    g.add_edge(START, "echo")
    config = {"configurable": {"thread_id": "ids"}}
    with SqliteSaver.from_conn_string(tmp_path / "ids.sqlite") as saver:
        g.compile(checkpointer=saver).invoke({"messages": [("user", "hi")]}, config)
    reads = []
    for _ in range(2):  # fresh savers and graphs: every read rebuilds from the log
        with SqliteSaver.from_conn_string(tmp_path / "ids.sqlite") as saver:
            reads.append([m.id for m in g.compile(checkpointer=saver).get_state(config).values["messages"]])
    assert reads[0] == reads[1] and all(reads[0])
    with SqliteSaver.from_conn_string(tmp_path / "ids.sqlite") as saver:
        app = g.compile(checkpointer=saver)
        app.update_state(config, {"messages": [RemoveMessage(id=reads[0][0])]}, as_node="echo")
        assert [m.text for m in app.get_state(config).values["messages"]] == ["echo: hi"]
