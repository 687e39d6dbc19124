"""The savers' thread → row key map is a cache: bounded, and a thread evicted from it still reads."""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict

from tether import END, START, StateGraph
from tether.checkpoint import BaseCheckpointSaver, InMemorySaver
from tether.checkpoint._key_cache import ThreadKeys


class Items(TypedDict):
    items: Annotated[list[str], operator.add]


def test_thread_keys_stay_bounded_on_every_saver(saver: BaseCheckpointSaver) -> None:
    g = StateGraph(Items)
    g.add_node("append", lambda s: {"items": ["x"]})
    g.add_edge(START, "append")
    g.add_edge("append", END)
    graph = g.compile(checkpointer=saver)
    if isinstance(saver, InMemorySaver):  # keyed by thread id already: no second map to bound
        assert not hasattr(saver, "_keys")
        return
    saver._keys = ThreadKeys(size=5)  # type: ignore[attr-defined]
    for n in range(40):
        graph.invoke({"items": []}, {"configurable": {"thread_id": f"t{n}"}})
        graph.get_state({"configurable": {"thread_id": f"t{n}"}})
    assert len(saver._keys) <= 5  # type: ignore[attr-defined]
    for n in (0, 39):  # evicted and kept alike
        assert graph.get_state({"configurable": {"thread_id": f"t{n}"}}).values == {"items": ["x"]}
