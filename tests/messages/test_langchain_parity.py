"""LangChain's message utilities and Tether's give the same results on the same conversations.

Hypothesis draws conversations as plain specs; each spec is built once with ``langchain_core.messages``
and once with ``tether.messages``, both libraries' functions run, and the results are compared
field by field (type, content, id, name, tool calls, tool-call id, role, usage).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core import messages as lc

from tether import messages as tm
from tether.checkpoint._serde import dumps, loads

IDS = ["m1", "m2", "m3", "lc_run-9", "lc_auto"]
NAMES = ["ann", "bob"]
CALL_IDS = ["t1", "t2", "t3"]
KINDS = ["human", "ai", "system", "tool", "chat"]

words = st.text(alphabet="ab \n", max_size=6)
blocks = st.lists(st.one_of(words, words.map(lambda t: {"type": "text", "text": t})), min_size=1, max_size=3)
contents = st.one_of(words, words, blocks)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-50, 50), st.text(alphabet='ab"\\\n {}', max_size=5)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("xyz"), inner, max_size=3),
    max_leaves=6,
)
call_args = st.dictionaries(st.sampled_from(["q", "n", "deep"]), json_values, max_size=3)
usages = st.one_of(
    st.none(),
    st.tuples(st.integers(0, 9), st.integers(0, 9)).map(
        lambda io: {"input_tokens": io[0], "output_tokens": io[1], "total_tokens": sum(io)}
    ),
)
extras = st.one_of(
    st.just({}), st.fixed_dictionaries({"reasoning": words}), st.fixed_dictionaries({"n": st.integers(0, 3)})
)


@st.composite
def message_specs(draw: st.DrawFn, kinds: list[str] = KINDS) -> dict[str, Any]:
    kind = draw(st.sampled_from(kinds))
    spec: dict[str, Any] = {
        "kind": kind,
        "content": draw(contents),
        "id": draw(st.none() | st.sampled_from(IDS)),
        "name": draw(st.none() | st.sampled_from(NAMES)),
        "additional_kwargs": draw(extras),
    }
    if kind == "ai":
        calls = draw(st.lists(st.tuples(st.sampled_from(["search", "add"]), call_args, st.sampled_from(CALL_IDS))))
        spec["tool_calls"] = [{"name": n, "args": a, "id": i, "type": "tool_call"} for n, a, i in calls]
        spec["usage_metadata"] = draw(usages)
    elif kind == "tool":
        spec["tool_call_id"] = draw(st.sampled_from(CALL_IDS))
    elif kind == "chat":
        spec["role"] = "critic"
    return spec


conversations = st.lists(message_specs(), max_size=8)


def build(spec: dict[str, Any], lib: Any) -> Any:
    fields = {k: v for k, v in spec.items() if k != "kind"}
    cls = {
        "human": lib.HumanMessage,
        "ai": lib.AIMessage,
        "system": lib.SystemMessage,
        "tool": lib.ToolMessage,
        "chat": lib.ChatMessage,
    }[spec["kind"]]
    return cls(**json.loads(json.dumps(fields)))  # a fresh copy each time: no shared lists between the two


def shape(message: Any) -> dict[str, Any]:
    return {
        "class": type(message).__name__,
        "type": message.type,
        "content": message.content,
        "id": message.id,
        "name": message.name,
        "additional_kwargs": message.additional_kwargs,
        "tool_calls": [(c["name"], c["args"], c["id"]) for c in getattr(message, "tool_calls", [])],
        "invalid_tool_calls": getattr(message, "invalid_tool_calls", []),
        "tool_call_id": getattr(message, "tool_call_id", None),
        "role": getattr(message, "role", None) if message.type == "chat" else None,
        "usage": getattr(message, "usage_metadata", None),
    }


def both(specs: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    return [build(s, lc) for s in specs], [build(s, tm) for s in specs]


# -- filter_messages ------------------------------------------------------------------------

pool_subsets = {
    "names": st.none() | st.lists(st.sampled_from(NAMES), max_size=2),
    "types": st.none() | st.lists(st.sampled_from(KINDS), max_size=3),
    "ids": st.none() | st.lists(st.sampled_from(IDS), max_size=3),
}


@settings(max_examples=300)
@given(
    conversation=conversations,
    include_names=pool_subsets["names"],
    exclude_names=pool_subsets["names"],
    include_types=pool_subsets["types"],
    exclude_types=pool_subsets["types"],
    include_ids=pool_subsets["ids"],
    exclude_ids=pool_subsets["ids"],
    exclude_tool_calls=st.none() | st.booleans() | st.lists(st.sampled_from(CALL_IDS), max_size=2),
    types_as_classes=st.booleans(),
)
def test_filter_messages_matches_langchain(
    conversation: list[dict[str, Any]], types_as_classes: bool, **criteria: Any
) -> None:
    theirs, ours = both(conversation)

    def for_lib(lib: Any) -> dict[str, Any]:
        out = dict(criteria)
        if types_as_classes:  # classes instead of names: same answer
            classes = {"human": "HumanMessage", "ai": "AIMessage", "system": "SystemMessage"}
            for key in ("include_types", "exclude_types"):
                if out[key]:
                    out[key] = [getattr(lib, classes[t]) if t in classes else t for t in out[key]]
        return out

    expected = lc.filter_messages(theirs, **for_lib(lc))
    got = tm.filter_messages(ours, **for_lib(tm))
    assert [shape(m) for m in got] == [shape(m) for m in expected]


def test_filter_messages_drops_the_excluded_tool_use_blocks() -> None:
    content = [{"type": "text", "text": "two calls"}, {"type": "tool_use", "id": "t1", "name": "a", "input": {}}]
    calls = [{"name": "a", "args": {}, "id": "t1"}, {"name": "b", "args": {}, "id": "t2"}]
    expected = lc.filter_messages([lc.AIMessage(content, tool_calls=calls)], exclude_tool_calls=["t1"])
    got = tm.filter_messages([tm.AIMessage(content, tool_calls=calls)], exclude_tool_calls=["t1"])
    assert [shape(m) for m in got] == [shape(m) for m in expected]
    assert got[0].content == [{"type": "text", "text": "two calls"}]


# -- merge_message_runs -----------------------------------------------------------------------


@settings(max_examples=300)
@given(conversation=conversations, separator=st.sampled_from(["\n", "", " | "]))
def test_merge_message_runs_matches_langchain(conversation: list[dict[str, Any]], separator: str) -> None:
    theirs, ours = both(conversation)
    expected = lc.merge_message_runs(theirs, chunk_separator=separator)
    got = tm.merge_message_runs(ours, chunk_separator=separator)
    assert len(got) == len(expected)
    for mine, their in zip(got, expected, strict=True):
        # kept difference: LangChain drops the name of a merged message, Tether keeps the first one's
        assert mine.name == their.name or their.name is None
        assert {**shape(mine), "name": None} == {**shape(their), "name": None}


def test_merge_message_runs_keeps_the_first_name_and_separates_roles() -> None:
    merged = tm.merge_message_runs([tm.HumanMessage("a", name="ann"), tm.HumanMessage("b", name="ann")])
    assert [(m.content, m.name) for m in merged] == [("a\nb", "ann")]
    # LangChain raises ValueError on two chat roles in a row; Tether keeps them apart
    roles = tm.merge_message_runs([tm.ChatMessage("x", role="critic"), tm.ChatMessage("y", role="judge")])
    assert [(m.role, m.content) for m in roles] == [("critic", "x"), ("judge", "y")]  # type: ignore[attr-defined]


def test_merge_message_runs_of_chunks_gives_messages() -> None:
    theirs = lc.merge_message_runs([lc.AIMessage("a"), lc.AIMessageChunk("b"), lc.AIMessage("c")])
    ours = tm.merge_message_runs([tm.AIMessage("a"), tm.AIMessageChunk("b"), tm.AIMessage("c")])
    assert [shape(m) for m in ours] == [shape(m) for m in theirs]


# -- get_buffer_string ------------------------------------------------------------------------


@settings(max_examples=200)
@given(
    conversation=conversations,
    human=st.sampled_from(["Human", "User"]),
    ai=st.sampled_from(["AI", "Bot"]),
    separator=st.sampled_from(["\n", "\n\n"]),
)
def test_get_buffer_string_matches_langchain(
    conversation: list[dict[str, Any]], human: str, ai: str, separator: str
) -> None:
    theirs, ours = both(conversation)
    expected = lc.get_buffer_string(theirs, human, ai, system_prefix="Sys", message_separator=separator)
    assert tm.get_buffer_string(ours, human, ai, system_prefix="Sys", message_separator=separator) == expected


def test_get_buffer_string_says_which_formats_it_has() -> None:
    with pytest.raises(ValueError, match="format='prefix' only"):
        tm.get_buffer_string([tm.HumanMessage("hi")], format="xml")  # type: ignore[arg-type]


# -- messages_to_dict / messages_from_dict --------------------------------------------------------


@settings(max_examples=200)
@given(conversation=conversations)
def test_message_dicts_are_langchains_and_move_both_ways(conversation: list[dict[str, Any]]) -> None:
    theirs, ours = both(conversation)
    assert tm.messages_to_dict(ours) == lc.messages_to_dict(theirs)  # the very same dicts
    from_theirs = tm.messages_from_dict(lc.messages_to_dict(theirs))
    assert [shape(m) for m in from_theirs] == [shape(m) for m in ours]
    from_ours = lc.messages_from_dict(tm.messages_to_dict(ours))
    assert [shape(m) for m in from_ours] == [shape(m) for m in theirs]
    assert [tm.message_to_dict(m) for m in ours] == tm.messages_to_dict(ours)


def test_message_dicts_of_chunks_and_removals() -> None:
    chunk_lc = lc.AIMessageChunk("x", tool_call_chunks=[{"name": "f", "args": '{"a": 1}', "id": "c", "index": 0}])
    chunk_tm = tm.AIMessageChunk("x", tool_call_chunks=[{"name": "f", "args": '{"a": 1}', "id": "c", "index": 0}])
    assert tm.message_to_dict(chunk_tm) == lc.message_to_dict(chunk_lc)
    (back,) = tm.messages_from_dict([lc.message_to_dict(chunk_lc)])
    assert isinstance(back, tm.AIMessageChunk) and back.tool_calls == chunk_tm.tool_calls
    (removal,) = tm.messages_from_dict(lc.messages_to_dict([lc.RemoveMessage(id="m1")]))
    assert removal == tm.RemoveMessage(id="m1")
    with pytest.raises(ValueError, match="FunctionMessage"):
        tm.messages_from_dict(lc.messages_to_dict([lc.FunctionMessage("r", name="f")]))


@given(conversation=conversations)
def test_new_message_types_round_trip_through_storage(conversation: list[dict[str, Any]]) -> None:
    ours = [build(s, tm) for s in conversation] + [tm.AIMessageChunk("part", id="c1", chunk_position="last")]
    assert loads(dumps(ours)) == ours


# -- AIMessageChunk addition --------------------------------------------------------------------


@st.composite
def streams(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Chunk specs for a streamed reply: text pieces, and tool calls whose JSON arguments arrive
    cut at random places, fragments of different calls interleaved; usage on some chunks."""
    calls = draw(st.lists(call_args, max_size=3))
    fragments: list[dict[str, Any]] = []
    for index, args in enumerate(calls):
        text = json.dumps(args)
        cuts = sorted(draw(st.sets(st.integers(1, max(1, len(text) - 1)), max_size=4)))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        for n, piece in enumerate(pieces):
            first = n == 0
            fragments.append(
                {"name": f"tool{index}" if first else None, "args": piece, "id": f"call{index}" if first else None}
                | {"index": index}
            )
    # interleave the calls, each call's own fragments staying in order
    queues = {i: [f for f in fragments if f["index"] == i] for i in range(len(calls))}
    chunk_specs: list[dict[str, Any]] = []
    for picked in draw(st.permutations(fragments)):
        fragment = queues[picked["index"]].pop(0)
        chunk_specs.append({"content": draw(words), "tool_call_chunks": [fragment]})
    chunk_specs += draw(st.lists(st.fixed_dictionaries({"content": words}), min_size=1, max_size=3))
    for spec in chunk_specs:
        spec["id"] = draw(st.none() | st.sampled_from(["lc_run-1", "lc_x", "chatcmpl-7"]))
        spec["usage_metadata"] = draw(usages)
        spec["additional_kwargs"] = draw(extras.filter(lambda e: "n" not in e))
    chunk_specs[-1]["response_metadata"] = {"finish_reason": "stop"}
    return chunk_specs


def chunk_shape(chunk: Any) -> dict[str, Any]:
    return {
        **shape(chunk),
        "tool_call_chunks": chunk.tool_call_chunks,
        "response_metadata": chunk.response_metadata,
        "chunk_position": chunk.chunk_position,
    }


@settings(max_examples=300)
@given(specs=streams())
def test_adding_chunks_matches_langchain(specs: list[dict[str, Any]]) -> None:
    theirs = [lc.AIMessageChunk(**json.loads(json.dumps(s))) for s in specs]
    ours = [tm.AIMessageChunk(**json.loads(json.dumps(s))) for s in specs]
    assert [chunk_shape(c) for c in ours] == [chunk_shape(c) for c in theirs]
    their_sum, our_sum = theirs[0], ours[0]
    for their, our in zip(theirs[1:], ours[1:], strict=True):
        their_sum, our_sum = their_sum + their, our_sum + our
        assert chunk_shape(our_sum) == chunk_shape(their_sum)  # partial arguments parse alike on the way
    assert chunk_shape(ours[0] + ours[1:]) == chunk_shape(theirs[0] + theirs[1:])
    whole = tm.message_chunk_to_message(our_sum)
    assert shape(whole) == shape(lc.message_chunk_to_message(their_sum))
    assert type(whole) is tm.AIMessage


@given(text=st.text(alphabet='{}[]":,ab1 \\\n-.etruf', max_size=12))
def test_partial_json_parses_as_langchain_does(text: str) -> None:
    theirs = lc.AIMessageChunk("", tool_call_chunks=[{"name": "f", "args": text, "id": "c", "index": 0}])
    ours = tm.AIMessageChunk("", tool_call_chunks=[{"name": "f", "args": text, "id": "c", "index": 0}])
    assert shape(ours) == shape(theirs)


def test_chunks_made_from_whole_tool_calls_add_up() -> None:
    calls = [{"name": "a", "args": {"x": 1}, "id": "t1"}]
    theirs = lc.AIMessageChunk("hi ", tool_calls=calls) + lc.AIMessageChunk("there", tool_calls=calls)
    ours = tm.AIMessageChunk("hi ", tool_calls=calls) + tm.AIMessageChunk("there", tool_calls=calls)
    assert chunk_shape(ours) == chunk_shape(theirs)
    with pytest.raises(TypeError):
        tm.AIMessageChunk("a") + tm.AIMessage("b")  # type: ignore[operator]


def test_a_models_stream_adds_up_to_its_reply() -> None:
    from tether.models import ScriptedChatModel

    reply = tm.AIMessage("three word answer", tool_calls=[{"name": "f", "args": {"q": 1}, "id": "t1"}])
    chunks = list(ScriptedChatModel([reply]).stream("hi"))
    assert all(isinstance(c, tm.AIMessageChunk) for c in chunks) and len(chunks) == 3
    total = chunks[0] + chunks[1:]
    assert (total.text, total.tool_calls[0]["args"], total.type) == ("three word answer", {"q": 1}, "AIMessageChunk")
    assert tm.add_messages([], [total])[0].type == "ai"  # kept as the whole message, as in LangGraph


def test_chat_message_and_chunk_print_as_in_langchain() -> None:
    assert tm.ChatMessage("x", role="critic").pretty_repr() == lc.ChatMessage("x", role="critic").pretty_repr()
    assert tm.AIMessageChunk("x").pretty_repr() == lc.AIMessageChunk("x").pretty_repr()
    assert tm.get_buffer_string([tm.ChatMessage("x", role="critic")]) == "critic: x"


def test_chat_messages_go_to_chat_apis_with_their_role() -> None:
    from tether.models._ollama import _to_wire as to_ollama
    from tether.models._openai import _to_wire as to_openai

    expected = lc.convert_to_openai_messages([lc.ChatMessage("too vague", role="critic")])
    assert [to_openai(tm.ChatMessage("too vague", role="critic"))] == expected
    assert to_ollama([tm.ChatMessage("too vague", role="critic")]) == expected


MIRRORED = [
    "AIMessage",
    "AIMessageChunk",
    "AnyMessage",
    "BaseMessage",
    "ChatMessage",
    "HumanMessage",
    "InvalidToolCall",
    "RemoveMessage",
    "SystemMessage",
    "ToolCall",
    "ToolCallChunk",
    "ToolMessage",
    "UsageMetadata",
    "convert_to_messages",
    "filter_messages",
    "get_buffer_string",
    "merge_content",
    "merge_message_runs",
    "message_chunk_to_message",
    "message_to_dict",
    "messages_from_dict",
    "messages_to_dict",
    "trim_messages",
]


@pytest.mark.parametrize("name", MIRRORED)
def test_the_commonly_used_names_exist_on_both_sides(name: str) -> None:
    assert name in lc.__all__ and name in tm.__all__


indexed_blocks = st.fixed_dictionaries({"type": st.just("text"), "text": words, "index": st.integers(0, 2)})
stream_contents = st.one_of(words, st.lists(st.one_of(words, indexed_blocks), max_size=3))


@given(parts=st.lists(stream_contents, min_size=1, max_size=5))
def test_merge_content_matches_langchain(parts: list[Any]) -> None:
    copy = json.loads(json.dumps(parts))
    assert tm.merge_content(*parts) == lc.merge_content(*copy)
    assert parts == copy  # neither side changed its inputs
