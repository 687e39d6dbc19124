"""Chunks that must reach the caller while nodes are still running.

``stream_mode="custom"`` (``get_stream_writer()``) and ``stream_mode="messages"`` (a chat
model's tokens, as it produces them) are written from inside nodes, possibly from worker
threads; they go through this queue, which the drivers drain while they wait for tasks.
"""

from __future__ import annotations

import queue
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tether._types import Runtime

__all__ = ["SUBGRAPH", "LiveStream", "StepEnv", "SubChunk", "SubStream"]

SUBGRAPH = "__subgraph__"  # a queue entry holding a subgraph run's chunk


class LiveStream:
    def __init__(self, modes: Iterable[str]) -> None:
        modes = set(modes)
        self.wants_custom = "custom" in modes
        self.wants_messages = "messages" in modes
        self.streamed_ids: set[str] = set()  # messages already sent chunk by chunk
        self._queue: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()

    def custom(self, chunk: Any) -> None:
        if self.wants_custom:
            self._queue.put(("custom", chunk))

    def message(self, chunk: Any, metadata: dict[str, Any]) -> None:
        if getattr(chunk, "id", None):
            self.streamed_ids.add(chunk.id)
        self._queue.put(("messages", (chunk, metadata)))

    def subgraph(self, ns: tuple[str, ...], chunk: Any) -> None:
        self._queue.put((SUBGRAPH, SubChunk(ns, chunk)))

    def drain(self) -> list[tuple[str, Any]]:
        out = []
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                return out


@dataclass(frozen=True, slots=True)
class StepEnv:
    """What every task of one step shares."""

    config: dict[str, Any]
    runtime: Runtime[Any]
    step: int
    live: LiveStream | None
    saver: Any = None  # the run's checkpointer: subgraphs run inside a task inherit it
    substream: SubStream | None = None  # set when the root run streams with subgraphs=True


@dataclass(frozen=True, slots=True)
class SubChunk:
    """A chunk a subgraph run produced, with the namespace it comes from."""

    ns: tuple[str, ...]
    chunk: Any


@dataclass(frozen=True, slots=True)
class SubStream:
    """Where subgraph runs send their chunks when the root run streams with ``subgraphs=True``:
    the root's live queue, which its driver drains while tasks run. Subgraphs stream in the
    root's modes."""

    live: LiveStream
    modes: tuple[str, ...]
    single_mode: bool
