"""Finding people's decisions in real threads: edits, approvals and rejections, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from tests.tune.people import Store, chat_graph, config, store
from tether import Command
from tether.agents import create_react_agent, pending_tool_calls
from tether.graph._offline import read_state
from tether.messages import AIMessage, HumanMessage, RemoveMessage, ToolMessage
from tether.models import ScriptedChatModel
from tether.tools import tool
from tether.tune.decisions import Answer, find_decisions, parse_answer, thread_decisions

__all__ = ["store"]  # the fixture, shared with the other tune tests


def test_update_state_edit_is_a_pair(store: Store) -> None:
    app = chat_graph(with_review=False).compile(checkpointer=store.saver)
    app.invoke({"messages": [("user", "What is the capital of France?")]}, config("t"))
    reply = app.get_state(config("t")).values["messages"][-1]
    edited = AIMessage(content="Paris.", id=reply.id)
    after = app.update_state(config("t", rater="alice"), {"messages": [edited]})

    (decision,) = find_decisions(store.saver)
    assert decision.kind == "edit" and decision.origin == "update_state"
    assert decision.output.text == "Answer: What is the capital of France?"
    assert decision.edited is not None and decision.edited.text == "Paris."
    assert [m.text for m in decision.prompt] == ["What is the capital of France?"]
    assert decision.rater == "alice" and not decision.machine
    assert decision.checkpoint_id == after["configurable"]["checkpoint_id"]
    assert decision.thread_id == "t" and decision.message_id == reply.id


def test_unchanged_update_and_human_messages_are_not_decisions(store: Store) -> None:
    app = chat_graph(with_review=False).compile(checkpointer=store.saver)
    app.invoke({"messages": [("user", "hi")]}, config("t"))
    human, reply = app.get_state(config("t")).values["messages"]
    app.update_state(config("t"), {"messages": [AIMessage(content=reply.text, id=reply.id)]})  # same text
    app.update_state(config("t"), {"messages": [HumanMessage(content="hello", id=human.id)]})  # not a reply
    assert find_decisions(store.saver) == []


@pytest.mark.parametrize("answer", [True, "approve", "yes", {"action": "approve"}, {"type": "accept"}])
def test_interrupt_approval_is_a_supervised_example(store: Store, answer: Any) -> None:
    app = chat_graph().compile(checkpointer=store.saver)
    app.invoke({"messages": [("user", "Say hi")]}, config("t"))
    app.invoke(Command(resume=answer), config("t", rater="bob"))

    (decision,) = find_decisions(store.saver)
    assert decision.kind == "approval" and decision.origin == "interrupt"
    assert decision.output.text == "Answer: Say hi" and decision.rater == "bob"
    # the decision points at the step that answered the interrupt; the reply is there, unchanged
    state = read_state(store.saver, "t", decision.checkpoint_id)
    assert state.values["messages"][-1].id == decision.message_id


def test_interrupt_rejection_keeps_its_reason(store: Store) -> None:
    app = chat_graph().compile(checkpointer=store.saver)
    app.invoke({"messages": [("user", "Say hi")]}, config("t"))
    app.invoke(Command(resume={"action": "reject", "reason": "too curt", "rater": "carol"}), config("t"))

    (decision,) = find_decisions(store.saver)  # the node's RemoveMessage and the answer are one decision
    assert decision.kind == "rejection" and decision.origin == "interrupt"
    assert decision.reason == "too curt" and decision.rater == "carol"
    assert decision.output.text == "Answer: Say hi"


def test_interrupt_edit_written_back_by_the_node_is_one_edit(store: Store) -> None:
    app = chat_graph().compile(checkpointer=store.saver)
    app.invoke({"messages": [("user", "Say hi")]}, config("t"))
    app.invoke(Command(resume="edit:Hello there!"), config("t"))

    (decision,) = find_decisions(store.saver)
    assert decision.kind == "edit" and decision.origin == "interrupt"
    assert decision.edited is not None and decision.edited.text == "Hello there!"
    assert decision.rater == "anonymous"


def test_an_answer_that_is_no_verdict_is_no_decision(store: Store) -> None:
    app = chat_graph().compile(checkpointer=store.saver)
    app.invoke({"messages": [("user", "Say hi")]}, config("t"))
    app.invoke(Command(resume="Paris"), config("t"))
    assert find_decisions(store.saver) == []


def test_remove_and_replace_in_one_update_is_an_edit_remove_alone_a_rejection(store: Store) -> None:
    app = chat_graph(with_review=False).compile(checkpointer=store.saver)
    for thread in ("a", "b"):
        app.invoke({"messages": [("user", "Tell me a joke")]}, config(thread))
    reply_a = app.get_state(config("a")).values["messages"][-1]
    app.update_state(config("a"), {"messages": [RemoveMessage(reply_a.id), AIMessage(content="A pun.")]})
    reply_b = app.get_state(config("b")).values["messages"][-1]
    app.update_state(config("b", rater="dan"), {"messages": [RemoveMessage(reply_b.id)]})

    a, b = find_decisions(store.saver)
    assert a.kind == "edit" and a.edited is not None and a.edited.text == "A pun." and a.output.id == reply_a.id
    assert b.kind == "rejection" and b.reason is None and b.rater == "dan"


def test_forked_branches_are_all_read(store: Store) -> None:
    app = chat_graph(with_review=False).compile(checkpointer=store.saver)
    app.invoke({"messages": [("user", "one")]}, config("t"))
    first = app.get_state(config("t"))
    app.invoke({"messages": [("user", "two")]}, config("t"))
    second = app.get_state(config("t"))
    # a person goes back to the first answer and corrects it: a fork from an older checkpoint
    old = first.values["messages"][-1]
    app.update_state(first.config, {"messages": [AIMessage(content="One!", id=old.id)]})
    # and corrects the second answer on the original branch too
    newest = second.values["messages"][-1]
    app.update_state(second.config, {"messages": [AIMessage(content="Two!", id=newest.id)]})

    decisions = thread_decisions(store.saver, "t")
    assert sorted(d.edited.text for d in decisions if d.edited) == ["One!", "Two!"]
    two = next(d for d in decisions if d.edited and d.edited.text == "Two!")
    assert [m.text for m in two.prompt] == ["one", "Answer: one", "two"]


@tool
def calculator(expression: str) -> str:
    """Evaluate arithmetic.

    Args:
        expression: numbers and + - * /.
    """
    return str(eval(expression, {"__builtins__": {}}))  # test input only


def agent(saver: Any) -> Any:
    def reply(messages: list[Any]) -> dict[str, Any]:
        if isinstance(messages[-1], ToolMessage):
            return {"content": f"The result is {messages[-1].text}."}
        return {"content": "", "tool_calls": [{"name": "calculator", "args": {"expression": "6*7"}}]}

    model = ScriptedChatModel([reply], cycle=True)
    return create_react_agent(model, [calculator], checkpointer=saver, interrupt_before=["tools"])


def test_agent_breakpoint_approve_reject_and_edit_tool_calls(store: Store) -> None:
    app = agent(store.saver)
    # approve: the run goes on from the breakpoint with nothing changed
    app.invoke({"messages": [("user", "what is 6*7?")]}, config("approve"))
    app.invoke(None, config("approve", rater="erin"))
    # reject: the call is answered with an error ToolMessage, as docs/agents.md shows
    app.invoke({"messages": [("user", "what is 6*7?")]}, config("reject"))
    (call,) = pending_tool_calls(app.get_state(config("reject")).values["messages"])
    rejection = ToolMessage(content="not now", tool_call_id=call["id"], name="calculator", status="error")
    app.update_state(config("reject", rater="erin"), {"messages": [rejection]}, as_node="tools")
    app.invoke(None, config("reject"))
    # edit: the request is replaced by id with other arguments
    app.invoke({"messages": [("user", "what is 6*7?")]}, config("edit"))
    request = app.get_state(config("edit")).values["messages"][-1]
    calls = [{**request.tool_calls[0], "args": {"expression": "6*8"}}]
    edited = AIMessage(content="", tool_calls=calls, id=request.id)
    app.update_state(config("edit", rater="erin"), {"messages": [edited]}, as_node="agent")
    app.invoke(None, config("edit"))

    found = {d.thread_id: d for d in find_decisions(store.saver, breakpoints=["tools"])}
    assert found["approve"].kind == "approval" and found["approve"].origin == "breakpoint"
    assert found["approve"].output.tool_calls[0]["args"] == {"expression": "6*7"}
    assert found["reject"].kind == "rejection" and found["reject"].reason == "not now"
    assert found["edit"].kind == "edit" and found["edit"].edited is not None
    assert found["edit"].edited.tool_calls[0]["args"] == {"expression": "6*8"}
    assert {d.rater for d in found.values()} == {"erin"}
    # without naming the breakpoint, running on is not known to be an approval
    assert [d.thread_id for d in find_decisions(store.saver)] == ["edit", "reject"]


def test_machine_raters_are_marked(store: Store) -> None:
    app = chat_graph(with_review=False).compile(checkpointer=store.saver)
    app.invoke({"messages": [("user", "hi")]}, config("t"))
    reply = app.get_state(config("t")).values["messages"][-1]
    app.update_state(config("t", rater="model:judge"), {"messages": [AIMessage(content="Hi!", id=reply.id)]})
    (decision,) = find_decisions(store.saver)
    assert decision.machine and decision.rater == "model:judge"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, Answer(action="approve")),
        (False, Answer(action="reject")),
        ("  Approve ", Answer(action="approve")),
        ("reject: wrong tone", Answer(action="reject", reason="wrong tone")),
        ("edit: Better text", Answer(action="edit", text="Better text")),
        ({"action": "edit", "text": "x", "rater": "al"}, Answer(action="edit", text="x", rater="al")),
        ({"type": "response", "args": "shorter please"}, Answer(action="reject", reason="shorter please")),
        ({"type": "ignore"}, Answer(action="reject")),
        ("Paris", None),
        ("approve: but why", None),
        ({"action": "edit"}, None),
        (42, None),
    ],
)
def test_parse_answer(value: Any, expected: Answer | None) -> None:
    assert parse_answer(value) == expected
