"""Chat messages, the ``add_messages`` reducer, and conversation memory helpers."""

from tether.messages._reducer import REMOVE_ALL_MESSAGES, RemoveMessage, add_messages
from tether.messages._summarize import SummarizationNode, is_summary, summarize_messages
from tether.messages._trim import count_tokens_approximately, tokenizer_counter, trim_messages
from tether.messages._types import (
    MESSAGE_ROLES,
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    MessageLike,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UsageMetadata,
    convert_to_messages,
    message_class,
    message_text,
)

__all__ = [
    "MESSAGE_ROLES",
    "REMOVE_ALL_MESSAGES",
    "AIMessage",
    "AnyMessage",
    "BaseMessage",
    "HumanMessage",
    "MessageLike",
    "RemoveMessage",
    "SummarizationNode",
    "SystemMessage",
    "ToolCall",
    "ToolMessage",
    "UsageMetadata",
    "add_messages",
    "convert_to_messages",
    "count_tokens_approximately",
    "is_summary",
    "message_class",
    "message_text",
    "summarize_messages",
    "tokenizer_counter",
    "trim_messages",
]
