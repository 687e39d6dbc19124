"""What the HTTP chat clients share: one place for timeouts, retries and error mapping.

``HTTPTransport`` posts JSON and streams lines back, retrying what may go away on its own
(429, 408, 5xx answers, dropped connections, timeouts) with exponential backoff and jitter,
honouring ``Retry-After``. Everything else becomes a ``ChatModelError`` subclass that says
what went wrong and what to do, so callers never see a bare ``httpx`` exception.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import threading
import time
from abc import abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterable, Iterator, Mapping, Sequence
from typing import Any, Self

import httpx

from tether.messages import AIMessage, AIMessageChunk, BaseMessage, MessageLike, convert_to_messages
from tether.messages._chunk import as_chunk
from tether.models._base import BaseChatModel, ChatModelError, ModelCallOptions

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "HTTPChatModel",
    "HTTPTransport",
    "MalformedResponseError",
    "ModelNotFoundError",
    "RateLimitError",
    "SSEDecoder",
    "ServerError",
    "iter_sse_data",
    "retry_delay",
]

BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 20.0
# a server asking for a longer pause than this is better reported than waited for
RETRY_AFTER_MAX_S = 60.0
USER_AGENT = "tether/0.1"


# -- errors ----------------------------------------------------------------------------
class APIError(ChatModelError):
    """A model server answered with an error, or could not be reached.

    ``response`` is the ``httpx.Response`` when there was one: ``RetryPolicy``'s default rule
    reads its ``status_code``, so a graph retries a node after a 5xx but not after a 401.
    """

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        status_code: int | None = None,
        attempts: int = 1,
        response: httpx.Response | None = None,
    ) -> None:
        super().__init__(message)
        self.url = url
        self.status_code = status_code
        self.attempts = attempts
        self.response = response


class AuthenticationError(APIError):
    """401/403: the API key is missing, wrong, or not allowed to use this model."""


class ModelNotFoundError(APIError):
    """404: the server does not know the model (or the base URL points at the wrong path)."""


class RateLimitError(APIError):
    """429 after every retry, or a quota that retrying cannot fix."""


class ServerError(APIError):
    """5xx after every retry, or an error the server reported in the middle of a stream."""


class BadRequestError(APIError):
    """Another 4xx: the server refused the request as written (bad parameter, tools unsupported…)."""


class APIConnectionError(APIError, ConnectionError):
    """The server could not be reached, or dropped the connection (a ``ConnectionError``, so
    ``RetryPolicy`` retries it by default)."""


class APITimeoutError(APIConnectionError, TimeoutError):
    """The server took longer than ``timeout`` seconds to connect, answer or send the next chunk."""


class MalformedResponseError(APIError):
    """The server answered 200 but not with what its protocol promises; says what was missing."""


# -- retry timing ----------------------------------------------------------------------
def retry_delay(attempt: int, headers: Mapping[str, str] | None = None, *, rng: random.Random | None = None) -> float:
    """Seconds to wait before attempt ``attempt + 1``: the server's ``Retry-After`` (or OpenAI's
    ``retry-after-ms``) when it sent a usable one, else exponential backoff with jitter."""
    if headers is not None:
        asked = _retry_after(headers)
        if asked is not None and 0 <= asked <= RETRY_AFTER_MAX_S:
            return asked
    backoff = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (attempt - 1))
    # ±25% so that many clients refused at once do not all come back in the same instant
    return float(backoff * (0.75 + 0.5 * (rng or random).random()))


def _retry_after(headers: Mapping[str, str]) -> float | None:
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return float(millis) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:  # the other form HTTP allows: a date
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _retryable_status(status: int, code: str | None) -> bool:
    if status == 429:
        return code != "insufficient_quota"  # OpenAI's "out of credit" is a 429 that never clears
    return status == 408 or status >= 500


def _retryable_transport(exc: httpx.TransportError) -> bool:
    # a bad URL or a request httpx could not even write fails the same way every time
    return not isinstance(exc, (httpx.UnsupportedProtocol, httpx.LocalProtocolError))


# -- the transport ---------------------------------------------------------------------
class HTTPTransport:
    """JSON over HTTP to one server, with retries and errors that name the model and the fix.

    The sync ``httpx.Client`` is made on first use and kept (connection reuse matters for TLS);
    async calls open an ``AsyncClient`` per call because one is tied to the event loop that
    made it, and graphs may run each call on a fresh loop.
    """

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        provider: str,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = 60.0,
        max_retries: int = 3,
        auth_hint: str = "",
        not_found_hint: str = "",
    ) -> None:
        if max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, got {max_retries}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.provider = provider
        self.headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})}
        self.timeout = timeout
        self.max_retries = max_retries
        self.auth_hint = auth_hint
        self.not_found_hint = not_found_hint
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    # sync -----------------------------------------------------------------------------
    def post(self, path: str, body: Mapping[str, Any]) -> Any:
        """The JSON the server answered ``body`` with."""
        response = self._send(self._sync_client(), path, body, stream=False)
        return self.parse_json(response.content, response)

    def stream_lines(self, path: str, body: Mapping[str, Any]) -> Generator[str, None, None]:
        """The lines of a streamed answer; retries happen only before the first byte arrives."""
        url = self.url(path)
        response = self._send(self._sync_client(), path, body, stream=True)
        try:
            yield from response.iter_lines()
        except httpx.TransportError as exc:
            raise self._transport_error(exc, url, attempt=1, mid_stream=True) from exc
        finally:
            response.close()

    def _send(self, client: httpx.Client, path: str, body: Mapping[str, Any], *, stream: bool) -> httpx.Response:
        url = self.url(path)
        attempt = 0
        while True:
            attempt += 1
            try:
                response = client.send(client.build_request("POST", url, json=body), stream=stream)
                if response.is_success:
                    return response
                response.read()  # the error body, also when the request asked for a stream
                response.close()
            except httpx.TransportError as exc:
                error: APIError = self._transport_error(exc, url, attempt)
                if not _retryable_transport(exc) or attempt > self.max_retries:
                    raise error from exc
                time.sleep(retry_delay(attempt))
                continue
            error, delay = self._status_error(response, url, attempt)
            if delay is None:
                raise error
            time.sleep(delay)

    def _sync_client(self) -> httpx.Client:
        with self._lock:
            if self._client is None or self._client.is_closed:
                self._client = httpx.Client(timeout=self.timeout, headers=self.headers)
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # async ----------------------------------------------------------------------------
    async def apost(self, path: str, body: Mapping[str, Any]) -> Any:
        async with httpx.AsyncClient(timeout=self.timeout, headers=self.headers) as client:
            response = await self._asend(client, path, body, stream=False)
            return self.parse_json(response.content, response)

    async def astream_lines(self, path: str, body: Mapping[str, Any]) -> AsyncGenerator[str, None]:
        url = self.url(path)
        async with httpx.AsyncClient(timeout=self.timeout, headers=self.headers) as client:
            response = await self._asend(client, path, body, stream=True)
            try:
                async for line in response.aiter_lines():
                    yield line
            except httpx.TransportError as exc:
                raise self._transport_error(exc, url, attempt=1, mid_stream=True) from exc
            finally:
                await response.aclose()

    async def _asend(
        self, client: httpx.AsyncClient, path: str, body: Mapping[str, Any], *, stream: bool
    ) -> httpx.Response:
        url = self.url(path)
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await client.send(client.build_request("POST", url, json=body), stream=stream)
                if response.is_success:
                    return response
                await response.aread()
                await response.aclose()
            except httpx.TransportError as exc:
                error: APIError = self._transport_error(exc, url, attempt)
                if not _retryable_transport(exc) or attempt > self.max_retries:
                    raise error from exc
                await asyncio.sleep(retry_delay(attempt))
                continue
            error, delay = self._status_error(response, url, attempt)
            if delay is None:
                raise error
            await asyncio.sleep(delay)

    # errors ---------------------------------------------------------------------------
    def parse_json(self, content: bytes | str, response: httpx.Response | None = None) -> Any:
        try:
            return json.loads(content)
        except json.JSONDecodeError as exc:
            text = content.decode(errors="replace") if isinstance(content, bytes) else content
            raise MalformedResponseError(
                f"{self.provider} at {self.base_url} answered with something that is not JSON ({exc}); "
                f"it began {text[:200]!r}",
                url=str(response.request.url) if response is not None else self.base_url,
                status_code=response.status_code if response is not None else None,
                response=response,
            ) from exc

    def malformed(self, what: str, data: Any = None) -> MalformedResponseError:
        """The error for a reply that lacks ``what`` (said as a phrase: "no 'choices' list")."""
        shown = "" if data is None else f"; it was {json.dumps(data, default=str)[:300]}"
        return MalformedResponseError(
            f"{self.provider} at {self.base_url} sent a reply for model {self.model!r} with {what}{shown}",
            url=self.base_url,
        )

    def _attempts(self, attempt: int) -> str:
        return f" (gave up after {attempt} attempts)" if attempt > 1 else ""

    def _transport_error(
        self, exc: httpx.TransportError, url: str, attempt: int, *, mid_stream: bool = False
    ) -> APIConnectionError:
        where = " in the middle of the stream" if mid_stream else ""
        if isinstance(exc, httpx.TimeoutException):
            return APITimeoutError(
                f"{self.provider} at {url} did not answer within {self.timeout}s{where} "
                f"({type(exc).__name__}){self._attempts(attempt)}; pass a larger timeout= or check the server",
                url=url,
                attempts=attempt,
            )
        if isinstance(exc, httpx.UnsupportedProtocol):
            return APIConnectionError(
                f"cannot reach {self.provider}: {url!r} is not an http:// or https:// URL; check base_url",
                url=url,
                attempts=attempt,
            )
        if mid_stream:
            return APIConnectionError(
                f"lost the connection to {self.provider} at {url}{where}: {exc or type(exc).__name__}",
                url=url,
                attempts=attempt,
            )
        return APIConnectionError(
            f"cannot reach {self.provider} at {url}: {exc or type(exc).__name__}"
            f"{self._attempts(attempt)}; is the server running and is base_url right?",
            url=url,
            attempts=attempt,
        )

    def _status_error(self, response: httpx.Response, url: str, attempt: int) -> tuple[APIError, float | None]:
        """The error for a non-2xx answer, and how long to wait before trying again (None: don't)."""
        status = response.status_code
        said, code = _server_message(response)
        retry = _retryable_status(status, code) and attempt <= self.max_retries
        fields: dict[str, Any] = {"url": url, "status_code": status, "attempts": attempt, "response": response}
        tail = f"{self._attempts(attempt)}"
        server = f"; the server said: {said}" if said else ""
        error: APIError
        if status in (401, 403):
            error = AuthenticationError(
                f"{self.provider} at {url} refused the request with {status}: {self.auth_hint}{server}", **fields
            )
        elif status == 404:
            error = ModelNotFoundError(
                f"{self.provider} at {url} answered 404 for model {self.model!r}: {self.not_found_hint}{server}",
                **fields,
            )
        elif status == 429:
            error = RateLimitError(f"{self.provider} at {url} is rate-limiting requests (429){tail}{server}", **fields)
        elif status >= 500:
            error = ServerError(f"{self.provider} at {url} failed with {status}{tail}{server}", **fields)
        else:
            error = BadRequestError(f"{self.provider} at {url} rejected the request with {status}{server}", **fields)
        return error, retry_delay(attempt, response.headers) if retry else None


def _server_message(response: httpx.Response) -> tuple[str, str | None]:
    """The human part of an error body, whatever the server's dialect: OpenAI's
    ``{"error": {"message", "code"}}``, Ollama's ``{"error": "..."}``, FastAPI's ``{"detail"}``."""
    text = response.text.strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return text[:300], None
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, str):
            return error, None
        if isinstance(error, dict):
            message = error.get("message") or error.get("detail") or json.dumps(error)[:300]
            code = error.get("code") or error.get("type")
            return str(message), str(code) if code is not None else None
    return text[:300], None


# -- server-sent events ----------------------------------------------------------------
class SSEDecoder:
    """Turns the lines of a ``text/event-stream`` into the ``data`` of each event.

    Per the SSE spec an event may span several ``data:`` lines (joined with newlines) and ends
    at a blank line; lines starting with ``:`` are comments (keep-alives), other fields are
    ignored. Fed line by line so the sync and async streams share it.
    """

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> str | None:
        """The finished event's data when ``line`` ends one, else None."""
        if not line:
            return self.flush()
        if not line.startswith(":"):
            field, _, value = line.partition(":")
            if field == "data":
                self._data.append(value.removeprefix(" "))
        return None

    def flush(self) -> str | None:
        """The data of an event the stream ended in the middle of (no trailing blank line)."""
        if not self._data:
            return None
        event, self._data = "\n".join(self._data), []
        return event


def iter_sse_data(lines: Iterable[str]) -> Iterator[str]:
    """The ``data`` of each server-sent event in ``lines``."""
    decoder = SSEDecoder()
    for line in lines:
        event = decoder.feed(line)
        if event is not None:
            yield event
    last = decoder.flush()
    if last is not None:
        yield last


# -- the shared client base ------------------------------------------------------------
class HTTPChatModel(BaseChatModel):
    """A chat model behind an ``HTTPTransport``: closing, ``with`` blocks and real async streaming.

    Copies made by ``bind_tools``/``with_structured_output`` share the transport (and its
    connections); closing any of them closes it for all.
    """

    _transport: HTTPTransport

    def close(self) -> None:
        """Close the pooled connections (a later call opens new ones)."""
        self._transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def base_url(self) -> str:
        return self._transport.base_url

    @property
    def timeout(self) -> float | None:
        return self._transport.timeout

    @property
    def max_retries(self) -> int:
        return self._transport.max_retries

    async def astream(
        self, messages: MessageLike | Sequence[MessageLike], config: Any = None, **kwargs: Any
    ) -> AsyncIterator[AIMessageChunk]:
        # the base class streams on a thread and hands over the whole list at the end;
        # here chunks arrive as the server sends them
        async for chunk in self._astream(convert_to_messages(messages), self._options(kwargs)):
            yield as_chunk(chunk)

    @abstractmethod
    def _astream(self, messages: list[BaseMessage], options: ModelCallOptions) -> AsyncIterator[AIMessage]:
        """Reply in pieces, asynchronously."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model_name!r}, base_url={self.base_url!r})"
