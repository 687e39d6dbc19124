"""The state a prebuilt agent keeps: its conversation, and a structured answer when asked for one."""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from tether.messages import AnyMessage, add_messages

__all__ = ["AgentState", "AgentStateWithStructuredResponse"]


class AgentState(TypedDict):
    """``messages``, kept by ``add_messages``. Subclass it to give the agent more keys."""

    messages: Annotated[list[AnyMessage], add_messages]


class AgentStateWithStructuredResponse(AgentState, total=False):
    """Also ``structured_response``: the final answer as an instance of ``response_format``."""

    structured_response: Any
