"""Chat models: the protocol, ``init_chat_model``, HTTP clients and a scripted model for tests."""

from tether.models._base import (
    BaseChatModel,
    ChatModelError,
    ModelCallOptions,
    OutputParserError,
    StructuredOutput,
    tool_schema,
)
from tether.models._init import init_chat_model
from tether.models._scripted import ScriptedChatModel

__all__ = [
    "BaseChatModel",
    "ChatModelError",
    "ModelCallOptions",
    "OutputParserError",
    "ScriptedChatModel",
    "StructuredOutput",
    "init_chat_model",
    "tool_schema",
]
