"""The runs API against a real PostgreSQL and real procrastinate workers (in this process)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.pg import sql
from tests.workers import graphs
from tests.workers.conftest import InProcessWorker
from tether import Command
from tether.checkpoint import PostgresSaver
from tether.workers import Client, RunFailedError, RunNotFoundError, RunRetry, RunTimeoutError, setup

StartWorker = Callable[..., InProcessWorker]


def thread_values(url: str, graph: Any, thread_id: str) -> dict[str, Any]:
    with PostgresSaver.from_conn_string(url) as saver:
        return dict(graph.compile(checkpointer=saver).get_state({"configurable": {"thread_id": thread_id}}).values)


def test_setup_is_idempotent_and_safe_to_run_concurrently(url: str) -> None:
    errors: list[BaseException] = []

    def go() -> None:
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                setup(conn)
                setup(conn)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sql(url, "SELECT version FROM tether_runs_schema") == [(1,)]
    assert sql(url, "SELECT count(*) FROM procrastinate_jobs") == [(0,)]


def test_create_records_a_pending_run_and_its_job(client: Client, url: str) -> None:
    run = client.runs.create("t1", {"n": 5})
    assert run.status == "pending" and run.thread_id == "t1" and run.input == {"n": 5}
    assert run.config == {"configurable": {"thread_id": "t1"}}
    assert run.attempts == 0 and run.started_at is None and not run.done
    jobs = sql(url, "SELECT task_name, lock, status, args FROM procrastinate_jobs WHERE id = %s", (run.job_id,))
    assert jobs == [("tether.run", "t1", "todo", {"run_id": run.run_id})]
    second = client.runs.create("t1", Command(resume={"a": 1}))
    assert second.input == Command(resume={"a": 1})
    assert client.runs.get(run.run_id) == run
    assert [r.run_id for r in client.runs.list("t1")] == [run.run_id, second.run_id]  # oldest first
    assert client.runs.list("nobody") == []
    with pytest.raises(RunNotFoundError, match="no run 'nope'"):
        client.runs.get("nope")


def test_wait_times_out_while_no_worker_runs_it(client: Client) -> None:
    run = client.runs.create("t", {"n": 1})
    started = time.monotonic()
    with pytest.raises(RunTimeoutError, match="still pending"):
        client.runs.wait(run.run_id, timeout=0.3)
    assert time.monotonic() - started < 2


def test_a_worker_runs_it_and_join_returns_the_state(client: Client, start_worker: StartWorker, url: str) -> None:
    start_worker(graphs.counter())
    run = client.runs.create("t", {"n": 41})
    assert client.runs.join(run.run_id, timeout=20) == {"n": 42, "log": ["add42"], "answers": []}
    done = client.runs.get(run.run_id)
    assert done.status == "success" and done.attempts == 1 and done.failures == 0 and done.error is None
    assert done.created_at <= done.started_at <= done.finished_at  # type: ignore[operator]
    assert sql(url, "SELECT status FROM procrastinate_jobs WHERE id = %s", (run.job_id,)) == [("succeeded",)]
    # every checkpoint the run wrote names it
    rows = sql(url, "SELECT DISTINCT metadata->>'run_id' FROM thread_checkpoints WHERE thread_id = 't'")
    assert rows == [(run.run_id,)]


def test_runs_of_a_thread_run_one_at_a_time_in_creation_order(
    client: Client, start_worker: StartWorker, url: str
) -> None:
    start_worker(graphs.counter(), concurrency=4)
    start_worker(graphs.counter(), concurrency=2)
    threads = [f"t{i}" for i in range(4)]
    runs = [client.runs.create(t, {"log": [f"in{j}"]}) for j in range(8) for t in threads]
    for run in runs:
        client.runs.wait(run.run_id, timeout=60)
    for t in threads:
        mine = client.runs.list(t)
        assert [r.status for r in mine] == ["success"] * 8
        for before, after in itertools.pairwise(mine):  # never overlapping, in order
            assert before.finished_at <= after.started_at  # type: ignore[operator]
        values = thread_values(url, graphs.counter(), t)
        assert values["log"] == [x for j in range(8) for x in (f"in{j}", f"add{j + 1}")]


def test_an_interrupted_run_then_a_resume_run(client: Client, start_worker: StartWorker) -> None:
    start_worker(graphs.approval())
    first = client.runs.create("a", {"n": 1})
    assert client.runs.wait(first.run_id, timeout=20).status == "interrupted"
    assert client.runs.get(first.run_id).output == {"n": 1, "log": ["draft"], "answers": []}
    second = client.runs.create("a", Command(resume="yes"))
    assert client.runs.join(second.run_id, timeout=20) == {"n": 1, "log": ["draft"], "answers": ["yes"]}


def test_breakpoints_end_a_run_interrupted(client: Client, start_worker: StartWorker) -> None:
    start_worker(graphs.approval().compile(interrupt_before=["ask"]))
    run = client.runs.create("b", {"n": 1})
    assert client.runs.wait(run.run_id, timeout=20).status == "interrupted"
    go_on = client.runs.create("b", None)  # continue past the breakpoint, to the question
    assert client.runs.wait(go_on.run_id, timeout=20).status == "interrupted"


def test_cancelling_a_pending_run_means_it_never_runs(client: Client, start_worker: StartWorker, url: str) -> None:
    doomed = client.runs.create("c", {"log": ["doomed"]})
    kept = client.runs.create("c", {"log": ["kept"]})
    cancelled = client.runs.cancel(doomed.run_id)
    assert cancelled.status == "cancelled" and cancelled.finished_at is not None
    assert sql(url, "SELECT status FROM procrastinate_jobs WHERE id = %s", (doomed.job_id,)) == [("cancelled",)]
    assert client.runs.cancel(doomed.run_id) == client.runs.get(doomed.run_id)  # final: unchanged
    start_worker(graphs.counter())
    assert client.runs.join(kept.run_id, timeout=20)["log"] == ["kept", "add1"]
    assert client.runs.wait(doomed.run_id, timeout=1).status == "cancelled"
    with pytest.raises(RunFailedError, match="ended cancelled"):
        client.runs.join(doomed.run_id)


def test_cancelling_a_running_run_stops_it_at_a_step_boundary(
    client: Client, start_worker: StartWorker, url: str
) -> None:
    start_worker(graphs.slow(), poll=0.2)
    run = client.runs.create("s", {"n": 0})
    deadline = time.monotonic() + 20
    while sql(url, "SELECT count(*) FROM thread_checkpoints WHERE thread_id = 's'")[0][0] < 4:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    asked = client.runs.cancel(run.run_id)
    assert asked.status == "running"
    done = client.runs.wait(run.run_id, timeout=20)
    assert done.status == "cancelled" and done.error == "cancelled while running"
    values = thread_values(url, graphs.slow(), "s")
    assert 0 < values["n"] < 200  # what committed stays; the rest never ran
    time.sleep(0.3)
    assert thread_values(url, graphs.slow(), "s")["n"] == values["n"]
    assert sql(url, "SELECT status FROM procrastinate_jobs WHERE id = %s", (run.job_id,)) == [("aborted",)]


def test_a_failing_node_is_retried_with_backoff_and_the_error_kept(client: Client, start_worker: StartWorker) -> None:
    start_worker(graphs.flaky())
    graphs.FAILS["f"] = 2
    run = client.runs.create("f", {"n": 0}, retry=RunRetry(max_attempts=3, initial_interval=0.2))
    assert client.runs.join(run.run_id, timeout=30) == {"n": 2, "log": ["add1", "flaky ok"], "answers": []}
    done = client.runs.get(run.run_id)
    assert (done.status, done.attempts, done.failures) == ("success", 3, 2)
    assert done.error == "ConnectionError: flaky service is down (1 more)"  # the last failure stays on record
    # the waits grew: 0.2 s, then 0.4 s
    assert (done.finished_at - done.started_at).total_seconds() >= 0.6  # type: ignore[operator]


def test_a_run_that_keeps_failing_ends_in_error(client: Client, start_worker: StartWorker) -> None:
    start_worker(graphs.flaky())
    graphs.FAILS["g"] = 5
    run = client.runs.create("g", {"n": 0}, retry=RunRetry(max_attempts=2, initial_interval=0.1))
    done = client.runs.wait(run.run_id, timeout=30)
    assert (done.status, done.attempts, done.failures) == ("error", 2, 2)
    assert done.error == "ConnectionError: flaky service is down (4 more)"
    with pytest.raises(RunFailedError, match="ended error: ConnectionError"):
        client.runs.join(run.run_id)


def test_a_programming_error_is_not_retried(client: Client, start_worker: StartWorker) -> None:
    start_worker(graphs.flaky())
    graphs.BROKEN.add("h")
    run = client.runs.create("h", {"n": 0})
    done = client.runs.wait(run.run_id, timeout=30)
    assert (done.status, done.attempts, done.failures) == ("error", 1, 1)
    assert done.error == "KeyError: 'no record for h'"


async def test_the_async_variants(client: Client, start_worker: StartWorker) -> None:
    start_worker(graphs.counter())
    run = await client.runs.create_async("as", {"n": 1})
    assert (await client.runs.join_async(run.run_id, timeout=20))["n"] == 2
    assert (await client.runs.wait_async(run.run_id)).status == "success"
    assert [r.run_id for r in await client.runs.list_async("as")] == [run.run_id]
    assert (await client.runs.get_async(run.run_id)).status == "success"
    assert (await client.runs.cancel_async(run.run_id)).status == "success"


def test_a_thread_still_held_elsewhere_makes_the_run_wait_not_fail(
    client: Client, start_worker: StartWorker, url: str
) -> None:
    # what a dead worker's half-open connection looks like: its advisory lock on the thread lingers
    start_worker(graphs.counter())
    with PostgresSaver.from_conn_string(url) as holder:
        holder.acquire("busy", "", "a-half-dead-worker")
        run = client.runs.create("busy", {"n": 0}, retry=RunRetry(max_attempts=1, initial_interval=0.2))
        deadline = time.monotonic() + 20
        while "ThreadBusyError" not in (client.runs.get(run.run_id).error or ""):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert client.runs.get(run.run_id).status in ("pending", "running")
        holder.release("busy", "", "a-half-dead-worker")  # PostgreSQL notices the connection is gone
    done = client.runs.wait(run.run_id, timeout=20)
    assert done.status == "success" and done.failures == 0 and done.attempts >= 2  # waiting used up no attempt
