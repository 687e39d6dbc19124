"""Summarising memory: past a token budget, older messages give way to one summary message.

``summarize_messages`` returns the update for a ``messages`` key kept by ``add_messages``:
``RemoveMessage(REMOVE_ALL_MESSAGES)``, then the leading system message, the summary and the
newest messages. The stored conversation (and what the model is sent) stays bounded, while
the thread's earlier checkpoints still hold every original message (``get_state_history``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from tether.messages._reducer import REMOVE_ALL_MESSAGES, RemoveMessage
from tether.messages._trim import _counter, count_tokens_approximately
from tether.messages._types import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    MessageLike,
    SystemMessage,
    ToolMessage,
    convert_to_messages,
    message_text,
)

__all__ = [
    "DEFAULT_SUMMARY_PROMPT",
    "SUMMARY_ID_PREFIX",
    "SUMMARY_PREFIX",
    "SummarizationNode",
    "is_summary",
    "summarize_messages",
]

SUMMARY_ID_PREFIX = "summary-"
"""Summary messages get ids starting with this, so a later summary can fold the earlier one in."""

SUMMARY_PREFIX = "Summary of the conversation so far:\n"

DEFAULT_SUMMARY_PROMPT = (
    "You keep the memory of a conversation between a user and an assistant. Write a concise summary of the "
    "conversation below for the assistant to read instead of it: keep names, facts, numbers, decisions, what "
    "tools returned, and anything still open. If it starts with an earlier summary, fold that in. "
    "Answer with the summary only."
)


def is_summary(message: BaseMessage) -> bool:
    """Whether ``message`` is a summary written by ``summarize_messages``."""
    return isinstance(message, SystemMessage) and (message.id or "").startswith(SUMMARY_ID_PREFIX)


def _transcript(previous: list[BaseMessage], messages: list[BaseMessage]) -> str:
    lines = [f"(earlier summary) {message_text(m).removeprefix(SUMMARY_PREFIX)}" for m in previous]
    for message in messages:
        text = message_text(message)
        if isinstance(message, AIMessage) and message.tool_calls:
            calls = ", ".join(
                f"{c.get('name')}({json.dumps(c.get('args', {}), sort_keys=True)})" for c in message.tool_calls
            )
            text = f"{text} [called {calls}]".strip()
        if isinstance(message, ToolMessage):
            lines.append(f"tool {message.name or ''} result: {text}")
        else:
            lines.append(f"{message.role}: {text}")
    return "\n".join(lines)


def _cut(body: list[BaseMessage], keep_last: int) -> int:
    """Index where the kept messages start: ``keep_last`` from the end, moved back so that no tool
    result is kept without the AIMessage that called it (chat APIs reject such a conversation)."""
    cut = max(0, len(body) - keep_last)
    while 0 < cut < len(body) and isinstance(body[cut], ToolMessage):
        cut -= 1
    return cut


def summarize_messages(
    messages: Sequence[MessageLike],
    model: Any,
    *,
    max_tokens: int,
    keep_last: int = 6,
    token_counter: Callable[[list[BaseMessage]], int] | Any = count_tokens_approximately,
    summary_prompt: str = DEFAULT_SUMMARY_PROMPT,
) -> list[BaseMessage | RemoveMessage]:
    """The update that summarises ``messages`` once they exceed ``max_tokens``, else ``[]``.

    The newest ``keep_last`` messages are kept as they are (a few more when the cut would
    separate a tool result from its call); a leading system message is kept; everything else,
    including an earlier summary, is summarised by ``model`` into one system message.
    """
    if max_tokens < 0:
        raise ValueError(f"max_tokens must be >= 0, got {max_tokens}")
    if keep_last < 0:
        raise ValueError(f"keep_last must be >= 0, got {keep_last}")
    items = convert_to_messages(list(messages)) if messages else []
    count = _counter(token_counter)
    if not items or count(items) <= max_tokens:
        return []
    head: list[BaseMessage] = []
    if isinstance(items[0], SystemMessage) and not is_summary(items[0]):
        head, items = items[:1], items[1:]
    previous = [m for m in items if is_summary(m)]
    body = [m for m in items if not is_summary(m)]
    cut = _cut(body, keep_last)
    if cut == 0:
        return []  # nothing old enough to summarise without splitting what must stay together
    reply = model.invoke(
        [SystemMessage(content=summary_prompt), HumanMessage(content=_transcript(previous, body[:cut]))]
    )
    summary = SystemMessage(
        content=SUMMARY_PREFIX + message_text(reply).strip(), id=f"{SUMMARY_ID_PREFIX}{uuid.uuid4().hex}"
    )
    return [RemoveMessage(id=REMOVE_ALL_MESSAGES), *head, summary, *body[cut:]]


class SummarizationNode:
    """A graph node that keeps ``state[messages_key]`` within ``max_tokens`` by summarising.

    ``graph.add_node("summarize", SummarizationNode(model, max_tokens=2000, keep_last=6))``;
    it returns no update while the conversation fits.
    """

    def __init__(
        self,
        model: Any,
        *,
        max_tokens: int,
        keep_last: int = 6,
        token_counter: Callable[[list[BaseMessage]], int] | Any = count_tokens_approximately,
        summary_prompt: str = DEFAULT_SUMMARY_PROMPT,
        messages_key: str = "messages",
        name: str = "summarize",
    ) -> None:
        self.model = model
        self.max_tokens = max_tokens
        self.keep_last = keep_last
        self.token_counter = token_counter
        self.summary_prompt = summary_prompt
        self.messages_key = messages_key
        self.__name__ = name  # add_node(SummarizationNode(...)) names the node after it

    def __call__(self, state: Any) -> dict[str, Any]:
        messages = state.get(self.messages_key) if isinstance(state, dict) else getattr(state, self.messages_key)
        update = summarize_messages(
            messages or [],
            self.model,
            max_tokens=self.max_tokens,
            keep_last=self.keep_last,
            token_counter=self.token_counter,
            summary_prompt=self.summary_prompt,
        )
        return {self.messages_key: update} if update else {}
