"""Shared machinery for the differential suite: run one scenario on LangGraph and on Tether.

A *scenario* is written once, as ``build(lib, **compile_kwargs) -> compiled graph``, where
``lib`` is a namespace holding one library's public names (``StateGraph``, ``START``,
``END``, ``Send``, ``Command``, ``interrupt``, ``InMemorySaver``…) plus per-run recorders
(``lib.calls``: a Counter nodes may bump, ``lib.log``: a list they may append to).

A *driver* ``drive(lib, graph) -> observation`` runs it and returns plain, comparable data
(see the ``norm_*`` helpers). ``Differential.compare`` runs build+drive on both libraries
and asserts the observations are equal.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import langgraph.errors as lg_errors
import pytest
from langgraph.checkpoint.memory import InMemorySaver as LGInMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver as LGSqliteSaver
from langgraph.config import get_stream_writer as lg_get_stream_writer
from langgraph.graph import END as LG_END
from langgraph.graph import START as LG_START
from langgraph.graph import StateGraph as LGStateGraph
from langgraph.types import Command as LGCommand
from langgraph.types import Interrupt as LGInterrupt
from langgraph.types import Send as LGSend
from langgraph.types import interrupt as lg_interrupt

import tether
import tether.checkpoint
import tether.errors as tt_errors
from tests.pg import fresh_schema
from tether.types import Interrupt as TTInterrupt

THREAD = {"configurable": {"thread_id": "t1"}}
SAVER_KINDS = ("memory", "sqlite", "postgres")


def thread(tid: str = "t1", **extra: Any) -> dict[str, Any]:
    return {"configurable": {"thread_id": tid, **extra}}


@dataclass
class Lib:
    """One library's public names, plus recorders a scenario's nodes may write to."""

    name: str
    StateGraph: Any
    START: str
    END: str
    Send: Any
    Command: Any
    interrupt: Callable[[Any], Any]
    InMemorySaver: Any
    SqliteSaver: Any  # a class taking a sqlite3 connection
    Interrupt: Any
    GraphRecursionError: type[BaseException]
    InvalidUpdateError: type[BaseException]
    get_stream_writer: Callable[[], Any]
    calls: Counter[str] = field(default_factory=Counter)
    log: list[Any] = field(default_factory=list)

    def fresh(self) -> Lib:
        return Lib(**{**self.__dict__, "calls": Counter(), "log": []})

    @property
    def is_tether(self) -> bool:
        return self.name == "tether"


LANGGRAPH = Lib(
    name="langgraph",
    StateGraph=LGStateGraph,
    START=LG_START,
    END=LG_END,
    Send=LGSend,
    Command=LGCommand,
    interrupt=lg_interrupt,
    InMemorySaver=LGInMemorySaver,
    SqliteSaver=LGSqliteSaver,
    Interrupt=LGInterrupt,
    GraphRecursionError=lg_errors.GraphRecursionError,
    InvalidUpdateError=lg_errors.InvalidUpdateError,
    get_stream_writer=lg_get_stream_writer,
)

TETHER = Lib(
    name="tether",
    StateGraph=tether.StateGraph,
    START=tether.START,
    END=tether.END,
    Send=tether.Send,
    Command=tether.Command,
    interrupt=tether.interrupt,
    InMemorySaver=tether.InMemorySaver,
    SqliteSaver=tether.SqliteSaver,
    Interrupt=TTInterrupt,
    GraphRecursionError=tt_errors.GraphRecursionError,
    InvalidUpdateError=tt_errors.InvalidUpdateError,
    get_stream_writer=tether.get_stream_writer,
)

LIBS = (LANGGRAPH, TETHER)


# -- normalising observations ----------------------------------------------------------------


def norm(value: Any) -> Any:
    """Make a value comparable across libraries: Interrupt objects become ``("Interrupt", value)``."""
    if isinstance(value, (LGInterrupt, TTInterrupt)):
        return ("Interrupt", norm(value.value))
    if isinstance(value, dict):
        return {k: norm(v) for k, v in value.items()}
    if isinstance(value, list):
        return [norm(v) for v in value]
    if isinstance(value, tuple):
        return tuple(norm(v) for v in value)
    return value


def _sort_key(value: Any) -> str:
    return repr(value)


def msorted(values: Iterable[Any]) -> list[Any]:
    """A multiset as a sorted list (sorting by repr, so anything can be compared)."""
    return sorted(values, key=_sort_key)


def norm_task(task: Any) -> tuple[Any, ...]:
    return (
        task.name,
        norm(task.result),
        tuple(norm(i.value) for i in task.interrupts),
        task.error is not None,
    )


def norm_snapshot(snap: Any) -> dict[str, Any]:
    """The comparable parts of a StateSnapshot (ids and timestamps differ by design)."""
    meta = snap.metadata or {}
    return {
        "values": norm(snap.values),
        "next": sorted(snap.next),
        "source": meta.get("source"),
        "step": meta.get("step"),
        "tasks": msorted(norm_task(t) for t in snap.tasks),
        "interrupts": msorted(norm(i.value) for i in snap.interrupts),
        "has_parent": snap.parent_config is not None,
        "has_checkpoint_id": bool((snap.config.get("configurable") or {}).get("checkpoint_id")),
    }


def norm_history(graph: Any, config: dict[str, Any], **kwargs: Any) -> list[dict[str, Any]]:
    return [norm_snapshot(s) for s in graph.get_state_history(config, **kwargs)]


def group_steps(chunks: list[dict[str, Any]], steps: list[int]) -> list[tuple[int, list[Any]]]:
    """Group ``updates`` chunks by step, each step's chunks as a multiset."""
    out: list[tuple[int, list[Any]]] = []
    for step, chunk in zip(steps, chunks):
        if out and out[-1][0] == step:
            out[-1][1].append(norm(chunk))
        else:
            out.append((step, [norm(chunk)]))
    return [(s, msorted(c)) for s, c in out]


def stepped_updates(graph: Any, inp: Any, config: Any = None, **kw: Any) -> Any:
    """``updates`` chunks grouped by super-step (each step a multiset), plus the final values.

    Steps come from the ``debug`` events streamed alongside (``stream_mode=["debug", "updates"]``).
    """
    step = None
    chunks, steps = [], []
    final = None
    for mode, chunk in graph.stream(inp, config, stream_mode=["debug", "updates", "values"], **kw):
        if mode == "debug":
            step = chunk["step"]
        elif mode == "updates":
            chunks.append(chunk)
            steps.append(step)
        else:
            final = chunk
    return {"steps": group_steps(chunks, steps), "final": norm(final)}


def norm_debug(events: list[dict[str, Any]]) -> list[tuple[str, int, list[Any]]]:
    """Debug events as runs of (type, step, sorted details); ids and timestamps dropped.

    ``checkpoint`` details: (sorted next, values, source); ``task``: (name, input);
    ``task_result``: (name, result, has error, interrupt values).
    """
    out: list[tuple[str, int, list[Any]]] = []
    for ev in events:
        kind, step, p = ev["type"], ev["step"], ev["payload"]
        if kind == "checkpoint":
            detail: Any = (sorted(p["next"]), norm(p["values"]), p["metadata"]["source"], p["metadata"]["step"])
        elif kind == "task":
            detail = (p["name"], norm(p["input"]))
        elif kind == "task_result":
            detail = (
                p["name"],
                norm(p["result"]),
                p["error"] is not None,
                [norm(i["value"]) for i in p["interrupts"]],
            )
        else:  # pragma: no cover - unknown event type is itself a finding
            detail = (kind, norm(p))
        if out and out[-1][0] == kind and out[-1][1] == step:
            out[-1][2].append(detail)
        else:
            out.append((kind, step, [detail]))
    return [(k, s, msorted(d)) for k, s, d in out]


def outcome(fn: Callable[[], Any], lib: Lib) -> Any:
    """Run ``fn``; return ``("ok", result)`` or ``("raised", kind)`` with a library-neutral kind."""
    try:
        return ("ok", norm(fn()))
    except lib.GraphRecursionError:
        return ("raised", "GraphRecursionError")
    except lib.InvalidUpdateError:
        return ("raised", "InvalidUpdateError")
    except Exception as exc:
        if type(exc).__module__.startswith(("tether", "langgraph")):
            return ("raised", type(exc).__name__)  # the libraries word their own errors differently
        return ("raised", type(exc).__name__, str(exc))


# -- checkpointers ------------------------------------------------------------------------------


class SaverFactory:
    """Makes checkpointers for either library; closes every connection at teardown.

    ``postgres`` savers each get a schema of their own on the session's PostgreSQL server.
    """

    def __init__(self, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        self.tmp_path = tmp_path
        self.request = request
        self.conns: list[sqlite3.Connection] = []
        self.stack = contextlib.ExitStack()
        self.n = 0

    def _postgres(self, lib: Lib) -> Any:
        conninfo = self.stack.enter_context(fresh_schema(self.request.getfixturevalue("postgres_server")))
        if lib.is_tether:
            return self.stack.enter_context(tether.checkpoint.PostgresSaver.from_conn_string(conninfo))
        import psycopg
        from langgraph.checkpoint.postgres import PostgresSaver as LGPostgresSaver
        from psycopg.rows import dict_row

        conn = self.stack.enter_context(
            psycopg.connect(conninfo, autocommit=True, prepare_threshold=0, row_factory=dict_row)
        )
        saver = LGPostgresSaver(conn)
        saver.setup()
        return saver

    def __call__(self, lib: Lib, kind: str | None) -> Any:
        if kind is None:
            return None
        if kind == "memory":
            return lib.InMemorySaver()
        if kind == "sqlite":
            self.n += 1
            conn = sqlite3.connect(str(self.tmp_path / f"{lib.name}-{self.n}.db"), check_same_thread=False)
            self.conns.append(conn)
            return lib.SqliteSaver(conn)
        if kind == "postgres":
            return self._postgres(lib)
        raise ValueError(kind)

    def close(self) -> None:
        for conn in self.conns:
            conn.close()
        self.conns.clear()
        self.stack.close()


@pytest.fixture
def savers(tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    factory = SaverFactory(tmp_path, request)
    yield factory
    factory.close()


class Differential:
    def __init__(self, savers: SaverFactory) -> None:
        self.savers = savers

    def observe(
        self,
        build: Callable[..., Any],
        drive: Callable[[Lib, Any], Any],
        *,
        saver: str | dict[str, str] | None = None,
        peer_saver: str | None = None,
        **compile_kwargs: Any,
    ) -> dict[str, Any]:
        """Run build+drive on each library; return ``{lib name: observation}``.

        ``saver`` is Tether's checkpointer kind ("memory" or "sqlite"); LangGraph, the
        reference, runs on its InMemorySaver unless ``peer_saver`` names another kind.
        (LangGraph's own SqliteSaver reports a different ``next`` in the history of a cyclic
        graph with a join than its InMemorySaver does, so memory is the reference.) A
        ``{lib name: kind}`` mapping sets both explicitly.
        """
        seen: dict[str, Any] = {}
        for base in LIBS:
            lib = base.fresh()
            kwargs = dict(compile_kwargs)
            if isinstance(saver, dict):
                kind = saver.get(lib.name)
            elif saver is None or lib.is_tether:
                kind = saver
            else:
                kind = peer_saver or "memory"
            if kind is not None:
                kwargs["checkpointer"] = self.savers(lib, kind)
            graph = build(lib, **kwargs)
            seen[lib.name] = drive(lib, graph)
        return seen

    def compare(
        self,
        build: Callable[..., Any],
        drive: Callable[[Lib, Any], Any],
        *,
        saver: str | dict[str, str] | None = None,
        peer_saver: str | None = None,
        **compile_kwargs: Any,
    ) -> Any:
        """Assert both libraries observe the same; return the (LangGraph) observation."""
        seen = self.observe(build, drive, saver=saver, peer_saver=peer_saver, **compile_kwargs)
        assert seen["tether"] == seen["langgraph"], "Tether diverges from LangGraph"
        return seen["langgraph"]


@pytest.fixture
def diff(savers: SaverFactory) -> Differential:
    return Differential(savers)


@pytest.fixture(params=SAVER_KINDS)
def saver_kind(request: pytest.FixtureRequest) -> str:
    return request.param
