"""A list of messages as a transcript a person reads in a terminal (``tether show``).

One block a message: the role, then its text; an AI message's tool calls as ``→ name(args)``;
a tool result folded to its first line (``--json`` prints everything as stored).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.text import Text

from tether.messages import AIMessage, BaseMessage, ToolMessage

__all__ = ["FOLD_AT", "is_transcript", "transcript"]

FOLD_AT = 160  # characters of a tool result shown before it is folded
_ROLE_STYLE = {"human": "bold cyan", "ai": "bold green", "tool": "magenta", "system": "bold yellow"}
_INDENT = " " * 8


def is_transcript(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(m, BaseMessage) for m in value)


def _args(args: Any) -> str:
    if isinstance(args, dict):
        return ", ".join(f"{k}={json.dumps(v, ensure_ascii=False, default=str)}" for k, v in args.items())
    return json.dumps(args, ensure_ascii=False, default=str)


def _fold(text: str) -> str:
    """The first line, cut at ``FOLD_AT`` characters, and what was left out."""
    lines = text.splitlines() or [""]
    first, more = lines[0], len(lines) - 1
    cut = len(first) > FOLD_AT
    if cut:
        first = first[: FOLD_AT - 1] + "…"
    if not (cut or more):
        return first
    hidden = f"+{more} more line{'s' * (more != 1)}, " if more else ""
    return f"{first}  ({hidden}--json shows all)"


def _block(message: BaseMessage) -> Text:
    role = message.role or type(message).__name__
    label = role + (f" ({message.name})" if message.name else "")
    if isinstance(message, ToolMessage):
        label = "tool" + (" error" if message.status == "error" else "")
        head = Text.assemble((f"{label:<7} ", _ROLE_STYLE["tool"]), (f"[{message.tool_call_id}] ", "dim"))
        return head + Text(_fold(message.text))
    out = Text.assemble((f"{label:<7} ", _ROLE_STYLE.get(role, "bold")))
    text = message.text
    out.append(text.replace("\n", "\n" + _INDENT))
    started = bool(text)  # an AI turn with only tool calls starts with its first call
    if isinstance(message, AIMessage):
        for call in message.tool_calls:
            out.append(("\n" + _INDENT) if started else "")
            out.append(f"→ {call.get('name', '?')}({_args(call.get('args', {}))})", style="green")
            if call.get("id"):
                out.append(f"  [{call['id']}]", style="dim")
            started = True
        for bad in message.invalid_tool_calls:
            out.append(("\n" + _INDENT) if started else "")
            out.append(f"✗ {bad.get('name') or '?'}: {bad.get('error') or 'invalid tool call'}", style="red")
            started = True
    return out


def transcript(messages: Sequence[BaseMessage]) -> list[Text]:
    """One rich ``Text`` a message, in order."""
    return [_block(m) for m in messages]
