"""Reading threads: folding costs the writes folded, decoded states are cached and bounded."""

from __future__ import annotations

import operator
import time
from typing import Annotated, Any, TypedDict

from hypothesis import given, settings
from hypothesis import strategies as st

from tether import END, START, SqliteSaver, StateGraph
from tether.graph import _state
from tether.graph._algo import Topology, apply_step
from tether.graph._fold import Folder
from tether.graph._schema import Channel
from tether.graph._state_cache import StateCache
from tether.messages import AIMessage, HumanMessage, RemoveMessage, add_messages


def concat_lists(left: list[Any], right: list[Any]) -> list[Any]:
    return left + right


TOPO = Topology(
    channels={
        "items": Channel("items", operator.add, list),
        "messages": Channel("messages", add_messages, list),
        "custom": Channel("custom", concat_lists, list),
        "last": Channel("last"),
    },
    node_order={},
)

message_ids = st.sampled_from(["a", "b", "c", "d"])
message_writes = st.lists(
    st.one_of(
        st.builds(lambda i, t: AIMessage(content=t, id=i), message_ids, st.text(max_size=3)),
        st.builds(lambda i: RemoveMessage(id=i), message_ids),
        st.just(RemoveMessage(id="__remove_all__")),
    ),
    max_size=3,
)
step = st.lists(
    st.one_of(
        st.tuples(st.just("items"), st.one_of(st.lists(st.integers(), max_size=3), st.tuples(st.integers()))),
        st.tuples(st.just("messages"), message_writes),
        st.tuples(st.just("custom"), st.lists(st.integers(), max_size=2)),
        st.tuples(st.just("last"), st.integers()),
    ),
    max_size=4,
)


def _outcome(fn: Any) -> Any:
    try:
        return ("ok", fn())
    except Exception as exc:
        return ("error", type(exc), str(exc))


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(step, max_size=8), start=st.lists(st.integers(), max_size=3))
def test_folder_equals_calling_the_reducer_step_by_step(steps: list[Any], start: list[int]) -> None:
    def by_steps() -> dict[str, Any]:
        values: dict[str, Any] = {"items": list(start)}
        for writes in steps:
            values = apply_step(TOPO, values, (), [("n", writes)], check=False)
        return values

    def by_folder() -> dict[str, Any]:
        folder = Folder(TOPO, {"items": list(start)})
        for writes in steps:
            folder.apply((), [("n", writes)])
        return folder.state(final=True)

    assert _outcome(by_folder) == _outcome(by_steps)


def test_folder_leaves_the_state_it_started_from_alone() -> None:
    start = {"items": [1], "messages": [HumanMessage(content="hi", id="h")]}
    folder = Folder(TOPO, start)
    folder.apply((), [("n", [("items", [2]), ("messages", [AIMessage(content="yo", id="y")])])])
    middle = folder.state()
    folder.apply((), [("n", [("items", [3])])])
    assert start == {"items": [1], "messages": [HumanMessage(content="hi", id="h")]}
    assert middle["items"] == [1, 2] and folder.state(final=True)["items"] == [1, 2, 3]


class Items(TypedDict):
    items: Annotated[list[str], operator.add]


def _items_graph(saver: Any) -> Any:
    g = StateGraph(Items)
    g.add_node("append", lambda s: {"items": ["x" * 100]})
    g.add_edge(START, "append")
    g.add_edge("append", END)
    return g.compile(checkpointer=saver)


def test_rebuilding_a_long_log_is_linear_in_the_writes() -> None:
    """30,000 steps of operator.add: folding them by calling the reducer with the whole list at each
    step (what rebuild did) copies the list every time and took 36 s here; the fold takes milliseconds."""
    topo = Topology(channels={"items": Channel("items", operator.add, list)}, node_order={})
    write = [("n", [("items", list(range(10)))])]
    folder = Folder(topo, {"items": []})
    started = time.perf_counter()
    for _ in range(30_000):
        folder.apply((), write)
    assert len(folder.state(final=True)["items"]) == 300_000
    assert time.perf_counter() - started < 5


def test_get_state_reads_a_long_thread_from_the_cache_and_history_pages_fold_once(tmp_path: Any) -> None:
    saver = SqliteSaver.from_conn_string(str(tmp_path / "t.db"))
    graph = _items_graph(saver)
    config = {"configurable": {"thread_id": "t"}}
    for _ in range(60):
        graph.invoke({"items": []}, config)
    folds = 0
    real = _state.Folder.apply

    def counting(self: Any, *args: Any) -> None:
        nonlocal folds
        folds += 1
        real(self, *args)

    fresh = _items_graph(saver)  # a new process's view: nothing cached
    _state.Folder.apply = counting  # type: ignore[method-assign]
    try:
        page = list(fresh.get_state_history(config, limit=10))
        first = folds
        again = list(fresh.get_state_history(config, limit=10))
        assert folds == first  # the second read of the page is served from memory
        state = graph.get_state(config)
        assert folds == first  # the run left its head in the cache
    finally:
        _state.Folder.apply = real  # type: ignore[method-assign]
    assert [s.values for s in page] == [s.values for s in again]
    assert len(state.values["items"]) == 60 and len(page[0].values["items"]) == 60
    for snap in page:  # each entry is its own checkpoint's state, not a neighbour's
        loaded = saver.get("t", "", snap.config["configurable"]["checkpoint_id"])
        assert loaded is not None
        states, _ = _state.rebuild(graph.topology, loaded.chain, {})
        assert snap.values["items"] == states[-1][1].get("items", [])
    # one pass over the chain for the whole page, not one per entry
    assert first <= len(list(saver.list("t")))
    saver.close()


def test_the_state_cache_is_bounded_by_entries_and_bytes(tmp_path: Any) -> None:
    saver = SqliteSaver.from_conn_string(str(tmp_path / "t.db"))
    graph = _items_graph(saver)
    graph.state_cache = StateCache(max_entries=8, max_bytes=1 << 20)
    for n in range(30):
        graph.invoke({"items": []}, {"configurable": {"thread_id": f"t{n}"}})
        list(graph.get_state_history({"configurable": {"thread_id": f"t{n}"}}))
    assert len(graph.state_cache) <= 8 and len(graph.state_cache._heads) <= 8
    small = StateCache(max_entries=100, max_bytes=4000)
    for _ in range(30):
        graph.invoke({"items": []}, {"configurable": {"thread_id": "big"}})
        state = graph.get_state({"configurable": {"thread_id": "big"}})
        small.rebuild(graph.topology, saver.get("big").chain, {}, head=True)  # type: ignore[union-attr]
    assert small.bytes <= 4000
    assert len(state.values["items"]) == 30
    saver.close()
