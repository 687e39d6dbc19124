"""State schemas: which keys exist, how each key merges writes, how nodes see the state.

A schema is a ``TypedDict``, a dataclass or a pydantic model. ``Annotated[T, reducer]``
gives a key a reducer ``reducer(current, update) -> new``; a key without one keeps the
last value written, and two writes to it in one step are an error.
"""

from __future__ import annotations

import dataclasses
import operator
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, get_args, get_origin, get_type_hints

from pydantic import BaseModel, ValidationError

from tether.errors import GraphBuildError, InvalidUpdateError

__all__ = ["Channel", "Schema"]


@dataclass(frozen=True, slots=True)
class Channel:
    """One state key: how writes to it merge, and its value before any write."""

    name: str
    reducer: Callable[[Any, Any], Any] | None = None
    initial: Callable[[], Any] | None = None

    @property
    def is_last_value(self) -> bool:
        return self.reducer is None


def _reducer_of(hint: Any) -> Callable[[Any, Any], Any] | None:
    if get_origin(hint) is not Annotated:
        return None
    for meta in reversed(get_args(hint)[1:]):
        if callable(meta) and not isinstance(meta, type):
            return meta  # type: ignore[no-any-return]
    return None


def _initial_of(hint: Any) -> Callable[[], Any] | None:
    base = get_args(hint)[0] if get_origin(hint) is Annotated else hint
    base = get_origin(base) or base
    if isinstance(base, type) and base in (list, dict, set, int, float, str, tuple):
        return base  # a reducer key starts from the empty value of its type
    return None


def _hints(cls: Any) -> dict[str, Any]:
    try:
        return get_type_hints(cls, include_extras=True)
    except NameError:
        # a class defined inside a function, with postponed annotations, cannot see the
        # function's imports; the names such schemas use most are typing's and operator's
        module = sys.modules.get(getattr(cls, "__module__", ""), None)
        namespace = {**vars(typing), "operator": operator, **(vars(module) if module else {})}
        try:
            hints: dict[str, Any] = {}
            for klass in reversed(getattr(cls, "__mro__", (cls,))):
                for key, hint in getattr(klass, "__annotations__", {}).items():
                    text = getattr(hint, "__forward_arg__", hint)  # TypedDict wraps strings in ForwardRef
                    hints[key] = (
                        eval(text, namespace) if isinstance(text, str) else hint
                    )  # annotations are program source, not stored data
            return hints
        except Exception as exc:
            raise GraphBuildError(f"cannot read the type hints of state schema {cls!r}: {exc}") from exc
    except Exception as exc:
        raise GraphBuildError(f"cannot read the type hints of state schema {cls!r}: {exc}") from exc


def _copy(value: Any) -> Any:
    """Top-level containers are copied, so a node that appends in place cannot alter stored state."""
    return value.copy() if type(value) in (list, dict, set) else value


class Schema:
    """A state, input, output or node-input schema, read once at graph-build time."""

    def __init__(self, cls: Any) -> None:
        self.cls = cls
        self.kind = self._kind(cls)
        hints = _hints(cls)
        if self.kind == "pydantic":
            hints = {k: hints.get(k, f.annotation) for k, f in cls.model_fields.items()}
        elif self.kind == "dataclass":
            hints = {f.name: hints.get(f.name, f.type) for f in dataclasses.fields(cls)}
        self.channels: dict[str, Channel] = {}
        for key, hint in hints.items():
            reducer = _reducer_of(hint)
            self.channels[key] = Channel(key, reducer, _initial_of(hint) if reducer else None)
        self.keys: tuple[str, ...] = tuple(self.channels)

    @staticmethod
    def _kind(cls: Any) -> str:
        if isinstance(cls, type) and issubclass(cls, BaseModel):
            return "pydantic"
        if dataclasses.is_dataclass(cls):
            return "dataclass"
        if typing.is_typeddict(cls):
            return "typeddict"
        if isinstance(cls, type) and getattr(cls, "__annotations__", None):
            return "typeddict"  # plain annotated class: treat like a TypedDict
        raise GraphBuildError(f"state schema must be a TypedDict, a dataclass or a pydantic model, got {cls!r}")

    def view(self, values: dict[str, Any]) -> Any:
        """What a node whose input is this schema receives, given the channel values."""
        data = {k: _copy(values[k]) for k in self.keys if k in values}
        if self.kind == "typeddict":
            return data
        if self.kind == "pydantic":
            return self.cls.model_construct(**data)  # fills defaults; values were validated on the way in
        return self.cls(**data)

    def coerce_input(self, value: Any, *, what: str) -> dict[str, Any]:
        """Turn run input or an update into ``{key: value}``, validating against the schema."""
        if value is None:
            return {}
        if isinstance(value, dict):
            if self.kind == "pydantic":
                try:
                    model = self.cls.model_validate(value)
                except ValidationError as exc:
                    raise InvalidUpdateError(f"{what} does not match {self.cls.__name__}: {exc}") from exc
                return {k: getattr(model, k) for k in value if k in self.channels} | {
                    k: v for k, v in value.items() if k not in self.channels
                }
            return dict(value)
        if isinstance(value, BaseModel):
            return {k: getattr(value, k) for k in value.model_fields_set}
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        raise InvalidUpdateError(f"{what} must be a dict (or a {self.cls.__name__}), got {type(value).__name__}")

    def defaults(self) -> dict[str, Any]:
        """Values a node sees for keys nobody wrote yet (pydantic and dataclass defaults)."""
        out: dict[str, Any] = {}
        if self.kind == "pydantic":
            for k, f in self.cls.model_fields.items():
                if not f.is_required():
                    out[k] = f.get_default(call_default_factory=True)
        elif self.kind == "dataclass":
            for f in dataclasses.fields(self.cls):
                if f.default is not dataclasses.MISSING:
                    out[f.name] = f.default
                elif f.default_factory is not dataclasses.MISSING:
                    out[f.name] = f.default_factory()
        return out
