"""``ToolNode``: a graph node that runs the tool calls of the latest AIMessage.

Each call becomes a ``ToolMessage`` (in the order of the calls) whatever happens: a result, a
validation error the model can correct, an unknown tool name, or an exception in the tool,
unless ``handle_tool_errors`` says to let it stop the run. Several calls run at once: sync
tools on threads, async tools on one event loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import typing
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, Union

from tether.messages import AIMessage, AnyMessage, ToolCall, ToolMessage
from tether.tools._schema import InjectedState
from tether.tools._tool import Tool, ToolException, ToolInvocationError, as_tool
from tether.types import END, Command, GraphInterrupt

__all__ = ["ToolNode", "tools_condition"]

ErrorHandler = bool | str | Callable[[Exception], str] | type[Exception] | tuple[type[Exception], ...]
Outcome = ToolMessage | Command[Any] | list[Any]

_DEFAULT_MAX_WORKERS = 16


class ToolNode:
    """Runs the tool calls of the last AIMessage in ``state[messages_key]``.

    ``max_concurrency`` (or the run config's ``max_concurrency``) caps how many sync tools run
    at once; 16 by default.

    ``handle_tool_errors``: by default (``default_handle_tool_errors``, as in LangGraph) arguments
    that do not validate go back to the model as an error ToolMessage saying what was wrong, and
    any other exception stops the run; ``True`` turns every exception into an error ToolMessage
    the model can read; a string is sent instead of the error; a function of the
    exception returns the text (and, if its parameter is annotated with exception types, only
    those are handled); an exception class or tuple handles only those; ``False`` lets every
    error, argument validation included, stop the run.

    Calls already answered by a ToolMessage later in the conversation (a person rejected
    them with ``update_state``) are not run again.
    """

    def __init__(
        self,
        tools: Sequence[Tool | Callable[..., Any]],
        *,
        name: str = "tools",
        handle_tool_errors: ErrorHandler | None = None,
        messages_key: str = "messages",
        max_concurrency: int | None = None,
    ) -> None:
        self.tools_by_name: dict[str, Tool] = {}
        for item in tools:
            built = as_tool(item)
            if built.name in self.tools_by_name:
                raise ValueError(f"two tools are named {built.name!r}; tool names must be unique")
            self.tools_by_name[built.name] = built
        self.name = name
        self.__name__ = name  # add_node(ToolNode([...])) names the node after it
        if handle_tool_errors is None:
            handle_tool_errors = default_handle_tool_errors
        self.handle_tool_errors = handle_tool_errors
        self.messages_key = messages_key
        self.max_concurrency = max_concurrency
        self._handled = _handled_types(handle_tool_errors)

    def __repr__(self) -> str:
        return f"ToolNode(tools={list(self.tools_by_name)!r})"

    # -- as a node ----------------------------------------------------------------------
    def __call__(self, state: Any, config: Any = None) -> Any:
        calls, kind = self._parse_input(state)
        if any(self._is_async(call) for call in calls) and len(calls) > 1:
            outcomes = _run_async(self._arun_calls(calls, state, config))
        elif len(calls) > 1:
            outcomes = self._run_threads(calls, state, config)
        else:
            outcomes = [self._run_one(call, state, config) for call in calls]
        return self._combine(outcomes, kind)

    def invoke(self, state: Any, config: Any = None) -> Any:
        return self(state, config)

    async def ainvoke(self, state: Any, config: Any = None) -> Any:
        calls, kind = self._parse_input(state)
        return self._combine(await self._arun_calls(calls, state, config), kind)

    # -- input and output ---------------------------------------------------------------
    def _parse_input(self, state: Any) -> tuple[list[ToolCall], Literal["dict", "list", "tool_calls"]]:
        kind: Literal["dict", "list", "tool_calls"]
        if isinstance(state, list) and state and isinstance(state[-1], dict) and state[-1].get("type") == "tool_call":
            return list(state), "tool_calls"
        if isinstance(state, list):
            messages, kind = state, "list"
        elif isinstance(state, dict):
            messages, kind = state.get(self.messages_key) or [], "dict"
        else:
            messages, kind = getattr(state, self.messages_key, None) or [], "dict"
        if not messages:
            raise ValueError(f"ToolNode found no messages in its input (looked for the {self.messages_key!r} key)")
        position = next((i for i in range(len(messages) - 1, -1, -1) if isinstance(messages[i], AIMessage)), None)
        if position is None:
            raise ValueError("ToolNode found no AIMessage in the conversation: there are no tool calls to run")
        ai: AIMessage = messages[position]
        answered = {m.tool_call_id for m in messages[position + 1 :] if isinstance(m, ToolMessage)}
        return [call for call in ai.tool_calls if (call.get("id") or "") not in answered or not call.get("id")], kind

    def _combine(self, outcomes: list[Outcome], kind: str) -> Any:
        flat: list[ToolMessage | Command[Any]] = []
        for outcome in outcomes:
            flat.extend(outcome if isinstance(outcome, list) else [outcome])
        # ids fixed at write time, so the results keep them however often the thread is read back
        flat = [_with_id(o) if isinstance(o, ToolMessage) else o for o in flat]
        if not any(isinstance(o, Command) for o in flat):
            return flat if kind in ("list", "tool_calls") else {self.messages_key: flat}
        # the runtime takes a list of Commands; plain messages ride along as Command updates
        return [
            o if isinstance(o, Command) else Command(update=[o] if kind != "dict" else {self.messages_key: [o]})
            for o in flat
        ]

    # -- running ------------------------------------------------------------------------
    def _is_async(self, call: ToolCall) -> bool:
        found = self.tools_by_name.get(call.get("name", ""))
        return found is not None and found.func is None

    def _run_threads(self, calls: list[ToolCall], state: Any, config: Any) -> list[Outcome]:
        limit = self.max_concurrency or (config or {}).get("max_concurrency") or _DEFAULT_MAX_WORKERS
        workers = min(len(calls), limit)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tether-tool") as pool:
            # each thread gets a copy of this context, so interrupt() and get_stream_writer() work in tools
            futures = [
                pool.submit(contextvars.copy_context().run, self._run_one, call, state, config) for call in calls
            ]
            settled = [_settle(f.result) for f in futures]
        return _unwrap(settled)

    async def _arun_calls(self, calls: list[ToolCall], state: Any, config: Any) -> list[Outcome]:
        settled = await asyncio.gather(*(self._arun_one(c, state, config) for c in calls), return_exceptions=True)
        return _unwrap(list(settled))

    def _run_one(self, call: ToolCall, state: Any, config: Any) -> Outcome:
        found = self._lookup(call)
        if isinstance(found, ToolMessage):
            return found
        try:
            return self._result(found.invoke(self._tool_call(call), config, **self._injected(found, state)), call)
        except GraphInterrupt:
            raise
        except Exception as exc:
            return self._on_error(exc, call)

    async def _arun_one(self, call: ToolCall, state: Any, config: Any) -> Outcome:
        found = self._lookup(call)
        if isinstance(found, ToolMessage):
            return found
        try:
            output = await found.ainvoke(self._tool_call(call), config, **self._injected(found, state))
            return self._result(output, call)
        except GraphInterrupt:
            raise
        except Exception as exc:
            return self._on_error(exc, call)

    def _lookup(self, call: ToolCall) -> Tool | ToolMessage:
        name = call.get("name", "")
        found = self.tools_by_name.get(name)
        if found is not None:
            return found
        # LangGraph's wording; the model learns which names exist and can try again
        return ToolMessage(
            content=f"Error: {name} is not a valid tool, try one of [{', '.join(self.tools_by_name)}].",
            name=name,
            tool_call_id=call.get("id") or "",
            status="error",
        )

    @staticmethod
    def _tool_call(call: ToolCall) -> dict[str, Any]:
        args = call.get("args") or {}
        return {"name": call.get("name"), "args": args, "id": call.get("id") or "", "type": "tool_call"}

    def _injected(self, found: Tool, state: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for param, marker in found.injected.items():
            if isinstance(marker, InjectedState) or marker is InjectedState:
                key = getattr(marker, "field", None) if isinstance(marker, InjectedState) else None
                if key is None:
                    out[param] = state
                else:
                    out[param] = state.get(key) if isinstance(state, dict) else getattr(state, key, None)
        return out

    def _result(self, output: Any, call: ToolCall) -> Outcome:
        if isinstance(output, ToolMessage):
            message: ToolMessage = output
            if not message.tool_call_id:
                message = message.model_copy(update={"tool_call_id": call.get("id") or ""})
            return message
        if isinstance(output, (Command, list)):
            return typing.cast(Outcome, output)
        raise TypeError(f"tool {call.get('name')!r} returned {type(output).__name__}, expected a ToolMessage")

    def _on_error(self, exc: Exception, call: ToolCall) -> ToolMessage:
        own = getattr(self.tools_by_name.get(call.get("name") or ""), "handle_tool_error", False)
        if own and isinstance(exc, ToolException) and not isinstance(exc, ToolInvocationError):
            text = own if isinstance(own, str) else own(exc) if callable(own) else str(exc)
            return ToolMessage(content=text, name=call.get("name"), tool_call_id=call.get("id") or "", status="error")
        flag = self.handle_tool_errors
        if flag is False or not isinstance(exc, self._handled):
            raise exc
        if isinstance(exc, ToolInvocationError) and (flag is True or isinstance(flag, (type, tuple))):
            content = exc.message  # already says which arguments were wrong and how
        elif isinstance(exc, ToolException) and (flag is True or isinstance(flag, (type, tuple))):
            content = f"Error: {exc}\n Please fix your mistakes."  # written for the model: verbatim, not repr'd
        elif isinstance(flag, str):
            content = flag
        elif callable(flag) and not isinstance(flag, type):
            content = flag(exc)
        else:
            content = f"Error: {exc!r}\n Please fix your mistakes."
        return ToolMessage(content=content, name=call.get("name"), tool_call_id=call.get("id") or "", status="error")


def default_handle_tool_errors(exc: Exception) -> str:
    """Tell the model about arguments that did not validate; let anything else stop the run."""
    if isinstance(exc, ToolInvocationError):
        return exc.message
    raise exc


def _with_id(message: ToolMessage) -> ToolMessage:
    return message if message.id else message.model_copy(update={"id": str(uuid.uuid4())})


def _handled_types(flag: ErrorHandler) -> tuple[type[Exception], ...]:
    if isinstance(flag, type) and issubclass(flag, Exception):
        return (flag,)
    if isinstance(flag, tuple):
        return flag
    if callable(flag) and not isinstance(flag, type):
        return _annotated_exceptions(flag)
    return (Exception,)


def _annotated_exceptions(handler: Callable[..., Any]) -> tuple[type[Exception], ...]:
    """``def handle(e: ValueError | KeyError)`` handles only those; an unannotated handler, all."""
    try:
        params = list(inspect.signature(handler).parameters.values())
        hints = typing.get_type_hints(handler)
    except (TypeError, ValueError, NameError):
        return (Exception,)
    if not params or params[0].name not in hints:
        return (Exception,)
    hint = hints[params[0].name]
    options = typing.get_args(hint) if typing.get_origin(hint) in (Union, _UnionType) else (hint,)
    types = tuple(t for t in options if isinstance(t, type) and issubclass(t, Exception))
    if len(types) != len(options):
        raise ValueError(
            f"handle_tool_errors={handler!r}: its first parameter must be annotated with exception types, got {hint!r}"
        )
    return types


_UnionType = type(int | str)


def _settle(result: Callable[[], Outcome]) -> Outcome | BaseException:
    try:
        return result()
    except BaseException as exc:  # collected, then raised in call order by _unwrap
        return exc


def _unwrap(settled: list[Any]) -> list[Outcome]:
    """Outcomes in call order; interrupts from several tools are raised together, else the first error."""
    interrupts = [i for s in settled if isinstance(s, GraphInterrupt) for i in s.interrupts]
    if interrupts:
        raise GraphInterrupt(interrupts)
    for item in settled:
        if isinstance(item, BaseException):
            raise item
    return settled


def _run_async(coro: Any) -> Any:
    """Run a coroutine from a sync node (no loop runs on a node's thread; if one does, use a helper thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(contextvars.copy_context().run, asyncio.run, coro).result()


def tools_condition(
    state: list[AnyMessage] | dict[str, Any] | Any, messages_key: str = "messages"
) -> Literal["tools", "__end__"]:
    """Route to ``"tools"`` when the last message is an AIMessage with tool calls, else to END."""
    if isinstance(state, list):
        messages = state
    elif isinstance(state, dict):
        messages = state.get(messages_key) or []
    else:
        messages = getattr(state, messages_key, None) or []
    if not messages:
        raise ValueError(f"tools_condition found no messages in the state (looked for the {messages_key!r} key)")
    last = messages[-1]
    if getattr(last, "tool_calls", None):
        return "tools"
    return END  # type: ignore[return-value]
