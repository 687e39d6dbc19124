"""``StateGraph``: declare nodes and edges, then ``compile()`` into a runnable graph."""

from __future__ import annotations

import inspect
import itertools
import typing
from collections.abc import Callable, Hashable, Sequence
from typing import Any, get_origin

from tether._retry import RetryPolicy
from tether.errors import GraphBuildError
from tether.graph._compiled import CompiledStateGraph
from tether.graph._schema import Channel, Schema
from tether.graph._spec import Branch, NodeSpec, literal_targets, return_hint
from tether.types import END, START, StreamWriter

__all__ = ["Branch", "NodeSpec", "StateGraph"]

_RESERVED = {START, END}
_RESERVED_CHARS = (":", "|")


def _accepts_config(fn: Callable[..., Any]) -> bool:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.name == "config" for p in positional):
        return True
    if _accepts_runtime(fn) or any(p.name == "config" for p in params):
        return False
    return (
        len(positional) >= 2
        and positional[1].default is inspect.Parameter.empty
        and _injected_kind(positional[1]) != "writer"
    )


def _injected_kind(param: inspect.Parameter) -> str | None:
    """What LangGraph passes a node by this parameter's name or annotation, if anything."""
    annotation = param.annotation
    named = str(getattr(get_origin(annotation) or annotation, "__name__", annotation))
    if param.name == "writer" or annotation == StreamWriter or named == "StreamWriter":
        return "writer"
    if param.name == "runtime" or named.startswith("Runtime"):
        return "runtime"
    if param.name == "config":
        return "config"
    return None


def _keyword_injections(fn: Callable[..., Any]) -> tuple[tuple[str, str], ...]:
    """Parameters after the state that are passed by name, as LangGraph does: a stream ``writer``
    (named so, or annotated ``StreamWriter``) wherever it stands, and a keyword-only ``config`` or
    ``runtime``. (A positional ``config`` or ``runtime`` second parameter is passed by position.)"""
    try:
        params = list(inspect.signature(fn).parameters.values())[1:]
    except (TypeError, ValueError):
        return ()
    out: list[tuple[str, str]] = []
    for param in params:
        kind = _injected_kind(param)
        by_name = param.kind is not param.POSITIONAL_ONLY if kind == "writer" else param.kind is param.KEYWORD_ONLY
        if kind is not None and by_name:
            out.append((param.name, kind))
    return tuple(out)


def _accepts_runtime(fn: Callable[..., Any]) -> bool:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    if len(params) < 2:
        return False
    second = params[1]
    if second.kind not in (second.POSITIONAL_ONLY, second.POSITIONAL_OR_KEYWORD):
        return False  # a keyword-only runtime is passed by name (see _keyword_injections)
    annotation = second.annotation
    named = getattr(get_origin(annotation) or annotation, "__name__", str(annotation))
    return second.name == "runtime" or str(named).startswith("Runtime")


def _async_twin(action: Any) -> Callable[..., Any] | None:
    """A node object with both ``__call__`` and an async ``ainvoke`` (a ToolNode, a runnable):
    async runs await ``ainvoke`` instead of running the sync call in a thread."""
    target = action.runnable if isinstance(action, _RunnableNode) else action
    ainvoke = getattr(target, "ainvoke", None)
    if ainvoke is not None and inspect.iscoroutinefunction(ainvoke) and not inspect.isfunction(action):
        return ainvoke  # type: ignore[no-any-return]
    return None


class _RunnableNode:
    """An object with ``invoke(input, config)`` (a LangChain runnable, say) used as a node."""

    def __init__(self, runnable: Any) -> None:
        self.runnable = runnable
        self.__name__ = getattr(runnable, "name", None) or type(runnable).__name__

    def __call__(self, state: Any, config: dict[str, Any]) -> Any:
        return self.runnable.invoke(state, config)


def _is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))


def _may_route(fn: Callable[..., Any]) -> bool:
    """Whether a node can send the run elsewhere (Command goto or Send) at run time."""
    code = getattr(inspect.unwrap(fn), "__code__", None) or getattr(getattr(fn, "__call__", None), "__code__", None)
    if code is None:
        return True  # cannot inspect (a partial, a builtin…): assume it may
    names = set(code.co_names)
    for const in code.co_consts:  # nested functions and lambdas
        if inspect.iscode(const):
            names |= set(const.co_names)
    return bool(names & {"Command", "Send", "goto"})


def _first_param_schema(fn: Callable[..., Any]) -> Any:
    try:
        params = list(inspect.signature(fn).parameters.values())
        hints = typing.get_type_hints(fn)
    except Exception:
        return None
    if not params:
        return None
    return hints.get(params[0].name)


class StateGraph:
    """A graph whose nodes read a shared state and return updates to it.

    >>> class State(TypedDict):
    ...     n: int
    >>> g = StateGraph(State)
    >>> g.add_node("inc", lambda s: {"n": s["n"] + 1})
    >>> g.add_edge(START, "inc")
    >>> g.compile().invoke({"n": 1})
    {'n': 2}
    """

    def __init__(
        self,
        state_schema: Any,
        context_schema: Any = None,
        *,
        input_schema: Any = None,
        output_schema: Any = None,
        **legacy: Any,
    ) -> None:
        input_schema = input_schema if input_schema is not None else legacy.pop("input", None)
        output_schema = output_schema if output_schema is not None else legacy.pop("output", None)
        legacy.pop("config_schema", None)
        if legacy:
            raise GraphBuildError(f"StateGraph() got unexpected arguments: {', '.join(sorted(legacy))}")
        self.state_schema = Schema(state_schema)
        self.input_schema = Schema(input_schema) if input_schema is not None else self.state_schema
        self.output_schema = Schema(output_schema) if output_schema is not None else self.state_schema
        self.context_schema = context_schema
        self.channels: dict[str, Channel] = {}
        for schema in (self.state_schema, self.input_schema, self.output_schema):
            self._add_channels(schema)
        self.nodes: dict[str, NodeSpec] = {}
        self.edges: list[tuple[str, str]] = []
        self.joins: list[tuple[tuple[str, ...], str]] = []
        self.branches: list[Branch] = []
        self._compiled = False

    def _add_channels(self, schema: Schema) -> None:
        for name, channel in schema.channels.items():
            known = self.channels.get(name)
            if known is None or (known.reducer is None and channel.reducer is not None):
                self.channels[name] = channel

    # -- nodes ----------------------------------------------------------------------
    def add_node(
        self,
        node: str | Callable[..., Any],
        action: Callable[..., Any] | None = None,
        *,
        input_schema: Any = None,
        metadata: dict[str, Any] | None = None,
        retry_policy: RetryPolicy | Sequence[RetryPolicy] | None = None,
        **ignored: Any,
    ) -> StateGraph:
        """Add a node: ``add_node("name", fn)`` or ``add_node(fn)`` (named after ``fn``)."""
        if action is None:
            if isinstance(node, str):
                raise GraphBuildError(f"add_node({node!r}) needs a function to run")
            action = node
            name = getattr(node, "__name__", None) or type(node).__name__
        else:
            if not isinstance(node, str):
                raise GraphBuildError(f"node name must be a string, got {type(node).__name__}")
            name = node
        if hasattr(action, "builder") and hasattr(action, "invoke") and hasattr(action, "topology"):
            action = _SubgraphNode(action, name, self.channels)
        elif not callable(action) and callable(getattr(action, "invoke", None)):
            action = _RunnableNode(action)
        if not callable(action):
            raise GraphBuildError(f"node {name!r}: expected a function, got {type(action).__name__}")
        if name in _RESERVED:
            raise GraphBuildError(f"node name {name!r} is reserved; choose another name")
        if not name or any(c in name for c in _RESERVED_CHARS):
            raise GraphBuildError(f"node name {name!r} must be non-empty and contain no ':' or '|'")
        if name in self.nodes:
            raise GraphBuildError(f"node {name!r} is already in the graph; node names must be unique")
        schema_cls = input_schema or ignored.pop("input", None)
        if schema_cls is None and not isinstance(action, _SubgraphNode):
            schema_cls = _first_param_schema(action)
        node_schema = self.state_schema
        if schema_cls is not None and schema_cls is not self.state_schema.cls:
            try:
                node_schema = Schema(schema_cls)
                self._add_channels(node_schema)
            except GraphBuildError:
                node_schema = self.state_schema  # the hint is not a schema (e.g. `dict`)
        self.nodes[name] = NodeSpec(
            name=name,
            fn=action,
            input_schema=node_schema,
            wants_config=_accepts_config(action),
            is_async=_is_async(action),
            declared_targets=literal_targets(return_hint(action)),
            may_route=_may_route(action),
            metadata=metadata,
            wants_runtime=_accepts_runtime(action),
            keywords=_keyword_injections(action),
            retry=_policies(retry_policy or ignored.pop("retry", None)),
            afn=_async_twin(action),
        )
        return self

    def add_sequence(self, nodes: Sequence[Callable[..., Any] | tuple[str, Callable[..., Any]]]) -> StateGraph:
        """Add nodes and chain them with edges in the given order."""
        if not nodes:
            raise GraphBuildError("add_sequence() needs at least one node")
        names: list[str] = []
        for item in nodes:
            if isinstance(item, tuple):
                self.add_node(item[0], item[1])
                names.append(item[0])
            else:
                self.add_node(item)
                names.append(list(self.nodes)[-1])
        for a, b in itertools.pairwise(names):
            self.add_edge(a, b)
        return self

    # -- edges ----------------------------------------------------------------------
    def add_edge(self, start_key: str | Sequence[str], end_key: str) -> StateGraph:
        """``a → b``; with a list of sources, ``b`` waits until every source has run."""
        if isinstance(start_key, str):
            if start_key == END:
                raise GraphBuildError("END cannot be the start of an edge")
            if end_key == START:
                raise GraphBuildError("START cannot be the end of an edge")
            self.edges.append((start_key, end_key))
        else:
            sources = tuple(start_key)
            if not sources:
                raise GraphBuildError(f"add_edge([], {end_key!r}): a join needs at least one source")
            if END in sources or end_key == START:
                raise GraphBuildError(f"invalid join edge {list(sources)} -> {end_key!r}")
            self.joins.append((sources, end_key))
        return self

    def add_conditional_edges(
        self,
        source: str,
        path: Callable[..., Any],
        path_map: dict[Hashable, str] | Sequence[str] | None = None,
    ) -> StateGraph:
        """After ``source`` runs, ``path(state)`` returns the next node name(s) or ``Send``s.

        ``path_map`` maps the router's return values to node names (a list maps each name
        to itself); without it the router returns node names directly.
        """
        if not callable(path):
            raise GraphBuildError(f"conditional edge from {source!r}: the router must be callable")
        mapping: dict[Hashable, str] | None
        if path_map is None:
            mapping = None
        elif isinstance(path_map, dict):
            mapping = dict(path_map)
        else:
            mapping = {name: name for name in path_map}
        self.branches.append(Branch(source, path, mapping, _accepts_config(path), _is_async(path)))
        return self

    def set_entry_point(self, key: str) -> StateGraph:
        return self.add_edge(START, key)

    def set_conditional_entry_point(
        self, path: Callable[..., Any], path_map: dict[Hashable, str] | Sequence[str] | None = None
    ) -> StateGraph:
        return self.add_conditional_edges(START, path, path_map)

    def set_finish_point(self, key: str) -> StateGraph:
        return self.add_edge(key, END)

    # -- compile ----------------------------------------------------------------------
    def validate(self, interrupts: Sequence[str] = ()) -> None:
        """Raise ``GraphBuildError`` naming the first problem found."""
        known = set(self.nodes) | {START, END}
        for a, b in self.edges:
            for end, role in ((a, "starting"), (b, "ending")):
                if end not in known:
                    raise GraphBuildError(
                        f"edge {a!r} -> {b!r} is {role} at unknown node {end!r}{self._did_you_mean(end)}"
                    )
        for sources, target in self.joins:
            for name in (*sources, target):
                if name not in known:
                    raise GraphBuildError(
                        f"join edge {list(sources)} -> {target!r} names unknown node {name!r}{self._did_you_mean(name)}"
                    )
        for branch in self.branches:
            if branch.source not in known:
                raise GraphBuildError(
                    f"conditional edge starts at unknown node {branch.source!r}{self._did_you_mean(branch.source)}"
                )
            for target in branch.targets() or ():
                if target not in known:
                    raise GraphBuildError(
                        f"conditional edge from {branch.source!r} can go to unknown node {target!r}"
                        + self._did_you_mean(target)
                    )
        for spec in self.nodes.values():
            for target in spec.declared_targets or ():
                if target not in known:
                    raise GraphBuildError(f"node {spec.name!r} declares a Command to unknown node {target!r}")
        for name in interrupts:
            if name != "*" and name not in self.nodes:
                raise GraphBuildError(f"interrupt names unknown node {name!r}{self._did_you_mean(name)}")
        successors = self._successors()
        if not successors[START] and START not in successors["*"]:
            raise GraphBuildError(
                "the graph has no entry point: add an edge from START, e.g. graph.add_edge(START, 'first_node')"
            )
        dynamic = successors.pop("*", set())
        reachable = self._reach(START, successors, dynamic)
        if not dynamic:
            orphans = [n for n in self.nodes if n not in reachable]
            if orphans:
                raise GraphBuildError(
                    f"node(s) {', '.join(map(repr, orphans))} cannot be reached from START; "
                    "connect them with add_edge or add_conditional_edges, or remove them"
                )
        # A node from which no run can ever finish is a certain infinite loop.
        for name in self.nodes:
            if name not in reachable:
                continue
            ahead = self._reach(name, successors, dynamic)
            if not any(n == END or n in dynamic or not successors.get(n) for n in ahead):
                raise GraphBuildError(
                    f"no path from node {name!r} reaches END: every run through it loops forever; "
                    "add a conditional edge that can leave the cycle"
                )

    def _did_you_mean(self, name: str) -> str:
        import difflib

        close = difflib.get_close_matches(name, list(self.nodes), n=1)
        return f" (did you mean {close[0]!r}?)" if close else ""

    def _successors(self) -> dict[str, set[str]]:
        """Static successors of each node; key "*" holds the nodes whose routing is dynamic."""
        succ: dict[str, set[str]] = {n: set() for n in (*self.nodes, START)}
        dynamic: set[str] = set()
        for a, b in self.edges:
            succ.setdefault(a, set()).add(b)
        for sources, target in self.joins:
            for s in sources:
                succ.setdefault(s, set()).add(target)
        for branch in self.branches:
            targets = branch.targets()
            if targets is None:
                dynamic.add(branch.source)
            else:
                succ.setdefault(branch.source, set()).update(targets)
        for spec in self.nodes.values():
            if spec.declared_targets is not None:
                succ[spec.name].update(spec.declared_targets)
            elif spec.may_route:
                dynamic.add(spec.name)
        succ["*"] = dynamic
        return succ

    @staticmethod
    def _reach(origin: str, succ: dict[str, set[str]], dynamic: set[str]) -> set[str]:
        seen, todo = {origin}, [origin]
        while todo:
            for nxt in succ.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    def compile(
        self,
        checkpointer: Any = None,
        *,
        interrupt_before: Sequence[str] | str | None = None,
        interrupt_after: Sequence[str] | str | None = None,
        debug: bool = False,
        name: str | None = None,
        **ignored: Any,
    ) -> CompiledStateGraph:
        """Check the graph and return a runnable ``CompiledStateGraph``."""
        before = _interrupt_list(interrupt_before)
        after = _interrupt_list(interrupt_after)
        self.validate([*before, *after])
        self._compiled = True
        return CompiledStateGraph(
            builder=self,
            checkpointer=checkpointer,
            interrupt_before=before,
            interrupt_after=after,
            name=name or "graph",
        )


class _SubgraphNode:
    """A compiled graph used as a node: runs it on the parent's state, returns its output as the update.

    With a checkpointer of its own, the subgraph keeps its checkpoints in the parent's thread
    under the namespace ``<node name>``. Without one it inherits the parent run's checkpointer
    (``CompiledStateGraph._child_run``), so it can pause the parent with ``interrupt()``.
    """

    def __init__(self, graph: Any, name: str, parent_keys: dict[str, Channel]) -> None:
        self.graph = graph
        self.__name__ = name
        self.parent_keys = parent_keys  # the parent's channels (the same dict, filled as the graph grows)

    def _config(self, config: dict[str, Any]) -> dict[str, Any]:
        configurable = {k: v for k, v in (config.get("configurable") or {}).items() if k != "checkpoint_id"}
        parent_ns = configurable.get("checkpoint_ns") or ""
        configurable["checkpoint_ns"] = f"{parent_ns}|{self.__name__}" if parent_ns else self.__name__
        return {**config, "configurable": configurable}

    def __call__(self, state: Any, config: dict[str, Any]) -> Any:
        return self._output(self.graph.invoke(state, self._config(config)))

    async def ainvoke(self, state: Any, config: dict[str, Any]) -> Any:
        return self._output(await self.graph.ainvoke(state, self._config(config)))

    def _output(self, out: Any) -> Any:
        if isinstance(out, dict):  # keys the parent does not have stay inside the subgraph
            out = {k: v for k, v in out.items() if k in self.parent_keys and k != "__interrupt__"}
        return out


def _policies(value: Any) -> tuple[RetryPolicy, ...]:
    if value is None:
        return ()
    policies = (value,) if isinstance(value, RetryPolicy) else tuple(value)
    for policy in policies:
        if not isinstance(policy, RetryPolicy):
            raise GraphBuildError(f"retry_policy must be a RetryPolicy (or a list of them), got {policy!r}")
    return policies


def _interrupt_list(value: Sequence[str] | str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)
