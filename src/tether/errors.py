"""Every error Tether raises, in one tree.

The classes of this module are the graph runtime's and the stores'; the parts on top define theirs
in their own package (named on the right), under this root, so ``except TetherError`` catches
every one. ``tests/test_error_tree.py`` fails if an exception class anywhere in ``tether`` is
missing from this tree or does not derive from ``TetherError``.

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
    │   ├── CorruptCheckpointError a stored row is damaged (names thread, checkpoint, column)
    │   ├── CheckpointNotFoundError
    │   ├── UnreadableThreadError  tether.tune: a thread's rows cannot be read as decisions
    │   └── FeedbackError          tether.tune: feedback that cannot be recorded
    ├── SerializationError         a value cannot be stored or read back as tagged JSON
    │   └── UnknownTypeError       a stored value names a class this process has not imported or registered
    ├── ChatModelError             tether.models: a chat model could not answer
    │   ├── OutputParserError      the reply does not match the expected structure
    │   └── APIError               an HTTP model server answered with an error or could not be reached
    │       ├── AuthenticationError     401/403
    │       ├── ModelNotFoundError      404
    │       ├── RateLimitError          429
    │       ├── ServerError             5xx, or an error reported mid-stream
    │       ├── BadRequestError         other 4xx
    │       ├── MalformedResponseError  a 200 that breaks the protocol
    │       ├── ResponseTooLargeError   past max_response_bytes
    │       │   └── StreamLineTooLongError  past max_line_bytes
    │       └── APIConnectionError      (also a ConnectionError)
    │           └── APITimeoutError     (also a TimeoutError)
    │               └── DeadlineExceededError  past deadline
    ├── ToolException              tether.tools: a tool failed; the model is told why
    │   └── ToolInvocationError    the model's arguments do not match the tool's schema
    ├── SandboxUnavailableError    tether.tools: this machine cannot isolate code
    ├── MissingVariableError       tether.prompts: a template variable has no value
    ├── PlanError                  tether.plan: the planner cannot use an input
    ├── RunError                   tether.workers: a queued run could not be found, waited for or finished
    │   ├── RunNotFoundError       no run has this id
    │   ├── RunTimeoutError        wait()/join() gave up before the run finished
    │   └── RunFailedError         join() on a run that ended in error or was cancelled
    └── TrainingError              tether.tune: a training, merge or validation run cannot start or go on
        ├── TrainingSetupError     a model path, data file or option the run cannot use
        └── QloraUnavailableError  --qlora without CUDA or bitsandbytes

Interrupts are control flow, not errors: ``GraphInterrupt`` lives in
``tether.types`` and never escapes ``invoke``/``stream``; it is also importable from here, where
LangGraph programs import it (to re-raise it past their own ``except Exception``). So is
``RetryRun``, inside ``tether.workers``, which asks the job engine to try a run again later.
"""

from __future__ import annotations

from tether._types import GraphInterrupt

__all__ = [
    "CheckpointError",
    "CheckpointNotFoundError",
    "ConfigError",
    "CorruptCheckpointError",
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
    "UnknownTypeError",
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


class CorruptCheckpointError(CheckpointError):
    """A stored row holds what Tether never writes, or parent links loop or lead nowhere.

    ``thread_id``, ``checkpoint_id`` and ``column`` (``table.column``) say where; the row was
    changed outside Tether (by hand, a bad restore, a disk fault), so reading it stops here
    rather than rebuilding a state that silently differs from the one that was committed.
    """

    def __init__(self, problem: str, *, thread_id: object, checkpoint_id: object, column: str) -> None:
        self.problem, self.thread_id, self.checkpoint_id, self.column = problem, thread_id, checkpoint_id, column
        where = f"thread {thread_id!r}" + (f", checkpoint {checkpoint_id!r}" if checkpoint_id is not None else "")
        super().__init__(
            f"{where}: stored {column} {problem}. The row was changed outside Tether: restore the database "
            "from a backup, or go on from an earlier checkpoint that still reads (get_state_history, "
            "then update_state or invoke with its checkpoint_id)"
        )

    def __reduce__(self) -> tuple[object, ...]:  # keyword-only fields: pickle (process pools) needs help
        return (_corrupt, (self.problem, self.thread_id, self.checkpoint_id, self.column))


def _corrupt(problem: str, thread_id: object, checkpoint_id: object, column: str) -> CorruptCheckpointError:
    return CorruptCheckpointError(problem, thread_id=thread_id, checkpoint_id=checkpoint_id, column=column)


class CheckpointNotFoundError(CheckpointError, KeyError):
    """A configured ``checkpoint_id`` does not exist in the thread."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class SerializationError(TetherError, TypeError):
    """A value cannot be encoded as tagged JSON, or stored JSON cannot be decoded."""


class UnknownTypeError(SerializationError):
    """A stored value names a class this process cannot rebuild: its module is not imported, or a
    dataclass is not registered. The row is fine; the program reading it lacks the class."""
