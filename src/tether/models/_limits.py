"""What bounds one HTTP call to a model server: its size, its longest line, its time.

A server that sends a body larger than memory, a stream line that never ends, or one byte
every few seconds must not be able to take the process's memory or hold a call for ever.
Here: the options (validated, with their defaults) and the deadline. ``_body`` reads an
answer within the sizes; ``HTTPTransport`` (``_http``) puts them together.

The deadline reaches into every blocking read and write: asynchronous calls through
``asyncio.timeout`` around each step, synchronous ones through ``DeadlineBackend``, which
shortens each socket operation's timeout to the time the calling thread's call has left, so
a server that trickles (headers or body) is cut off at the deadline, not a read timeout later.
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

import httpcore
import httpx

__all__ = [
    "DEADLINE_FLOOR_S",
    "DEADLINE_PER_TIMEOUT",
    "DEFAULT_MAX_LINE_BYTES",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "Deadline",
    "DeadlineBackend",
    "DeadlineOption",
    "apply_deadlines",
    "byte_limit",
    "resolve_deadline",
]

# A 128k-token answer streamed as OpenAI chunks (~250 bytes each) is ~32 MB; as one JSON reply,
# well under 1 MB. Ask for logprobs of every token and raise it.
DEFAULT_MAX_RESPONSE_BYTES = 64 * 2**20
# One SSE event or NDJSON line holds one chunk; Ollama sends a turn's tool calls whole in one
# line, still far below this.
DEFAULT_MAX_LINE_BYTES = 8 * 2**20
# deadline="auto": ten read timeouts (10 minutes for ChatOpenAI, 50 for ChatOllama, whose
# timeout allows for slow CPUs), never less than five minutes, so a short read timeout does
# not cut a long stream that keeps arriving
DEADLINE_PER_TIMEOUT = 10
DEADLINE_FLOOR_S = 300.0
# a timeout that fires this close to the deadline is the deadline's doing
_SLACK_S = 0.01


# -- options ---------------------------------------------------------------------------
def byte_limit(option: str, value: object) -> int:
    """``value`` as a byte count for ``option``: a positive int."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{option} must be a whole number of bytes, got {value!r}")
    if value < 1:
        raise ValueError(f"{option} must be 1 byte or more, got {value}")
    return value


def resolve_deadline(deadline: object, timeout: float | None) -> float | None:
    """Seconds a whole call may take: ``deadline`` itself, or for ``"auto"``
    ``max(DEADLINE_FLOOR_S, DEADLINE_PER_TIMEOUT * timeout)`` (no deadline without a timeout)."""
    if deadline == "auto":
        return None if timeout is None else max(DEADLINE_FLOOR_S, DEADLINE_PER_TIMEOUT * float(timeout))
    if deadline is None:
        return None
    if isinstance(deadline, bool) or not isinstance(deadline, (int, float)):
        raise TypeError(f'deadline must be seconds (a number), "auto" or None, got {deadline!r}')
    if not (deadline > 0 and math.isfinite(deadline)):
        raise ValueError(f"deadline must be a finite number of seconds above 0 (or None for no limit), got {deadline}")
    return float(deadline)


DeadlineOption = float | Literal["auto"] | None


# -- the clock of one call -------------------------------------------------------------
_calling = threading.local()  # .ends: the monotonic time this thread's current call must end by


class Deadline:
    """The time one call has left; started when the call starts, shared by all its attempts."""

    __slots__ = ("_ends", "seconds")

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self._ends = None if seconds is None else time.monotonic() + seconds

    def left(self) -> float | None:
        return None if self._ends is None else self._ends - time.monotonic()

    def expired(self) -> bool:
        left = self.left()
        return left is not None and left <= _SLACK_S

    def allows(self, wait: float) -> bool:
        """Whether waiting ``wait`` seconds (before a retry) still leaves time for the retry."""
        left = self.left()
        return left is None or wait < left

    def clamp(self, timeout: float | None) -> float | None:
        left = self.left()
        if left is None:
            return timeout
        left = max(left, _SLACK_S)  # 0 would make a socket non-blocking, not time out at once
        return left if timeout is None else min(timeout, left)

    @contextmanager
    def applied(self) -> Iterator[None]:
        """Make this thread's socket operations (through ``DeadlineBackend``) end by the deadline.

        Held only around blocking calls, never across a ``yield``: a stream's consumer runs
        between chunks, and may make calls of its own."""
        before = getattr(_calling, "ends", None)
        _calling.ends = self._ends
        try:
            yield
        finally:
            _calling.ends = before


def _clamped(timeout: float | None, timed_out: type[Exception]) -> float | None:
    ends: float | None = getattr(_calling, "ends", None)
    if ends is None:
        return timeout
    left = ends - time.monotonic()
    if left <= 0:
        raise timed_out("the call's deadline has passed")
    return left if timeout is None else min(timeout, left)


# -- deadlines inside httpcore's synchronous sockets -----------------------------------
class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _clamped(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _clamped(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        tls = self._stream.start_tls(ssl_context, server_hostname, _clamped(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(tls)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's socket layer, with each connect, read and write timed out at the calling
    thread's deadline (see ``Deadline.applied``) when that comes before the operation's own."""

    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(
            host, port, _clamped(timeout, httpcore.ConnectTimeout), local_address, socket_options
        )
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_unix_socket(path, _clamped(timeout, httpcore.ConnectTimeout), socket_options)
        return _DeadlineStream(stream)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def apply_deadlines(client: httpx.Client) -> bool:
    """Route ``client``'s sockets (direct and through proxies) through ``DeadlineBackend``.

    httpx offers no public way to give its default transport a network backend (passing a
    transport of our own would drop the proxies it reads from the environment), so this
    wraps the backend of each connection pool it made. Should a later httpx lay its pools out
    otherwise, this warns and returns False: the deadline is then checked between chunks
    and bounds each attempt's timeouts, but a server trickling bytes can overrun it by up to
    one read timeout. ``tests/security/test_http_bounds.py`` fails when that happens.
    """
    transports = [getattr(client, "_transport", None), *getattr(client, "_mounts", {}).values()]
    pools: list[Any] = [getattr(t, "_pool", None) for t in transports if t is not None]
    if not pools or not all(isinstance(getattr(p, "_network_backend", None), httpcore.NetworkBackend) for p in pools):
        warnings.warn(
            f"tether cannot apply call deadlines inside httpx {httpx.__version__}'s sockets; "
            "a server trickling bytes may hold a synchronous call up to one read timeout past its deadline",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    for pool in pools:
        if not isinstance(pool._network_backend, DeadlineBackend):
            pool._network_backend = DeadlineBackend(pool._network_backend)
    return True
