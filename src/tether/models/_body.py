"""Reading one answer's body within its bounds, as the bytes arrive, never after.

``BoundedBody`` takes the raw bytes of a 2xx answer (what ``iter_raw`` yields) and undoes their
Content-Encoding a slice at a time (``Inflater``), counting every decoded byte against
``max_response_bytes`` and, for a stream, splitting lines that may not pass
``max_line_bytes`` (``LineSplitter``). ``ErrorBody`` keeps the start of a non-2xx answer.
So memory stays within the limit plus one slice, whatever the server sends.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterator
from typing import Protocol

import httpx

from tether.models._http_errors import (
    DeadlineExceededError,
    MalformedResponseError,
    ResponseTooLargeError,
    StreamLineTooLongError,
)
from tether.models._limits import Deadline


class BodyLimits(Protocol):
    """What a body reader needs from its transport (``HTTPTransport``, which imports this module)."""

    provider: str
    max_response_bytes: int
    max_line_bytes: int

    def deadline_error(self, url: str, attempt: int, *, mid_stream: bool = False) -> DeadlineExceededError: ...


__all__ = [
    "ACCEPT_ENCODING",
    "ERROR_BODY_MAX_BYTES",
    "BoundedBody",
    "ErrorBody",
    "Inflater",
    "LineSplitter",
]

# Only what zlib can undo a slice at a time is asked for: brotli and zstd (which httpx would
# decode whole, gigabytes from a few bytes) are not, and an answer in them is refused.
ACCEPT_ENCODING = "gzip, deflate"
# an error answer is read up to this much (its message is what matters), then cut
ERROR_BODY_MAX_BYTES = 64 * 1024


# -- content encodings -----------------------------------------------------------------
class Inflater:
    """A body's Content-Encoding undone as it arrives, at most ``SLICE`` bytes at a time.

    httpx's decoders hand back everything one network read expands to (64 KiB of gzip is up to
    64 MiB); zlib's ``max_length`` lets this stop after each slice so the caller can count it.
    """

    SLICE = 256 * 1024
    ENCODINGS = frozenset({"", "identity", "gzip", "x-gzip", "deflate"})

    def __init__(self, encoding: str) -> None:
        if encoding not in self.ENCODINGS:
            raise ValueError(f"cannot inflate Content-Encoding {encoding!r}")
        self.encoding = encoding
        self._zlib: zlib._Decompress | None = None
        if encoding in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif encoding == "deflate":  # meant to be zlib-wrapped; some servers send it raw
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS)
        self._started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decoded bytes of ``data``, slice by slice (``zlib.error`` if it is not ``encoding``)."""
        if self._zlib is None:
            if data:
                yield data
            return
        pending = data
        while True:
            try:
                out = self._zlib.decompress(pending, self.SLICE)
            except zlib.error:
                if self.encoding != "deflate" or self._started:
                    raise
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, as httpx also tries
                out = self._zlib.decompress(pending, self.SLICE)
            self._started = True
            if out:
                yield out
            pending = self._zlib.unconsumed_tail
            if not pending and len(out) < self.SLICE:  # a full slice may have more behind it
                return


def _encoding(response: httpx.Response) -> str:
    value: str = response.headers.get("content-encoding", "")
    return value.strip().lower()


# -- lines of a stream -----------------------------------------------------------------
_LINE_END = re.compile(rb"\r\n|\r|\n")


class LineSplitter:
    """Bytes in, the lines they finish out (``\\n``, ``\\r\\n`` or ``\\r`` ends one, as SSE allows),
    refusing a line once it passes ``max_bytes``, finished or not.

    Only the unfinished line is kept between chunks, so memory stays within ``max_bytes``
    plus one chunk whatever the server sends.
    """

    def __init__(self, max_bytes: int, too_long: Callable[[int, bool], Exception]) -> None:
        self.max_bytes = max_bytes
        self._too_long = too_long  # (bytes seen, whether the line had ended) -> the error
        self._partial = bytearray()
        self._after_cr = False  # the last chunk ended in \r: a \n starting the next is its pair

    def feed(self, data: bytes) -> list[bytes]:
        if self._after_cr and data.startswith(b"\n"):
            data = data[1:]
        self._after_cr = data.endswith(b"\r")
        lines = []
        start = 0
        for end in _LINE_END.finditer(data):
            lines.append(self._finish(data[start : end.start()]))
            start = end.end()
        rest = len(data) - start
        if len(self._partial) + rest > self.max_bytes:
            raise self._too_long(len(self._partial) + rest, False)
        self._partial += data[start:]
        return lines

    def end(self) -> list[bytes]:
        """The last line, when the stream did not end it."""
        return [self._finish(b"")] if self._partial else []

    def _finish(self, tail: bytes) -> bytes:
        size = len(self._partial) + len(tail)
        if size > self.max_bytes:
            raise self._too_long(size, True)
        if not self._partial:
            return tail
        line = bytes(self._partial + tail)
        self._partial.clear()
        return line


# -- bodies ----------------------------------------------------------------------------
class BoundedBody:
    """One 2xx answer's body, fed its raw bytes as they arrive: ``keep`` collects a whole body,
    ``lines`` splits a stream. Every decoded byte counts against ``max_response_bytes`` before
    it is kept, every line against ``max_line_bytes``, and the call's deadline is checked after
    every chunk. A Content-Length over the limit, or an encoding that was not asked for, is
    refused before any of the body is read."""

    def __init__(self, transport: BodyLimits, response: httpx.Response, url: str, clock: Deadline) -> None:
        self.transport = transport
        self.response = response
        self.url = url
        self.clock = clock
        self.received = 0
        self.content = bytearray()  # json.loads reads a bytearray: no copy of a large body
        self._lines = LineSplitter(transport.max_line_bytes, self._line_too_long)
        encoding = _encoding(response)
        if encoding not in Inflater.ENCODINGS:
            raise MalformedResponseError(
                f"{transport.provider} at {url} sent its answer in Content-Encoding {encoding!r}, "
                f"which was not asked for (Accept-Encoding: {ACCEPT_ENCODING}) and cannot be read "
                "within max_response_bytes; check the server or the proxy in front of it",
                url=url,
                status_code=response.status_code,
                response=response,
            )
        self._inflater = Inflater(encoding)
        declared = response.headers.get("content-length", "")
        if encoding in ("", "identity") and declared.isdigit() and int(declared) > transport.max_response_bytes:
            raise self._too_large(f"announced a body of {int(declared)} bytes (its Content-Length)")

    def keep(self, raw: bytes) -> None:
        for data in self._decoded(raw):
            self.content += data

    def lines(self, raw: bytes) -> list[str]:
        lines = [line for data in self._decoded(raw) for line in self._lines.feed(data)]
        return [line.decode("utf-8", errors="replace") for line in lines]

    def end(self) -> list[str]:
        return [line.decode("utf-8", errors="replace") for line in self._lines.end()]

    def _decoded(self, raw: bytes) -> Iterator[bytes]:
        try:
            for data in self._inflater.feed(raw):
                self.received += len(data)
                if self.received > self.transport.max_response_bytes:
                    raise self._too_large(f"sent more than {self.transport.max_response_bytes} bytes")
                yield data
        except zlib.error as exc:
            raise MalformedResponseError(
                f"{self.transport.provider} at {self.url} sent a body that is not valid "
                f"{self._inflater.encoding} ({exc}), though its Content-Encoding says so",
                url=self.url,
                status_code=self.response.status_code,
                response=self.response,
            ) from exc
        if self.clock.expired():
            raise self.transport.deadline_error(self.url, 1, mid_stream=True)

    def _too_large(self, what: str) -> ResponseTooLargeError:
        limit = self.transport.max_response_bytes
        return ResponseTooLargeError(
            f"{self.transport.provider} at {self.url} {what}, over the max_response_bytes limit of "
            f"{_size(limit)}; stopped reading. If answers this large are expected, "
            "pass a larger max_response_bytes= to the model",
            url=self.url,
            status_code=self.response.status_code,
            response=self.response,
            limit=limit,
        )

    def _line_too_long(self, size: int, ended: bool) -> StreamLineTooLongError:
        limit = self.transport.max_line_bytes
        what = f"a stream line of {size} bytes" if ended else f"a stream line that passed {size} bytes without ending"
        return StreamLineTooLongError(
            f"{self.transport.provider} at {self.url} sent {what}, over the max_line_bytes limit of "
            f"{_size(limit)}; stopped reading. If lines this long are expected, "
            "pass a larger max_line_bytes= to the model",
            url=self.url,
            status_code=self.response.status_code,
            response=self.response,
            limit=limit,
        )


class ErrorBody:
    """The start of a non-2xx answer, up to ``ERROR_BODY_MAX_BYTES`` decoded: its message is all
    that matters, and a server must not make an error cost more memory than that. A body it
    cannot decode (an encoding not asked for, corrupt gzip) is left out, not an error."""

    def __init__(self, response: httpx.Response, max_response_bytes: int) -> None:
        self.response = response
        self.cap = min(ERROR_BODY_MAX_BYTES, max_response_bytes)
        self.content = bytearray()
        encoding = _encoding(response)
        self._inflater = Inflater(encoding) if encoding in Inflater.ENCODINGS else None

    @property
    def wanted(self) -> bool:
        return self._inflater is not None and len(self.content) < self.cap

    def keep(self, raw: bytes) -> bool:
        """Whether to read on."""
        if self._inflater is None:
            return False
        try:
            for data in self._inflater.feed(raw):
                self.content += data[: self.cap - len(self.content)]
                if len(self.content) >= self.cap:
                    return False
        except zlib.error:
            self._inflater = None
        return self.wanted

    def finished(self) -> httpx.Response:
        """A read copy of the response holding what was kept (decoded, perhaps cut), so that the
        error's ``response.text`` and ``.json()`` work."""
        skip = {"content-encoding", "content-length", "transfer-encoding"}
        headers = [(k, v) for k, v in self.response.headers.multi_items() if k.lower() not in skip]
        return httpx.Response(
            self.response.status_code, headers=headers, content=bytes(self.content), request=self.response.request
        )


def _size(count: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= scale and count % scale == 0:
            return f"{count // scale} {unit} ({count} bytes)"
    return f"{count} bytes"
