"""Where a thread stands at a checkpoint: its due tasks, open interrupts, status and next nodes.

One pure reader over a decoded checkpoint and the pending writes recorded against it, used by
``get_state``, the ``tether`` command line (``threads``, ``show``) and everything built on
them, so they cannot disagree. The rules follow LangGraph's ``get_state``:

- the due tasks are the checkpoint's ``next``, in order;
- a task is *finished* once it has a ``result`` write (a resumed task that ran to the end);
- a task's interrupts are *open* while it is not finished: an answered interrupt whose task
  asked again (or has not run yet) stays open until the task finishes;
- ``next`` names the due tasks that have not finished;
- the status is ``waiting`` when an interrupt is open, else ``error`` when an unfinished task
  failed, else ``paused`` when a task is due (a breakpoint, or a run that stopped), else ``done``.

The SQL view ``waiting_interrupts`` shows the same open interrupts (docs/storage.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tether._names import PENDING_ERROR, PENDING_INTERRUPT, PENDING_RESULT
from tether.checkpoint._base import BaseCheckpointSaver, PendingWrite
from tether.graph._algo import Task, tasks_from_specs
from tether.graph._state import DecodedCheckpoint, decode_pending, decode_record

__all__ = ["DueTask", "Status", "ThreadStatus", "read_thread_status", "thread_status", "thread_status_of"]

Status = Literal["waiting", "error", "paused", "done"]


@dataclass(frozen=True, slots=True)
class DueTask:
    """A task of the checkpoint's step and the pending writes recorded for it (kind → write)."""

    task: Task
    writes: dict[str, PendingWrite]
    thread_id: str
    checkpoint_id: str

    @property
    def finished(self) -> bool:
        return PENDING_RESULT in self.writes

    def value(self, kind: str) -> Any:
        """The decoded value of this task's ``kind`` write (checked), or None without one."""
        write = self.writes.get(kind)
        return None if write is None else decode_pending(self.thread_id, self.checkpoint_id, write)

    def open_interrupts(self) -> list[dict[str, Any]]:
        """``[{"id": …, "value": …}, …]`` this task still waits on: none once it finished."""
        if self.finished or PENDING_INTERRUPT not in self.writes:
            return []
        return list(self.value(PENDING_INTERRUPT))


@dataclass(frozen=True, slots=True)
class ThreadStatus:
    tasks: tuple[DueTask, ...]

    @property
    def next(self) -> list[str]:
        """The nodes of the due tasks that have not finished, in task order."""
        return [t.task.node for t in self.tasks if not t.finished]

    def open_interrupts(self) -> list[dict[str, Any]]:
        """Every open interrupt, in task order."""
        return [i for t in self.tasks for i in t.open_interrupts()]

    def status(self) -> Status:
        if self.open_interrupts():  # a subgraph's breakpoint pauses its task without asking anything
            return "waiting"
        if any(not t.finished and PENDING_ERROR in t.writes for t in self.tasks):
            return "error"
        return "paused" if self.tasks else "done"


def thread_status(decoded: DecodedCheckpoint, pending: Iterable[PendingWrite]) -> ThreadStatus:
    """Where a thread stands at ``decoded``, given the pending writes recorded against it.

    Writes of tasks the checkpoint does not schedule (the recorded input of a Command) are
    not tasks of the step and play no part here."""
    record = decoded.record
    return thread_status_of(record.thread_id, record.checkpoint_id, decoded.next, pending)


def thread_status_of(
    thread_id: str, checkpoint_id: str, next_specs: Sequence[Any], pending: Iterable[PendingWrite]
) -> ThreadStatus:
    tasks = tasks_from_specs(checkpoint_id, next_specs)
    by_task: dict[str, dict[str, PendingWrite]] = {t.id: {} for t in tasks}
    for write in pending:
        if write.task_id in by_task:
            by_task[write.task_id][write.kind] = write
    return ThreadStatus(tuple(DueTask(t, by_task[t.id], thread_id, checkpoint_id) for t in tasks))


def read_thread_status(saver: BaseCheckpointSaver, thread_id: str, checkpoint_ns: str = "") -> ThreadStatus:
    """Where a thread stands at its newest checkpoint (no tasks, ``done``, for a thread without one)."""
    loaded = saver.get(thread_id, checkpoint_ns)
    if loaded is None:
        return ThreadStatus(())
    return thread_status(decode_record(loaded.record), loaded.pending)
