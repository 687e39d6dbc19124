"""``open_saver(target)``: a checkpointer from a path or a URL, for tools that take either."""

from __future__ import annotations

from pathlib import Path

from tether.checkpoint._base import BaseCheckpointSaver
from tether.checkpoint._sqlite import SqliteSaver
from tether.errors import CheckpointError

__all__ = ["is_postgres_url", "open_saver"]

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(target: str | Path) -> bool:
    return isinstance(target, str) and target.startswith(_POSTGRES_SCHEMES)


def open_saver(target: str | Path, *, must_exist: bool = True, read_only: bool = False) -> BaseCheckpointSaver:
    """``postgresql://…`` opens a ``PostgresSaver``; anything else is a SQLite database file.

    With ``must_exist`` (the default) a missing SQLite file is an error rather than a new,
    empty database: a typo in a path should not look like a database with no threads.

    ``read_only`` is for tools that only read (``tether threads``, ``history``, ``show``,
    ``tune export``): nothing is created, migrated or written, and a database that is not
    Tether's (empty, unrelated, LangGraph's) is refused by name.
    """
    if is_postgres_url(target):
        from tether.checkpoint._postgres import PostgresSaver

        return PostgresSaver.from_conn_string(str(target), read_only=read_only)
    path = Path(target)
    if (must_exist or read_only) and str(target) != ":memory:" and not path.exists():
        raise CheckpointError(f"no database at {str(target)!r} (a SQLite file, or a postgresql:// URL)")
    return SqliteSaver.from_conn_string(path, read_only=read_only)
