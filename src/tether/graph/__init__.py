"""Graphs of steps over a typed state: build with ``StateGraph``, run the compiled graph."""

from tether._context import get_runtime, get_stream_writer, interrupt
from tether.graph._builder import StateGraph
from tether.graph._compiled import CompiledStateGraph
from tether.graph._messages import MessagesState
from tether.graph._retry import RetryPolicy
from tether.messages import add_messages
from tether.types import END, START, Command, Send

__all__ = [
    "END",
    "START",
    "Command",
    "CompiledStateGraph",
    "MessagesState",
    "RetryPolicy",
    "Send",
    "StateGraph",
    "add_messages",
    "get_runtime",
    "get_stream_writer",
    "interrupt",
]
