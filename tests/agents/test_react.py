"""create_react_agent: the tool loop, memory per thread on SQLite, approval before tools."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from tether import InMemorySaver, SqliteSaver
from tether.agents import AgentState, create_react_agent, pending_tool_calls
from tether.messages import AIMessage, HumanMessage, RemoveMessage, SummarizationNode, SystemMessage, ToolMessage
from tether.models import ScriptedChatModel
from tether.prompts import ChatPromptTemplate
from tether.tools import tool


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def call(name: str, args: dict[str, Any], id: str) -> dict[str, Any]:
    return {"name": name, "args": args, "id": id}


def ask(*calls: dict[str, Any], content: str = "") -> dict[str, Any]:
    return {"content": content, "tool_calls": list(calls)}


def thread(tid: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": tid}}


def seq(messages: list[Any]) -> list[tuple[str, str, list[tuple[str, dict[str, Any]]]]]:
    return [(m.type, m.text, [(c["name"], c["args"]) for c in getattr(m, "tool_calls", [])]) for m in messages]


def test_loop_until_the_model_answers() -> None:
    model = ScriptedChatModel([ask(call("add", {"a": 2, "b": 3}, "1"), call("weather", {"city": "Oslo"}, "2")), "5"])
    agent = create_react_agent(model, [add, weather], prompt="You are terse.")
    out = agent.invoke({"messages": [("user", "2+3 and the weather?")]})
    assert seq(out["messages"]) == [
        ("human", "2+3 and the weather?", []),
        ("ai", "", [("add", {"a": 2, "b": 3}), ("weather", {"city": "Oslo"})]),
        ("tool", "5", []),
        ("tool", "sunny in Oslo", []),
        ("ai", "5", []),
    ]
    first, second = model.calls
    assert isinstance(first[0], SystemMessage) and first[0].text == "You are terse."
    assert [m.type for m in second] == ["system", "human", "ai", "tool", "tool"]
    offered = [t["function"]["name"] for t in model.seen_options[0].tools]
    assert offered == ["add", "weather"]


def test_prompt_as_function_and_template() -> None:
    model = ScriptedChatModel(["a", "b"])
    by_function = create_react_agent(model, [add], prompt=lambda state: [("system", "S"), *state["messages"][-1:]])
    by_function.invoke({"messages": [("user", "one"), ("user", "two")]})
    assert [m.text for m in model.calls[0]] == ["S", "two"]
    template = ChatPromptTemplate.from_messages([("system", "Be {tone}."), ("placeholder", "{messages}")])
    by_template = create_react_agent(model, [add], prompt=template.partial(tone="kind"))
    by_template.invoke({"messages": [("user", "hi")]})
    assert [m.text for m in model.calls[1]] == ["Be kind.", "hi"]


def test_no_tools_is_a_plain_chat() -> None:
    model = ScriptedChatModel(["hello"])
    out = create_react_agent(model, []).invoke({"messages": [("user", "hi")]})
    assert seq(out["messages"])[-1] == ("ai", "hello", [])
    assert model.seen_options[0].tools == ()


def test_memory_per_thread_on_sqlite_across_a_fresh_compile(tmp_path: Path) -> None:
    db = tmp_path / "agent.sqlite"
    with SqliteSaver.from_conn_string(db) as saver:
        model = ScriptedChatModel([ask(call("add", {"a": 1, "b": 1}, "x")), "2", "hello other"])
        agent = create_react_agent(model, [add], checkpointer=saver)
        agent.invoke({"messages": [("user", "1+1?")]}, thread("a"))
        agent.invoke({"messages": [("user", "hi")]}, thread("b"))
    with SqliteSaver.from_conn_string(db) as saver:  # a new process, in effect: new connection, new graph
        model = ScriptedChatModel(["you asked 1+1"])
        agent = create_react_agent(model, [add], checkpointer=saver)
        out = agent.invoke({"messages": [("user", "what did I ask?")]}, thread("a"))
        assert [m.text for m in model.calls[0]] == ["1+1?", "", "2", "2", "what did I ask?"]
        assert out["messages"][-1].text == "you asked 1+1"
        other = agent.get_state(thread("b")).values["messages"]
        assert [m.text for m in other] == ["hi", "hello other"]  # threads never mix


def approval_agent(model: Any, saver: Any = None) -> Any:
    return create_react_agent(model, [add, weather], checkpointer=saver or InMemorySaver(), interrupt_before=["tools"])


def test_interrupt_before_tools_then_approve() -> None:
    model = ScriptedChatModel([ask(call("add", {"a": 20, "b": 22}, "c1")), "42"])
    agent = approval_agent(model)
    config = thread("t")
    agent.invoke({"messages": [("user", "20+22?")]}, config)
    state = agent.get_state(config)
    assert state.next == ("tools",)
    assert [c["name"] for c in pending_tool_calls(state.values["messages"])] == ["add"]
    out = agent.invoke(None, config)  # approve: run on
    assert [m.text for m in out["messages"]][-2:] == ["42", "42"]
    assert agent.get_state(config).next == ()


def test_reject_with_a_tool_message() -> None:
    model = ScriptedChatModel([ask(call("weather", {"city": "Oslo"}, "w1")), "ok, I will not look"])
    agent = approval_agent(model)
    config = thread("t")
    agent.invoke({"messages": [("user", "weather?")]}, config)
    rejection = ToolMessage(content="rejected: not now", tool_call_id="w1", name="weather", status="error")
    agent.update_state(config, {"messages": [rejection]}, as_node="tools")
    assert agent.get_state(config).next == ("agent",)
    out = agent.invoke(None, config)
    assert seq(out["messages"])[-2:] == [("tool", "rejected: not now", []), ("ai", "ok, I will not look", [])]
    assert model.calls[-1][-1].text == "rejected: not now"  # the model read the reason


def test_partial_rejection_runs_only_the_approved_calls() -> None:
    model = ScriptedChatModel([ask(call("add", {"a": 1, "b": 2}, "a1"), call("weather", {"city": "Rome"}, "w1")), "3"])
    agent = approval_agent(model)
    config = thread("t")
    agent.invoke({"messages": [("user", "both")]}, config)
    rejection = ToolMessage(content="no weather", tool_call_id="w1", name="weather", status="error")
    agent.update_state(config, {"messages": [rejection]}, as_node="tools")
    assert agent.get_state(config).next == ("tools",)  # the approved call is still to run
    out = agent.invoke(None, config)
    tools = [(m.tool_call_id, m.text) for m in out["messages"] if isinstance(m, ToolMessage)]
    assert tools == [("w1", "no weather"), ("a1", "3")]
    assert out["messages"][-1].text == "3"


def test_edit_a_tool_call_before_it_runs() -> None:
    model = ScriptedChatModel([ask(call("add", {"a": 1, "b": 1}, "e1")), "done"])
    agent = approval_agent(model)
    config = thread("t")
    agent.invoke({"messages": [("user", "add")]}, config)
    last = agent.get_state(config).values["messages"][-1]
    edited = AIMessage(id=last.id, content="", tool_calls=[call("add", {"a": 100, "b": 1}, "e1")])
    agent.update_state(config, {"messages": [edited]}, as_node="agent")  # same id: replaces the request
    assert agent.get_state(config).next == ("tools",)
    out = agent.invoke(None, config)
    assert [m.text for m in out["messages"] if isinstance(m, ToolMessage)] == ["101"]
    requests = [m.tool_calls for m in out["messages"] if isinstance(m, AIMessage) and m.tool_calls]
    assert [[(c["name"], c["args"]) for c in calls] for calls in requests] == [[("add", {"a": 100, "b": 1})]]


def test_approval_survives_a_new_process(tmp_path: Path) -> None:
    db = tmp_path / "approve.sqlite"
    with SqliteSaver.from_conn_string(db) as saver:
        approval_agent(ScriptedChatModel([ask(call("add", {"a": 2, "b": 2}, "k"))]), saver).invoke(
            {"messages": [("user", "2+2")]}, thread("p")
        )
    with SqliteSaver.from_conn_string(db) as saver:
        agent = approval_agent(ScriptedChatModel(["four"]), saver)
        assert agent.get_state(thread("p")).next == ("tools",)
        out = agent.invoke(None, thread("p"))
        assert [m.text for m in out["messages"]][-2:] == ["4", "four"]


def test_unanswered_tool_calls_are_refused_before_calling_the_model() -> None:
    model = ScriptedChatModel(["never"])
    agent = create_react_agent(model, [add])
    dangling = AIMessage(content="", tool_calls=[call("add", {"a": 1, "b": 1}, "d1")])
    with pytest.raises(ValueError, match=r"without a ToolMessage.*add\(id='d1'\)"):
        agent.invoke({"messages": [("user", "x"), dangling, ("user", "y")]})
    assert model.calls == []


def test_missing_tool_call_ids_are_filled_in() -> None:
    model = ScriptedChatModel([{"content": "", "tool_calls": [{"name": "add", "args": {"a": 1, "b": 2}}]}, "3"])
    out = create_react_agent(model, [add]).invoke({"messages": [("user", "1+2")]})
    ai, result = out["messages"][1], out["messages"][2]
    assert ai.tool_calls[0]["id"].startswith("call_") and result.tool_call_id == ai.tool_calls[0]["id"]


def test_return_direct_ends_after_the_tool() -> None:
    @tool(return_direct=True)
    def final_answer(text: str) -> str:
        """Answer the user directly."""
        return text

    model = ScriptedChatModel([ask(call("final_answer", {"text": "bye"}, "f"))])
    out = create_react_agent(model, [final_answer]).invoke({"messages": [("user", "go")]})
    assert out["messages"][-1].text == "bye" and len(model.calls) == 1


class Answer(BaseModel):
    city: str
    temperature: int


def test_response_format_gives_a_structured_response() -> None:
    model = ScriptedChatModel(
        [
            ask(call("weather", {"city": "Oslo"}, "w")),
            "It is sunny.",
            ask(call("Answer", {"city": "Oslo", "temperature": 21}, "s")),
        ]
    )
    out = create_react_agent(model, [weather], response_format=("Fill the form.", Answer)).invoke(
        {"messages": [("user", "weather in Oslo?")]}
    )
    assert out["structured_response"] == Answer(city="Oslo", temperature=21)
    assert model.calls[-1][0].text == "Fill the form."
    assert model.seen_options[-1].tools[0]["function"]["name"] == "Answer"


def test_state_schema_checks() -> None:
    class Extra(AgentState):
        user: str

    agent = create_react_agent(ScriptedChatModel(["hi"]), [add], state_schema=Extra)
    assert agent.invoke({"messages": [("user", "x")], "user": "ada"})["user"] == "ada"
    with pytest.raises(ValueError, match="structured_response"):
        create_react_agent(ScriptedChatModel([]), [add], state_schema=Extra, response_format=Answer)


def test_pre_model_hook_summarises_before_each_call() -> None:
    summarizer = ScriptedChatModel(["they talked"], cycle=True)
    model = ScriptedChatModel(["r1", "r2", "r3"])
    hook = SummarizationNode(summarizer, max_tokens=20, keep_last=2)
    agent = create_react_agent(model, [add], pre_model_hook=hook, checkpointer=InMemorySaver())
    config = thread("s")
    for text in ["first message here", "second message here", "third message here"]:
        agent.invoke({"messages": [("user", text)]}, config)
    stored = agent.get_state(config).values["messages"]
    assert stored[0].text.endswith("they talked")
    assert [m.text for m in model.calls[-1]][-2:] == ["r2", "third message here"]


def test_pre_model_hook_with_llm_input_messages() -> None:
    model = ScriptedChatModel(["ok"])

    def last_only(state: Any) -> dict[str, Any]:
        return {"llm_input_messages": state["messages"][-1:]}

    out = create_react_agent(model, [add], pre_model_hook=last_only).invoke(
        {"messages": [("user", "old"), ("user", "new")]}
    )
    assert [m.text for m in model.calls[0]] == ["new"]
    assert [m.text for m in out["messages"]] == ["old", "new", "ok"]  # stored history is untouched


def test_messages_written_by_the_agent_keep_their_ids() -> None:
    model = ScriptedChatModel([ask(call("add", {"a": 1, "b": 1}, "i")), "2"])
    agent = create_react_agent(model, [add], checkpointer=InMemorySaver())
    config = thread("r")
    agent.invoke({"messages": [HumanMessage(content="x", id="h1")]}, config)
    first = [m.id for m in agent.get_state(config).values["messages"]]
    assert first == [m.id for m in agent.get_state(config).values["messages"]]
    agent.update_state(config, {"messages": [RemoveMessage(id="h1"), RemoveMessage(id=first[1])]})
    assert [m.type for m in agent.get_state(config).values["messages"]] == ["tool", "ai"]


async def test_ainvoke_with_async_tools() -> None:
    @tool
    async def slow_add(a: int, b: int) -> int:
        """Add, slowly."""
        await asyncio.sleep(0)
        return a + b

    model = ScriptedChatModel([ask(call("slow_add", {"a": 1, "b": 2}, "s")), "3"])
    out = await create_react_agent(model, [slow_add]).ainvoke({"messages": [("user", "1+2")]})
    assert [m.text for m in out["messages"]][-2:] == ["3", "3"]


def test_model_by_name_and_bound_models() -> None:
    agent = create_react_agent("scripted:x", [])
    assert agent is not None
    prebound = ScriptedChatModel(["hi"]).bind_tools([add])
    create_react_agent(prebound, [add]).invoke({"messages": [("user", "x")]})
    with pytest.raises(ValueError, match="weather"):
        create_react_agent(prebound, [add, weather])
