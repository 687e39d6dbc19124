"""Tools a model can call: ``@tool``, ``ToolNode`` to run them in a graph, ``tools_condition`` to route."""

from tether.tools._node import ToolNode, tools_condition
from tether.tools._python import create_python_tool
from tether.tools._sandbox import SandboxUnavailableError
from tether.tools._schema import InjectedState, InjectedToolArg, InjectedToolCallId
from tether.tools._tool import Tool, ToolException, ToolInvocationError, tool

__all__ = [
    "InjectedState",
    "InjectedToolArg",
    "InjectedToolCallId",
    "SandboxUnavailableError",
    "Tool",
    "ToolException",
    "ToolInvocationError",
    "ToolNode",
    "create_python_tool",
    "tool",
    "tools_condition",
]
