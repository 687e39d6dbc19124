"""``get_buffer_string``: a conversation as one transcript string, ``Human: …`` line by line."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from tether.messages._types import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
)

__all__ = ["get_buffer_string"]


def _canonical(call: ToolCall) -> ToolCall:
    # LangChain's calls always carry every key in this order, and the transcript prints them
    return ToolCall(name=call.get("name", ""), args=call.get("args", {}), id=call.get("id"), type="tool_call")


def get_buffer_string(
    messages: Sequence[BaseMessage],
    human_prefix: str = "Human",
    ai_prefix: str = "AI",
    *,
    system_prefix: str = "System",
    function_prefix: str = "Function",
    tool_prefix: str = "Tool",
    message_separator: str = "\n",
    format: Literal["prefix"] = "prefix",
) -> str:
    """Each message as ``{prefix}: {text}`` (a ``ChatMessage`` uses its role), joined by
    ``message_separator``; an AI message's tool calls follow its text as a Python list.

    Only LangChain's default ``format="prefix"`` is supported; ``function_prefix`` is accepted
    for signature compatibility (Tether has no FunctionMessage).
    """
    if format != "prefix":
        raise ValueError(f"get_buffer_string supports format='prefix' only, got {format!r}")
    del function_prefix
    lines = []
    for message in messages:
        if isinstance(message, HumanMessage):
            prefix = human_prefix
        elif isinstance(message, AIMessage):
            prefix = ai_prefix
        elif isinstance(message, SystemMessage):
            prefix = system_prefix
        elif isinstance(message, ToolMessage):
            prefix = tool_prefix
        elif isinstance(message, ChatMessage):
            prefix = message.role
        else:
            raise ValueError(f"get_buffer_string cannot write a {type(message).__name__}")
        line = f"{prefix}: {message.text}"
        if isinstance(message, AIMessage):
            if message.tool_calls:
                line += str([_canonical(call) for call in message.tool_calls])
            elif "function_call" in message.additional_kwargs:
                line += str(message.additional_kwargs["function_call"])
        lines.append(line)
    return message_separator.join(lines)
