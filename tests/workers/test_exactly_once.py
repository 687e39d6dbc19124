"""A run's input goes in once, whatever moment its worker died at (attempts driven by hand here;
test_kill.py does the same with real SIGKILLs)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from tests.workers import graphs
from tether import Command, InMemorySaver
from tether.checkpoint import PostgresSaver
from tether.workers import Client
from tether.workers import _store as store
from tether.workers._execute import RunExecutor, thread_state


@pytest.fixture
def executor(url: str) -> Iterator[RunExecutor]:
    with PostgresSaver.from_conn_string(url) as saver:
        pool: ConnectionPool[Any] = ConnectionPool(url, min_size=1, max_size=2, kwargs={"autocommit": True})
        with pool:
            yield RunExecutor(graphs.turns().compile(checkpointer=saver), pool, worker="test")


def dead_attempt(ex: RunExecutor, run_id: str, *, apply: int | None) -> None:
    """What a worker killed during ``run_id`` leaves: the run row ``running`` with its start state
    recorded, and ``apply`` chunks of its input's run committed (None: nothing applied)."""
    with ex.pool.connection() as conn:
        started = store.start_attempt(conn, run_id, "dead-worker")
        assert started is not None
        run = started[0]
        store.record_start_state(conn, run_id, thread_state(ex.saver, run.thread_id, ""))
    if apply is None:
        return
    config: Any = {"configurable": {"thread_id": run.thread_id}, "metadata": {"run_id": run_id}}
    chunks = ex.graph.stream(run.input, config, stream_mode="values")
    for _ in zip(range(apply), chunks):
        pass
    chunks.close()  # killed right after that commit


def chain(graph: Any, thread_id: str) -> list[tuple[Any, ...]]:
    config: Any = {"configurable": {"thread_id": thread_id}}
    out = []
    while config is not None:
        snap = graph.get_state(config)
        out.append((snap.metadata["step"], snap.metadata["source"], tuple(sorted(snap.next)), snap.values))
        config = snap.parent_config
    return out[::-1]


def reference(inputs: list[Any]) -> list[tuple[Any, ...]]:
    graph = graphs.turns().compile(checkpointer=InMemorySaver())
    for value in inputs:
        graph.invoke(value, {"configurable": {"thread_id": "ref"}})
    return chain(graph, "ref")


def test_a_resume_already_given_is_not_given_again(client: Client, executor: RunExecutor) -> None:
    # the dangerous case: the node asks twice, so a resume applied twice would answer the second question
    first = client.runs.create("q", {"n": 0})
    executor.execute(first.run_id)
    assert client.runs.get(first.run_id).status == "interrupted"
    answer = client.runs.create("q", Command(resume="A"))
    dead_attempt(executor, answer.run_id, apply=10)  # resume committed, second question asked, then killed
    executor.execute(answer.run_id)  # the retry
    retried = client.runs.get(answer.run_id)
    assert (retried.status, retried.attempts) == ("interrupted", 2)
    last = client.runs.create("q", Command(resume="B"))
    executor.execute(last.run_id)
    assert client.runs.get(last.run_id).output["answers"] == ["A", "B"]
    assert chain(executor.graph, "q") == reference([{"n": 0}, Command(resume="A"), Command(resume="B")])


def test_an_input_not_yet_applied_is_applied_on_retry(client: Client, executor: RunExecutor) -> None:
    run = client.runs.create("p", {"n": 0})
    dead_attempt(executor, run.run_id, apply=None)  # killed between recording the start state and the input
    executor.execute(run.run_id)
    assert client.runs.get(run.run_id).status == "interrupted"
    assert chain(executor.graph, "p") == reference([{"n": 0}])


@pytest.mark.parametrize("committed", [1, 2, 3, 4])
def test_a_turn_killed_after_some_steps_goes_on_from_its_last_checkpoint(
    client: Client, executor: RunExecutor, committed: int
) -> None:
    thread = f"k{committed}"
    run = client.runs.create(thread, {"n": 5})
    dead_attempt(executor, run.run_id, apply=committed)
    executor.execute(run.run_id)
    assert client.runs.get(run.run_id).status == "interrupted"
    got = chain(executor.graph, thread)
    assert [c[0] for c in got] == list(range(-1, len(got) - 1))  # no step repeated or skipped
    assert got == reference([{"n": 5}])


def test_a_retry_after_the_run_finished_does_nothing(client: Client, executor: RunExecutor) -> None:
    inputs: list[Any] = [{"n": 1}, Command(resume="x"), Command(resume="y")]
    runs = [client.runs.create("f", value) for value in inputs]
    for run in runs[:2]:
        executor.execute(run.run_id)
    dead_attempt(executor, runs[2].run_id, apply=10)  # ran to the end, killed before marking it done
    executor.execute(runs[2].run_id)
    done = client.runs.get(runs[2].run_id)
    assert done.status == "success" and done.output["answers"] == ["x", "y"]
    assert chain(executor.graph, "f") == reference(inputs)
    executor.execute(runs[2].run_id)  # a stalled copy of a finished job: nothing to do
    assert client.runs.get(runs[2].run_id) == done
