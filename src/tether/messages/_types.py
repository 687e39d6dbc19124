"""Chat messages: what people, models and tools say to each other.

Pydantic models with LangChain's names and fields, so programs port by changing imports;
they are stored as tagged JSON and read back as the same types.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict  # pydantic validates these on Python 3.11

from tether.checkpoint._serde import register_type

__all__ = [
    "MESSAGE_ROLES",
    "AIMessage",
    "AnyMessage",
    "BaseMessage",
    "ChatMessage",
    "HumanMessage",
    "InvalidToolCall",
    "MessageLike",
    "SystemMessage",
    "ToolCall",
    "ToolMessage",
    "UsageMetadata",
    "convert_to_messages",
    "message_class",
    "message_text",
    "new_message_id",
]


def new_message_id() -> str:
    return str(uuid.uuid4())


class ToolCall(TypedDict, total=False):
    """A model's request to run a tool: ``{"name", "args", "id", "type": "tool_call"}``."""

    name: str
    args: dict[str, Any]
    id: str | None
    type: Literal["tool_call"]


class InvalidToolCall(TypedDict, total=False):
    """A tool call whose arguments did not parse: ``args`` is the raw text, ``error`` says why."""

    name: str | None
    args: str | None
    id: str | None
    error: str | None
    type: Literal["invalid_tool_call"]


class UsageMetadata(TypedDict, total=False):
    """Token counts; the details (``cache_read``, ``reasoning``…) only where the provider gives them."""

    input_tokens: int
    output_tokens: int
    total_tokens: int
    input_token_details: dict[str, int]
    output_token_details: dict[str, int]


class BaseMessage(BaseModel):
    """Common fields. ``content`` is text, or a list of content blocks (``{"type": "text", …}``)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    role: ClassVar[str] = ""

    content: str | list[str | dict[str, Any]] = ""
    id: str | None = None
    name: str | None = None
    additional_kwargs: dict[str, Any] = Field(default_factory=dict)
    response_metadata: dict[str, Any] = Field(default_factory=dict)

    def __init__(self, content: str | list[str | dict[str, Any]] | None = None, **data: Any) -> None:
        if content is not None:
            data["content"] = content
        super().__init__(**data)

    @property
    def type(self) -> str:
        """LangChain's type tag: ``"human"``, ``"ai"``, ``"system"``, ``"tool"``, ``"chat"``, ``"AIMessageChunk"``."""
        return self.role

    @property
    def text(self) -> str:
        return message_text(self)

    def pretty(self) -> str:
        return f"{self.role}: {self.text}"

    def pretty_repr(self) -> str:
        """The message as LangChain's ``pretty_repr`` lays it out: a banner naming the role, then the content."""
        title = f" {self.type.title()} Message "
        side = "=" * ((80 - len(title)) // 2)
        head = side + title + side + "=" * (len(title) % 2) + (f"\nName: {self.name}" if self.name is not None else "")
        return f"{head}\n\n{self.content}"

    def pretty_print(self) -> None:
        """Print ``pretty_repr()``, as LangChain's messages do (tutorials call it on every reply)."""
        print(self.pretty_repr())


class SystemMessage(BaseMessage):
    role: ClassVar[str] = "system"


class HumanMessage(BaseMessage):
    role: ClassVar[str] = "human"


class AIMessage(BaseMessage):
    role: ClassVar[str] = "ai"

    tool_calls: list[ToolCall] = Field(default_factory=list)
    invalid_tool_calls: list[InvalidToolCall] = Field(default_factory=list)
    usage_metadata: UsageMetadata | None = None

    def pretty_repr(self) -> str:
        lines = [super().pretty_repr().strip()]
        if self.tool_calls:
            lines.append("Tool Calls:")
            for call in self.tool_calls:
                lines += [f"  {call.get('name')} ({call.get('id')})", f" Call ID: {call.get('id')}", "  Args:"]
                lines += [f"    {key}: {value}" for key, value in (call.get("args") or {}).items()]
        return "\n".join(lines)

    @property
    def usage(self) -> UsageMetadata | None:
        """Token counts reported by the model for this reply."""
        return self.usage_metadata


class ToolMessage(BaseMessage):
    role: ClassVar[str] = "tool"

    tool_call_id: str
    status: Literal["success", "error"] = "success"
    artifact: Any = None


# pydantic warns that ChatMessage's ``role`` field shadows BaseMessage's class-level role: that is the point
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message='Field name "role" in "ChatMessage"', category=UserWarning)

    class ChatMessage(BaseMessage):
        """A message from a speaker with any role (``role="critic"``); its ``type`` is ``"chat"``.

        The fixed kinds carry their role on the class; this one carries it on each message."""

        role: str  # type: ignore[misc]

        @property
        def type(self) -> str:
            return "chat"


AnyMessage = SystemMessage | HumanMessage | AIMessage | ToolMessage | ChatMessage
MessageLike = BaseMessage | dict[str, Any] | tuple[str, Any] | str

_ROLES: dict[str, type[BaseMessage]] = {
    "system": SystemMessage,
    "developer": SystemMessage,
    "human": HumanMessage,
    "user": HumanMessage,
    "ai": AIMessage,
    "assistant": AIMessage,
    "tool": ToolMessage,
}


def message_class(role: str) -> type[BaseMessage] | None:
    """The message type for a role name ("user"/"human", "assistant"/"ai", "system", "tool"…)."""
    return _ROLES.get(role)


MESSAGE_ROLES = tuple(_ROLES)


def _from_dict(data: dict[str, Any]) -> BaseMessage:
    data = dict(data)
    role = data.pop("role", None) or data.pop("type", None)
    cls = _ROLES.get(str(role))
    if cls is None:
        raise ValueError(
            f"cannot make a message from a dict with role {role!r}; use one of {', '.join(sorted(_ROLES))}"
        )
    if cls is AIMessage and data.get("tool_calls"):
        data["tool_calls"] = [_tool_call(c) for c in data["tool_calls"]]
    return cls(**data)


def _tool_call(call: dict[str, Any]) -> ToolCall:
    """Accepts both ``{"name", "args"}`` and OpenAI's ``{"function": {"name", "arguments"}}``."""
    if "function" in call:
        import json

        fn = call["function"]
        args = fn.get("arguments") or {}
        return ToolCall(
            name=fn["name"],
            args=json.loads(args) if isinstance(args, str) else args,
            id=call.get("id"),
            type="tool_call",
        )
    return ToolCall(name=call["name"], args=dict(call.get("args") or {}), id=call.get("id"), type="tool_call")


def convert_to_messages(items: MessageLike | Sequence[MessageLike]) -> list[BaseMessage]:
    """Messages from what people write: message objects, ``{"role": …, "content": …}`` dicts,
    ``("user", "hi")`` tuples, or plain strings (a human message)."""
    if isinstance(items, (BaseMessage, dict, str)) or (
        isinstance(items, tuple) and len(items) == 2 and isinstance(items[0], str)
    ):
        items = [items]  # type: ignore[list-item]
    out: list[BaseMessage] = []
    for item in items:
        if isinstance(item, BaseMessage):
            out.append(item)
        elif isinstance(item, str):
            out.append(HumanMessage(content=item))
        elif isinstance(item, dict):
            out.append(_from_dict(item))
        elif isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str):
            out.append(_from_dict({"role": item[0], "content": item[1]}))
        else:
            raise ValueError(
                f"cannot make a message from {item!r}: use a message, a dict with 'role' and 'content', "
                "a (role, content) tuple or a string"
            )
    return out


def message_text(message: BaseMessage) -> str:
    """The text of a message, joining text blocks when ``content`` is a list."""
    if isinstance(message.content, str):
        return message.content
    parts = []
    for block in message.content:
        if isinstance(block, str):
            parts.append(block)
        elif block.get("type") == "text":
            parts.append(str(block.get("text", "")))
    return "".join(parts)


for _cls in (SystemMessage, HumanMessage, AIMessage, ToolMessage, ChatMessage):
    register_type(_cls, name=f"tether.messages:{_cls.__name__}")
