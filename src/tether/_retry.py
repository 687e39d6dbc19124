"""Retrying a failed node: ``add_node(name, fn, retry_policy=RetryPolicy(...))``."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import NamedTuple

__all__ = ["RetryPolicy", "default_retry_on", "retry_delay"]

# Mistakes in the program: running it again gives the same answer, so these are not retried.
_PROGRAMMING_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    TypeError,
    ArithmeticError,
    ImportError,
    LookupError,
    NameError,
    SyntaxError,
    RuntimeError,
    ReferenceError,
    StopIteration,
    StopAsyncIteration,
    OSError,
)


def default_retry_on(exc: BaseException) -> bool:
    """Retry what may go away on its own: lost connections and 5xx answers from a server."""
    if isinstance(exc, ConnectionError):
        return True
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int):
        status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(status, int):  # an HTTP error from httpx, requests and the like
        return 500 <= status < 600
    return not isinstance(exc, _PROGRAMMING_ERRORS)


RetryOn = type[BaseException] | Sequence[type[BaseException]] | Callable[[BaseException], bool]


class RetryPolicy(NamedTuple):
    """How often and how patiently to run a failing node again (same fields as LangGraph's)."""

    initial_interval: float = 0.5
    backoff_factor: float = 2.0
    max_interval: float = 128.0
    max_attempts: int = 3
    jitter: bool = True
    retry_on: RetryOn = default_retry_on

    def applies_to(self, exc: BaseException) -> bool:
        rule = self.retry_on
        if isinstance(rule, type):
            return isinstance(exc, rule)
        if isinstance(rule, Sequence):
            return isinstance(exc, tuple(rule))
        return bool(rule(exc))


def retry_delay(policies: Sequence[RetryPolicy], exc: BaseException, attempt: int) -> float | None:
    """Seconds to wait before attempt ``attempt + 1``, or None to give up and raise."""
    for policy in policies:
        if policy.applies_to(exc):
            if attempt >= policy.max_attempts:
                return None
            delay = min(policy.max_interval, policy.initial_interval * policy.backoff_factor ** (attempt - 1))
            return delay + (random.uniform(0, 1) if policy.jitter else 0.0)
    return None
