"""Chat messages, the ``add_messages`` reducer, and conversation memory helpers."""

from tether.messages._buffer import get_buffer_string
from tether.messages._chunk import AIMessageChunk, ToolCallChunk, message_chunk_to_message
from tether.messages._dicts import message_to_dict, messages_from_dict, messages_to_dict
from tether.messages._filter import filter_messages
from tether.messages._merge import merge_content
from tether.messages._reducer import REMOVE_ALL_MESSAGES, RemoveMessage, add_messages
from tether.messages._runs import merge_message_runs
from tether.messages._summarize import SummarizationNode, is_summary, summarize_messages
from tether.messages._trim import count_tokens_approximately, tokenizer_counter, trim_messages
from tether.messages._types import (
    MESSAGE_ROLES,
    AIMessage,
    AnyMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    InvalidToolCall,
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
    "AIMessageChunk",
    "AnyMessage",
    "BaseMessage",
    "ChatMessage",
    "HumanMessage",
    "InvalidToolCall",
    "MessageLike",
    "RemoveMessage",
    "SummarizationNode",
    "SystemMessage",
    "ToolCall",
    "ToolCallChunk",
    "ToolMessage",
    "UsageMetadata",
    "add_messages",
    "convert_to_messages",
    "count_tokens_approximately",
    "filter_messages",
    "get_buffer_string",
    "is_summary",
    "merge_content",
    "merge_message_runs",
    "message_chunk_to_message",
    "message_class",
    "message_text",
    "message_to_dict",
    "messages_from_dict",
    "messages_to_dict",
    "summarize_messages",
    "tokenizer_counter",
    "trim_messages",
]
