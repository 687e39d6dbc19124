"""Tool schemas, ToolNode and tools_condition agree with langchain-core / LangGraph on the same inputs."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from langchain_core import messages as lc
from langchain_core.tools import tool as lc_tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.prebuilt import ToolNode as LGToolNode
from langgraph.prebuilt import tools_condition as lg_tools_condition
from pydantic import BaseModel

from tether import messages as tm
from tether.tools import ToolNode, tool, tools_condition


class Address(BaseModel):
    """Where someone lives."""

    street: str
    city: str = "Oslo"


def book_table(
    restaurant: str,
    people: int,
    when: str | None = None,
    seating: Literal["inside", "outside"] = "inside",
    allergies: list[str] | None = None,
    deposit: float = 0.0,
    confirm: bool = True,
) -> str:
    """Book a table at a restaurant.

    Checks availability first.

    Args:
        restaurant: the restaurant's name
        people: how many guests
        when: ISO date and time; now if not given
        seating: where to sit
        allergies: allergies to tell the kitchen about
        deposit: amount paid in advance
        confirm: send a confirmation message
    """
    return "booked"


def ship(to: Address, items: list[int], express: bool = False) -> str:
    """Ship items to an address.

    Args:
        to: the address
        items: item numbers
        express: next-day delivery
    """
    return "shipped"


def no_args() -> str:
    """Return the time."""
    return "now"


def kinds(prop: dict[str, Any]) -> Any:
    """The JSON types a property accepts, as a comparable value."""
    if "anyOf" in prop:
        return sorted(str(kinds(p)) for p in prop["anyOf"])
    return (prop.get("type"), tuple(prop.get("enum", ())), kinds(prop["items"]) if "items" in prop else None)


def shape(function: dict[str, Any]) -> dict[str, Any]:
    params = function["parameters"]
    return {
        "name": function["name"],
        "description": function["description"],
        "properties": {k: (kinds(v), v.get("description"), v.get("default")) for k, v in params["properties"].items()},
        "required": sorted(params.get("required", [])),
    }


@pytest.mark.parametrize("fn", [book_table, ship, no_args])
def test_schema_matches_convert_to_openai_tool(fn: Any) -> None:
    expected = convert_to_openai_tool(fn)["function"]
    got = tool(fn).json_schema()
    assert shape(got) == shape(expected)


def test_nested_model_schema_matches() -> None:
    expected = convert_to_openai_tool(ship)["function"]["parameters"]["properties"]["to"]
    got = tool(ship).json_schema()["parameters"]["properties"]["to"]
    assert got["properties"].keys() == expected["properties"].keys()
    assert got["required"] == expected["required"]


# -- ToolNode -------------------------------------------------------------------------------


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def explode(reason: str) -> str:
    """Always fails."""
    raise ValueError(reason)


CALLS = [
    {"name": "add", "args": {"a": 1, "b": 2}, "id": "1"},
    {"name": "add", "args": {"a": "x", "b": 2}, "id": "2"},  # fails validation
    {"name": "nope", "args": {}, "id": "3"},  # unknown tool
    {"name": "explode", "args": {"reason": "boom"}, "id": "4"},  # raises inside
    {"name": "add", "args": {"a": 40, "b": 2}, "id": "5"},
]


def observe(messages: list[Any], *, exact: bool) -> list[tuple[Any, ...]]:
    out = []
    for m in messages:
        # validation errors are worded alike up to the first line; Tether also shows the bad input
        content = m.content if exact or m.status == "success" else m.content.splitlines()[0]
        out.append((m.type, m.name, m.tool_call_id, m.status, content))
    return out


def run_tool_node(node: Any, messages: list[Any], *, langgraph: bool) -> list[Any]:
    """The node alone in a graph (LangGraph's ToolNode needs a graph's runtime to run)."""
    if langgraph:
        from langgraph.graph import END as LG_END
        from langgraph.graph import START as LG_START
        from langgraph.graph import MessagesState as LGMessagesState
        from langgraph.graph import StateGraph as LGStateGraph

        graph: Any = LGStateGraph(LGMessagesState)
        start, end = LG_START, LG_END
    else:
        from tether import END, START, MessagesState, StateGraph

        graph, start, end = StateGraph(MessagesState), START, END
    graph.add_node("tools", node)
    graph.add_edge(start, "tools")
    graph.add_edge("tools", end)
    return list(graph.compile().invoke({"messages": messages})["messages"])[len(messages) :]


def test_tool_node_matches_langgraph() -> None:
    calls = [c for c in CALLS if c["name"] != "explode"]
    lg_out = run_tool_node(
        LGToolNode([lc_tool(add), lc_tool(explode)]),
        [lc.HumanMessage(content="go"), lc.AIMessage(content="", tool_calls=calls)],
        langgraph=True,
    )
    tt_out = run_tool_node(
        ToolNode([tool(add), tool(explode)]),
        [tm.HumanMessage(content="go"), tm.AIMessage(content="", tool_calls=calls)],
        langgraph=False,
    )
    assert observe(tt_out, exact=False) == observe(lg_out, exact=False)
    assert tt_out[2].content == lg_out[2].content  # the unknown-tool wording is identical


def test_exception_in_a_tool_matches_langgraph_with_handle_tool_errors_true() -> None:
    lg_out = run_tool_node(
        LGToolNode([lc_tool(explode)], handle_tool_errors=True),
        [lc.AIMessage(content="", tool_calls=[CALLS[3]])],
        langgraph=True,
    )
    tt_out = run_tool_node(
        ToolNode([tool(explode)], handle_tool_errors=True),
        [tm.AIMessage(content="", tool_calls=[CALLS[3]])],
        langgraph=False,
    )
    assert observe(tt_out, exact=True) == observe(lg_out, exact=True)


def test_default_error_handling_matches_langgraph() -> None:
    """By default an exception inside a tool stops the run in both; bad arguments do not."""
    with pytest.raises(ValueError, match="boom"):
        run_tool_node(
            LGToolNode([lc_tool(explode)]),
            [lc.AIMessage(content="", tool_calls=[CALLS[3]])],
            langgraph=True,
        )
    with pytest.raises(ValueError, match="boom"):
        run_tool_node(ToolNode([tool(explode)]), [tm.AIMessage(content="", tool_calls=[CALLS[3]])], langgraph=False)


@pytest.mark.parametrize(
    "messages",
    [
        [("human", "hi", None)],
        [("human", "hi", None), ("ai", "", CALLS[:1])],
        [("human", "hi", None), ("ai", "done", [])],
        [("ai", "", CALLS[:2]), ("tool", "3", None)],
    ],
)
def test_tools_condition_matches_langgraph(messages: list[tuple[str, str, Any]]) -> None:
    def build(lib: Any) -> list[Any]:
        out = []
        for kind, text, tool_calls in messages:
            if kind == "human":
                out.append(lib.HumanMessage(content=text))
            elif kind == "ai":
                out.append(lib.AIMessage(content=text, tool_calls=tool_calls or []))
            else:
                out.append(lib.ToolMessage(content=text, tool_call_id="1"))
        return out

    assert tools_condition({"messages": build(tm)}) == lg_tools_condition({"messages": build(lc)})
