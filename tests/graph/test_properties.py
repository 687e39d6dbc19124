"""Property tests: the log + snapshot design never changes what a thread's state is."""

from __future__ import annotations

import operator
import uuid
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tether import START, InMemorySaver, SqliteSaver, StateGraph
from tether.graph import _state
from tether.graph._algo import Task, TaskResult, Topology, apply_order, apply_step
from tether.graph._schema import Channel


def merge(left: dict[str, int], right: dict[str, int]) -> dict[str, int]:
    return {**left, **right}


class S(TypedDict, total=False):
    items: Annotated[list[int], operator.add]
    seen: Annotated[dict[str, int], merge]
    last: int
    text: str


def build() -> StateGraph:
    g = StateGraph(S)
    g.add_node("left", lambda s: {"items": [len(s.get("items", []))], "seen": {"left": s.get("last", 0)}})
    g.add_node("right", lambda s: {"seen": {"right": len(s.get("text", ""))}, "text": s.get("text", "") + "r"})
    g.add_node("join", lambda s: {"last": sum(s.get("items", [])) % 97})
    g.add_edge(START, "left")
    g.add_edge(START, "right")
    g.add_edge(["left", "right"], "join")
    return g


turns = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "items": st.lists(st.integers(-5, 5), max_size=3),
            "last": st.integers(0, 9),
            "text": st.text(max_size=4),
        },
    ),
    min_size=1,
    max_size=12,
)


@pytest.fixture
def tiny_snapshots(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_state, "SNAPSHOT_FLOOR_BYTES", 40)
    monkeypatch.setattr(_state, "SNAPSHOT_MAX_STEPS", 3)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(inputs=turns, backend=st.sampled_from(["memory", "sqlite"]))
def test_rebuilt_state_equals_run_state_at_every_checkpoint(
    inputs: list[dict[str, Any]], backend: str, tmp_path: Path, tiny_snapshots: None
) -> None:
    db = tmp_path / "props.sqlite"
    saver = InMemorySaver() if backend == "memory" else SqliteSaver.from_conn_string(db)
    app = build().compile(checkpointer=saver)
    config = {"configurable": {"thread_id": uuid.uuid4().hex}}
    seen_at: dict[str, dict[str, Any]] = {}
    for turn in inputs:
        for event in app.stream(turn, config, stream_mode="checkpoints"):
            seen_at[event["config"]["configurable"]["checkpoint_id"]] = event["values"]
    fresh = build().compile(checkpointer=saver)  # no in-process cache
    history = list(fresh.get_state_history(config))
    assert len(history) == len(seen_at)
    for snap in history:
        assert snap.values == seen_at[snap.config["configurable"]["checkpoint_id"]]
    if backend == "sqlite":
        saver.close()


@given(st.permutations(range(6)), st.lists(st.integers(), min_size=6, max_size=6))
def test_apply_order_is_independent_of_finish_order(order: list[int], payload: list[int]) -> None:
    topo = Topology(channels={"log": Channel("log", operator.add, list)}, node_order={})
    tasks = [Task(i, f"id{i}", f"n{i % 3}", i >= 3, None) for i in range(6)]
    results = [TaskResult(t, [("log", [payload[t.index]])]) for t in tasks]
    finished = [results[i] for i in order]
    expected = apply_step(topo, {}, (), [(r.task.node, r.writes) for r in apply_order(results)], check=True)
    got = apply_step(topo, {}, (), [(r.task.node, r.writes) for r in apply_order(finished)], check=True)
    assert got == expected


@given(st.lists(st.lists(st.integers(), max_size=3), max_size=8))
def test_folding_reducer_writes_equals_one_concatenation(chunks: list[list[int]]) -> None:
    topo = Topology(channels={"log": Channel("log", operator.add, list)}, node_order={})
    values: dict[str, Any] = {}
    for chunk in chunks:
        values = apply_step(topo, values, (), [("n", [("log", chunk)])], check=True)
    assert values.get("log", []) == [x for c in chunks for x in c]
