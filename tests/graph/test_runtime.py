from __future__ import annotations

import asyncio
import dataclasses
import itertools
import operator
import threading
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from pydantic import BaseModel

from tests.conftest import raw
from tether import END, START, Command, InMemorySaver, Send, SqliteSaver, StateGraph, get_stream_writer, interrupt
from tether.checkpoint import BaseCheckpointSaver
from tether.errors import (
    ConfigError,
    GraphRecursionError,
    GraphRuntimeError,
    InvalidUpdateError,
    SerializationError,
    ThreadBusyError,
)


class S(TypedDict, total=False):
    n: int
    log: Annotated[list[Any], operator.add]
    blob: Any


def cfg(thread: str = "t", **extra: Any) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}, **extra}


def linear(*names: str) -> StateGraph:
    g = StateGraph(S)
    for name in names:
        g.add_node(name, lambda s, name=name: {"log": [name], "n": s.get("n", 0) + 1})
    g.add_edge(START, names[0])
    for a, b in itertools.pairwise(names):
        g.add_edge(a, b)
    return g


def test_two_writes_to_a_key_without_reducer_name_key_and_nodes() -> None:
    g = StateGraph(S)
    g.add_node("left", lambda s: {"n": 1})
    g.add_node("right", lambda s: {"n": 2})
    g.add_edge(START, "left")
    g.add_edge(START, "right")
    with pytest.raises(InvalidUpdateError, match=r"'n' received 2 values in one step \(from nodes 'left', 'right'\)"):
        g.compile().invoke({})


def test_bad_returns_are_clear_errors() -> None:
    g = StateGraph(S)
    g.add_node("a", lambda s: 5)
    g.add_edge(START, "a")
    with pytest.raises(InvalidUpdateError, match=r"node 'a' must return a dict.*got int"):
        g.compile().invoke({})
    g = StateGraph(S)
    g.add_node("a", lambda s: {"typo": 1})
    g.add_edge(START, "a")
    with pytest.raises(InvalidUpdateError, match="node 'a' wrote unknown state key 'typo'"):
        g.compile().invoke({})
    # input keys outside the input schema are ignored, as LangGraph does
    assert linear("a").compile().invoke({"nope": 1}) == {"n": 1, "log": ["a"]}


def test_recursion_limit() -> None:
    calls = []
    g = StateGraph(S)
    g.add_node("loop", lambda s: calls.append(1) or {"n": s.get("n", 0) + 1})
    g.add_edge(START, "loop")
    g.add_conditional_edges("loop", lambda s: "loop")
    with pytest.raises(GraphRecursionError, match="recursion limit of 7"):
        g.compile().invoke({"n": 0}, {"recursion_limit": 7})
    assert len(calls) == 7


def test_checkpointer_requires_thread_id() -> None:
    app = linear("a").compile(checkpointer=InMemorySaver())
    with pytest.raises(ConfigError, match="thread_id"):
        app.invoke({"n": 0})
    with pytest.raises(ConfigError, match="stream_mode"):
        list(app.stream({"n": 0}, cfg(), stream_mode="everything"))


def test_unserializable_value_fails_at_its_step_and_keeps_last_checkpoint(saver: BaseCheckpointSaver) -> None:
    class Opaque:
        pass

    g = StateGraph(S)
    g.add_node("good", lambda s: {"log": ["good"]})
    g.add_node("bad", lambda s: {"blob": Opaque()})
    g.add_edge(START, "good")
    g.add_edge("good", "bad")
    app = g.compile(checkpointer=saver)
    with pytest.raises(SerializationError, match=r"node 'bad' wrote a value to state key 'blob'.*Opaque"):
        app.invoke({"n": 1}, cfg())
    state = app.get_state(cfg())
    assert state.values == {"n": 1, "log": ["good"]}
    assert state.next == ("bad",)
    assert len(list(app.get_state_history(cfg()))) == 3


def test_a_second_concurrent_run_on_a_thread_is_rejected(saver: BaseCheckpointSaver) -> None:
    entered, release = threading.Event(), threading.Event()

    def slow(s: S, config: dict[str, Any]) -> dict[str, Any]:
        if config["configurable"]["thread_id"] == "t":
            entered.set()
            release.wait(10)
        return {"log": ["slow"]}

    g = StateGraph(S)
    g.add_node("slow", slow)
    g.add_edge(START, "slow")
    app = g.compile(checkpointer=saver)
    results: list[Any] = []
    runner = threading.Thread(target=lambda: results.append(app.invoke({"n": 1}, cfg())))
    runner.start()
    assert entered.wait(10)
    with pytest.raises(ThreadBusyError, match="'t' already has a run in progress"):
        app.invoke({"n": 2}, cfg())
    with pytest.raises(ThreadBusyError):
        app.update_state(cfg(), {"n": 5})
    assert app.invoke({"n": 3}, cfg("other"))["log"] == ["slow"]  # other threads are free
    release.set()
    runner.join()
    assert results == [{"n": 1, "log": ["slow"]}]
    assert app.invoke({"n": 4}, cfg())["log"] == ["slow", "slow"]


def test_sync_parallel_branches_run_concurrently() -> None:
    a_started = threading.Event()

    def a(s: S) -> dict[str, Any]:
        a_started.set()
        return {"log": ["a"]}

    def b(s: S) -> dict[str, Any]:
        assert a_started.wait(10), "branch a never ran while b was running"
        return {"log": ["b"]}

    g = StateGraph(S)
    g.add_node("a", a)
    g.add_node("b", b)
    g.add_edge(START, "a")
    g.add_edge(START, "b")
    assert g.compile().invoke({})["log"] == ["a", "b"]


async def test_async_parallel_branches_run_concurrently() -> None:
    a_started = asyncio.Event()

    async def a(s: S) -> dict[str, Any]:
        a_started.set()
        return {"log": ["a"]}

    async def b(s: S) -> dict[str, Any]:
        await asyncio.wait_for(a_started.wait(), 10)
        return {"log": ["b"]}

    g = StateGraph(S)
    g.add_node("b", b)
    g.add_node("a", a)
    g.add_edge(START, "a")
    g.add_edge(START, "b")
    app = g.compile(checkpointer=InMemorySaver())
    assert (await app.ainvoke({}, cfg()))["log"] == ["a", "b"]
    chunks = [c async for c in app.astream({}, cfg("s"), stream_mode="updates")]
    assert sorted(next(iter(c)) for c in chunks) == ["a", "b"]


def test_sync_invoke_of_async_node_is_a_clear_error() -> None:
    async def a(s: S) -> dict[str, Any]:
        return {}

    g = StateGraph(S)
    g.add_node("a", a)
    g.add_edge(START, "a")
    with pytest.raises(GraphRuntimeError, match="node 'a' is async: run the graph with ainvoke"):
        g.compile().invoke({})


def test_finished_sibling_is_kept_when_another_fails_and_not_rerun(saver: BaseCheckpointSaver) -> None:
    calls = {"ok": 0, "flaky": 0}
    broken = {"yes": True}

    def ok(s: S) -> dict[str, Any]:
        calls["ok"] += 1
        return {"log": ["ok"]}

    def flaky(s: S) -> dict[str, Any]:
        calls["flaky"] += 1
        if broken["yes"]:
            raise RuntimeError("upstream down")
        return {"log": ["flaky"]}

    g = StateGraph(S)
    g.add_node("ok", ok)
    g.add_node("flaky", flaky)
    g.add_edge(START, "ok")
    g.add_edge(START, "flaky")
    app = g.compile(checkpointer=saver)
    with pytest.raises(RuntimeError, match="upstream down"):
        app.invoke({"n": 0}, cfg())
    state = app.get_state(cfg())
    assert state.next == ("flaky",)
    assert [t.error for t in state.tasks if t.name == "flaky"] == ["RuntimeError('upstream down')"]
    broken["yes"] = False
    assert app.invoke(None, cfg())["log"] == ["flaky", "ok"]
    assert calls == {"ok": 1, "flaky": 2}


def test_dynamic_interrupt_needs_a_checkpointer() -> None:
    g = StateGraph(S)
    g.add_node("ask", lambda s: {"n": interrupt("?")})
    g.add_edge(START, "ask")
    with pytest.raises(GraphRuntimeError, match="needs a checkpointer"):
        g.compile().invoke({})


def test_custom_stream_mode() -> None:
    def talk(s: S) -> dict[str, Any]:
        write = get_stream_writer()
        write({"progress": 0.5})
        write("done")
        return {"n": 1}

    g = StateGraph(S)
    g.add_node("talk", talk)
    g.add_edge(START, "talk")
    out = list(g.compile().stream({}, stream_mode=["custom", "updates"]))
    assert out == [("custom", {"progress": 0.5}), ("custom", "done"), ("updates", {"talk": {"n": 1}})]


def test_pydantic_and_dataclass_states() -> None:
    class P(BaseModel):
        n: int = 0
        log: Annotated[list[str], operator.add] = []

    seen: list[Any] = []
    g = StateGraph(P)
    g.add_node("a", lambda s: seen.append(s) or {"n": s.n + 1, "log": ["a"]})
    g.add_edge(START, "a")
    assert g.compile().invoke({"n": 2}) == {"n": 3, "log": ["a"]}
    assert isinstance(seen[0], P)
    with pytest.raises(InvalidUpdateError, match="does not match P"):
        g.compile().invoke({"n": "two"})

    @dataclasses.dataclass
    class D:
        n: int
        log: Annotated[list[str], operator.add] = dataclasses.field(default_factory=list)

    g = StateGraph(D)
    g.add_node("a", lambda s: {"n": s.n * 10, "log": ["a"]})
    g.add_edge(START, "a")
    assert g.compile().invoke({"n": 4}) == {"n": 40, "log": ["a"]}


def test_node_mutating_its_input_cannot_alter_stored_state(saver: BaseCheckpointSaver) -> None:
    def sneaky(s: S) -> dict[str, Any]:
        s["log"].append("sneaked")
        return {"n": 1}

    g = StateGraph(S)
    g.add_node("sneaky", sneaky)
    g.add_edge(START, "sneaky")
    app = g.compile(checkpointer=saver)
    app.invoke({"log": ["x"]}, cfg())
    assert app.invoke({"log": ["y"]}, cfg())["log"] == ["x", "y"]
    assert app.get_state(cfg()).values["log"] == ["x", "y"]


def test_send_fan_out_with_reduce() -> None:
    g = StateGraph(S)
    g.add_node("split", lambda s: {})
    g.add_node("work", lambda item: {"log": [item * 2]})
    g.add_edge(START, "split")
    g.add_conditional_edges("split", lambda s: [Send("work", i) for i in range(5)])
    assert g.compile().invoke({})["log"] == [0, 2, 4, 6, 8]


def test_command_goto_and_update() -> None:
    g = StateGraph(S)
    g.add_node("a", lambda s: Command(update={"log": ["a"]}, goto=["c", "b"]))
    g.add_node("b", lambda s: {"log": ["b"]})
    g.add_node("c", lambda s: Command(update={"log": ["c"]}, goto=END))
    g.add_edge(START, "a")
    assert g.compile().invoke({})["log"] == ["a", "b", "c"]


def test_state_rebuilt_from_sqlite_equals_the_run(sqlite_path: Path) -> None:
    g = linear("a", "b", "c")
    with SqliteSaver.from_conn_string(sqlite_path) as saver:
        app = g.compile(checkpointer=saver)
        outputs = [app.invoke({"log": [i]}, cfg()) for i in range(30)]
    with SqliteSaver.from_conn_string(sqlite_path) as saver:
        fresh = g.compile(checkpointer=saver)  # new process view: no cache
        assert fresh.get_state(cfg()).values == outputs[-1]
        history = list(fresh.get_state_history(cfg()))
        assert len(history) == 30 * 5
        finals = [h.values for h in history if h.metadata["source"] == "loop" and not h.next]
        assert finals == list(reversed(outputs))


def test_storage_grows_linearly(sqlite_path: Path) -> None:
    g = StateGraph(S)
    g.add_node("append", lambda s: {"log": ["x" * 100]})
    g.add_edge(START, "append")
    with SqliteSaver.from_conn_string(sqlite_path) as saver:
        app = g.compile(checkpointer=saver)
        for _ in range(1000):
            app.invoke({}, cfg())
        assert len(app.get_state(cfg()).values["log"]) == 1000
    size = sqlite_path.stat().st_size
    assert size < 1_000_000, f"1,000 turns took {size} bytes"
    snapshot_bytes = raw(sqlite_path, "SELECT SUM(LENGTH(state)) FROM snapshots")[0][0]
    written = raw(sqlite_path, "SELECT SUM(LENGTH(writes)) FROM checkpoints")[0][0]
    state_size = 1000 * 103
    assert snapshot_bytes < 4 * state_size, (snapshot_bytes, written)
    # loading folds a bounded amount of log
    with SqliteSaver.from_conn_string(sqlite_path) as saver:
        loaded = saver.get("t")
        assert loaded is not None and loaded.chain[0].snapshot is not None
        assert sum(len(r.writes) for r in loaded.chain[1:]) <= max(2 * len(loaded.chain[0].snapshot), 16 * 1024)


def test_tables_are_readable_json(sqlite_path: Path) -> None:
    with SqliteSaver.from_conn_string(sqlite_path) as saver:
        linear("a", "b").compile(checkpointer=saver).invoke({"n": 1}, cfg("readable"))
    rows = raw(sqlite_path, "SELECT step, source, json_extract(next, '$[0]') FROM checkpoints ORDER BY checkpoint_id")
    assert [r[:2] for r in rows] == [(-1, "input"), (0, "loop"), (1, "loop"), (2, "loop")]
    writes = raw(sqlite_path, "SELECT node, writes FROM checkpoint_writes WHERE step = 1")
    assert writes == [("a", '[["log",["a"]],["n",2]]')]


def test_resume_errors_name_the_problem(saver: BaseCheckpointSaver) -> None:
    from tether.errors import InvalidResumeError

    g = StateGraph(S)
    g.add_node("a", lambda s: {"log": [interrupt("a?")]})
    g.add_node("b", lambda s: {"log": [interrupt("b?")]})
    g.add_edge(START, "a")
    g.add_edge(START, "b")
    app = g.compile(checkpointer=saver)
    out = app.invoke({}, cfg())
    ids = [i.id for i in out["__interrupt__"]]
    with pytest.raises(InvalidResumeError, match="2 pending interrupts; resume with a mapping"):
        app.invoke(Command(resume="yes"), cfg())
    with pytest.raises(InvalidResumeError, match=r"no pending interrupt with id '0{32}'"):
        app.invoke(Command(resume={"0" * 32: "yes"}), cfg())
    assert app.invoke(Command(resume={ids[0]: "A", ids[1]: "B"}), cfg())["log"] == ["A", "B"]
    with pytest.raises(InvalidResumeError, match="not waiting on an interrupt \\(it has finished\\)"):
        app.invoke(Command(resume="late"), cfg())
    with pytest.raises(InvalidResumeError, match=r"has no checkpoint"):
        app.invoke(Command(resume="x"), cfg("never-started"))
    assert len(list(app.get_state_history(cfg()))) == 3  # input, __start__, the resumed step: refusals add none


def test_get_graph_draws_mermaid() -> None:
    g = linear("a", "b")
    g.add_conditional_edges("b", lambda s: END, {"done": END, "again": "a"})
    drawing = g.compile().get_graph()
    assert drawing.nodes == ("__start__", "a", "b", "__end__")
    text = drawing.draw_mermaid()
    assert "__start__ --> a" in text and "a --> b" in text
    assert "b -.-> __end__" in text and "b -.-> a" in text


async def test_async_sqlite_saver_as_async_context_manager(tmp_path: Path) -> None:
    from tether.checkpoint import AsyncSqliteSaver

    async with AsyncSqliteSaver.from_conn_string(tmp_path / "a.sqlite") as saver:
        app = linear("a", "b").compile(checkpointer=saver)
        assert (await app.ainvoke({"n": 0}, cfg()))["n"] == 2
        assert (await app.aget_state(cfg())).values["log"] == ["a", "b"]
        history = [s async for s in app.aget_state_history(cfg())]
        assert [h.metadata["step"] for h in history] == [2, 1, 0, -1]


def test_retry_policy_runs_a_failing_node_again() -> None:
    from tether import RetryPolicy

    calls = {"flaky": 0, "broken": 0}

    def flaky(s: S) -> dict[str, Any]:
        calls["flaky"] += 1
        if calls["flaky"] < 3:
            raise ConnectionError("reset by peer")
        return {"log": ["flaky ok"]}

    def broken(s: S) -> dict[str, Any]:
        calls["broken"] += 1
        raise ValueError("a bug, not bad luck")

    fast = RetryPolicy(initial_interval=0.001, jitter=False, max_attempts=3)
    g = StateGraph(S)
    g.add_node("flaky", flaky, retry_policy=fast)
    g.add_edge(START, "flaky")
    assert g.compile().invoke({})["log"] == ["flaky ok"]
    assert calls["flaky"] == 3

    g = StateGraph(S)
    g.add_node("broken", broken, retry_policy=fast)
    g.add_edge(START, "broken")
    with pytest.raises(ValueError, match="a bug"):
        g.compile().invoke({})
    assert calls["broken"] == 1  # programming errors are not retried by default

    calls["broken"] = 0
    g = StateGraph(S)
    g.add_node("broken", broken, retry_policy=fast._replace(retry_on=ValueError))
    g.add_edge(START, "broken")
    with pytest.raises(ValueError):
        g.compile().invoke({})
    assert calls["broken"] == 3  # retry_on chooses; max_attempts bounds it


def test_default_retry_on_reads_http_status() -> None:
    from tether.graph._retry import default_retry_on

    class Response:
        def __init__(self, status_code: int) -> None:
            self.status_code = status_code

    class HTTPError(Exception):
        def __init__(self, status: int) -> None:
            super().__init__(status)
            self.response = Response(status)

    assert default_retry_on(HTTPError(503)) and not default_retry_on(HTTPError(404))
    assert default_retry_on(ConnectionError()) and default_retry_on(TimeoutError()) is False
    assert default_retry_on(Exception("other")) and not default_retry_on(KeyError("k"))


def test_runnable_objects_are_nodes() -> None:
    class Upper:
        def invoke(self, state: Any, config: Any = None) -> dict[str, Any]:
            return {"log": [str(state["n"]).upper() + "!"]}

    g = StateGraph(S)
    g.add_node("shout", Upper())
    g.add_edge(START, "shout")
    assert g.compile().invoke({"n": 3})["log"] == ["3!"]


def test_custom_chunks_arrive_while_the_node_is_still_running() -> None:
    chunk_seen = threading.Event()

    def worker(s: S) -> dict[str, Any]:
        get_stream_writer()({"progress": "half way"})
        assert chunk_seen.wait(10), "the caller never got the chunk while this node ran"
        return {"n": 1}

    g = StateGraph(S)
    g.add_node("worker", worker)
    g.add_edge(START, "worker")
    out = []
    for chunk in g.compile().stream({}, stream_mode=["custom", "updates"]):
        out.append(chunk)
        if chunk[0] == "custom":
            chunk_seen.set()
    assert out == [("custom", {"progress": "half way"}), ("updates", {"worker": {"n": 1}})]


async def test_async_custom_chunks_arrive_while_the_node_is_still_running() -> None:
    chunk_seen = asyncio.Event()

    async def worker(s: S) -> dict[str, Any]:
        get_stream_writer()("tick")
        await asyncio.wait_for(chunk_seen.wait(), 10)
        return {"n": 1}

    g = StateGraph(S)
    g.add_node("worker", worker)
    g.add_edge(START, "worker")
    out = []
    async for chunk in g.compile().astream({}, stream_mode="custom"):
        out.append(chunk)
        chunk_seen.set()
    assert out == ["tick"]


def test_messages_stream_mode_streams_model_tokens_as_they_come() -> None:
    from tether.graph import MessagesState
    from tether.models import ScriptedChatModel

    model = ScriptedChatModel(["durable agents resume"])

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    def canned(state: MessagesState) -> dict[str, Any]:
        return {"messages": [("ai", "no model here")]}

    g = StateGraph(MessagesState)
    g.add_node(agent)
    g.add_node(canned)
    g.add_edge(START, "agent")
    g.add_edge("agent", "canned")
    app = g.compile(checkpointer=InMemorySaver())
    chunks = list(app.stream({"messages": [("user", "hi")]}, cfg(), stream_mode="messages"))
    texts = [(m.text, meta["langgraph_node"]) for m, meta in chunks]
    assert texts == [("durable ", "agent"), ("agents ", "agent"), ("resume", "agent"), ("no model here", "canned")]
    assert len({m.id for m, _ in chunks[:3]}) == 1  # chunks of one message share its id
    final = app.get_state(cfg()).values["messages"]
    assert [m.text for m in final] == ["hi", "durable agents resume", "no model here"]
    assert final[1].id == chunks[0][0].id


def test_retry_skips_errors_that_carry_a_client_status() -> None:
    from tether.graph._retry import default_retry_on

    class NoKeyError(Exception):
        status_code = 401

    class OverloadedError(Exception):
        status_code = 529

    assert not default_retry_on(NoKeyError()) and default_retry_on(OverloadedError())


async def test_async_runs_await_a_node_objects_ainvoke() -> None:
    loops: list[Any] = []

    class Dual:
        def __call__(self, state: S, config: Any) -> dict[str, Any]:
            return {"log": ["sync"]}

        async def ainvoke(self, state: S, config: Any) -> dict[str, Any]:
            loops.append(asyncio.get_running_loop())
            return {"log": ["async"]}

    g = StateGraph(S)
    g.add_node("dual", Dual())
    g.add_edge(START, "dual")
    app = g.compile()
    assert app.invoke({})["log"] == ["sync"]
    assert (await app.ainvoke({}))["log"] == ["async"]
    assert loops == [asyncio.get_running_loop()]  # on the caller's loop, not a thread's
