"""``trim_messages``: keep a conversation within a token budget."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from tether.messages._types import (
    BaseMessage,
    MessageLike,
    SystemMessage,
    ToolMessage,
    convert_to_messages,
    message_text,
)

__all__ = ["count_tokens_approximately", "tokenizer_counter", "trim_messages"]

TokenCounter = Callable[[list[BaseMessage]], int]


def count_tokens_approximately(messages: Sequence[BaseMessage], *, chars_per_token: float = 4.0) -> int:
    """A quick estimate: about four characters a token, plus a few for each message's framing."""
    total = 0.0
    for message in messages:
        total += len(message_text(message)) / chars_per_token + 3
        for call in getattr(message, "tool_calls", []) or []:
            total += len(str(call.get("name", ""))) / chars_per_token + len(str(call.get("args", ""))) / chars_per_token
    return int(total + 0.999)


def tokenizer_counter(tokenizer: Any, *, per_message: int = 3) -> TokenCounter:
    """A counter from a real tokenizer: anything with ``encode(text)`` returning token ids or an
    object with ``.ids`` (tiktoken encodings, Hugging Face tokenizers and ``tokenizers``)."""

    def count(messages: list[BaseMessage]) -> int:
        total = 0
        for message in messages:
            encoded = tokenizer.encode(message_text(message))
            total += len(getattr(encoded, "ids", encoded)) + per_message
        return total

    return count


def _counter(token_counter: Any) -> TokenCounter:
    """``len`` counts messages; a model offers ``get_num_tokens_from_messages``; else a function."""
    if hasattr(token_counter, "get_num_tokens_from_messages"):
        counter: TokenCounter = token_counter.get_num_tokens_from_messages
        return counter
    if callable(token_counter):
        plain: TokenCounter = token_counter
        return plain
    raise TypeError(f"token_counter must be len, a function of a message list, or a model; got {token_counter!r}")


def trim_messages(
    messages: Sequence[MessageLike],
    *,
    max_tokens: int,
    token_counter: Any = len,
    strategy: Literal["last", "first"] = "last",
    include_system: bool = False,
    start_on: str | type[BaseMessage] | None = None,
    end_on: str | type[BaseMessage] | None = None,
    allow_partial: bool = False,
    text_splitter: Callable[[str], list[str]] | None = None,
) -> list[BaseMessage]:
    """The messages that fit in ``max_tokens`` as counted by ``token_counter``.

    ``strategy="last"`` keeps the newest messages (the usual choice for chat memory), ``"first"``
    the oldest. ``include_system`` keeps a leading system message whatever happens. ``start_on``
    (with "last") drops kept messages until one of that type leads, so a conversation never starts
    with a dangling tool result; ``end_on`` (with "first") does the same at the end. With
    ``allow_partial`` the message at the boundary is cut (by ``text_splitter``, lines by default)
    instead of dropped.
    """
    items = convert_to_messages(list(messages)) if messages else []
    count = _counter(token_counter)
    if max_tokens < 0:
        raise ValueError(f"max_tokens must be >= 0, got {max_tokens}")
    if strategy not in ("last", "first"):
        raise ValueError(f"strategy must be 'last' or 'first', got {strategy!r}")
    system: list[BaseMessage] = []
    if include_system and strategy == "last" and items and isinstance(items[0], SystemMessage):
        system, items = items[:1], items[1:]
    budget = max_tokens - (count(system) if system else 0)
    ordered = list(reversed(items)) if strategy == "last" else list(items)
    kept: list[BaseMessage] = []
    for message in ordered:
        candidate = [message, *kept] if strategy == "last" else [*kept, message]
        if count(candidate) <= budget:
            kept = candidate
            continue
        if allow_partial:
            part = _partial(message, kept, budget, count, strategy, text_splitter)
            if part is not None:
                kept = [part, *kept] if strategy == "last" else [*kept, part]
        break
    if strategy == "last" and start_on is not None:
        while kept and not _is(kept[0], start_on):
            kept = kept[1:]
    if strategy == "first" and end_on is not None:
        while kept and not _is(kept[-1], end_on):
            kept = kept[:-1]
    return system + kept


def _is(message: BaseMessage, kind: str | type[BaseMessage]) -> bool:
    if isinstance(kind, type):
        return isinstance(message, kind)
    return message.role == {"user": "human", "assistant": "ai"}.get(kind, kind)


def _partial(
    message: BaseMessage,
    kept: list[BaseMessage],
    budget: int,
    count: TokenCounter,
    strategy: str,
    splitter: Callable[[str], list[str]] | None,
) -> BaseMessage | None:
    """The largest part of ``message`` (whole pieces of its text) that still fits."""
    if isinstance(message, ToolMessage) or getattr(message, "tool_calls", None):
        return None  # a cut tool call or result would no longer make sense
    pieces = (splitter or (lambda text: text.splitlines(keepends=True)))(message_text(message))
    if strategy == "last":
        pieces = list(reversed(pieces))
    best = None
    taken: list[str] = []
    for piece in pieces:
        taken.append(piece)
        text = "".join(reversed(taken) if strategy == "last" else taken)
        part = message.model_copy(update={"content": text})
        if count([part, *kept] if strategy == "last" else [*kept, part]) > budget:
            break
        best = part
    return best
