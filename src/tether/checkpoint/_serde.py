"""Tagged JSON: how every stored value is written and read back.

JSON-native values (str, int, float, bool, None, lists, dicts with string keys) are
stored as themselves so a person can read them with ``sqlite3`` or ``psql``. Any other
supported value becomes an object with a ``"$t"`` tag::

    {"$t": "tuple", "v": [1, 2]}            {"$t": "datetime", "v": "2026-01-01T00:00:00+00:00"}
    {"$t": "bytes", "v": "aGk="}            {"$t": "model", "cls": "app.models:Draft", "v": {...}}

What reading may construct
--------------------------
Reading (:func:`loads`, :func:`decode`) never imports a module named by the data, never looks
a name up with ``getattr`` (so no module ``__getattr__`` hook, lazy module or property runs),
and never unpickles. It builds only:

* JSON values, and from a tag: ``int`` (at most 4,300 digits), ``float``, ``tuple``, ``set``,
  ``frozenset``, ``dict`` with non-string keys, ``bytes``, ``datetime``, ``date``, ``time``,
  ``timedelta``, ``UUID`` and ``Decimal``;
* ``"model"``: a pydantic model, through its ``model_validate``; ``"enum"``: an enum member, by
  calling the enum class with the stored value; ``"dataclass"``: an instance of a class
  registered with :func:`register_type`, by calling it with the stored fields.

The class a ``"cls"`` names is looked up, in this order, in: (1) the names registered with
:func:`register_type`; (2) a fixed table of Tether's own stored names (``_TETHER_TYPES``) whose
module, a constant of this file and never text from the data, is imported on first use so that
it registers them; (3) for models and enums only, the ``__dict__`` of a module already in
``sys.modules`` (and of the classes along a dotted name), read without attribute hooks. What is
found must really subclass ``pydantic.BaseModel`` or ``enum.Enum`` (for a dataclass: be
registered). So the only code reading runs is the validators and constructors of those classes,
which the program itself imported.

Anything else in stored data (a damaged row, a wrong type, an unknown tag or class, an int past
4,300 digits, keys built to flood one hash bucket, nesting past the recursion limit) raises
:class:`~tether.errors.SerializationError` naming the tag and the JSON path where reading failed
(``$.messages[3].v``), chained from the underlying error.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import dataclasses
import datetime as dt
import decimal
import enum
import importlib
import math
import reprlib
import sys
import types
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from pydantic import BaseModel

from tether.errors import SerializationError, UnknownTypeError

__all__ = ["SERDE_VERSION", "decode", "dumps", "encode", "loads", "register_type"]

SERDE_VERSION = 1
TAG = "$t"
_INT64 = 2**63
# Python's own default limit for int <-> str: converting longer ints costs quadratic time
_MAX_INT_DIGITS = 4300
_MAX_INT_BITS = 14_284  # every int of this many bits has at most 4,300 digits
# encode writes each key of a map or set once; this many keys sharing one hash are a
# hash-flooding attack (building the dict would take quadratic time), never data we wrote
_MAX_SAME_HASH = 64

_registered: dict[str, type] = {}
_names: dict[type, str] = {}
_checked: dict[tuple[str, str], type] = {}  # (kind, name) → a registered class checked to be of that kind

# Tether's own stored names → the module whose import registers them (reading imports only these)
_TETHER_TYPES: dict[str, str] = {
    f"tether.messages:{name}": "tether.messages"
    for name in (
        "AIMessage",
        "AIMessageChunk",
        "ChatMessage",
        "HumanMessage",
        "RemoveMessage",
        "SystemMessage",
        "ToolMessage",
    )
}

# the real namespaces, read past any __getattribute__/__getattr__ a module or metaclass defines
_MODULE_NAMESPACE = vars(types.ModuleType)["__dict__"]
_CLASS_NAMESPACE = vars(type)["__dict__"]
_KIND_BASES: dict[str, type] = {"model": BaseModel, "enum": enum.Enum, "dataclass": object}

_short = reprlib.Repr()
_short.maxstring = _short.maxother = 80
_short.maxlevel = 2


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
        _checked.clear()
        return klass

    return register(cls) if cls is not None else register


def _default_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _class_path(cls: type) -> str:
    return _names.get(cls) or _default_path(cls)


def _is_class_of(obj: Any, base: type) -> bool:
    """Whether ``obj`` is a class deriving from ``base``, asking no ``__subclasscheck__`` hook."""
    return issubclass(type(obj), type) and type.__subclasscheck__(base, obj)


def _loaded_class(path: str) -> Any:
    """The object at ``module:Qual.Name`` in an already imported module, or None; runs no code."""
    module_name, _, qualname = path.partition(":")
    module = sys.modules.get(module_name)
    if not issubclass(type(module), types.ModuleType) or not qualname:
        return None
    target: Any = None
    namespace = _MODULE_NAMESPACE.__get__(module)
    for part in qualname.split("."):
        if target is not None:
            if not issubclass(type(target), type):
                return None
            namespace = _CLASS_NAMESPACE.__get__(target)
        target = namespace.get(part)
    return target


def _resolve(path: Any, *, kind: str) -> Any:
    if type(path) is not str:
        raise SerializationError(f"its 'cls' must be a string naming a class, not {type(path).__name__}")
    found: Any = _checked.get((kind, path))
    if found is not None:
        return found
    found = _registered.get(path)
    if found is None and path in _TETHER_TYPES:
        importlib.import_module(_TETHER_TYPES[path])  # Tether's own module registers its types
        found = _registered.get(path)
    if found is not None and _is_class_of(found, _KIND_BASES[kind]):
        _checked[kind, path] = found
        return found
    if found is None and kind != "dataclass":  # looked up each time: a module may be reloaded
        found = _loaded_class(path)
    if found is not None and _is_class_of(found, _KIND_BASES[kind]):
        return found
    module_name = path.partition(":")[0]
    if found is not None:
        raise SerializationError(f"{path!r} is not {'a pydantic model' if kind == 'model' else 'an enum'} class")
    if kind == "dataclass":
        problem = f"dataclass {path!r} is not registered: register it with tether.checkpoint.register_type"
    elif module_name in sys.modules:
        problem = (
            f"{kind} {path!r} is not defined in the imported module {module_name} "
            "(if the class moved, register it under this name with tether.checkpoint.register_type)"
        )
    else:
        problem = f"{kind} {path!r} is not available in this process: import {module_name} before reading"
    raise UnknownTypeError(problem)


def encode(value: Any) -> Any:
    """Turn ``value`` into JSON-native data with type tags; raise for unsupported types."""
    t = type(value)
    if t is str or t is bool or value is None:
        return value
    if t is int:
        return value if -_INT64 <= value < _INT64 else _encode_big_int(value)
    if t is float:
        return value if math.isfinite(value) else {TAG: "float", "v": repr(value)}
    if t is list:
        return [encode(v) for v in value]
    if t is dict:
        if all(type(k) is str for k in value) and TAG not in value:
            return {k: encode(v) for k, v in value.items()}
        _refuse_flooded(value)
        return {TAG: "map", "v": [[encode(k), encode(v)] for k, v in value.items()]}
    return _encode_other(value)


def _encode_big_int(value: int) -> dict[str, str]:
    if value.bit_length() > _MAX_INT_BITS:
        raise SerializationError(
            f"cannot store an int of {value.bit_length()} bits: stored ints have at most "
            f"{_MAX_INT_DIGITS} digits; store it as a string or bytes instead"
        )
    try:
        text = str(value)
    except ValueError as exc:  # this process lowered sys.set_int_max_str_digits
        raise SerializationError(f"cannot store this int: {exc}") from exc
    return {TAG: "int", "v": text}


def _same_hash(keys: Any) -> int:
    """How many of ``keys`` share one hash value, when more than ``_MAX_SAME_HASH`` do; else 0."""
    if len(keys) <= _MAX_SAME_HASH:
        return 0
    count = max(collections.Counter(map(hash, keys)).values())
    return count if count > _MAX_SAME_HASH else 0


def _refuse_flooded(value: dict[Any, Any] | set[Any] | frozenset[Any]) -> None:
    if count := _same_hash(value):
        raise SerializationError(
            f"cannot store a {type(value).__name__} whose {count} keys share one hash value: "
            "reading it back would take quadratic time"
        )


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
        _refuse_flooded(value)
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


class _ReadError(Exception):
    """Reading failed at a tagged node; carries the path there while it unwinds to :func:`decode`.

    Paths are found only on failure (by identity, in each container the error passes through),
    so reading what is well formed pays nothing for them.
    """

    def __init__(self, node: dict[str, Any]) -> None:
        self.node: Any = node
        self.tag, self.cls = node.get(TAG), node.get("cls")
        self.route: list[Any] = []  # segments from the failed node up to the root

    def climb(self, container: Any) -> None:
        self.route += reversed(_route(container, self.node))
        self.node = container


def _items(node: Any) -> Any:
    if type(node) is list:
        return enumerate(node)
    if type(node) is dict:
        return node.items()
    return ()


def _route(container: Any, child: Any) -> list[Any]:
    """The keys that lead from ``container`` to ``child`` (a node of it, at most 3 deep)."""
    if type(container) is dict and TAG in container:  # tagged: children sit in "v", two lists deep for maps
        v = container.get("v")
        if v is child:
            return ["v"]
        for key, x in _items(v):
            if x is child:
                return ["v", key]
            for key2, y in _items(x):
                if y is child:
                    return ["v", key, key2]
        return []
    for key, x in _items(container):
        if x is child:
            return [key]
    return []


def _path(route: list[Any], limit: int = 32) -> str:
    parts = ["$"]
    for key in route[:limit]:
        if type(key) is int:
            parts.append(f"[{key}]")
        elif type(key) is str and key.isidentifier():
            parts.append(f".{key}" if len(key) <= 40 else f".{key[:40]}…")
        else:
            parts.append(f"[{_short.repr(key)}]")
    if len(route) > limit:
        parts.append(f"…({len(route) - limit} more)")
    return "".join(parts)


def _reason(exc: BaseException) -> str:
    kind = (
        type(exc).__qualname__
        if type(exc).__module__ == "builtins"
        else f"{type(exc).__module__}.{type(exc).__qualname__}"
    )
    text = str(exc) if isinstance(exc, SerializationError) else f"{kind}: {exc}"
    return text if len(text) <= 500 else f"{text[:500]}…"


def _deepest(data: Any) -> tuple[int, list[Any]]:
    """How deep ``data`` nests, and the route to its deepest node; iterative, so never too deep."""
    best: tuple[int, Any] = (0, None)
    stack: list[tuple[Any, int, Any]] = [(data, 0, None)]
    while stack:
        node, depth, link = stack.pop()
        if depth > best[0]:
            best = (depth, link)
        for key, child in _items(node):
            stack.append((child, depth + 1, (key, link)))
    route: list[Any] = []
    link = best[1]
    while link is not None:
        route.append(link[0])
        link = link[1]
    return best[0], route[::-1]


def _list(v: Any, what: str = "a list") -> list[Any]:
    if type(v) is not list:
        raise SerializationError(f"its 'v' must be {what}, not {type(v).__name__}")
    return v


def _text(v: Any) -> str:
    if type(v) is not str:
        raise SerializationError(f"its 'v' must be a string, not {type(v).__name__}")
    return v


def _distinct(keys: list[Any]) -> list[Any]:
    """``keys``, after checking that building a dict or set of them takes linear time."""
    if count := _same_hash(keys):
        raise SerializationError(
            f"{count} of its keys share one hash value; Tether refuses to write that (it takes "
            "quadratic time to read), so the data was crafted or damaged"
        )
    return keys


def _decode_int(obj: dict[str, Any], v: Any) -> int:
    if len(_text(v)) > _MAX_INT_DIGITS + 1:
        raise SerializationError(f"its 'v' has {len(v)} characters; stored ints have at most {_MAX_INT_DIGITS} digits")
    return int(v)


def _decode_map(obj: dict[str, Any], v: Any) -> dict[Any, Any]:
    pairs = _list(v, "a list of [key, value] pairs")
    for pair in pairs:
        if type(pair) is not list or len(pair) != 2:
            raise SerializationError(f"its 'v' must hold [key, value] pairs, not {_short.repr(pair)}")
    keys = _distinct([_decode(k) for k, _ in pairs])
    return dict(zip(keys, [_decode(x) for _, x in pairs], strict=True))


def _decode_timedelta(obj: dict[str, Any], v: Any) -> dt.timedelta:
    parts = _list(v, "[days, seconds, microseconds]")
    if len(parts) != 3 or not all(type(p) is int for p in parts):
        raise SerializationError(f"its 'v' must be [days, seconds, microseconds] as ints, not {_short.repr(parts)}")
    return dt.timedelta(days=parts[0], seconds=parts[1], microseconds=parts[2])


def _decode_model(obj: dict[str, Any], v: Any) -> Any:
    return _resolve(obj.get("cls"), kind="model").model_validate(_decode(v))


def _decode_dataclass(obj: dict[str, Any], v: Any) -> Any:
    cls = _resolve(obj.get("cls"), kind="dataclass")
    if type(v) is not dict:
        raise SerializationError(f"its 'v' must be an object of fields, not {type(v).__name__}")
    return cls(**{k: _decode(x) for k, x in v.items()})


_DECODERS: dict[str, Callable[[dict[str, Any], Any], Any]] = {
    "int": _decode_int,
    "float": lambda o, v: float(_text(v)),
    "map": _decode_map,
    "tuple": lambda o, v: tuple([_decode(x) for x in _list(v)]),
    "set": lambda o, v: set(_distinct([_decode(x) for x in _list(v)])),
    "frozenset": lambda o, v: frozenset(_distinct([_decode(x) for x in _list(v)])),
    "bytes": lambda o, v: base64.b64decode(_text(v), validate=True),
    "datetime": lambda o, v: dt.datetime.fromisoformat(_text(v)),
    "date": lambda o, v: dt.date.fromisoformat(_text(v)),
    "time": lambda o, v: dt.time.fromisoformat(_text(v)),
    "timedelta": _decode_timedelta,
    "uuid": lambda o, v: uuid.UUID(_text(v)),
    "decimal": lambda o, v: decimal.Decimal(_text(v)),
    "model": _decode_model,
    "enum": lambda o, v: _resolve(o.get("cls"), kind="enum")(_decode(v)),
    "dataclass": _decode_dataclass,
}


def _decode_tagged(obj: dict[str, Any]) -> Any:
    tag = obj[TAG]
    try:
        decoder = _DECODERS.get(tag) if type(tag) is str else None
        if decoder is None:
            if type(tag) is not str:
                raise SerializationError(f"its type tag must be a string, not {type(tag).__name__}")
            raise SerializationError(f"unknown type tag {_short.repr(tag)} (written by a newer Tether?)")
        if "v" not in obj:
            raise SerializationError("it has no 'v'")
        return decoder(obj, obj["v"])
    except _ReadError as failed:  # a value inside this one failed
        failed.climb(obj)
        raise
    except RecursionError:
        raise  # reported once, by decode, with the depth
    except Exception as exc:  # anything a constructor, validator or parser raises
        raise _ReadError(obj) from exc


def _decode(data: Any) -> Any:
    t = type(data)
    if t is list:
        try:
            return [_decode(v) for v in data]
        except _ReadError as failed:
            failed.climb(data)
            raise
    if t is dict:
        if TAG in data:
            return _decode_tagged(data)
        try:
            return {k: _decode(v) for k, v in data.items()}
        except _ReadError as failed:
            failed.climb(data)
            raise
    return data


def decode(data: Any) -> Any:
    """Inverse of :func:`encode`; raises only :class:`SerializationError`, naming where it failed."""
    try:
        return _decode(data)
    except _ReadError as failed:
        cause = failed.__cause__ or failed  # _ReadError is always raised from the error it reports
        where = _path(failed.route[::-1])
        tag = _short.repr(failed.tag)
        cls = f", cls {_short.repr(failed.cls)}" if failed.cls is not None else ""
        error = UnknownTypeError if isinstance(cause, UnknownTypeError) else SerializationError
        raise error(f"cannot read the stored value at {where} (tag {tag}{cls}): {_reason(cause)}") from cause
    except RecursionError as exc:
        depth, route = _deepest(data)
        raise SerializationError(
            f"cannot read a stored value nested {depth} levels deep (deepest at {_path(route, 12)}): "
            f"deeper than this process can read (its recursion limit is {sys.getrecursionlimit()})"
        ) from exc


def dumps(value: Any) -> str:
    """Encode ``value`` to tagged JSON text."""
    return orjson.dumps(encode(value)).decode()


def loads(text: str | bytes) -> Any:
    """Decode tagged JSON text written by :func:`dumps`; raises only :class:`SerializationError`."""
    t = type(text)
    if t is not str and t is not bytes:
        if not isinstance(text, (str, bytes, bytearray, memoryview)):
            raise SerializationError(f"a stored value must be JSON text (str or bytes), not {t.__name__}")
        text = text if isinstance(text, str) else bytes(text)
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise SerializationError(f"stored value is not valid JSON: {exc}") from exc
    # untagged text is plain JSON: nothing to rebuild (a "$t" key spelled with \\u escapes, which
    # dumps never writes, is read as a plain key)
    tagged = b'"$t"' in text if type(text) is bytes else '"$t"' in text
    return decode(data) if tagged else data
