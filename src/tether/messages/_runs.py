"""``merge_message_runs``: consecutive messages of the same type become one.

Some chat APIs refuse two user (or two assistant) messages in a row; this folds each run into
its first message: texts joined by ``chunk_separator``, block lists concatenated, tool calls
and usage added up. Tool results are never merged: each answers its own call.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tether.messages._chunk import AIMessageChunk, _pick_id
from tether.messages._merge import add_usage, merge_content, merge_dicts
from tether.messages._types import AIMessage, BaseMessage, ChatMessage, MessageLike, ToolMessage, convert_to_messages

__all__ = ["merge_message_runs"]


def merge_message_runs(messages: Iterable[MessageLike], *, chunk_separator: str = "\n") -> list[BaseMessage]:
    """The conversation with each run of same-type messages merged into one (see the module
    docstring). The merged message keeps the first one's id (for AI messages, the first id a
    provider gave) and name, and its ``response_metadata``."""
    merged: list[BaseMessage] = []
    for message in convert_to_messages(list(messages)) if messages else []:
        last = merged[-1] if merged else None
        if (
            last is None
            or isinstance(message, ToolMessage)
            or not isinstance(message, type(last))
            or (isinstance(last, ChatMessage) and isinstance(message, ChatMessage) and last.role != message.role)
        ):
            merged.append(message)
        else:
            merged[-1] = _join(last, message, chunk_separator)
    return merged


def _join(first: BaseMessage, second: BaseMessage, separator: str) -> BaseMessage:
    head = first.content
    if isinstance(head, str) and isinstance(second.content, str) and head and second.content:
        head += separator
    fields: dict[str, Any] = {
        "content": merge_content(head, second.content),
        "id": first.id,
        "name": first.name,
        "additional_kwargs": merge_dicts(first.additional_kwargs, second.additional_kwargs),
        "response_metadata": dict(first.response_metadata),
    }
    if isinstance(first, AIMessage) and isinstance(second, AIMessage):
        usage = first.usage_metadata
        if usage or second.usage_metadata is not None:
            usage = add_usage(usage, second.usage_metadata)
        fields |= {
            "id": _pick_id([first.id, second.id]),
            "tool_calls": [*first.tool_calls, *second.tool_calls],
            "invalid_tool_calls": [*first.invalid_tool_calls, *second.invalid_tool_calls],
            "usage_metadata": usage,
        }
    if isinstance(first, ChatMessage):
        fields["role"] = first.role
    cls = AIMessage if isinstance(first, AIMessageChunk) else type(first)
    return cls(**fields)
