"""How the ``tether`` command reports an error: one line, ``error: <message>``, on stderr.

Every sub-command (threads, history, show, resume, plan, tune, worker) runs inside
``ReportingGroup.invoke``, the one place that turns the errors a person can act on into that
line and an exit code:

* ``TetherError`` (damaged rows, unknown threads, bad inputs to the planner or the trainer…),
  ``sqlite3.Error`` and ``psycopg.Error`` that escaped a saver (a locked or corrupt file, a lost
  connection), and ``OSError`` (an output path that cannot be written): exit code 1;
* click's usage errors keep click's own report and exit code 2; commands that find their
  command line wrong (``--value`` that is not JSON, an unclear ``--answer``) call ``fail(…, 2)``.

Any other exception is a bug in Tether and keeps its traceback.
"""

from __future__ import annotations

import errno
import sqlite3
import sys
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

from tether.errors import TetherError

if TYPE_CHECKING:
    from typer._click.core import Context  # the click that typer bundles: TyperGroup.invoke takes its Context

__all__ = ["USAGE", "ReportingGroup", "fail", "one_line"]

USAGE = 2  # the exit code of a wrong command line, as click uses it


def one_line(text: str) -> str:
    """``text`` on one line, control characters escaped (a message may quote stored data)."""
    parts = (line.strip() for line in str(text).splitlines())
    joined = " ".join(p for p in parts if p)
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in joined)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: <message>`` on stderr; raise the returned ``typer.Exit`` to stop with ``code``."""
    typer.echo(f"error: {one_line(message)}", err=True)
    return typer.Exit(code)


def _reported(exc: BaseException) -> str | None:
    """The message for an error that is reported in one line, or None for a bug (traceback)."""
    if isinstance(exc, TetherError):
        return str(exc) or type(exc).__name__
    if isinstance(exc, sqlite3.Error):
        return f"SQLite: {exc or type(exc).__name__}"
    psycopg = sys.modules.get("psycopg")  # an extra: only loaded when a PostgreSQL URL was opened
    if psycopg is not None and isinstance(exc, psycopg.Error):
        return f"PostgreSQL: {exc or type(exc).__name__}"
    if isinstance(exc, OSError) and exc.errno != errno.EPIPE:  # click quietly ends on a closed pipe
        return str(exc) or type(exc).__name__
    return None


class ReportingGroup(TyperGroup):
    """The root command group: runs the chosen command and reports its errors in one line."""

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:  # typer's own Exit, Abort and usage errors are none of these: they pass
            message = _reported(exc)
            if message is None:
                raise
            raise fail(message) from exc
