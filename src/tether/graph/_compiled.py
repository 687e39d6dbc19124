"""``CompiledStateGraph``: run a graph, inspect and edit its threads, travel in time."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import warnings
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from tether._names import JOIN_PREFIX, PENDING_ERROR, PENDING_RESULT, is_join
from tether.checkpoint._base import BaseCheckpointSaver, arelease_after_run, release_after_run, run_owner
from tether.errors import CheckpointNotFoundError, ConfigError, CorruptCheckpointError, InvalidUpdateError
from tether.graph._algo import Join, Task, TaskResult, Topology, apply_order, apply_step, plan_next, tasks_from_specs
from tether.graph._drawing import DrawableGraph
from tether.graph._live import SUBGRAPH, LiveStream, SubChunk, SubStream
from tether.graph._loop import INTERRUPT, Call, Emit, Execute, Head, RunLoop, build_record
from tether.graph._runner import arun_task, current_scope, route_update, run_task
from tether.graph._state import (
    DecodedCheckpoint,
    SnapshotPolicy,
    decode_record,
    reducer_name,
)
from tether.graph._state_cache import StateCache
from tether.graph._thread_status import thread_status
from tether.types import (
    END,
    START,
    Durability,
    GraphInterrupt,
    Interrupt,
    RunnableConfig,
    StateSnapshot,
    TaskSnapshot,
)

if TYPE_CHECKING:
    from tether.graph._spec import Branch, BuiltGraph

__all__ = ["CompiledStateGraph"]

DEFAULT_RECURSION_LIMIT = 10_007  # LangGraph 1.2's default, so ported loops behave the same
_STREAM_MODES = {"values", "updates", "debug", "checkpoints", "tasks", "custom", "messages"}
_DURABILITY = ("sync", "async", "exit")


class CompiledStateGraph:
    """A validated graph, ready to run. Create it with ``StateGraph.compile()``."""

    default_recursion_limit = DEFAULT_RECURSION_LIMIT

    def __init__(
        self,
        *,
        builder: BuiltGraph,
        checkpointer: BaseCheckpointSaver | bool | None,
        interrupt_before: tuple[str, ...],
        interrupt_after: tuple[str, ...],
        name: str,
    ) -> None:
        # as a subgraph: None keeps checkpoints per parent task, True one thread per node for good,
        # False none at all (see _child_run)
        self.inherit = "task"
        if checkpointer is True or checkpointer is False:
            self.inherit, checkpointer = ("persist" if checkpointer else "never"), None
        if checkpointer is not None and not isinstance(checkpointer, BaseCheckpointSaver):
            raise ConfigError(
                f"checkpointer must be a Tether checkpointer (InMemorySaver, SqliteSaver…), "
                f"got {type(checkpointer).__name__}"
            )
        self.builder = builder
        self.checkpointer = checkpointer
        self.interrupt_before = interrupt_before
        self.interrupt_after = interrupt_after
        self.name = name
        order = {START: -1, **{n: i for i, n in enumerate(builder.nodes)}}
        joins = [
            Join(f"{JOIN_PREFIX}{'+'.join(sources)}:{target}", frozenset(sources), target)
            for sources, target in builder.joins
        ]
        self.topology = Topology(channels=dict(builder.channels), node_order=order, joins=joins)
        self.edges_from: dict[str, list[str]] = {}
        for a, b in builder.edges:
            self.edges_from.setdefault(a, []).append(b)
        self.branches_from: dict[str, list[Branch]] = {}
        for branch in builder.branches:
            self.branches_from.setdefault(branch.source, []).append(branch)
        self.state_cache = StateCache()  # decoded states by checkpoint, shared by runs and reads
        self.reducer_names = {k: reducer_name(c.reducer) for k, c in builder.channels.items() if c.reducer}

    # -- helpers used by the loop ---------------------------------------------------------
    def initial_values(self) -> dict[str, Any]:
        return {k: c.initial() for k, c in self.builder.channels.items() if c.initial is not None}

    def output_values(self, values: dict[str, Any]) -> dict[str, Any]:
        """What ``invoke`` returns: the output schema's keys."""
        return {k: _copy(values[k]) for k in self.builder.output_schema.keys if k in values}

    def stream_values(self, values: dict[str, Any]) -> dict[str, Any]:
        """What ``stream_mode="values"`` shows: every state key that has a value."""
        return {k: _copy(v) for k, v in values.items() if k in self.builder.channels}

    def coerce_input(self, value: Any) -> dict[str, Any]:
        """The run input as writes; keys outside the input schema are ignored, as in LangGraph."""
        data = self.builder.input_schema.coerce_input(value, what="graph input")
        schema = self.builder.input_schema.channels
        return {k: v for k, v in data.items() if k in schema}

    def node_input(self, task: Task, values: dict[str, Any]) -> Any:
        if task.node == START:
            return task.arg
        return self.builder.nodes[task.node].input_schema.view(values)

    def checkpoint_event(
        self, decoded: DecodedCheckpoint, values: dict[str, Any], config: dict[str, Any], *, parent_id: str | None
    ) -> dict[str, Any]:
        record = decoded.record
        tasks = tasks_from_specs(record.checkpoint_id, decoded.next)
        return {
            "config": self._config(config, record.checkpoint_id),
            "parent_config": self._config(config, parent_id) if parent_id else None,
            "values": self.output_values(values),
            "metadata": self._metadata(decoded),
            "next": [t.node for t in tasks],
            "tasks": [{"id": t.id, "name": t.node, "interrupts": (), "state": None} for t in tasks],
        }

    def _config(self, config: RunnableConfig | dict[str, Any] | None, checkpoint_id: str | None) -> RunnableConfig:
        configurable = dict((config or {}).get("configurable", {}))
        configurable.setdefault("checkpoint_ns", "")
        configurable["checkpoint_id"] = checkpoint_id
        return {"configurable": configurable}

    def _metadata(self, decoded: DecodedCheckpoint) -> dict[str, Any]:
        record = decoded.record
        writes: dict[str, Any] | None
        if record.source == "input":
            first = decoded.next[0] if decoded.next else None
            writes = {START: first.get("arg") if isinstance(first, dict) else None}
        elif decoded.writes:
            writes = {}
            for entry in decoded.writes:
                pairs = {k: v for k, v in entry.get("writes", ()) if not is_join(k)}
                writes[entry["node"]] = pairs or None
        else:
            writes = None
        return {**decoded.metadata, "source": record.source, "step": record.step, "parents": {}, "writes": writes}

    # -- running --------------------------------------------------------------------------
    def _prepare(
        self,
        input: Any,
        config: RunnableConfig | None,
        stream_mode: str | Sequence[str],
        interrupt_before: Sequence[str] | str | None,
        interrupt_after: Sequence[str] | str | None,
        context: Any = None,
        durability: Durability | None = None,
        subgraphs: bool = False,
    ) -> RunLoop:
        child = self._child_run(config) if self.checkpointer is None and self.inherit != "never" else None
        if child is not None:
            config, saver, answers, substream = child
        if durability is not None and durability not in _DURABILITY:
            raise ConfigError(f"unknown durability {durability!r}; choose from {', '.join(map(repr, _DURABILITY))}")
        if durability is not None and self.checkpointer is None:
            warnings.warn(
                "durability has no effect without a checkpointer: compile(checkpointer=…)", UserWarning, stacklevel=3
            )
        config = _with_defaults(config)
        modes = (stream_mode,) if isinstance(stream_mode, str) else tuple(stream_mode)
        for mode in modes:
            if mode not in _STREAM_MODES:
                raise ConfigError(f"unknown stream_mode {mode!r}; choose from {', '.join(sorted(_STREAM_MODES))}")
        if self.checkpointer is not None and not (config.get("configurable") or {}).get("thread_id"):
            raise ConfigError(
                "this graph has a checkpointer, so each call needs a thread: "
                "config={'configurable': {'thread_id': '…'}}"
            )
        before = _names(interrupt_before) if interrupt_before is not None else self.interrupt_before
        after = _names(interrupt_after) if interrupt_after is not None else self.interrupt_after
        single = isinstance(stream_mode, str)
        if child is not None and substream is not None:  # the root streams subgraphs: use its modes
            modes, single = substream.modes, substream.single_mode
        loop = RunLoop(
            self,
            input,
            dict(config),
            modes,
            before,
            after,
            single_mode=single,
            context=context,
            durability=durability or "async",
            saver=saver if child is not None else None,
            answers=answers if child is not None else None,
        )
        if child is not None:
            loop.substream = substream
        elif subgraphs:
            if loop.live is None:
                loop.live = LiveStream(())
            loop.substream = SubStream(loop.live, modes, single)
        return loop

    def _child_run(
        self, config: RunnableConfig | None
    ) -> tuple[RunnableConfig, BaseCheckpointSaver, dict[str, Any], SubStream | None] | None:
        """Called from inside a task of a run that has a checkpointer, this graph runs as that
        task's subgraph: in the parent's saver and thread, under the namespace
        ``<parent ns>|<node>:<task id>`` (``<node>`` alone when compiled with
        ``checkpointer=True``), resumed with the answers the parent task was given."""
        scope = current_scope()
        if scope is None or scope.env is None or scope.env.saver is None:
            return None
        parent = scope.config
        parent_conf = parent.get("configurable") or {}
        part = scope.node if self.inherit == "persist" else f"{scope.node}:{scope.task_id}"
        parent_ns = parent_conf.get("checkpoint_ns") or ""
        given: dict[str, Any] = dict(config or {})
        configurable = {**parent_conf, **(given.get("configurable") or {})}
        configurable.pop("checkpoint_id", None)
        configurable["thread_id"] = parent_conf.get("thread_id")
        configurable["checkpoint_ns"] = f"{parent_ns}|{part}" if parent_ns else part
        merged: dict[str, Any] = {**parent, **given, "configurable": configurable}
        return merged, scope.env.saver, dict(scope.resume), scope.env.substream  # type: ignore[return-value]

    def stream(
        self,
        input: Any,
        config: RunnableConfig | None = None,
        *,
        stream_mode: str | Sequence[str] = "updates",
        interrupt_before: Sequence[str] | str | None = None,
        interrupt_after: Sequence[str] | str | None = None,
        durability: Durability | None = None,
        **kwargs: Any,
    ) -> Iterator[Any]:
        """Run the graph, yielding chunks for each stream mode (a ``(mode, chunk)`` pair each
        when several modes are asked for; with ``subgraphs=True``, prefixed by the namespace)."""
        subgraphs = bool(kwargs.get("subgraphs"))
        loop = self._prepare(
            input, config, stream_mode, interrupt_before, interrupt_after, kwargs.get("context"), durability, subgraphs
        )
        if loop.answers is not None:
            return self._child_chunks(loop)
        chunks = self._drive(loop)
        return _with_namespace(chunks) if subgraphs else chunks

    def invoke(
        self,
        input: Any,
        config: RunnableConfig | None = None,
        *,
        stream_mode: str = "values",
        interrupt_before: Sequence[str] | str | None = None,
        interrupt_after: Sequence[str] | str | None = None,
        durability: Durability | None = None,
        **kwargs: Any,
    ) -> Any:
        """Run the graph to the end (or to an interrupt) and return the final state.

        ``durability`` (also on ``stream``, ``ainvoke``, ``astream`` and ``batch``): ``"sync"`` or
        ``"async"`` (the default) commit each step before the next; ``"exit"`` stores only the
        run's last checkpoint, when it ends (docs/storage.md, Durability)."""
        loop = self._prepare(
            input, config, stream_mode, interrupt_before, interrupt_after, kwargs.get("context"), durability
        )
        if loop.answers is not None:
            chunks = list(self._child_chunks(loop))
            return self._child_result(loop, stream_mode, chunks)
        chunks = list(self._drive(loop))
        return self._invoke_result(loop, stream_mode, chunks)

    async def astream(
        self,
        input: Any,
        config: RunnableConfig | None = None,
        *,
        stream_mode: str | Sequence[str] = "updates",
        interrupt_before: Sequence[str] | str | None = None,
        interrupt_after: Sequence[str] | str | None = None,
        durability: Durability | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[Any]:
        subgraphs = bool(kwargs.get("subgraphs"))
        loop = self._prepare(
            input, config, stream_mode, interrupt_before, interrupt_after, kwargs.get("context"), durability, subgraphs
        )
        child = loop.answers is not None
        chunks = self._achild_chunks(loop) if child else self._adrive(loop)
        try:
            async for chunk in chunks:
                yield _namespaced(chunk) if subgraphs and not child else chunk
        finally:  # a caller that stops reading closes the run now, not when it is garbage-collected
            await chunks.aclose()

    async def ainvoke(
        self,
        input: Any,
        config: RunnableConfig | None = None,
        *,
        stream_mode: str = "values",
        interrupt_before: Sequence[str] | str | None = None,
        interrupt_after: Sequence[str] | str | None = None,
        durability: Durability | None = None,
        **kwargs: Any,
    ) -> Any:
        loop = self._prepare(
            input, config, stream_mode, interrupt_before, interrupt_after, kwargs.get("context"), durability
        )
        if loop.answers is not None:
            chunks = [c async for c in self._achild_chunks(loop)]
            return self._child_result(loop, stream_mode, chunks)
        chunks = [c async for c in self._adrive(loop)]
        return self._invoke_result(loop, stream_mode, chunks)

    # -- running as a subgraph inside a parent's task ----------------------------------------
    def _child_chunks(self, loop: RunLoop) -> Iterator[Any]:
        """A subgraph run: its chunks go to the root's stream when that streams subgraphs (then
        not to the caller); a pause raises GraphInterrupt, so the parent task pauses with it."""
        sub = loop.substream
        ns = tuple(loop.ns.split("|"))
        for chunk in self._drive(loop):
            if sub is not None:
                sub.live.subgraph(ns, chunk)
            else:
                yield chunk
        if loop.interrupted:
            raise GraphInterrupt(loop.interrupts)

    async def _achild_chunks(self, loop: RunLoop) -> AsyncGenerator[Any, None]:
        sub = loop.substream
        ns = tuple(loop.ns.split("|"))
        chunks = self._adrive(loop)
        try:
            async for chunk in chunks:
                if sub is not None:
                    sub.live.subgraph(ns, chunk)
                else:
                    yield chunk
        finally:
            await chunks.aclose()
        if loop.interrupted:
            raise GraphInterrupt(loop.interrupts)

    def _child_result(self, loop: RunLoop, stream_mode: str, chunks: list[Any]) -> Any:
        if loop.substream is None:
            return self._invoke_result(loop, stream_mode, chunks)
        return None if loop.final_values is None else self.output_values(loop.final_values)

    def _invoke_result(self, loop: RunLoop, stream_mode: str, chunks: list[Any]) -> Any:
        if stream_mode != "values":
            return chunks
        if not chunks or loop.final_values is None:
            return None
        out = self.output_values(loop.final_values)
        last = chunks[-1]
        if isinstance(last, dict) and INTERRUPT in last:
            out[INTERRUPT] = list(last[INTERRUPT])
        return out

    def batch(
        self, inputs: Sequence[Any], config: RunnableConfig | Sequence[RunnableConfig] | None = None, **kwargs: Any
    ) -> list[Any]:
        """``invoke`` each input (each with its own config, or one config for all)."""
        return [self.invoke(i, c, **kwargs) for i, c in zip(inputs, _configs(config, len(inputs)), strict=True)]

    async def abatch(
        self, inputs: Sequence[Any], config: RunnableConfig | Sequence[RunnableConfig] | None = None, **kwargs: Any
    ) -> list[Any]:
        runs = (self.ainvoke(i, c, **kwargs) for i, c in zip(inputs, _configs(config, len(inputs)), strict=True))
        return list(await asyncio.gather(*runs))

    # -- drivers: carry out the loop's effects ----------------------------------------------
    def _drive(self, loop: RunLoop) -> Iterator[Any]:
        saver = loop.saver
        owner = run_owner() if saver is not None else None
        if saver is not None:
            saver.acquire(loop.thread_id, loop.ns, owner)  # type: ignore[arg-type]
        pool: ThreadPoolExecutor | None = None
        try:
            gen = loop.run()
            reply: Any = None
            while True:
                try:
                    effect = gen.send(reply)
                except StopIteration:
                    return
                reply = None
                if type(effect) is Emit:
                    yield effect.chunk
                elif type(effect) is Call:
                    reply = getattr(saver, effect.method)(*effect.args, **effect.kwargs)
                else:
                    assert isinstance(effect, Execute)
                    if (len(effect.tasks) > 1 or loop.live is not None) and pool is None:
                        pool = ThreadPoolExecutor(
                            max_workers=int(loop.config.get("max_concurrency") or 32), thread_name_prefix="tether"
                        )
                    reply = yield from self._execute(effect, loop, pool)
        except GeneratorExit:  # the caller stopped reading
            for call in loop.closing():
                getattr(saver, call.method)(*call.args, **call.kwargs)
            raise
        finally:
            if pool is not None:
                pool.shutdown(wait=False)
            if saver is not None:  # never raises: the steps are committed, and the lease expires anyway
                release_after_run(saver, loop.thread_id, loop.ns, owner)  # type: ignore[arg-type]

    def _execute(
        self, ex: Execute, loop: RunLoop, pool: ThreadPoolExecutor | None
    ) -> Generator[Any, None, list[TaskResult]]:
        """Run a step's tasks; yields live chunks (custom, messages) while they run."""
        saver = loop.saver
        results: list[TaskResult] = []
        if pool is None:  # one task and nothing to stream live: run it right here
            result = run_task(self, ex.tasks[0], ex.values, ex.resume.get(ex.tasks[0].id, {}), ex.env)
            ex.on_done(result, 0)
            return [result]
        futures = {
            pool.submit(contextvars.copy_context().run, run_task, self, t, ex.values, ex.resume.get(t.id, {}), ex.env)
            for t in ex.tasks
        }
        while futures:
            done, futures = wait(futures, timeout=_LIVE_POLL_S if loop.live else None, return_when=FIRST_COMPLETED)
            yield from _drain(loop)
            for fut in done:
                result = fut.result()
                results.append(result)
                call = ex.on_done(result, len(futures))
                if call is not None:
                    getattr(saver, call.method)(*call.args, **call.kwargs)
        yield from _drain(loop)
        return results

    async def _adrive(self, loop: RunLoop) -> AsyncGenerator[Any, None]:
        saver = loop.saver
        owner = run_owner() if saver is not None else None
        if saver is not None:
            await saver.aacquire(loop.thread_id, loop.ns, owner)  # type: ignore[arg-type]
        try:
            gen = loop.run()
            reply: Any = None
            while True:
                try:
                    effect = gen.send(reply)
                except StopIteration:
                    return
                reply = None
                if type(effect) is Emit:
                    yield effect.chunk
                elif type(effect) is Call:
                    reply = await getattr(saver, "a" + effect.method)(*effect.args, **effect.kwargs)
                else:
                    assert isinstance(effect, Execute)
                    results: list[TaskResult] = []
                    async for chunk in self._aexecute(effect, loop, results):
                        yield chunk
                    reply = results
        except GeneratorExit:  # the caller stopped reading
            for call in loop.closing():
                await getattr(saver, "a" + call.method)(*call.args, **call.kwargs)
            raise
        finally:
            if saver is not None:  # never raises: the steps are committed, and the lease expires anyway
                await arelease_after_run(saver, loop.thread_id, loop.ns, owner)  # type: ignore[arg-type]

    async def _aexecute(self, ex: Execute, loop: RunLoop, results: list[TaskResult]) -> AsyncIterator[Any]:
        """Async twin of ``_execute``: fills ``results``, yields live chunks meanwhile."""
        saver = loop.saver
        limit = asyncio.Semaphore(int(loop.config.get("max_concurrency") or 1 << 16))

        async def one(task: Task) -> TaskResult:
            async with limit:
                return await arun_task(self, task, ex.values, ex.resume.get(task.id, {}), ex.env)

        pending = {asyncio.ensure_future(one(t)) for t in ex.tasks}
        while pending:
            timeout = _LIVE_POLL_S if loop.live else None
            done, pending = await asyncio.wait(pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            for chunk in _drain(loop):
                yield chunk
            for fut in done:
                result = fut.result()
                results.append(result)
                call = ex.on_done(result, len(pending))
                if call is not None:
                    await getattr(saver, "a" + call.method)(*call.args, **call.kwargs)
        for chunk in _drain(loop):
            yield chunk

    # -- inspecting -------------------------------------------------------------------------
    def get_graph(self) -> DrawableGraph:
        """The graph's nodes and edges; ``.draw_mermaid()`` renders it as a Mermaid flowchart."""
        return DrawableGraph.from_builder(self.builder)

    def _require_thread(self, config: RunnableConfig | None) -> tuple[str, str, str | None]:
        if self.checkpointer is None:
            raise ConfigError("this graph has no checkpointer: compile(checkpointer=…) to keep threads")
        configurable = (config or {}).get("configurable") or {}
        thread_id = configurable.get("thread_id")
        if not thread_id:
            raise ConfigError("config needs a thread: {'configurable': {'thread_id': '…'}}")
        return thread_id, configurable.get("checkpoint_ns", ""), configurable.get("checkpoint_id")

    def get_state(self, config: RunnableConfig, *, subgraphs: bool = False) -> StateSnapshot:
        """The state of a thread at its newest checkpoint, or at ``checkpoint_id`` if given."""
        thread_id, ns, checkpoint_id = self._require_thread(config)
        saver = self.checkpointer
        assert saver is not None
        return self._state_in(saver, config, thread_id, ns, checkpoint_id, subgraphs)

    def _state_in(
        self,
        saver: BaseCheckpointSaver,
        config: RunnableConfig,
        thread_id: str,
        ns: str,
        checkpoint_id: str | None,
        subgraphs: bool,
    ) -> StateSnapshot:
        cache = self.state_cache
        known = cache.head(thread_id, ns) if checkpoint_id is None else cache.get(thread_id, ns, checkpoint_id)
        loaded = saver.get(thread_id, ns, checkpoint_id, have=known.checkpoint_id if known else None)
        if loaded is None:
            if checkpoint_id is not None:
                raise CheckpointNotFoundError(f"thread {thread_id!r} has no checkpoint {checkpoint_id!r}")
            return StateSnapshot(
                values={},
                next=(),
                config=self._config(config, None),
                metadata=None,
                created_at=None,
                parent_config=None,
                tasks=(),
                interrupts=(),
            )
        if loaded.chain or known is None:
            (known,) = cache.rebuild(self.topology, loaded.chain, self.initial_values(), head=checkpoint_id is None)
        decoded, values = known.decoded, known.values
        child = saver.first_child(thread_id, ns, decoded.record.checkpoint_id)
        snap = self._snapshot(config, decoded, values, loaded.pending, child=decode_record(child) if child else None)
        if not snap.next:
            return snap
        tasks = tuple(self._subgraph_task(saver, thread_id, ns, t, subgraphs) for t in snap.tasks)
        return dataclasses.replace(snap, tasks=tasks)

    def _subgraph_task(
        self, saver: BaseCheckpointSaver, thread_id: str, ns: str, task: TaskSnapshot, subgraphs: bool
    ) -> TaskSnapshot:
        """A due task that runs a subgraph node: its ``state`` is the config of the subgraph's
        checkpoints, or (``subgraphs=True``) the subgraph's own snapshot, as in LangGraph."""
        fn = self.builder.nodes[task.name].fn if task.name in self.builder.nodes else None
        graph = getattr(fn, "graph", None)
        if not isinstance(graph, CompiledStateGraph) or graph.checkpointer is not None or graph.inherit == "never":
            return task
        part = task.name if graph.inherit == "persist" else f"{task.name}:{task.id}"
        sub_ns = f"{ns}|{part}" if ns else part
        sub_config: RunnableConfig = {"configurable": {"thread_id": thread_id, "checkpoint_ns": sub_ns}}
        if not subgraphs:
            return dataclasses.replace(task, state=sub_config)
        state = graph._state_in(saver, sub_config, thread_id, sub_ns, None, True)
        if state.created_at is None:  # the subgraph has not started yet
            return task
        return dataclasses.replace(task, state=state)

    async def aget_state(self, config: RunnableConfig, *, subgraphs: bool = False) -> StateSnapshot:
        return await asyncio.to_thread(self.get_state, config, subgraphs=subgraphs)

    def _snapshot(
        self,
        config: RunnableConfig,
        decoded: DecodedCheckpoint,
        values: dict[str, Any],
        pending: list[Any],
        child: DecodedCheckpoint | None,
    ) -> StateSnapshot:
        record = decoded.record
        where = thread_status(decoded, pending)  # the one reader of open interrupts (the CLI's too)
        done_results: list[TaskResult] = []
        child_results: dict[int, dict[str, Any]] = {}
        if child is not None:
            for entry in child.writes:
                if "task" in entry:
                    child_results[entry["task"]] = dict((k, v) for k, v in entry.get("writes", ()) if not is_join(k))
        snapshots: list[TaskSnapshot] = []
        all_interrupts: list[Interrupt] = []
        for due in where.tasks:
            task = due.task
            interrupts = tuple(Interrupt(value=i["value"], id=i["id"]) for i in due.open_interrupts())
            all_interrupts += interrupts
            result = None
            if due.finished:
                r = TaskResult.from_pending(task, due.value(PENDING_RESULT))
                done_results.append(r)
                result = {k: v for k, v in r.writes if not is_join(k)}
            elif task.index in child_results:
                result = child_results[task.index]
            snapshots.append(
                TaskSnapshot(
                    id=task.id,
                    name=task.node,
                    path=task.path,
                    error=due.value(PENDING_ERROR),
                    interrupts=interrupts,
                    result=result,
                )
            )
        if done_results:  # show finished siblings' work, as the run would see it
            try:
                values = apply_step(
                    self.topology, values, (), [(r.task.node, r.writes) for r in apply_order(done_results)], check=False
                )
            except Exception as exc:  # the run applies the same writes with check=True: they did apply then
                raise CorruptCheckpointError(
                    f"holds a task result that cannot be applied to the state ({type(exc).__name__}: {exc})",
                    thread_id=record.thread_id,
                    checkpoint_id=record.checkpoint_id,
                    column="pending_writes.value",
                ) from exc
        return StateSnapshot(
            values=self.stream_values(values),
            next=tuple(where.next),
            config=self._config(config, record.checkpoint_id),
            metadata=self._metadata(decoded),
            created_at=record.created_at,
            parent_config=self._config(config, record.parent_id) if record.parent_id else None,
            tasks=tuple(snapshots),
            interrupts=tuple(all_interrupts),
        )

    def get_state_history(
        self,
        config: RunnableConfig,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[StateSnapshot]:
        """A thread's checkpoints, newest first, each as a ``StateSnapshot``."""
        thread_id, ns, _ = self._require_thread(config)
        saver = self.checkpointer
        assert saver is not None
        before_id = ((before or {}).get("configurable") or {}).get("checkpoint_id")
        states: dict[str, tuple[DecodedCheckpoint, dict[str, Any]]] = {}
        children: dict[str, DecodedCheckpoint] = {}
        count = 0
        if limit is not None and limit <= 0:
            return
        for record in saver.list(thread_id, ns, before=before_id):
            decoded = decode_record(record)
            if filter and not all(self._metadata(decoded).get(k) == v for k, v in filter.items()):
                if record.parent_id is not None and record.source == "loop":
                    children.setdefault(record.parent_id, decoded)
                continue
            hit = None if record.checkpoint_id in states else self.state_cache.get(thread_id, ns, record.checkpoint_id)
            if hit is not None:
                states[record.checkpoint_id] = (hit.decoded, hit.values)
            if record.checkpoint_id not in states:
                loaded = saver.get(thread_id, ns, record.checkpoint_id)
                assert loaded is not None
                # one fold for the rest of the page (newest first, so the chain's older entries
                # are what comes next), not one per entry
                page = len(loaded.chain) if limit is None else limit - count
                for entry in self.state_cache.rebuild(self.topology, loaded.chain, self.initial_values(), keep=page):
                    states[entry.checkpoint_id] = (entry.decoded, entry.values)
            _, values = states.pop(record.checkpoint_id)
            pending = saver.pending(thread_id, ns, record.checkpoint_id)
            child = children.get(record.checkpoint_id)
            if child is None and count == 0 and (found := saver.first_child(thread_id, ns, record.checkpoint_id)):
                child = decode_record(found)  # `before` cut the child off the page
            yield self._snapshot(config, decoded, values, pending, child=child)
            if record.parent_id is not None and record.source == "loop":
                children.setdefault(record.parent_id, decoded)
            count += 1
            if limit is not None and count >= limit:
                return

    async def aget_state_history(
        self,
        config: RunnableConfig,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[StateSnapshot]:
        items = await asyncio.to_thread(
            lambda: list(self.get_state_history(config, filter=filter, before=before, limit=limit))
        )
        for item in items:
            yield item

    # -- editing ------------------------------------------------------------------------------
    def update_state(
        self, config: RunnableConfig, values: Any, as_node: str | None = None, task_id: str | None = None
    ) -> RunnableConfig:
        """Write ``values`` to the thread as if node ``as_node`` had returned them.

        Creates a new checkpoint (source ``update``) whose next tasks follow ``as_node``'s
        edges. With a ``checkpoint_id`` in the config, the update forks from that checkpoint.
        """
        thread_id, ns, checkpoint_id = self._require_thread(config)
        saver = self.checkpointer
        assert saver is not None
        owner = run_owner()
        saver.acquire(thread_id, ns, owner)
        try:
            loaded = saver.get(thread_id, ns, checkpoint_id)
            if loaded is None and checkpoint_id is not None:
                raise CheckpointNotFoundError(f"thread {thread_id!r} has no checkpoint {checkpoint_id!r}")
            if loaded is None:
                decoded, current, policy = None, self.initial_values(), None
            else:
                (state,) = self.state_cache.rebuild(self.topology, loaded.chain, self.initial_values())
                decoded, current, policy = state.decoded, dict(state.values), state.policy.copy()
            node = self._infer_as_node(decoded, as_node)
            if node == START:
                update = self.coerce_input(values)
            else:
                update = values
            result = route_update(self, node, current, update, dict(config))
            new_values = apply_step(self.topology, current, (), [(node, result.writes)], check=True)
            next_specs = plan_next(self.topology, new_values, [result]) if node != END else []
            head = Head(decoded, current, policy or SnapshotPolicy())
            record = build_record(
                self,
                head,
                thread_id=thread_id,
                ns=ns,
                source="update",
                step=(decoded.record.step + 1) if decoded else 0,
                writes=[{"node": node, "writes": [[k, v] for k, v in result.writes]}]
                if result.writes
                else [{"node": node}],
                next_specs=next_specs,
                values=new_values,
                policy=head.policy.copy(),
                metadata=dict(config.get("metadata") or {}),
            )
            saver.put(record)
            return self._config(config, record.checkpoint_id)
        finally:
            release_after_run(saver, thread_id, ns, owner)

    async def aupdate_state(
        self, config: RunnableConfig, values: Any, as_node: str | None = None, task_id: str | None = None
    ) -> RunnableConfig:
        return await asyncio.to_thread(self.update_state, config, values, as_node)

    def _infer_as_node(self, decoded: DecodedCheckpoint | None, as_node: str | None) -> str:
        if as_node is not None:
            if as_node not in self.builder.nodes and as_node not in (START, END):
                raise InvalidUpdateError(f"update_state(as_node={as_node!r}): no such node")
            return as_node
        if decoded is None:
            return START
        if len(self.builder.nodes) == 1:
            return next(iter(self.builder.nodes))
        writers = {e["node"] for e in decoded.writes}
        if len(writers) == 1:
            return str(writers.pop())
        raise InvalidUpdateError(
            "update_state() cannot tell which node the update comes from "
            f"(last step was written by {sorted(writers) or 'no node'}); pass as_node='…'"
        )


def _names(value: Sequence[str] | str) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _copy(value: Any) -> Any:
    return value.copy() if type(value) in (list, dict, set) else value


_LIVE_POLL_S = 0.01  # how often a waiting driver passes on live chunks


def _drain(loop: RunLoop) -> Iterator[Any]:
    if loop.live is None:
        return
    for mode, payload in loop.live.drain():
        if mode == SUBGRAPH:  # a subgraph's chunk, already in the run's stream shape
            yield payload
            continue
        chunk = loop.live_chunk(mode, payload)
        if chunk is not None:
            yield chunk


def _namespaced(chunk: Any) -> Any:
    """``subgraphs=True`` shape: the namespace first, ``()`` for the root graph's own chunks,
    ``("node:<task id>", …)`` for a subgraph's (one part per level)."""
    if type(chunk) is SubChunk:
        ns, chunk = chunk.ns, chunk.chunk
    else:
        ns = ()
    return (ns, *chunk) if isinstance(chunk, tuple) else (ns, chunk)


def _with_namespace(chunks: Iterator[Any]) -> Iterator[Any]:
    for chunk in chunks:
        yield _namespaced(chunk)


def _with_defaults(config: RunnableConfig | None) -> RunnableConfig:
    """A config nodes can rely on: ``configurable``, ``metadata``, ``tags`` always present."""
    out: dict[str, Any] = dict(config or {})
    out["configurable"] = dict(out.get("configurable") or {})
    out.setdefault("metadata", {})
    out.setdefault("tags", [])
    out.setdefault("callbacks", None)
    out.setdefault("recursion_limit", DEFAULT_RECURSION_LIMIT)
    return out  # type: ignore[return-value]


def _configs(config: RunnableConfig | Sequence[RunnableConfig] | None, n: int) -> list[RunnableConfig | None]:
    if isinstance(config, (list, tuple)):
        return list(config)
    return [config] * n  # type: ignore[list-item]
