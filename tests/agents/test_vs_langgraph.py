"""create_react_agent on Tether and on LangGraph, driven by the same scripted replies, say the same things.

LangGraph runs with langchain-core messages and its fake chat model; Tether with its own
messages and ScriptedChatModel. What is compared: every message's type, text and tool calls,
and where each run stops for a person.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from langchain_core import messages as lc
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.tools import tool as lc_tool
from langgraph.checkpoint.memory import InMemorySaver as LGInMemorySaver

from tether import InMemorySaver
from tether import messages as tm
from tether.agents import create_react_agent
from tether.models import ScriptedChatModel
from tether.tools import tool


class FakeToolModel(FakeMessagesListChatModel):
    """LangChain's list-of-replies fake, willing to be offered tools (it ignores them)."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self


def lg_create_react_agent(*args: Any, **kwargs: Any) -> Any:
    from langgraph.prebuilt import create_react_agent as lg_create

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated in favour of langchain.agents, which is not installed
        return lg_create(*args, **kwargs)


def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def city_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def reply(content: str, *calls: tuple[str, dict[str, Any], str]) -> dict[str, Any]:
    return {"content": content, "tool_calls": [{"name": n, "args": a, "id": i} for n, a, i in calls]}


SCRIPTS = {
    "one call": [reply("", ("multiply", {"a": 6, "b": 7}, "c1")), reply("42")],
    "parallel calls": [
        reply("let me check", ("multiply", {"a": 2, "b": 3}, "c1"), ("city_weather", {"city": "Oslo"}, "c2")),
        reply("6, and sunny"),
    ],
    "two rounds": [
        reply("", ("multiply", {"a": 2, "b": 2}, "c1")),
        reply("", ("multiply", {"a": 4, "b": 4}, "c2")),
        reply("16"),
    ],
    "bad arguments then retry": [
        reply("", ("multiply", {"a": "two", "b": 3}, "c1")),
        reply("", ("multiply", {"a": 2, "b": 3}, "c2")),
        reply("6"),
    ],
    "unknown tool": [reply("", ("divide", {"a": 1}, "c1")), reply("no such tool")],
    "no tools needed": [reply("hello")],
}


def lg_agent(script: list[dict[str, Any]], **kwargs: Any) -> Any:
    model = FakeToolModel(responses=[lc.AIMessage(content=r["content"], tool_calls=r["tool_calls"]) for r in script])
    return lg_create_react_agent(model, [lc_tool(multiply), lc_tool(city_weather)], **kwargs)


def tt_agent(script: list[dict[str, Any]], **kwargs: Any) -> Any:
    return create_react_agent(ScriptedChatModel(script), [tool(multiply), tool(city_weather)], **kwargs)


def observe(messages: list[Any]) -> list[tuple[Any, ...]]:
    out = []
    for m in messages:
        text = m.content if isinstance(m.content, str) else str(m.content)
        if m.type == "tool" and m.status == "error":
            text = text.splitlines()[0]  # validation wording: same first line (Tether adds the bad input)
        calls = [(c["name"], c["args"], c["id"]) for c in getattr(m, "tool_calls", [])]
        out.append((m.type, text, calls, getattr(m, "status", None)))
    return out


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_same_conversation(name: str) -> None:
    script = SCRIPTS[name]
    question = {"messages": [("user", "what is it?")]}
    expected = lg_agent(script, prompt="Be brief.").invoke(question)
    got = tt_agent(script, prompt="Be brief.").invoke(question)
    assert observe(got["messages"]) == observe(expected["messages"])


def run_with_approval(agent: Any, lib: Any, decisions: list[str]) -> list[Any]:
    """Stop before tools; approve, or reject every pending call with a ToolMessage; record each stop."""
    config = {"configurable": {"thread_id": "t"}}
    agent.invoke({"messages": [("user", "go")]}, config)
    stops = []
    for decision in decisions:
        state = agent.get_state(config)
        stops.append(tuple(state.next))
        if not state.next:
            break
        if decision == "reject":
            last = state.values["messages"][-1]
            rejections = [
                lib.ToolMessage(content="rejected by a person", tool_call_id=c["id"], name=c["name"], status="error")
                for c in last.tool_calls
            ]
            agent.update_state(config, {"messages": rejections}, as_node="tools")
            stops.append(tuple(agent.get_state(config).next))
        agent.invoke(None, config)
    final = agent.get_state(config)
    return [*stops, tuple(final.next), observe(final.values["messages"])]


@pytest.mark.parametrize(
    ("script", "decisions"),
    [
        ("two rounds", ["approve", "approve", "approve"]),
        ("two rounds", ["reject", "approve"]),
        ("parallel calls", ["reject", "approve"]),
        ("two rounds", ["approve", "reject", "approve"]),
    ],
)
def test_same_approval_flow(script: str, decisions: list[str]) -> None:
    lines = SCRIPTS[script] if "reject" not in decisions else [*SCRIPTS[script][:1], reply("understood"), reply("x")]
    if decisions == ["approve", "reject", "approve"]:
        lines = [*SCRIPTS[script][:2], reply("fine, stopping")]
    # version="v1": one tools task per reply, as Tether runs it (v2 sends one task per call, so with
    # parallel calls LangGraph's `next` reads ("tools", "tools") where Tether's reads ("tools",))
    expected = run_with_approval(
        lg_agent(lines, checkpointer=LGInMemorySaver(), interrupt_before=["tools"], version="v1"), lc, decisions
    )
    got = run_with_approval(tt_agent(lines, checkpointer=InMemorySaver(), interrupt_before=["tools"]), tm, decisions)
    assert got == expected


def test_parallel_calls_are_one_task_where_langgraph_v2_sends_one_per_call() -> None:
    lines = [*SCRIPTS["parallel calls"][:1], reply("ok")]
    config = {"configurable": {"thread_id": "t"}}
    lg = lg_agent(lines, checkpointer=LGInMemorySaver(), interrupt_before=["tools"])
    tt = tt_agent(lines, checkpointer=InMemorySaver(), interrupt_before=["tools"])
    for agent in (lg, tt):
        agent.invoke({"messages": [("user", "go")]}, config)
    assert lg.get_state(config).next == ("tools", "tools")
    assert tt.get_state(config).next == ("tools",)
    lg.invoke(None, config)
    tt.invoke(None, config)
    assert observe(tt.get_state(config).values["messages"]) == observe(lg.get_state(config).values["messages"])


def test_same_stop_after_the_agent() -> None:
    script = SCRIPTS["one call"]
    config = {"configurable": {"thread_id": "t"}}
    results = []
    for agent in (
        lg_agent(script, checkpointer=LGInMemorySaver(), interrupt_after=["agent"]),
        tt_agent(script, checkpointer=InMemorySaver(), interrupt_after=["agent"]),
    ):
        agent.invoke({"messages": [("user", "go")]}, config)
        first = tuple(agent.get_state(config).next)
        agent.invoke(None, config)
        second = tuple(agent.get_state(config).next)
        agent.invoke(None, config)
        results.append((first, second, observe(agent.get_state(config).values["messages"])))
    assert results[0] == results[1]
