"""The loop that drives one run: load, execute a step, commit a checkpoint, repeat.

``RunLoop.run()`` is a generator that performs no I/O itself. It yields *effects* —
``Call`` (a checkpointer method), ``Execute`` (a batch of tasks) and ``Emit`` (a stream
chunk) — and a driver carries them out, synchronously (``invoke``/``stream``) or with
``await`` (``ainvoke``/``astream``). One loop, two thin drivers, no duplicated logic.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tether._names import (
    COMMAND_KEY,
    PENDING_ERROR,
    PENDING_INPUT,
    PENDING_INTERRUPT,
    PENDING_RESULT,
    PENDING_RESUME,
    is_join,
)
from tether.checkpoint import _serde as serde
from tether.checkpoint._base import CheckpointRecord, LoadedCheckpoint, PendingWrite, new_checkpoint_id
from tether.errors import (
    CheckpointNotFoundError,
    EmptyInputError,
    GraphRecursionError,
    GraphRuntimeError,
    InvalidResumeError,
    InvalidUpdateError,
    SerializationError,
)
from tether.graph._algo import (
    Task,
    TaskResult,
    apply_order,
    apply_step,
    interrupt_id,
    plan_next,
    tasks_from_specs,
)
from tether.graph._live import LiveStream, StepEnv, SubStream
from tether.graph._runner import update_pairs
from tether.graph._state import (
    INPUT_NODE,
    DecodedCheckpoint,
    SnapshotPolicy,
    check_next_nodes,
    decode_pending,
    pull_nodes,
)
from tether.messages import BaseMessage, add_messages, convert_to_messages
from tether.types import START, Command, Interrupt, Runtime, Send

if TYPE_CHECKING:
    from tether.graph._spec import RunGraph

__all__ = ["Call", "Emit", "Execute", "Head", "RunLoop", "build_record"]

INTERRUPT = "__interrupt__"


@dataclass(slots=True)
class Call:
    """Call ``checkpointer.<method>(*args, **kwargs)`` (or ``a<method>`` in async runs)."""

    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Execute:
    """Run ``tasks`` concurrently; report each result to ``on_done`` as it finishes; while they
    run, pass on what ``env.live`` receives."""

    tasks: list[Task]
    values: dict[str, Any]
    resume: dict[str, dict[str, Any]]
    on_done: Callable[[TaskResult, int], Call | None]
    env: StepEnv


@dataclass(slots=True)
class Emit:
    chunk: Any


Effect = Call | Execute | Emit


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(slots=True)
class Head:
    """The checkpoint the run stands on, with its state."""

    decoded: DecodedCheckpoint | None
    values: dict[str, Any]
    policy: SnapshotPolicy = field(default_factory=SnapshotPolicy)
    pending: list[PendingWrite] = field(default_factory=list)

    @property
    def id(self) -> str | None:
        return self.decoded.record.checkpoint_id if self.decoded else None

    @property
    def step(self) -> int:
        return self.decoded.record.step if self.decoded else -2


class RunLoop:
    def __init__(
        self,
        graph: RunGraph,
        input: Any,
        config: dict[str, Any],
        modes: tuple[str, ...],
        interrupt_before: tuple[str, ...],
        interrupt_after: tuple[str, ...],
        *,
        single_mode: bool = True,
        context: Any = None,
        durability: str = "async",
        saver: Any = None,
        answers: dict[str, Any] | None = None,
    ) -> None:
        self.graph = graph
        self.input = input
        self.config = config
        self.modes = modes
        self.single_mode = single_mode
        self.interrupt_before = interrupt_before
        self.interrupt_after = interrupt_after
        # a subgraph run inside a parent's task is given the parent's saver (see _compiled._child_run)
        self.saver = saver if saver is not None else graph.checkpointer
        # set on a subgraph run: the answers its parent task was resumed with (interrupt id -> value);
        # such a run goes on from its own unfinished checkpoint instead of starting over
        self.answers = answers
        self.substream: SubStream | None = None  # where subgraph runs below this one stream to
        self.interrupts: tuple[Interrupt, ...] = ()  # what the run paused on
        # durability="exit": store only the run's last checkpoint, when the run ends (see _exit_record)
        self.exit = durability == "exit" and self.saver is not None
        self.stored_id: str | None = None  # the stored checkpoint the run started from
        self.stored_pending = False  # whether that checkpoint had pending writes when loaded
        configurable = config.get("configurable", {})
        self.thread_id = configurable.get("thread_id")
        self.ns = configurable.get("checkpoint_ns", "")
        self.checkpoint_id = configurable.get("checkpoint_id")
        self.metadata = dict(config.get("metadata") or {})
        self.recursion_limit = int(config.get("recursion_limit", graph.default_recursion_limit))
        self.live = LiveStream(modes) if {"custom", "messages"} & set(modes) else None
        writer = self.live.custom if self.live is not None else _discard
        self.runtime: Runtime[Any] = Runtime(context=context, stream_writer=writer)
        self.persisted: set[str] = set()
        self.final_values: dict[str, Any] | None = None
        self.interrupted = False
        self.head: Head | None = None  # the newest checkpoint this run committed
        self.pending_at: set[str] = set()  # checkpoints this run wrote pending writes for
        self.deferred: list[CheckpointRecord] = []  # the input checkpoint, committed with the next one
        self.pre: list[tuple[str, Any]] = []  # a Command(update=…) applied before the next step
        self.input_goto: list[Any] = []  # and its goto, run after that step

    # -- emitting ---------------------------------------------------------------------
    def _emit(self, mode: str, payload: Any) -> Emit | None:
        if mode not in self.modes:
            return None
        return Emit(payload if self.single_mode else (mode, payload))

    # -- the run ------------------------------------------------------------------------
    def run(self) -> Generator[Effect, Any, None]:
        try:
            yield from self._run()
            yield from self._flush()  # under durability="exit", the run's one checkpoint
        except GeneratorExit:
            raise
        except BaseException:
            yield from self._flush()  # a failed run still records the input it was given
            raise
        finally:
            self._remember_head()

    def _remember_head(self) -> None:
        """Keep the newest committed state in memory: the thread's next run skips rebuilding it."""
        head = self.head
        if head is not None and head.decoded is not None and not self.deferred:
            self.graph.state_cache.put(head.decoded, head.values, head.policy, head=True)

    def _flush(self) -> Generator[Effect, Any, None]:
        if self.deferred:
            records, self.deferred = self.deferred, []
            if self.exit:
                yield Call("put", (self._exit_record(records[-1]),))
            else:
                yield Call("put_many", (records,))

    def closing(self) -> list[Call]:
        """What to store when the caller stops reading a stream before the run ends (the driver
        carries it out: a closed generator can yield no more effects). Only an "exit" run has
        anything left: its newest checkpoint, the one a "sync" run would have stored last."""
        return [c for c in self._flush() if isinstance(c, Call)] if self.exit else []

    def _exit_record(self, record: CheckpointRecord) -> CheckpointRecord:
        """The one checkpoint a ``durability="exit"`` run stores: its newest, made self-sufficient.

        The checkpoints between the stored one the run started from and this one are never
        written, so this record cannot be rebuilt by folding its writes onto its parent. It
        carries a snapshot of the full state instead: under the log+snapshot design a snapshot
        is exactly what a rebuild starts from, so every store's chain walk stops here and any
        process (a fresh one included) reads the state back without the missing steps. Its
        parent becomes the stored checkpoint the run started from (None on a new thread), as
        in LangGraph. ``writes`` keeps what the last step wrote (the log stays readable and
        ``update_state`` can still infer ``as_node``); when that step's parent was never
        stored, the entries' ``task`` positions (into the parent's ``next``) are dropped, since
        they refer to nothing a reader can load.
        """
        head = self.head
        assert head is not None and head.decoded is not None and head.decoded.record is record
        writes = head.decoded.writes
        writes_json = record.writes
        if record.parent_id != self.stored_id:
            writes = [{k: v for k, v in entry.items() if k != "task"} for entry in writes]
            writes_json = _dumps_writes(writes)
        snapshot = record.snapshot  # the snapshot policy may already have taken one at this step
        if snapshot is None:
            snapshot = serde.dumps({"values": head.values, "reducers": self.graph.reducer_names})
        final = dataclasses.replace(
            record,
            parent_id=self.stored_id,
            writes=writes_json,
            snapshot=snapshot,
            clears_pending=self.stored_pending or self.stored_id in self.pending_at,
        )
        policy = head.policy.copy()
        policy.snapshotted(len(snapshot))
        decoded = DecodedCheckpoint(final, head.decoded.next, writes, head.decoded.metadata)
        self.head = Head(decoded, head.values, policy)
        return final

    def _run(self) -> Generator[Effect, Any, None]:
        head = yield from self._load()
        self.stored_id, self.stored_pending = head.id, bool(head.pending)
        # LangGraph's rule: a call may go up to step `start + recursion_limit + 2`
        stop = head.step + self.recursion_limit + 2
        cached: dict[str, TaskResult] = {}
        resume_map: dict[str, dict[str, Any]] = {}
        continuing = self.input is None or isinstance(self.input, Command)
        if self.answers is not None and not continuing and head.decoded is not None and head.decoded.next:
            continuing = True  # a subgraph whose parent task runs again: go on where it stopped
            self.input = None

        if isinstance(self.input, Command) and (head.decoded is None or not head.decoded.next):
            if self.input.resume is not None:
                state = (
                    "has no checkpoint" if head.decoded is None else "is not waiting on an interrupt (it has finished)"
                )
                raise InvalidResumeError(f"thread {self.thread_id!r} {state}; there is nothing to resume")
            head = yield from self._commit_input(head, command=self.input)
            continuing = False
        elif continuing:
            if head.decoded is None:
                raise EmptyInputError(
                    f"thread {self.thread_id!r} has no checkpoint to continue from and no input was given; "
                    "pass the graph's input to start it"
                    if self.saver is not None
                    else "no input given: pass the graph's input"
                )
            if self.input is None and self.checkpoint_id is not None and head.id != self._newest_id:
                head = yield from self._fork(head)
            else:
                cached, waiting, resume_map = self._pending_state(head)
                if isinstance(self.input, Command):
                    resume_map = yield from self._apply_command(head, waiting, resume_map)
                elif self.answers:
                    resume_map = yield from self._take_answers(head, waiting, resume_map)
            yield from self._emit_checkpoint(head)
            yield from self._emit_values(head.values)
        else:
            head = yield from self._commit_input(head)

        first = True
        while True:
            if head.step + 1 > stop:
                raise GraphRecursionError(
                    f"recursion limit of {self.recursion_limit} reached without hitting a stop condition; "
                    "raise it with config={'recursion_limit': N} if the graph really needs more steps"
                )
            tasks = tasks_from_specs(head.id or "", head.decoded.next if head.decoded else [])
            if not tasks:
                break
            if not (first and continuing) and self._matches(self.interrupt_before, tasks):
                self.interrupted = True
                if (e := self._emit("updates", {INTERRUPT: ()})) is not None:
                    yield e
                return
            first = False
            results = yield from self._execute(head, tasks, cached, resume_map)
            if results is None:
                return  # paused on interrupt(), or raised
            head = yield from self._commit_step(head, results)
            cached, resume_map, self.pre, self.input_goto = {}, {}, [], []
            if self._matches(self.interrupt_after, [r.task for r in results]) and head.decoded and head.decoded.next:
                self.interrupted = True
                if (e := self._emit("updates", {INTERRUPT: ()})) is not None:
                    yield e
                return

    def _apply_command(
        self, head: Head, waiting: dict[str, tuple[Interrupt, ...]], resume: dict[str, dict[str, Any]]
    ) -> Generator[Effect, Any, dict[str, dict[str, Any]]]:
        """Record a Command given to a paused thread: resume values and an update applied first."""
        assert isinstance(self.input, Command)
        command = self.input
        writes: list[PendingWrite] = []
        if command.resume is not None:
            resume = self._resolve_resume(head, waiting, resume)
            writes += [
                PendingWrite(task_id=tid, kind=PENDING_RESUME, value=serde.dumps(v)) for tid, v in resume.items()
            ]
        else:
            resume = {}
        if command.update is not None or command.goto:
            self.pre = update_pairs(self.graph, INPUT_NODE, command.update)
            goto = [g if isinstance(g, str) else {"node": g.node, "arg": g.arg} for g in command.goto_targets()]
            for target in goto:
                name = target if isinstance(target, str) else target["node"]
                if name not in self.graph.builder.nodes:
                    raise InvalidUpdateError(f"Command(goto={name!r}) names an unknown node")
            pre_value = {"writes": [[k, v] for k, v in self.pre], "goto": goto}
            writes.append(PendingWrite(task_id=INPUT_NODE, kind=PENDING_INPUT, value=serde.dumps(pre_value)))
            self.input_goto = goto
        if writes:
            self.pending_at.add(head.id or "")
            yield Call("put_pending", (self.thread_id, self.ns, head.id, writes))
        return resume

    def _take_answers(
        self, head: Head, waiting: dict[str, tuple[Interrupt, ...]], resume: dict[str, dict[str, Any]]
    ) -> Generator[Effect, Any, dict[str, dict[str, Any]]]:
        """A subgraph run: route the parent task's answers to the tasks here that asked."""
        assert self.answers is not None
        by_id = {i.id: tid for tid, ints in waiting.items() for i in ints}
        picked = {k: v for k, v in self.answers.items() if k in by_id}
        if not picked:
            return resume
        resume = {tid: dict(v) for tid, v in resume.items()}
        for interrupt_id_, v in picked.items():
            resume.setdefault(by_id[interrupt_id_], {})[interrupt_id_] = v
        tids = {by_id[k] for k in picked}
        writes = [
            PendingWrite(task_id=tid, kind=PENDING_RESUME, value=serde.dumps(resume[tid])) for tid in sorted(tids)
        ]
        self.pending_at.add(head.id or "")
        yield Call("put_pending", (self.thread_id, self.ns, head.id, writes))
        return resume

    def _matches(self, names: tuple[str, ...], tasks: list[Task]) -> bool:
        if not names:
            return False
        return any(t.node != START and ("*" in names or t.node in names) for t in tasks)

    # -- loading ------------------------------------------------------------------------
    def _load(self) -> Generator[Effect, Any, Head]:
        self._newest_id: str | None = None
        initial = self.graph.initial_values()
        if self.saver is None:
            return Head(None, initial)
        cache = self.graph.state_cache
        if self.checkpoint_id is None:
            cached = cache.head(self.thread_id, self.ns)
        else:
            cached = cache.get(self.thread_id, self.ns, self.checkpoint_id)
        loaded: LoadedCheckpoint | None = yield Call(
            "get", (self.thread_id, self.ns, self.checkpoint_id), {"have": cached.checkpoint_id if cached else None}
        )
        if loaded is None:
            if self.checkpoint_id is not None:
                raise CheckpointNotFoundError(f"thread {self.thread_id!r} has no checkpoint {self.checkpoint_id!r}")
            return Head(None, initial)
        if self.checkpoint_id is None:
            self._newest_id = loaded.record.checkpoint_id
        else:
            newest: LoadedCheckpoint | None = yield Call(
                "get", (self.thread_id, self.ns, None), {"have": self.checkpoint_id}
            )
            self._newest_id = newest.record.checkpoint_id if newest else None
        if not loaded.chain and cached is not None:
            state = cached
        else:
            (state,) = cache.rebuild(self.graph.topology, loaded.chain, initial, head=self.checkpoint_id is None)
        check_next_nodes(state.decoded, self.graph.builder.nodes)  # stored task names pick the code that runs
        return Head(state.decoded, dict(state.values), state.policy.copy(), loaded.pending)

    def _pending_state(
        self, head: Head
    ) -> tuple[dict[str, TaskResult], dict[str, tuple[Interrupt, ...]], dict[str, dict[str, Any]]]:
        """Finished results, open interrupts and resume values recorded against ``head``.

        A Command update recorded earlier (the process died before the step committed) is
        picked up again into ``self.pre``.
        """
        tasks = {t.id: t for t in tasks_from_specs(head.id or "", head.decoded.next if head.decoded else [])}
        cached: dict[str, TaskResult] = {}
        waiting: dict[str, tuple[Interrupt, ...]] = {}
        resume: dict[str, dict[str, Any]] = {}
        for pw in head.pending:
            task = tasks.get(pw.task_id)
            if task is None:
                continue
            if pw.kind == PENDING_RESULT:
                cached[task.id] = TaskResult.from_pending(task, decode_pending(self.thread_id, head.id, pw))
            elif pw.kind == PENDING_INTERRUPT:
                asked = decode_pending(self.thread_id, head.id, pw)
                waiting[task.id] = tuple(Interrupt(value=i["value"], id=i["id"]) for i in asked)
            elif pw.kind == PENDING_RESUME:
                resume[task.id] = decode_pending(self.thread_id, head.id, pw)
        for pw in head.pending:
            if pw.kind == PENDING_INPUT:
                recorded = decode_pending(self.thread_id, head.id, pw)
                self.pre = [(k, v) for k, v in recorded["writes"]]
                self.input_goto = recorded["goto"]
        for tid in cached:
            self.persisted.add(tid)
            waiting.pop(tid, None)  # resumed and finished: no longer waiting
        return cached, waiting, resume

    def _resolve_resume(
        self, head: Head, waiting: dict[str, tuple[Interrupt, ...]], resume: dict[str, dict[str, Any]]
    ) -> dict[str, dict[str, Any]]:
        assert isinstance(self.input, Command)
        value = self.input.resume
        if not any(waiting.values()):  # nothing asked (or only a subgraph's breakpoint)
            return self._answer_next_question(head, value, resume)
        by_id = {i.id: tid for tid, ints in waiting.items() for i in ints}
        resume = {tid: dict(v) for tid, v in resume.items()}
        if _is_id_mapping(value, by_id):
            unknown = [k for k in value if k not in by_id]
            if unknown:
                raise InvalidResumeError(
                    f"thread {self.thread_id!r} has no pending interrupt with id {unknown[0]!r}; "
                    f"pending: {', '.join(by_id)}"
                )
            picked = dict(value)
        else:
            if len(by_id) > 1:
                raise InvalidResumeError(
                    f"thread {self.thread_id!r} has {len(by_id)} pending interrupts; resume with a mapping "
                    f"of interrupt id to value: Command(resume={{id: value, …}}) (ids: {', '.join(by_id)})"
                )
            picked = {next(iter(by_id)): value}
        for interrupt_id_, v in picked.items():
            # keyed by interrupt id: answering the same question twice (say, after a crash) overwrites
            resume.setdefault(by_id[interrupt_id_], {})[interrupt_id_] = v
        return resume  # every task re-runs with all the answers it was given so far

    def _answer_next_question(
        self, head: Head, value: Any, resume: dict[str, dict[str, Any]]
    ) -> dict[str, dict[str, Any]]:
        """A resume given before the question was asked (say, after update_state on a paused
        thread): it answers the next interrupt() of the one task due, as in LangGraph."""
        tasks = tasks_from_specs(head.id or "", head.decoded.next if head.decoded else [])
        if _is_id_mapping(value, {}):
            raise InvalidResumeError(
                f"thread {self.thread_id!r} has no pending interrupt with id {next(iter(value))!r}"
            )
        if len(tasks) != 1:
            raise InvalidResumeError(
                f"thread {self.thread_id!r} is not waiting on an interrupt"
                + (" (it has finished)" if not tasks else f" and {len(tasks)} tasks are due")
                + "; use invoke(None, config) to continue it, or new input to start a turn"
            )
        (task,) = tasks
        answers = dict(resume.get(task.id, {}))
        answers[interrupt_id(task.id, len(answers))] = value  # the id its next interrupt() will have
        return {**resume, task.id: answers}

    # -- committing -----------------------------------------------------------------------
    def _advance(
        self,
        head: Head,
        *,
        source: str,
        step: int,
        writes: list[dict[str, Any]],
        next_specs: list[Any],
        values: dict[str, Any],
        defer: bool = False,
    ) -> Generator[Effect, Any, Head]:
        """Commit a new checkpoint on top of ``head`` (or just move, without a saver).

        With ``defer`` the record is held back and committed in the same transaction as the
        next one: used for the input checkpoint, whose next step (``__start__``) runs no user
        code, so the two are one unit of durability and cost one commit.
        """
        policy = head.policy.copy()
        if self.saver is None:
            record = CheckpointRecord(
                thread_id="",
                checkpoint_ns="",
                checkpoint_id=new_checkpoint_id(),
                parent_id=head.id,
                step=step,
                source=source,
                created_at="",
                next="",
                writes="",
                metadata="",
            )
            new = Head(DecodedCheckpoint(record, next_specs, writes, self.metadata), values, policy)
        else:
            record = build_record(
                self.graph,
                head,
                thread_id=self.thread_id,
                ns=self.ns,
                source=source,
                step=step,
                writes=writes,
                next_specs=next_specs,
                values=values,
                policy=policy,
                metadata=self.metadata,
                clears_pending=bool(head.pending) or head.id in self.pending_at,
            )
            if defer:
                self.deferred.append(record)
            elif self.exit:
                self.deferred = [record]  # written when the run ends, by _flush
            else:
                records, self.deferred = [*self.deferred, record], []
                yield Call("put_many", (records,)) if len(records) > 1 else Call("put", (record,))
            decoded = DecodedCheckpoint(record, next_specs, writes, self.metadata)
            new = Head(decoded, values, policy)
            self.head = new
        yield from self._emit_checkpoint(new, parent_id=head.id)
        return new

    def _emit_checkpoint(self, head: Head, *, parent_id: str | None = None) -> Generator[Effect, Any, None]:
        if self.saver is None or head.decoded is None or not ("debug" in self.modes or "checkpoints" in self.modes):
            return
        record = head.decoded.record
        parent_id = parent_id or record.parent_id
        if self.exit and record.checkpoint_id != self.stored_id:
            parent_id = self.stored_id  # the run's own checkpoints before this one are never stored
        payload = self.graph.checkpoint_event(head.decoded, head.values, self.config, parent_id=parent_id)
        if (e := self._emit("checkpoints", payload)) is not None:
            yield e
        event = {"step": record.step, "timestamp": record.created_at, "type": "checkpoint", "payload": payload}
        if (e := self._emit("debug", event)) is not None:
            yield e

    def _commit_input(self, head: Head, command: Command[Any] | None = None) -> Generator[Effect, Any, Head]:
        if command is not None:
            goto = [g if isinstance(g, str) else {"node": g.node, "arg": g.arg} for g in command.goto_targets()]
            # on a fresh thread the entry edges run (the update is the input); on a finished one, only goto
            arg: Any = {COMMAND_KEY: {"update": command.update, "goto": goto, "entry": head.decoded is None}}
        else:
            arg = self.graph.coerce_input(self.input)
        step = head.step + 1 if head.decoded else -1
        return (
            yield from self._advance(
                head,
                source="input",
                step=step,
                writes=[],
                next_specs=[{"node": START, "arg": arg}],
                values=head.values,
                defer=True,
            )
        )

    def _fork(self, head: Head) -> Generator[Effect, Any, Head]:
        assert head.decoded is not None
        return (
            yield from self._advance(
                head,
                source="fork",
                step=head.step + 1,
                writes=[],
                next_specs=list(head.decoded.next),
                values=head.values,
            )
        )

    def _step_values(self, head: Head) -> dict[str, Any]:
        """What this step's tasks read: the checkpoint's state plus a Command(update=…) given to it."""
        if not self.pre:
            return head.values
        return apply_step(self.graph.topology, head.values, (), [(INPUT_NODE, self.pre)], check=True)

    def _commit_step(self, head: Head, results: list[TaskResult]) -> Generator[Effect, Any, Head]:
        ordered = apply_order(results)
        assert head.decoded is not None
        values = apply_step(
            self.graph.topology,
            self._step_values(head),
            pull_nodes(head.decoded.next),
            [(r.task.node, r.writes) for r in ordered],
            check=True,
        )
        planned = list(ordered)
        if self.input_goto:
            goto = [Send(g["node"], g["arg"]) if isinstance(g, dict) else g for g in self.input_goto]
            planned.append(TaskResult(Task(-1, INPUT_NODE, INPUT_NODE, False), goto=goto))
        next_specs = plan_next(self.graph.topology, values, planned)
        writes = [_entry(r) for r in ordered]
        if self.pre or self.input_goto:
            writes.insert(0, {"node": INPUT_NODE, "writes": [[k, v] for k, v in self.pre]})
        new = yield from self._advance(
            head, source="loop", step=head.step + 1, writes=writes, next_specs=next_specs, values=values
        )
        self.final_values = values
        if self.pre or any(r.writes for r in ordered if any(not is_join(k) for k, _ in r.writes)):
            yield from self._emit_values(values)
        return new

    def _emit_values(self, values: dict[str, Any]) -> Generator[Effect, Any, None]:
        self.final_values = values
        if (e := self._emit("values", self.graph.stream_values(values))) is not None:
            yield e

    # -- executing --------------------------------------------------------------------------
    def _execute(
        self,
        head: Head,
        tasks: list[Task],
        cached: dict[str, TaskResult],
        resume: dict[str, dict[str, Any]],
    ) -> Generator[Effect, Any, list[TaskResult] | None]:
        to_run = [t for t in tasks if t.id not in cached]
        step = head.step + 1
        values = self._step_values(head)
        if "debug" in self.modes or "tasks" in self.modes:
            for t in to_run:
                if t.node == START:
                    continue
                payload = {
                    "id": t.id,
                    "name": t.node,
                    "input": t.arg if t.push else self.graph.node_input(t, values),
                    "triggers": (f"branch:to:{t.node}",),
                }
                yield from self._emit_task_event(step, "task", payload)
        run_results: list[TaskResult] = []
        if to_run:
            env = StepEnv(self.config, self.runtime, step, self.live, self.saver, self.substream)
            run_results = yield Execute(to_run, values, resume, self._on_done(head, len(to_run)), env)
        if self.live is not None and self.live.wants_messages:
            yield from self._emit_returned_messages(run_results, step)
        for r in cached.values():
            if (e := self._emit("updates", {r.task.node: r.update, "__metadata__": {"cached": True}})) is not None:
                yield e
        failed = [r for r in run_results if r.error is not None]
        paused = [r for r in run_results if r.paused]
        for r in run_results:
            if r.task.node == START:
                continue
            if "debug" in self.modes or "tasks" in self.modes:
                result = None if r.error else {k: v for k, v in r.writes if not is_join(k)}
                yield from self._emit_task_event(
                    step,
                    "task_result",
                    {
                        "id": r.task.id,
                        "name": r.task.node,
                        "error": repr(r.error) if r.error else None,
                        "result": result,
                        "interrupts": [{"value": i.value, "id": i.id} for i in r.interrupts],
                    },
                )
            if r.error is None and not r.paused and (e := self._emit("updates", {r.task.node: r.update})):
                yield e
        if failed or paused:
            done = [r for r in run_results if r.error is None and not r.paused]
            yield from self._save_partial(head, done, failed, paused)
            if failed:
                first = min(failed, key=lambda r: r.task.index)
                raise first.error  # type: ignore[misc]
            if self.saver is None:
                raise GraphRuntimeError(
                    "interrupt() needs a checkpointer to save the paused run: compile(checkpointer=…)"
                )
            interrupts = tuple(i for r in sorted(paused, key=lambda r: r.task.index) for i in r.interrupts)
            self.interrupted = True
            self.interrupts = interrupts
            if (e := self._emit("updates", {INTERRUPT: interrupts})) is not None:
                yield e
            shown = apply_step(
                self.graph.topology,
                values,
                (),
                [(r.task.node, r.writes) for r in apply_order([*cached.values(), *done])],
                check=False,
            )
            self.final_values = shown
            shown_values = self.graph.stream_values(shown)
            if interrupts:  # a subgraph's breakpoint pauses with no question to show
                shown_values[INTERRUPT] = interrupts
            if (e := self._emit("values", shown_values)) is not None:
                yield e
            return None
        return [*cached.values(), *run_results]

    def live_chunk(self, mode: str, payload: Any) -> Any:
        """How a chunk from the live stream reaches the caller (the drivers call this)."""
        emitted = self._emit(mode, payload)
        return emitted.chunk if emitted is not None else None

    def _emit_returned_messages(self, results: list[TaskResult], step: int) -> Generator[Effect, Any, None]:
        """Messages a node returned without streaming them (no chat model, or a cached reply)."""
        assert self.live is not None
        for r in results:
            if r.error is not None or r.paused or r.task.node == START:  # the input is not news
                continue
            for key, value in r.writes:
                for message in _returned_messages(self.graph, key, value):
                    if message.id is None or message.id not in self.live.streamed_ids:
                        metadata = {
                            "langgraph_node": r.task.node,
                            "langgraph_step": step,
                            "langgraph_task_id": r.task.id,
                        }
                        if (e := self._emit("messages", (message, metadata))) is not None:
                            yield e

    def _emit_task_event(self, step: int, kind: str, payload: dict[str, Any]) -> Generator[Effect, Any, None]:
        if (e := self._emit("tasks", payload)) is not None:
            yield e
        if (
            e := self._emit("debug", {"step": step, "timestamp": _now(), "type": kind, "payload": payload})
        ) is not None:
            yield e

    def _on_done(self, head: Head, total: int) -> Callable[[TaskResult, int], Call | None]:
        """Persist a finished task's writes while siblings still run, so a crash keeps them."""

        def on_done(result: TaskResult, still_running: int) -> Call | None:
            if self.saver is None or still_running == 0 or result.error is not None or result.paused:
                return None
            if self.exit:
                return None  # nothing is stored mid-run; _save_partial keeps it if the run stops here
            self.persisted.add(result.task.id)
            self.pending_at.add(head.id or "")
            write = PendingWrite(task_id=result.task.id, kind=PENDING_RESULT, value=_dumps_pending(result))
            return Call("put_pending", (self.thread_id, self.ns, head.id, [write]))

        return on_done

    def _save_partial(
        self, head: Head, done: list[TaskResult], failed: list[TaskResult], paused: list[TaskResult]
    ) -> Generator[Effect, Any, None]:
        if self.saver is None or head.id is None:
            return
        yield from self._flush()  # pending rows refer to the checkpoint they ran from
        writes = [
            PendingWrite(task_id=r.task.id, kind=PENDING_RESULT, value=_dumps_pending(r))
            for r in done
            if r.task.id not in self.persisted
        ]
        writes += [
            PendingWrite(task_id=r.task.id, kind=PENDING_ERROR, value=serde.dumps(repr(r.error))) for r in failed
        ]
        writes += [
            PendingWrite(
                task_id=r.task.id,
                kind=PENDING_INTERRUPT,
                value=serde.dumps([{"id": i.id, "value": i.value} for i in r.interrupts]),
            )
            for r in paused
        ]
        if writes:
            self.pending_at.add(head.id)
            yield Call("put_pending", (self.thread_id, self.ns, head.id, writes))


def build_record(
    graph: RunGraph,
    head: Head,
    *,
    thread_id: str,
    ns: str,
    source: str,
    step: int,
    writes: list[dict[str, Any]],
    next_specs: list[Any],
    values: dict[str, Any],
    policy: SnapshotPolicy,
    metadata: dict[str, Any],
    clears_pending: bool = True,
) -> CheckpointRecord:
    """Serialize a new checkpoint on top of ``head``, with a snapshot when the policy says so."""
    writes_json = _dumps_writes(writes)
    next_json = _dumps_next(next_specs)
    snapshot = None
    # the first checkpoint of a thread always carries a snapshot: it records the reducers,
    # so tools can rebuild the thread's state without importing the graph
    if policy.record(len(writes_json)) or head.decoded is None:
        snapshot = serde.dumps({"values": values, "reducers": graph.reducer_names})
        policy.snapshotted(len(snapshot))
    return CheckpointRecord(
        thread_id=thread_id,
        checkpoint_ns=ns,
        checkpoint_id=new_checkpoint_id(),
        parent_id=head.id,
        step=step,
        source=source,
        created_at=_now(),
        next=next_json,
        writes=writes_json,
        metadata=serde.dumps(metadata) if metadata else "{}",
        snapshot=snapshot,
        clears_pending=clears_pending,
    )


def _returned_messages(graph: RunGraph, key: str, value: Any) -> list[BaseMessage]:
    items = value if isinstance(value, list) else [value]
    channel = graph.builder.channels.get(key)
    if channel is not None and channel.reducer is add_messages:  # it accepts ("ai", "text") and dicts
        return [m for m in convert_to_messages_lenient(items) if isinstance(m, BaseMessage)]
    return [m for m in items if isinstance(m, BaseMessage)]


def convert_to_messages_lenient(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        try:
            out += convert_to_messages(item)
        except ValueError:
            continue  # RemoveMessage and the like are not messages to show
    return out


def _discard(chunk: Any) -> None:
    """The stream writer when nobody asked for ``custom`` chunks."""


_ID = re.compile(r"[0-9a-f]{32}")


def _is_id_mapping(value: Any, pending_ids: dict[str, str]) -> bool:
    """Whether a resume value maps interrupt ids to answers (rather than being one answer)."""
    if not isinstance(value, dict) or not value or not all(isinstance(k, str) for k in value):
        return False
    return any(k in pending_ids for k in value) or all(_ID.fullmatch(k) for k in value)


def _entry(result: TaskResult) -> dict[str, Any]:
    entry: dict[str, Any] = {"task": result.task.index, "node": result.task.node}
    if result.writes:
        entry["writes"] = [[k, v] for k, v in result.writes]
    return entry


def _dumps_writes(writes: list[dict[str, Any]]) -> str:
    try:
        return serde.dumps(writes)
    except SerializationError:
        for entry in writes:
            for key, value in entry.get("writes", ()):
                try:
                    serde.dumps(value)
                except SerializationError as exc:
                    raise SerializationError(
                        f"node {entry['node']!r} wrote a value to state key {key!r} that cannot be "
                        f"checkpointed: {exc}. The thread stays at its last checkpoint."
                    ) from exc
        raise


def _dumps_next(specs: list[Any]) -> str:
    try:
        return serde.dumps(specs)
    except SerializationError as exc:
        raise SerializationError(f"a Send argument or run input cannot be checkpointed: {exc}") from exc


def _dumps_pending(result: TaskResult) -> str:
    try:
        return serde.dumps(result.to_pending())
    except SerializationError as exc:
        raise SerializationError(
            f"node {result.task.node!r} produced a value that cannot be checkpointed: {exc}"
        ) from exc
