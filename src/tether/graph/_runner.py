"""Running one task: call the node, read what it returned, decide where the run goes.

The sync and async paths share everything but the call itself. Nodes get the state
(or their ``Send`` argument) and, if they ask for it, the run's config.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import inspect
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from tether._context import (
    TaskScope,
    current_scope,
    get_config,
    get_runtime,
    get_stream_writer,
    interrupt,
    message_sink,
    scope_var,
)
from tether._names import COMMAND_KEY
from tether._retry import retry_delay
from tether.errors import GraphRuntimeError, InvalidUpdateError
from tether.graph._algo import Task, TaskResult, apply_step, join_writes
from tether.graph._live import StepEnv
from tether.types import END, START, Command, GraphInterrupt, Runtime, Send

if TYPE_CHECKING:
    from tether.graph._spec import RunGraph

__all__ = [
    "TaskScope",
    "arun_task",
    "current_scope",
    "get_config",
    "get_runtime",
    "get_stream_writer",
    "interrupt",
    "message_sink",
    "route_update",
    "run_task",
    "update_pairs",
]


def _call_args(graph: RunGraph, task: Task, values: dict[str, Any]) -> tuple[Any, ...]:
    spec = graph.builder.nodes[task.node]
    node_input = task.arg if task.push else spec.input_schema.view(values)
    return (node_input,)


def _parse_return(graph: RunGraph, task: Task, returned: Any) -> tuple[list[tuple[str, Any]], list[str | Send], Any]:
    """(state writes, goto targets, what `updates` streams) from a node's return value."""
    node = task.node
    goto: list[str | Send] = []
    update = returned
    if isinstance(returned, Command):
        if returned.graph is not None:
            raise InvalidUpdateError(f"node {node!r} returned Command(graph=…): parent graphs are not supported")
        goto = returned.goto_targets()
        update = returned.update
    elif (
        isinstance(returned, Sequence)
        and not isinstance(returned, (str, bytes))
        and returned
        and all(isinstance(x, Command) for x in returned)
    ):
        writes: list[tuple[str, Any]] = []
        for cmd in returned:
            w, g, _ = _parse_return(graph, task, cmd)
            writes += w
            goto += g
        return writes, goto, [c.update for c in returned]
    writes = update_pairs(graph, node, update)
    if isinstance(update, dict) and not update:
        update = None  # streamed as {node: None}, like a node that returned nothing
    for target in goto:
        name = target.node if isinstance(target, Send) else target
        if name != END and name not in graph.builder.nodes:
            raise InvalidUpdateError(f"node {node!r} sent the run to unknown node {name!r}")
    return writes, goto, update


def update_pairs(graph: RunGraph, node: str, update: Any) -> list[tuple[str, Any]]:
    if update is None:
        return []
    if isinstance(update, dict):
        pairs = list(update.items())
    elif isinstance(update, BaseModel):
        pairs = [(k, getattr(update, k)) for k in update.model_fields_set or type(update).model_fields]
    elif dataclasses.is_dataclass(update) and not isinstance(update, type):
        pairs = [(f.name, getattr(update, f.name)) for f in dataclasses.fields(update)]
    elif isinstance(update, (list, tuple)) and all(isinstance(p, tuple) and len(p) == 2 for p in update):
        pairs = list(update)
    else:
        raise InvalidUpdateError(
            f"node {node!r} must return a dict of state updates, a Command or None; "
            f"got {type(update).__name__}: {update!r:.80}"
        )
    channels = graph.builder.channels
    for key, _ in pairs:
        if key not in channels:
            raise InvalidUpdateError(
                f"node {node!r} wrote unknown state key {key!r}; the state has keys {', '.join(map(repr, channels))}"
            )
    return [(key, _prepared(channels[key].reducer, value)) for key, value in pairs]


def _prepared(reducer: Any, value: Any) -> Any:
    """A write as it will be stored. A reducer may normalise its input once, here, with a
    ``prepare`` attribute: the log then holds the normalised value, so replaying it when the
    thread is loaded gives the same state every time (add_messages assigns message ids here,
    not on every replay)."""
    prepare = getattr(reducer, "prepare", None)
    return prepare(value) if prepare is not None else value


def _route(graph: RunGraph, task: Task, values: dict[str, Any], writes: list[tuple[str, Any]]) -> tuple[list[Any], Any]:
    """Static successors, plus the state that conditional edges of this node should see."""
    node = task.node
    targets: list[Any] = list(graph.edges_from.get(node, ()))
    fresh = None
    if graph.branches_from.get(node):
        fresh_values = apply_step(graph.topology, values, (), [(node, writes)], check=False)
        fresh = graph.builder.state_schema.view(fresh_values)
    return targets, fresh


def _branch_targets(graph: RunGraph, node: str, branch: Any, routed: Any) -> list[str | Send]:
    items = routed if isinstance(routed, (list, tuple)) else [routed]
    out: list[str | Send] = []
    for item in items:
        if isinstance(item, Send):
            out.append(item)
            continue
        if branch.path_map is not None:
            if item not in branch.path_map:
                raise InvalidUpdateError(
                    f"conditional edge from {node!r} returned {item!r}, which is not in its path_map "
                    f"({', '.join(map(repr, branch.path_map))})"
                )
            item = branch.path_map[item]
        if not isinstance(item, str) or (item != END and item not in graph.builder.nodes):
            raise InvalidUpdateError(f"conditional edge from {node!r} returned unknown node {item!r}")
        out.append(item)
    return out


def _finish(graph: RunGraph, task: Task, returned: Any, values: dict[str, Any]) -> tuple[TaskResult, list[Any], Any]:
    writes, goto, update = _parse_return(graph, task, returned)
    static, fresh = _route(graph, task, values, writes)
    if task.node == START and isinstance(returned, Command) and (goto or not getattr(returned, "entry", True)):
        static = []  # Command(goto=…) as input replaces the entry edges
    writes += join_writes(graph.topology, task.node)
    return TaskResult(task, writes, static + goto, update), graph.branches_from.get(task.node, []), fresh


def _route_sync(graph: RunGraph, result: TaskResult, branches: list[Any], fresh: Any, config: dict[str, Any]) -> None:
    for branch in branches:
        if branch.is_async:
            raise GraphRuntimeError(f"router of {result.task.node!r} is async: run the graph with ainvoke()")
        routed = branch.router(fresh, config) if branch.wants_config else branch.router(fresh)
        result.goto += _branch_targets(graph, result.task.node, branch, routed)


def route_update(graph: RunGraph, node: str, values: dict[str, Any], update: Any, config: dict[str, Any]) -> TaskResult:
    """What ``update_state(…, as_node=node)`` writes and where the thread goes next."""
    task = Task(0, "update", node, node == START, update if node == START else None)
    if node == END:
        return TaskResult(task, update_pairs(graph, node, update), [], update)
    result, branches, fresh = _finish(graph, task, update, values)
    _route_sync(graph, result, branches, fresh, config)
    return result


def _start_value(arg: Any) -> Any:
    """The run input, or the Command it was given as (stored as a plain marker dict)."""
    if isinstance(arg, dict) and COMMAND_KEY in arg:
        cmd = arg[COMMAND_KEY]
        goto = [Send(g["node"], g["arg"]) if isinstance(g, dict) else g for g in cmd["goto"]]
        return _InputCommand(update=cmd["update"], goto=goto, entry=cmd.get("entry", True))
    return arg


@dataclass(frozen=True, slots=True, kw_only=True)
class _InputCommand(Command[Any]):
    """A Command given as run input; ``entry`` says whether START's edges also run."""

    entry: bool = True


def _scope_for(task: Task, resume: dict[str, Any], env: StepEnv) -> TaskScope:
    live = env.live
    return TaskScope(
        task_id=task.id,
        resume=resume,
        config=env.config,
        runtime=env.runtime,
        node=task.node,
        step=env.step,
        messages=live.message if live is not None and live.wants_messages else None,
        env=env,
    )


def _node_args(spec: Any, node_input: Any, config: dict[str, Any], runtime: Runtime[Any]) -> tuple[Any, ...]:
    if spec.wants_runtime:
        return (node_input, runtime)
    return (node_input, config) if spec.wants_config else (node_input,)


_NO_KWARGS: dict[str, Any] = {}


def _node_kwargs(spec: Any, config: dict[str, Any], runtime: Runtime[Any]) -> dict[str, Any]:
    """What a node takes by name: its stream ``writer``, a keyword-only ``config`` or ``runtime``."""
    if not spec.keywords:
        return _NO_KWARGS
    given = {"config": config, "runtime": runtime, "writer": runtime.stream_writer}
    return {param: given[kind] for param, kind in spec.keywords}


def _next_try(spec: Any, exc: Exception, attempt: int) -> float | None:
    """Seconds to wait before running a failed node again, or None to let the error stand."""
    if not spec.retry or isinstance(exc, GraphInterrupt):
        return None
    return retry_delay(spec.retry, exc, attempt)


def run_task(
    graph: RunGraph,
    task: Task,
    values: dict[str, Any],
    resume: dict[str, Any],
    env: StepEnv,
) -> TaskResult:
    """Run a task synchronously; exceptions and interrupts come back inside the result."""
    config, runtime = env.config, env.runtime
    scope = _scope_for(task, resume, env)
    token = scope_var.set(scope)
    try:
        if task.node == START:
            returned = _start_value(task.arg)
        else:
            spec = graph.builder.nodes[task.node]
            if spec.is_async:
                raise GraphRuntimeError(f"node {task.node!r} is async: run the graph with ainvoke()/astream()")
            args = _node_args(spec, _call_args(graph, task, values)[0], config, runtime)
            kwargs = _node_kwargs(spec, config, runtime)
            attempt = 0
            while True:
                attempt += 1
                scope.counter = 0  # a retried node asks its questions from the start again
                try:
                    returned = spec.fn(*args, **kwargs)
                    break
                except Exception as exc:
                    delay = _next_try(spec, exc, attempt)
                    if delay is None:
                        raise
                    time.sleep(delay)
            if inspect.isawaitable(returned):
                raise GraphRuntimeError(f"node {task.node!r} returned an awaitable: run the graph with ainvoke()")
        result, branches, fresh = _finish(graph, task, returned, values)
        _route_sync(graph, result, branches, fresh, config)
        return result
    except GraphInterrupt as gi:
        return TaskResult(task, interrupts=gi.interrupts, paused=True)
    except Exception as exc:
        return TaskResult(task, error=exc)
    finally:
        scope_var.reset(token)


async def arun_task(
    graph: RunGraph,
    task: Task,
    values: dict[str, Any],
    resume: dict[str, Any],
    env: StepEnv,
) -> TaskResult:
    """Async twin of :func:`run_task`: awaits async nodes, runs sync ones in a thread."""
    config, runtime = env.config, env.runtime
    scope = _scope_for(task, resume, env)
    token = scope_var.set(scope)
    try:
        if task.node == START:
            returned = _start_value(task.arg)
        else:
            spec = graph.builder.nodes[task.node]
            args = _node_args(spec, _call_args(graph, task, values)[0], config, runtime)
            kwargs = _node_kwargs(spec, config, runtime)
            attempt = 0
            while True:
                attempt += 1
                scope.counter = 0
                try:
                    if spec.afn is not None:
                        returned = await spec.afn(*args)
                    elif spec.is_async:
                        returned = await spec.fn(*args, **kwargs)
                    else:
                        returned = await asyncio.to_thread(contextvars.copy_context().run, spec.fn, *args, **kwargs)
                        if inspect.isawaitable(returned):
                            returned = await returned
                    break
                except Exception as exc:
                    delay = _next_try(spec, exc, attempt)
                    if delay is None:
                        raise
                    await asyncio.sleep(delay)
        result, branches, fresh = _finish(graph, task, returned, values)
        for branch in branches:
            routed = branch.router(fresh, config) if branch.wants_config else branch.router(fresh)
            if inspect.isawaitable(routed):
                routed = await routed
            result.goto += _branch_targets(graph, task.node, branch, routed)
        return result
    except GraphInterrupt as gi:
        return TaskResult(task, interrupts=gi.interrupts, paused=True)
    except Exception as exc:
        return TaskResult(task, error=exc)
    finally:
        scope_var.reset(token)
