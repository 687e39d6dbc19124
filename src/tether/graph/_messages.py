"""``MessagesState``: a state with a ``messages`` list that nodes append to."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

__all__ = ["MessagesState"]


class MessagesState(TypedDict):
    """Subclass it to add keys. ``messages`` accumulates what nodes return."""

    messages: Annotated[list[Any], operator.add]
