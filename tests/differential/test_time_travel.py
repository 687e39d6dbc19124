"""Time travel: replay from an older checkpoint, fork with update_state on an old config."""

import operator
from typing import Annotated, Any, TypedDict

import pytest

from .conftest import Lib, norm, norm_history, norm_snapshot, outcome, thread


class S(TypedDict, total=False):
    msgs: Annotated[list[str], operator.add]
    n: int
    note: str


def steps3(lib: Lib, **kw: Any) -> Any:
    def mk(name: str):
        def fn(state: S):
            lib.calls[name] += 1
            return {"msgs": [f"{name}{lib.calls[name]}"], "n": state.get("n", 0) + 1}

        return fn

    g = lib.StateGraph(S)
    g.add_node("one", mk("one"))
    g.add_node("two", mk("two"))
    g.add_node("three", mk("three"))
    g.add_edge(lib.START, "one")
    g.add_edge("one", "two")
    g.add_edge("two", "three")
    g.add_edge("three", lib.END)
    return g.compile(**kw)


def branching(lib: Lib, **kw: Any) -> Any:
    """root -> (a, b) -> merge; merge's router loops back to root once."""

    def mk(name: str):
        def fn(state: S):
            lib.calls[name] += 1
            return {"msgs": [name]}

        return fn

    def root(state: S):
        lib.calls["root"] += 1
        return {"msgs": ["root"], "n": state.get("n", 0) + 1}

    g = lib.StateGraph(S)
    g.add_node("root", root)
    g.add_node("a", mk("a"))
    g.add_node("b", mk("b"))
    g.add_node("merge", mk("merge"))
    g.add_edge(lib.START, "root")
    g.add_edge("root", "a")
    g.add_edge("root", "b")
    g.add_edge(["a", "b"], "merge")
    g.add_conditional_edges("merge", lambda s: "root" if s["n"] < 2 else lib.END, ["root", lib.END])
    return g.compile(**kw)


def find(g: Any, cfg: Any, *, next_: tuple[str, ...] | None = None, step: int | None = None) -> Any:
    for snap in g.get_state_history(cfg):
        if (next_ is None or tuple(sorted(snap.next)) == next_) and (step is None or snap.metadata["step"] == step):
            return snap
    raise AssertionError(f"no checkpoint with next={next_} step={step}")


def brief(hist: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(h["source"], h["step"], h["next"], h["has_parent"]) for h in hist]


@pytest.mark.parametrize("target", [("two",), ("three",), ("one",), ("__start__",)])
def test_replay_from_older_checkpoint(diff, saver_kind, target):
    def drive(lib, g):
        g.invoke({"msgs": []}, thread())
        before = norm_history(g, thread())
        old = find(g, thread(), next_=target)
        out = g.invoke(None, old.config)
        after = norm_history(g, thread())
        return {
            "out": norm(out),
            "calls": dict(lib.calls),
            "state": norm_snapshot(g.get_state(thread())),
            "history_grew": len(after) - len(before),
            "history": brief(after),
            # (task results of an old checkpoint are compared in test_state_history)
            "old_still_there": {k: v for k, v in norm_snapshot(g.get_state(old.config)).items() if k != "tasks"},
        }

    diff.compare(steps3, drive, saver=saver_kind)


def test_replay_streams_from_checkpoint(diff, saver_kind):
    def drive(lib, g):
        g.invoke({"msgs": []}, thread())
        old = find(g, thread(), next_=("two",))
        return [norm(c) for c in g.stream(None, old.config, stream_mode="updates")], [
            norm(c) for c in g.stream(None, find(g, thread(), next_=("three",), step=2).config, stream_mode="values")
        ]

    diff.compare(steps3, drive, saver=saver_kind)


def test_replay_in_parallel_graph(diff, saver_kind):
    def drive(lib, g):
        g.invoke({"msgs": []}, thread())
        old = find(g, thread(), next_=("a", "b"), step=1)
        out = g.invoke(None, old.config)
        return norm(out), dict(lib.calls), brief(norm_history(g, thread()))

    diff.compare(branching, drive, saver=saver_kind)


@pytest.mark.parametrize("target", [("two",), ("three",)])
def test_fork_with_update_state_on_old_checkpoint(diff, saver_kind, target):
    def drive(lib, g):
        g.invoke({"msgs": []}, thread())
        old = find(g, thread(), next_=target)
        forked = g.update_state(old.config, {"note": "forked", "msgs": ["edit"]})
        fork_snap = norm_snapshot(g.get_state(forked))
        parent_id = g.get_state(forked).parent_config["configurable"]["checkpoint_id"]
        fork_parent_is_old = parent_id == old.config["configurable"]["checkpoint_id"]
        out = g.invoke(None, forked)
        return {
            "fork": fork_snap,
            "fork_parent_is_old": fork_parent_is_old,
            "out": norm(out),
            "calls": dict(lib.calls),
            "state": norm_snapshot(g.get_state(thread())),
            "history": brief(norm_history(g, thread())),
        }

    diff.compare(steps3, drive, saver=saver_kind)


@pytest.mark.parametrize("as_node", ["one", "two", "three"])
def test_fork_as_node(diff, saver_kind, as_node):
    def drive(lib, g):
        g.invoke({"msgs": []}, thread())
        old = find(g, thread(), next_=("two",))
        forked = g.update_state(old.config, {"msgs": ["edit"]}, as_node=as_node)
        snap = norm_snapshot(g.get_state(forked))
        out = outcome(lambda: g.invoke(None, forked), lib)
        return snap, out, dict(lib.calls), brief(norm_history(g, thread()))

    diff.compare(steps3, drive, saver=saver_kind)


def test_new_input_on_old_checkpoint(diff, saver_kind):
    def drive(lib, g):
        g.invoke({"msgs": []}, thread())
        old = find(g, thread(), next_=("three",))
        out = g.invoke({"msgs": ["again"]}, old.config)
        return norm(out), dict(lib.calls), brief(norm_history(g, thread()))

    diff.compare(steps3, drive, saver=saver_kind)


def test_replay_before_interrupt_asks_again(diff, saver_kind):
    def build(lib, **kw):
        def ask(state: S):
            lib.calls["ask"] += 1
            return {"note": lib.interrupt("sure?")}

        g = lib.StateGraph(S)
        g.add_node("prep", lambda s: {"msgs": ["prep"]})
        g.add_node("ask", ask)
        g.add_edge(lib.START, "prep")
        g.add_edge("prep", "ask")
        g.add_edge("ask", lib.END)
        return g.compile(**kw)

    def drive(lib, g):
        g.invoke({"msgs": []}, thread())
        g.invoke(lib.Command(resume="first"), thread())
        old = find(g, thread(), next_=("ask",))
        again = g.invoke(None, old.config)
        resumed = g.invoke(lib.Command(resume="second"), thread())
        return norm(again), norm(resumed), dict(lib.calls), brief(norm_history(g, thread()))

    diff.compare(build, drive, saver=saver_kind)


def test_replay_with_breakpoint(diff, saver_kind):
    def drive(lib, g):
        g.invoke({"msgs": []}, thread())
        g.invoke(None, thread())
        old = find(g, thread(), next_=("two",))
        stop = g.invoke(None, old.config)
        snap = norm_snapshot(g.get_state(thread()))
        final = g.invoke(None, thread())
        return norm(stop), snap, norm(final), dict(lib.calls)

    diff.compare(steps3, drive, saver=saver_kind, interrupt_before=["three"])
