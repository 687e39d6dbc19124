"""Messages as LangChain's plain dicts, ``{"type": "human", "data": {...}}``, and back.

The shape is LangChain's (``messages_to_dict``) so that conversations move between the two:
LangChain's ``messages_from_dict`` reads what Tether writes, and Tether reads what LangChain
writes. (Checkpoints do not use this: they store messages as tagged JSON.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tether.messages._chunk import AIMessageChunk
from tether.messages._reducer import RemoveMessage
from tether.messages._types import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

__all__ = ["message_to_dict", "messages_from_dict", "messages_to_dict"]

_BY_TYPE: dict[str, type[BaseMessage]] = {
    "human": HumanMessage,
    "ai": AIMessage,
    "system": SystemMessage,
    "tool": ToolMessage,
    "chat": ChatMessage,
    "AIMessageChunk": AIMessageChunk,
}
_IGNORED = ("type", "example")  # the type is the outer key; "example" is a field LangChain dropped


def message_to_dict(message: BaseMessage) -> dict[str, Any]:
    """``{"type": message.type, "data": {...every field, and "type"...}}``."""
    return {"type": message.type, "data": {**message.model_dump(), "type": message.type}}


def messages_to_dict(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    return [message_to_dict(m) for m in messages]


def _from_dict(item: dict[str, Any]) -> BaseMessage | RemoveMessage:
    kind = item.get("type")
    data = {k: v for k, v in (item.get("data") or {}).items() if k not in _IGNORED}
    if kind == "remove":
        return RemoveMessage(id=data["id"])
    cls = _BY_TYPE.get(str(kind))
    if cls is None:
        raise ValueError(
            f"cannot read a message of type {kind!r}: Tether has {', '.join(sorted(_BY_TYPE))} and 'remove' "
            "(no FunctionMessage, and of the chunk types only AIMessageChunk)"
        )
    return cls(**data)


def messages_from_dict(messages: Sequence[dict[str, Any]]) -> list[BaseMessage | RemoveMessage]:
    """The messages that ``messages_to_dict`` (Tether's or LangChain's) wrote."""
    return [_from_dict(m) for m in messages]
