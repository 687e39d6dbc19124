"""The errors of the HTTP chat clients: one tree under ``ChatModelError``, each naming the fix::

    ChatModelError
    └── APIError                    url, status_code, attempts, response
        ├── AuthenticationError     401/403
        ├── ModelNotFoundError      404
        ├── RateLimitError          429
        ├── ServerError             5xx, or an error reported mid-stream
        ├── BadRequestError         other 4xx
        ├── MalformedResponseError  a 200 that breaks the protocol
        ├── ResponseTooLargeError   past max_response_bytes
        │   └── StreamLineTooLongError  past max_line_bytes
        └── APIConnectionError      (also a ConnectionError)
            └── APITimeoutError     (also a TimeoutError)
                └── DeadlineExceededError  past deadline

``tether.models._http`` re-exports them all; ``tether.models`` is where users find them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tether.models._base import ChatModelError

if TYPE_CHECKING:
    import httpx

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "DeadlineExceededError",
    "MalformedResponseError",
    "ModelNotFoundError",
    "RateLimitError",
    "ResponseTooLargeError",
    "ServerError",
    "StreamLineTooLongError",
]


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


class ResponseTooLargeError(APIError):
    """The answer grew past ``max_response_bytes`` (``limit``); reading stopped there. Never
    retried: the same question is likely to get the same answer."""

    option = "max_response_bytes"

    def __init__(self, message: str, *, limit: int, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.limit = limit


class StreamLineTooLongError(ResponseTooLargeError):
    """One line of a stream (an SSE line, an NDJSON object) grew past ``max_line_bytes``."""

    option = "max_line_bytes"


class DeadlineExceededError(APITimeoutError):
    """The whole call (every attempt and, for a stream, its last chunk) took longer than
    ``deadline`` seconds. Not retried by the client; a graph's ``RetryPolicy`` may make a new
    call, which gets a new deadline."""

    def __init__(self, message: str, *, deadline: float, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.deadline = deadline
