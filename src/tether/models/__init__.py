"""Chat models: the protocol, ``init_chat_model``, HTTP clients and a scripted model for tests.

The HTTP clients need ``httpx`` (``pip install 'tether[models]'``); they are imported on first
use, so ``import tether.models`` works without it and stays light. Their errors (``APIError``…)
need no httpx: ``except APIError`` works in a program that never installed it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from tether.models._http_errors import (
        APIConnectionError,
        APIError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        DeadlineExceededError,
        MalformedResponseError,
        ModelNotFoundError,
        RateLimitError,
        ResponseTooLargeError,
        ServerError,
        StreamLineTooLongError,
    )
    from tether.models._ollama import ChatOllama
    from tether.models._openai import ChatOpenAI

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BaseChatModel",
    "ChatModelError",
    "ChatOllama",
    "ChatOpenAI",
    "DeadlineExceededError",
    "MalformedResponseError",
    "ModelCallOptions",
    "ModelNotFoundError",
    "OutputParserError",
    "RateLimitError",
    "ResponseTooLargeError",
    "ScriptedChatModel",
    "ServerError",
    "StreamLineTooLongError",
    "StructuredOutput",
    "init_chat_model",
    "tool_schema",
]

_LAZY = {
    "ChatOpenAI": "tether.models._openai",
    "ChatOllama": "tether.models._ollama",
    **dict.fromkeys(
        (
            "APIConnectionError",
            "APIError",
            "APITimeoutError",
            "AuthenticationError",
            "BadRequestError",
            "DeadlineExceededError",
            "MalformedResponseError",
            "ModelNotFoundError",
            "RateLimitError",
            "ResponseTooLargeError",
            "ServerError",
            "StreamLineTooLongError",
        ),
        "tether.models._http_errors",
    ),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tether.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
