"""Static breakpoints (interrupt_before/after) and dynamic interrupt() with Command(resume=...)."""

import operator
from typing import Annotated, Any, TypedDict

import pytest

import tether

from .conftest import LIBS, Lib, msorted, norm, norm_debug, norm_history, norm_snapshot, thread


class S(TypedDict, total=False):
    msgs: Annotated[list[str], operator.add]
    answer: Any
    n: int


def pipeline(lib: Lib, **kw: Any) -> Any:
    """plan -> act -> report, each appending its name."""

    def mk(name: str):
        def fn(state: S):
            lib.calls[name] += 1
            return {"msgs": [name], "n": state.get("n", 0) + 1}

        return fn

    g = lib.StateGraph(S)
    g.add_node("plan", mk("plan"))
    g.add_node("act", mk("act"))
    g.add_node("report", mk("report"))
    g.add_edge(lib.START, "plan")
    g.add_edge("plan", "act")
    g.add_edge("act", "report")
    g.add_edge("report", lib.END)
    return g.compile(**kw)


def parallel(lib: Lib, **kw: Any) -> Any:
    """start -> (left, right) -> join."""

    def mk(name: str):
        def fn(state: S):
            lib.calls[name] += 1
            return {"msgs": [name]}

        return fn

    g = lib.StateGraph(S)
    for name in ("start", "left", "right", "join"):
        g.add_node(name, mk(name))
    g.add_edge(lib.START, "start")
    g.add_edge("start", "left")
    g.add_edge("start", "right")
    g.add_edge(["left", "right"], "join")
    g.add_edge("join", lib.END)
    return g.compile(**kw)


def state_obs(g: Any) -> dict[str, Any]:
    return norm_snapshot(g.get_state(thread()))


# -- static breakpoints ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "nodes"),
    [
        ("before", ["act"]),
        ("before", ["plan"]),
        ("after", ["act"]),
        ("after", ["report"]),
        ("before", ["act", "report"]),
        ("after", ["plan", "act"]),
        ("before", "*"),
        ("after", "*"),
    ],
)
@pytest.mark.parametrize("where", ["compile", "call"])
def test_breakpoint_stop_and_continue(diff, saver_kind, when, nodes, where):
    compile_kw = {f"interrupt_{when}": nodes} if where == "compile" else {}
    call_kw = {f"interrupt_{when}": nodes} if where == "call" else {}

    def drive(lib, g):
        obs = []
        out = g.invoke({"msgs": []}, thread(), **call_kw)
        obs.append(("first", norm(out), state_obs(g)))
        for _ in range(4):  # continue until the run finishes
            if not g.get_state(thread()).next:
                break
            out = g.invoke(None, thread(), **call_kw)
            obs.append(("continue", norm(out), state_obs(g)))
        obs.append(dict(lib.calls))
        obs.append([(h["source"], h["step"], h["next"]) for h in norm_history(g, thread())])
        return obs

    diff.compare(pipeline, drive, saver=saver_kind, **compile_kw)


@pytest.mark.parametrize("when", ["before", "after"])
def test_breakpoint_stream_updates(diff, saver_kind, when):
    def drive(lib, g):
        first = [norm(c) for c in g.stream({"msgs": []}, thread(), stream_mode="updates")]
        rest = [norm(c) for c in g.stream(None, thread(), stream_mode="updates")]
        values = [norm(c) for c in g.stream(None, thread(), stream_mode="values")]
        return first, rest, values

    diff.compare(pipeline, drive, saver=saver_kind, **{f"interrupt_{when}": ["act"]})


def test_breakpoint_stream_values(diff, saver_kind):
    def drive(lib, g):
        first = [norm(c) for c in g.stream({"msgs": []}, thread(), stream_mode="values")]
        rest = [norm(c) for c in g.stream(None, thread(), stream_mode="values")]
        return first, rest

    diff.compare(pipeline, drive, saver=saver_kind, interrupt_before=["report"])


@pytest.mark.parametrize("as_node", [None, "plan", "act"])
def test_update_state_at_breakpoint_then_continue(diff, saver_kind, as_node):
    def drive(lib, g):
        g.invoke({"msgs": []}, thread())
        kw = {"as_node": as_node} if as_node else {}
        g.update_state(thread(), {"msgs": ["edited"], "n": 100}, **kw)
        snap = state_obs(g)
        out = g.invoke(None, thread())
        hist = [(h["source"], h["step"], h["next"]) for h in norm_history(g, thread())]
        return snap, norm(out), dict(lib.calls), hist

    diff.compare(pipeline, drive, saver=saver_kind, interrupt_before=["act"])


def test_update_state_at_after_breakpoint(diff, saver_kind):
    def drive(lib, g):
        g.invoke({"msgs": []}, thread())
        g.update_state(thread(), {"msgs": ["note"]})
        snap = state_obs(g)
        return snap, norm(g.invoke(None, thread())), dict(lib.calls)

    diff.compare(pipeline, drive, saver=saver_kind, interrupt_after=["plan"])


@pytest.mark.parametrize("when", ["before", "after"])
def test_breakpoint_in_parallel_step(diff, saver_kind, when):
    def drive(lib, g):
        out = g.invoke({"msgs": []}, thread())
        snap = state_obs(g)
        calls = dict(lib.calls)
        final = g.invoke(None, thread())
        return norm(out), snap, calls, sorted(final["msgs"]), dict(lib.calls)

    diff.compare(parallel, drive, saver=saver_kind, **{f"interrupt_{when}": ["left"]})


def test_new_input_at_breakpoint_starts_new_turn(diff, saver_kind):
    def drive(lib, g):
        g.invoke({"msgs": ["one"]}, thread())
        out = g.invoke({"msgs": ["two"]}, thread())
        return norm(out), state_obs(g), dict(lib.calls)

    diff.compare(pipeline, drive, saver=saver_kind, interrupt_before=["act"])


def test_per_call_breakpoint_overrides_compile_time(diff, saver_kind):
    def drive(lib, g):
        out = g.invoke({"msgs": []}, thread(), interrupt_before=["report"])
        return norm(out), state_obs(g)

    diff.compare(pipeline, drive, saver=saver_kind, interrupt_before=["act"])


# -- dynamic interrupt() ----------------------------------------------------------------------------


def approval(lib: Lib, **kw: Any) -> Any:
    """draft -> ask (interrupt) -> finish."""

    def draft(state: S):
        lib.calls["draft"] += 1
        return {"msgs": ["draft"]}

    def ask(state: S):
        lib.calls["ask"] += 1
        lib.log.append("before-interrupt")
        answer = lib.interrupt({"question": "ok?", "draft": state["msgs"][-1]})
        lib.log.append(("resumed-with", answer))
        return {"answer": answer, "msgs": ["asked"]}

    def finish(state: S):
        lib.calls["finish"] += 1
        return {"msgs": [f"final:{state['answer']}"]}

    g = lib.StateGraph(S)
    g.add_node("draft", draft)
    g.add_node("ask", ask)
    g.add_node("finish", finish)
    g.add_edge(lib.START, "draft")
    g.add_edge("draft", "ask")
    g.add_edge("ask", "finish")
    g.add_edge("finish", lib.END)
    return g.compile(**kw)


def test_interrupt_output_and_state(diff, saver_kind):
    def drive(lib, g):
        out = g.invoke({"msgs": []}, thread())
        snap = g.get_state(thread())
        return {
            "out": norm(out),
            "state": norm_snapshot(snap),
            "task_interrupts": [[norm(i.value) for i in t.interrupts] for t in snap.tasks],
            "ids_match": [i.id for i in out["__interrupt__"]] == [i.id for i in snap.interrupts],
            "calls": dict(lib.calls),
        }

    obs = diff.compare(approval, drive, saver=saver_kind)
    assert obs["out"]["__interrupt__"] == [("Interrupt", {"question": "ok?", "draft": "draft"})]


@pytest.mark.parametrize("peer", ["memory", "sqlite"])
@pytest.mark.parametrize("value", ["yes", {"approved": True, "note": "fine"}, ["a", 1], 0, ""])
def test_interrupt_resume(diff, saver_kind, value, peer):
    def drive(lib, g):
        g.invoke({"msgs": []}, thread())
        out = g.invoke(lib.Command(resume=value), thread())
        return norm(out), norm_snapshot(g.get_state(thread())), dict(lib.calls), lib.log

    obs = diff.compare(approval, drive, saver=saver_kind, peer_saver=peer)
    assert obs[2]["ask"] == 2  # the node re-runs from its top on resume


def test_interrupt_stream_updates_and_values(diff, saver_kind):
    def drive(lib, g):
        up = [norm(c) for c in g.stream({"msgs": []}, thread(), stream_mode="updates")]
        resumed = [norm(c) for c in g.stream(lib.Command(resume="go"), thread(), stream_mode="updates")]
        return up, resumed

    diff.compare(approval, drive, saver=saver_kind)


def test_interrupt_stream_values(diff, saver_kind):
    def drive(lib, g):
        first = [norm(c) for c in g.stream({"msgs": []}, thread(), stream_mode="values")]
        resumed = [norm(c) for c in g.stream(lib.Command(resume="go"), thread(), stream_mode="values")]
        return first, resumed

    diff.compare(approval, drive, saver=saver_kind)


def test_interrupt_history(diff, saver_kind):
    def drive(lib, g):
        g.invoke({"msgs": []}, thread())
        mid = norm_history(g, thread())
        g.invoke(lib.Command(resume="y"), thread())
        return mid, norm_history(g, thread())

    diff.compare(approval, drive, saver=saver_kind)


def two_questions(lib: Lib, **kw: Any) -> Any:
    def ask_twice(state: S):
        lib.calls["ask_twice"] += 1
        name = lib.interrupt("name?")
        age = lib.interrupt(f"age of {name}?")
        return {"answer": f"{name}:{age}"}

    g = lib.StateGraph(S)
    g.add_node("ask_twice", ask_twice)
    g.add_edge(lib.START, "ask_twice")
    g.add_edge("ask_twice", lib.END)
    return g.compile(**kw)


def test_two_interrupts_in_one_node(diff, saver_kind):
    def drive(lib, g):
        first = norm(g.invoke({}, thread()))
        second = norm(g.invoke(lib.Command(resume="ada"), thread()))
        mid_state = norm_snapshot(g.get_state(thread()))
        third = norm(g.invoke(lib.Command(resume=36), thread()))
        return first, second, mid_state, third, norm_snapshot(g.get_state(thread())), dict(lib.calls)

    obs = diff.compare(two_questions, drive, saver=saver_kind)
    assert obs[3]["answer"] == "ada:36"


def parallel_asks(lib: Lib, **kw: Any) -> Any:
    """fork -> (ask_a, ask_b, plain) -> done; ask_a and ask_b both interrupt."""

    def ask(name: str):
        def fn(state: S):
            lib.calls[name] += 1
            got = lib.interrupt(f"{name}?")
            return {"msgs": [f"{name}={got}"]}

        return fn

    def plain(state: S):
        lib.calls["plain"] += 1
        return {"msgs": ["plain"]}

    def done(state: S):
        lib.calls["done"] += 1
        return {"answer": sorted(state["msgs"])}

    g = lib.StateGraph(S)
    g.add_node("fork", lambda s: {"msgs": ["fork"]})
    g.add_node("ask_a", ask("ask_a"))
    g.add_node("ask_b", ask("ask_b"))
    g.add_node("plain", plain)
    g.add_node("done", done)
    g.add_edge(lib.START, "fork")
    for name in ("ask_a", "ask_b", "plain"):
        g.add_edge("fork", name)
    g.add_edge(["ask_a", "ask_b", "plain"], "done")
    g.add_edge("done", lib.END)
    return g.compile(**kw)


@pytest.mark.parametrize("peer", ["memory", "sqlite"])
def test_parallel_interrupts_resume_with_mapping(diff, saver_kind, peer):
    def drive(lib, g):
        out = g.invoke({"msgs": []}, thread())
        snap = g.get_state(thread())
        pending = {norm(i.value): i.id for i in snap.interrupts}
        obs = {
            "out_interrupts": msorted(norm(out["__interrupt__"])),
            "out_values": {k: sorted(v) for k, v in norm(out).items() if k != "__interrupt__"},
            "state": norm_snapshot(snap),
            "calls_paused": dict(lib.calls),
        }
        final = g.invoke(lib.Command(resume={pending["ask_a?"]: "A", pending["ask_b?"]: "B"}), thread())
        obs["final"] = norm(final)
        obs["calls_final"] = dict(lib.calls)
        obs["end_state"] = norm_snapshot(g.get_state(thread()))
        return obs

    obs = diff.compare(parallel_asks, drive, saver=saver_kind, peer_saver=peer)
    assert obs["calls_final"]["plain"] == 1  # the finished sibling is not re-run
    assert obs["final"]["answer"] == ["ask_a=A", "ask_b=B", "fork", "plain"]


def test_parallel_interrupts_resumed_one_at_a_time(diff, saver_kind):
    def drive(lib, g):
        g.invoke({"msgs": []}, thread())
        ids = {norm(i.value): i.id for i in g.get_state(thread()).interrupts}
        mid = g.invoke(lib.Command(resume={ids["ask_b?"]: "B"}), thread())
        mid_snap = g.get_state(thread())
        obs = {
            "mid": sorted(norm(mid.get("msgs", []))),
            "mid_interrupts": msorted(norm(mid.get("__interrupt__", []))),
            "mid_state": norm_snapshot(mid_snap),
            "calls_mid": dict(lib.calls),
        }
        still = {norm(i.value): i.id for i in mid_snap.interrupts}
        final = g.invoke(lib.Command(resume={still["ask_a?"]: "A"}), thread())
        obs["final"] = norm(final)
        obs["calls_final"] = dict(lib.calls)
        return obs

    diff.compare(parallel_asks, drive, saver=saver_kind)


def test_finished_sibling_not_rerun_on_resume(diff, saver_kind):
    def build(lib, **kw):
        def sibling(state: S):
            lib.calls["sibling"] += 1
            return {"msgs": ["sibling"]}

        def asker(state: S):
            lib.calls["asker"] += 1
            return {"msgs": [f"asker:{lib.interrupt('?')}"]}

        g = lib.StateGraph(S)
        g.add_node("sibling", sibling)
        g.add_node("asker", asker)
        g.add_node("after", lambda s: {"answer": sorted(s["msgs"])})
        g.add_edge(lib.START, "sibling")
        g.add_edge(lib.START, "asker")
        g.add_edge(["sibling", "asker"], "after")
        g.add_edge("after", lib.END)
        return g.compile(**kw)

    def drive(lib, g):
        out = norm(g.invoke({"msgs": []}, thread()))
        snap = norm_snapshot(g.get_state(thread()))
        final = norm(g.invoke(lib.Command(resume="x"), thread()))
        return out, snap, final, dict(lib.calls)

    obs = diff.compare(build, drive, saver=saver_kind)
    assert obs[3] == {"sibling": 1, "asker": 2}


def test_interrupt_in_send_task(diff, saver_kind):
    def build(lib, **kw):
        def review(item: dict[str, Any]):
            lib.calls["review"] += 1
            verdict = lib.interrupt(f"review {item['x']}") if item["x"] == "b" else "auto"
            return {"msgs": [f"{item['x']}:{verdict}"]}

        g = lib.StateGraph(S)
        g.add_node("plan", lambda s: {"n": 1})
        g.add_node("review", review)
        g.add_edge(lib.START, "plan")
        g.add_conditional_edges("plan", lambda s: [lib.Send("review", {"x": x}) for x in "abc"], ["review"])
        g.add_edge("review", lib.END)
        return g.compile(**kw)

    def drive(lib, g):
        out = g.invoke({"msgs": []}, thread())
        snap = norm_snapshot(g.get_state(thread()))
        final = g.invoke(lib.Command(resume="ok"), thread())
        return msorted(norm(out["__interrupt__"])), snap, sorted(final["msgs"]), dict(lib.calls)

    obs = diff.compare(build, drive, saver=saver_kind)
    assert obs[3] == {"review": 4}


def test_interrupt_in_loop_resumed_repeatedly(diff, saver_kind):
    def build(lib, **kw):
        def chat(state: S):
            lib.calls["chat"] += 1
            reply = lib.interrupt(f"turn {state.get('n', 0)}")
            return {"msgs": [reply], "n": state.get("n", 0) + 1}

        g = lib.StateGraph(S)
        g.add_node("chat", chat)
        g.add_edge(lib.START, "chat")
        g.add_conditional_edges("chat", lambda s: "chat" if s["msgs"][-1] != "bye" else lib.END)
        return g.compile(**kw)

    def drive(lib, g):
        outs = [norm(g.invoke({"msgs": []}, thread()))]
        for reply in ["hi", "how", "bye"]:
            outs.append(norm(g.invoke(lib.Command(resume=reply), thread())))
        return outs, norm_snapshot(g.get_state(thread())), dict(lib.calls)

    diff.compare(build, drive, saver=saver_kind)


def test_new_input_while_interrupted(diff, saver_kind):
    def drive(lib, g):
        g.invoke({"msgs": []}, thread())
        out = g.invoke({"msgs": ["fresh"]}, thread())
        return norm(out), norm_snapshot(g.get_state(thread())), dict(lib.calls)

    diff.compare(approval, drive, saver=saver_kind)


def test_update_state_while_interrupted_then_continue(diff, saver_kind):
    """update_state while a node waits on interrupt(); invoke(None) re-runs it and it asks again."""

    def drive(lib, g):
        g.invoke({"msgs": []}, thread())
        g.update_state(thread(), {"msgs": ["edited"]}, as_node="draft")
        snap = norm_snapshot(g.get_state(thread()))
        out = norm(g.invoke(None, thread()))
        after = norm_snapshot(g.get_state(thread()))
        final = norm(g.invoke(lib.Command(resume="y"), thread()))
        return snap, out, after, final, dict(lib.calls)

    diff.compare(approval, drive, saver=saver_kind)


def test_resume_after_update_state_while_interrupted(diff, saver_kind):
    """Edit, then resume: after update_state the resume value answers the next interrupt()."""

    def drive(lib, g):
        g.invoke({"msgs": []}, thread())
        g.update_state(thread(), {"msgs": ["edited"]}, as_node="draft")
        try:
            return "ok", norm(g.invoke(lib.Command(resume="y"), thread()))
        except tether.errors.InvalidResumeError:
            return "InvalidResumeError"

    seen = diff.compare(approval, drive, saver=saver_kind)
    assert seen == ("ok", {"msgs": ["draft", "edited", "asked", "final:y"], "answer": "y"})


async def test_interrupt_async(savers):
    def build(lib, **kw):
        async def ask(state: S):
            lib.calls["ask"] += 1
            return {"answer": lib.interrupt("async?")}

        g = lib.StateGraph(S)
        g.add_node("ask", ask)
        g.add_edge(lib.START, "ask")
        g.add_edge("ask", lib.END)
        return g.compile(**kw)

    seen = {}
    for base in LIBS:
        lib = base.fresh()
        g = build(lib, checkpointer=lib.InMemorySaver())
        first = norm(await g.ainvoke({}, thread()))
        chunks = [norm(c) async for c in g.astream(lib.Command(resume=42), thread(), stream_mode="updates")]
        seen[lib.name] = first, chunks, dict(lib.calls)
    assert seen["tether"] == seen["langgraph"]


# -- intentional difference --------------------------------------------------------------------------


def test_resume_on_thread_not_waiting(diff, saver_kind):
    """LangGraph silently ignores Command(resume=...) when nothing waits; Tether refuses."""

    def drive(lib, g):
        g.invoke({"msgs": []}, thread(), interrupt_before=None)
        g.invoke(lib.Command(resume="late"), thread())  # finishes the pending run
        try:
            res = g.invoke(lib.Command(resume="again"), thread())
        except tether.errors.InvalidResumeError:
            return "InvalidResumeError"
        return "ok", norm(res)

    seen = diff.observe(approval, drive, saver=saver_kind)
    assert seen["tether"] == "InvalidResumeError"
    assert seen["langgraph"][0] == "ok"


def test_debug_stream_across_interrupt_and_resume(diff, saver_kind):
    def drive(lib, g):
        first = norm_debug(list(g.stream({"msgs": []}, thread(), stream_mode="debug")))
        resumed = norm_debug(list(g.stream(lib.Command(resume="ok"), thread(), stream_mode="debug")))
        return first, resumed

    diff.compare(approval, drive, saver=saver_kind)


def test_debug_stream_across_breakpoint(diff, saver_kind):
    def drive(lib, g):
        first = norm_debug(list(g.stream({"msgs": []}, thread(), stream_mode="debug")))
        rest = norm_debug(list(g.stream(None, thread(), stream_mode="debug")))
        return first, rest

    diff.compare(pipeline, drive, saver=saver_kind, interrupt_before=["act"])
