"""add_messages and trim_messages agree with LangGraph / langchain-core on the same inputs."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core import messages as lc
from langgraph.graph.message import add_messages as lg_add_messages

from tether import messages as tm


def shape(messages: list[Any]) -> list[tuple[str, Any, Any]]:
    return [(m.type, m.content, getattr(m, "tool_calls", None) or None) for m in messages]


def convert(items: list[Any], lib: Any) -> list[Any]:
    out = []
    for role, text in items:
        cls = {"system": lib.SystemMessage, "human": lib.HumanMessage, "ai": lib.AIMessage}[role]
        out.append(cls(content=text, id=f"{role}-{text}"))
    return out


CONVERSATION = [
    ("system", "rules"),
    ("human", "a b c"),
    ("ai", "d e"),
    ("human", "f g h i"),
    ("ai", "j"),
    ("human", "k l m n o p"),
    ("ai", "q r s"),
]


@pytest.mark.parametrize("max_tokens", [0, 1, 3, 5, 8, 12, 30])
@pytest.mark.parametrize("strategy", ["last", "first"])
@pytest.mark.parametrize("include_system", [False, True])
@pytest.mark.parametrize("start_on", [None, "human"])
def test_trim_messages_matches_langchain(max_tokens: int, strategy: str, include_system: bool, start_on: Any) -> None:
    if strategy == "first" and (include_system or start_on):
        return  # langchain only allows these with strategy="last"

    def lc_words(msgs: list[Any]) -> int:
        return sum(len(str(m.content).split()) for m in msgs)

    kwargs = dict(max_tokens=max_tokens, strategy=strategy)
    if strategy == "last":
        kwargs |= dict(include_system=include_system, start_on=start_on)
    expected = lc.trim_messages(convert(CONVERSATION, lc), token_counter=lc_words, **kwargs)
    got = tm.trim_messages(convert(CONVERSATION, tm), token_counter=lc_words, **kwargs)
    assert shape(got) == shape(expected)


@pytest.mark.parametrize("max_tokens", [2, 4, 6])
def test_trim_counting_messages_with_len(max_tokens: int) -> None:
    expected = lc.trim_messages(convert(CONVERSATION, lc), max_tokens=max_tokens, token_counter=len)
    got = tm.trim_messages(convert(CONVERSATION, tm), max_tokens=max_tokens, token_counter=len)
    assert shape(got) == shape(expected)


def test_add_messages_matches_langgraph() -> None:
    steps: list[list[Any]] = [
        [("user", "hi"), ("assistant", "hello")],
        [{"role": "user", "content": "more", "id": "m3"}],
        [{"role": "assistant", "content": "edited", "id": "m3"}],
        "just text",
    ]
    ours: list[Any] = []
    theirs: list[Any] = []
    for step in steps:
        ours = tm.add_messages(ours, step)
        theirs = lg_add_messages(theirs, step)
        assert shape(ours) == shape(theirs)
    ours = tm.add_messages(ours, [tm.RemoveMessage(id="m3")])
    theirs = lg_add_messages(theirs, [lc.RemoveMessage(id="m3")])
    assert shape(ours) == shape(theirs)
