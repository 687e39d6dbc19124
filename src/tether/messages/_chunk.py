"""``AIMessageChunk``: a piece of a streamed reply, and ``+`` to put the pieces back together.

A chat model's ``stream()`` yields these. Adding chunks merges their contents and metadata
(``tether.messages._merge``), joins the tool-call fragments that share an ``index`` (names and
argument text arrive in pieces) and adds up ``usage_metadata``; after every addition the
fragments' argument text is parsed, as far as it goes, into ``tool_calls``.
"""

from __future__ import annotations

import bisect
import itertools
import json
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field, model_validator
from typing_extensions import TypedDict

from tether.checkpoint._serde import register_type
from tether.messages._merge import add_usage, merge_content, merge_dicts, merge_lists
from tether.messages._types import AIMessage, BaseMessage, InvalidToolCall, ToolCall, UsageMetadata

__all__ = ["AIMessageChunk", "ToolCallChunk", "as_chunk", "message_chunk_to_message", "parse_partial_json"]


class ToolCallChunk(TypedDict, total=False):
    """A fragment of a streamed tool call: fragments with the same ``index`` belong together."""

    name: str | None
    args: str | None
    id: str | None
    index: int | None
    type: Literal["tool_call_chunk"]


def parse_partial_json(text: str) -> Any:
    """The JSON value that ``text`` starts, with its open strings, lists and objects closed
    (``'{"city": "Os'`` gives ``{"city": "Os"}``); ``None`` when nothing of it parses."""
    try:
        return json.loads(text, strict=False)
    except json.JSONDecodeError:
        pass
    pieces: list[str] = []
    closers: list[str] = []
    in_string = escaped = False
    for char in text:
        piece = char
        if in_string:
            if char == '"' and not escaped:
                in_string = False
            elif char == "\n" and not escaped:
                piece = "\\n"
            else:
                escaped = char == "\\" and not escaped
        elif char == '"':
            in_string, escaped = True, False
        elif char in "{[":
            closers.append("}" if char == "{" else "]")
        elif char in "}]":
            if not closers or closers[-1] != char:
                return None  # closes what was never opened: not a prefix of any JSON
            closers.pop()
        pieces.append(piece)
    if in_string:
        if escaped:
            pieces.pop()  # a lone backslash escapes nothing yet
        pieces.append('"')
    tail = "".join(reversed(closers))
    ends = list(itertools.accumulate(map(len, pieces)))
    while pieces:
        try:
            return json.loads("".join(pieces) + tail, strict=False)
        except json.JSONDecodeError as exc:
            # a longer prefix still holds the piece the decoder stopped at: cut there at once
            cut = bisect.bisect_right(ends, exc.pos)
            cut = cut if cut < len(pieces) else len(pieces) - 1
            del pieces[cut:], ends[cut:]
    return None


def _calls_from_fragments(fragments: Sequence[ToolCallChunk]) -> tuple[list[ToolCall], list[InvalidToolCall]]:
    calls: list[ToolCall] = []
    invalid: list[InvalidToolCall] = []
    for fragment in fragments:
        raw = fragment.get("args")
        args = parse_partial_json(raw) if raw else {}
        if isinstance(args, dict):
            calls.append(ToolCall(name=fragment.get("name") or "", args=args, id=fragment.get("id"), type="tool_call"))
        else:
            invalid.append(
                InvalidToolCall(
                    name=fragment.get("name"), args=raw, id=fragment.get("id"), error=None, type="invalid_tool_call"
                )
            )
    return calls, invalid


def _fragment(name: Any, args: Any, id: Any, index: Any) -> ToolCallChunk:
    return ToolCallChunk(name=name, args=args, id=id, index=index, type="tool_call_chunk")


class AIMessageChunk(AIMessage):
    """A piece of a streamed AI reply; ``a + b`` (or ``a + [b, c]``) merges pieces in order.

    ``tool_call_chunks`` are the raw fragments; ``tool_calls`` (and ``invalid_tool_calls``, for
    arguments that are not a JSON object) are parsed from them. A chunk made with ``tool_calls``
    and no fragments gets one fragment per call, so whole calls survive addition too.
    """

    tool_call_chunks: list[ToolCallChunk] = Field(default_factory=list)
    chunk_position: Literal["last"] | None = None

    @property
    def type(self) -> str:
        return "AIMessageChunk"

    @model_validator(mode="before")
    @classmethod
    def _tool_calls_and_fragments_agree(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        fragments = data.get("tool_call_chunks")
        if fragments:
            fragments = [_fragment(f.get("name"), f.get("args"), f.get("id"), f.get("index")) for f in fragments]
            calls, invalid = _calls_from_fragments(fragments)
            return {**data, "tool_call_chunks": fragments, "tool_calls": calls, "invalid_tool_calls": invalid}
        made = [
            _fragment(call.get("name"), json.dumps(call.get("args", {})), call.get("id"), None)
            for call in data.get("tool_calls") or []
        ] + [
            _fragment(call.get("name"), call.get("args"), call.get("id"), None)
            for call in data.get("invalid_tool_calls") or []
        ]
        return {**data, "tool_call_chunks": made} if made else data

    def __add__(self, other: Any) -> AIMessageChunk:
        if isinstance(other, AIMessageChunk):
            return _add(self, [other])
        if isinstance(other, (list, tuple)) and all(isinstance(o, AIMessageChunk) for o in other):
            return _add(self, list(other))
        return NotImplemented


def _pick_id(ids: list[str | None]) -> str | None:
    """The first id a provider gave; failing that, a run id (``lc_run-…``), then any other."""
    given = [i for i in ids if i]
    return next(
        (i for i in given if not i.startswith("lc_")),
        next((i for i in given if i.startswith("lc_run-")), given[0] if given else None),
    )


def _add(left: AIMessageChunk, others: list[AIMessageChunk]) -> AIMessageChunk:
    fragments = merge_lists(left.tool_call_chunks, *(o.tool_call_chunks for o in others)) or []
    usage: UsageMetadata | None = left.usage_metadata
    if left.usage_metadata or any(o.usage_metadata is not None for o in others):
        for other in others:
            usage = add_usage(usage, other.usage_metadata)
    return type(left)(
        content=merge_content(left.content, *(o.content for o in others)),
        name=left.name,
        additional_kwargs=merge_dicts(left.additional_kwargs, *(o.additional_kwargs for o in others)),
        response_metadata=merge_dicts(left.response_metadata, *(o.response_metadata for o in others)),
        tool_call_chunks=[_fragment(f.get("name"), f.get("args"), f.get("id"), f.get("index")) for f in fragments],
        usage_metadata=usage,
        id=_pick_id([left.id, *(o.id for o in others)]),
        chunk_position="last" if any(c.chunk_position == "last" for c in [left, *others]) else None,
    )


def message_chunk_to_message(chunk: BaseMessage) -> BaseMessage:
    """The whole ``AIMessage`` an ``AIMessageChunk`` (usually a sum of them) stands for; any
    other message is returned as it is."""
    if not isinstance(chunk, AIMessageChunk):
        return chunk
    return AIMessage(**chunk.model_dump(exclude={"tool_call_chunks", "chunk_position"}))


def as_chunk(message: AIMessage) -> AIMessageChunk:
    """``message`` as a chunk (itself if it is one): what a model's ``stream()`` yields."""
    if isinstance(message, AIMessageChunk):
        return message
    return AIMessageChunk(**message.model_dump())


register_type(AIMessageChunk, name="tether.messages:AIMessageChunk")
