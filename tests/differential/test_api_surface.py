"""LangGraph APIs a ported program commonly touches beyond the core loop."""

import operator
from typing import Annotated, Any, TypedDict

from .conftest import Lib, norm, outcome, thread


class S(TypedDict, total=False):
    msgs: Annotated[list[str], operator.add]
    x: int


def small(lib: Lib, **kw: Any) -> Any:
    g = lib.StateGraph(S)
    g.add_node("inner", lambda s: {"msgs": ["inner"], "x": s.get("x", 0) + 1})
    g.add_edge(lib.START, "inner")
    g.add_edge("inner", lib.END)
    return g.compile(**kw)


def test_compiled_subgraph_as_node(diff):
    def build(lib, **kw):
        g = lib.StateGraph(S)
        g.add_node("outer", lambda s: {"msgs": ["outer"]})
        g.add_node("sub", small(lib))
        g.add_edge(lib.START, "outer")
        g.add_edge("outer", "sub")
        g.add_edge("sub", lib.END)
        return g.compile(**kw)

    diff.compare(build, lambda lib, g: norm(g.invoke({"msgs": []})))


def test_batch(diff):
    diff.compare(small, lambda lib, g: norm(g.batch([{"msgs": []}, {"msgs": ["a"], "x": 5}])))


async def test_abatch(diff):
    from .conftest import LIBS

    seen = {}
    for base in LIBS:
        g = small(base.fresh())
        seen[base.name] = norm(await g.abatch([{"msgs": []}, {"x": 2}]))
    assert seen["tether"] == seen["langgraph"]


def test_command_update_as_run_input(diff, saver_kind):
    """On a finished thread the update is applied and nothing runs. Deliberate difference: LangGraph
    parks the update as hidden pending writes on the old checkpoint (same step number); Tether
    commits it as checkpoints of its own, so the step number moves on and history shows it."""

    def drive(lib, g):
        g.invoke({"msgs": ["first"]}, thread())
        res = outcome(lambda: g.invoke(lib.Command(update={"msgs": ["via-command"], "x": 10}), thread()), lib)
        state = g.get_state(thread())
        return res, state.values, state.next

    diff.compare(small, drive, saver=saver_kind)


def test_command_resume_with_update(diff, saver_kind):
    def build(lib, **kw):
        g = lib.StateGraph(S)
        g.add_node("ask", lambda s: {"msgs": [f"{lib.interrupt('?')}@{s.get('x')}"]})
        g.add_edge(lib.START, "ask")
        g.add_edge("ask", lib.END)
        return g.compile(**kw)

    def drive(lib, g):
        g.invoke({"msgs": []}, thread())
        return outcome(lambda: g.invoke(lib.Command(resume="yes", update={"x": 7}), thread()), lib)

    diff.compare(build, drive, saver=saver_kind)


def test_snapshot_created_at_present(diff, saver_kind):
    def drive(lib, g):
        g.invoke({"msgs": []}, thread())
        return [h.created_at is not None for h in g.get_state_history(thread())]

    diff.compare(small, drive, saver=saver_kind)


def test_runtime_context_reaches_nodes(diff):
    from dataclasses import dataclass

    @dataclass
    class Ctx:
        user: str

    def build(lib, **kw):
        def greet(state: S, runtime) -> dict:
            return {"msgs": [f"hi {runtime.context.user}"]}

        g = lib.StateGraph(S, context_schema=Ctx)
        g.add_node("greet", greet)
        g.add_edge(lib.START, "greet")
        return g.compile(**kw)

    diff.compare(build, lambda lib, g: norm(g.invoke({"msgs": []}, context=Ctx(user="ada"))))
