"""@tool: schemas from type hints and docstrings, validated invocation, sync and async."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, Field

from tether.messages import ToolMessage
from tether.models import ScriptedChatModel, tool_schema
from tether.tools import InjectedToolCallId, Tool, ToolInvocationError, tool
from tether.tools._docstring import parse_docstring


class Point(BaseModel):
    """A point on the plane."""

    x: int
    y: int = 0


@tool
def plot(
    label: str,
    points: list[Point],
    color: Literal["red", "green"] = "red",
    width: float | None = None,
    tags: list[str] | None = None,
    visible: bool = True,
) -> str:
    """Draw points on a chart.

    The chart is kept in memory.

    Args:
        label: the series name
        points: where to draw, in order;
            at least one.
        color: line colour
        width (float): line width in pixels
        tags: free-form labels

    Returns:
        a short confirmation
    """
    return f"{label}:{len(points)}:{color}:{width}:{tags}:{visible}:{type(points[0]).__name__}"


def test_schema_from_hints_and_docstring() -> None:
    schema = plot.json_schema()
    assert schema["name"] == "plot"
    assert schema["description"] == "Draw points on a chart. The chart is kept in memory."
    params = schema["parameters"]
    assert params["type"] == "object"
    assert params["required"] == ["label", "points"]
    props = params["properties"]
    assert list(props) == ["label", "points", "color", "width", "tags", "visible"]
    assert props["label"] == {"type": "string", "description": "the series name"}
    assert props["points"]["description"] == "where to draw, in order; at least one."
    assert props["points"]["items"]["properties"]["x"]["type"] == "integer"  # the model is inlined, no $ref
    assert "$defs" not in params
    assert props["color"]["enum"] == ["red", "green"] and props["color"]["default"] == "red"
    assert {"type": "number"} in props["width"]["anyOf"] and {"type": "null"} in props["width"]["anyOf"]
    assert props["width"]["description"] == "line width in pixels"
    assert props["visible"] == {"type": "boolean", "default": True}
    assert all("title" not in p for p in props.values())


def test_args_schema_is_a_pydantic_model() -> None:
    assert issubclass(plot.args_schema, BaseModel)
    assert set(plot.args_schema.model_fields) == {"label", "points", "color", "width", "tags", "visible"}
    assert plot.args["label"]["type"] == "string"


def test_invoke_validates_and_converts_arguments() -> None:
    out = plot.invoke({"label": "s", "points": [{"x": "1"}], "width": "2.5"})
    assert out == "s:1:red:2.5:None:True:Point"  # "1" → 1 and dict → Point, as the hints say


def test_validation_error_names_every_bad_field() -> None:
    with pytest.raises(ToolInvocationError) as info:
        plot.invoke({"points": [{"y": 1}], "color": "blue"})
    message = str(info.value)
    assert message.startswith("Error invoking tool 'plot' with kwargs")
    assert "label: Field required" in message
    assert "points.0.x: Field required" in message
    assert "color: Input should be 'red' or 'green' (got 'blue')" in message
    assert message.endswith("Please fix the error and try again.")
    assert {tuple(e["loc"]) for e in info.value.errors} == {("label",), ("points", 0, "x"), ("color",)}


def test_invoke_with_a_tool_call_returns_a_tool_message() -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    message = add.invoke({"name": "add", "args": {"a": 2, "b": 3}, "id": "call-1", "type": "tool_call"})
    assert isinstance(message, ToolMessage)
    assert (message.content, message.tool_call_id, message.name, message.status) == ("5", "call-1", "add", "success")


def test_decorator_forms() -> None:
    @tool("lookup")
    def search(query: str) -> str:
        """Search the web."""
        return query

    @tool(description="Multiply two numbers.")
    def mul(a: float, b: float) -> float:
        return a * b

    assert (search.name, search.description) == ("lookup", "Search the web.")
    assert (mul.name, mul.description) == ("mul", "Multiply two numbers.")
    assert mul.invoke({"a": 2, "b": 4}) == 8
    assert search.invoke("hello") == "hello"  # a lone string is the only argument
    assert isinstance(Tool.from_function(search.func, name="other"), Tool)


def test_missing_description_and_unnamed_arguments_are_errors() -> None:
    def undocumented(a: int) -> int:
        return a

    def variadic(*items: int) -> int:
        """Sum."""
        return sum(items)

    with pytest.raises(ValueError, match="no description"):
        tool(undocumented)
    with pytest.raises(TypeError, match=r"\*items"):
        tool(variadic)


def test_annotated_descriptions_and_field_info() -> None:
    @tool
    def book(
        city: Annotated[str, "the city to fly to"],
        seats: Annotated[int, Field(ge=1, description="how many seats")] = 1,
    ) -> str:
        """Book a flight.

        Args:
            seats: overridden by the Field's own description
        """
        return f"{city}:{seats}"

    props = book.json_schema()["parameters"]["properties"]
    assert props["city"]["description"] == "the city to fly to"
    assert props["seats"]["description"] == "how many seats"
    assert props["seats"]["minimum"] == 1
    with pytest.raises(ToolInvocationError, match="greater than or equal to 1"):
        book.invoke({"city": "Oslo", "seats": 0})


def test_injected_tool_call_id_is_hidden_from_the_model() -> None:
    @tool
    def whoami(note: str, call_id: Annotated[str, InjectedToolCallId]) -> str:
        """Say which call this is."""
        return f"{note}@{call_id}"

    assert list(whoami.json_schema()["parameters"]["properties"]) == ["note"]
    message = whoami.invoke({"name": "whoami", "args": {"note": "n"}, "id": "c9", "type": "tool_call"})
    assert message.content == "n@c9"
    with pytest.raises(ValueError, match="needs a tool call id"):
        whoami.invoke({"note": "n"})


def test_non_text_results_become_json_and_artifacts_are_kept() -> None:
    @tool
    def stats(values: list[int]) -> dict[str, int]:
        """Summary statistics."""
        return {"n": len(values), "max": max(values)}

    @tool(response_format="content_and_artifact")
    def fetch(n: int) -> tuple[str, list[int]]:
        """Fetch rows."""
        return f"{n} rows", list(range(n))

    call = {"args": {"values": [3, 1]}, "id": "1", "type": "tool_call", "name": "stats"}
    assert stats.invoke(call).content == '{"n": 2, "max": 3}'
    message = fetch.invoke({"args": {"n": 2}, "id": "2", "type": "tool_call", "name": "fetch"})
    assert (message.content, message.artifact) == ("2 rows", [0, 1])


async def test_async_tools_and_ainvoke() -> None:
    @tool
    async def slow_echo(text: str) -> str:
        """Echo after yielding to the loop."""
        await asyncio.sleep(0)
        return text.upper()

    @tool
    def sync_echo(text: str) -> str:
        """Echo."""
        return text

    assert slow_echo.coroutine is not None and slow_echo.func is None
    assert await slow_echo.ainvoke({"text": "a"}) == "A"
    assert await sync_echo.ainvoke({"text": "b"}) == "b"
    # from sync code inside a running loop the coroutine runs on a helper thread
    assert slow_echo.invoke({"text": "c"}) == "C"


def test_async_tool_invoked_from_plain_sync_code() -> None:
    @tool
    async def double(n: int) -> int:
        """Double a number."""
        return 2 * n

    assert double.invoke({"n": 4}) == 8


def test_tool_schema_for_bind_tools() -> None:
    schema = tool_schema(plot)
    assert schema["type"] == "function" and schema["function"]["name"] == "plot"
    model = ScriptedChatModel(["ok"]).bind_tools([plot])
    model.invoke("hi")
    assert model.seen_options[-1].tools[0]["function"]["parameters"]["required"] == ["label", "points"]


def test_parse_docstring_variants() -> None:
    description, args = parse_docstring(
        """Summary line.

        More text
        on two lines.

        Args:
            a (int): first
            *rest: the others,
                continued
        Raises:
            ValueError: not an argument
        """
    )
    assert description == "Summary line. More text\non two lines."
    assert args == {"a": "first", "rest": "the others, continued"}
    assert parse_docstring(None) == ("", {})
    assert parse_docstring("Only a summary.") == ("Only a summary.", {})
