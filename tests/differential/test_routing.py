"""Fan-out / fan-in, joins, conditional edges, Send map-reduce and Command routing."""

import operator
from typing import Annotated, Any, Literal, TypedDict

import pytest

from .conftest import LIBS, Lib, msorted, norm, outcome, stepped_updates, thread


def merge_dicts(left: dict[str, int] | None, right: dict[str, int] | None) -> dict[str, int]:
    merged = dict(left or {})
    for k, v in (right or {}).items():
        merged[k] = merged.get(k, 0) + v
    return merged


def keep_max(left: int | None, right: int | None) -> int:
    return max(left or 0, right or 0)


class Fan(TypedDict, total=False):
    items: Annotated[list[str], operator.add]
    tally: Annotated[dict[str, int], merge_dicts]
    best: Annotated[int, keep_max]
    route: Any
    last: str


def normalised_final(result: dict[str, Any]) -> dict[str, Any]:
    """Final values with order-insensitive list channels sorted (parallel writers)."""
    out = dict(result)
    if "items" in out:
        out["items"] = sorted(out["items"])
    return out


def observe(lib: Lib, graph: Any, inp: Any, config: Any = None, ordered: bool = True) -> dict[str, Any]:
    res = graph.invoke(inp, config)
    return {
        "invoke": norm(res) if ordered else normalised_final(res),
        "stepped": stepped_updates(graph, inp, config) if config is None else None,
        "calls": dict(lib.calls),
    }


def node(lib: Lib, name: str, **extra: Any):
    def fn(state: Fan) -> dict[str, Any]:
        lib.calls[name] += 1
        return {"items": [name], **extra}

    fn.__name__ = name
    return fn


# -- fan-out / fan-in -----------------------------------------------------------------------


def fan_out_in(lib: Lib, **kw: Any) -> Any:
    g = lib.StateGraph(Fan)
    for name in ("src", "left", "right", "mid", "sink"):
        g.add_node(name, node(lib, name, tally={name: 1}, best=len(name)))
    g.add_edge(lib.START, "src")
    g.add_edge("src", "left")
    g.add_edge("src", "right")
    g.add_edge("src", "mid")
    g.add_edge("left", "sink")
    g.add_edge("right", "sink")
    g.add_edge("mid", "sink")
    g.add_edge("sink", lib.END)
    return g.compile(**kw)


def test_fan_out_fan_in_reducers(diff):
    obs = diff.compare(fan_out_in, lambda lib, g: observe(lib, g, {"items": []}))
    # the three parallel writers are applied in a deterministic order by both libraries
    assert obs["invoke"]["items"][0] == "src" and obs["invoke"]["items"][-1] == "sink"
    assert obs["invoke"]["tally"] == {"src": 1, "left": 1, "right": 1, "mid": 1, "sink": 1}
    assert obs["invoke"]["best"] == 5


def test_fan_out_fan_in_with_checkpointer(diff, saver_kind):
    def drive(lib, g):
        out = g.invoke({"items": ["seed"], "tally": {"src": 10}}, thread())
        hist = [(h.metadata["step"], sorted(h.next), norm(h.values)) for h in g.get_state_history(thread())]
        return norm(out), hist, dict(lib.calls)

    diff.compare(fan_out_in, drive, saver=saver_kind)


def join_graph(lib: Lib, **kw: Any) -> Any:
    """a -> a2 -> c and b -> c, with c joining on [a2, b]: c runs once, after both."""
    g = lib.StateGraph(Fan)
    for name in ("a", "a2", "b", "c"):
        g.add_node(name, node(lib, name))
    g.add_edge(lib.START, "a")
    g.add_edge(lib.START, "b")
    g.add_edge("a", "a2")
    g.add_edge(["a2", "b"], "c")
    g.add_edge("c", lib.END)
    return g.compile(**kw)


def test_join_uneven_branches(diff):
    obs = diff.compare(join_graph, lambda lib, g: observe(lib, g, {"items": []}))
    assert obs["calls"] == {"a": 2, "a2": 2, "b": 2, "c": 2}  # invoke + stream
    assert obs["invoke"]["items"][-1] == "c"


def test_plain_edges_uneven_branches_run_sink_twice(diff):
    """Without a join, a -> a2 -> c and b -> c triggers c in two different steps."""

    def build(lib, **kw):
        g = lib.StateGraph(Fan)
        for name in ("a", "a2", "b", "c"):
            g.add_node(name, node(lib, name))
        g.add_edge(lib.START, "a")
        g.add_edge(lib.START, "b")
        g.add_edge("a", "a2")
        g.add_edge("a2", "c")
        g.add_edge("b", "c")
        g.add_edge("c", lib.END)
        return g.compile(**kw)

    obs = diff.compare(build, lambda lib, g: observe(lib, g, {"items": []}))
    assert obs["calls"]["c"] == 4


def test_join_and_plain_edge_to_same_node(diff, saver_kind):
    def build(lib, **kw):
        g = lib.StateGraph(Fan)
        for name in ("a", "b", "c", "d"):
            g.add_node(name, node(lib, name))
        g.add_edge(lib.START, "a")
        g.add_edge(lib.START, "b")
        g.add_edge(["a", "b"], "c")
        g.add_edge("a", "d")
        g.add_edge("d", lib.END)
        g.add_edge("c", lib.END)
        return g.compile(**kw)

    def drive(lib, g):
        out = g.invoke({"items": []}, thread())
        hist = [(h.metadata["step"], sorted(h.next)) for h in g.get_state_history(thread())]
        return normalised_final(out), hist, dict(lib.calls)

    diff.compare(build, drive, saver=saver_kind)


def test_join_waits_across_a_loop(diff):
    """A join fires once both sources have run, even when one arrives steps later."""

    def build(lib, **kw):
        def slow(state: Fan):
            lib.calls["slow"] += 1
            return {"items": ["slow"], "best": lib.calls["slow"]}

        g = lib.StateGraph(Fan)
        g.add_node("fast", node(lib, "fast"))
        g.add_node("slow", slow)
        g.add_node("done", node(lib, "done"))
        g.add_edge(lib.START, "fast")
        g.add_edge(lib.START, "slow")
        g.add_conditional_edges(
            "slow", lambda s: "slow" if s["best"] < 3 else "ready", {"slow": "slow", "ready": "done"}
        )
        g.add_edge(["fast", "slow"], "done")
        g.add_edge("done", lib.END)
        return g.compile(**kw)

    diff.compare(build, lambda lib, g: (norm(g.invoke({"items": []})), dict(lib.calls)))


# -- conditional edges ----------------------------------------------------------------------------


def cond_graph(router_kind: str, map_kind: str):
    def build(lib: Lib, **kw: Any) -> Any:
        def decide(state: Fan) -> dict[str, Any]:
            lib.calls["decide"] += 1
            return {"items": ["decide"], "last": "decide"}

        def router(state: Fan) -> Any:
            r = state["route"]
            if r == "end":
                return lib.END if map_kind == "none" else "finish"
            return r

        g = lib.StateGraph(Fan)
        g.add_node("decide", decide)
        for name in ("x", "y", "z"):
            g.add_node(name, node(lib, name))
        g.add_edge(lib.START, "decide")
        if map_kind == "dict":
            g.add_conditional_edges("decide", router, {"to_x": "x", "to_y": "y", "to_z": "z", "finish": lib.END})
        elif map_kind == "list":
            g.add_conditional_edges("decide", router, ["x", "y", "z", lib.END])
        else:
            g.add_conditional_edges("decide", router)
        for name in ("x", "y", "z"):
            g.add_edge(name, lib.END)
        return g.compile(**kw)

    return build


@pytest.mark.parametrize(
    ("map_kind", "route"),
    [
        ("none", "x"),
        ("none", ["x", "z"]),
        ("none", "end"),
        ("none", []),
        ("dict", "to_y"),
        ("dict", ["to_x", "to_y"]),
        ("dict", "end"),
        ("list", "z"),
        ("list", ["x", "y", "z"]),
        ("list", "__end__"),
    ],
)
def test_conditional_edges_variants(diff, map_kind, route):
    def drive(lib, g):
        return observe(lib, g, {"items": [], "route": route}, ordered=False)

    diff.compare(cond_graph("name", map_kind), drive)


def test_router_sees_node_own_update(diff):
    """The router runs after the node's write is applied: it sees the node's own update."""

    def build(lib, **kw):
        def work(state: Fan):
            lib.calls["work"] += 1
            return {"best": state.get("best", 0) + 1, "last": f"round{lib.calls['work']}"}

        def router(state: Fan) -> str:
            lib.log.append((state["best"], state["last"]))
            return "work" if state["best"] < 3 else "report"

        g = lib.StateGraph(Fan)
        g.add_node("work", work)
        g.add_node("report", lambda s: {"items": [s["last"]]})
        g.add_edge(lib.START, "work")
        g.add_conditional_edges("work", router)
        g.add_edge("report", lib.END)
        return g.compile(**kw)

    obs = diff.compare(build, lambda lib, g: (g.invoke({"best": 0}), lib.log))
    assert obs[1] == [(1, "round1"), (2, "round2"), (3, "round3")]


def test_router_after_parallel_step_sees_all_updates(diff):
    def build(lib, **kw):
        def router(state: Fan) -> list[str]:
            lib.log.append(sorted(state["items"]))
            return ["fin"] if len(state["items"]) >= 2 else [lib.END]

        g = lib.StateGraph(Fan)
        g.add_node("p", node(lib, "p"))
        g.add_node("q", node(lib, "q"))
        g.add_node("fin", node(lib, "fin"))
        g.add_edge(lib.START, "p")
        g.add_edge(lib.START, "q")
        g.add_conditional_edges("p", router)
        g.add_edge("fin", lib.END)
        return g.compile(**kw)

    diff.compare(build, lambda lib, g: (normalised_final(g.invoke({"items": []})), lib.log, dict(lib.calls)))


def test_conditional_entry_point(diff):
    def build(lib, **kw):
        g = lib.StateGraph(Fan)
        g.add_node("x", node(lib, "x"))
        g.add_node("y", node(lib, "y"))
        g.set_conditional_entry_point(lambda s: s["route"], {"go_x": "x", "go_y": "y"})
        g.add_edge("x", lib.END)
        g.add_edge("y", lib.END)
        return g.compile(**kw)

    diff.compare(build, lambda lib, g: (observe(lib, g, {"route": "go_y"}), observe(lib, g, {"route": "go_x"})))


def test_conditional_edge_from_start_with_list(diff):
    def build(lib, **kw):
        g = lib.StateGraph(Fan)
        for name in ("x", "y", "z"):
            g.add_node(name, node(lib, name))
            g.add_edge(name, lib.END)
        g.add_conditional_edges(lib.START, lambda s: s["route"])
        return g.compile(**kw)

    diff.compare(build, lambda lib, g: observe(lib, g, {"route": ["y", "z"]}, ordered=False))


def test_two_conditional_edges_and_plain_edge_from_one_node(diff):
    def build(lib, **kw):
        g = lib.StateGraph(Fan)
        for name in ("a", "b", "c", "d"):
            g.add_node(name, node(lib, name))
        g.add_edge(lib.START, "a")

        def always_b(state: Fan) -> str:
            return "b"

        def maybe_c(state: Fan) -> list[str]:
            return ["c"] if state.get("route") else [lib.END]

        g.add_conditional_edges("a", always_b)
        g.add_conditional_edges("a", maybe_c)
        g.add_edge("a", "d")
        for name in ("b", "c", "d"):
            g.add_edge(name, lib.END)
        return g.compile(**kw)

    def drive(lib, g):
        return observe(lib, g, {"route": 1}, ordered=False), observe(lib, g, {}, ordered=False)

    diff.compare(build, drive)


def test_router_returning_literal_annotation(diff):
    def build(lib, **kw):
        def router(state: Fan) -> Literal["x", "y"]:
            return "y" if state.get("route") == "y" else "x"

        g = lib.StateGraph(Fan)
        g.add_node("x", node(lib, "x"))
        g.add_node("y", node(lib, "y"))
        g.add_edge(lib.START, "x")
        g.add_conditional_edges("x", router)
        g.add_edge("y", lib.END)
        return g.compile(**kw)

    diff.compare(build, lambda lib, g: observe(lib, g, {"route": "y"}))


async def test_async_router(diff):
    def build(lib, **kw):
        async def router(state: Fan) -> str:
            return "y" if state.get("route") == "y" else lib.END

        g = lib.StateGraph(Fan)
        g.add_node("x", node(lib, "x"))
        g.add_node("y", node(lib, "y"))
        g.add_edge(lib.START, "x")
        g.add_conditional_edges("x", router, ["y", lib.END])
        g.add_edge("y", lib.END)
        return g.compile(**kw)

    seen = {}
    for base in LIBS:
        lib = base.fresh()
        g = build(lib)
        seen[lib.name] = (await g.ainvoke({"route": "y"}), await g.ainvoke({}))
    assert seen["tether"] == seen["langgraph"]


# -- Send map-reduce ------------------------------------------------------------------------------


class MapState(TypedDict, total=False):
    subjects: list[str]
    results: Annotated[list[str], operator.add]
    summary: str


class Job(TypedDict):
    subject: str
    n: int


def map_reduce(lib: Lib, **kw: Any) -> Any:
    def plan(state: MapState):
        lib.calls["plan"] += 1
        return {"results": ["planned"]}

    def fan(state: MapState):
        return [lib.Send("work", {"subject": s, "n": i}) for i, s in enumerate(state["subjects"])]

    def work(job: Job):
        lib.calls["work"] += 1
        lib.log.append(dict(job))
        return {"results": [f"{job['subject']}#{job['n']}"]}

    def reduce(state: MapState):
        lib.calls["reduce"] += 1
        return {"summary": "|".join(sorted(state["results"]))}

    g = lib.StateGraph(MapState)
    g.add_node("plan", plan)
    g.add_node("work", work)
    g.add_node("reduce", reduce)
    g.add_edge(lib.START, "plan")
    g.add_conditional_edges("plan", fan, ["work"])
    g.add_edge("work", "reduce")
    g.add_edge("reduce", lib.END)
    return g.compile(**kw)


@pytest.mark.parametrize("subjects", [["cats", "dogs", "owls"], ["solo"], []])
def test_send_map_reduce(diff, subjects):
    def drive(lib, g):
        res = g.invoke({"subjects": subjects})
        return {
            "summary": res.get("summary"),
            "results": sorted(res["results"]),
            "calls": dict(lib.calls),
            "jobs": msorted(lib.log),
            "stepped": stepped_updates(g, {"subjects": subjects}),
        }

    diff.compare(map_reduce, drive)


def test_send_map_reduce_with_checkpointer(diff, saver_kind):
    def drive(lib, g):
        res = g.invoke({"subjects": ["a", "b"]}, thread())
        hist = [(h.metadata["source"], h.metadata["step"], sorted(h.next)) for h in g.get_state_history(thread())]
        return res["summary"], sorted(res["results"]), hist

    diff.compare(map_reduce, drive, saver=saver_kind)


def test_send_mixed_with_node_names(diff):
    def build(lib, **kw):
        def fan(state: MapState):
            return ["audit", *[lib.Send("work", {"subject": s, "n": 0}) for s in state["subjects"]]]

        def work(job: Job):
            lib.calls["work"] += 1
            return {"results": [job["subject"]]}

        g = lib.StateGraph(MapState)
        g.add_node("work", work)
        g.add_node("audit", lambda s: {"results": ["audit"]})
        g.add_node("collect", lambda s: {"summary": ",".join(sorted(s["results"]))})
        g.add_conditional_edges(lib.START, fan, ["work", "audit"])
        g.add_edge("work", "collect")
        g.add_edge("audit", "collect")
        g.add_edge("collect", lib.END)
        return g.compile(**kw)

    def drive(lib, g):
        res = g.invoke({"subjects": ["p", "q"]})
        return res["summary"], dict(lib.calls), stepped_updates(g, {"subjects": ["p", "q"]})["steps"]

    diff.compare(build, drive)


def test_send_to_same_node_twice_with_same_arg(diff):
    def build(lib, **kw):
        def work(job: Job):
            lib.calls["work"] += 1
            return {"results": [job["subject"]]}

        g = lib.StateGraph(MapState)
        g.add_node("work", work)
        g.add_node("plan", lambda s: {"results": ["plan"]})
        g.add_edge(lib.START, "plan")
        g.add_conditional_edges("plan", lambda s: [lib.Send("work", {"subject": "same", "n": 1})] * 3)
        g.add_edge("work", lib.END)
        return g.compile(**kw)

    diff.compare(build, lambda lib, g: (g.invoke({}), dict(lib.calls)))


def test_send_recursive_fan_out(diff):
    """A Send target that sends again (a tree of tasks), with a reducer collecting leaves."""

    def build(lib, **kw):
        def split(job: Job):
            lib.calls["split"] += 1
            children = [lib.Send("split", {"subject": job["subject"] + c, "n": job["n"] - 1}) for c in "LR"]
            update = {"results": [f"{job['subject']}:{job['n']}"]}
            return lib.Command(update=update, goto=children if job["n"] > 0 else [])

        g = lib.StateGraph(MapState)
        g.add_node("split", split)
        g.add_conditional_edges(lib.START, lambda s: [lib.Send("split", {"subject": "root", "n": 2})], ["split"])
        return g.compile(**kw)

    def drive(lib, g):
        res = g.invoke({})
        return sorted(res["results"]), dict(lib.calls), stepped_updates(g, {})["steps"]

    obs = diff.compare(build, drive)
    assert obs[1] == {"split": 7}


# -- Command ------------------------------------------------------------------------------------


def command_graph(lib: Lib, **kw: Any) -> Any:
    def triage(state: Fan) -> lib.Command[Literal["fast", "slow", "__end__"]]:  # type: ignore[name-defined]
        lib.calls["triage"] += 1
        r = state.get("route")
        if r == "both":
            return lib.Command(update={"last": "triage", "items": ["triage"]}, goto=["fast", "slow"])
        if r == "end":
            return lib.Command(update={"last": "ended"}, goto=lib.END)
        if r == "none":
            return lib.Command(update={"last": "stay"})
        return lib.Command(update={"items": ["triage"]}, goto=r)

    g = lib.StateGraph(Fan)
    g.add_node("triage", triage)
    g.add_node("fast", node(lib, "fast"))
    g.add_node("slow", node(lib, "slow"))
    g.add_edge(lib.START, "triage")
    g.add_edge("fast", lib.END)
    g.add_edge("slow", lib.END)
    return g.compile(**kw)


@pytest.mark.parametrize("route", ["fast", "slow", "both", "end", "none"])
def test_command_goto(diff, route):
    diff.compare(command_graph, lambda lib, g: observe(lib, g, {"route": route, "items": []}, ordered=False))


def test_command_goto_with_checkpointer(diff, saver_kind):
    def drive(lib, g):
        out = g.invoke({"route": "both", "items": []}, thread())
        hist = [(h.metadata["step"], sorted(h.next), [t.name for t in h.tasks]) for h in g.get_state_history(thread())]
        return normalised_final(out), hist

    diff.compare(command_graph, drive, saver=saver_kind)


def test_command_plus_static_edge(diff):
    """A node with a static edge that also returns Command(goto=...) runs both successors."""

    def build(lib, **kw):
        def hop(state: Fan):
            return lib.Command(update={"items": ["hop"]}, goto="extra")

        g = lib.StateGraph(Fan)
        g.add_node("hop", hop)
        g.add_node("after", node(lib, "after"))
        g.add_node("extra", node(lib, "extra"))
        g.add_edge(lib.START, "hop")
        g.add_edge("hop", "after")
        g.add_edge("after", lib.END)
        g.add_edge("extra", lib.END)
        return g.compile(**kw)

    diff.compare(build, lambda lib, g: observe(lib, g, {"items": []}, ordered=False))


def test_command_goto_send(diff):
    def build(lib, **kw):
        def plan(state: MapState):
            return lib.Command(
                update={"results": ["plan"]},
                goto=[lib.Send("work", {"subject": s, "n": 1}) for s in state["subjects"]],
            )

        def work(job: Job):
            return {"results": [job["subject"] * job["n"]]}

        g = lib.StateGraph(MapState)
        g.add_node("plan", plan)
        g.add_node("work", work)
        g.add_edge(lib.START, "plan")
        g.add_edge("work", lib.END)
        return g.compile(**kw)

    diff.compare(build, lambda lib, g: sorted(g.invoke({"subjects": ["u", "v"]})["results"]))


def test_command_loop_until_done(diff):
    def build(lib, **kw):
        def loop(state: Fan) -> lib.Command[Literal["loop", "__end__"]]:  # type: ignore[name-defined]
            lib.calls["loop"] += 1
            n = state.get("best", 0) + 1
            return lib.Command(update={"best": n, "items": [str(n)]}, goto="loop" if n < 4 else lib.END)

        g = lib.StateGraph(Fan)
        g.add_node("loop", loop)
        g.add_edge(lib.START, "loop")
        return g.compile(**kw)

    diff.compare(build, lambda lib, g: observe(lib, g, {}))


def test_command_update_as_list_of_tuples(diff):
    def build(lib, **kw):
        g = lib.StateGraph(Fan)
        g.add_node("a", lambda s: lib.Command(update=[("items", ["one"]), ("items", ["two"]), ("last", "a")]))
        g.add_edge(lib.START, "a")
        g.add_edge("a", lib.END)
        return g.compile(**kw)

    diff.compare(build, lambda lib, g: outcome(lambda: g.invoke({"items": []}), lib))


def test_node_returning_list_of_updates_is_rejected_equally(diff):
    def build(lib, **kw):
        g = lib.StateGraph(Fan)
        g.add_node("a", lambda s: "not a dict")
        g.add_edge(lib.START, "a")
        g.add_edge("a", lib.END)
        return g.compile(**kw)

    def drive(lib, g):
        try:
            g.invoke({})
        except Exception as exc:
            return "raised", isinstance(exc, lib.InvalidUpdateError)
        return "ok"

    diff.compare(build, drive)


def test_two_writers_to_plain_channel_in_one_step(diff):
    """Two parallel nodes writing one key without a reducer is an InvalidUpdateError in both."""

    def build(lib, **kw):
        g = lib.StateGraph(Fan)
        g.add_node("p", lambda s: {"last": "p"})
        g.add_node("q", lambda s: {"last": "q"})
        g.add_edge(lib.START, "p")
        g.add_edge(lib.START, "q")
        g.add_edge("p", lib.END)
        g.add_edge("q", lib.END)
        return g.compile(**kw)

    diff.compare(build, lambda lib, g: outcome(lambda: g.invoke({}), lib)[:2])


def test_path_map_with_bool_keys(diff):
    def build(lib, **kw):
        g = lib.StateGraph(Fan)
        g.add_node("check", node(lib, "check"))
        g.add_node("yes", node(lib, "yes"))
        g.add_edge(lib.START, "check")
        g.add_conditional_edges("check", lambda s: s.get("route") == "go", {True: "yes", False: lib.END})
        g.add_edge("yes", lib.END)
        return g.compile(**kw)

    diff.compare(build, lambda lib, g: (observe(lib, g, {"route": "go"}), observe(lib, g, {"route": "stop"})))


class Totals(TypedDict, total=False):
    total: Annotated[int, operator.add]
    names: Annotated[list[str], operator.add]
    best: Annotated[int, keep_max]


def test_reducer_channels_start_from_their_zero(diff, saver_kind):
    """Reducer keys absent from the input start empty (0, []) and fold every write."""

    def build(lib, **kw):
        g = lib.StateGraph(Totals)
        g.add_node("p", lambda s: {"total": 2, "names": ["p"], "best": 3})
        g.add_node("q", lambda s: {"total": 5, "best": 1})
        g.add_node("r", lambda s: {"total": s["total"], "names": [str(s["total"])]})
        g.add_edge(lib.START, "p")
        g.add_edge(lib.START, "q")
        g.add_edge(["p", "q"], "r")
        g.add_edge("r", lib.END)
        return g.compile(**kw)

    def drive(lib, g):
        out = [norm(g.invoke({}, thread())), norm(g.invoke({"total": 100}, thread()))]
        return out, norm(g.get_state(thread()).values)

    obs = diff.compare(build, drive, saver=saver_kind)
    assert obs[0][0]["total"] == 14


def test_get_state_tasks_for_send_and_command(diff, saver_kind):
    """Pending Send tasks and Command goto targets show up in get_state().next and .tasks."""

    def build(lib, **kw):
        def plan(state: MapState):
            goto = [lib.Send("work", {"subject": "s1", "n": 1}), "audit"]
            return lib.Command(update={"results": ["plan"]}, goto=goto)

        g = lib.StateGraph(MapState)
        g.add_node("plan", plan)
        g.add_node("work", lambda job: {"results": [job["subject"]]})
        g.add_node("audit", lambda s: {"results": ["audit"]})
        g.add_edge(lib.START, "plan")
        g.add_edge("work", lib.END)
        g.add_edge("audit", lib.END)
        return g.compile(**kw)

    def drive(lib, g):
        g.invoke({"subjects": []}, thread(), interrupt_after=["plan"])
        snap = g.get_state(thread())
        return sorted(snap.next), sorted(t.name for t in snap.tasks), sorted(g.invoke(None, thread())["results"])

    diff.compare(build, drive, saver=saver_kind)
