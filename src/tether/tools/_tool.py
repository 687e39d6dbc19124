"""``@tool``: a typed, documented function becomes something a model can call.

The function's type hints become a pydantic model (``args_schema``) that validates what the
model sends, and a JSON schema (``json_schema()``) that tells the model what to send. Its
docstring's summary becomes the tool's description, its Google-style ``Args:`` entries the
arguments' descriptions.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import json
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Literal, overload

from pydantic import BaseModel, ValidationError

from tether.errors import TetherError
from tether.messages import ToolMessage
from tether.tools._docstring import parse_docstring
from tether.tools._schema import (
    InjectedState,
    InjectedToolArg,
    InjectedToolCallId,
    args_model,
    clean_json_schema,
    injected_params,
)

__all__ = ["Tool", "ToolException", "ToolInvocationError", "as_tool", "tool", "tool_output_content"]

ResponseFormat = Literal["content", "content_and_artifact"]


class ToolException(TetherError):  # noqa: N818 - LangChain's name, so ported tools raise the same
    """Raise it inside a tool to tell the model what went wrong (it becomes an error ToolMessage)."""


class ToolInvocationError(ToolException, ValueError):
    """The model called a tool with arguments that do not match its schema.

    The message names every argument that failed and why, in words a model can act on;
    ``errors`` holds pydantic's error list and ``tool_kwargs`` what the model sent.
    """

    def __init__(self, tool_name: str, tool_kwargs: dict[str, Any], errors: list[dict[str, Any]]) -> None:
        self.tool_name = tool_name
        self.tool_kwargs = tool_kwargs
        self.errors = errors
        problems = "\n".join(f" {_describe_error(e)}" for e in errors)
        # LangGraph's wording, so a model tuned on LangGraph agents reads it the same way
        self.message = (
            f"Error invoking tool '{tool_name}' with kwargs {tool_kwargs} with error:\n"
            f"{problems}\n Please fix the error and try again."
        )
        super().__init__(self.message)


def _describe_error(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ())) or "(arguments)"
    text = f"{where}: {error.get('msg', 'invalid')}"
    if error.get("type") != "missing" and "input" in error:
        text += f" (got {error['input']!r})"
    return text


def tool_output_content(output: Any) -> str | list[Any]:
    """What a tool returned, as ToolMessage content: text as is, content blocks as is, else JSON."""
    if isinstance(output, str):
        return output
    if isinstance(output, list) and output and all(isinstance(x, dict) and "type" in x for x in output):
        return output
    if isinstance(output, BaseModel):
        return output.model_dump_json()
    try:
        return json.dumps(output, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(output)


def _is_tool_call(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "tool_call" and "args" in value and "name" in value


class Tool:
    """A callable a model can ask for. Build one with ``@tool`` or ``Tool.from_function``.

    ``invoke(args)`` validates ``args`` and returns what the function returns;
    ``invoke(tool_call)`` (a ``{"name", "args", "id", "type": "tool_call"}`` dict) returns a
    ``ToolMessage`` answering that call. ``ainvoke`` is the same for async code.
    """

    def __init__(
        self,
        name: str,
        description: str,
        args_schema: type[BaseModel],
        *,
        func: Callable[..., Any] | None = None,
        coroutine: Callable[..., Awaitable[Any]] | None = None,
        return_direct: bool = False,
        response_format: ResponseFormat = "content",
        injected: dict[str, Any] | None = None,
    ) -> None:
        if func is None and coroutine is None:
            raise ValueError(f"tool {name!r} needs a function or a coroutine function to run")
        if response_format not in ("content", "content_and_artifact"):
            raise ValueError(f"response_format must be 'content' or 'content_and_artifact', got {response_format!r}")
        self.name = name
        self.description = description
        self.args_schema = args_schema
        self.func = func
        self.coroutine = coroutine
        self.return_direct = return_direct
        self.response_format: ResponseFormat = response_format
        self.injected: dict[str, Any] = dict(injected or {})
        # LangChain's per-tool switch: True (or a message, or a function of the error) sends a
        # ToolException raised by this tool back to the model instead of stopping the run
        self.handle_tool_error: bool | str | Callable[[Exception], str] = False

    @classmethod
    def from_function(
        cls,
        func: Callable[..., Any] | None = None,
        *,
        coroutine: Callable[..., Awaitable[Any]] | None = None,
        name: str | None = None,
        description: str | None = None,
        args_schema: type[BaseModel] | None = None,
        return_direct: bool = False,
        response_format: ResponseFormat = "content",
    ) -> Tool:
        """A tool from a function (sync, or ``async def``), named and described by it unless told."""
        source = func or coroutine
        if source is None:
            raise ValueError("Tool.from_function needs func or coroutine")
        if inspect.iscoroutinefunction(source) and coroutine is None:
            func, coroutine = None, source
        tool_name = name or getattr(source, "__name__", None)
        if not tool_name or tool_name == "<lambda>":
            raise ValueError("a tool needs a name: pass name=… for a lambda or a callable object")
        summary, arg_docs = parse_docstring(inspect.getdoc(source))
        text = description if description is not None else summary
        if not text:
            raise ValueError(
                f"tool {tool_name!r} has no description: give the function a docstring or pass description=…; "
                "the model chooses tools by their descriptions"
            )
        schema = args_schema or args_model(source, tool_name, arg_docs)
        if args_schema is not None and not (isinstance(args_schema, type) and issubclass(args_schema, BaseModel)):
            raise TypeError(f"tool {tool_name!r}: args_schema must be a pydantic model class, got {args_schema!r}")
        built = cls(
            tool_name,
            text,
            schema,
            func=func,
            coroutine=coroutine,
            return_direct=return_direct,
            response_format=response_format,
            injected=injected_params(source),
        )
        functools.update_wrapper(built, source, updated=())  # keeps __doc__, __module__, __wrapped__
        return built

    # -- describing ---------------------------------------------------------------------
    @property
    def args(self) -> dict[str, Any]:
        """The JSON schema of each argument, by name."""
        properties: dict[str, Any] = self.json_schema()["parameters"].get("properties", {})
        return properties

    def json_schema(self) -> dict[str, Any]:
        """``{"name", "description", "parameters"}``, the function schema chat APIs take."""
        return {
            "name": self.name,
            "description": self.description,
            "parameters": clean_json_schema(self.args_schema.model_json_schema()),
        }

    def __repr__(self) -> str:
        return f"Tool(name={self.name!r})"

    # -- running ------------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the underlying function directly, without validation (handy in tests)."""
        target = self.func or self.coroutine
        assert target is not None
        return target(*args, **kwargs)

    def invoke(self, input: Any, config: Any = None, **injected: Any) -> Any:
        """Run with ``input``: an args dict (returns the result) or a tool call (returns a ToolMessage)."""
        call_id, args = self._split(input)
        kwargs = self._prepare(args, call_id, config, injected)
        if self.func is not None:
            output = self.func(**kwargs)
        else:
            output = _run_coroutine(self.coroutine, kwargs)  # type: ignore[arg-type]
        return self._wrap(output, call_id)

    async def ainvoke(self, input: Any, config: Any = None, **injected: Any) -> Any:
        call_id, args = self._split(input)
        kwargs = self._prepare(args, call_id, config, injected)
        if self.coroutine is not None:
            output = await self.coroutine(**kwargs)
        else:
            # a sync tool runs in a worker thread; copying the context keeps interrupt() working
            assert self.func is not None
            output = await asyncio.to_thread(contextvars.copy_context().run, functools.partial(self.func, **kwargs))
        return self._wrap(output, call_id)

    def _split(self, input: Any) -> tuple[str | None, dict[str, Any]]:
        if _is_tool_call(input):
            return str(input.get("id") or ""), dict(input.get("args") or {})
        if isinstance(input, str):
            visible = list(self.args_schema.model_fields)
            if len(visible) != 1:
                raise ToolInvocationError(
                    self.name,
                    {"input": input},
                    [{"loc": (), "msg": f"expected an object with {', '.join(visible) or 'no'} arguments, got text"}],
                )
            return None, {visible[0]: input}
        if isinstance(input, dict):
            return None, dict(input)
        raise TypeError(f"tool {self.name!r}: input must be a dict of arguments or a tool call, got {input!r}")

    def _prepare(
        self, args: dict[str, Any], call_id: str | None, config: Any, supplied: dict[str, Any]
    ) -> dict[str, Any]:
        visible = {k: v for k, v in args.items() if k not in self.injected}
        try:
            validated = self.args_schema.model_validate(visible)
        except ValidationError as exc:
            raise ToolInvocationError(self.name, visible, [dict(e) for e in exc.errors()]) from exc
        # fields, not model_dump(): nested models stay models, as the function's hints say
        kwargs = {name: getattr(validated, name) for name in type(validated).model_fields}
        for param, marker in self.injected.items():
            if param in supplied:
                kwargs[param] = supplied[param]
            elif param in args:
                kwargs[param] = args[param]
            elif marker == "config":
                kwargs[param] = config or {}
            elif marker is InjectedToolCallId or isinstance(marker, InjectedToolCallId):
                if call_id is None:
                    raise ValueError(f"tool {self.name!r} needs a tool call id: invoke it with a tool call")
                kwargs[param] = call_id
            elif isinstance(marker, InjectedState) or marker is InjectedState:
                raise ValueError(f"tool {self.name!r} reads the graph state ({param!r}): run it through a ToolNode")
            elif isinstance(marker, InjectedToolArg) or marker is InjectedToolArg:
                raise ValueError(f"tool {self.name!r}: injected argument {param!r} was not supplied")
        return kwargs

    def _wrap(self, output: Any, call_id: str | None) -> Any:
        if call_id is None:
            return output
        if isinstance(output, ToolMessage) or _is_command(output):
            return output
        artifact = None
        if self.response_format == "content_and_artifact":
            if not (isinstance(output, tuple) and len(output) == 2):
                raise ValueError(
                    f"tool {self.name!r} has response_format='content_and_artifact' and must return "
                    f"(content, artifact), got {type(output).__name__}"
                )
            output, artifact = output
        return ToolMessage(content=tool_output_content(output), tool_call_id=call_id, name=self.name, artifact=artifact)


def _is_command(value: Any) -> bool:
    from tether.types import Command

    return isinstance(value, Command) or (
        isinstance(value, list) and bool(value) and all(isinstance(v, (Command, ToolMessage)) for v in value)
    )


def _run_coroutine(coroutine: Callable[..., Awaitable[Any]], kwargs: dict[str, Any]) -> Any:
    """Run an async tool from sync code: on this thread if no loop runs here, else on a helper thread."""

    async def main() -> Any:
        return await coroutine(**kwargs)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    result: dict[str, Any] = {}

    def worker() -> None:
        try:
            result["value"] = asyncio.run(main())
        except BaseException as exc:  # handed back to the caller's thread below
            result["error"] = exc

    thread = threading.Thread(target=contextvars.copy_context().run, args=(worker,), daemon=True)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


@overload
def tool(func: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    name: str,
    /,
    *,
    description: str | None = None,
    args_schema: type[BaseModel] | None = None,
    return_direct: bool = False,
    response_format: ResponseFormat = "content",
    parse_docstring: bool = True,
    handle_tool_error: bool | str | Callable[[Exception], str] = False,
) -> Callable[[Callable[..., Any]], Tool]: ...


@overload
def tool(
    *,
    description: str | None = None,
    args_schema: type[BaseModel] | None = None,
    return_direct: bool = False,
    response_format: ResponseFormat = "content",
    parse_docstring: bool = True,
    handle_tool_error: bool | str | Callable[[Exception], str] = False,
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    name_or_func: str | Callable[..., Any] | None = None,
    /,
    *,
    description: str | None = None,
    args_schema: type[BaseModel] | None = None,
    return_direct: bool = False,
    response_format: ResponseFormat = "content",
    parse_docstring: bool = True,
    handle_tool_error: bool | str | Callable[[Exception], str] = False,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a tool of a typed, documented function: ``@tool``, ``@tool("name")``,
    ``@tool(description="…")``; ``async def`` functions work too.

    ``parse_docstring`` is accepted for LangChain compatibility; the docstring is always read
    (the ``Args:`` section describes the arguments, the text before it describes the tool).
    """

    def make(fn: Callable[..., Any], name: str | None = None) -> Tool:
        if isinstance(fn, Tool):
            return fn
        built = Tool.from_function(
            fn,
            name=name,
            description=description,
            args_schema=args_schema,
            return_direct=return_direct,
            response_format=response_format,
        )
        built.handle_tool_error = handle_tool_error
        return built

    if isinstance(name_or_func, str):
        given = name_or_func
        return lambda fn: make(fn, given)
    if name_or_func is None:
        return make
    if callable(name_or_func):
        return make(name_or_func)
    raise TypeError(f"@tool expects a function or a name, got {name_or_func!r}")


def as_tool(value: Any) -> Tool:
    """A Tool from a Tool or a plain typed, documented function."""
    if isinstance(value, Tool):
        return value
    if callable(value):
        return Tool.from_function(value)
    raise TypeError(f"expected a @tool or a function, got {value!r}")
