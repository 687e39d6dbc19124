"""ToolNode: every call answered in order, errors as messages, calls run concurrently; tools_condition."""

from __future__ import annotations

import asyncio
import threading
from typing import Annotated, Any

import pytest

from tether import END, START, Command, InMemorySaver, MessagesState, StateGraph, interrupt
from tether.messages import AIMessage, HumanMessage, ToolMessage
from tether.models import ScriptedChatModel
from tether.tools import InjectedState, InjectedToolCallId, ToolException, ToolNode, tool, tools_condition


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def fail(reason: str) -> str:
    """Always fails."""
    raise ValueError(reason)


def calls(*items: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    ai = AIMessage(content="", tool_calls=[{"name": n, "args": a, "id": f"c{i}"} for i, (n, a) in enumerate(items)])
    return {"messages": [HumanMessage(content="go"), ai]}


def test_results_in_call_order_with_names_and_ids() -> None:
    out = ToolNode([add])(calls(("add", {"a": 1, "b": 2}), ("add", {"a": 10, "b": 20})))
    assert [(m.content, m.tool_call_id, m.name, m.status) for m in out["messages"]] == [
        ("3", "c0", "add", "success"),
        ("30", "c1", "add", "success"),
    ]


def test_unknown_tool_names_the_known_ones() -> None:
    (message,) = ToolNode([add, fail])(calls(("sub", {"a": 1})))["messages"]
    assert message.status == "error"
    assert message.content == "Error: sub is not a valid tool, try one of [add, fail]."


def test_bad_arguments_become_an_error_message_the_model_can_act_on() -> None:
    (message,) = ToolNode([add])(calls(("add", {"a": "one"})))["messages"]
    assert message.status == "error" and message.tool_call_id == "c0"
    assert "a: Input should be a valid integer" in message.content
    assert "b: Field required" in message.content


def test_by_default_bad_arguments_go_to_the_model_and_exceptions_stop_the_run() -> None:
    with pytest.raises(ValueError, match="disk full"):  # as in LangGraph
        ToolNode([fail])(calls(("fail", {"reason": "disk full"})))
    (bad,) = ToolNode([add])(calls(("add", {"a": "x", "b": 1})))["messages"]
    assert bad.status == "error" and "a" in bad.content
    (message,) = ToolNode([fail], handle_tool_errors=True)(calls(("fail", {"reason": "disk full"})))["messages"]
    assert message.status == "error"
    assert message.content == "Error: ValueError('disk full')\n Please fix your mistakes."


def test_handle_tool_errors_options() -> None:
    state = calls(("fail", {"reason": "x"}))
    with pytest.raises(ValueError, match="x"):
        ToolNode([fail], handle_tool_errors=False)(state)
    with pytest.raises(Exception, match="Field required"):
        ToolNode([add], handle_tool_errors=False)(calls(("add", {})))
    assert ToolNode([fail], handle_tool_errors="try again")(state)["messages"][0].content == "try again"
    custom = ToolNode([fail], handle_tool_errors=lambda e: f"custom: {e}")
    assert custom(state)["messages"][0].content == "custom: x"

    def only_keys(e: KeyError) -> str:
        return "key"

    with pytest.raises(ValueError):
        ToolNode([fail], handle_tool_errors=only_keys)(state)  # a ValueError is not a KeyError: it stops the run
    assert ToolNode([fail], handle_tool_errors=(ValueError,))(state)["messages"][0].status == "error"
    with pytest.raises(ValueError):
        ToolNode([fail], handle_tool_errors=KeyError)(state)


def test_tool_exception_message_reaches_the_model() -> None:
    @tool
    def picky(n: int) -> int:
        """Only even numbers."""
        if n % 2:
            raise ToolException(f"{n} is odd; pass an even number")
        return n

    with pytest.raises(ToolException, match="odd"):  # LangChain's default: the tool did not opt in
        ToolNode([picky])(calls(("picky", {"n": 3})))
    picky.handle_tool_error = True
    (message,) = ToolNode([picky])(calls(("picky", {"n": 3})))["messages"]
    assert message.status == "error" and message.content == "3 is odd; pass an even number"


def test_sync_tools_run_concurrently() -> None:
    # each tool waits until the other has started: run one after the other, the barrier breaks
    barrier = threading.Barrier(2, timeout=5)

    @tool
    def left() -> str:
        """Left."""
        barrier.wait()
        return "L"

    @tool
    def right() -> str:
        """Right."""
        barrier.wait()
        return "R"

    out = ToolNode([left, right])(calls(("right", {}), ("left", {})))
    assert [m.content for m in out["messages"]] == ["R", "L"]


def test_async_tools_run_concurrently_on_one_loop() -> None:
    events: dict[str, asyncio.Event] = {}
    order: list[str] = []

    async def meet(me: str, other: str) -> str:
        events.setdefault(me, asyncio.Event()).set()
        order.append(f"{me} started")
        await asyncio.wait_for(events.setdefault(other, asyncio.Event()).wait(), timeout=5)
        return me

    @tool
    async def ping() -> str:
        """Ping."""
        return await meet("ping", "pong")

    @tool
    async def pong() -> str:
        """Pong."""
        return await meet("pong", "ping")

    @tool
    def plain() -> str:
        """A sync tool among async ones."""
        return "plain"

    out = ToolNode([ping, pong, plain])(calls(("ping", {}), ("pong", {}), ("plain", {})))
    assert [m.content for m in out["messages"]] == ["ping", "pong", "plain"]
    assert order == ["ping started", "pong started"]


async def test_ainvoke_runs_calls_concurrently() -> None:
    started = asyncio.Event()

    @tool
    async def waiter() -> str:
        """Waits for the starter."""
        await asyncio.wait_for(started.wait(), timeout=5)
        return "waited"

    @tool
    async def starter() -> str:
        """Starts."""
        started.set()
        return "started"

    out = await ToolNode([waiter, starter]).ainvoke(calls(("waiter", {}), ("starter", {})))
    assert [m.content for m in out["messages"]] == ["waited", "started"]


def test_answered_calls_are_not_run_again() -> None:
    state = calls(("add", {"a": 1, "b": 1}), ("add", {"a": 2, "b": 2}))
    state["messages"].append(ToolMessage(content="rejected", tool_call_id="c0", name="add", status="error"))
    out = ToolNode([add])(state)
    assert [(m.tool_call_id, m.content) for m in out["messages"]] == [("c1", "4")]


def test_list_input_and_missing_messages() -> None:
    out = ToolNode([add])(calls(("add", {"a": 1, "b": 1}))["messages"])
    assert isinstance(out, list) and out[0].content == "2"
    with pytest.raises(ValueError, match="no AIMessage"):
        ToolNode([add])({"messages": [HumanMessage(content="hi")]})
    with pytest.raises(ValueError, match="no messages"):
        ToolNode([add])({"messages": []})
    with pytest.raises(ValueError, match="unique"):
        ToolNode([add, add])


def test_injected_state() -> None:
    @tool
    def count_messages(prefix: str, messages: Annotated[list[Any], InjectedState("messages")]) -> str:
        """Count the conversation's messages."""
        return f"{prefix}{len(messages)}"

    assert list(count_messages.json_schema()["parameters"]["properties"]) == ["prefix"]
    (message,) = ToolNode([count_messages])(calls(("count_messages", {"prefix": "n="})))["messages"]
    assert message.content == "n=2"


def test_tools_condition() -> None:
    with_calls = calls(("add", {"a": 1, "b": 2}))
    assert tools_condition(with_calls) == "tools"
    assert tools_condition(with_calls["messages"]) == "tools"
    assert tools_condition({"messages": [AIMessage(content="done")]}) == END
    assert tools_condition({"history": with_calls["messages"]}, messages_key="history") == "tools"
    with pytest.raises(ValueError, match="no messages"):
        tools_condition({"messages": []})


def agent_graph(model: Any, tools: list[Any], **compile_kwargs: Any) -> Any:
    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode(tools))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile(**compile_kwargs)


def test_in_a_graph_with_tools_condition() -> None:
    model = ScriptedChatModel(
        [{"content": "", "tool_calls": [{"name": "add", "args": {"a": 2, "b": 2}, "id": "x"}]}, "it is 4"]
    )
    out = agent_graph(model, [add]).invoke({"messages": [("user", "2+2?")]})
    assert [(m.type, m.text) for m in out["messages"]] == [
        ("human", "2+2?"),
        ("ai", ""),
        ("tool", "4"),
        ("ai", "it is 4"),
    ]


async def test_async_tools_in_a_graph_run_with_ainvoke() -> None:
    @tool
    async def shout(text: str) -> str:
        """Shout."""
        await asyncio.sleep(0)
        return text.upper()

    model = ScriptedChatModel(
        [{"content": "", "tool_calls": [{"name": "shout", "args": {"text": "hi"}, "id": "s"}]}, "ok"]
    )
    out = await agent_graph(model, [shout]).ainvoke({"messages": [("user", "shout hi")]})
    assert out["messages"][2].content == "HI"


def test_interrupt_inside_a_tool_pauses_and_resumes() -> None:
    @tool
    def delete_file(path: str) -> str:
        """Delete a file, after asking a person."""
        answer = interrupt({"confirm": path})
        return f"deleted {path}" if answer == "yes" else f"kept {path}"

    model = ScriptedChatModel(
        [{"content": "", "tool_calls": [{"name": "delete_file", "args": {"path": "a.txt"}, "id": "d"}]}, "done"]
    )
    app = agent_graph(model, [delete_file], checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t"}}
    paused = app.invoke({"messages": [("user", "delete a.txt")]}, config)
    assert paused["__interrupt__"][0].value == {"confirm": "a.txt"}
    out = app.invoke(Command(resume="yes"), config)
    assert [m.text for m in out["messages"]][-2:] == ["deleted a.txt", "done"]


def test_a_tool_may_return_a_command() -> None:
    class State(MessagesState):
        user: str

    @tool
    def remember(name: str, call_id: Annotated[str, InjectedToolCallId]) -> Command[Any]:
        """Remember the user's name."""
        return Command(update={"user": name, "messages": [ToolMessage(content="noted", tool_call_id=call_id)]})

    model = ScriptedChatModel(
        [{"content": "", "tool_calls": [{"name": "remember", "args": {"name": "Ada"}, "id": "r"}]}, "hi Ada"]
    )

    def agent(state: State) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(State)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode([remember]))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    out = graph.compile().invoke({"messages": [("user", "I am Ada")], "user": ""})
    assert out["user"] == "Ada"
    assert [m.text for m in out["messages"]][-2:] == ["noted", "hi Ada"]


def test_max_concurrency_caps_the_threads() -> None:
    running: list[int] = []
    peak: list[int] = []
    lock = threading.Lock()

    @tool
    def work(n: int) -> int:
        """Work a little."""
        with lock:
            running.append(n)
            peak.append(len(running))
        threading.Event().wait(0.01)
        with lock:
            running.remove(n)
        return n

    state = calls(*[("work", {"n": i}) for i in range(6)])
    out = ToolNode([work], max_concurrency=1)(state)
    assert [m.content for m in out["messages"]] == [str(i) for i in range(6)] and max(peak) == 1
    peak.clear()
    ToolNode([work])(state, {"max_concurrency": 2})
    assert max(peak) <= 2
