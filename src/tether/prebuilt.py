"""Mirrors ``langgraph.prebuilt``: ``create_react_agent``, ``ToolNode``, ``tools_condition``, ``InjectedState``."""

from tether.agents import create_react_agent
from tether.tools import InjectedState, ToolNode, tools_condition

__all__ = ["InjectedState", "ToolNode", "create_react_agent", "tools_condition"]
