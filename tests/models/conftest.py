"""Real HTTP servers on 127.0.0.1 that speak the OpenAI chat-completions and Ollama chat APIs.

The clients under test are never patched: they talk to these servers over loopback sockets.
A test queues what the server does next (``Say`` an answer, ``Fail`` with a status, ``Stall``,
``Drop`` the connection, send ``Raw`` bytes); the fake renders a ``Say`` in its protocol's own
shape, as one JSON reply or as a stream (SSE for OpenAI, NDJSON for Ollama) depending on what
the request asked for, and records every request so tests can check what the client sent.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tether.models import ChatOllama, ChatOpenAI

# -- what a test can make the server do --------------------------------------------------


@dataclass
class Say:
    """The model's answer, rendered by each fake in its protocol's shape."""

    content: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    input_tokens: int = 11
    output_tokens: int = 7
    raw_arguments: str | None = None  # sent as the first tool call's arguments text, unchecked
    usage_details: dict[str, Any] = field(default_factory=dict)  # OpenAI: e.g. prompt_tokens_details


@dataclass
class Fail:
    """Answer ``status`` with ``body`` (a dict is sent as JSON, a str as text)."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Raw:
    body: bytes
    status: int = 200
    content_type: str = "application/json"


@dataclass
class Stall:
    """Wait ``seconds`` (or until the server stops) before doing ``then``."""

    seconds: float
    then: Any = field(default_factory=lambda: Say("too late"))


@dataclass
class Drop:
    """Close the connection without answering."""


@dataclass
class Cut:
    """Start a chunked answer with ``frame``, then close the connection mid-body."""

    frame: bytes
    content_type: str = "text/event-stream"


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


# -- the servers -------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked streams, as real servers do
    server: _HTTPServer

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body: Any = json.loads(raw)
        except json.JSONDecodeError:
            body = raw.decode(errors="replace")
        request = Request("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        self.server.fake.handle(self, request)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that timed out has gone away; writing to it fails, which is expected here
        pass


class FakeServer:
    """A loopback HTTP server playing a script; subclasses speak one protocol."""

    api_path = "/"

    def __init__(self, models: Iterable[str]) -> None:
        self.models = set(models)
        self.script: deque[Any] = deque()
        self.requests: list[Request] = []
        self._stopping = threading.Event()
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def root(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def then(self, *items: Any) -> FakeServer:
        """Queue what the next requests get; once the queue is empty every request gets ``Say("ok")``."""
        self.script.extend(items)
        return self

    @property
    def last(self) -> Request:
        return self.requests[-1]

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    # -- one request -----------------------------------------------------------------------
    def handle(self, h: _Handler, request: Request) -> None:
        self.requests.append(request)
        refusal = self.refuse(request)
        item = refusal or (self.script.popleft() if self.script else Say("ok"))
        if isinstance(item, Stall):
            self._stopping.wait(item.seconds)
            item = item.then
        if isinstance(item, Drop):
            h.close_connection = True
            return
        if isinstance(item, Fail):
            body = self.error_body(item.status, "scripted failure") if item.body is None else item.body
            if isinstance(body, str):
                send(h, item.status, body.encode(), "text/plain", item.headers)
            else:
                send(h, item.status, json.dumps(body).encode(), "application/json", item.headers)
        elif isinstance(item, Raw):
            send(h, item.status, item.body, item.content_type)
        elif isinstance(item, Cut):
            h.send_response(200)
            h.send_header("Content-Type", item.content_type)
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            h.wfile.write(b"%x\r\n%s\r\n" % (len(item.frame), item.frame))
            h.close_connection = True  # no terminating chunk: the body is incomplete
        else:
            self.answer(h, request, item)

    def refuse(self, request: Request) -> Fail | None:
        """What the protocol itself refuses (wrong path, unknown model…), before the script."""
        if request.path != self.api_path:
            return Fail(404, self.error_body(404, f"no route for {request.path}"))
        if not isinstance(request.body, dict):
            return Fail(400, self.error_body(400, "the body is not JSON"))
        if request.body.get("model") not in self.models:
            return Fail(404, self.model_not_found(str(request.body.get("model"))))
        return None

    def error_body(self, status: int, message: str) -> Any:
        raise NotImplementedError

    def model_not_found(self, model: str) -> Any:
        raise NotImplementedError

    def answer(self, h: _Handler, request: Request, say: Say) -> None:
        raise NotImplementedError


class FakeOpenAI(FakeServer):
    """``POST /v1/chat/completions`` as OpenAI documents it (and vLLM, llama.cpp… implement it)."""

    api_path = "/v1/chat/completions"

    def __init__(self, models: Iterable[str] = ("gpt-test",), api_key: str | None = "sk-test") -> None:
        super().__init__(models)
        self.api_key = api_key

    @property
    def url(self) -> str:
        return f"{self.root}/v1"

    def refuse(self, request: Request) -> Fail | None:
        if self.api_key and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return Fail(
                401,
                {
                    "error": {
                        "message": "Incorrect API key provided.",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                },
            )
        return super().refuse(request)

    def error_body(self, status: int, message: str) -> Any:
        return {"error": {"message": message, "type": "server_error" if status >= 500 else "invalid_request_error"}}

    def model_not_found(self, model: str) -> Any:
        return {
            "error": {
                "message": f"The model `{model}` does not exist or you do not have access to it.",
                "type": "invalid_request_error",
                "param": None,
                "code": "model_not_found",
            }
        }

    def answer(self, h: _Handler, request: Request, say: Say) -> None:
        model = request.body["model"]
        calls = [
            {
                "id": f"call_{i}abc",
                "type": "function",
                "function": {
                    "name": name,
                    "arguments": say.raw_arguments if say.raw_arguments is not None and i == 0 else json.dumps(args),
                },
            }
            for i, (name, args) in enumerate(say.tool_calls)
        ]
        usage = {
            "prompt_tokens": say.input_tokens,
            "completion_tokens": say.output_tokens,
            "total_tokens": say.input_tokens + say.output_tokens,
            **say.usage_details,
        }
        finish = "tool_calls" if calls else "stop"
        if not request.body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": say.content or None, "refusal": None}
            if calls:
                message["tool_calls"] = calls
            reply = {
                "id": "chatcmpl-fake1",
                "object": "chat.completion",
                "created": 1700000000,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                "usage": usage,
            }
            send(h, 200, json.dumps(reply).encode(), "application/json")
            return
        include_usage = bool((request.body.get("stream_options") or {}).get("include_usage"))
        base = {"id": "chatcmpl-fake2", "object": "chat.completion.chunk", "created": 1700000000, "model": model}
        if include_usage:
            base["usage"] = None  # OpenAI sends an explicit null until the usage chunk

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}

        events = [chunk({"role": "assistant", "content": ""})]
        events += [chunk({"content": piece}) for piece in pieces(say.content)]
        for i, call in enumerate(calls):
            arguments = call["function"]["arguments"]
            head = {"index": i, "id": call["id"], "type": "function", "function": {"name": call["function"]["name"]}}
            head["function"]["arguments"] = ""
            events.append(chunk({"tool_calls": [head]}))
            half = len(arguments) // 2  # arguments arrive in fragments, split mid-token
            for fragment in (arguments[:half], arguments[half:]):
                events.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": fragment}}]}))
        events.append(chunk({}, finish))
        if include_usage:
            events.append({**base, "choices": [], "usage": usage})
        frames = [b": keep-alive\n\n"]  # a comment line, as proxies and some servers send
        frames += [b"data: " + json.dumps(e).encode() + b"\n\n" for e in events]
        frames.append(b"data: [DONE]\n\n")
        send_chunked(h, "text/event-stream", frames)


class FakeOllama(FakeServer):
    """``POST /api/chat`` as Ollama answers it."""

    api_path = "/api/chat"

    def __init__(self, models: Iterable[str] = ("llama-test",), call_ids: bool = False) -> None:
        super().__init__(models)
        self.call_ids = call_ids  # newer Ollama versions give tool calls ids; older ones do not

    @property
    def url(self) -> str:
        return self.root

    def error_body(self, status: int, message: str) -> Any:
        return {"error": message}

    def model_not_found(self, model: str) -> Any:
        return {"error": f"model '{model}' not found"}

    def answer(self, h: _Handler, request: Request, say: Say) -> None:
        model = request.body["model"]
        calls = [
            {"function": {"index": i, "name": name, "arguments": args}, **({"id": f"id{i}"} if self.call_ids else {})}
            for i, (name, args) in enumerate(say.tool_calls)
        ]
        final = {
            "model": model,
            "created_at": "2025-01-01T00:00:00.000000Z",
            "done": True,
            "done_reason": "stop",
            "total_duration": 5_000_000,
            "load_duration": 1_000_000,
            "prompt_eval_count": say.input_tokens,
            "prompt_eval_duration": 1_000_000,
            "eval_count": say.output_tokens,
            "eval_duration": 2_000_000,
        }
        if request.body.get("stream", True) is False:  # Ollama streams unless told not to
            message: dict[str, Any] = {"role": "assistant", "content": say.content}
            if calls:
                message["tool_calls"] = calls
            send(h, 200, json.dumps({**final, "message": message}).encode(), "application/json")
            return

        def line(message: dict[str, Any], **more: Any) -> bytes:
            head = {"model": model, "created_at": "2025-01-01T00:00:00.000000Z"}
            return json.dumps({**head, "message": {"role": "assistant", **message}, **more}).encode() + b"\n"

        lines = [line({"content": piece}, done=False) for piece in pieces(say.content)]
        if calls:  # Ollama sends the tool calls whole, in one line before the last
            lines.append(line({"content": "", "tool_calls": calls}, done=False))
        lines.append(line({"content": ""}, **final))
        send_chunked(h, "application/x-ndjson", lines)


# -- writing answers ---------------------------------------------------------------------


def pieces(text: str) -> list[str]:
    """``text`` cut after each space, the way tokens arrive."""
    words = text.split(" ")
    return [w + " " for w in words[:-1]] + ([words[-1]] if words[-1] else [])


def send(h: _Handler, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
    h.send_response(status)
    h.send_header("Content-Type", content_type)
    h.send_header("Content-Length", str(len(body)))
    for name, value in (headers or {}).items():
        h.send_header(name, value)
    h.end_headers()
    h.wfile.write(body)


def send_chunked(h: _Handler, content_type: str, frames: Iterable[bytes]) -> None:
    h.send_response(200)
    h.send_header("Content-Type", content_type)
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    for frame in frames:
        h.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
        h.wfile.flush()
    h.wfile.write(b"0\r\n\r\n")


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own keys and hosts must not leak into (or out through) these tests."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OLLAMA_HOST"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def ollama_server() -> Iterator[FakeOllama]:
    with FakeOllama() as server:
        yield server


@pytest.fixture
def openai(openai_server: FakeOpenAI) -> Iterator[ChatOpenAI]:
    with ChatOpenAI("gpt-test", api_key="sk-test", base_url=openai_server.url, timeout=5, max_retries=2) as model:
        yield model


@pytest.fixture
def ollama(ollama_server: FakeOllama) -> Iterator[ChatOllama]:
    with ChatOllama("llama-test", base_url=ollama_server.url, timeout=5, max_retries=2) as model:
        yield model


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
