"""``add_messages``: the reducer that keeps a conversation, and ``RemoveMessage`` to cut it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from tether.checkpoint._serde import register_type
from tether.messages._chunk import message_chunk_to_message
from tether.messages._types import BaseMessage, MessageLike, convert_to_messages, new_message_id

__all__ = ["REMOVE_ALL_MESSAGES", "RemoveMessage", "add_messages"]

REMOVE_ALL_MESSAGES = "__remove_all__"


class RemoveMessage(BaseModel):
    """Written to a ``messages`` key, deletes the message with this ``id`` (or every message,
    with ``REMOVE_ALL_MESSAGES``; messages after it in the same update are kept)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str

    def __init__(self, id: str, **data: Any) -> None:
        super().__init__(id=id, **data)


def add_messages(
    left: MessageLike | Sequence[MessageLike] | None, right: MessageLike | Sequence[MessageLike] | None
) -> list[BaseMessage]:
    """Merge ``right`` into ``left``: append new messages, replace those whose ``id`` is already
    there, delete those named by ``RemoveMessage``. Messages without an id get one; a streamed
    ``AIMessageChunk`` is kept as the ``AIMessage`` it stands for."""
    current = _messages(left)
    incoming = _messages(right)
    last_remove_all = max((i for i, m in enumerate(incoming) if _is_remove_all(m)), default=None)
    if last_remove_all is not None:
        current, incoming = [], incoming[last_remove_all + 1 :]
    merged: dict[str, BaseMessage] = {}  # insertion-ordered: replacing an id keeps its place
    for message in current:
        message = _with_id(message)
        merged[message.id] = message  # type: ignore[index]
    for message in incoming:
        if isinstance(message, RemoveMessage):
            if message.id not in merged:
                raise ValueError(f"cannot remove message {message.id!r}: no message with that id in the conversation")
            del merged[message.id]
            continue
        message = _with_id(message)
        merged[message.id] = message  # type: ignore[index]
    return list(merged.values())


def _messages(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, RemoveMessage):
        return [value]
    if isinstance(value, (list, tuple)) and not (
        isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str)
    ):
        out: list[Any] = []
        for item in value:
            out += [item] if isinstance(item, RemoveMessage) else _whole(convert_to_messages(item))
        return out
    return _whole(convert_to_messages(value))


def _whole(messages: list[BaseMessage]) -> list[BaseMessage]:
    return [message_chunk_to_message(m) for m in messages]


def _with_id(message: BaseMessage) -> BaseMessage:
    return message if message.id is not None else message.model_copy(update={"id": new_message_id()})


def _is_remove_all(message: Any) -> bool:
    return isinstance(message, RemoveMessage) and message.id == REMOVE_ALL_MESSAGES


register_type(RemoveMessage, name="tether.messages:RemoveMessage")


def _prepare(value: Any) -> list[Any]:
    """Messages (with ids) and RemoveMessages, from whatever a node wrote: done once, at write
    time, so the stored write carries the ids and replaying it is deterministic."""
    return [m if isinstance(m, RemoveMessage) else _with_id(m) for m in _messages(value)]


add_messages.prepare = _prepare  # type: ignore[attr-defined]
