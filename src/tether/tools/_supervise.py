"""Watch one child process to its end: feed its stdin, read its output with a cap, enforce a deadline.

Shared by the bubblewrap sandbox and the explicitly unsafe local runner. Nothing here blocks without
a deadline: output is read through ``selectors`` in small chunks, so a grandchild that keeps the
pipes open (a detached ``setsid`` child, say) cannot hold the call past ``deadline + grace``, and
the caller never holds more than the retained head and tail of each stream, however much the code
prints.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Capture", "Outcome", "supervise"]

_CHUNK = 65536
_POLL_S = 0.05  # how often the watch callback runs: the reaction time of the memory/process watch
_GRACE_S = 2.0  # after a kill, how long to wait for the pipes to close and the process to be reaped


class Capture:
    """The first and last ``keep`` bytes of a stream, and how many bytes it had in all."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self.keep - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > 2 * self.keep:  # trim in batches, so feeding stays linear
                del self.tail[: len(self.tail) - self.keep]

    def text(self) -> str:
        tail = self.tail[-self.keep :] if self.keep else b""
        cut = self.total - len(self.head) - len(tail)
        middle = f"\n… [{cut} bytes cut] …\n" if cut > 0 else ""
        return self.head.decode(errors="replace") + middle + bytes(tail).decode(errors="replace")


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """How a supervised process ended."""

    returncode: int | None  # None when it could not be reaped within the grace period
    stdout: Capture
    stderr: Capture
    stopped: str | None  # why the supervisor killed it ("timeout", "output", or a watch reason); None if it ended
    elapsed_s: float


def supervise(
    process: subprocess.Popen[bytes],
    stdin: bytes,
    *,
    timeout: float,
    output_limit: int,
    keep: int,
    kill: Callable[[], None],
    watch: Callable[[], str | None] | None = None,
) -> Outcome:
    """Run ``process`` to its end or until a bound is passed, then ``kill()`` it (the whole tree).

    ``output_limit`` caps stdout and stderr together; ``watch`` is called every few tens of
    milliseconds and returns a reason to stop (a bound it saw passed) or None.
    """
    assert process.stdin and process.stdout and process.stderr
    started = time.monotonic()
    deadline = started + timeout
    captures = {process.stdout.fileno(): Capture(keep), process.stderr.fileno(): Capture(keep)}
    selector = selectors.DefaultSelector()
    for stream in (process.stdin, process.stdout, process.stderr):
        os.set_blocking(stream.fileno(), False)
    pending = memoryview(stdin)
    if pending:
        selector.register(process.stdin, selectors.EVENT_WRITE)
    else:
        process.stdin.close()
    selector.register(process.stdout, selectors.EVENT_READ)
    selector.register(process.stderr, selectors.EVENT_READ)
    stopped: str | None = None
    killed_at = 0.0
    next_watch = started

    def stop(reason: str) -> None:
        nonlocal stopped, killed_at
        if stopped is None:
            stopped, killed_at = reason, time.monotonic()
            kill()

    try:
        while True:
            now = time.monotonic()
            if stopped is None and now >= deadline:
                stop("timeout")
            if stopped is not None and now >= killed_at + _GRACE_S:
                break  # something outside our reach holds the pipes; give up on them
            if not selector.get_map() and process.poll() is not None:
                break
            if watch is not None and stopped is None and now >= next_watch:
                next_watch = now + _POLL_S
                reason = watch()
                if reason is not None:
                    stop(reason)
                    continue
            wait = min(_POLL_S, max(0.0, (deadline if stopped is None else killed_at + _GRACE_S) - now))
            if not selector.get_map():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=wait)
                continue
            for key, _ in selector.select(timeout=wait):
                if key.fileobj is process.stdin:
                    pending = _write_some(selector, process, pending)
                    continue
                fd = key.fd
                try:
                    data = os.read(fd, _CHUNK)
                except BlockingIOError:
                    continue
                if not data:
                    selector.unregister(key.fileobj)
                    continue
                captures[fd].feed(data)
                if stopped is None and sum(c.total for c in captures.values()) > output_limit:
                    stop("output")
    finally:
        selector.close()
        for stream in (process.stdin, process.stdout, process.stderr):
            with contextlib.suppress(OSError):
                stream.close()
    returncode: int | None
    try:
        returncode = process.wait(timeout=_GRACE_S)
    except subprocess.TimeoutExpired:
        returncode = None
    out, err = captures.values()
    return Outcome(returncode=returncode, stdout=out, stderr=err, stopped=stopped, elapsed_s=time.monotonic() - started)


def _write_some(selector: selectors.BaseSelector, process: subprocess.Popen[bytes], pending: memoryview) -> memoryview:
    assert process.stdin
    try:
        sent = os.write(process.stdin.fileno(), pending[:_CHUNK])
    except BlockingIOError:
        return pending
    except BrokenPipeError:  # it stopped reading (it failed early, or ignores its input): not our error
        sent = len(pending)
    pending = pending[sent:]
    if not pending:
        selector.unregister(process.stdin)
        process.stdin.close()
    return pending
