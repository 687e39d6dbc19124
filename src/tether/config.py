"""Mirrors ``langgraph.config``: what a running node can reach, its config and the custom stream."""

from tether.graph._runner import get_config, get_stream_writer

__all__ = ["get_config", "get_stream_writer"]
