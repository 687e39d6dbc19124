"""What a node gets besides its state, by position or by name, as LangGraph passes it."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import pytest

from tether import END, START, Runtime, StateGraph, get_runtime
from tether.config import get_config
from tether.errors import GraphRuntimeError
from tether.types import RunnableConfig, StreamWriter


class S(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


class Ctx(TypedDict):
    user: str


def chain(*fns: Any) -> Any:
    g = StateGraph(S, context_schema=Ctx)
    previous = START
    for fn in fns:
        g.add_node(fn.__name__, fn)
        g.add_edge(previous, fn.__name__)
        previous = fn.__name__
    g.add_edge(previous, END)
    return g.compile()


def by_name(state: S, writer: Any) -> S:
    writer("by name")
    return {"log": ["by_name"]}


def by_annotation(state: S, emit: StreamWriter) -> S:
    emit("by annotation")
    return {"log": ["by_annotation"]}


def config_and_writer(state: S, config: RunnableConfig, *, writer: StreamWriter) -> S:
    writer(config["configurable"]["thread_id"])
    return {"log": ["config_and_writer"]}


def keyword_only(state: S, *, config: RunnableConfig, runtime: Runtime[Ctx]) -> S:
    assert runtime.context is not None
    return {"log": [f"{config['configurable']['thread_id']}/{runtime.context['user']}"]}


def reaches(state: S) -> S:
    return {"log": [f"{get_config()['configurable']['thread_id']}/{get_runtime(Ctx).context['user']}"]}


NODES = (by_name, by_annotation, config_and_writer, keyword_only, reaches)
EXPECTED = [
    ("custom", "by name"),
    ("custom", "by annotation"),
    ("custom", "t1"),
    ("values", {"log": ["by_name", "by_annotation", "config_and_writer", "t1/ada", "t1/ada"]}),
]


def test_writer_config_and_runtime_by_name() -> None:
    config: RunnableConfig = {"configurable": {"thread_id": "t1"}}
    chunks = list(chain(*NODES).stream({"log": []}, config, stream_mode=["custom", "values"], context={"user": "ada"}))
    assert [c for c in chunks if c[0] == "custom"] + [chunks[-1]] == EXPECTED


async def test_writer_config_and_runtime_by_name_async() -> None:
    async def async_writer(state: S, writer: StreamWriter) -> S:
        writer("async")
        return {"log": ["async"]}

    config: RunnableConfig = {"configurable": {"thread_id": "t1"}}
    graph = chain(*NODES, async_writer)
    chunks = [c async for c in graph.astream({"log": []}, config, stream_mode="custom", context={"user": "ada"})]
    assert chunks == ["by name", "by annotation", "t1", "async"]


def test_writer_without_custom_stream_discards() -> None:
    assert chain(by_name).invoke({"log": []}) == {"log": ["by_name"]}


def test_get_config_outside_a_node_is_a_clear_error() -> None:
    with pytest.raises(GraphRuntimeError, match="inside a node"):
        get_config()
