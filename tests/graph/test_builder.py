from __future__ import annotations

import operator
from typing import Annotated, Literal, TypedDict

import pytest

from tether import END, START, Command, StateGraph
from tether.errors import GraphBuildError


class S(TypedDict):
    n: int
    log: Annotated[list[str], operator.add]


def inc(s: S) -> dict[str, int]:
    return {"n": s["n"] + 1}


def graph_with(*edges: tuple[str, str], nodes: tuple[str, ...] = ("a", "b")) -> StateGraph:
    g = StateGraph(S)
    for n in nodes:
        g.add_node(n, inc)
    for a, b in edges:
        g.add_edge(a, b)
    return g


def test_unknown_node_in_edge_names_it_and_suggests() -> None:
    g = graph_with((START, "a"), ("a", "bb"))
    with pytest.raises(GraphBuildError, match=r"unknown node 'bb' \(did you mean 'b'\?\)"):
        g.compile()


def test_unreachable_node() -> None:
    g = graph_with((START, "a"), nodes=("a", "b", "c"))
    with pytest.raises(GraphBuildError, match="'b', 'c' cannot be reached from START"):
        g.compile()


def test_dynamic_routing_relaxes_reachability() -> None:
    g = StateGraph(S)
    g.add_node("a", lambda s: Command(goto="b"))
    g.add_node("b", inc)
    g.add_edge(START, "a")
    assert g.compile().invoke({"n": 0}) == {"n": 1, "log": []}


def test_command_annotation_counts_as_an_edge() -> None:
    def a(s: S) -> Command[Literal["b"]]:
        return Command(goto="b")

    g = StateGraph(S)
    g.add_node(a)
    g.add_node("b", inc)
    g.add_node("orphan", inc)
    g.add_edge(START, "a")
    with pytest.raises(GraphBuildError, match="'orphan' cannot be reached"):
        g.compile()


def test_cycle_without_exit_is_rejected() -> None:
    g = graph_with((START, "a"), ("a", "b"), ("b", "a"))
    with pytest.raises(GraphBuildError, match="no path from node 'a' reaches END"):
        g.compile()


def test_cycle_with_conditional_exit_is_fine() -> None:
    g = graph_with((START, "a"), ("a", "b"))
    g.add_conditional_edges("b", lambda s: END if s["n"] >= 6 else "a", {"a": "a", END: END})
    assert g.compile().invoke({"n": 0})["n"] == 6


def test_duplicate_and_reserved_names() -> None:
    g = StateGraph(S)
    g.add_node("a", inc)
    with pytest.raises(GraphBuildError, match="already in the graph"):
        g.add_node("a", inc)
    for bad in (START, END):
        with pytest.raises(GraphBuildError, match="reserved"):
            g.add_node(bad, inc)
    with pytest.raises(GraphBuildError, match="':'"):
        g.add_node("x:y", inc)


def test_no_entry_point() -> None:
    with pytest.raises(GraphBuildError, match="no entry point"):
        graph_with(("a", "b")).compile()


def test_conditional_edge_to_unknown_node_in_path_map() -> None:
    g = graph_with((START, "a"))
    g.add_conditional_edges("a", lambda s: "x", {"x": "nowhere"})
    with pytest.raises(GraphBuildError, match="unknown node 'nowhere'"):
        g.compile()


def test_interrupt_on_unknown_node() -> None:
    g = graph_with((START, "a"), ("a", "b"))
    with pytest.raises(GraphBuildError, match="interrupt names unknown node 'c'"):
        g.compile(interrupt_before=["c"])


def test_bad_schema_and_bad_node() -> None:
    with pytest.raises(GraphBuildError, match="TypedDict, a dataclass or a pydantic model"):
        StateGraph(int)
    g = StateGraph(S)
    with pytest.raises(GraphBuildError, match="expected a function"):
        g.add_node("a", 42)  # type: ignore[arg-type]


def test_add_sequence_and_entry_finish_points() -> None:
    def one(s: S) -> dict[str, list[str]]:
        return {"log": ["one"]}

    def two(s: S) -> dict[str, list[str]]:
        return {"log": ["two"]}

    g = StateGraph(S)
    g.add_sequence([one, ("second", two)])
    g.set_entry_point("one")
    g.set_finish_point("second")
    assert g.compile().invoke({"n": 0})["log"] == ["one", "two"]
