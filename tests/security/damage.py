"""Shared by the damaged-row tests: a real thread in a real database, raw SQL to damage it, and
every reader of stored checkpoints, each summarised so a read can be compared with the undamaged one.

The thread ("main") runs a loop of steps, fans out to two parallel nodes, and stops on an
``interrupt()`` in one of them while its sibling finishes: its newest checkpoint has pending
writes of kinds ``result`` and ``interrupt``. Snapshots are taken every 4 steps, so a chain has
a snapshot at its start and writes after it. A second thread ("other") must stay readable
whatever happens to "main".
"""

from __future__ import annotations

import contextlib
import operator
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypedDict

from typer.testing import CliRunner

from tether import START, Command, StateGraph, interrupt
from tether.checkpoint import BaseCheckpointSaver, SqliteSaver
from tether.cli import app as cli_app
from tether.graph import _state
from tether.graph._offline import read_state

MAIN, OTHER = "main", "other"
TABLES = ("threads", "checkpoints", "snapshots", "pending_writes", "thread_leases", "tether_schema")


class S(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    count: int
    answer: str


def _work(s: S) -> dict[str, Any]:
    return {"log": [f"w{s.get('count', 0)}"], "count": s.get("count", 0) + 1}


def _ask(s: S) -> dict[str, Any]:
    return {"answer": interrupt({"question": "ship it?"})}


def build() -> StateGraph:
    g = StateGraph(S)
    g.add_node("work", _work)
    g.add_node("fan", lambda s: {"log": ["fan"]})
    g.add_node("ask", _ask)
    g.add_node("side", lambda s: {"log": ["side"]})
    g.add_edge(START, "work")
    g.add_conditional_edges("work", lambda s: "work" if s["count"] < 5 else "fan")
    g.add_edge("fan", "ask")
    g.add_edge("fan", "side")
    return g


@contextlib.contextmanager
def frequent_snapshots() -> Iterator[None]:
    """Snapshots every 4 steps (not by size): chains hold a snapshot and writes after it."""
    saved = _state.SNAPSHOT_MAX_STEPS, _state.SNAPSHOT_FLOOR_BYTES
    _state.SNAPSHOT_MAX_STEPS, _state.SNAPSHOT_FLOOR_BYTES = 4, 1 << 30
    try:
        yield
    finally:
        _state.SNAPSHOT_MAX_STEPS, _state.SNAPSHOT_FLOOR_BYTES = saved


def populate(saver: BaseCheckpointSaver) -> None:
    with frequent_snapshots():
        graph = build().compile(checkpointer=saver)
        graph.invoke({"log": ["start"]}, {"configurable": {"thread_id": MAIN}})
        graph.invoke({"log": ["start"]}, {"configurable": {"thread_id": OTHER}})


# -- backends: how to open, damage and dump a database -----------------------------------------------
@dataclass
class Backend:
    name: str
    target: str  # what `tether …` and open() take: a SQLite path or a postgresql:// URL
    conninfo: str = ""  # PostgreSQL: the connection string the saver uses

    def open(self) -> BaseCheckpointSaver:
        if self.name == "sqlite":
            return SqliteSaver.from_conn_string(self.target)
        from tether.checkpoint import PostgresSaver

        return PostgresSaver.from_conn_string(self.conninfo, min_size=1, max_size=2)

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run ``query`` (``?`` placeholders) the way a person would, outside Tether."""
        if self.name == "sqlite":
            lite = sqlite3.connect(self.target, isolation_level=None)
            try:
                return lite.execute(query, params).fetchall()
            finally:
                lite.close()
        import psycopg

        with psycopg.connect(self.conninfo, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(query.replace("?", "%s").encode(), params)
            return cur.fetchall() if cur.description else []

    def dump(self) -> list[Any]:
        """Every row of every table, as text: reading must not change any of it."""
        out: list[Any] = []
        for table in TABLES:
            cols = "*" if self.name == "sqlite" else f"{table}::text"
            out.append(sorted(map(repr, self.sql(f"SELECT {cols} FROM {table}"))))
        return out

    def key(self, thread: str = MAIN) -> int:
        return int(self.sql("SELECT id FROM threads WHERE thread_id = ?", (thread,))[0][0])

    def chain_ids(self) -> tuple[list[str], str]:
        """The ids of "main"'s checkpoints (oldest first) and the id of its newest snapshot."""
        key = self.key()
        ids = [r[0] for r in self.sql("SELECT checkpoint_id FROM checkpoints WHERE thread = ? ORDER BY 1", (key,))]
        snap = self.sql("SELECT max(checkpoint_id) FROM snapshots WHERE thread = ?", (key,))[0][0]
        return ids, snap


def sqlite_copy(pristine: Path, dest: Path) -> Backend:
    shutil.copyfile(pristine, dest)
    return Backend("sqlite", str(dest))


def pg_url(conninfo: str) -> str:
    """A postgresql:// URL for the ``tether`` command, with the same search_path as ``conninfo``."""
    from urllib.parse import quote

    from psycopg.conninfo import conninfo_to_dict

    parts = conninfo_to_dict(conninfo)
    user = quote(str(parts.get("user", "")))
    password = f":{quote(str(parts['password']))}" if parts.get("password") else ""
    host = parts.get("host", "localhost")
    host_part = quote(str(host), safe="") if str(host).startswith("/") else host
    netloc = f"{user}{password}@{host_part}" if user else str(host_part)
    port = f":{parts['port']}" if parts.get("port") else ""
    options = f"?options={quote(str(parts['options']))}" if parts.get("options") else ""
    return f"postgresql://{netloc}{port}/{parts.get('dbname', '')}{options}"


PG_TABLES = ("threads", "checkpoints", "snapshots", "pending_writes", "thread_leases", "tether_schema")


def pg_keep_pristine(backend: Backend) -> None:
    for table in PG_TABLES:
        backend.sql(f"CREATE TABLE pristine_{table} AS SELECT * FROM {table}")


def pg_restore(backend: Backend) -> None:
    backend.sql(f"TRUNCATE {', '.join(PG_TABLES)}")
    for table in PG_TABLES:
        backend.sql(f"INSERT INTO {table} SELECT * FROM pristine_{table}")


# -- readers -----------------------------------------------------------------------------------------
def _state_summary(snap: Any) -> Any:
    return (snap.values, snap.next, [(i.id, i.value) for i in snap.interrupts])


def _rows_read(loaded: Any) -> Any:
    """Which rows a load read: a chain that lost rows, or took the wrong ones, shows here."""
    if loaded is None:
        return None
    return loaded.record.checkpoint_id, [r.checkpoint_id for r in loaded.chain], loaded.pending


Reader = Callable[[BaseCheckpointSaver, list[str]], Any]  # the saver, "main"'s checkpoint ids (undamaged)


def _graph(saver: BaseCheckpointSaver) -> Any:
    return build().compile(checkpointer=saver)  # a fresh graph: no state cached from an earlier read


CONFIG = {"configurable": {"thread_id": MAIN}}

# what each reader reads (see test_fuzz_rows for how the oracle uses it): "store" readers parse no
# JSON; "links" readers follow parent links; "graph" readers decode every column they touch
READERS: dict[str, tuple[str, Reader]] = {
    "saver.get": ("links", lambda s, ids: _rows_read(s.get(MAIN))),
    "saver.get(id)": ("links", lambda s, ids: _rows_read(s.get(MAIN, "", ids[len(ids) // 2]))),
    "saver.list": ("store", lambda s, ids: list(s.list(MAIN))),
    "saver.pending": ("store", lambda s, ids: s.pending(MAIN, "", ids[-1])),
    "saver.threads": ("store", lambda s, ids: s.threads()),
    "saver.first_child": ("store", lambda s, ids: s.first_child(MAIN, "", ids[0])),
    "get_state": ("graph", lambda s, ids: _state_summary(_graph(s).get_state(CONFIG))),
    "get_state_history": ("graph", lambda s, ids: [(h.values, h.next) for h in _graph(s).get_state_history(CONFIG)]),
    "read_state": ("graph", lambda s, ids: (lambda st: (st.values, st.next, st.interrupts()))(read_state(s, MAIN))),
}


def resume(saver: BaseCheckpointSaver, ids: list[str]) -> Any:
    """invoke(Command(resume=…)) on the damaged thread: a reader that then writes."""
    with frequent_snapshots():
        return _graph(saver).invoke(Command(resume="yes"), CONFIG)


def other_thread(saver: BaseCheckpointSaver) -> Any:
    return _state_summary(build().compile(checkpointer=saver).get_state({"configurable": {"thread_id": OTHER}}))


runner = CliRunner()


def cli(backend: Backend, *args: str) -> Any:
    return runner.invoke(cli_app, [args[0], backend.target, *args[1:]])


CLI_COMMANDS = (("threads",), ("history", MAIN), ("show", MAIN))
