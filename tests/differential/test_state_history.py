"""get_state / get_state_history / update_state and threads, on memory and SQLite savers."""

import itertools
import operator
from typing import Annotated, Any, TypedDict

import pytest

from .conftest import Lib, norm, norm_history, norm_snapshot, outcome, thread


class S(TypedDict, total=False):
    msgs: Annotated[list[str], operator.add]
    count: int
    flag: str


def workflow(lib: Lib, **kw: Any) -> Any:
    """intake -> (research, draft) -> review -> (intake again once | END)."""

    def intake(state: S):
        lib.calls["intake"] += 1
        return {"msgs": ["intake"], "count": state.get("count", 0) + 1}

    def research(state: S):
        lib.calls["research"] += 1
        return {"msgs": ["research"]}

    def draft(state: S):
        lib.calls["draft"] += 1
        return {"msgs": ["draft"]}

    def review(state: S):
        lib.calls["review"] += 1
        return {"msgs": [f"review{state['count']}"]}

    def again(state: S) -> str:
        return "intake" if state["count"] < 2 and state.get("flag") != "once" else lib.END

    g = lib.StateGraph(S)
    g.add_node("intake", intake)
    g.add_node("research", research)
    g.add_node("draft", draft)
    g.add_node("review", review)
    g.add_edge(lib.START, "intake")
    g.add_edge("intake", "research")
    g.add_edge("intake", "draft")
    g.add_edge(["research", "draft"], "review")
    g.add_conditional_edges("review", again, ["intake", lib.END])
    return g.compile(**kw)


def linear3(lib: Lib, **kw: Any) -> Any:
    def mk(name: str):
        def fn(state: S):
            lib.calls[name] += 1
            return {"msgs": [name], "count": state.get("count", 0) + 1}

        return fn

    g = lib.StateGraph(S)
    g.add_sequence([("one", mk("one")), ("two", mk("two")), ("three", mk("three"))])
    g.add_edge(lib.START, "one")
    g.add_edge("three", lib.END)
    return g.compile(**kw)


def test_get_state_after_run(diff, saver_kind):
    def drive(lib, g):
        out = g.invoke({"msgs": []}, thread())
        return norm(out), norm_snapshot(g.get_state(thread()))

    diff.compare(workflow, drive, saver=saver_kind)


def test_get_state_unknown_thread(diff, saver_kind):
    def drive(lib, g):
        g.invoke({"msgs": []}, thread("known"))
        snap = g.get_state(thread("unknown"))
        return norm_snapshot(snap), snap.metadata, snap.created_at, list(g.get_state_history(thread("unknown")))

    diff.compare(workflow, drive, saver=saver_kind)


def test_full_history(diff, saver_kind):
    def drive(lib, g):
        g.invoke({"msgs": []}, thread())
        return norm_history(g, thread())

    hist = diff.compare(workflow, drive, saver=saver_kind)
    assert [h["step"] for h in hist] == sorted((h["step"] for h in hist), reverse=True)
    assert hist[-1]["source"] == "input"


def test_history_parent_links(diff, saver_kind):
    """Each entry's parent_config names the next-older entry's checkpoint."""

    def drive(lib, g):
        g.invoke({"msgs": []}, thread())
        hist = list(g.get_state_history(thread()))
        links = []
        for newer, older in itertools.pairwise(hist):
            parent_id = newer.parent_config["configurable"]["checkpoint_id"]
            links.append(parent_id == older.config["configurable"]["checkpoint_id"])
        return links, hist[-1].parent_config is None

    diff.compare(workflow, drive, saver=saver_kind)


@pytest.mark.parametrize("limit", [1, 2, 5, 100])
def test_history_limit(diff, saver_kind, limit):
    def drive(lib, g):
        g.invoke({"msgs": []}, thread())
        return norm_history(g, thread(), limit=limit)

    diff.compare(workflow, drive, saver=saver_kind)


@pytest.mark.parametrize("index", [0, 2, 5])
def test_history_before(diff, saver_kind, index):
    def drive(lib, g):
        g.invoke({"msgs": []}, thread())
        hist = list(g.get_state_history(thread()))
        before = hist[index].config
        return norm_history(g, thread(), before=before), norm_history(g, thread(), before=before, limit=2)

    diff.compare(workflow, drive, saver=saver_kind)


@pytest.mark.parametrize("filt", [{"source": "loop"}, {"source": "input"}, {"step": 2}, {"source": "update"}])
def test_history_filter(diff, saver_kind, filt):
    def drive(lib, g):
        g.invoke({"msgs": []}, thread())
        g.update_state(thread(), {"flag": "patched"}, as_node="review")
        g.invoke({"msgs": ["turn2"], "count": 0, "flag": "once"}, thread())
        return norm_history(g, thread(), filter=filt)

    diff.compare(workflow, drive, saver=saver_kind)


def test_get_state_at_older_checkpoint(diff, saver_kind):
    def drive(lib, g):
        g.invoke({"msgs": []}, thread())
        hist = list(g.get_state_history(thread()))
        return [norm_snapshot(g.get_state(h.config)) for h in hist[::2]]

    diff.compare(workflow, drive, saver=saver_kind)


def test_get_state_history_task_results(diff, saver_kind):
    def drive(lib, g):
        g.invoke({"msgs": []}, thread())
        hist = g.get_state_history(thread())
        return [(h.metadata["step"], sorted((t.name, norm(t.result)) for t in h.tasks)) for h in hist]

    diff.compare(workflow, drive, saver=saver_kind)


# -- threads ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("peer", ["memory", "sqlite"])
def test_threads_accumulate_and_are_independent(diff, saver_kind, peer):
    def drive(lib, g):
        out = []
        for tid, inp in [
            ("a", {"msgs": ["hi"]}),
            ("b", {"msgs": ["yo"]}),
            ("a", {"msgs": ["again"]}),
            ("a", {"msgs": ["third"], "count": 0}),
            ("b", {"count": 5}),
        ]:
            out.append((tid, norm(g.invoke(inp, thread(tid)))))
        out.append(norm_snapshot(g.get_state(thread("a"))))
        out.append(norm_snapshot(g.get_state(thread("b"))))
        out.append([(h["source"], h["step"]) for h in norm_history(g, thread("a"))])
        out.append(dict(lib.calls))
        return out

    diff.compare(linear3, drive, saver=saver_kind, peer_saver=peer)


def test_second_turn_steps_continue(diff, saver_kind):
    def drive(lib, g):
        g.invoke({"msgs": ["1"]}, thread())
        g.invoke({"msgs": ["2"]}, thread())
        return [(h["source"], h["step"], h["next"]) for h in norm_history(g, thread())]

    diff.compare(linear3, drive, saver=saver_kind)


def test_invoke_none_on_finished_thread(diff, saver_kind):
    def drive(lib, g):
        g.invoke({"msgs": ["1"]}, thread())
        res = outcome(lambda: g.invoke(None, thread()), lib)
        return res, len(list(g.get_state_history(thread()))), dict(lib.calls)

    diff.compare(linear3, drive, saver=saver_kind)


def test_invoke_none_on_fresh_thread(diff, saver_kind):
    def drive(lib, g):
        return outcome(lambda: g.invoke(None, thread("fresh")), lib), list(g.get_state_history(thread("fresh")))

    diff.compare(linear3, drive, saver=saver_kind)


# -- update_state ------------------------------------------------------------------------------


def test_update_state_inferred_as_node(diff, saver_kind):
    """On a finished linear thread the last writer is unambiguous: no as_node needed."""

    def drive(lib, g):
        g.invoke({"msgs": []}, thread())
        cfg = g.update_state(thread(), {"msgs": ["patched"], "flag": "x"})
        snap = norm_snapshot(g.get_state(thread()))
        return bool(cfg["configurable"].get("checkpoint_id")), snap, norm(g.invoke(None, thread())), dict(lib.calls)

    diff.compare(linear3, drive, saver=saver_kind)


@pytest.mark.parametrize("peer", ["memory", "sqlite"])
@pytest.mark.parametrize("as_node", ["one", "two", "three"])
def test_update_state_as_node_then_continue(diff, saver_kind, as_node, peer):
    def drive(lib, g):
        g.invoke({"msgs": []}, thread())
        g.update_state(thread(), {"msgs": [f"as-{as_node}"]}, as_node=as_node)
        snap = norm_snapshot(g.get_state(thread()))
        out = norm(g.invoke(None, thread()))
        return snap, out, dict(lib.calls), [(h["source"], h["step"], h["next"]) for h in norm_history(g, thread())]

    diff.compare(linear3, drive, saver=saver_kind, peer_saver=peer)


def test_update_state_reducer_and_overwrite(diff, saver_kind):
    def drive(lib, g):
        g.invoke({"msgs": ["a"], "count": 10}, thread())
        g.update_state(thread(), {"msgs": ["b", "c"], "count": 0}, as_node="three")
        return norm(g.get_state(thread()).values)

    obs = diff.compare(linear3, drive, saver=saver_kind)
    assert obs["count"] == 0 and obs["msgs"][-2:] == ["b", "c"]


def test_update_state_on_fresh_thread(diff, saver_kind):
    def drive(lib, g):
        cfg = g.update_state(thread("new"), {"msgs": ["seeded"], "count": 7})
        snap = norm_snapshot(g.get_state(thread("new")))
        hist = norm_history(g, thread("new"))
        cont = outcome(lambda: g.invoke(None, thread("new")), lib)
        return bool(cfg["configurable"].get("checkpoint_id")), snap, hist, cont, dict(lib.calls)

    diff.compare(linear3, drive, saver=saver_kind)


def test_update_state_on_fresh_thread_as_node(diff, saver_kind):
    def drive(lib, g):
        g.update_state(thread("new"), {"msgs": ["seeded"]}, as_node="one")
        snap = norm_snapshot(g.get_state(thread("new")))
        cont = outcome(lambda: g.invoke(None, thread("new")), lib)
        return snap, cont, dict(lib.calls)

    diff.compare(linear3, drive, saver=saver_kind)


def test_update_state_then_new_input(diff, saver_kind):
    def drive(lib, g):
        g.invoke({"msgs": ["t1"]}, thread())
        g.update_state(thread(), {"flag": "between"}, as_node="three")
        out = g.invoke({"msgs": ["t2"]}, thread())
        return norm(out), [(h["source"], h["step"]) for h in norm_history(g, thread())]

    diff.compare(linear3, drive, saver=saver_kind)


def test_update_state_ambiguous_as_node_after_parallel_step(diff, saver_kind):
    """After a parallel step is interrupted, the writer is ambiguous: both libraries refuse."""

    def drive(lib, g):
        g.invoke({"msgs": []}, thread(), interrupt_after=["research", "draft"])
        snap = norm_snapshot(g.get_state(thread()))
        try:
            g.update_state(thread(), {"flag": "x"})
        except Exception as exc:
            return snap, "raised", isinstance(exc, (lib.InvalidUpdateError, ValueError))
        return snap, "ok", norm_snapshot(g.get_state(thread()))

    diff.compare(workflow, drive, saver=saver_kind)


def test_update_state_returns_usable_config(diff, saver_kind):
    def drive(lib, g):
        g.invoke({"msgs": []}, thread())
        cfg = g.update_state(thread(), {"msgs": ["x"]}, as_node="two")
        return norm_snapshot(g.get_state(cfg)), cfg["configurable"]["thread_id"]

    diff.compare(linear3, drive, saver=saver_kind)
