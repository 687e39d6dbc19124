"""Where threads live: the checkpointer protocol and its stores.

``PostgresSaver`` and ``AsyncPostgresSaver`` are imported on first use, so that importing
Tether never imports psycopg; they need the ``postgres`` extra (``pip install 'tether[postgres]'``).
"""

from typing import TYPE_CHECKING, Any

from tether.checkpoint._base import (
    BaseCheckpointSaver,
    CheckpointRecord,
    LoadedCheckpoint,
    PendingWrite,
    ThreadSummary,
)
from tether.checkpoint._memory import InMemorySaver, MemorySaver
from tether.checkpoint._open import open_saver
from tether.checkpoint._serde import register_type
from tether.checkpoint._sqlite import AsyncSqliteSaver, SqliteSaver

if TYPE_CHECKING:
    from tether.checkpoint._postgres import AsyncPostgresSaver as AsyncPostgresSaver
    from tether.checkpoint._postgres import PostgresSaver as PostgresSaver

# not in __all__: `from tether.checkpoint import *` must work without psycopg installed
_LAZY = ("AsyncPostgresSaver", "PostgresSaver")

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
    "open_saver",
    "register_type",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from tether.checkpoint import _postgres  # raises ImportError naming `pip install 'tether[postgres]'`

        return getattr(_postgres, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
