"""Prebuilt agents: ``create_react_agent``, a model calling tools in a loop, with memory and approval."""

from tether.agents._react import create_react_agent, pending_tool_calls
from tether.agents._state import AgentState, AgentStateWithStructuredResponse

__all__ = ["AgentState", "AgentStateWithStructuredResponse", "create_react_agent", "pending_tool_calls"]
