"""Every error Tether raises, in one tree.

    TetherError
    ├── GraphBuildError            the graph is malformed; raised by add_* and compile()
    ├── GraphRuntimeError          a run could not go on
    │   ├── InvalidUpdateError     a node returned or wrote something the state cannot take
    │   ├── GraphRecursionError    the run took more steps than its recursion_limit
    │   ├── ThreadBusyError        another run holds the thread
    │   ├── InvalidResumeError     Command(resume=…) does not match what the thread waits for
    │   ├── EmptyInputError        nothing to run: no input and no checkpoint to continue from
    │   └── ConfigError            the call's config lacks what the graph needs (thread_id…)
    ├── CheckpointError            storage could not be read or written
    │   ├── SchemaVersionError     the database was written by an unknown schema version
    │   └── CheckpointNotFoundError
    └── SerializationError         a value cannot be stored or read back as tagged JSON

Interrupts are control flow, not errors: ``GraphInterrupt`` lives in
``tether.types`` and never escapes ``invoke``/``stream``; it is also importable from here, where
LangGraph programs import it (to re-raise it past their own ``except Exception``).
"""

from __future__ import annotations

from tether.types import GraphInterrupt

__all__ = [
    "CheckpointError",
    "CheckpointNotFoundError",
    "ConfigError",
    "EmptyInputError",
    "GraphBuildError",
    "GraphInterrupt",
    "GraphRecursionError",
    "GraphRuntimeError",
    "InvalidResumeError",
    "InvalidUpdateError",
    "SchemaVersionError",
    "SerializationError",
    "TetherError",
    "ThreadBusyError",
]


class TetherError(Exception):
    """Root of every error raised by Tether."""


class GraphBuildError(TetherError, ValueError):
    """The graph definition is invalid (unknown node, duplicate name, unreachable node…)."""


class GraphRuntimeError(TetherError):
    """A run could not continue."""


class InvalidUpdateError(GraphRuntimeError, ValueError):
    """A node (or update_state) produced an update the state schema cannot accept."""


class GraphRecursionError(GraphRuntimeError, RecursionError):
    """The run exceeded ``recursion_limit`` super-steps without finishing."""


class ThreadBusyError(GraphRuntimeError):
    """Another run is already in progress on this thread."""


class InvalidResumeError(GraphRuntimeError, ValueError):
    """``Command(resume=…)`` does not match the interrupts the thread is waiting on."""


class ConfigError(GraphRuntimeError, ValueError):
    """The call's config lacks something the run needs, such as ``thread_id``."""


class EmptyInputError(GraphRuntimeError, ValueError):
    """A run was asked to continue a thread that has nothing to continue."""


class CheckpointError(TetherError):
    """The checkpoint store could not be read or written."""


class SchemaVersionError(CheckpointError):
    """The database holds a schema version this Tether does not understand."""


class CheckpointNotFoundError(CheckpointError, KeyError):
    """A configured ``checkpoint_id`` does not exist in the thread."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class SerializationError(TetherError, TypeError):
    """A value cannot be encoded as tagged JSON, or stored JSON cannot be decoded."""
