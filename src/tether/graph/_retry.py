"""Retrying a failed node: the rules live in :mod:`tether._retry`, below the graph package,
so that :mod:`tether.types` can offer ``RetryPolicy`` without loading the graph runtime."""

from tether._retry import RetryPolicy, default_retry_on, retry_delay

__all__ = ["RetryPolicy", "default_retry_on", "retry_delay"]
