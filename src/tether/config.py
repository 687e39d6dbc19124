"""Mirrors ``langgraph.config``: what a running node can reach, its config and the custom stream."""

from tether._context import get_config, get_stream_writer

__all__ = ["get_config", "get_stream_writer"]
