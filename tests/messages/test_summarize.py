"""Summarising memory: the boundary, what is kept, tool pairs kept together, history keeps the originals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tether import END, START, MessagesState, SqliteSaver, StateGraph
from tether.messages import (
    REMOVE_ALL_MESSAGES,
    AIMessage,
    BaseMessage,
    HumanMessage,
    RemoveMessage,
    SummarizationNode,
    SystemMessage,
    ToolMessage,
    add_messages,
    is_summary,
    summarize_messages,
)
from tether.models import ScriptedChatModel


def one_per_message(messages: list[BaseMessage]) -> int:
    return len(messages)


def conversation(n: int) -> list[BaseMessage]:
    out: list[BaseMessage] = []
    for i in range(n):
        out.append(HumanMessage(content=f"q{i}", id=f"h{i}"))
        out.append(AIMessage(content=f"a{i}", id=f"a{i}"))
    return out


def summarize(messages: list[BaseMessage], model: Any, **kwargs: Any) -> list[Any]:
    return summarize_messages(messages, model, token_counter=one_per_message, **kwargs)


def test_nothing_happens_up_to_the_budget() -> None:
    model = ScriptedChatModel([])
    assert summarize(conversation(3), model, max_tokens=6, keep_last=2) == []
    assert model.calls == []  # not even asked


def test_past_the_budget_older_messages_become_one_summary() -> None:
    model = ScriptedChatModel(["they asked q0..q1"])
    update = summarize([*conversation(3), HumanMessage(content="q3", id="h3")], model, max_tokens=6, keep_last=3)
    assert update[0] == RemoveMessage(id=REMOVE_ALL_MESSAGES)
    summary, *kept = update[1:]
    assert is_summary(summary) and summary.text.endswith("they asked q0..q1")
    assert [m.id for m in kept] == ["h2", "a2", "h3"]
    transcript = model.calls[0][1].text
    assert transcript == "human: q0\nai: a0\nhuman: q1\nai: a1"
    merged = add_messages([*conversation(3), HumanMessage(content="q3", id="h3")], update)
    assert [m.text for m in merged][1:] == ["q2", "a2", "q3"]


def test_leading_system_message_is_kept_and_not_summarised() -> None:
    model = ScriptedChatModel(["s"])
    messages = [SystemMessage(content="rules", id="sys"), *conversation(4)]
    update = summarize(messages, model, max_tokens=5, keep_last=2)
    assert [m.id for m in update[1:2]] == ["sys"]
    assert is_summary(update[2])
    assert "rules" not in model.calls[0][1].text


def test_tool_results_are_never_separated_from_their_call() -> None:
    model = ScriptedChatModel(["s"], cycle=True)
    ai = AIMessage(
        content="", id="ai", tool_calls=[{"name": "f", "args": {}, "id": "1"}, {"name": "g", "args": {}, "id": "2"}]
    )
    messages = [
        HumanMessage(content="q", id="h"),
        ai,
        ToolMessage(content="r1", tool_call_id="1", id="t1"),
        ToolMessage(content="r2", tool_call_id="2", id="t2"),
        AIMessage(content="done", id="end"),
    ]
    for keep_last in (1, 2, 3):
        kept = summarize(messages, model, max_tokens=1, keep_last=keep_last)[2:]
        ids = [m.id for m in kept]
        assert ids[0] != "t1" and ids[0] != "t2", ids
        assert ("t1" in ids) == ("ai" in ids) == ("t2" in ids)
    kept = summarize(messages, model, max_tokens=1, keep_last=2)[2:]
    assert [m.id for m in kept] == ["ai", "t1", "t2", "end"]  # moved back to include the call
    assert "[called f({}), g({})]" not in model.calls[-1][1].text
    everything = summarize(messages, model, max_tokens=1, keep_last=0)
    assert "ai: [called f({}), g({})]" in model.calls[-1][1].text and everything[2:] == []


def test_an_earlier_summary_is_folded_into_the_next() -> None:
    model = ScriptedChatModel(["first summary", "second summary"])
    messages = conversation(3)
    messages = add_messages(messages, summarize(messages, model, max_tokens=4, keep_last=2))
    messages = add_messages(messages, [HumanMessage(content="q3", id="h3"), AIMessage(content="a3", id="a3")])
    messages = add_messages(messages, summarize(messages, model, max_tokens=4, keep_last=2))
    assert sum(is_summary(m) for m in messages) == 1
    assert messages[0].text.endswith("second summary")
    assert model.calls[1][1].text.startswith("(earlier summary) first summary\nhuman: q2")


def test_nothing_to_cut_returns_no_update() -> None:
    model = ScriptedChatModel([])
    assert summarize(conversation(2), model, max_tokens=1, keep_last=10) == []
    with pytest.raises(ValueError, match="max_tokens"):
        summarize(conversation(1), model, max_tokens=-1)


def chat_graph(chat_model: Any, summarizer: Any, **node_kwargs: Any) -> StateGraph:
    def chat(state: MessagesState) -> dict[str, Any]:
        return {"messages": [chat_model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("chat", chat)
    graph.add_node("summarize", SummarizationNode(summarizer, **node_kwargs))
    graph.add_edge(START, "chat")
    graph.add_edge("chat", "summarize")
    graph.add_edge("summarize", END)
    return graph


def test_in_a_graph_storage_stays_bounded_and_history_keeps_the_originals(tmp_path: Path) -> None:
    chat_model = ScriptedChatModel([lambda messages: f"reply {len(messages)}"], cycle=True)
    summarizer = ScriptedChatModel(
        [lambda messages: f"summary of {messages[1].text.count(chr(10)) + 1} lines"], cycle=True
    )
    graph = chat_graph(chat_model, summarizer, max_tokens=6, keep_last=2, token_counter=len)
    config = {"configurable": {"thread_id": "chat"}}
    with SqliteSaver.from_conn_string(tmp_path / "m.sqlite") as saver:
        app = graph.compile(checkpointer=saver)
        sizes = []
        for i in range(12):
            app.invoke({"messages": [("user", f"message {i}")]}, config)
            sizes.append(len(app.get_state(config).values["messages"]))
        assert max(sizes) <= 6  # never more than the budget after a turn
        assert max(len(call) for call in chat_model.calls) <= 7  # nor sent to the model
        final = app.get_state(config).values["messages"]
        assert is_summary(final[0]) and [m.text for m in final[-2:]] == ["message 11", final[-1].text]
        seen = {m.text for snap in app.get_state_history(config) for m in snap.values.get("messages", [])}
        assert {f"message {i}" for i in range(12)} <= seen  # every original is still in an earlier checkpoint
    with SqliteSaver.from_conn_string(tmp_path / "m.sqlite") as saver:  # and after reopening the file
        app = graph.compile(checkpointer=saver)
        assert [m.text for m in app.get_state(config).values["messages"]] == [m.text for m in final]


def test_node_returns_no_update_while_the_conversation_fits() -> None:
    node = SummarizationNode(ScriptedChatModel([]), max_tokens=1000)
    assert node({"messages": conversation(2)}) == {}
    assert node.__name__ == "summarize"
