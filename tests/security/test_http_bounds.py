"""Hostile model servers cannot take the client's memory or hold a call past its deadline.

Red-team issue 12, item 5: a 300 MB body, or a 300 MB stream line without a newline, was
buffered whole; a server trickling one byte at a time held a ``timeout=2`` call for as long
as it liked. Each test below plays such a server on a real loopback socket (no mocks) against
``ChatOpenAI`` and ``ChatOllama``, sync and async, plain and streaming.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import os
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.graph._retry import default_retry_on
from tether.models import (
    ChatOllama,
    ChatOpenAI,
    DeadlineExceededError,
    MalformedResponseError,
    ResponseTooLargeError,
    ServerError,
    StreamLineTooLongError,
    init_chat_model,
)
from tether.models._body import Inflater, LineSplitter
from tether.models._http import HTTPChatModel

MiB = 2**20
KINDS = ["openai", "ollama"]
MODES = ["invoke", "ainvoke", "stream", "astream"]
# a hostile server gives up after this long, so that the code before the fix fails these
# tests (too slow, or the wrong error) instead of hanging
HOSTILE_FOR_S = 12.0
# how late past its deadline a call may end: generous, the machine is shared and noisy
MARGIN_S = 3.0

# -- a loopback server that plays whatever a test hands it ------------------------------

Play = Callable[["_Handler", int], None]  # (the handler, which request this is: 1, 2, …)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.body = json.loads(raw)
        self.server.headers_seen.append({k.lower(): v for k, v in self.headers.items()})
        self.server.play(self, len(self.server.headers_seen))

    @property
    def kind(self) -> str:
        return "openai" if self.path.startswith("/v1/") else "ollama"

    @property
    def streaming(self) -> bool:
        return bool(self.body.get("stream", self.kind == "ollama"))  # Ollama streams unless told not to

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, play: Play) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.play = play
        self.headers_seen: list[dict[str, str]] = []
        self.stopping = threading.Event()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up has closed its socket: writing to it fails, as expected

    @property
    def root(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


@pytest.fixture
def serve() -> Iterator[Callable[[Play], _Server]]:
    started: list[_Server] = []

    def start(play: Play) -> _Server:
        server = _Server(play)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stopping.set()
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys, hosts and proxies of the developer's shell must not reach these loopback calls."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OLLAMA_HOST", *_PROXY_VARIABLES):
        monkeypatch.delenv(name, raising=False)


_PROXY_VARIABLES = [v for name in ("http_proxy", "https_proxy", "all_proxy") for v in (name, name.upper())]


# -- what the servers send ----------------------------------------------------------------


def reply(kind: str, content: str) -> bytes:
    """A whole, valid non-streamed answer in ``kind``'s protocol."""
    if kind == "openai":
        message = {"role": "assistant", "content": content}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        return json.dumps({"id": "c1", "model": "m", "choices": [choice], "usage": usage}).encode()
    return json.dumps(
        {"model": "m", "message": {"role": "assistant", "content": content}, "done": True, "done_reason": "stop"}
    ).encode()


def piece(kind: str, content: str) -> bytes:
    """One streamed piece of text: an SSE event for OpenAI, an NDJSON line for Ollama."""
    if kind == "openai":
        chunk = {"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"content": content}}]}
        return b"data: " + json.dumps(chunk).encode() + b"\n\n"
    return (
        json.dumps({"model": "m", "message": {"role": "assistant", "content": content}, "done": False}).encode() + b"\n"
    )


def stream_end(kind: str) -> bytes:
    if kind == "openai":
        chunk = {"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        return b"data: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n"
    return json.dumps({"model": "m", "message": {"role": "assistant", "content": ""}, "done": True}).encode() + b"\n"


def start_answer(h: _Handler, *, length: int | None = None, status: int = 200, **headers: str) -> None:
    h.send_response(status)
    h.send_header("Content-Type", "text/event-stream" if h.streaming else "application/json")
    if length is None:
        h.send_header("Transfer-Encoding", "chunked")
    else:
        h.send_header("Content-Length", str(length))
    for name, value in headers.items():
        h.send_header(name.replace("_", "-"), value)
    h.end_headers()


def chunk(h: _Handler, data: bytes) -> None:
    h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))


def end_chunks(h: _Handler) -> None:
    h.wfile.write(b"0\r\n\r\n")


def stream_frames(kind: str, content: str) -> list[bytes]:
    """A normal streamed answer: ``content`` in pieces of 40 characters, then the end."""
    return [piece(kind, content[i : i + 40]) for i in range(0, len(content), 40)] + [stream_end(kind)]


def answer_well(h: _Handler, content: str = "fine") -> None:
    """A normal answer, in whichever shape the request asked for."""
    if h.streaming:
        start_answer(h)
        for frame in stream_frames(h.kind, content):
            chunk(h, frame)
        end_chunks(h)
    else:
        body = reply(h.kind, content)
        start_answer(h, length=len(body))
        h.wfile.write(body)


BLOCK = b" " * MiB  # JSON whitespace: a body of it is endless but not malformed


def flood(h: _Handler, total: int, block: bytes = BLOCK, *, framed: bool = True) -> None:
    """``total`` bytes of ``block``, sent as fast as the client reads (chunked unless not ``framed``)."""
    for _ in range(math.ceil(total / len(block))):
        if h.server.stopping.is_set():
            return
        if framed:
            chunk(h, block)
        else:
            h.wfile.write(block)


def model_for(kind: str, server: _Server, **options: Any) -> HTTPChatModel:
    options.setdefault("max_retries", 0)
    if kind == "openai":
        return ChatOpenAI("m", api_key="sk-test", base_url=f"{server.root}/v1", **options)
    return ChatOllama("m", base_url=server.root, **options)


async def _collect(model: HTTPChatModel, sink: list[Any]) -> None:
    async for part in model.astream("hi"):
        sink.append(part)


def call(model: HTTPChatModel, mode: str, sink: list[Any] | None = None) -> Any:
    """One call in ``mode``; streamed parts go into ``sink`` as they arrive."""
    sink = [] if sink is None else sink
    with model:
        if mode == "invoke":
            return model.invoke("hi")
        if mode == "ainvoke":
            return asyncio.run(model.ainvoke("hi"))
        if mode == "stream":
            for part in model.stream("hi"):
                sink.append(part)
            return sink
        asyncio.run(_collect(model, sink))
        return sink


def streams(mode: str) -> bool:
    return mode in ("stream", "astream")


# -- size -----------------------------------------------------------------------------------


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
def test_a_body_over_max_response_bytes_is_refused(
    serve: Callable[[Play], _Server], kind: str, mode: str, framing: str
) -> None:
    size = 32 * MiB

    def play(h: _Handler, n: int) -> None:
        start_answer(h, length=size if framing == "content-length" else None)
        flood(h, size, framed=framing == "chunked")
        if framing == "chunked":
            end_chunks(h)

    server = serve(play)
    model = model_for(kind, server, max_response_bytes=MiB, max_retries=2)
    started = time.monotonic()
    with pytest.raises(ResponseTooLargeError) as caught:
        call(model, mode)
    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert "max_response_bytes" in message and "1 MiB" in message and server.root in message
    assert caught.value.limit == MiB and caught.value.option == "max_response_bytes"
    if framing == "content-length":
        assert f"announced a body of {size} bytes" in message  # refused before reading it
    assert len(server.headers_seen) == 1  # never retried, by the client
    assert not default_retry_on(caught.value)  # nor by a graph's default RetryPolicy


@pytest.mark.parametrize("ended", [False, True], ids=["no-newline", "newline"])
@pytest.mark.parametrize("mode", ["stream", "astream"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_stream_line_over_max_line_bytes_is_refused(
    serve: Callable[[Play], _Server], kind: str, mode: str, ended: bool
) -> None:
    def play(h: _Handler, n: int) -> None:
        start_answer(h)
        chunk(h, piece(h.kind, "first"))
        if ended:  # a whole line, one byte too long
            chunk(h, b"x" * (64 * 1024 + 1) + b"\n")
        else:  # a line that goes on until the server gives up
            flood(h, 32 * MiB, b"x" * MiB)
        end_chunks(h)

    server = serve(play)
    sink: list[Any] = []
    with pytest.raises(StreamLineTooLongError) as caught:
        call(model_for(kind, server, max_line_bytes=64 * 1024, max_retries=2), mode, sink)
    message = str(caught.value)
    assert "max_line_bytes" in message and "64 KiB" in message and server.root in message
    assert ("without ending" in message) is not ended
    assert caught.value.limit == 64 * 1024 and isinstance(caught.value, ResponseTooLargeError)
    assert [part.text for part in sink] == ["first"]  # what came before the long line got through
    assert len(server.headers_seen) == 1


@pytest.mark.parametrize("mode", ["stream", "astream"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_stream_of_short_lines_is_held_to_max_response_bytes(
    serve: Callable[[Play], _Server], kind: str, mode: str
) -> None:
    def play(h: _Handler, n: int) -> None:
        start_answer(h)
        line = piece(h.kind, "x" * 1000)
        flood(h, 32 * MiB, line * 100)
        chunk(h, stream_end(h.kind))
        end_chunks(h)

    sink: list[Any] = []
    with pytest.raises(ResponseTooLargeError, match="max_response_bytes"):
        call(model_for(kind, serve(play), max_response_bytes=2 * MiB), mode, sink)
    received = sum(len(part.text) for part in sink)
    assert 1 * MiB < received < 2 * MiB


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
def test_answers_at_the_limits_are_read_and_one_byte_more_is_not(
    serve: Callable[[Play], _Server], kind: str, mode: str
) -> None:
    """The bounds cut exactly at their value: a real answer within them is untouched."""
    text = "word " * 2000 + "and a line longer than the others " * 3

    def play(h: _Handler, n: int) -> None:
        answer_well(h, text)

    server = serve(play)
    # measure the answer: its size, and its longest line when streamed
    if streams(mode):
        lines = b"".join(stream_frames(kind, text)).splitlines()
        limit_option, exact = "max_line_bytes", max(len(line) for line in lines)
    else:
        limit_option, exact = "max_response_bytes", len(reply(kind, text))
    parts = call(model_for(kind, server, **{limit_option: exact}), mode)
    assert ("".join(p.text for p in parts) if streams(mode) else parts.text) == text
    error = StreamLineTooLongError if streams(mode) else ResponseTooLargeError
    with pytest.raises(error, match=limit_option):
        call(model_for(kind, server, **{limit_option: exact - 1}), mode)


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
def test_an_error_answer_is_read_only_as_far_as_its_message(serve: Callable[[Play], _Server], mode: str) -> None:
    def play(h: _Handler, n: int) -> None:
        start_answer(h, status=500)
        chunk(h, b'{"error": {"message": "overloaded", "padding": "')
        flood(h, 64 * MiB, b"x" * MiB)
        end_chunks(h)

    with pytest.raises(ServerError, match="failed with 500") as caught:
        call(model_for("openai", serve(play)), mode)
    assert caught.value.response is not None
    assert len(caught.value.response.content) <= 64 * 1024


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
def test_an_encoding_that_was_not_asked_for_is_refused(serve: Callable[[Play], _Server], mode: str) -> None:
    """zstd and brotli can expand a few bytes into gigabytes in one read: only gzip and deflate
    (at most ~1000x) are asked for, and an answer in anything else is not decoded."""

    def play(h: _Handler, n: int) -> None:
        body = b"\x28\xb5\x2f\xfd" + b"\0" * 16  # what a zstd frame starts with; never decoded
        start_answer(h, length=len(body), Content_Encoding="zstd")
        h.wfile.write(body)

    server = serve(play)
    with pytest.raises(MalformedResponseError, match="Content-Encoding 'zstd'"):
        call(model_for("ollama", server), mode)
    assert server.headers_seen[0]["accept-encoding"] == "gzip, deflate"


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate"])
@pytest.mark.parametrize("mode", MODES)
def test_compressed_answers_within_the_limits_are_read(
    serve: Callable[[Play], _Server], mode: str, encoding: str
) -> None:
    text = "compressible " * 5000
    wbits = {"gzip": 31, "deflate": 15, "raw-deflate": -15}[encoding]

    def play(h: _Handler, n: int) -> None:
        plain = b"".join(stream_frames(h.kind, text)) if h.streaming else reply(h.kind, text)
        packer = zlib.compressobj(6, zlib.DEFLATED, wbits)
        body = packer.compress(plain) + packer.flush()
        start_answer(h, Content_Encoding=encoding.removeprefix("raw-"))
        for i in range(0, len(body), 100):  # in small pieces, each decoded as it comes
            chunk(h, body[i : i + 100])
        end_chunks(h)

    # 65 KB of text (~220 KB streamed) in a body of a few KB: the limit counts what it decodes to
    parts = call(model_for("openai", serve(play), max_response_bytes=MiB), mode)
    assert ("".join(p.text for p in parts) if streams(mode) else parts.text) == text
    with pytest.raises(ResponseTooLargeError):
        call(model_for("openai", serve(play), max_response_bytes=20_000), mode)


def test_inflating_goes_a_slice_at_a_time() -> None:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = packer.compress(bytes(50 * MiB)) + packer.flush()
    inflater = Inflater("gzip")
    sizes = [len(data) for data in inflater.feed(bomb)]
    assert sum(sizes) == 50 * MiB and max(sizes) == Inflater.SLICE


@given(
    st.lists(st.sampled_from([b"a", b"bc", b"\r", b"\n", b"\r\n", b"data: x"]), max_size=30),
    st.lists(st.integers(min_value=0, max_value=200), max_size=8),
)
def test_lines_split_as_bytes_splitlines_does_however_the_chunks_fall(parts: list[bytes], cuts: list[int]) -> None:
    data = b"".join(parts)
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    splitter = LineSplitter(1000, lambda size, ended: AssertionError("no line is that long"))
    lines = [line for a, b in itertools.pairwise(bounds) for line in splitter.feed(data[a:b])]
    assert lines + splitter.end() == data.splitlines()


# -- time -----------------------------------------------------------------------------------


def trickle(h: _Handler, byte: bytes = b" ") -> None:
    """One byte every half second until the server gives up (or the client goes away)."""
    for _ in range(int(HOSTILE_FOR_S / 0.5)):
        if h.server.stopping.wait(0.5):
            return
        h.wfile.write(byte)
    h.close_connection = True


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
def test_a_server_trickling_its_body_is_cut_off_at_the_deadline(
    serve: Callable[[Play], _Server], kind: str, mode: str
) -> None:
    def play(h: _Handler, n: int) -> None:
        start_answer(h, length=10**6)  # a body it never finishes, one space at a time
        trickle(h)

    server = serve(play)
    started = time.monotonic()
    with pytest.raises(DeadlineExceededError) as caught:
        call(model_for(kind, server, timeout=2, deadline=2, max_retries=3), mode)
    elapsed = time.monotonic() - started
    assert 1.9 <= elapsed < 2 + MARGIN_S
    message = str(caught.value)
    assert "deadline of 2s" in message and "deadline=" in message and server.root in message
    assert caught.value.deadline == 2
    assert len(server.headers_seen) == 1  # not retried


@pytest.mark.parametrize("mode", ["invoke", "astream"])  # no call reads a body before its headers
@pytest.mark.parametrize("kind", KINDS)
def test_a_server_trickling_its_headers_is_cut_off_at_the_deadline(
    serve: Callable[[Play], _Server], kind: str, mode: str
) -> None:
    """httpx has no control before the headers end: the deadline must reach into each read."""

    def play(h: _Handler, n: int) -> None:
        h.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        trickle(h, b"a")

    started = time.monotonic()
    with pytest.raises(DeadlineExceededError):
        call(model_for(kind, serve(play), timeout=2, deadline=2), mode)
    assert time.monotonic() - started < 2 + MARGIN_S


@pytest.mark.parametrize("mode", ["stream", "astream"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_slow_stream_of_valid_chunks_is_cut_off_at_the_deadline(
    serve: Callable[[Play], _Server], kind: str, mode: str
) -> None:
    def play(h: _Handler, n: int) -> None:
        start_answer(h)
        for _ in range(int(HOSTILE_FOR_S / 0.2)):
            chunk(h, piece(h.kind, "more "))
            if h.server.stopping.wait(0.2):
                return
        chunk(h, stream_end(h.kind))
        end_chunks(h)

    sink: list[Any] = []
    started = time.monotonic()
    with pytest.raises(DeadlineExceededError, match="still arriving"):
        call(model_for(kind, serve(play), timeout=5, deadline=2), mode, sink)
    assert time.monotonic() - started < 2 + MARGIN_S
    assert len(sink) >= 3  # the chunks that came in time were passed on as they came


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
def test_the_deadline_spans_retries(serve: Callable[[Play], _Server], mode: str) -> None:
    """A server that keeps failing, asking for a retry each time, gets no more of the call's
    time than its deadline; the last failure is what is raised, saying why it was the last."""

    def play(h: _Handler, n: int) -> None:
        body = b'{"error": {"message": "busy"}}'
        start_answer(h, length=len(body), status=503, Retry_After="0.8")
        h.wfile.write(body)

    server = serve(play)
    started = time.monotonic()
    with pytest.raises(ServerError, match=r"deadline of 2s") as caught:
        call(model_for("openai", server, deadline=2, max_retries=10), mode)
    assert time.monotonic() - started < 2 + MARGIN_S
    assert 2 <= caught.value.attempts == len(server.headers_seen) <= 4


# -- options --------------------------------------------------------------------------------


def test_defaults_are_documented_values() -> None:
    openai = ChatOpenAI("m", api_key="k", base_url="http://127.0.0.1:1/v1")
    ollama = ChatOllama("m", base_url="http://127.0.0.1:1")
    for model in (openai, ollama):
        assert (model.max_response_bytes, model.max_line_bytes) == (64 * MiB, 8 * MiB)
    # "auto": ten read timeouts, never under five minutes, none without a timeout
    assert (openai.timeout, openai.deadline) == (60, 600)
    assert (ollama.timeout, ollama.deadline) == (300, 3000)
    assert ChatOpenAI("m", api_key="k", timeout=2).deadline == 300
    assert ChatOpenAI("m", api_key="k", timeout=None).deadline is None
    assert ChatOpenAI("m", api_key="k", deadline=None).deadline is None
    assert ChatOllama("m", deadline=7.5).deadline == 7.5
    chosen = init_chat_model("ollama:m", max_response_bytes=1000, max_line_bytes=100, deadline=9)
    assert isinstance(chosen, ChatOllama)
    assert (chosen.max_response_bytes, chosen.max_line_bytes, chosen.deadline) == (1000, 100, 9)
    assert "deadline" not in chosen.model_options  # an option of the client, not of the model


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("max_response_bytes", -1, ValueError),
        ("max_response_bytes", 0, ValueError),
        ("max_response_bytes", "64MB", TypeError),
        ("max_response_bytes", 1.5, TypeError),
        ("max_response_bytes", True, TypeError),
        ("max_line_bytes", -5, ValueError),
        ("max_line_bytes", None, TypeError),
        ("deadline", -1, ValueError),
        ("deadline", 0, ValueError),
        ("deadline", float("nan"), ValueError),
        ("deadline", float("inf"), ValueError),
        ("deadline", "soon", TypeError),
        ("deadline", True, TypeError),
    ],
)
@pytest.mark.parametrize("kind", KINDS)
def test_bad_options_are_refused_by_name(kind: str, option: str, value: Any, error: type[Exception]) -> None:
    key = {"api_key": "k"} if kind == "openai" else {}
    with pytest.raises(error, match=option):
        init_chat_model(f"{kind}:m", **key, **{option: value})


# -- memory: 300 MB at the default limits, in a fresh process --------------------------------

_CLIENT = r"""
import asyncio, json, sys
from tether.models import ChatOllama, ChatOpenAI

def peak_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

async def drain(stream):
    async for _ in stream:
        pass

kind, mode, root = sys.argv[1:4]
if kind == "openai":
    model = ChatOpenAI("m", api_key="sk-test", base_url=root + "/v1", max_retries=0)
else:
    model = ChatOllama("m", base_url=root, max_retries=0)

def call():
    if mode == "invoke":
        model.invoke("hi")
    elif mode == "ainvoke":
        asyncio.run(model.ainvoke("hi"))
    elif mode == "stream":
        for _ in model.stream("hi"):
            pass
    else:
        asyncio.run(drain(model.astream("hi")))

call()  # the first answer is small: imports, pools and caches settle before measuring
before = peak_kib()
try:
    call()
    error = None
except Exception as exc:
    error = type(exc).__name__
print(json.dumps({"before": before, "after": peak_kib(), "error": error}))
"""

HUGE = 300 * 10**6


@cache
def gzip_bomb() -> bytes:
    """300 MB of zeros, gzipped to ~0.3 MB."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(MiB)
    return b"".join([*(packer.compress(zeros) for _ in range(HUGE // MiB)), packer.flush()])


def _huge_body(h: _Handler) -> None:
    start_answer(h)
    flood(h, HUGE)
    end_chunks(h)


def _huge_line(h: _Handler) -> None:
    start_answer(h)
    chunk(h, b"{")
    flood(h, HUGE, b"x" * MiB)
    end_chunks(h)


def _huge_stream(h: _Handler) -> None:
    start_answer(h)
    flood(h, HUGE, piece(h.kind, "y" * 60_000) * 16)
    end_chunks(h)


def _huge_gzip(h: _Handler) -> None:
    bomb = gzip_bomb()
    start_answer(h, length=len(bomb), Content_Encoding="gzip")
    h.wfile.write(bomb)


@pytest.mark.parametrize(
    ("kind", "mode", "send", "error", "bound_mib"),
    [  # a body is kept up to the 64 MiB limit, a line up to 8 MiB; a stream keeps no lines
        ("openai", "invoke", _huge_body, "ResponseTooLargeError", 100),
        ("ollama", "ainvoke", _huge_gzip, "ResponseTooLargeError", 100),
        ("ollama", "stream", _huge_line, "StreamLineTooLongError", 40),
        ("openai", "astream", _huge_stream, "ResponseTooLargeError", 40),
    ],
    ids=["body", "gzip-bomb", "line", "stream"],
)
def test_300_mb_at_the_default_limits_costs_a_bounded_amount_of_memory(
    serve: Callable[[Play], _Server],
    kind: str,
    mode: str,
    send: Callable[[_Handler], None],
    error: str,
    bound_mib: int,
) -> None:
    if send is _huge_gzip:
        gzip_bomb()  # made before the clock starts

    def play(h: _Handler, n: int) -> None:
        if n == 1:
            answer_well(h)
        else:
            send(h)

    server = serve(play)
    env = {k: v for k, v in os.environ.items() if k not in _PROXY_VARIABLES}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", _CLIENT, kind, mode, server.root], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    grew_mib = (result["after"] - result["before"]) / 1024
    print(f"{kind} {mode}: peak RSS grew {grew_mib:.0f} MiB in {time.monotonic() - started:.1f}s")
    assert result["error"] == error
    assert grew_mib < bound_mib, f"peak RSS grew {grew_mib:.0f} MiB reading a 300 MB answer"
