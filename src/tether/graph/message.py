"""Mirrors ``langgraph.graph.message``: the ``add_messages`` reducer and ``MessagesState``."""

from tether.graph._messages import MessagesState
from tether.messages import REMOVE_ALL_MESSAGES, add_messages

__all__ = ["REMOVE_ALL_MESSAGES", "MessagesState", "add_messages"]
