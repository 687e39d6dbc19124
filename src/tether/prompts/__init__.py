"""Prompt templates with ``{variables}`` and output parsers that validate a model's reply."""

from tether.prompts._chain import Chain
from tether.prompts._parsers import PydanticOutputParser, StrOutputParser
from tether.prompts._template import (
    ChatPromptTemplate,
    ChatPromptValue,
    MessagesPlaceholder,
    MissingVariableError,
    PromptTemplate,
    StringPromptValue,
)

__all__ = [
    "Chain",
    "ChatPromptTemplate",
    "ChatPromptValue",
    "MessagesPlaceholder",
    "MissingVariableError",
    "PromptTemplate",
    "PydanticOutputParser",
    "StrOutputParser",
    "StringPromptValue",
]
