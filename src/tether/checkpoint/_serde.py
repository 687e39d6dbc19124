"""Tagged JSON: how every stored value is written and read back.

JSON-native values (str, int, float, bool, None, lists, dicts with string keys) are
stored as themselves so a person can read them with ``sqlite3`` or ``psql``. Any other
supported value becomes an object with a ``"$t"`` tag::

    {"$t": "tuple", "v": [1, 2]}            {"$t": "datetime", "v": "2026-01-01T00:00:00+00:00"}
    {"$t": "bytes", "v": "aGk="}            {"$t": "model", "cls": "app.models:Draft", "v": {...}}

Reading never imports a module and never runs code beyond the constructor of a class
that the program itself already imported and that is a pydantic model, an enum, or a
dataclass registered with :func:`register_type`. There is no pickle anywhere.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import decimal
import enum
import importlib
import math
import sys
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from pydantic import BaseModel

from tether.errors import SerializationError

__all__ = ["SERDE_VERSION", "decode", "dumps", "encode", "loads", "register_type"]

SERDE_VERSION = 1
TAG = "$t"
_INT64 = 2**63

_registered: dict[str, type] = {}
_names: dict[type, str] = {}


def register_type(cls: type | None = None, *, name: str | None = None) -> Any:
    """Allow a dataclass (or any class with ``__dict__`` fields) to be stored and read back.

    Usable as a decorator, with or without ``name=`` (a stable name to store instead of the
    class's module path, so moving the class does not orphan stored data). Pydantic models and
    enums need no registration; a registered pydantic model is stored without default fields.
    """

    def register(klass: type) -> type:
        key = name or _default_path(klass)
        _registered[key] = klass
        _names[klass] = key
        return klass

    return register(cls) if cls is not None else register


def _default_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _class_path(cls: type) -> str:
    return _names.get(cls) or _default_path(cls)


def _resolve(path: str, *, kind: str) -> type:
    if path not in _registered and path.startswith("tether."):
        # Tether's own types register themselves on import; importing Tether is not running stored code
        importlib.import_module(path.partition(":")[0])
    if path in _registered:
        return _registered[path]
    module_name, _, qualname = path.partition(":")
    module = sys.modules.get(module_name)  # never import: stored data must not run code
    target: Any = module
    for part in qualname.split("."):
        target = getattr(target, part, None)
    ok = isinstance(target, type) and (
        (kind == "model" and issubclass(target, BaseModel)) or (kind == "enum" and issubclass(target, enum.Enum))
    )
    if not ok:
        hint = (
            "register it with tether.checkpoint.register_type"
            if kind == "dataclass"
            else f"import {module_name} before reading this thread"
        )
        raise SerializationError(f"stored {kind} {path!r} is not available in this process: {hint}")
    return target  # type: ignore[no-any-return]


def encode(value: Any) -> Any:
    """Turn ``value`` into JSON-native data with type tags; raise for unsupported types."""
    t = type(value)
    if t is str or t is bool or value is None:
        return value
    if t is int:
        return value if -_INT64 <= value < _INT64 else {TAG: "int", "v": str(value)}
    if t is float:
        return value if math.isfinite(value) else {TAG: "float", "v": repr(value)}
    if t is list:
        return [encode(v) for v in value]
    if t is dict:
        if all(type(k) is str for k in value) and TAG not in value:
            return {k: encode(v) for k, v in value.items()}
        return {TAG: "map", "v": [[encode(k), encode(v)] for k, v in value.items()]}
    return _encode_other(value)


def _encode_other(value: Any) -> Any:
    if isinstance(value, BaseModel):
        compact = type(value) in _names  # registered: its defaults are part of its stored contract
        data = value.model_dump(mode="json", exclude_defaults=compact)
        return {TAG: "model", "cls": _class_path(type(value)), "v": encode(data)}
    if isinstance(value, enum.Enum):
        return {TAG: "enum", "cls": _class_path(type(value)), "v": encode(value.value)}
    if isinstance(value, tuple):
        return {TAG: "tuple", "v": [encode(v) for v in value]}
    if isinstance(value, (set, frozenset)):
        items = [encode(v) for v in value]
        with contextlib.suppress(TypeError):
            items.sort(key=orjson.dumps)
        return {TAG: "set" if isinstance(value, set) else "frozenset", "v": items}
    if isinstance(value, (bytes, bytearray)):
        return {TAG: "bytes", "v": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, (dt.datetime, dt.date, dt.time)):  # datetime first: it is also a date
        tag = "datetime" if isinstance(value, dt.datetime) else "date" if isinstance(value, dt.date) else "time"
        return {TAG: tag, "v": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {TAG: "timedelta", "v": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, uuid.UUID):
        return {TAG: "uuid", "v": str(value)}
    if isinstance(value, decimal.Decimal):
        return {TAG: "decimal", "v": str(value)}
    base: type[Any]
    for base in (int, float, str, list, dict):  # subclasses are stored as their base type
        if isinstance(value, base):
            return encode(base(value))
    path = _class_path(type(value))
    if path in _registered:
        fields = (
            {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
            if dataclasses.is_dataclass(value)
            else dict(vars(value))
        )
        return {TAG: "dataclass", "cls": path, "v": {k: encode(v) for k, v in fields.items()}}
    hint = (
        "decorate it with @tether.checkpoint.register_type"
        if dataclasses.is_dataclass(value)
        else "store a JSON-compatible value, a pydantic model or a registered dataclass instead"
    )
    raise SerializationError(f"cannot store a value of type {path}: {hint}")


def _decode_tagged(obj: dict[str, Any]) -> Any:
    tag, v = obj[TAG], obj.get("v")
    decoder = _DECODERS.get(tag)
    if decoder is None:
        raise SerializationError(f"unknown type tag {tag!r} in stored data (written by a newer Tether?)")
    return decoder(obj, v)


def _decode_model(obj: dict[str, Any], v: Any) -> Any:
    return _resolve(obj["cls"], kind="model").model_validate(decode(v))  # type: ignore[attr-defined]


def _decode_dataclass(obj: dict[str, Any], v: Any) -> Any:
    cls = _registered.get(obj["cls"])
    if cls is None:
        _resolve(obj["cls"], kind="dataclass")  # raises with a hint
    fields = {k: decode(x) for k, x in v.items()}
    return cls(**fields)  # type: ignore[misc]


_DECODERS: dict[str, Callable[[dict[str, Any], Any], Any]] = {
    "int": lambda o, v: int(v),
    "float": lambda o, v: float(v),
    "map": lambda o, v: {decode(k): decode(x) for k, x in v},
    "tuple": lambda o, v: tuple(decode(x) for x in v),
    "set": lambda o, v: {decode(x) for x in v},
    "frozenset": lambda o, v: frozenset(decode(x) for x in v),
    "bytes": lambda o, v: base64.b64decode(v),
    "datetime": lambda o, v: dt.datetime.fromisoformat(v),
    "date": lambda o, v: dt.date.fromisoformat(v),
    "time": lambda o, v: dt.time.fromisoformat(v),
    "timedelta": lambda o, v: dt.timedelta(days=v[0], seconds=v[1], microseconds=v[2]),
    "uuid": lambda o, v: uuid.UUID(v),
    "decimal": lambda o, v: decimal.Decimal(v),
    "model": _decode_model,
    "enum": lambda o, v: _resolve(o["cls"], kind="enum")(decode(v)),
    "dataclass": _decode_dataclass,
}


def decode(data: Any) -> Any:
    """Inverse of :func:`encode`."""
    t = type(data)
    if t is list:
        return [decode(v) for v in data]
    if t is dict:
        if TAG in data:
            return _decode_tagged(data)
        return {k: decode(v) for k, v in data.items()}
    return data


def dumps(value: Any) -> str:
    """Encode ``value`` to tagged JSON text."""
    return orjson.dumps(encode(value)).decode()


def loads(text: str | bytes) -> Any:
    """Decode tagged JSON text written by :func:`dumps`."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise SerializationError(f"stored value is not valid JSON: {exc}") from exc
    tagged = b'"$t"' in text if isinstance(text, bytes) else '"$t"' in text
    return decode(data) if tagged else data  # untagged text is plain JSON: nothing to rebuild
