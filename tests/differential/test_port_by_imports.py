"""A LangGraph program ports by changing its imports, and then does the same thing.

Each program below is written as a LangGraph user would write it, importing from ``langgraph.*``,
``langchain_core.messages`` and ``langchain_core.tools`` in the usual styles. It runs twice, each
time as a fresh module: once as written, once with its import lines rewritten by ``port`` (the
mechanical rule the README gives). Its ``main()`` returns what it saw; the two runs, normalised
(messages to type/content/tool calls, interrupts to their values), and what it printed, must be equal.

The harness gives each run a few names a program cannot write the same way on both sides:
``DB`` (a fresh SQLite path), ``PG_URL`` (a fresh PostgreSQL schema) and ``make_model(replies)``
(LangChain's list-of-replies fake chat model, or Tether's ``ScriptedChatModel``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import io
import linecache
import re
import sys
import textwrap
import types
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import BaseMessage as LCBaseMessage

from tests.pg import fresh_schema
from tether.messages import BaseMessage as TTBaseMessage
from tether.models import ScriptedChatModel

# -- the porting rule -------------------------------------------------------------------------

_RULES = (
    (re.compile(r"^(\s*)(from|import)(\s+)langchain_core\.messages\b", re.M), r"\1\2\3tether.messages"),
    (re.compile(r"^(\s*)(from|import)(\s+)langchain_core\.tools\b", re.M), r"\1\2\3tether.tools"),
    (re.compile(r"^(\s*)(from|import)(\s+)langgraph\b", re.M), r"\1\2\3tether"),
)


def port(source: str) -> str:
    """Rewrite a LangGraph program's import lines to Tether's; nothing else changes."""
    for pattern, replacement in _RULES:
        source = pattern.sub(replacement, source)
    return source


def test_port_rewrites_only_import_lines() -> None:
    source = textwrap.dedent(
        """\
        import langgraph.types
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
        from langchain_core.messages import AIMessage
        from langchain_core.tools import tool
        x = "langgraph.graph"
        """
    )
    assert port(source) == textwrap.dedent(
        """\
        import tether.types
        from tether.checkpoint.sqlite.aio import AsyncSqliteSaver
        from tether.messages import AIMessage
        from tether.tools import tool
        x = "langgraph.graph"
        """
    )


# -- the programs ---------------------------------------------------------------------------

CHATBOT = """
from typing import Annotated
from typing_extensions import TypedDict

from langchain_core.messages import AIMessage, HumanMessage, RemoveMessage, SystemMessage, trim_messages
from langgraph.checkpoint.memory import MemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.message import add_messages


class State(MessagesState):
    turns: int


def chatbot(state: State):
    window = trim_messages(state["messages"], max_tokens=3, token_counter=len, strategy="last")
    last = window[-1].content
    reply = AIMessage(content=f"echo: {last} (saw {len(window)})")
    return {"messages": [reply], "turns": state.get("turns", 0) + 1}


def forget(state: State):
    if len(state["messages"]) > 4:
        return {"messages": [RemoveMessage(id=m.id) for m in state["messages"][:2]]}
    return {}


builder = StateGraph(State)
builder.add_node("chatbot", chatbot)
builder.add_node("forget", forget)
builder.add_edge(START, "chatbot")
builder.add_edge("chatbot", "forget")
builder.add_edge("forget", END)
graph = builder.compile(checkpointer=MemorySaver())


class Plain(TypedDict):
    log: Annotated[list, add_messages]


def main():
    config = {"configurable": {"thread_id": "chat-1"}}
    seen = []
    for text in ["hi", "how are you?", "tell me more"]:
        out = graph.invoke({"messages": [HumanMessage(content=text)]}, config)
        seen.append((out["messages"], out["turns"]))
    other_thread = {"configurable": {"thread_id": "chat-2"}}
    other = graph.invoke({"messages": [SystemMessage("be brief"), ("user", "hello")]}, other_thread)
    merged = add_messages([HumanMessage("a", id="1")], [AIMessage("b", id="1")])
    return {
        "turns": seen,
        "other": other["messages"],
        "merged": merged,
        "history": len(list(graph.get_state_history(config))),
        "plain": list(Plain.__annotations__),
    }
"""

HUMAN_IN_THE_LOOP = """
import operator
from typing import Annotated, TypedDict

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import StateGraph, START, END
from langgraph.types import Command, interrupt


class Draft(TypedDict):
    topic: str
    text: str
    notes: Annotated[list[str], operator.add]


def write(state: Draft):
    return {"text": f"a post about {state['topic']}", "notes": ["written"]}


def review(state: Draft):
    decision = interrupt({"question": "Publish this draft?", "draft": state["text"]})
    if decision["approve"]:
        return Command(goto="publish", update={"notes": ["approved"]})
    return Command(goto="write", update={"topic": decision["topic"], "notes": ["rejected"]})


def publish(state: Draft):
    return {"notes": ["published"]}


builder = StateGraph(Draft)
builder.add_node("write", write)
builder.add_node("review", review)
builder.add_node("publish", publish)
builder.add_edge(START, "write")
builder.add_edge("write", "review")
builder.add_edge("publish", END)


def main():
    seen = []
    with SqliteSaver.from_conn_string(DB) as saver:
        graph = builder.compile(checkpointer=saver)
        config = {"configurable": {"thread_id": "draft-1"}}
        first = graph.invoke({"topic": "owls", "notes": []}, config)
        seen.append(first["__interrupt__"])
        state = graph.get_state(config)
        seen.append((state.next, [i.value for i in state.interrupts], state.tasks[0].name))
        again = graph.invoke(Command(resume={"approve": False, "topic": "bats"}), config)
        seen.append(again["__interrupt__"][0].value)
        final = graph.invoke(Command(resume={"approve": True}), config)
        seen.append(final)
        seen.append(graph.get_state(config).next)
        seen.append(len(list(graph.get_state_history(config))))
    return seen
"""

TOOL_NODE = """
from typing import Annotated

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.graph import StateGraph, START, MessagesState
from langgraph.prebuilt import ToolNode, tools_condition


@tool
def multiply(a: int, b: int) -> int:
    \"\"\"Multiply two integers.\"\"\"
    return a * b


@tool
def weather(city: str) -> str:
    \"\"\"The weather in a city.\"\"\"
    return f"sunny in {city}"


SCRIPT = [
    AIMessage(content="", tool_calls=[
        {"name": "multiply", "args": {"a": 6, "b": 7}, "id": "c1"},
        {"name": "weather", "args": {"city": "Oslo"}, "id": "c2"},
    ]),
    AIMessage(content="", tool_calls=[{"name": "multiply", "args": {"a": "x", "b": 2}, "id": "c3"}]),
    AIMessage(content="42, and sunny in Oslo"),
]


def agent(state: MessagesState):
    replies = sum(1 for m in state["messages"] if isinstance(m, AIMessage))
    return {"messages": [SCRIPT[replies]]}


builder = StateGraph(MessagesState)
builder.add_node("agent", agent)
builder.add_node("tools", ToolNode([multiply, weather]))
builder.add_edge(START, "agent")
builder.add_conditional_edges("agent", tools_condition)
builder.add_edge("tools", "agent")
graph = builder.compile()


def main():
    out = graph.invoke({"messages": [HumanMessage("what is 6*7, and the weather in Oslo?")]})
    tool_messages = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    return {
        "messages": [m for m in out["messages"] if not (isinstance(m, ToolMessage) and m.status == "error")],
        "statuses": [(m.tool_call_id, m.status) for m in tool_messages],
        "tool": (multiply.name, multiply.description, multiply.invoke({"a": 3, "b": 4})),
    }
"""

REACT_AGENT = """
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.prebuilt import create_react_agent


@tool
def multiply(a: int, b: int) -> int:
    \"\"\"Multiply two integers.\"\"\"
    return a * b


def main():
    model = make_model([
        AIMessage(content="", tool_calls=[{"name": "multiply", "args": {"a": 6, "b": 7}, "id": "c1"}]),
        AIMessage(content="6 times 7 is 42"),
        AIMessage(content="you are welcome"),
    ])
    agent = create_react_agent(model, [multiply], prompt="You are a calculator.", checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "calc"}}
    first = agent.invoke({"messages": [HumanMessage("6*7?")]}, config)
    second = agent.invoke({"messages": [("user", "thanks")]}, config)
    for message in second["messages"]:
        message.pretty_print()
    return {"first": first["messages"], "second": second["messages"], "next": agent.get_state(config).next}
"""

MAP_REDUCE = """
import operator
from typing import Annotated, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send


class Overall(TypedDict):
    subjects: list[str]
    jokes: Annotated[list[str], operator.add]
    best: str


class JokeInput(TypedDict):
    subject: str


def fan_out(state: Overall):
    return [Send("joke", {"subject": s}) for s in state["subjects"]]


def joke(state: JokeInput):
    return {"jokes": [f"why did the {state['subject']} cross the road?"]}


def pick(state: Overall):
    return {"best": max(state["jokes"], key=len)}


builder = StateGraph(Overall)
builder.add_node("joke", joke)
builder.add_node("pick", pick)
builder.add_conditional_edges(START, fan_out, ["joke"])
builder.add_edge("joke", "pick")
builder.add_edge("pick", END)
graph = builder.compile()


def main():
    out = graph.invoke({"subjects": ["cat", "elephant", "dog"], "jokes": []})
    updates = list(graph.stream({"subjects": ["owl"], "jokes": []}, stream_mode="updates"))
    return {"jokes": sorted(out["jokes"]), "best": out["best"], "updates": updates}
"""

RETRY = """
from typing import TypedDict

from langgraph.graph import StateGraph, START, END
from langgraph.types import RetryPolicy

attempts = {"fetch": 0, "parse": 0}


class State(TypedDict):
    url: str
    body: str


def fetch(state: State):
    attempts["fetch"] += 1
    if attempts["fetch"] < 3:
        raise ConnectionError("connection reset")
    return {"body": f"<html>{state['url']}</html>"}


def parse(state: State):
    attempts["parse"] += 1
    raise ValueError("bad markup")


policy = RetryPolicy(max_attempts=5, initial_interval=0.001, jitter=False)
builder = StateGraph(State)
builder.add_node("fetch", fetch, retry_policy=policy)
builder.add_node("parse", parse, retry_policy=RetryPolicy(max_attempts=4, initial_interval=0.001))
builder.add_edge(START, "fetch")
builder.add_edge("fetch", "parse")
builder.add_edge("parse", END)
graph = builder.compile()


def main():
    try:
        graph.invoke({"url": "example.com"})
    except ValueError as exc:
        error = str(exc)
    return {"attempts": dict(attempts), "error": error, "policy": (policy.max_attempts, policy.backoff_factor)}
"""

STREAM_WRITER = """
from typing import TypedDict

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.config import get_config, get_stream_writer
from langgraph.graph import StateGraph, START, END
from langgraph.runtime import Runtime, get_runtime
from langgraph.types import StreamWriter


class Context(TypedDict):
    user: str


class State(TypedDict):
    query: str
    answer: str


def search(state: State):
    writer = get_stream_writer()
    writer({"progress": "searching"})
    thread = get_config()["configurable"]["thread_id"]
    user = get_runtime(Context).context["user"]
    writer({"progress": f"found for {user} on {thread}"})
    return {"answer": state["query"].upper()}


def polish(state: State, runtime: Runtime[Context]):
    runtime.stream_writer({"progress": "polishing"})
    return {"answer": state["answer"] + "!"}


def shout(state: State, writer: StreamWriter):
    writer("done")
    return {}


builder = StateGraph(State, context_schema=Context)
builder.add_node("search", search)
builder.add_node("polish", polish)
builder.add_node("shout", shout)
builder.add_edge(START, "search")
builder.add_edge("search", "polish")
builder.add_edge("polish", "shout")
builder.add_edge("shout", END)
graph = builder.compile(checkpointer=InMemorySaver())


def main():
    config = {"configurable": {"thread_id": "s1"}}
    chunks = list(
        graph.stream({"query": "owls"}, config, stream_mode=["custom", "updates"], context={"user": "ada"})
    )
    return {"chunks": chunks, "final": graph.get_state(config).values}
"""

SUBGRAPH = """
import operator
from typing import Annotated, TypedDict

from langgraph.graph import StateGraph, START, END
from langgraph.graph.state import CompiledStateGraph


class Shared(TypedDict):
    log: Annotated[list[str], operator.add]
    count: int


def child_step(state: Shared):
    return {"log": [f"child saw {state['count']}"], "count": state["count"] + 10}


child_builder = StateGraph(Shared)
child_builder.add_node("child_step", child_step)
child_builder.add_edge(START, "child_step")
child_builder.add_edge("child_step", END)
child: CompiledStateGraph = child_builder.compile()


def call_child(state: Shared):
    out = child.invoke({"log": [], "count": state["count"] * 2})
    return {"log": ["called"] + out["log"], "count": out["count"]}


def start(state: Shared):
    return {"log": ["start"], "count": state["count"] + 1}


parent = StateGraph(Shared)
parent.add_node("start", start)
parent.add_node("child", child)
parent.add_node("call_child", call_child)
parent.add_edge(START, "start")
parent.add_edge("start", "child")
parent.add_edge("child", "call_child")
parent.add_edge("call_child", END)
graph = parent.compile()


def main():
    return {"out": graph.invoke({"log": [], "count": 1}), "is_compiled": isinstance(graph, CompiledStateGraph)}
"""

COMMAND_GOTO = """
import operator
from typing import Annotated, Literal, TypedDict

from langgraph.graph import StateGraph, START, END
from langgraph.types import Command


class State(TypedDict):
    amount: int
    route: Annotated[list[str], operator.add]


def triage(state: State) -> Command[Literal["small", "large"]]:
    target = "large" if state["amount"] > 100 else "small"
    return Command(update={"route": [f"triage->{target}"]}, goto=target)


def small(state: State) -> Command[Literal["audit", "__end__"]]:
    return Command(update={"route": ["small"]}, goto=END)


def large(state: State):
    return Command(update={"route": ["large"]}, goto=["audit", "notify"])


def audit(state: State):
    return {"route": ["audit"]}


def notify(state: State):
    return {"route": ["notify"]}


builder = StateGraph(State)
builder.add_node("triage", triage)
builder.add_node("small", small)
builder.add_node("large", large)
builder.add_node("audit", audit)
builder.add_node("notify", notify)
builder.add_edge(START, "triage")
graph = builder.compile()


def main():
    return [graph.invoke({"amount": a, "route": []}) for a in (5, 500)]
"""

TIME_TRAVEL = """
import operator
from typing import Annotated, TypedDict

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import StateGraph, START, END


class State(TypedDict):
    topic: str
    steps: Annotated[list[str], operator.add]


def outline(state: State):
    return {"steps": [f"outline {state['topic']}"]}


def draft(state: State):
    return {"steps": [f"draft {state['topic']}"]}


def edit(state: State):
    return {"steps": ["edit"]}


builder = StateGraph(State)
builder.add_node("outline", outline)
builder.add_node("draft", draft)
builder.add_node("edit", edit)
builder.add_edge(START, "outline")
builder.add_edge("outline", "draft")
builder.add_edge("draft", "edit")
builder.add_edge("edit", END)
graph = builder.compile(checkpointer=InMemorySaver())


def main():
    config = {"configurable": {"thread_id": "tt"}}
    graph.invoke({"topic": "owls", "steps": []}, config)
    history = list(graph.get_state_history(config))
    before_draft = next(s for s in history if s.next == ("draft",))
    forked = graph.update_state(before_draft.config, {"topic": "bats"})
    replayed = graph.invoke(None, forked)
    replay_same = graph.invoke(None, before_draft.config)
    return {
        "history": [(s.values, s.next, s.metadata["step"]) for s in history],
        "replayed": replayed,
        "replay_same": replay_same,
        "now": graph.get_state(config).values,
        "after": len(list(graph.get_state_history(config))),
    }
"""

ASYNC_SQLITE = """
import operator
from typing import Annotated, TypedDict

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import StateGraph, START, END
from langgraph.types import Command, interrupt


class State(TypedDict):
    items: Annotated[list[str], operator.add]


async def gather(state: State):
    return {"items": ["milk"]}


async def confirm(state: State):
    extra = interrupt("anything else?")
    return {"items": [extra]}


builder = StateGraph(State)
builder.add_node("gather", gather)
builder.add_node("confirm", confirm)
builder.add_edge(START, "gather")
builder.add_edge("gather", "confirm")
builder.add_edge("confirm", END)


async def main():
    async with AsyncSqliteSaver.from_conn_string(DB) as saver:
        graph = builder.compile(checkpointer=saver)
        config = {"configurable": {"thread_id": "shop"}}
        paused = await graph.ainvoke({"items": []}, config)
        chunks = [c async for c in graph.astream(Command(resume="eggs"), config, stream_mode="updates")]
        state = await graph.aget_state(config)
        history = [s async for s in graph.aget_state_history(config)]
        return {"paused": paused, "chunks": chunks, "values": state.values, "history": len(history)}
"""

POSTGRES_APPROVAL = """
import operator
from typing import Annotated, TypedDict

from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.graph import StateGraph, START, END
from langgraph.types import Command, interrupt


class State(TypedDict):
    request: str
    log: Annotated[list[str], operator.add]


def ask(state: State):
    answer = interrupt({"approve": state["request"]})
    return {"log": [f"{state['request']}: {answer}"]}


builder = StateGraph(State)
builder.add_node("ask", ask)
builder.add_edge(START, "ask")
builder.add_edge("ask", END)


def run(saver):
    graph = builder.compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "pg-1"}}
    paused = graph.invoke({"request": "refund $20", "log": []}, config)
    waiting = graph.get_state(config).next
    done = graph.invoke(Command(resume="yes"), config)
    return [paused, waiting, done, len(list(graph.get_state_history(config)))]


def main():
    if STYLE == "from_conn_string":
        with PostgresSaver.from_conn_string(PG_URL) as saver:
            saver.setup()
            return run(saver)
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(PG_URL, autocommit=True, prepare_threshold=0, row_factory=dict_row) as conn:
        saver = PostgresSaver(conn)
        saver.setup()
        return run(saver)
"""

MESSAGE_UTILITIES = """
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    convert_to_messages,
    filter_messages,
    get_buffer_string,
    merge_message_runs,
    messages_from_dict,
    messages_to_dict,
)
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph


def stream_reply(state: MessagesState):
    pieces = [
        AIMessageChunk(content="Looking ", id="reply-1"),
        AIMessageChunk(
            content="it up.", tool_call_chunks=[{"name": "search", "args": '{"q": "ot', "id": "call-1", "index": 0}]
        ),
        AIMessageChunk(
            content="",
            tool_call_chunks=[{"name": None, "args": 'ters", "n": 2}', "id": None, "index": 0}],
            usage_metadata={"input_tokens": 7, "output_tokens": 5, "total_tokens": 12},
        ),
    ]
    full = pieces[0]
    for piece in pieces[1:]:
        full = full + piece
        print(type(full).__name__, full.content, full.tool_calls)
    print(full.usage_metadata, full.id)
    return {"messages": [full, ToolMessage("otters hold hands", tool_call_id="call-1", name="search")]}


def answer(state: MessagesState):
    visible = filter_messages(state["messages"], exclude_tool_calls=True, exclude_types=["chat"])
    merged = merge_message_runs(visible, chunk_separator=" / ")
    print(get_buffer_string(merged, human_prefix="User", ai_prefix="Bot"))
    only_people = filter_messages(state["messages"], include_types=[HumanMessage, "chat"], exclude_names=["bob"])
    return {"messages": [AIMessage(f"{len(merged)} turns, {len(only_people)} from people", name="bot")]}


builder = StateGraph(MessagesState)
builder.add_node("stream_reply", stream_reply)
builder.add_node("answer", answer)
builder.add_edge(START, "stream_reply")
builder.add_edge("stream_reply", "answer")
builder.add_edge("answer", END)
graph = builder.compile(checkpointer=InMemorySaver())


def main():
    start = convert_to_messages(
        [("system", "be kind"), ("user", "hi"), {"role": "user", "content": "tell me about otters", "name": "bob"}]
    )
    config = {"configurable": {"thread_id": "utilities"}}
    out = graph.invoke({"messages": [*start, ChatMessage("too vague", role="critic")]}, config)
    saved = messages_to_dict(out["messages"])
    restored = messages_from_dict(saved)
    print(get_buffer_string(restored))
    return {
        "messages": out["messages"],
        "kinds": [type(m).__name__ for m in out["messages"]],
        "saved": [(d["type"], sorted(d["data"])) for d in saved],
        "restored": restored,
        "usage": out["messages"][4].usage_metadata,
        "stored": graph.get_state(config).values["messages"][-3:],
    }
"""

PROGRAMS = {
    "chatbot": CHATBOT,
    "human_in_the_loop": HUMAN_IN_THE_LOOP,
    "tool_node": TOOL_NODE,
    "react_agent": REACT_AGENT,
    "map_reduce": MAP_REDUCE,
    "retry": RETRY,
    "stream_writer": STREAM_WRITER,
    "subgraph": SUBGRAPH,
    "command_goto": COMMAND_GOTO,
    "time_travel": TIME_TRAVEL,
    "async_sqlite": ASYNC_SQLITE,
    "message_utilities": MESSAGE_UTILITIES,
}


# -- running a program on each side -----------------------------------------------------------


class FakeToolModel(FakeMessagesListChatModel):
    """LangChain's list-of-replies fake, willing to be offered tools (it ignores them)."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self


def _make_lc_model(replies: list[Any]) -> Any:
    return FakeToolModel(responses=replies)


def plain(value: Any) -> Any:
    """An observation with library objects made comparable: messages by type, text, name and tool
    calls (ids are random on both sides), interrupts by value, mappings and sequences item by item."""
    if isinstance(value, (LCBaseMessage, TTBaseMessage)):
        out: dict[str, Any] = {"type": value.type, "content": value.content, "name": value.name}
        calls = getattr(value, "tool_calls", None)
        if calls:
            out["tool_calls"] = [(c["name"], c["args"], c["id"]) for c in calls]
        if value.type == "tool":
            out["tool_call_id"] = getattr(value, "tool_call_id", None)
        return out
    if type(value).__name__ == "Interrupt":
        return ("Interrupt", plain(value.value))
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    return value


@pytest.fixture
def run_program(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    modules: list[str] = []

    def run(name: str, source: str, side: str, **extra: Any) -> Any:
        if side == "tether":
            source = port(source)
            leftover = [line for line in source.splitlines() if re.search(r"\b(langgraph|langchain_core)\b", line)]
            assert not leftover, f"the port left LangGraph imports behind: {leftover}"
        module_name = f"ported_{name}_{side}"
        module = types.ModuleType(module_name)  # a real module, so type hints resolve as in a script
        module.__dict__.update(
            DB=str(tmp_path / f"{name}-{side}.sqlite"),
            make_model=ScriptedChatModel if side == "tether" else _make_lc_model,
            **extra,
        )
        sys.modules[module_name] = module
        modules.append(module_name)
        filename = f"<{name} on {side}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)  # readable tracebacks
        printed = io.StringIO()
        with warnings.catch_warnings(), contextlib.redirect_stdout(printed):
            if side == "langgraph":  # create_react_agent is deprecated there in favour of langchain.agents
                warnings.simplefilter("ignore", DeprecationWarning)
            exec(compile(source, filename, "exec"), module.__dict__)
            result = module.main()
            if inspect.iscoroutine(result):
                result = asyncio.run(result)
        return {"returned": plain(result), "printed": printed.getvalue()}

    yield run
    for module_name in modules:
        sys.modules.pop(module_name, None)


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_program_ports_by_changing_imports(name: str, run_program: Callable[..., Any]) -> None:
    source = PROGRAMS[name]
    langgraph_saw = run_program(name, source, "langgraph")
    tether_saw = run_program(name, source, "tether")
    assert langgraph_saw["returned"], "the program observed nothing"
    assert tether_saw == langgraph_saw


@pytest.mark.parametrize("style", ["from_conn_string", "connection"])
def test_postgres_program_ports(style: str, run_program: Callable[..., Any], postgres_server: str) -> None:
    seen = {}
    for side in ("langgraph", "tether"):
        with fresh_schema(postgres_server) as url:
            seen[side] = run_program(f"postgres_{style}", POSTGRES_APPROVAL, side, PG_URL=url, STYLE=style)
    assert seen["langgraph"]["returned"][0]["__interrupt__"] == [("Interrupt", {"approve": "refund $20"})]
    assert seen["tether"] == seen["langgraph"]
