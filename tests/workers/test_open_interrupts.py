"""A worker's run status agrees with the one reader of open interrupts (tests/graph/test_open_interrupts.py)."""

from __future__ import annotations

from tests.graph.test_open_interrupts import THREAD, two_asks
from tests.workers.test_runs import StartWorker
from tether import Command
from tether.checkpoint import PostgresSaver
from tether.workers import Client


def test_one_of_two_parallel_interrupts_answered_leaves_the_run_interrupted(
    client: Client, start_worker: StartWorker, url: str
) -> None:
    start_worker(two_asks())
    thread = THREAD["configurable"]["thread_id"]
    first = client.runs.create(thread, {"msgs": []})
    assert client.runs.wait(first.run_id, timeout=30).status == "interrupted"
    with PostgresSaver.from_conn_string(url) as saver:
        graph = two_asks().compile(checkpointer=saver)
        asked = {i.value: i.id for i in graph.get_state(THREAD).interrupts}
    assert set(asked) == {"ask_a?", "ask_b?"}

    second = client.runs.create(thread, Command(resume={asked["ask_b?"]: "B"}))
    assert client.runs.wait(second.run_id, timeout=30).status == "interrupted"
    with PostgresSaver.from_conn_string(url) as saver:
        state = two_asks().compile(checkpointer=saver).get_state(THREAD)
    assert [(i.id, i.value) for i in state.interrupts] == [(asked["ask_a?"], "ask_a?")]

    last = client.runs.create(thread, Command(resume={asked["ask_a?"]: "A"}))
    done = client.runs.wait(last.run_id, timeout=30)
    assert done.status == "success"
    assert sorted(done.output["msgs"]) == ["ask_a=A", "ask_b=B", "done", "fork"]
