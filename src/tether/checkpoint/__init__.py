"""Where threads live: the checkpointer protocol and its stores."""

from tether.checkpoint._base import (
    BaseCheckpointSaver,
    CheckpointRecord,
    LoadedCheckpoint,
    PendingWrite,
    ThreadSummary,
)
from tether.checkpoint._memory import InMemorySaver, MemorySaver
from tether.checkpoint._serde import register_type
from tether.checkpoint._sqlite import AsyncSqliteSaver, SqliteSaver

__all__ = [
    "AsyncSqliteSaver",
    "BaseCheckpointSaver",
    "CheckpointRecord",
    "InMemorySaver",
    "LoadedCheckpoint",
    "MemorySaver",
    "PendingWrite",
    "SqliteSaver",
    "ThreadSummary",
    "register_type",
]
