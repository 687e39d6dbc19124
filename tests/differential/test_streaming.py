"""Stream modes (values, updates, debug, custom, several at once) and the async API."""

import asyncio
import operator
from typing import Annotated, Any, TypedDict

import pytest

from .conftest import LIBS, Lib, msorted, norm, norm_debug, norm_snapshot, stepped_updates, thread


class S(TypedDict, total=False):
    n: int
    log: Annotated[list[str], operator.add]
    route: str


def chain(lib: Lib, **kw: Any) -> Any:
    """a -> b -> (c | END) with a conditional; no parallelism, so chunk order is fixed."""

    def a(state: S):
        return {"n": state.get("n", 0) + 1, "log": ["a"]}

    def b(state: S):
        return {"log": ["b"]}

    def c(state: S):
        return {"n": state["n"] * 10, "log": ["c"]}

    g = lib.StateGraph(S)
    g.add_node("a", a)
    g.add_node("b", b)
    g.add_node("c", c)
    g.add_edge(lib.START, "a")
    g.add_edge("a", "b")
    g.add_conditional_edges("b", lambda s: "c" if s.get("route") == "c" else lib.END, ["c", lib.END])
    g.add_edge("c", lib.END)
    return g.compile(**kw)


def diamond(lib: Lib, **kw: Any) -> Any:
    """top -> (left, right, far -> far2) -> bottom (join on left/right/far2)."""

    def mk(name: str):
        def fn(state: S):
            return {"log": [name]}

        return fn

    g = lib.StateGraph(S)
    for name in ("top", "left", "right", "far", "far2", "bottom"):
        g.add_node(name, mk(name))
    g.add_edge(lib.START, "top")
    g.add_edge("top", "left")
    g.add_edge("top", "right")
    g.add_edge("top", "far")
    g.add_edge("far", "far2")
    g.add_edge(["left", "right", "far2"], "bottom")
    g.add_edge("bottom", lib.END)
    return g.compile(**kw)


def sends(lib: Lib, **kw: Any) -> Any:
    def work(arg: dict[str, Any]):
        return {"log": [f"w{arg['i']}"]}

    g = lib.StateGraph(S)
    g.add_node("plan", lambda s: {"n": 3})
    g.add_node("work", work)
    g.add_node("done", lambda s: {"log": ["done"]})
    g.add_edge(lib.START, "plan")
    g.add_conditional_edges("plan", lambda s: [lib.Send("work", {"i": i}) for i in range(s["n"])], ["work"])
    g.add_edge("work", "done")
    g.add_edge("done", lib.END)
    return g.compile(**kw)


INPUTS = [{"n": 1}, {"n": 2, "route": "c", "log": ["seed"]}]


@pytest.mark.parametrize("inp", INPUTS)
@pytest.mark.parametrize("mode", ["values", "updates"])
def test_single_mode_exact(diff, inp, mode):
    diff.compare(chain, lambda lib, g: [norm(c) for c in g.stream(inp, stream_mode=mode)])


@pytest.mark.parametrize("inp", INPUTS)
def test_list_of_modes_exact(diff, inp):
    diff.compare(chain, lambda lib, g: [norm(c) for c in g.stream(inp, stream_mode=["updates", "values"])])


@pytest.mark.parametrize("inp", INPUTS)
def test_single_mode_in_a_list(diff, inp):
    """``stream_mode=["values"]`` yields (mode, chunk) pairs."""
    diff.compare(chain, lambda lib, g: [norm(c) for c in g.stream(inp, stream_mode=["values"])])


def test_default_stream_mode(diff):
    """``graph.stream(input)`` with no stream_mode: a compiled StateGraph streams ``updates``."""
    diff.compare(chain, lambda lib, g: [norm(c) for c in g.stream({"n": 1})])


@pytest.mark.parametrize("mode", ["updates", "debug"])
def test_invoke_with_non_values_stream_mode(diff, mode):
    def drive(lib, g):
        out = g.invoke({"n": 1}, stream_mode=mode)
        return norm(out) if mode == "updates" else norm_debug(out)

    diff.compare(chain, drive)


@pytest.mark.parametrize("saver", [None, "memory", "sqlite"])
@pytest.mark.parametrize("build", [chain, diamond, sends], ids=["chain", "diamond", "sends"])
def test_debug_events(diff, build, saver):
    def drive(lib, g):
        cfg = thread() if saver else None
        return norm_debug(list(g.stream({"n": 1, "route": "c"}, cfg, stream_mode="debug")))

    diff.compare(build, drive, saver=saver)


@pytest.mark.parametrize("build", [diamond, sends], ids=["diamond", "sends"])
def test_parallel_updates_per_step(diff, build):
    diff.compare(build, lambda lib, g: stepped_updates(g, {"n": 1}))


@pytest.mark.parametrize("build", [diamond, sends], ids=["diamond", "sends"])
def test_parallel_values_chunks(diff, build):
    """One values chunk per step; list reducers apply parallel writes in a fixed order."""
    diff.compare(build, lambda lib, g: [norm(c) for c in g.stream({"n": 1}, stream_mode="values")])


def test_values_stream_on_second_turn_of_a_thread(diff, saver_kind):
    def drive(lib, g):
        first = list(g.stream({"n": 1}, thread(), stream_mode="values"))
        second = list(g.stream({"n": 5, "route": "c"}, thread(), stream_mode="values"))
        upd = list(g.stream({"n": 7}, thread(), stream_mode="updates"))
        return norm(first), norm(second), norm(upd)

    diff.compare(chain, drive, saver=saver_kind)


def test_custom_stream_mode(diff):
    def build(lib, **kw):
        def talk(state: S):
            write = lib.get_stream_writer()
            write({"progress": 1})
            write("half")
            return {"log": ["talk"]}

        g = lib.StateGraph(S)
        g.add_node("talk", talk)
        g.add_node("quiet", lambda s: {"log": ["quiet"]})
        g.add_edge(lib.START, "talk")
        g.add_edge("talk", "quiet")
        g.add_edge("quiet", lib.END)
        return g.compile(**kw)

    def drive(lib, g):
        return (
            list(g.stream({}, stream_mode="custom")),
            [norm(c) for c in g.stream({}, stream_mode=["custom", "updates"])],
        )

    diff.compare(build, drive)


def test_stream_checkpoints_mode(diff, saver_kind):
    def drive(lib, g):
        out = []
        for ev in g.stream({"n": 1}, thread(), stream_mode="checkpoints"):
            out.append(
                (
                    ev["metadata"]["source"],
                    ev["metadata"]["step"],
                    sorted(ev["next"]),
                    norm(ev["values"]),
                    ev["parent_config"] is not None,
                )
            )
        return out

    diff.compare(diamond, drive, saver=saver_kind)


# -- async ------------------------------------------------------------------------------------


def async_graph(lib: Lib, **kw: Any) -> Any:
    async def fetch(state: S):
        await asyncio.sleep(0.002)
        lib.calls["fetch"] += 1
        return {"log": ["fetch"]}

    async def slow(state: S):
        await asyncio.sleep(0.01)
        lib.calls["slow"] += 1
        return {"log": ["slow"], "n": state.get("n", 0) + 100}

    def sync_node(state: S):
        lib.calls["sync"] += 1
        return {"log": ["sync"]}

    async def merge(state: S, config):
        lib.calls["merge"] += 1
        return {"log": [f"merge:{(config.get('configurable') or {}).get('tag', '-')}"]}

    g = lib.StateGraph(S)
    g.add_node("fetch", fetch)
    g.add_node("slow", slow)
    g.add_node("sync", sync_node)
    g.add_node("merge", merge)
    g.add_edge(lib.START, "fetch")
    g.add_edge(lib.START, "slow")
    g.add_edge(lib.START, "sync")
    g.add_edge(["fetch", "slow", "sync"], "merge")
    g.add_edge("merge", lib.END)
    return g.compile(**kw)


async def aobserve(build, drive, saver=None, savers=None):
    seen = {}
    for base in LIBS:
        lib = base.fresh()
        kw = {}
        if saver is not None:
            kw["checkpointer"] = savers(lib, saver[lib.name])
        seen[lib.name] = await drive(lib, build(lib, **kw))
    assert seen["tether"] == seen["langgraph"], "Tether diverges from LangGraph"
    return seen["langgraph"]


async def test_ainvoke_async_nodes():
    async def drive(lib, g):
        out = await g.ainvoke({"n": 1}, {"configurable": {"tag": "x"}})
        return norm(out), dict(lib.calls)

    obs = await aobserve(async_graph, drive)
    assert obs[0]["log"][-1] == "merge:x"


async def test_astream_modes():
    async def drive(lib, g):
        values = [norm(c) async for c in g.astream({"n": 1}, stream_mode="values")]
        updates = [norm(c) async for c in g.astream({"n": 1}, stream_mode="updates")]
        multi = [mode async for mode, _ in g.astream({"n": 1}, stream_mode=["values", "updates"])]
        # updates within the parallel step may arrive in completion order: compare per step
        return values, [msorted(updates[:3]), updates[3:]], multi.count("values"), multi.count("updates")

    await aobserve(async_graph, drive)


async def test_astream_sync_graph():
    async def drive(lib, g):
        return [norm(c) async for c in g.astream({"n": 1, "route": "c"}, stream_mode="updates")], norm(
            await g.ainvoke({"n": 2})
        )

    await aobserve(chain, drive)


@pytest.mark.parametrize("tether_saver", ["memory", "sqlite"])
async def test_ainvoke_with_checkpointer(savers, tether_saver):
    async def drive(lib, g):
        out1 = await g.ainvoke({"n": 1}, thread())
        out2 = await g.ainvoke({"n": 2}, thread())
        snap = norm_snapshot(await g.aget_state(thread()))
        hist = [norm_snapshot(s) async for s in g.aget_state_history(thread())]
        return norm(out1), norm(out2), snap, [(h["source"], h["step"], h["next"]) for h in hist], dict(lib.calls)

    await aobserve(async_graph, drive, saver={"langgraph": "memory", "tether": tether_saver}, savers=savers)


async def test_async_node_exception_propagates():
    def build(lib, **kw):
        async def bad(state: S):
            await asyncio.sleep(0)
            raise ZeroDivisionError("async boom")

        g = lib.StateGraph(S)
        g.add_node("bad", bad)
        g.add_edge(lib.START, "bad")
        g.add_edge("bad", lib.END)
        return g.compile(**kw)

    async def drive(lib, g):
        with pytest.raises(ZeroDivisionError):
            await g.ainvoke({})
        return "raised"

    await aobserve(build, drive)


def test_sync_invoke_of_async_node_fails_in_both():
    """Calling invoke() on a graph with an async node is an error in both libraries."""
    for base in LIBS:
        g = async_graph(base.fresh())
        with pytest.raises(Exception):  # noqa: B017 - the error types differ by design
            g.invoke({"n": 1})


def test_stream_with_subgraphs_flag_has_the_namespaced_shape(diff):
    def build(lib, **kw):
        g = lib.StateGraph(S)
        g.add_node("a", lambda s: {"log": ["a"]})
        g.add_edge(lib.START, "a")
        return g.compile(**kw)

    def drive(lib, g):
        single = [norm(c) for c in g.stream({"n": 1}, stream_mode="updates", subgraphs=True)]
        multi = [norm(c) for c in g.stream({"n": 1}, stream_mode=["values", "updates"], subgraphs=True)]
        return single, multi

    diff.compare(build, drive)
