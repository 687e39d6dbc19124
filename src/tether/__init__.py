"""Tether: durable, stateful agent workflows with a person in the loop."""

from tether.checkpoint import InMemorySaver, MemorySaver, SqliteSaver
from tether.errors import TetherError
from tether.graph import (
    CompiledStateGraph,
    MessagesState,
    RetryPolicy,
    StateGraph,
    get_runtime,
    get_stream_writer,
    interrupt,
)
from tether.types import END, START, Command, Interrupt, RunnableConfig, Runtime, Send, StateSnapshot

__version__ = "0.1.0"

__all__ = [
    "END",
    "START",
    "Command",
    "CompiledStateGraph",
    "InMemorySaver",
    "Interrupt",
    "MemorySaver",
    "MessagesState",
    "RetryPolicy",
    "RunnableConfig",
    "Runtime",
    "Send",
    "SqliteSaver",
    "StateGraph",
    "StateSnapshot",
    "TetherError",
    "get_runtime",
    "get_stream_writer",
    "interrupt",
]
