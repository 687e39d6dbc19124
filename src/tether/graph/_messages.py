"""``MessagesState``: a state with a ``messages`` conversation kept by ``add_messages``."""

from __future__ import annotations

from typing import Annotated, TypedDict

from tether.messages import AnyMessage, add_messages

__all__ = ["MessagesState"]


class MessagesState(TypedDict):
    """Subclass it to add keys. Nodes return ``{"messages": [...]}`` to append, replace by id,
    or remove with ``RemoveMessage``; dicts and ``("user", "text")`` tuples are accepted."""

    messages: Annotated[list[AnyMessage], add_messages]
