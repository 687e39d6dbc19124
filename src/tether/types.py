"""Public value types shared by the graph runtime and the checkpoint stores.

The values live in :mod:`tether._types` (the bottom layer); ``interrupt`` comes from the
node-facing runtime context and ``RetryPolicy`` from the retry rules, both of which sit
below the graph package, so importing this module never loads the graph runtime.
"""

from __future__ import annotations

from tether._context import interrupt
from tether._retry import RetryPolicy
from tether._types import (
    END,
    START,
    CheckpointId,
    Command,
    Durability,
    GraphInterrupt,
    Interrupt,
    RunnableConfig,
    Runtime,
    Send,
    StateSnapshot,
    StreamMode,
    StreamWriter,
    TaskSnapshot,
    ThreadId,
)

__all__ = [
    "END",
    "START",
    "CheckpointId",
    "Command",
    "Durability",
    "GraphInterrupt",
    "Interrupt",
    "RetryPolicy",
    "RunnableConfig",
    "Runtime",
    "Send",
    "StateSnapshot",
    "StreamMode",
    "StreamWriter",
    "TaskSnapshot",
    "ThreadId",
    "interrupt",
]
