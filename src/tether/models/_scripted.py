"""``ScriptedChatModel``: a fake chat model whose replies are written in advance.

For tests and offline examples only. It never calls a network; it says so in its name.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from tether.messages import AIMessage, AIMessageChunk, BaseMessage, convert_to_messages
from tether.models._base import BaseChatModel, ChatModelError, ModelCallOptions

__all__ = ["ScriptedChatModel"]

Reply = str | AIMessage | dict[str, Any] | Callable[[list[BaseMessage]], Any]


class ScriptedChatModel(BaseChatModel):
    """Answers with ``replies`` in order: strings, ``AIMessage``s, ``{"content", "tool_calls"}``
    dicts, or functions of the conversation returning one of those.

    ``calls`` records every conversation it was given (and ``options`` the tools it was offered),
    so tests can check what a graph sent. With ``cycle=True`` the script repeats; otherwise running
    out of replies is an error that says how many were scripted.
    """

    model_name = "scripted"

    def __init__(self, replies: Sequence[Reply] = (), *, cycle: bool = False, name: str = "scripted") -> None:
        self.model_name = name
        # shared with the copies bind_tools() and with_structured_output() make: one script, one log
        self._script = _Script(list(replies), cycle)

    @property
    def calls(self) -> list[list[BaseMessage]]:
        return self._script.calls

    @property
    def seen_options(self) -> list[ModelCallOptions]:
        return self._script.options

    def _generate(self, messages: list[BaseMessage], options: ModelCallOptions) -> AIMessage:
        reply = self._script.next(messages, options)
        if callable(reply) and not isinstance(reply, (AIMessage, dict, str)):
            reply = reply(list(messages))
        return _as_ai_message(reply)

    def _stream(self, messages: list[BaseMessage], options: ModelCallOptions) -> Iterator[AIMessage]:
        reply = self._generate(messages, options)
        words = reply.text.split(" ")
        for i, word in enumerate(words):
            last = i == len(words) - 1
            yield AIMessageChunk(
                content=word + ("" if last else " "),
                id=reply.id,
                tool_calls=reply.tool_calls if last else [],
                usage_metadata=reply.usage_metadata if last else None,
            )


class _Script:
    def __init__(self, replies: list[Reply], cycle: bool) -> None:
        self.replies = replies
        self.cycle = cycle
        self.calls: list[list[BaseMessage]] = []
        self.options: list[ModelCallOptions] = []
        self.position = 0
        self.lock = threading.Lock()

    def next(self, messages: list[BaseMessage], options: ModelCallOptions) -> Reply:
        with self.lock:
            self.calls.append(list(messages))
            self.options.append(options)
            if self.position >= len(self.replies):
                if not self.cycle or not self.replies:
                    raise ChatModelError(
                        f"ScriptedChatModel ran out of replies: {len(self.replies)} were scripted and this is "
                        f"call {len(self.calls)}"
                    )
                self.position = 0
            reply = self.replies[self.position]
            self.position += 1
            return reply


def _as_ai_message(reply: Any) -> AIMessage:
    if isinstance(reply, AIMessage):
        return reply
    if isinstance(reply, str):
        return AIMessage(content=reply)
    if isinstance(reply, dict):
        (message,) = convert_to_messages({"role": "ai", **reply})
        assert isinstance(message, AIMessage)
        return message
    raise ChatModelError(f"a scripted reply must be a string, an AIMessage or a dict, got {type(reply).__name__}")
