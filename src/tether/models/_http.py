"""What the HTTP chat clients share: one place for timeouts, retries, bounds and error mapping.

``HTTPTransport`` posts JSON and streams lines back, retrying what may go away on its own
(429, 408, 5xx answers, dropped connections, timeouts) with exponential backoff and jitter,
honouring ``Retry-After``. Every call is held to bounds (``_limits``): the answer's size, the
length of one stream line, and the whole call's time, each checked while reading, never
after. Everything else becomes one of the ``ChatModelError`` subclasses drawn in
``_http_errors``, which say what went wrong and what to do, so callers never see a bare
``httpx`` exception.
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
from tether.models._base import BaseChatModel, ModelCallOptions
from tether.models._body import ACCEPT_ENCODING, BoundedBody, ErrorBody
from tether.models._http_errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    DeadlineExceededError,
    MalformedResponseError,
    ModelNotFoundError,
    RateLimitError,
    ResponseTooLargeError,
    ServerError,
    StreamLineTooLongError,
)
from tether.models._limits import (
    DEFAULT_MAX_LINE_BYTES,
    DEFAULT_MAX_RESPONSE_BYTES,
    Deadline,
    DeadlineOption,
    apply_deadlines,
    byte_limit,
    resolve_deadline,
)

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "DeadlineExceededError",
    "HTTPChatModel",
    "HTTPTransport",
    "MalformedResponseError",
    "ModelNotFoundError",
    "RateLimitError",
    "ResponseTooLargeError",
    "SSEDecoder",
    "ServerError",
    "StreamLineTooLongError",
    "iter_sse_data",
    "retry_delay",
]

BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 20.0
# a server asking for a longer pause than this is better reported than waited for
RETRY_AFTER_MAX_S = 60.0
USER_AGENT = "tether/0.1"


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
    """JSON over HTTP to one server, with retries, bounds, and errors that name the model and the fix.

    The sync ``httpx.Client`` is made on first use and kept (connection reuse matters for TLS);
    async calls open an ``AsyncClient`` per call because one is tied to the event loop that
    made it, and graphs may run each call on a fresh loop.

    Every call is held to ``max_response_bytes`` (the whole body, a stream's too),
    ``max_line_bytes`` (one stream line) and ``deadline`` (seconds for the whole call: every
    attempt, the waits between them and, for a stream, its last chunk). Passing one is an
    error that names it (``ResponseTooLargeError``, ``StreamLineTooLongError``,
    ``DeadlineExceededError``) and is not retried.
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
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        deadline: DeadlineOption = "auto",
        auth_hint: str = "",
        not_found_hint: str = "",
    ) -> None:
        if max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, got {max_retries}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.provider = provider
        self.headers = {
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            "Accept-Encoding": ACCEPT_ENCODING,
            **(headers or {}),
        }
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_response_bytes = byte_limit("max_response_bytes", max_response_bytes)
        self.max_line_bytes = byte_limit("max_line_bytes", max_line_bytes)
        self.deadline = resolve_deadline(deadline, timeout)
        self.auth_hint = auth_hint
        self.not_found_hint = not_found_hint
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def _request(self, client: httpx.Client | httpx.AsyncClient, url: str, body: Any, clock: Deadline) -> httpx.Request:
        return client.build_request("POST", url, json=body, timeout=clock.clamp(self.timeout))

    # sync -----------------------------------------------------------------------------
    def post(self, path: str, body: Mapping[str, Any]) -> Any:
        """The JSON the server answered ``body`` with."""
        clock = Deadline(self.deadline)
        response, reader = self._send(self._sync_client(), self.url(path), body, clock, stream=False)
        return self.parse_json(reader.content, response)

    def stream_lines(self, path: str, body: Mapping[str, Any]) -> Generator[str, None, None]:
        """The lines of a streamed answer; retries happen only before the first byte arrives."""
        url = self.url(path)
        clock = Deadline(self.deadline)
        response, reader = self._send(self._sync_client(), url, body, clock, stream=True)
        try:
            chunks = response.iter_raw()
            while True:
                try:
                    with clock.applied():  # not across the yield: the consumer runs there
                        chunk = next(chunks, None)
                except httpx.TransportError as exc:
                    raise self._transport_error(exc, url, 1, clock, mid_stream=True) from exc
                if chunk is None:
                    break
                yield from reader.lines(chunk)
            yield from reader.end()
        finally:
            response.close()

    def _send(
        self, client: httpx.Client, url: str, body: Mapping[str, Any], clock: Deadline, *, stream: bool
    ) -> tuple[httpx.Response, BoundedBody]:
        """A 2xx answer, after retries; unless ``stream``, with its body read (and closed)."""
        attempt = 0
        while True:
            attempt += 1
            response = None
            keep_open = False
            try:
                with clock.applied():
                    response = client.send(self._request(client, url, body, clock), stream=True)
                    if response.is_success:
                        reader = BoundedBody(self, response, url, clock)
                        if stream:
                            keep_open = True
                        else:  # read here, so that a connection lost mid-body is retried
                            for chunk in response.iter_raw():
                                reader.keep(chunk)
                        return response, reader
                    failed = self._read_error(response)
            except httpx.TransportError as exc:
                error, delay = self._transport_failure(exc, url, attempt, clock)
                if delay is None:
                    raise error from exc
                time.sleep(delay)
                continue
            finally:
                if response is not None and not keep_open:
                    response.close()
            error, delay = self._status_error(failed, url, attempt, clock)
            if delay is None:
                raise error
            time.sleep(delay)

    def _read_error(self, response: httpx.Response) -> httpx.Response:
        body = ErrorBody(response, self.max_response_bytes)
        if body.wanted:
            for chunk in response.iter_raw():
                if not body.keep(chunk):
                    break
        return body.finished()

    def _sync_client(self) -> httpx.Client:
        with self._lock:
            if self._client is None or self._client.is_closed:
                self._client = httpx.Client(timeout=self.timeout, headers=self.headers)
                apply_deadlines(self._client)
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
    # The deadline is an asyncio.timeout around each await that reads or writes; one around
    # the whole stream would fire while the consumer runs between chunks, and cancel it.
    def _async_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=self.timeout, headers=self.headers)

    async def apost(self, path: str, body: Mapping[str, Any]) -> Any:
        clock = Deadline(self.deadline)
        async with self._async_client() as client:
            response, reader = await self._asend(client, self.url(path), body, clock, stream=False)
            return self.parse_json(reader.content, response)

    async def astream_lines(self, path: str, body: Mapping[str, Any]) -> AsyncGenerator[str, None]:
        url = self.url(path)
        clock = Deadline(self.deadline)
        async with self._async_client() as client:
            response, reader = await self._asend(client, url, body, clock, stream=True)
            try:
                chunks = response.aiter_raw()
                while True:
                    try:
                        async with asyncio.timeout(clock.left()):
                            chunk = await anext(chunks, None)
                    except httpx.TransportError as exc:
                        raise self._transport_error(exc, url, 1, clock, mid_stream=True) from exc
                    except TimeoutError as exc:
                        raise self.deadline_error(url, 1, mid_stream=True) from exc
                    if chunk is None:
                        break
                    for line in reader.lines(chunk):
                        yield line
                for line in reader.end():
                    yield line
            finally:
                await response.aclose()

    async def _asend(
        self, client: httpx.AsyncClient, url: str, body: Mapping[str, Any], clock: Deadline, *, stream: bool
    ) -> tuple[httpx.Response, BoundedBody]:
        attempt = 0
        while True:
            attempt += 1
            response = None
            keep_open = False
            try:
                async with asyncio.timeout(clock.left()):
                    response = await client.send(self._request(client, url, body, clock), stream=True)
                    if response.is_success:
                        reader = BoundedBody(self, response, url, clock)
                        if stream:
                            keep_open = True
                        else:
                            async for chunk in response.aiter_raw():
                                reader.keep(chunk)
                        return response, reader
                    failed = await self._aread_error(response)
            except httpx.TransportError as exc:
                error, delay = self._transport_failure(exc, url, attempt, clock)
                if delay is None:
                    raise error from exc
                await asyncio.sleep(delay)
                continue
            except TimeoutError as exc:
                if isinstance(exc, APIError):  # the reader's own DeadlineExceededError
                    raise
                raise self.deadline_error(url, attempt) from exc
            finally:
                if response is not None and not keep_open:
                    await response.aclose()
            error, delay = self._status_error(failed, url, attempt, clock)
            if delay is None:
                raise error
            await asyncio.sleep(delay)

    async def _aread_error(self, response: httpx.Response) -> httpx.Response:
        body = ErrorBody(response, self.max_response_bytes)
        if body.wanted:
            async for chunk in response.aiter_raw():
                if not body.keep(chunk):
                    break
        return body.finished()

    # errors ---------------------------------------------------------------------------
    def parse_json(self, content: bytes | bytearray | str, response: httpx.Response | None = None) -> Any:
        try:
            return json.loads(content)
        except json.JSONDecodeError as exc:
            text = content if isinstance(content, str) else content[:1000].decode(errors="replace")
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

    def _attempts(self, attempt: int, *, out_of_time: bool = False) -> str:
        if out_of_time:
            tries = f"{attempt} attempts" if attempt > 1 else "1 attempt"
            return f" (gave up after {tries}: waiting to retry would pass the call's deadline of {self.deadline:g}s)"
        return f" (gave up after {attempt} attempts)" if attempt > 1 else ""

    def deadline_error(self, url: str, attempt: int, *, mid_stream: bool = False) -> DeadlineExceededError:
        deadline = self.deadline if self.deadline is not None else 0.0
        where = " (its answer was still arriving)" if mid_stream else ""
        return DeadlineExceededError(
            f"{self.provider} at {url} did not finish answering within the call's deadline of {deadline:g}s"
            f"{where}{self._attempts(attempt)}; the deadline covers the whole call, retries and streaming "
            "included: pass a larger deadline= (or deadline=None for no limit) if answers this slow are expected, "
            "or check the server",
            url=url,
            attempts=attempt,
            deadline=deadline,
        )

    def _transport_failure(
        self, exc: httpx.TransportError, url: str, attempt: int, clock: Deadline
    ) -> tuple[APIError, float | None]:
        """The error for an attempt that failed on the way, and how long to wait before trying
        again (None: don't)."""
        retry = _retryable_transport(exc) and attempt <= self.max_retries
        delay = retry_delay(attempt) if retry else None
        out_of_time = delay is not None and not clock.allows(delay)
        error = self._transport_error(exc, url, attempt, clock, out_of_time=out_of_time)
        if isinstance(error, DeadlineExceededError) or out_of_time:
            return error, None
        return error, delay

    def _transport_error(
        self,
        exc: httpx.TransportError,
        url: str,
        attempt: int,
        clock: Deadline | None = None,
        *,
        mid_stream: bool = False,
        out_of_time: bool = False,
    ) -> APIConnectionError:
        where = " in the middle of the stream" if mid_stream else ""
        if isinstance(exc, httpx.TimeoutException):
            if clock is not None and clock.expired():  # the deadline, not the timeout, cut it short
                return self.deadline_error(url, attempt, mid_stream=mid_stream)
            return APITimeoutError(
                f"{self.provider} at {url} did not answer within {self.timeout}s{where} "
                f"({type(exc).__name__}){self._attempts(attempt, out_of_time=out_of_time)}; "
                "pass a larger timeout= or check the server",
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
            f"{self._attempts(attempt, out_of_time=out_of_time)}; is the server running and is base_url right?",
            url=url,
            attempts=attempt,
        )

    def _status_error(
        self, response: httpx.Response, url: str, attempt: int, clock: Deadline
    ) -> tuple[APIError, float | None]:
        """The error for a non-2xx answer, and how long to wait before trying again (None: don't)."""
        status = response.status_code
        said, code = _server_message(response)
        retry = _retryable_status(status, code) and attempt <= self.max_retries
        delay = retry_delay(attempt, response.headers) if retry else None
        out_of_time = delay is not None and not clock.allows(delay)
        fields: dict[str, Any] = {"url": url, "status_code": status, "attempts": attempt, "response": response}
        tail = self._attempts(attempt, out_of_time=out_of_time)
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
        return error, None if out_of_time else delay


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

    @property
    def max_response_bytes(self) -> int:
        return self._transport.max_response_bytes

    @property
    def max_line_bytes(self) -> int:
        return self._transport.max_line_bytes

    @property
    def deadline(self) -> float | None:
        """Seconds a whole call may take (``"auto"`` resolved), or None for no limit."""
        return self._transport.deadline

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
