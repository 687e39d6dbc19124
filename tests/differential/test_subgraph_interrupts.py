"""Subgraphs that inherit the parent's checkpointer: interrupt() inside them pauses the parent,
``Command(resume=…)`` resumes the subgraph from its own checkpoint (kept by the parent's saver
under the namespace ``<node>:<task id>``), and the parent carries on."""

from __future__ import annotations

import asyncio
import operator
import sqlite3
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

import tether

from .conftest import LIBS, Lib, norm, norm_snapshot, thread


class S(TypedDict):
    n: int
    log: Annotated[list[str], operator.add]


def _sub(lib: Lib, *, ask: int = 1, interrupt_before: list[str] | None = None, **kw: Any) -> Any:
    """START -> sa -> sb -> END; sb asks ``ask`` questions and adds the answers to n."""

    def sa(state: S) -> dict[str, Any]:
        lib.calls["sa"] += 1
        return {"n": state["n"] + 1, "log": ["sa"]}

    def sb(state: S) -> dict[str, Any]:
        lib.calls["sb"] += 1
        total = sum(lib.interrupt({"q": f"ok{i}?", "n": state["n"]}) for i in range(ask))
        return {"n": state["n"] + total, "log": ["sb"]}

    sub = lib.StateGraph(S)
    sub.add_node("sa", sa)
    sub.add_node("sb", sb)
    sub.add_edge(lib.START, "sa")
    sub.add_edge("sa", "sb")
    sub.add_edge("sb", lib.END)
    return sub.compile(interrupt_before=interrupt_before, **kw)


def _parent(lib: Lib, child: Any, **kw: Any) -> Any:
    """START -> pre -> child -> post -> END."""

    def step(name: str) -> Any:
        def fn(state: S) -> dict[str, Any]:
            lib.calls[name] += 1
            return {"log": [name]}

        return fn

    g = lib.StateGraph(S)
    g.add_node("pre", step("pre"))
    g.add_node("child", child)
    g.add_node("post", step("post"))
    g.add_edge(lib.START, "pre")
    g.add_edge("pre", "child")
    g.add_edge("child", "post")
    g.add_edge("post", lib.END)
    return g.compile(**kw)


def basic(lib: Lib, **kw: Any) -> Any:
    return _parent(lib, _sub(lib), **kw)


def ns_shape(ns: tuple[str, ...]) -> tuple[str, ...]:
    """A namespace with task ids dropped: ``("child:<id>",)`` -> ``("child",)``."""
    return tuple(part.split(":")[0] for part in ns)


def norm_chunks(chunks: list[Any]) -> list[Any]:
    return [(ns_shape(c[0]), *norm(c[1:])) for c in chunks]


def sub_states(snap: Any) -> list[Any]:
    """Each task's subgraph snapshot (get_state(subgraphs=True)), nested, normalised."""
    out = []
    for t in snap.tasks:
        state = t.state
        out.append((t.name, norm_snapshot(state) if state is not None else None))
        if state is not None:
            out.append(sub_states(state))
    return out


def sub_ns(snap: Any) -> list[Any]:
    """The namespace a due subgraph task points at (get_state without subgraphs)."""
    return [
        (t.name, ns_shape((t.state["configurable"]["checkpoint_ns"],)), t.state["configurable"]["checkpoint_ns"][6:])
        for t in snap.tasks
        if isinstance(t.state, dict)
    ]


def test_subgraph_interrupt_pauses_and_resumes_the_parent(diff, saver_kind):
    def drive(lib, g):
        first = norm(g.invoke({"n": 0, "log": []}, thread()))
        snap = g.get_state(thread())
        points_at = [(t.name, t.state["configurable"]["checkpoint_ns"] == f"child:{t.id}") for t in snap.tasks]
        deep = sub_states(g.get_state(thread(), subgraphs=True))
        second = norm(g.invoke(lib.Command(resume=10), thread()))
        history = [norm_snapshot(s) for s in g.get_state_history(thread())]
        return first, norm_snapshot(snap), points_at, deep, second, dict(lib.calls), history

    obs = diff.compare(basic, drive, saver=saver_kind)
    assert obs[4]["n"] == 11
    assert obs[5] == {"pre": 1, "sa": 1, "sb": 2, "post": 1}


def test_resume_with_an_interrupt_id_map(diff, saver_kind):
    def drive(lib, g):
        first = g.invoke({"n": 0, "log": []}, thread())
        (pending,) = first["__interrupt__"]
        assert g.get_state(thread()).interrupts[0].id == pending.id
        second = norm(g.invoke(lib.Command(resume={pending.id: 5}), thread()))
        return norm(first), second, dict(lib.calls)

    diff.compare(basic, drive, saver=saver_kind)


def test_stream_subgraphs_namespaces(diff, saver_kind):
    def drive(lib, g):
        out = []
        for inp in ({"n": 0, "log": []}, lib.Command(resume=3)):
            out.append(norm_chunks(list(g.stream(inp, thread(), subgraphs=True))))
        multi = list(g.stream({"n": 0, "log": []}, thread("t2"), stream_mode=["updates", "values"], subgraphs=True))
        out.append(norm_chunks(multi))
        return out, dict(lib.calls)

    diff.compare(basic, drive, saver=saver_kind)


def test_several_questions_in_one_subgraph_node(diff, saver_kind):
    def drive(lib, g):
        out = [norm(g.invoke({"n": 0, "log": []}, thread()))]
        out.append(norm(g.invoke(lib.Command(resume=1), thread())))
        out.append(norm_snapshot(g.get_state(thread())))
        out.append(norm(g.invoke(lib.Command(resume=2), thread())))
        return out, dict(lib.calls), len(list(g.get_state_history(thread())))

    diff.compare(lambda lib, **kw: _parent(lib, _sub(lib, ask=2), **kw), drive, saver=saver_kind)


def nested(lib: Lib, **kw: Any) -> Any:
    """Two levels: the parent's node ``outer`` calls ``mid.invoke()``; mid has ``inner`` (the
    asking subgraph) as a node."""
    inner = _sub(lib)
    mid = lib.StateGraph(S)

    def m1(state: S) -> dict[str, Any]:
        lib.calls["m1"] += 1
        return {"log": ["m1"]}

    mid.add_node("m1", m1)
    mid.add_node("inner", inner)
    mid.add_edge(lib.START, "m1")
    mid.add_edge("m1", "inner")
    mid.add_edge("inner", lib.END)
    midc = mid.compile()

    def outer(state: S) -> Any:
        lib.calls["outer"] += 1
        return {"n": midc.invoke(state)["n"]}

    return _parent(lib, outer, **kw)


def test_nested_two_levels(diff, saver_kind):
    def drive(lib, g):
        first = norm(g.invoke({"n": 0, "log": []}, thread()))
        snap = norm_snapshot(g.get_state(thread()))
        second = norm_chunks(list(g.stream(lib.Command(resume=7), thread(), subgraphs=True)))
        return first, snap, second, norm(g.get_state(thread()).values), dict(lib.calls)

    diff.compare(nested, drive, saver=saver_kind)


def test_nested_subgraph_nodes_get_state(diff, saver_kind):
    def build(lib, **kw):
        mid = lib.StateGraph(S)
        mid.add_node("m1", lambda state: {"log": ["m1"]})
        mid.add_node("inner", _sub(lib))
        mid.add_edge(lib.START, "m1")
        mid.add_edge("m1", "inner")
        mid.add_edge("inner", lib.END)
        return _parent(lib, mid.compile(), **kw)

    def drive(lib, g):
        first = norm(g.invoke({"n": 0, "log": []}, thread()))
        deep = sub_states(g.get_state(thread(), subgraphs=True))
        chunks = norm_chunks(list(g.stream(lib.Command(resume=2), thread(), subgraphs=True)))
        return first, deep, chunks, dict(lib.calls)

    diff.compare(build, drive, saver=saver_kind)


def test_subgraph_breakpoint_pauses_the_parent(diff, saver_kind):
    def drive(lib, g):
        first = norm(g.invoke({"n": 0, "log": []}, thread()))
        snap = g.get_state(thread())
        second = norm(g.invoke(None, thread()))
        return first, norm_snapshot(snap), second, dict(lib.calls)

    diff.compare(lambda lib, **kw: _parent(lib, _sub(lib, interrupt_before=["sb"]), **kw), drive, saver=saver_kind)


def test_subgraph_invoked_inside_a_node_function(diff, saver_kind):
    def build(lib, **kw):
        sub = _sub(lib)

        def child(state: S) -> dict[str, Any]:
            lib.calls["child"] += 1
            out = sub.invoke(state)
            return {"n": out["n"], "log": ["child"]}

        return _parent(lib, child, **kw)

    def drive(lib, g):
        first = norm(g.invoke({"n": 0, "log": []}, thread()))
        snap = norm_snapshot(g.get_state(thread()))
        second = norm(g.invoke(lib.Command(resume=6), thread()))
        return first, snap, second, dict(lib.calls)

    diff.compare(build, drive, saver=saver_kind)


def test_async_ainvoke_and_astream(diff, saver_kind):
    def drive(lib, g):
        async def run() -> Any:
            first = norm(await g.ainvoke({"n": 0, "log": []}, thread()))
            snap = norm_snapshot(await g.aget_state(thread()))
            deep = sub_states(await g.aget_state(thread(), subgraphs=True))
            chunks = [c async for c in g.astream(lib.Command(resume=8), thread(), subgraphs=True)]
            return first, snap, deep, norm_chunks(chunks), dict(lib.calls)

        return asyncio.run(run())

    diff.compare(basic, drive, saver=saver_kind)


def test_subgraph_with_checkpointer_true_keeps_its_thread(diff, saver_kind):
    class Sub(TypedDict, total=False):
        n: int
        log: Annotated[list[str], operator.add]
        seen: Annotated[list[int], operator.add]

    def build(lib, **kw):
        sub = lib.StateGraph(Sub)
        sub.add_node("x", lambda state: {"seen": [state["n"]]})
        sub.add_edge(lib.START, "x")
        sub.add_edge("x", lib.END)
        g = lib.StateGraph(Sub)
        g.add_node("child", sub.compile(checkpointer=True))
        g.add_edge(lib.START, "child")
        g.add_edge("child", lib.END)
        return g.compile(**kw)

    def drive(lib, g):
        return [norm(g.invoke({"n": i, "log": []}, thread())) for i in range(3)]

    obs = diff.compare(build, drive, saver=saver_kind)
    assert obs[-1]["seen"][-3:] == [0, 1, 2]  # the subgraph remembered its earlier runs


def test_without_any_checkpointer_interrupt_still_fails():
    """Tether keeps its clear error (README, Porting from LangGraph); LangGraph returns the
    interrupt although nothing could resume it."""
    lib = next(lib for lib in LIBS if lib.is_tether).fresh()
    with pytest.raises(tether.errors.GraphRuntimeError, match="needs a checkpointer"):
        basic(lib).invoke({"n": 0, "log": []})


# -- Tether only: a paused subgraph survives the process ------------------------------------


def test_resume_from_a_fresh_sqlite_saver(tmp_path: Path) -> None:
    lib = next(lib for lib in LIBS if lib.is_tether).fresh()
    path = tmp_path / "threads.db"
    conn = sqlite3.connect(path, check_same_thread=False)
    g = basic(lib, checkpointer=tether.SqliteSaver(conn))
    first = g.invoke({"n": 0, "log": []}, thread())
    assert first["__interrupt__"][0].value == {"q": "ok0?", "n": 1}
    conn.close()

    conn = sqlite3.connect(path, check_same_thread=False)  # a new process: new saver, new graph
    try:
        lib2 = lib.fresh()
        g2 = basic(lib2, checkpointer=tether.SqliteSaver(conn))
        snap = g2.get_state(thread(), subgraphs=True)
        assert snap.next == ("child",)
        assert snap.tasks[0].interrupts[0].id == first["__interrupt__"][0].id
        assert snap.tasks[0].state.values["n"] == 1
        assert snap.tasks[0].state.config["configurable"]["checkpoint_ns"] == f"child:{snap.tasks[0].id}"
        out = g2.invoke(tether.Command(resume=10), thread())
        assert out["n"] == 11 and out["log"][-2:] == ["sb", "post"]
        assert dict(lib2.calls) == {"sb": 1, "post": 1}  # sa is not run again after the restart
    finally:
        conn.close()


def test_nested_resume_from_a_fresh_sqlite_saver(tmp_path: Path) -> None:
    lib = next(lib for lib in LIBS if lib.is_tether).fresh()
    path = tmp_path / "threads.db"
    conn = sqlite3.connect(path, check_same_thread=False)
    nested(lib, checkpointer=tether.SqliteSaver(conn)).invoke({"n": 0, "log": []}, thread())
    conn.close()
    conn = sqlite3.connect(path, check_same_thread=False)
    try:
        lib2 = lib.fresh()
        out = nested(lib2, checkpointer=tether.SqliteSaver(conn)).invoke(tether.Command(resume=4), thread())
        assert out["n"] == 5
        assert lib2.calls["m1"] == 0 and lib2.calls["sa"] == 0 and lib2.calls["sb"] == 1
    finally:
        conn.close()


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_subgraph_checkpoints_live_in_the_parent_saver(savers, kind: str) -> None:
    lib = next(lib for lib in LIBS if lib.is_tether).fresh()
    saver = savers(lib, kind)
    g = basic(lib, checkpointer=saver)
    g.invoke({"n": 0, "log": []}, thread())
    task = g.get_state(thread()).tasks[0]
    namespaces = {t.checkpoint_ns for t in saver.threads() if t.thread_id == "t1"}
    assert namespaces == {"", f"child:{task.id}"}


def test_subgraph_checkpointer_false_cannot_pause(savers) -> None:
    lib = next(lib for lib in LIBS if lib.is_tether).fresh()
    g = _parent(lib, _sub(lib, checkpointer=False), checkpointer=savers(lib, "memory"))
    with pytest.raises(tether.errors.GraphRuntimeError, match="checkpointer"):
        g.invoke({"n": 0, "log": []}, thread())
