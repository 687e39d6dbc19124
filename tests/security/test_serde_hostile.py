"""Reading hostile stored values: only SerializationError, never an import, a hang or a crash.

Stored rows are data a person (or a bug, or an attacker with write access to the database)
can change. Whatever the text, ``loads``/``decode`` return a value or raise
``SerializationError`` naming the tag and the JSON path where reading failed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, field_validator

from tether.checkpoint import register_type
from tether.checkpoint._serde import _DECODERS, decode, dumps, loads
from tether.errors import SerializationError

HERE = "tests.security.test_serde_hostile"
P = 2**61 - 1  # ints congruent modulo this prime share one hash value


class Mood(enum.Enum):
    CALM = "calm"


class Strict(BaseModel):
    n: int

    @field_validator("n")
    @classmethod
    def small(cls, n: int) -> int:
        if n > 10:
            raise ValueError("n must be at most 10")
        return n


class Outer:
    class Inner(enum.Enum):
        A = 1


@register_type
@dataclasses.dataclass
class Pair:
    a: int
    b: int


def reading_fails(data: Any, *match: str) -> SerializationError:
    """``data`` (text for loads, else a value for decode) raises SerializationError, chained."""
    with pytest.raises(SerializationError) as info:
        loads(data) if isinstance(data, (str, bytes)) else decode(data)
    for fragment in match:
        assert fragment in str(info.value), str(info.value)
    return info.value


def tagged(tag: Any, v: Any = None, **extra: Any) -> dict[str, Any]:
    return {"$t": tag, "v": v, **extra} if v is not None else {"$t": tag, **extra}


# (stored value, fragments the message must contain): each damaged in one way
DAMAGED: list[tuple[Any, tuple[str, ...]]] = [
    (tagged("tuple", "ab"), ("tag 'tuple'", "must be a list")),
    (tagged("set", {"a": 1}), ("tag 'set'", "must be a list")),
    (tagged("frozenset", 5), ("tag 'frozenset'",)),
    (tagged("map", "abab"), ("tag 'map'", "pairs")),
    (tagged("map", {"ab": 1}), ("tag 'map'", "pairs")),
    (tagged("map", [[1, 2, 3]]), ("tag 'map'", "pairs")),
    (tagged("map", [[[1], 2]]), ("tag 'map'", "unhashable")),
    (tagged("map", [[tagged("map", [[1, 2]]), 2]]), ("tag 'map'", "unhashable")),
    (tagged("set", [[1]]), ("tag 'set'", "unhashable")),
    (tagged("timedelta", "1 day"), ("tag 'timedelta'",)),
    (tagged("timedelta", [1, 2]), ("tag 'timedelta'",)),
    (tagged("timedelta", [1.5, 0, 0]), ("tag 'timedelta'",)),
    (tagged("timedelta", [2**62, 0, 0]), ("tag 'timedelta'", "OverflowError")),
    (tagged("bytes", 12), ("tag 'bytes'", "must be a string")),
    (tagged("bytes", "not base64!"), ("tag 'bytes'",)),
    (tagged("bytes", "é"), ("tag 'bytes'",)),
    (tagged("datetime", 1700000000), ("tag 'datetime'",)),
    (tagged("datetime", "2026-13-45T99:00"), ("tag 'datetime'", "ValueError")),
    (tagged("date", ["2026"]), ("tag 'date'",)),
    (tagged("time", "25:61"), ("tag 'time'",)),
    (tagged("uuid", [1]), ("tag 'uuid'",)),
    (tagged("uuid", "not-a-uuid"), ("tag 'uuid'",)),
    (tagged("int", 5), ("tag 'int'",)),
    (tagged("int", "twelve"), ("tag 'int'", "ValueError")),
    (tagged("int", "9" * 100_000), ("tag 'int'", "4300 digits")),
    (tagged("float", "lots"), ("tag 'float'",)),
    (tagged("float", [1.0]), ("tag 'float'",)),
    (tagged("decimal", "1,5"), ("tag 'decimal'",)),
    (tagged("decimal", [0, [1], 0]), ("tag 'decimal'", "must be a string")),
    (tagged("decimal", "1e999999999999999999999"), ("tag 'decimal'",)),
    ({"$t": "int"}, ("tag 'int'", "no 'v'")),
    ({"$t": ["tuple"], "v": []}, ("must be a string",)),
    ({"$t": {"a": 1}, "v": []}, ("must be a string",)),
    ({"$t": None, "v": []}, ("must be a string",)),
    ({"$t": 7, "v": []}, ("must be a string",)),
    ({"$t": "pickle", "v": "gASV"}, ("unknown type tag 'pickle'",)),
    (tagged("model", {}), ("tag 'model'", "'cls' must be a string")),
    (tagged("model", {}, cls=["a"]), ("'cls' must be a string",)),
    (tagged("model", {}, cls={"a": 1}), ("'cls' must be a string",)),
    (tagged("model", {"n": "x"}, cls=f"{HERE}:Strict"), ("tag 'model'", "ValidationError")),
    (tagged("model", {"n": 11}, cls=f"{HERE}:Strict"), ("n must be at most 10",)),
    (tagged("model", [1, 2], cls=f"{HERE}:Strict"), ("ValidationError",)),
    (tagged("model", {}, cls=f"{HERE}:Mood"), ("is not a pydantic model",)),
    (tagged("model", {}, cls=f"{HERE}:Pair"), ("is not a pydantic model",)),
    (tagged("model", {}, cls=f"{HERE}:reading_fails"), ("is not a pydantic model",)),
    (tagged("model", {}, cls=f"{HERE}:"), ("not defined",)),
    (tagged("model", {}, cls="no colon at all"), ("not available",)),
    (tagged("enum", "sad", cls=f"{HERE}:Mood"), ("tag 'enum'", "ValueError")),
    (tagged("enum", [1], cls=f"{HERE}:Mood"), ("tag 'enum'",)),
    (tagged("enum", "calm", cls=f"{HERE}:Strict"), ("is not an enum",)),
    (tagged("enum", 1, cls=f"{HERE}:Outer.Inner.A"), ("tag 'enum'",)),
    (tagged("dataclass", {"a": 1}, cls=f"{HERE}:Pair"), ("tag 'dataclass'", "TypeError")),
    (tagged("dataclass", {"a": 1, "b": 2, "c": 3}, cls=f"{HERE}:Pair"), ("TypeError",)),
    (tagged("dataclass", [1, 2], cls=f"{HERE}:Pair"), ("must be an object of fields",)),
    (tagged("dataclass", {}, cls=f"{HERE}:Strict"), ("is not registered",)),
    (tagged("dataclass", {}, cls="os:system"), ("is not registered",)),
]


@pytest.mark.parametrize(("value", "match"), DAMAGED, ids=[repr(v)[:60] for v, _ in DAMAGED])
def test_each_damaged_value_is_a_serialization_error(value: Any, match: tuple[str, ...]) -> None:
    from_value = reading_fails(value, *match)
    assert from_value.__cause__ is not None  # chained from what went wrong underneath
    reading_fails(orjson.dumps(value), *match)  # the same through stored text
    reading_fails(orjson.dumps(value).decode(), *match)


def test_the_message_names_the_path_inside_the_value() -> None:
    state = {
        "messages": [
            "hi",
            {"$t": "tuple", "v": [1, 2]},
            {"$t": "tuple", "v": [1, 2]},
            {"$t": "model", "cls": f"{HERE}:Strict", "v": {"n": {"$t": "tuple", "v": [1, {"$t": "int", "v": "x"}]}}},
        ]
    }
    reading_fails(dumps_raw(state), "at $.messages[3].v.n.v[1] (tag 'int')")
    weird_keys = {"a b": {"$t": "map", "v": [[1, {"$t": "bytes", "v": "!"}]]}}
    reading_fails(dumps_raw(weird_keys), "at $['a b'].v[0][1] (tag 'bytes')")
    fields = {"$t": "dataclass", "cls": f"{HERE}:Pair", "v": {"a": 1, "b": {"$t": "date", "v": "x"}}}
    reading_fails(dumps_raw([fields]), "at $[0].v.b (tag 'date')")


def dumps_raw(data: Any) -> str:
    return orjson.dumps(data).decode()


def test_nesting_past_the_recursion_limit_is_an_error_not_a_crash() -> None:
    depth = 1020  # orjson parses text at most 1024 deep; decoding this deep overflows Python's stack
    text = "[" * depth + '{"$t": "tuple", "v": []}' + "]" * depth
    reading_fails(text, "nested", "levels deep", "recursion limit")
    value: Any = {"$t": "tuple", "v": []}
    for _ in range(100_000):  # deeper than any text, given as a value
        value = [value]
    started = time.monotonic()
    reading_fails(value, "nested 100001 levels deep", "$[0][0]")
    assert time.monotonic() - started < 30
    reading_fails("[" * 5000 + "]" * 5000, "not valid JSON")


@pytest.mark.parametrize("tag", ["map", "set", "frozenset"])
def test_keys_built_to_share_one_hash_are_refused_quickly(tag: str) -> None:
    keys = [{"$t": "int", "v": str(7 + k * P)} if 7 + k * P >= 2**63 else 7 + k * P for k in range(50_000)]
    value = {"$t": tag, "v": [[k, 0] for k in keys] if tag == "map" else keys}
    text = dumps_raw(value)
    started = time.monotonic()
    reading_fails(text, f"tag '{tag}'", "share one hash value")
    assert time.monotonic() - started < 30  # building it would take many minutes
    decimals = {"$t": "set", "v": [{"$t": "decimal", "v": str(7 + k * P)} for k in range(1000)]}
    reading_fails(decimals, "share one hash value")


def test_writing_keys_that_share_one_hash_fails_at_the_write() -> None:
    with pytest.raises(SerializationError, match="share one hash value"):
        dumps({7 + k * P for k in range(200)})
    with pytest.raises(SerializationError, match="share one hash value"):
        dumps({7 + k * P: k for k in range(200)})
    assert len(loads(dumps(set(range(10_000))))) == 10_000  # ordinary sets are untouched


def test_ints_too_long_to_convert_fail_at_write_and_read() -> None:
    with pytest.raises(SerializationError, match="at most 4300 digits"):
        dumps(10**5000)
    assert loads(dumps(-(10**4000))) == -(10**4000)
    started = time.monotonic()
    reading_fails(dumps_raw({"$t": "int", "v": "1" * 10_000_000}), "at most 4300 digits")
    assert time.monotonic() - started < 30


@pytest.mark.parametrize(
    "text",
    [b"\xff\xfe", "\ud800", b'{"$t": "bytes", "v": "\xff"}', "", "   ", "[1,]", '{"a": NaN}', b"\x00"],
)
def test_text_that_is_not_json_is_a_serialization_error(text: str | bytes) -> None:
    reading_fails(text, "not valid JSON")


@pytest.mark.parametrize("text", [None, 5, ["[]"], object()])
def test_something_that_is_not_text_is_a_serialization_error(text: Any) -> None:
    with pytest.raises(SerializationError, match="must be JSON text"):
        loads(text)


def test_buffers_read_like_bytes() -> None:
    text = dumps({"t": (1, 2)}).encode()
    assert loads(bytearray(text)) == loads(memoryview(text)) == {"t": (1, 2)}


def test_a_nested_enum_and_a_model_are_found_through_class_and_module_dicts() -> None:
    assert decode({"$t": "enum", "cls": f"{HERE}:Outer.Inner", "v": 1}) is Outer.Inner.A
    assert decode({"$t": "model", "cls": f"{HERE}:Strict", "v": {"n": 3}}) == Strict(n=3)


def test_a_module_getattr_hook_is_never_called(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    module = sys.modules[__name__]

    def hook(name: str) -> Any:
        calls.append(name)
        return Strict

    monkeypatch.setattr(module, "__getattr__", hook, raising=False)
    assert module.Anything is Strict  # the hook works for ordinary attribute access
    calls.clear()
    for cls in (f"{HERE}:Anything", f"{HERE}:Outer.Missing", f"{HERE}:Anything.Inner"):
        reading_fails({"$t": "model", "cls": cls, "v": {"n": 1}}, "not defined in the imported module")
    assert calls == []


# --- reading imports nothing: a clean interpreter per check, comparing sys.modules ---

HOOKED_MODULE = """
import sys
calls = []
def __getattr__(name):
    calls.append(name)
    import colorsys
    return colorsys
"""

CLASSY_MODULE = """
import sys, types
class Loud(types.ModuleType):
    def __getattribute__(self, name):
        import colorsys
        return types.ModuleType.__getattribute__(self, name)
sys.modules[__name__].__class__ = Loud
"""

LAZY_TARGET = """
import colorsys
from pydantic import BaseModel
class Model(BaseModel):
    x: int = 0
"""

PROBE = """
import importlib.util, json, sys
sys.path.insert(0, sys.argv[1])
from tether.checkpoint._serde import loads
from tether.errors import SerializationError
import hooked, classy
spec = importlib.util.find_spec("lazy_target")
spec.loader = importlib.util.LazyLoader(spec.loader)
lazy = importlib.util.module_from_spec(spec)
sys.modules["lazy_target"] = lazy
spec.loader.exec_module(lazy)
paths = json.loads(sys.argv[2])
before = set(sys.modules)
outcomes = {}
for path in paths:
    for kind in ("model", "enum", "dataclass"):
        try:
            loads(json.dumps({"state": [{"$t": kind, "cls": path, "v": {}}]}))
            outcomes[f"{kind} {path}"] = "read"
        except SerializationError:
            pass
        except BaseException as exc:
            outcomes[f"{kind} {path}"] = repr(exc)
print(json.dumps({
    "imported": sorted(set(sys.modules) - before),
    "outcomes": outcomes,
    "hook_calls": hooked.calls,
}))
"""

# names that importing would reach: Tether's heavy parts, lazy attributes, stdlib and third parties
IMPORT_BAIT = [
    "tether.tune.train:Something",
    "tether.tune.train:TrainConfig",
    "tether.tune:Anything",
    "tether.plan._record:Record",
    "tether.checkpoint:PostgresSaver",
    "tether.checkpoint:AsyncPostgresSaver",
    "tether.checkpoint._postgres:PostgresSaver",
    "tether.messages._nothing:AIMessage",
    "tether:__getattr__",
    "pydantic:RootModel",
    "pydantic:validate_call",
    "pydantic.v1:BaseModel",
    "pydantic.root_model:RootModel",
    "http.server:HTTPServer",
    "json.tool:main",
    "xml.dom.minidom:Document",
    "os:system",
    "subprocess:Popen",
    "colorsys:rgb_to_hls",
    "torch:Tensor",
    "numpy:ndarray",
    "psycopg:Connection",
    "transformers:AutoModel",
    "hooked:Model",
    "hooked:Outer.Inner",
    "classy:Model",
    "lazy_target:Model",
]


def test_reading_imports_nothing_even_through_hooks_and_lazy_modules(tmp_path: Path) -> None:
    (tmp_path / "hooked.py").write_text(HOOKED_MODULE)
    (tmp_path / "classy.py").write_text(CLASSY_MODULE)
    (tmp_path / "lazy_target.py").write_text(LAZY_TARGET)
    run = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path), json.dumps(IMPORT_BAIT)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.splitlines()[-1])
    assert report["imported"] == []
    assert report["outcomes"] == {}  # each was refused with a SerializationError
    assert report["hook_calls"] == []


def test_tether_messages_read_back_in_a_fresh_interpreter() -> None:
    script = textwrap.dedent(
        """
        import sys
        from tether.checkpoint._serde import loads
        text = '{"m": {"$t": "model", "cls": "tether.messages:AIMessage", "v": {"content": "hi"}}}'
        print(type(loads(text)["m"]).__name__)
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "AIMessage"


# --- properties: any JSON, any bytes ---

CLASS_NAMES = [
    f"{HERE}:Mood",
    f"{HERE}:Strict",
    f"{HERE}:Pair",
    f"{HERE}:Outer.Inner",
    f"{HERE}:Outer",
    "tether.messages:AIMessage",
    "tether.messages:RemoveMessage",
    "tether.checkpoint:PostgresSaver",
    "pydantic:BaseModel",
    "enum:Enum",
    "os:system",
    "builtins:object",
]
json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["2026-01-01", "2026-01-01T10:00:00+00:00", "10:00", "aGk=", "12", "-1e5", "calm", "inf"]),
)


def with_tags(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {"$t": st.one_of(st.sampled_from([*sorted(_DECODERS), "pickle", ""]), children)},
        optional={
            "v": st.one_of(children, st.lists(st.lists(children, max_size=3), max_size=3)),
            "cls": st.one_of(st.sampled_from(CLASS_NAMES), st.text(max_size=20), children),
        },
    )


json_values = st.recursive(
    json_leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=5), children, max_size=4),
        with_tags(children),
    ),
    max_leaves=25,
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_decoding_any_json_returns_or_raises_serialization_error(data: Any) -> None:
    with contextlib.suppress(SerializationError):
        decode(data)
    with contextlib.suppress(SerializationError):
        loads(orjson.dumps(data))


@settings(max_examples=300)
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200)))
def test_loading_any_bytes_or_text_returns_or_raises_serialization_error(text: bytes | str) -> None:
    with contextlib.suppress(SerializationError):
        loads(text)


@settings(max_examples=200)
@given(st.binary(max_size=40), st.integers(min_value=0, max_value=200))
def test_loading_damaged_stored_text_returns_or_raises_serialization_error(noise: bytes, at: int) -> None:
    stored = dumps(
        {"m": [Strict(n=1), Mood.CALM, Pair(1, 2), (1, 2), {1: b"x"}, frozenset({3})], "big": 2**70}
    ).encode()
    at = min(at, len(stored))
    with contextlib.suppress(SerializationError):
        loads(stored[:at] + noise + stored[at + len(noise) :])
