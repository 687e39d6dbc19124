from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import math
import uuid
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from tether.checkpoint import register_type
from tether.checkpoint._serde import dumps, loads
from tether.errors import SerializationError


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Draft(BaseModel):
    title: str
    tags: list[str] = []
    when: dt.datetime | None = None


@register_type
@dataclasses.dataclass
class Point:
    x: int
    y: tuple[int, int]


@dataclasses.dataclass
class Unregistered:
    x: int


json_scalars = st.one_of(
    st.none(), st.booleans(), st.text(), st.integers(), st.floats(allow_nan=True, allow_infinity=True)
)
tagged_scalars = st.one_of(
    json_scalars,
    st.binary(),
    st.uuids(),
    st.datetimes(timezones=st.sampled_from([None, dt.UTC])),
    st.dates(),
    st.decimals(allow_nan=False),
    st.sampled_from(list(Color)),
    st.integers(min_value=2**64, max_value=2**80),
)
values = st.recursive(
    tagged_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(st.text(max_size=5), children, max_size=4),
        st.dictionaries(st.integers(), children, max_size=3),
        st.frozensets(st.integers(), max_size=3),
    ),
    max_leaves=20,
)


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return type(b) is dict and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@given(values)
def test_round_trip_preserves_value_and_type(value: Any) -> None:
    assert same(loads(dumps(value)), value)


@given(st.dictionaries(st.text(), st.text()))
def test_plain_json_is_stored_as_itself(value: dict[str, str]) -> None:
    if "$t" in value:
        return
    assert orjson.loads(dumps(value)) == value


def test_models_enums_and_registered_dataclasses() -> None:
    draft = Draft(title="t", tags=["a"], when=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    data = {"draft": draft, "color": Color.RED, "point": Point(1, (2, 3)), "id": uuid.UUID(int=5)}
    back = loads(dumps(data))
    assert back == data
    assert isinstance(back["draft"].when, dt.datetime)
    assert back["point"].y == (2, 3)


def test_a_dict_using_the_tag_key_is_escaped() -> None:
    value = {"$t": "bytes", "v": "not really"}
    assert loads(dumps(value)) == value


def test_unknown_type_is_a_clear_error() -> None:
    with pytest.raises(SerializationError, match=r"Unregistered.*register_type"):
        dumps({"x": Unregistered(1)})
    with pytest.raises(SerializationError, match="object"):
        dumps(object())


def test_reading_never_imports_modules() -> None:
    text = '{"$t": "model", "cls": "some_module_that_is_not_imported:Evil", "v": {}}'
    with pytest.raises(SerializationError, match="not available"):
        loads(text)
    text = '{"$t": "model", "cls": "os:system", "v": {}}'
    with pytest.raises(SerializationError):
        loads(text)


def test_unknown_tag_and_bad_json_are_clear_errors() -> None:
    with pytest.raises(SerializationError, match="unknown type tag"):
        loads('{"$t": "pickle", "v": "gASV"}')
    with pytest.raises(SerializationError, match="not valid JSON"):
        loads("{oops")


def test_decimal_and_timedelta_keep_exact_values() -> None:
    value = [decimal.Decimal("1.10"), dt.timedelta(days=2, seconds=3, microseconds=4)]
    assert loads(dumps(value)) == value
    assert str(loads(dumps(decimal.Decimal("1.10")))) == "1.10"


def test_tethers_own_stored_names_are_the_fixed_table_reading_may_import() -> None:
    import tether.messages  # noqa: F401  (registers Tether's stored message types)
    from tether.checkpoint import _serde

    own = {name for name in _serde._registered if name.startswith("tether.")}
    assert own == set(_serde._TETHER_TYPES), "a Tether type registers itself: add it to _serde._TETHER_TYPES"
    assert set(_serde._TETHER_TYPES.values()) == {"tether.messages"}


class Drafts:
    class Note(BaseModel):
        text: str

    class Kind(enum.Enum):
        SHORT = 1


def test_unregistered_models_and_enums_nested_in_classes_read_back() -> None:
    value = [Drafts.Note(text="n"), Drafts.Kind.SHORT, Draft(title="x")]
    assert loads(dumps(value)) == value


def test_ints_up_to_4300_digits_round_trip() -> None:
    for value in (2**64, -(2**64), 10**4299, -(10**4299), 2**14_284 - 1):
        assert loads(dumps(value)) == value
    with pytest.raises(SerializationError, match="4300 digits"):
        dumps(2**14_285)
