"""Several ``tether worker`` processes, hundreds of runs over dozens of threads, workers SIGKILLed
at random moments and replaced: every run finishes once, and every thread ends exactly as the same
runs executed one after another in a single process (on InMemorySaver) leave it."""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.pg import sql
from tests.workers import graphs
from tests.workers.conftest import worker_process
from tether import Command, InMemorySaver
from tether.checkpoint import PostgresSaver
from tether.workers import Client

THREADS = 30
TURNS = 3  # each turn: the input (interrupted), a first answer (interrupted again), a second (success)
WORKERS = 3
CONCURRENCY = 2
MIN_KILLS = 6  # SIGKILLs of workers that were running a run at that moment (typically 12 to 21)
MAX_KILLS = 25
NAP = {"TETHER_TEST_NAP": "0.02"}  # seconds per node: wider windows between commits
GRAPH = "tests.workers.graphs:turns"


def runs_of(thread: str) -> list[Any]:
    inputs: list[Any] = []
    for turn in range(TURNS):
        inputs += [{"n": 7 * turn}, Command(resume=f"{thread}:first{turn}"), Command(resume=f"{thread}:second{turn}")]
    return inputs


def chain(graph: Any, thread_id: str) -> list[tuple[Any, ...]]:
    config: Any = {"configurable": {"thread_id": thread_id}}
    out = []
    while config is not None:
        snap = graph.get_state(config)
        out.append((snap.metadata["step"], snap.metadata["source"], tuple(sorted(snap.next)), snap.values))
        config = snap.parent_config
    return out[::-1]


@pytest.mark.slow
def test_sigkilled_workers_lose_nothing_and_repeat_nothing(url: str, tmp_path: Path) -> None:
    rng = random.Random(20261124)
    threads = [f"t{i:02d}" for i in range(THREADS)]
    host = socket.gethostname()
    logs = tmp_path / "workers.log"
    with Client(url) as client:
        # all the runs up front, interleaved across threads; each thread's in order
        expected: dict[str, tuple[str, str, Any]] = {}  # run id -> thread, status, input
        for step in range(3 * TURNS):
            for t in threads:
                value = runs_of(t)[step]
                run = client.runs.create(t, value)
                expected[run.run_id] = (t, "success" if step % 3 == 2 else "interrupted", value)
        started = time.monotonic()

        def start() -> subprocess.Popen[bytes]:
            return worker_process(url, GRAPH, f"--concurrency={CONCURRENCY}", log=logs, env=NAP)

        procs = [start() for _ in range(WORKERS)]
        kills = {"total": 0, "during a run": 0}
        try:
            while True:
                open_runs = sql(url, "SELECT count(*) FROM tether_runs WHERE status IN ('pending', 'running')")[0][0]
                if open_runs == 0:
                    break
                if time.monotonic() - started > 150:
                    stuck = sql(
                        url,
                        "SELECT r.run_id, r.status, r.attempts, j.status, j.worker_id FROM tether_runs r"
                        " JOIN procrastinate_jobs j ON j.id = r.job_id WHERE r.status IN ('pending', 'running')",
                    )
                    raise AssertionError(f"{open_runs} runs still open: {stuck[:5]}; see {logs}")
                time.sleep(rng.uniform(0.1, 0.5))
                if kills["total"] >= MAX_KILLS:
                    continue  # enough havoc: let them finish
                busy = {row[0] for row in sql(url, "SELECT DISTINCT worker FROM tether_runs WHERE status = 'running'")}
                candidates = [p for p in procs if f"{host}:{p.pid}" in busy]
                if not candidates and rng.random() < 0.8:
                    continue  # mostly kill workers in the middle of a run
                victim = rng.choice(candidates or procs)
                procs.remove(victim)
                victim.send_signal(signal.SIGKILL)
                victim.wait()
                kills["total"] += 1
                kills["during a run"] += bool(candidates)
                procs.append(start())
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
        elapsed = time.monotonic() - started
        runs = {r.run_id: r for r in client.runs.list(limit=10_000)}

    assert kills["during a run"] >= MIN_KILLS, kills
    # the same runs, one after another, in one process
    reference = graphs.turns().compile(checkpointer=InMemorySaver())
    outputs: dict[str, Any] = {}
    for run_id in sorted(expected):  # creation order
        t, _, value = expected[run_id]
        out = reference.invoke(value, {"configurable": {"thread_id": t}})
        outputs[run_id] = {k: v for k, v in out.items() if k != "__interrupt__"}

    assert sorted(runs) == sorted(expected)
    wrong = [(r.run_id, r.status, r.error) for r in runs.values() if r.status != expected[r.run_id][1]]
    assert wrong == [], f"runs that ended otherwise than in one process: {wrong[:5]}; see {logs}"
    assert [rid for rid, r in runs.items() if r.output != outputs[rid]] == []
    with PostgresSaver.from_conn_string(url) as saver:
        graph = graphs.turns().compile(checkpointer=saver)
        differing = []
        for t in threads:
            got, want = chain(graph, t), chain(reference, t)
            assert [c[0] for c in got] == list(range(-1, len(got) - 1)), f"{t}: a step repeated or skipped"
            if got != want:
                differing.append(t)
        assert differing == [], f"threads whose history differs from one process: {differing}"
    retried = sum(1 for r in runs.values() if r.attempts > 1)
    print(
        f"\n{len(runs)} runs over {THREADS} threads, {WORKERS} workers x {CONCURRENCY}: {kills['total']} SIGKILLs "
        f"({kills['during a run']} during a run), {retried} runs taken over by another worker, "
        f"0 duplicated or lost steps; {elapsed:.1f}s"
    )
