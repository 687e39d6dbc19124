"""Linear graphs, builder conveniences, state schemas, input/output schemas, config."""

import operator
from dataclasses import dataclass, field
from typing import Annotated, Any, TypedDict

import pydantic
import pytest

from .conftest import Lib, norm, outcome, thread


class CounterState(TypedDict):
    n: int
    trail: Annotated[list[str], operator.add]


class Plain(TypedDict, total=False):
    a: int
    b: str
    c: list[int]


@dataclass
class DataState:
    n: int = 0
    trail: Annotated[list[str], operator.add] = field(default_factory=list)
    label: str = "none"


class ModelState(pydantic.BaseModel):
    n: int = 0
    trail: Annotated[list[str], operator.add] = pydantic.Field(default_factory=list)
    label: str = "none"


def run_plain(lib: Lib, graph: Any, inp: Any, config: Any = None) -> dict[str, Any]:
    """invoke + the three deterministic stream modes, for a graph without parallel steps."""
    return {
        "invoke": outcome(lambda: graph.invoke(inp, config), lib),
        "values": outcome(lambda: list(graph.stream(inp, config, stream_mode="values")), lib),
        "updates": outcome(lambda: list(graph.stream(inp, config, stream_mode="updates")), lib),
    }


# -- linear graphs --------------------------------------------------------------------------


def linear(lib: Lib, **kw: Any) -> Any:
    def step(name: str, inc: int) -> Any:
        def node(state: CounterState) -> dict[str, Any]:
            lib.calls[name] += 1
            return {"n": state["n"] + inc, "trail": [name]}

        return node

    g = lib.StateGraph(CounterState)
    g.add_node("first", step("first", 1))
    g.add_node("second", step("second", 10))
    g.add_node("third", step("third", 100))
    g.add_edge(lib.START, "first")
    g.add_edge("first", "second")
    g.add_edge("second", "third")
    g.add_edge("third", lib.END)
    return g.compile(**kw)


def test_linear_invoke_and_streams(diff):
    obs = diff.compare(linear, lambda lib, g: run_plain(lib, g, {"n": 0, "trail": []}))
    assert obs["invoke"] == ("ok", {"n": 111, "trail": ["first", "second", "third"]})


@pytest.mark.parametrize("inp", [{"n": 5}, {"n": 1, "trail": ["seed"]}])
def test_linear_partial_input(diff, inp):
    diff.compare(linear, lambda lib, g: run_plain(lib, g, inp))


def test_linear_with_checkpointer_threads(diff, saver_kind):
    def drive(lib, g):
        out = [g.invoke({"n": 1, "trail": []}, thread("a"))]
        out.append(g.invoke({"n": 2}, thread("a")))  # second turn on the same thread accumulates trail
        out.append(g.invoke({"n": 3}, thread("b")))  # an independent thread
        out.append(g.get_state(thread("a")).values)
        out.append(g.get_state(thread("b")).values)
        out.append(len(list(g.get_state_history(thread("a")))))
        return out, dict(lib.calls)

    (out, calls) = diff.compare(linear, drive, saver=saver_kind)
    assert out[1]["trail"] == ["first", "second", "third"] * 2
    assert calls == {"first": 3, "second": 3, "third": 3}


def test_add_sequence_functions_and_tuples(diff):
    def build(lib, **kw):
        def alpha(state: CounterState):
            return {"n": state["n"] * 2, "trail": ["alpha"]}

        def beta(state: CounterState):
            return {"n": state["n"] + 3, "trail": ["beta"]}

        g = lib.StateGraph(CounterState)
        g.add_sequence([alpha, ("gamma", lambda s: {"trail": ["gamma"]}), beta])
        g.add_edge(lib.START, "alpha")
        g.add_edge("beta", lib.END)
        return g.compile(**kw)

    obs = diff.compare(build, lambda lib, g: run_plain(lib, g, {"n": 4, "trail": []}))
    assert obs["invoke"] == ("ok", {"n": 11, "trail": ["alpha", "gamma", "beta"]})


def test_set_entry_and_finish_point(diff):
    def build(lib, **kw):
        g = lib.StateGraph(Plain)
        g.add_node("only", lambda s: {"a": s.get("a", 0) + 1})
        g.set_entry_point("only")
        g.set_finish_point("only")
        return g.compile(**kw)

    diff.compare(build, lambda lib, g: run_plain(lib, g, {"a": 41}))


def test_add_node_named_after_function(diff):
    def build(lib, **kw):
        def load(state: Plain):
            return {"a": 1}

        def transform(state: Plain):
            return {"b": f"a={state['a']}"}

        class Finisher:
            def __call__(self, state: Plain) -> dict[str, Any]:
                return {"c": [state["a"]]}

        g = lib.StateGraph(Plain)
        g.add_node(load)
        g.add_node(transform)
        g.add_node("finish", Finisher())
        g.add_edge(lib.START, "load")
        g.add_edge("load", "transform")
        g.add_edge("transform", "finish")
        g.add_edge("finish", lib.END)
        return g.compile(**kw)

    obs = diff.compare(build, lambda lib, g: run_plain(lib, g, {}))
    assert [next(iter(u)) for u in obs["updates"][1]] == ["load", "transform", "finish"]


def test_node_returning_none_and_partial_updates(diff):
    def build(lib, **kw):
        g = lib.StateGraph(Plain)
        g.add_node("noop", lambda s: None)
        g.add_node("empty", lambda s: {})
        g.add_node("setb", lambda s: {"b": "set"})
        g.add_edge(lib.START, "noop")
        g.add_edge("noop", "empty")
        g.add_edge("empty", "setb")
        g.add_edge("setb", lib.END)
        return g.compile(**kw)

    diff.compare(build, lambda lib, g: run_plain(lib, g, {"a": 1}))


def test_overwrite_channel_last_value_wins(diff):
    def build(lib, **kw):
        g = lib.StateGraph(Plain)
        g.add_node("x", lambda s: {"a": 1, "c": [1]})
        g.add_node("y", lambda s: {"a": 2, "c": [2]})
        g.add_edge(lib.START, "x")
        g.add_edge("x", "y")
        g.add_edge("y", lib.END)
        return g.compile(**kw)

    obs = diff.compare(build, lambda lib, g: run_plain(lib, g, {"a": 0, "c": [0]}))
    assert obs["invoke"] == ("ok", {"a": 2, "c": [2]})


def test_node_sees_only_set_keys(diff):
    """A TypedDict state handed to a node holds only the keys that have a value."""

    def build(lib, **kw):
        def look(state: Plain):
            lib.log.append(sorted(state))
            return {"b": ",".join(sorted(state))}

        g = lib.StateGraph(Plain)
        g.add_node("look", look)
        g.add_node("look2", look)
        g.add_edge(lib.START, "look")
        g.add_edge("look", "look2")
        g.add_edge("look2", lib.END)
        return g.compile(**kw)

    def drive(lib, g):
        return g.invoke({"a": 1}), lib.log

    diff.compare(build, drive)


# -- state schemas -----------------------------------------------------------------------------


def schema_graph(schema: Any):
    def build(lib: Lib, **kw: Any) -> Any:
        def get(state: Any, key: str) -> Any:
            return state[key] if isinstance(state, dict) else getattr(state, key)

        def bump(state):
            lib.log.append(type(state).__name__ if not isinstance(state, dict) else "dict")
            return {"n": get(state, "n") + 1, "trail": ["bump"]}

        def name(state):
            return {"label": f"n={get(state, 'n')} trail={get(state, 'trail')}"}

        g = lib.StateGraph(schema)
        g.add_node("bump", bump)
        g.add_node("name", name)
        g.add_edge(lib.START, "bump")
        g.add_edge("bump", "name")
        g.add_edge("name", lib.END)
        return g.compile(**kw)

    return build


@pytest.mark.parametrize("schema", [DataState, ModelState], ids=["dataclass", "pydantic"])
@pytest.mark.parametrize("inp", [{"n": 1}, {"n": 2, "trail": ["x"], "label": "start"}, {}])
def test_dataclass_and_pydantic_state(diff, schema, inp):
    def drive(lib, g):
        return run_plain(lib, g, inp), lib.log

    diff.compare(schema_graph(schema), drive)


@pytest.mark.parametrize("schema", [DataState, ModelState], ids=["dataclass", "pydantic"])
def test_object_state_as_input(diff, schema):
    diff.compare(schema_graph(schema), lambda lib, g: run_plain(lib, g, schema(n=7, label="obj")))


@pytest.mark.parametrize("schema", [DataState, ModelState], ids=["dataclass", "pydantic"])
def test_object_state_with_checkpointer(diff, schema, saver_kind):
    def drive(lib, g):
        first = g.invoke({"n": 1}, thread())
        second = g.invoke({"n": 10}, thread())
        return norm(first), norm(second), norm(g.get_state(thread()).values)

    diff.compare(schema_graph(schema), drive, saver=saver_kind)


def test_pydantic_invalid_input_raises_in_both(diff):
    def drive(lib, g):
        try:
            g.invoke({"n": "not a number"})
        except Exception as exc:  # both validate the input against the model
            return "raised", isinstance(exc, (pydantic.ValidationError, ValueError, TypeError))
        return "ok"

    diff.compare(schema_graph(ModelState), drive)


class InState(TypedDict):
    question: str


class OutState(TypedDict):
    answer: str


class FullState(TypedDict):
    question: str
    answer: str
    scratch: Annotated[list[str], operator.add]


def io_graph(lib: Lib, **kw: Any) -> Any:
    def think(state: FullState):
        return {"scratch": [f"thinking about {state['question']}"]}

    def answer(state: FullState):
        return {"answer": f"{state['question']}! ({len(state['scratch'])} notes)"}

    g = lib.StateGraph(FullState, input_schema=InState, output_schema=OutState)
    g.add_node("think", think)
    g.add_node("answer", answer)
    g.add_edge(lib.START, "think")
    g.add_edge("think", "answer")
    g.add_edge("answer", lib.END)
    return g.compile(**kw)


def test_input_output_schema_filters(diff):
    obs = diff.compare(io_graph, lambda lib, g: run_plain(lib, g, {"question": "why"}))
    assert obs["invoke"] == ("ok", {"answer": "why! (1 notes)"})


def test_input_output_schema_get_state_is_full(diff, saver_kind):
    def drive(lib, g):
        out = g.invoke({"question": "how"}, thread())
        return out, g.get_state(thread()).values

    obs = diff.compare(io_graph, drive, saver=saver_kind)
    assert set(obs[1]) == {"question", "answer", "scratch"}


def test_output_schema_only(diff):
    def build(lib, **kw):
        g = lib.StateGraph(FullState, output_schema=OutState)
        g.add_node("answer", lambda s: {"answer": s["question"].upper(), "scratch": ["x"]})
        g.add_edge(lib.START, "answer")
        g.add_edge("answer", lib.END)
        return g.compile(**kw)

    diff.compare(build, lambda lib, g: run_plain(lib, g, {"question": "q", "scratch": ["seed"]}))


class PrivateIn(TypedDict):
    secret: str


def test_node_with_private_input_schema(diff):
    """A node may declare its own input type, carrying a key outside the graph state."""

    def build(lib, **kw):
        def writer(state: FullState) -> PrivateIn:
            return {"secret": state["question"] + "-secret"}

        def reader(state: PrivateIn) -> dict[str, Any]:
            return {"answer": state["secret"]}

        g = lib.StateGraph(FullState)
        g.add_node("writer", writer)
        g.add_node("reader", reader)
        g.add_edge(lib.START, "writer")
        g.add_edge("writer", "reader")
        g.add_edge("reader", lib.END)
        return g.compile(**kw)

    diff.compare(build, lambda lib, g: run_plain(lib, g, {"question": "q"}))


# -- config --------------------------------------------------------------------------------


def config_graph(lib: Lib, **kw: Any) -> Any:
    def greet(state: Plain, config):
        user = config["configurable"].get("user", "anon")
        return {"b": f"hello {user}"}

    def count(state: Plain, config) -> dict[str, Any]:
        return {"a": config["configurable"].get("bonus", 0) + state.get("a", 0)}

    def route(state: Plain, config) -> str:
        return "loud" if config["configurable"].get("loud") else lib.END

    g = lib.StateGraph(Plain)
    g.add_node("greet", greet)
    g.add_node("count", count)
    g.add_node("loud", lambda s: {"b": s["b"].upper()})
    g.add_edge(lib.START, "greet")
    g.add_edge("greet", "count")
    g.add_conditional_edges("count", route, ["loud", lib.END])
    g.add_edge("loud", lib.END)
    return g.compile(**kw)


@pytest.mark.parametrize(
    "configurable",
    [{}, {"user": "ada"}, {"user": "bob", "bonus": 5, "loud": True}],
)
def test_nodes_and_routers_read_config(diff, configurable):
    config = {"configurable": configurable}
    diff.compare(config_graph, lambda lib, g: run_plain(lib, g, {"a": 1}, config))


def test_node_config_has_configurable_without_call_config(diff):
    """A node taking ``config`` can read ``config["configurable"]`` even when invoke got no config."""
    diff.compare(config_graph, lambda lib, g: run_plain(lib, g, {"a": 1}))


def test_node_config_carries_call_metadata_and_tags(diff):
    def build(lib, **kw):
        def peek(state: Plain, config):
            return {"b": f"{config.get('metadata', {}).get('who')}|{sorted(config.get('tags', []))}"}

        g = lib.StateGraph(Plain)
        g.add_node("peek", peek)
        g.add_edge(lib.START, "peek")
        g.add_edge("peek", lib.END)
        return g.compile(**kw)

    diff.compare(build, lambda lib, g: g.invoke({}, {"metadata": {"who": "me"}, "tags": ["t2", "t1"]}))


def test_config_with_thread_and_extra_keys(diff, saver_kind):
    def drive(lib, g):
        cfg = thread("cfg", user="cy", bonus=2)
        return g.invoke({"a": 1}, cfg), g.get_state(thread("cfg")).values

    diff.compare(config_graph, drive, saver=saver_kind)


def test_unknown_input_key_is_ignored(diff):
    """LangGraph drops input keys that are not state channels."""

    def drive(lib, g):
        return outcome(lambda: g.invoke({"a": 1, "not_a_key": 2}), lib)

    obs = diff.compare(config_graph, drive)
    assert obs == ("ok", {"a": 1, "b": "hello anon"})
