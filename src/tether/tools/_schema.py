"""A tool's argument schema: a pydantic model built from a function's signature and docstring.

Parameters the model must not see (the tool call's id, the graph state, the run's config)
are marked with ``Annotated[..., InjectedToolCallId]`` and friends; they are left out of the
schema and filled in by ``ToolNode`` when the tool runs.
"""

from __future__ import annotations

import copy
import inspect
import typing
from collections.abc import Callable
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.fields import FieldInfo

__all__ = [
    "InjectedState",
    "InjectedToolArg",
    "InjectedToolCallId",
    "args_model",
    "clean_json_schema",
    "injected_params",
]


class InjectedToolArg:
    """Marks a parameter the caller supplies (never the model): ``Annotated[T, InjectedToolArg]``."""


class InjectedToolCallId(InjectedToolArg):
    """The id of the tool call being run: ``tool_call_id: Annotated[str, InjectedToolCallId]``."""


class InjectedState(InjectedToolArg):
    """The graph state (or one key of it, with ``InjectedState("key")``) as the tool runs."""

    def __init__(self, field: str | None = None) -> None:
        self.field = field


def _injection(hint: Any) -> InjectedToolArg | type[InjectedToolArg] | None:
    if get_origin(hint) is not Annotated:
        return None
    for meta in get_args(hint)[1:]:
        if isinstance(meta, InjectedToolArg) or (isinstance(meta, type) and issubclass(meta, InjectedToolArg)):
            return meta
    return None


def _is_config(name: str, hint: Any) -> bool:
    # LangChain passes the run's config to a parameter typed RunnableConfig; so do we
    named = getattr(hint, "__name__", None) or str(hint)
    return name == "config" and "RunnableConfig" in str(named)


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:  # an annotation names something not importable at module level
        raise TypeError(f"cannot read the type hints of {getattr(fn, '__name__', fn)!r}: {exc}") from exc


def injected_params(fn: Callable[..., Any]) -> dict[str, Any]:
    """``{parameter: marker}`` for parameters filled in by the runtime: an ``InjectedToolArg``
    (class or instance), or the string ``"config"`` for a ``config: RunnableConfig`` parameter."""
    hints = _hints(fn)
    out: dict[str, Any] = {}
    for name in inspect.signature(fn).parameters:
        hint = hints.get(name)
        marker = _injection(hint)
        if marker is not None:
            out[name] = marker
        elif _is_config(name, hint):
            out[name] = "config"
    return out


def _description_from_annotation(hint: Any) -> str | None:
    """LangChain reads ``Annotated[int, "the count"]`` as a description; so do we."""
    if get_origin(hint) is Annotated:
        for meta in get_args(hint)[1:]:
            if isinstance(meta, str):
                return meta
    return None


def _has_field_description(hint: Any) -> bool:
    if get_origin(hint) is not Annotated:
        return False
    return any(isinstance(m, FieldInfo) and m.description for m in get_args(hint)[1:])


def args_model(fn: Callable[..., Any], model_name: str, descriptions: dict[str, str]) -> type[BaseModel]:
    """A pydantic model with one field per parameter of ``fn`` that the model fills in."""
    hints = _hints(fn)
    injected = injected_params(fn)
    fields: dict[str, Any] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.name in injected or param.name in ("self", "cls"):
            continue
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(
                f"tool {model_name!r}: *{param.name} / **{param.name} cannot be described to a model; "
                "give every argument a name and a type"
            )
        hint = hints.get(param.name, Any)
        default = ... if param.default is inspect.Parameter.empty else param.default
        text = descriptions.get(param.name) or _description_from_annotation(hint)
        if text and not _has_field_description(hint):
            fields[param.name] = (hint, Field(default, description=text))
        else:
            fields[param.name] = (hint, default)
    config = ConfigDict(arbitrary_types_allowed=True)
    model: type[BaseModel] = create_model(model_name, __config__=config, **fields)
    return model


def clean_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The ``parameters`` a chat API expects: ``$ref``s inlined, pydantic's generated titles dropped.

    langchain-core's ``convert_to_openai_tool`` does the same, and some servers (Ollama,
    older vLLM) do not resolve ``$defs``. A recursive model keeps its ``$ref``s and ``$defs``.
    """
    defs: dict[str, Any] = schema.get("$defs", {})
    recursive = False

    def inline(node: Any, stack: tuple[str, ...]) -> Any:
        nonlocal recursive
        if isinstance(node, list):
            return [inline(item, stack) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.removeprefix("#/$defs/")
            if name in stack or name not in defs:
                recursive = True
                return node
            merged = {**copy.deepcopy(defs[name]), **{k: v for k, v in node.items() if k != "$ref"}}
            return inline(merged, (*stack, name))
        return {k: inline(v, stack) for k, v in node.items() if k != "$defs"}

    out = inline(schema, ())
    out.pop("title", None)
    out.pop("description", None)  # the tool's description says it, once
    for prop in out.get("properties", {}).values():
        if isinstance(prop, dict):
            prop.pop("title", None)
    if recursive and defs:
        out["$defs"] = defs
    return {"type": out.pop("type", "object"), **out}
