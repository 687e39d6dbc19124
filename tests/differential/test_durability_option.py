"""``durability=`` on invoke/stream/ainvoke/astream/batch: "sync", "async" and "exit".

Semantics checked against LangGraph 1.2: "sync" and "async" store every step; "exit" stores
only the run's last checkpoint (finished, paused or failed), whose parent is the stored
checkpoint the run started from. Tether-only tests check that an "exit" checkpoint reads back
from a fresh store on the same file, and that "exit" commits fewer transactions.
"""

from __future__ import annotations

import asyncio
import operator
import sqlite3
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

import tether
from tether.errors import ConfigError

from .conftest import Lib, norm, norm_debug, norm_history, norm_snapshot, outcome, thread

DURABILITIES = ("sync", "async", "exit")


class S(TypedDict, total=False):
    n: int
    log: Annotated[list[str], operator.add]


def asks(lib: Lib, **kw: Any) -> Any:
    """a -> b -> c; c asks a person for a number with interrupt() and adds it."""

    def a(state: S) -> Any:
        return {"n": state.get("n", 0) + 10, "log": ["a"]}

    def b(state: S) -> Any:
        if lib.log:
            raise ValueError("b failed")
        return {"n": state["n"] + 10, "log": ["b"]}

    def c(state: S) -> Any:
        answer = lib.interrupt("how many?")
        return {"n": state["n"] + answer, "log": ["c"]}

    g = lib.StateGraph(S)
    g.add_node("a", a)
    g.add_node("b", b)
    g.add_node("c", c)
    g.add_edge(lib.START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    g.add_edge("c", lib.END)
    return g.compile(**kw)


def chain(lib: Lib, **kw: Any) -> Any:
    """a -> b -> c, each adding one and logging its name."""

    def step(name: str) -> Any:
        return lambda state: {"n": state.get("n", 0) + 1, "log": [name]}

    g = lib.StateGraph(S)
    for name in "abc":
        g.add_node(name, step(name))
    g.add_edge(lib.START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    g.add_edge("c", lib.END)
    return g.compile(**kw)


def fan_out(lib: Lib, **kw: Any) -> Any:
    """s -> (l, r) -> j; r fails when the run's log says so."""

    def r(state: S) -> Any:
        if lib.log:
            raise ValueError("r failed")
        return {"log": ["r"]}

    g = lib.StateGraph(S)
    g.add_node("s", lambda state: {"log": ["s"]})
    g.add_node("l", lambda state: {"log": ["l"]})
    g.add_node("r", r)
    g.add_node("j", lambda state: {"log": ["j"]})
    g.add_edge(lib.START, "s")
    g.add_edge("s", "l")
    g.add_edge("s", "r")
    g.add_edge(["l", "r"], "j")
    g.add_edge("j", lib.END)
    return g.compile(**kw)


def history(g: Any, *, results: bool = True) -> list[dict[str, Any]]:
    """The thread's history, with each entry's parent checked to be stored too.

    ``results=False`` drops task results: after an "exit" run LangGraph no longer knows what
    the tasks of the checkpoint it started from produced (it stored no writes for them);
    Tether still does when the run took one step, as that step's log entry is what it stores.
    """
    entries = norm_history(g, thread())
    ids = {s.config["configurable"]["checkpoint_id"] for s in g.get_state_history(thread())}
    for entry, snap in zip(entries, g.get_state_history(thread()), strict=True):
        parent = snap.parent_config["configurable"]["checkpoint_id"] if snap.parent_config else None
        entry["parent_stored"] = parent in ids if parent is not None else None
        if not results:
            entry["tasks"] = [(t[0], t[2], t[3]) for t in entry["tasks"]]
    return entries


@pytest.mark.parametrize("durability", DURABILITIES)
def test_interrupt_then_resume(diff, saver_kind, durability):
    """The brief's case: exit keeps step 2 (waiting on c), then step 3 on top of it."""

    def drive(lib, g):
        first = g.invoke({"n": 0}, thread(), durability=durability)
        paused = history(g), norm_snapshot(g.get_state(thread()))
        last = g.invoke(lib.Command(resume=5), thread(), durability=durability)
        return norm(first), paused, norm(last), history(g, results=durability != "exit")

    seen = diff.compare(asks, drive, saver=saver_kind)
    steps = [[h["step"] for h in seen[1][0]], [h["step"] for h in seen[3]]]
    assert steps == ([[2], [3, 2]] if durability == "exit" else [[2, 1, 0, -1], [3, 2, 1, 0, -1]])


def test_exit_keeps_what_the_resumed_step_wrote(diff, saver_kind):
    """Where Tether knows more than LangGraph: the one step from a stored checkpoint is in its log."""

    def drive(lib, g):
        g.invoke({"n": 0}, thread(), durability="exit")
        g.invoke(lib.Command(resume=5), thread(), durability="exit")
        return [[(t.name, norm(t.result)) for t in s.tasks] for s in g.get_state_history(thread())]

    seen = diff.observe(asks, drive, saver=saver_kind)
    assert seen["langgraph"] == [[], [("c", None)]]
    assert seen["tether"] == [[], [("c", {"n": 25, "log": ["c"]})]]


def test_exit_error_keeps_the_checkpoint_the_failed_step_ran_from(diff, saver_kind):
    def drive(lib, g):
        lib.log.append("fail")
        raised = outcome(lambda: g.invoke({"n": 0}, thread(), durability="exit"), lib)
        return raised, history(g), norm_snapshot(g.get_state(thread()))

    seen = diff.compare(asks, drive, saver=saver_kind)
    assert [(h["step"], h["next"], h["has_parent"]) for h in seen[1]] == [(1, ["b"], False)]


def test_exit_error_in_a_parallel_branch_keeps_the_finished_sibling(diff, saver_kind):
    def drive(lib, g):
        lib.log.append("fail")
        raised = outcome(lambda: g.invoke({}, thread(), durability="exit"), lib)
        steps = [(s.metadata["step"], s.metadata["source"]) for s in g.get_state_history(thread())]
        return raised, steps, norm_snapshot(g.get_state(thread()))

    diff.compare(fan_out, drive, saver=saver_kind)


def test_exit_parallel_branches_finish(diff, saver_kind):
    def drive(lib, g):
        return norm(g.invoke({}, thread(), durability="exit")), history(g)

    diff.compare(fan_out, drive, saver=saver_kind)


def test_exit_turns_chain_onto_each_other(diff, saver_kind):
    """Each turn stores one checkpoint whose parent is the previous turn's; a run with nothing
    to do (invoke(None) on a finished thread) stores nothing."""

    def drive(lib, g):
        g.invoke({"n": 0}, thread(), durability="exit")
        g.invoke({"n": 100}, thread(), durability="exit")
        again = g.invoke(None, thread(), durability="exit")
        return history(g), norm(again)

    seen = diff.compare(chain, drive, saver=saver_kind)
    assert [(h["step"], h["parent_stored"]) for h in seen[0]] == [(8, True), (3, None)]


@pytest.mark.parametrize("when", ["before", "after"])
def test_exit_with_breakpoints(diff, saver_kind, when):
    def build(lib, **kw):
        return chain(lib, **{f"interrupt_{when}": ["b" if when == "before" else "a"]}, **kw)

    def drive(lib, g):
        first = g.invoke({"n": 0}, thread(), durability="exit")
        paused = history(g)
        last = g.invoke(None, thread(), durability="exit")
        return norm(first), paused, norm(last), history(g)

    diff.compare(build, drive, saver=saver_kind)


def test_exit_with_update_state_between_runs(diff, saver_kind):
    def drive(lib, g):
        g.invoke({"n": 0}, thread(), durability="exit")
        g.update_state(thread(), {"n": 50})
        updated = history(g)
        last = g.invoke(None, thread(), durability="exit")
        return updated, norm(last), history(g)

    diff.compare(lambda lib, **kw: chain(lib, interrupt_before=["b"], **kw), drive, saver=saver_kind)


def test_exit_answering_twice_asked_question(diff, saver_kind):
    """A resume that stops at the task's next interrupt() writes no new checkpoint."""

    def build(lib, **kw):
        def c(state: S) -> Any:
            x = lib.interrupt("first?")
            y = lib.interrupt("second?")
            return {"n": x + y, "log": ["c"]}

        g = lib.StateGraph(S)
        g.add_node("c", c)
        g.add_edge(lib.START, "c")
        g.add_edge("c", lib.END)
        return g.compile(**kw)

    def drive(lib, g):
        seen = [norm(g.invoke({"n": 0}, thread(), durability="exit")), history(g)]
        seen += [norm(g.invoke(lib.Command(resume=1), thread(), durability="exit")), history(g)]
        seen += [norm(g.invoke(lib.Command(resume=2), thread(), durability="exit")), history(g, results=False)]
        return seen

    diff.compare(build, drive, saver=saver_kind)


def test_exit_recursion_limit_keeps_the_last_checkpoint(diff, saver_kind):
    def build(lib, **kw):
        g = lib.StateGraph(S)
        g.add_node("x", lambda state: {"n": state.get("n", 0) + 1})
        g.add_edge(lib.START, "x")
        g.add_conditional_edges("x", lambda state: "x")
        return g.compile(**kw)

    def drive(lib, g):
        raised = outcome(lambda: g.invoke({"n": 0}, {**thread(), "recursion_limit": 4}, durability="exit"), lib)
        return raised, history(g)

    diff.compare(build, drive, saver=saver_kind)


def test_exit_with_a_subgraph_node(diff, saver_kind):
    def build(lib, **kw):
        sub = lib.StateGraph(S)
        sub.add_node("s1", lambda state: {"log": ["s1"]})
        sub.add_node("s2", lambda state: {"log": ["s2"]})
        sub.add_edge(lib.START, "s1")
        sub.add_edge("s1", "s2")
        sub.add_edge("s2", lib.END)
        g = lib.StateGraph(S)
        g.add_node("a", lambda state: {"log": ["a"]})
        g.add_node("sub", sub.compile())
        g.add_node("z", lambda state: {"log": ["z"]})
        g.add_edge(lib.START, "a")
        g.add_edge("a", "sub")
        g.add_edge("sub", "z")
        g.add_edge("z", lib.END)
        return g.compile(**kw)

    def drive(lib, g):
        return norm(g.invoke({"n": 0}, thread(), durability="exit")), history(g)

    diff.compare(build, drive, saver=saver_kind)


@pytest.mark.parametrize("durability", DURABILITIES)
def test_checkpoint_and_debug_streams(diff, saver_kind, durability):
    """Every step still emits its checkpoint event; under exit only the last one's id is stored."""

    def drive(lib, g):
        out = []
        for turn in ({"n": 0}, {"n": 5}):
            events = list(g.stream(turn, thread(), stream_mode=["checkpoints", "debug"], durability=durability))
            stored = {s.config["configurable"]["checkpoint_id"] for s in g.get_state_history(thread())}
            checkpoints = [c for mode, c in events if mode == "checkpoints"]
            out.append(
                (
                    norm_debug([c for mode, c in events if mode == "debug"]),
                    [
                        (c["metadata"]["step"], c["config"]["configurable"]["checkpoint_id"] in stored)
                        for c in checkpoints
                    ],
                )
            )
        return out

    seen = diff.compare(chain, drive, saver=saver_kind)
    assert [stored for _, stored in seen[0][1]] == [durability != "exit"] * 4 + [True]


@pytest.mark.parametrize("durability", DURABILITIES)
def test_async_drivers_and_batch(diff, saver_kind, durability):
    def drive(lib, g):
        async def run():
            out = [norm(await g.ainvoke({"n": 0}, thread(), durability=durability))]
            out += [norm([c async for c in g.astream({"n": 1}, thread(), durability=durability)])]
            out += [norm(await g.abatch([{"n": 2}], thread(), durability=durability))]
            return out

        out = asyncio.run(run())
        out.append(norm(g.batch([{"n": 3}], thread(), durability=durability)))
        return out, history(g)

    diff.compare(chain, drive, saver=saver_kind)


def test_durability_none_is_the_default(diff, saver_kind):
    def drive(lib, g):
        return norm(g.invoke({"n": 0}, thread(), durability=None)), history(g)

    diff.compare(chain, drive, saver=saver_kind)


def test_durability_without_a_checkpointer_warns(diff):
    def drive(lib, g):
        with pytest.warns(UserWarning, match="durability"):
            return norm(g.invoke({"n": 0}, durability="exit"))

    diff.compare(chain, drive)


# -- Tether only -----------------------------------------------------------------------------------


@pytest.mark.parametrize("durability", ["bogus", "SYNC", 1])
def test_unknown_durability_is_refused(durability):
    """LangGraph runs an unknown value as "async"; Tether names the allowed values."""
    g = chain(_tether(), checkpointer=tether.InMemorySaver())
    with pytest.raises(ConfigError, match="'sync', 'async', 'exit'"):
        g.invoke({"n": 0}, thread(), durability=durability)
    with pytest.raises(ConfigError, match="durability"):
        list(g.stream({"n": 0}, thread(), durability=durability))
    assert list(g.get_state_history(thread())) == []


def _tether() -> Lib:
    from .conftest import TETHER

    return TETHER.fresh()


def _read(path: Path) -> tuple[Any, list[Any]]:
    """State and history of thread t1, read through a fresh store and a freshly compiled graph."""
    with tether.SqliteSaver.from_conn_string(path) as saver:
        g = asks(_tether(), checkpointer=saver)
        state = norm_snapshot(g.get_state(thread()))
        return state, norm_history(g, thread())


@pytest.mark.parametrize("mix", ["exit", "sync-then-exit", "exit-then-sync"])
def test_exit_thread_reads_back_from_a_fresh_sqlite_store(tmp_path, mix):
    path = tmp_path / "t.sqlite"
    first, second = {"exit": ("exit", "exit"), "sync-then-exit": ("sync", "exit"), "exit-then-sync": ("exit", "sync")}[
        mix
    ]
    seen = []
    with tether.SqliteSaver.from_conn_string(path) as saver:
        g = asks(_tether(), checkpointer=saver)
        g.invoke({"n": 0}, thread(), durability=first)
        seen.append((norm_snapshot(g.get_state(thread())), norm_history(g, thread())))
    assert _read(path) == seen[0]
    assert seen[0][0]["values"] == {"n": 20, "log": ["a", "b"]}
    with tether.SqliteSaver.from_conn_string(path) as saver:  # a new store resumes what the old one left
        g = asks(_tether(), checkpointer=saver)
        assert g.invoke(tether.Command(resume=5), thread(), durability=second) == {"n": 25, "log": ["a", "b", "c"]}
        g.invoke({"n": 1}, thread(), durability=second)  # a second turn on top of the saved state
        seen.append((norm_snapshot(g.get_state(thread())), norm_history(g, thread())))
    assert _read(path) == seen[1]
    assert seen[1][0]["values"] == {"n": 21, "log": ["a", "b", "c", "a", "b"]}


def test_exit_checkpoint_is_a_snapshot(tmp_path):
    """The stored record is self-sufficient: its snapshot holds the whole state."""
    path = tmp_path / "t.sqlite"
    with tether.SqliteSaver.from_conn_string(path) as saver:
        g = chain(_tether(), checkpointer=saver)
        g.invoke({"n": 0}, thread(), durability="exit")
        g.invoke({"n": 10}, thread(), durability="exit")
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT c.step, c.parent_id IS NULL, s.state IS NOT NULL FROM checkpoints c"
            " LEFT JOIN snapshots s ON s.thread = c.thread AND s.checkpoint_id = c.checkpoint_id ORDER BY c.step"
        ).fetchall()
    finally:
        conn.close()
    assert rows == [(3, 1, 1), (8, 0, 1)]


@pytest.mark.parametrize(("durability", "commits"), [("sync", 4), ("async", 4), ("exit", 1)])
def test_exit_commits_once_per_run(tmp_path, durability, commits):
    conn = sqlite3.connect(tmp_path / "t.sqlite", check_same_thread=False)
    statements: list[str] = []
    try:
        saver = tether.SqliteSaver(conn)
        conn.set_trace_callback(statements.append)
        g = chain(_tether(), checkpointer=saver)
        g.invoke({"n": 0}, thread(), durability=durability)
        conn.set_trace_callback(None)
        assert sum(s.strip().upper() == "COMMIT" for s in statements) == commits
        assert g.get_state(thread()).values == {"n": 3, "log": ["a", "b", "c"]}
    finally:
        conn.close()


def test_exit_does_not_store_a_finished_siblings_result_mid_step():
    """Under sync a sibling's result is stored as soon as it finishes (so a crash keeps it);
    under exit nothing is written until the run ends."""
    calls: list[str] = []

    class Counting(tether.InMemorySaver):
        def put_pending(self, *args: Any, **kwargs: Any) -> None:
            calls.append("put_pending")
            super().put_pending(*args, **kwargs)

        def put(self, *args: Any, **kwargs: Any) -> None:
            calls.append("put")
            super().put(*args, **kwargs)

        def put_many(self, *args: Any, **kwargs: Any) -> None:
            calls.append("put_many")
            super().put_many(*args, **kwargs)

    def slow(state: S) -> Any:
        time.sleep(0.2)  # finishes well after its sibling
        return {"log": ["slow"]}

    g = tether.StateGraph(S)
    g.add_node("fast", lambda state: {"log": ["fast"]})
    g.add_node("slow", slow)
    g.add_edge(tether.START, "fast")
    g.add_edge(tether.START, "slow")
    app = g.compile(checkpointer=Counting())
    app.invoke({}, thread("sync"), durability="sync")
    assert calls.count("put_pending") == 1
    calls.clear()
    assert app.invoke({}, thread("exit"), durability="exit") == {"log": ["fast", "slow"]}
    assert calls == ["put"]


@pytest.mark.parametrize("drive", ["sync", "async"])
def test_exit_stream_closed_early_stores_where_the_run_got_to(drive):
    """A caller that stops reading keeps the newest checkpoint a "sync" run would have stored
    (LangGraph, which applies a step's writes before emitting its updates, keeps one step more;
    in "sync" mode too), and the thread continues from it."""

    def stop_after_first(durability: str, tid: str, g: Any) -> None:
        if drive == "sync":
            chunks = g.stream({"n": 0}, thread(tid), durability=durability)
            next(chunks)
            chunks.close()
        else:

            async def run() -> None:
                chunks = g.astream({"n": 0}, thread(tid), durability=durability)
                await anext(chunks)
                await chunks.aclose()

            asyncio.run(run())

    g = chain(_tether(), checkpointer=tether.InMemorySaver())
    stop_after_first("sync", "sync", g)
    stop_after_first("exit", "exit", g)
    newest = {tid: norm_snapshot(g.get_state(thread(tid))) for tid in ("sync", "exit")}
    assert newest["exit"] == {**newest["sync"], "has_parent": False}
    assert [s.metadata["step"] for s in g.get_state_history(thread("exit"))] == [0]
    assert g.invoke(None, thread("exit"), durability="exit") == {"n": 3, "log": ["a", "b", "c"]}
