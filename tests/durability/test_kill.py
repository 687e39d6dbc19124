"""SIGKILL a process running graphs at many moments; nothing committed is lost or applied twice.

Three kinds of kill point, all on the same database so that recovery itself gets interrupted:
from outside at random times; from inside just before the N-th SQL statement (so within open
transactions, right before COMMIT, between steps); and from inside the N-th node call.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.durability import kill_worker
from tether import SqliteSaver

WORKER = Path(kill_worker.__file__)
ROOT = WORKER.parents[2]
MIN_KILLS = 60


def worker(db: Path, threads: list[str], **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(db), *threads],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), **env},
    )


def finished(proc: subprocess.Popen[str]) -> bool:
    out, err = proc.communicate(timeout=120)
    if proc.returncode == -signal.SIGKILL:
        return False
    assert proc.returncode == 0, err
    assert "finished" in out
    return True


def chain(app: Any, thread_id: str) -> list[tuple[Any, ...]]:
    """The thread's checkpoints from root to head, following parent links."""
    config: Any = {"configurable": {"thread_id": thread_id}}
    out = []
    while config is not None:
        snap = app.get_state(config)
        out.append((snap.metadata["step"], snap.metadata["source"], tuple(sorted(snap.next)), snap.values))
        config = snap.parent_config
    return list(reversed(out))


def test_sigkill_at_any_moment_loses_nothing_and_repeats_nothing(tmp_path: Path) -> None:
    rng = random.Random(20261124)
    reference, killed = tmp_path / "reference.sqlite", tmp_path / "killed.sqlite"
    batches: list[list[str]] = []
    kills = {"random time": 0, "before an SQL statement": 0, "inside a node": 0}
    completed_runs = 0

    def threads() -> list[str]:
        return [t for batch in batches for t in batch]

    def new_batch() -> None:
        batches.append([f"b{len(batches)}-t{i}" for i in range(6)])

    new_batch()
    attempt = 0
    while sum(kills.values()) < MIN_KILLS:
        kind = min(kills, key=lambda k: (kills[k], list(kills).index(k)))  # keep the kinds balanced
        attempt += 1
        if kind == "random time":
            proc = worker(killed, threads())
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            time.sleep(rng.uniform(0.0, 0.25))
            proc.send_signal(signal.SIGKILL)
        elif kind == "before an SQL statement":
            proc = worker(killed, threads(), KILL_AT_STATEMENT=str(rng.randint(1, 400)))
        else:
            proc = worker(killed, threads(), KILL_AT_NODE=str(rng.randint(1, 60)))
        if finished(proc):
            completed_runs += 1
            new_batch()  # everything so far is done: give the next kills fresh work
        else:
            kills[kind] += 1
    assert finished(worker(killed, threads()))  # recovery: finish whatever the kills left
    assert finished(worker(reference, threads()))  # the same work, never interrupted

    graph = kill_worker.build()
    with SqliteSaver.from_conn_string(reference) as ref_saver, SqliteSaver.from_conn_string(killed) as saver:
        ref_app, app = graph.compile(checkpointer=ref_saver), graph.compile(checkpointer=saver)
        lost = []
        for thread_id in threads():
            expected, got = chain(ref_app, thread_id), chain(app, thread_id)
            steps = [c[0] for c in got]
            assert steps == list(range(-1, len(steps) - 1)), f"{thread_id}: steps repeated or skipped"
            if got != expected:
                lost.append(thread_id)
            final = got[-1][3]
            assert final["log"].count("done") == 2 and len(final["answers"]) == 4, final
        assert lost == [], f"{len(lost)} threads differ from the uninterrupted run: {lost}"
    print(
        f"\nkill points: {kills} (total {sum(kills.values())}); runs that completed: {completed_runs}; "
        f"threads checked: {len(threads())}; threads that lost or repeated anything: 0"
    )
