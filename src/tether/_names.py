"""Strings Tether stores or passes between its layers, spelled once.

They are written into checkpoints and ``pending_writes`` rows, so their values never change:
a database written by an older Tether must read back the same. This module imports nothing,
so storage (``tether.checkpoint``) and the runtime (``tether.graph``) can both use it.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "COMMAND_KEY",
    "CONSUMED_KINDS",
    "CONSUMED_KINDS_SQL",
    "JOIN_PREFIX",
    "PENDING_ERROR",
    "PENDING_INPUT",
    "PENDING_INTERRUPT",
    "PENDING_KINDS",
    "PENDING_RESULT",
    "PENDING_RESUME",
    "is_join",
]

# ``pending_writes.kind``: work done from a checkpoint whose step has not committed yet
PENDING_RESULT: Final = "result"  # a finished task's writes
PENDING_INTERRUPT: Final = "interrupt"  # the payloads a task paused with
PENDING_RESUME: Final = "resume"  # the values given to a paused task
PENDING_ERROR: Final = "error"  # why a task failed
PENDING_INPUT: Final = "input"  # a Command's update recorded before its step committed
PENDING_KINDS: Final = frozenset({PENDING_RESULT, PENDING_INTERRUPT, PENDING_RESUME, PENDING_ERROR, PENDING_INPUT})
# what a committed step folds into its checkpoint, so the parent's rows of these kinds go;
# interrupt and resume rows stay, as the history of what was asked and answered
CONSUMED_KINDS: Final = (PENDING_RESULT, PENDING_ERROR, PENDING_INPUT)
CONSUMED_KINDS_SQL: Final = "(" + ", ".join(f"'{kind}'" for kind in CONSUMED_KINDS) + ")"  # for ``kind IN …``

# the hidden channel a node waiting on several sources (``add_edge([a, b], c)``) reads:
# ``join:a+b:c``; it is state the graph keeps, never a value a reader shows
JOIN_PREFIX: Final = "join:"

# marks a Command given as the input of a fresh or finished thread
COMMAND_KEY: Final = "__command__"


def is_join(key: str) -> bool:
    """Whether a state key is a join channel (hidden from every reader)."""
    return key.startswith(JOIN_PREFIX)
