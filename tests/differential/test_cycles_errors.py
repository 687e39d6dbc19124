"""Cycles, recursion limits, and nodes that raise."""

import operator
import threading
from typing import Annotated, Any, TypedDict

import pytest

import tether

from .conftest import LIBS, Lib, norm, norm_snapshot, outcome, thread


class Loop(TypedDict, total=False):
    n: int
    trail: Annotated[list[str], operator.add]
    stop_at: int
    fail: Any


def loop_graph(lib: Lib, **kw: Any) -> Any:
    """inc -> check -> (inc | END): a two-node cycle with a conditional exit."""

    def inc(state: Loop):
        lib.calls["inc"] += 1
        return {"n": state.get("n", 0) + 1, "trail": ["inc"]}

    def check(state: Loop):
        lib.calls["check"] += 1
        return {"trail": ["check"]}

    def again(state: Loop) -> str:
        return "inc" if state["n"] < state["stop_at"] else lib.END

    g = lib.StateGraph(Loop)
    g.add_node("inc", inc)
    g.add_node("check", check)
    g.add_edge(lib.START, "inc")
    g.add_edge("inc", "check")
    g.add_conditional_edges("check", again, ["inc", lib.END])
    return g.compile(**kw)


def self_loop(lib: Lib, **kw: Any) -> Any:
    def tick(state: Loop):
        lib.calls["tick"] += 1
        return {"n": state.get("n", 0) + 1}

    g = lib.StateGraph(Loop)
    g.add_node("tick", tick)
    g.add_edge(lib.START, "tick")
    g.add_conditional_edges("tick", lambda s: "tick" if s["n"] < s["stop_at"] else lib.END)
    return g.compile(**kw)


@pytest.mark.parametrize("stop_at", [1, 3, 7])
def test_cycle_with_conditional_exit(diff, stop_at):
    def drive(lib, g):
        inp = {"n": 0, "stop_at": stop_at}
        return g.invoke(inp), list(g.stream(inp, stream_mode="updates")), dict(lib.calls)

    obs = diff.compare(loop_graph, drive)
    assert obs[0]["n"] == stop_at


@pytest.mark.parametrize("build", [loop_graph, self_loop], ids=["two-node", "self"])
@pytest.mark.parametrize(
    ("stop_at", "limit"), [(2, 1), (3, 3), (3, 4), (4, 5), (5, 5), (5, 10), (6, 11), (6, 12), (50, 7)]
)
def test_recursion_limit_boundary(diff, build, stop_at, limit):
    def drive(lib, g):
        res = outcome(lambda: g.invoke({"n": 0, "stop_at": stop_at}, {"recursion_limit": limit}), lib)
        return res, dict(lib.calls)

    diff.compare(build, drive)


@pytest.mark.parametrize("limit", [2, 5])
def test_recursion_limit_stream_chunks_before_error(diff, limit):
    def drive(lib, g):
        chunks = []
        try:
            for chunk in g.stream({"n": 0, "stop_at": 100}, {"recursion_limit": limit}, stream_mode="updates"):
                chunks.append(chunk)
        except lib.GraphRecursionError:
            return "raised", chunks, dict(lib.calls)
        return "ok", chunks, dict(lib.calls)

    obs = diff.compare(loop_graph, drive)
    assert obs[0] == "raised"


def test_recursion_limit_with_checkpointer_state(diff, saver_kind):
    def drive(lib, g):
        cfg = {**thread(), "recursion_limit": 4}
        res = outcome(lambda: g.invoke({"n": 0, "stop_at": 100}, cfg), lib)
        snap = norm_snapshot(g.get_state(thread()))
        # continuing with a higher limit picks up where the run stopped
        more = outcome(lambda: g.invoke(None, {**thread(), "recursion_limit": 3}), lib)
        return res, snap, more, norm_snapshot(g.get_state(thread())), dict(lib.calls)

    diff.compare(loop_graph, drive, saver=saver_kind)


def test_recursion_error_is_a_tether_error():
    lib = LIBS[1].fresh()
    g = loop_graph(lib)
    with pytest.raises(tether.errors.GraphRecursionError) as info:
        g.invoke({"n": 0, "stop_at": 100}, {"recursion_limit": 3})
    assert isinstance(info.value, tether.TetherError)


@pytest.mark.slow
def test_default_recursion_limit(diff):
    """With no recursion_limit in the config, LangGraph 1.2 allows 10007 steps (its default)."""

    def drive(lib, g):
        return outcome(lambda: g.invoke({"n": 0, "stop_at": 10_005}), lib), dict(lib.calls)

    obs = diff.compare(self_loop, drive)
    assert obs[1] == {"tick": 10_005}


def test_default_recursion_limit_not_hit(diff):
    def drive(lib, g):
        return outcome(lambda: g.invoke({"n": 0, "stop_at": 20}), lib), dict(lib.calls)

    diff.compare(self_loop, drive)


# -- nodes raising --------------------------------------------------------------------------------


class BoomError(Exception):
    pass


def failing_graph(lib: Lib, **kw: Any) -> Any:
    """start -> (ok_branch, risky) -> end; risky raises while state["fail"] is truthy."""

    def start(state: Loop):
        lib.calls["start"] += 1
        return {"trail": ["start"]}

    def ok_branch(state: Loop):
        lib.calls["ok_branch"] += 1
        return {"trail": ["ok"]}

    def risky(state: Loop):
        lib.calls["risky"] += 1
        kind = state.get("fail")
        if kind == "value":
            raise ValueError("bad value")
        if kind == "key":
            return {"trail": [state["missing"]]}  # KeyError
        if kind == "custom":
            raise BoomError("boom")
        return {"trail": ["risky"], "n": 1}

    g = lib.StateGraph(Loop)
    g.add_node("start", start)
    g.add_node("ok_branch", ok_branch)
    g.add_node("risky", risky)
    g.add_node("end", lambda s: {"trail": ["end"]})
    g.add_edge(lib.START, "start")
    g.add_edge("start", "ok_branch")
    g.add_edge("start", "risky")
    g.add_edge(["ok_branch", "risky"], "end")
    g.add_edge("end", lib.END)
    return g.compile(**kw)


@pytest.mark.parametrize(("fail", "exc"), [("value", ValueError), ("key", KeyError), ("custom", BoomError)])
def test_node_exception_propagates_same_type(diff, fail, exc):
    def drive(lib, g):
        with pytest.raises(exc) as info:
            g.invoke({"fail": fail, "trail": []})
        return type(info.value).__name__, str(info.value)

    diff.compare(failing_graph, drive)


def test_node_exception_in_stream(diff):
    def drive(lib, g):
        chunks = []
        with pytest.raises(ValueError):
            for c in g.stream({"fail": "value"}, stream_mode="values"):
                chunks.append(c)
        return chunks

    diff.compare(failing_graph, drive)


def test_failed_task_in_get_state_and_retry(diff, saver_kind):
    def drive(lib, g):
        with pytest.raises(ValueError):
            g.invoke({"fail": "value", "trail": []}, thread())
        failed = g.get_state(thread())
        obs = {
            "after_fail": norm_snapshot(failed),
            "errors": sorted(t.name for t in failed.tasks if t.error is not None),
            "calls_after_fail": dict(lib.calls),
        }
        # fix the input and continue: only the failed task re-runs
        g.update_state(thread(), {"fail": None}, as_node="start")
        obs["after_update"] = norm_snapshot(g.get_state(thread()))
        obs["final"] = norm(g.invoke(None, thread()))
        obs["calls_final"] = dict(lib.calls)
        return obs

    diff.compare(failing_graph, drive, saver=saver_kind)


def test_failed_task_retried_with_none_input(diff, saver_kind):
    """Retrying with invoke(None) re-runs the failing task only; a finished sibling is kept."""

    def build(lib, **kw):
        steady_done = threading.Event()

        def flaky(state: Loop):
            lib.calls["flaky"] += 1
            if lib.calls["flaky"] == 1:
                if not lib.is_tether:
                    # LangGraph may still be scheduling the sibling when the error stops its executor
                    # ("cannot schedule new futures after shutdown"); let the sibling finish first
                    steady_done.wait(timeout=5)
                raise RuntimeError("transient")
            return {"trail": ["flaky"]}

        def steady(state: Loop):
            lib.calls["steady"] += 1
            steady_done.set()
            return {"trail": ["steady"]}

        g = lib.StateGraph(Loop)
        g.add_node("flaky", flaky)
        g.add_node("steady", steady)
        g.add_edge(lib.START, "flaky")
        g.add_edge(lib.START, "steady")
        g.add_edge("flaky", lib.END)
        g.add_edge("steady", lib.END)
        return g.compile(**kw)

    def drive(lib, g):
        with pytest.raises(RuntimeError):
            g.invoke({"trail": []}, thread())
        snap = norm_snapshot(g.get_state(thread()))
        out = g.invoke(None, thread())
        return snap, sorted(out["trail"]), dict(lib.calls), norm_snapshot(g.get_state(thread()))

    obs = diff.compare(build, drive, saver=saver_kind)
    assert obs[2] == {"flaky": 2, "steady": 1}


def test_exception_in_router(diff):
    def build(lib, **kw):
        def router(state: Loop) -> str:
            raise LookupError("no route")

        g = lib.StateGraph(Loop)
        g.add_node("a", lambda s: {"n": 1})
        g.add_node("b", lambda s: {"n": 2})
        g.add_edge(lib.START, "a")
        g.add_conditional_edges("a", router, ["b", lib.END])
        g.add_edge("b", lib.END)
        return g.compile(**kw)

    def drive(lib, g):
        with pytest.raises(LookupError):
            g.invoke({"n": 0})
        return "raised"

    diff.compare(build, drive)


# -- intentional differences: assert Tether's documented behaviour --------------------------------


def test_unknown_key_write_raises_in_tether_only(diff):
    def build(lib, **kw):
        g = lib.StateGraph(Loop)
        g.add_node("a", lambda s: {"n": 1, "not_in_state": 2})
        g.add_edge(lib.START, "a")
        g.add_edge("a", lib.END)
        return g.compile(**kw)

    seen = diff.observe(build, lambda lib, g: outcome(lambda: g.invoke({"n": 0}), lib))
    assert seen["langgraph"] == ("ok", {"n": 1, "trail": []})
    assert seen["tether"] == ("raised", "InvalidUpdateError")


def test_unreachable_node_is_a_build_error_in_tether_only():
    for lib in LIBS:
        g = lib.StateGraph(Loop)
        g.add_node("a", lambda s: {"n": 1})
        g.add_node("orphan", lambda s: {"n": 2})
        g.add_edge(lib.START, "a")
        g.add_edge("a", lib.END)
        if lib.is_tether:
            with pytest.raises(tether.errors.GraphBuildError):
                g.compile()
        else:
            assert g.compile().invoke({"n": 0}) == {"n": 1, "trail": []}


def test_unreachable_node_allowed_with_dynamic_routing(diff):
    def build(lib, **kw):
        g = lib.StateGraph(Loop)
        g.add_node("a", lambda s: lib.Command(update={"n": 1}, goto="b"))
        g.add_node("b", lambda s: {"n": s["n"] + 1})
        g.add_edge(lib.START, "a")
        return g.compile(**kw)

    diff.compare(build, lambda lib, g: g.invoke({"n": 0}))


@pytest.mark.parametrize("bad", ["missing", "edge_to_missing"])
def test_build_errors_in_both(bad):
    for lib in LIBS:
        g = lib.StateGraph(Loop)
        g.add_node("a", lambda s: {"n": 1})
        if bad == "missing":
            g.add_edge(lib.START, "nope")
        else:
            g.add_edge(lib.START, "a")
            g.add_edge("a", "nope")
        with pytest.raises(ValueError):
            g.compile()


def test_duplicate_node_name_rejected_in_both():
    for lib in LIBS:
        g = lib.StateGraph(Loop)
        g.add_node("a", lambda s: {"n": 1})
        with pytest.raises(ValueError):
            g.add_node("a", lambda s: {"n": 2})
