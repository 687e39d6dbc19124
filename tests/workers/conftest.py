from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.pg import sql
from tether import StateGraph
from tether.workers import Client, WorkerSettings, run_worker_async

ROOT = Path(__file__).parents[2]

# timings short enough for tests: a dead worker's runs move on within about two seconds
FAST = {"heartbeat": 0.2, "stalled_after": 1.5, "sweep_every": 0.3, "poll": 0.5, "shutdown_timeout": 5.0}


class InProcessWorker:
    """``run_worker_async`` on an event loop in a thread of the test process."""

    def __init__(self, url: str, graph: StateGraph, **settings: Any) -> None:
        self.settings = WorkerSettings(**{**FAST, "install_signal_handlers": False, **settings})
        self.url, self.graph = url, graph
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[None] | None = None
        self.error: BaseException | None = None
        self._started = threading.Event()
        self.thread = threading.Thread(target=self._main, name="tether-test-worker", daemon=True)
        self.thread.start()
        assert self._started.wait(30), "the worker did not start"

    def _main(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self.task = asyncio.create_task(run_worker_async(self.url, self.graph, self.settings))
            self._started.set()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
            except BaseException as exc:
                self.error = exc

        asyncio.run(main())

    def stop(self) -> None:
        if self.loop is not None and self.task is not None and not self.task.done():
            self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(30)
        assert not self.thread.is_alive(), "the worker did not stop"
        if self.error is not None:
            raise self.error


@pytest.fixture
def url(postgres_schema: str) -> str:
    return postgres_schema


@pytest.fixture
def client(url: str) -> Iterator[Client]:
    with Client(url) as c:
        yield c


@pytest.fixture
def start_worker(url: str) -> Iterator[Callable[..., InProcessWorker]]:
    workers: list[InProcessWorker] = []

    def start(graph: StateGraph, **settings: Any) -> InProcessWorker:
        w = InProcessWorker(url, graph, **settings)
        workers.append(w)
        deadline = time.monotonic() + 30
        while not sql(url, "SELECT to_regclass('thread_checkpoints') IS NOT NULL")[0][0]:  # its saver is ready
            assert time.monotonic() < deadline, "the worker did not set up its tables"
            time.sleep(0.02)
        return w

    yield start
    for w in workers:
        w.stop()


def worker_process(
    url: str, graph: str, *args: str, log: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``tether worker`` in a process of its own (timings as FAST), its output appended to ``log``."""
    options = [f"--{k.replace('_', '-')}={v}" for k, v in FAST.items()]
    with open(log or os.devnull, "ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "tether.cli", "worker", "--db", url, "--graph", graph, *options, *args],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}", **(env or {})},
            stdout=out,
            stderr=out,
        )
