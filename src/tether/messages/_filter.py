"""``filter_messages``: the messages of a conversation chosen by name, type, id or tool call."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

from tether.messages._types import AIMessage, BaseMessage, MessageLike, ToolMessage, convert_to_messages

__all__ = ["filter_messages"]

MessageKind = str | type[BaseMessage]


def _is_kind(message: BaseMessage, kinds: Sequence[MessageKind]) -> bool:
    """``kinds`` holds type names (``"human"``, ``"ai"``, ``"chat"``…) and message classes."""
    classes = tuple(k for k in kinds if isinstance(k, type))
    return message.type in [k for k in kinds if isinstance(k, str)] or isinstance(message, classes)


def _is_use_of(block: dict[str, Any], call_ids: Collection[str]) -> bool:
    return block.get("type") == "tool_use" and block.get("id") in call_ids


def filter_messages(
    messages: Iterable[MessageLike],
    *,
    include_names: Sequence[str] | None = None,
    exclude_names: Sequence[str] | None = None,
    include_types: Sequence[MessageKind] | None = None,
    exclude_types: Sequence[MessageKind] | None = None,
    include_ids: Sequence[str] | None = None,
    exclude_ids: Sequence[str] | None = None,
    exclude_tool_calls: Sequence[str] | bool | None = None,
) -> list[BaseMessage]:
    """The messages that match none of the ``exclude_*`` criteria and, when any ``include_*``
    is given, at least one of those.

    ``exclude_tool_calls=True`` drops every ``ToolMessage`` and every ``AIMessage`` that calls a
    tool; a collection of tool-call ids drops those results, and those calls from their
    ``AIMessage`` (with their ``tool_use`` content blocks; the message goes when no call is left).
    """
    included = include_names or include_types or include_ids
    drop_calls = exclude_tool_calls if isinstance(exclude_tool_calls, (list, tuple, set, frozenset)) else None
    kept: list[BaseMessage] = []
    for message in convert_to_messages(list(messages)):
        if (
            (exclude_names and message.name in exclude_names)
            or (exclude_types and _is_kind(message, exclude_types))
            or (exclude_ids and message.id in exclude_ids)
        ):
            continue
        if exclude_tool_calls is True and (
            isinstance(message, ToolMessage) or (isinstance(message, AIMessage) and message.tool_calls)
        ):
            continue
        if drop_calls is not None:
            if isinstance(message, ToolMessage) and message.tool_call_id in drop_calls:
                continue
            if isinstance(message, AIMessage) and message.tool_calls:
                calls = [call for call in message.tool_calls if call.get("id") not in drop_calls]
                if not calls:
                    continue
                content = message.content
                if isinstance(content, list):  # Anthropic-style blocks name the calls too
                    content = [b for b in content if not (isinstance(b, dict) and _is_use_of(b, drop_calls))]
                message = message.model_copy(update={"tool_calls": calls, "content": content})
        if (
            not included
            or (include_names and message.name in include_names)
            or (include_types and _is_kind(message, include_types))
            or (include_ids and message.id in include_ids)
        ):
            kept.append(message)
    return kept
