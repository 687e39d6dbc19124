#!/usr/bin/env python3
"""Tether vs LangGraph: step throughput and checkpoint storage growth.

Both libraries are measured in the same process, on the same machine, in one run.

(a) Throughput: a 10-node linear graph (``{"n": int}``, each node adds one) invoked many
    times, each invocation on a new thread (and, as a variant, all on one thread), with a
    file-backed SQLite checkpointer (one database per configuration, in a temp directory)
    or with none. Steps per second = node executions per second. Configurations run
    round-robin (order rotated each round) after a warm-up; the median and the best round
    are reported.
(b) Storage growth: a one-node graph (START -> append -> END) whose state has
    ``items: Annotated[list, operator.add]``; each turn is one invoke on the same thread that
    appends one 100-byte string. Bytes on disk after closing the saver, and time per turn
    at the start vs at the end.

Usage: ``python benchmarks/bench.py [--quick] [--json PATH] [--plain]``
(``bash benchmarks/run.sh`` builds a virtualenv with both libraries first).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import gc
import inspect
import json
import operator
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from typing import Annotated, Any, TypedDict

from langgraph.checkpoint.sqlite import SqliteSaver as LGSqliteSaver
from langgraph.graph import END as LG_END
from langgraph.graph import START as LG_START
from langgraph.graph import StateGraph as LGStateGraph

import tether

NODES = 10
ITEM_BYTES = 100

# targets
TARGET_SPEEDUP = 10.0  # Tether steps/s at least 10x LangGraph with SqliteSaver
TARGET_BYTES = 1_000_000  # Tether at most 1 MB after 1,000 turns
TARGET_TURN_RATIO = 1.5  # Tether's last turns no slower than 1.5x its first turns
LANGGRAPH_REFERENCE_BYTES = 157_000_000  # LangGraph reference after 1,000 turns, about 157 MB


@dataclass(frozen=True)
class Params:
    invocations: int  # invocations per round, per configuration and variant
    rounds: int
    warmup: int  # warm-up invocations per configuration and variant
    horizons: tuple[int, ...]  # storage runs: turns per run (each from an empty database)
    window: int  # turns in the start/end medians
    growth_warmup: int  # warm-up turns (on a throwaway database) before each storage run


FULL = Params(invocations=200, rounds=7, warmup=20, horizons=(100, 1000), window=20, growth_warmup=20)
QUICK = Params(invocations=20, rounds=2, warmup=3, horizons=(10, 30), window=5, growth_warmup=3)


# -- graphs -----------------------------------------------------------------------------------
class CounterState(TypedDict):
    n: int


class ListState(TypedDict):
    turn: int
    items: Annotated[list, operator.add]


def increment(state: CounterState) -> dict[str, int]:
    return {"n": state["n"] + 1}


def make_item(turn: int) -> str:
    return f"item-{turn:06d}-".ljust(ITEM_BYTES, "x")


def append(state: ListState) -> dict[str, list[str]]:
    return {"items": [make_item(state["turn"])]}


@dataclass(frozen=True)
class Lib:
    name: str
    StateGraph: Any
    START: Any
    END: Any


TETHER = Lib("Tether", tether.StateGraph, tether.START, tether.END)
LANGGRAPH = Lib("LangGraph", LGStateGraph, LG_START, LG_END)


def linear_graph(lib: Lib, checkpointer: Any) -> Any:
    g = lib.StateGraph(CounterState)
    prev = lib.START
    for i in range(NODES):
        name = f"node{i}"
        g.add_node(name, increment)
        g.add_edge(prev, name)
        prev = name
    g.add_edge(prev, lib.END)
    return g.compile(checkpointer=checkpointer)


def append_graph(lib: Lib, checkpointer: Any) -> Any:
    g = lib.StateGraph(ListState)
    g.add_node("append", append)
    g.add_edge(lib.START, "append")
    g.add_edge("append", lib.END)
    return g.compile(checkpointer=checkpointer)


# -- configurations ---------------------------------------------------------------------------
@dataclass
class Opened:
    saver: Any
    conn: sqlite3.Connection | None
    close: Callable[[], None]


@dataclass(frozen=True)
class Config:
    key: str
    label: str
    lib: Lib
    open: Callable[[str], Opened] | None  # None: no checkpointer
    invoke_kwargs: dict[str, Any] = field(default_factory=dict)


def open_langgraph(path: str) -> Opened:
    stack = contextlib.ExitStack()
    saver = stack.enter_context(LGSqliteSaver.from_conn_string(path))
    return Opened(saver, saver.conn, stack.close)


def open_tether(synchronous: str) -> Callable[[str], Opened]:
    def opener(path: str) -> Opened:
        saver = tether.SqliteSaver.from_conn_string(path, synchronous=synchronous)
        return Opened(saver, saver.conn, saver.close)

    return opener


LG_SQLITE = Config("langgraph_sqlite", "LangGraph SqliteSaver", LANGGRAPH, open_langgraph)
LG_SQLITE_SYNC = Config(
    "langgraph_sqlite_durability_sync",
    "LangGraph SqliteSaver, durability='sync'",
    LANGGRAPH,
    open_langgraph,
    {"durability": "sync"},
)
TETHER_FULL = Config("tether_sqlite_full", "Tether SqliteSaver FULL", TETHER, open_tether("FULL"))
TETHER_NORMAL = Config("tether_sqlite_normal", "Tether SqliteSaver NORMAL (default)", TETHER, open_tether("NORMAL"))
LG_NONE = Config("langgraph_none", "LangGraph, no checkpointer", LANGGRAPH, None)
TETHER_NONE = Config("tether_none", "Tether, no checkpointer", TETHER, None)

THROUGHPUT_CONFIGS = [LG_SQLITE, LG_SQLITE_SYNC, TETHER_FULL, TETHER_NORMAL, LG_NONE, TETHER_NONE]

# Storage runs: (key, configuration, thread id). Every checkpoint row carries the thread id,
# so its length shows in the bytes on disk; "thread-1" is the style of LangGraph's docs, and
# a 36-character UUID (also common) is measured as a variant for Tether.
STORAGE_THREAD_ID = "thread-1"
UUID_THREAD_ID = "6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b"
STORAGE_RUNS: list[tuple[str, Config, str, str]] = [
    (LG_SQLITE.key, LG_SQLITE, STORAGE_THREAD_ID, LG_SQLITE.label),
    (TETHER_NORMAL.key, TETHER_NORMAL, STORAGE_THREAD_ID, TETHER_NORMAL.label),
    (TETHER_FULL.key, TETHER_FULL, STORAGE_THREAD_ID, TETHER_FULL.label),
    ("tether_sqlite_normal_uuid_thread", TETHER_NORMAL, UUID_THREAD_ID, "Tether SqliteSaver NORMAL, UUID thread id"),
]


def thread(tid: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": tid}}


def progress(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    """A library returned a wrong result (reported, not hidden)."""


# -- (a) throughput ---------------------------------------------------------------------------
SYNC_NAMES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def pragmas(conn: sqlite3.Connection) -> dict[str, str]:
    journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    sync = conn.execute("PRAGMA synchronous").fetchone()[0]
    return {"journal_mode": str(journal).lower(), "synchronous": SYNC_NAMES.get(sync, str(sync))}


def langgraph_pragma_lines() -> list[str]:
    """The PRAGMA statements in LangGraph's SqliteSaver source (what it sets on its connection)."""
    try:
        import langgraph.checkpoint.sqlite as mod

        source = inspect.getsource(mod)
    except (OSError, TypeError):
        return []
    return sorted({line.strip() for line in source.splitlines() if "PRAGMA" in line.upper()})


def count_statements(conn: sqlite3.Connection, fn: Callable[[], Any]) -> dict[str, int]:
    counts: collections.Counter[str] = collections.Counter()
    conn.set_trace_callback(lambda sql: counts.update([sql.split(None, 1)[0].upper() if sql.strip() else "?"]))
    try:
        fn()
    finally:
        conn.set_trace_callback(None)
    return dict(counts)


class Runner:
    """One configuration's compiled graph (and database) for the throughput benchmark."""

    def __init__(self, cfg: Config, tmp: str) -> None:
        self.cfg = cfg
        self.opened: Opened | None = None
        if cfg.open is not None:
            self.path = os.path.join(tmp, f"throughput-{cfg.key}.sqlite")
            self.opened = cfg.open(self.path)
            self.graph = linear_graph(cfg.lib, self.opened.saver)
        else:
            self.graph = linear_graph(cfg.lib, None)
        self.same_thread = f"{cfg.key}-same-thread"

    @property
    def durable(self) -> bool:
        return self.opened is not None

    def call(self, tid: str | None) -> None:
        config = thread(tid) if tid is not None else None
        out = self.graph.invoke({"n": 0}, config, **self.cfg.invoke_kwargs)
        if out.get("n") != NODES:
            raise BenchError(f"{self.cfg.label}: expected n == {NODES}, got {out!r}")

    def run(self, count: int, same_thread: bool) -> float:
        """Invoke ``count`` times; return steps per second."""
        if same_thread:
            tids: list[str | None] = [self.same_thread] * count
        elif self.durable:
            tids = [uuid.uuid4().hex for _ in range(count)]
        else:
            tids = [None] * count
        call = self.call
        gc.collect()
        start = time.perf_counter()
        for tid in tids:
            call(tid)
        elapsed = time.perf_counter() - start
        return count * NODES / elapsed

    def close(self) -> None:
        if self.opened is not None:
            self.opened.close()


def bench_throughput(p: Params, tmp: str) -> dict[str, Any]:
    runners = [Runner(cfg, tmp) for cfg in THROUGHPUT_CONFIGS]
    results: dict[str, Any] = {}
    try:
        progress(f"throughput: warm-up ({p.warmup} invocations per configuration and variant)")
        for r in runners:
            r.run(p.warmup, same_thread=False)
            if r.durable:
                r.run(p.warmup, same_thread=True)
        samples: dict[str, dict[str, list[float]]] = {r.cfg.key: {"new": [], "same": []} for r in runners}
        for rnd in range(p.rounds):
            progress(f"throughput: round {rnd + 1}/{p.rounds} ({p.invocations} invocations per configuration)")
            shift = rnd % len(runners)
            for r in runners[shift:] + runners[:shift]:
                samples[r.cfg.key]["new"].append(r.run(p.invocations, same_thread=False))
                if r.durable:
                    samples[r.cfg.key]["same"].append(r.run(p.invocations, same_thread=True))
        for r in runners:
            new, same = samples[r.cfg.key]["new"], samples[r.cfg.key]["same"]
            entry: dict[str, Any] = {
                "label": r.cfg.label,
                "library": r.cfg.lib.name,
                "checkpointer": r.durable,
                "steps_per_s": statistics.median(new),
                "steps_per_s_best": max(new),
                "rounds_steps_per_s": new,
                "us_per_invocation": 1e6 * NODES / statistics.median(new),
            }
            if r.durable:
                assert r.opened is not None and r.opened.conn is not None
                entry["pragmas"] = pragmas(r.opened.conn)
                entry["same_thread_steps_per_s"] = statistics.median(same)
                entry["same_thread_steps_per_s_best"] = max(same)
                entry["same_thread_rounds_steps_per_s"] = same
                entry["same_over_new"] = entry["same_thread_steps_per_s"] / entry["steps_per_s"]
                # SQL statements one invocation issues on a new thread (untimed, diagnostic)
                entry["statements_per_invocation"] = count_statements(
                    r.opened.conn, lambda r=r: r.call(uuid.uuid4().hex)
                )
            results[r.cfg.key] = entry
    finally:
        for r in runners:
            r.close()
    for key in results:
        path = os.path.join(tmp, f"throughput-{key}.sqlite")
        if os.path.exists(path):
            results[key]["db_bytes_after"] = disk_usage(path)["total"]
    return results


# -- (b) storage growth ----------------------------------------------------------------------
def disk_usage(path: str) -> dict[str, int]:
    sizes = {}
    for suffix, name in (("", "db"), ("-wal", "wal"), ("-shm", "shm")):
        f = path + suffix
        sizes[name] = os.path.getsize(f) if os.path.exists(f) else 0
    sizes["total"] = sizes["db"] + sizes["wal"] + sizes["shm"]
    return sizes


def run_turns(cfg: Config, path: str, turns: int, tid: str) -> list[float]:
    assert cfg.open is not None
    opened = cfg.open(path)
    times: list[float] = []
    try:
        graph = append_graph(cfg.lib, opened.saver)
        config = thread(tid)
        gc.collect()
        for turn in range(turns):
            start = time.perf_counter()
            out = graph.invoke({"turn": turn}, config, **cfg.invoke_kwargs)
            times.append(time.perf_counter() - start)
            items = out["items"]
            if len(items) != turn + 1 or items[-1] != make_item(turn):
                raise BenchError(
                    f"{cfg.label}: after turn {turn + 1} expected {turn + 1} items ending in "
                    f"{make_item(turn)[:12]!r}…, got {len(items)} ending in {str(items[-1:])[:40]}"
                )
    finally:
        opened.close()
    return times


def verify_reopened(cfg: Config, path: str, turns: int, tid: str) -> None:
    """Reopen the closed database and check the thread's state survived intact."""
    assert cfg.open is not None
    opened = cfg.open(path)
    try:
        values = append_graph(cfg.lib, opened.saver).get_state(thread(tid)).values
    finally:
        opened.close()
    items = values.get("items", [])
    if len(items) != turns or (turns and items[-1] != make_item(turns - 1)):
        raise BenchError(f"{cfg.label}: reopened database holds {len(items)} items, expected {turns}")


def bench_storage(p: Params, tmp: str) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for key, cfg, tid, label in STORAGE_RUNS:
        runs = []
        # warm up this configuration's code paths on a throwaway database
        warm = os.path.join(tmp, f"warmup-{cfg.key}.sqlite")
        run_turns(cfg, warm, p.growth_warmup, "warmup")
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(warm + suffix)
        for turns in p.horizons:
            progress(f"storage: {label}, {turns} turns")
            path = os.path.join(tmp, f"storage-{key}-{turns}.sqlite")
            wall = time.perf_counter()
            times = run_turns(cfg, path, turns, tid)
            wall = time.perf_counter() - wall
            sizes = disk_usage(path)  # after close: the WAL has been checkpointed
            verify_reopened(cfg, path, turns, tid)
            w = max(1, min(p.window, turns // 3))
            start_ms = 1e3 * statistics.median(times[:w])
            end_ms = 1e3 * statistics.median(times[-w:])
            runs.append(
                {
                    "turns": turns,
                    "bytes_total": sizes["total"],
                    "bytes_db": sizes["db"],
                    "bytes_wal": sizes["wal"],
                    "bytes_shm": sizes["shm"],
                    "bytes_per_turn": sizes["total"] / turns,
                    "window": w,
                    "turn_ms_start": start_ms,
                    "turn_ms_end": end_ms,
                    "end_over_start": end_ms / start_ms,
                    "turn_ms_mean": 1e3 * statistics.fmean(times),
                    "wall_s": wall,
                }
            )
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path + suffix)
        results[key] = {"label": label, "library": cfg.lib.name, "thread_id": tid, "runs": runs}
    return results


# -- summary ----------------------------------------------------------------------------------
def summarize(thr: dict[str, Any], sto: dict[str, Any], p: Params) -> tuple[dict[str, float], list[dict[str, Any]]]:
    lg = thr[LG_SQLITE.key]["steps_per_s"]
    ratios = {
        "tether_full_over_langgraph_sqlite": thr[TETHER_FULL.key]["steps_per_s"] / lg,
        "tether_normal_over_langgraph_sqlite": thr[TETHER_NORMAL.key]["steps_per_s"] / lg,
        "tether_full_over_langgraph_sqlite_durability_sync": thr[TETHER_FULL.key]["steps_per_s"]
        / thr[LG_SQLITE_SYNC.key]["steps_per_s"],
        "tether_normal_over_langgraph_sqlite_durability_sync": thr[TETHER_NORMAL.key]["steps_per_s"]
        / thr[LG_SQLITE_SYNC.key]["steps_per_s"],
        "tether_over_langgraph_no_checkpointer": thr[TETHER_NONE.key]["steps_per_s"] / thr[LG_NONE.key]["steps_per_s"],
        "tether_full_same_thread_over_langgraph_sqlite_same_thread": thr[TETHER_FULL.key]["same_thread_steps_per_s"]
        / thr[LG_SQLITE.key]["same_thread_steps_per_s"],
        "tether_normal_same_thread_over_langgraph_sqlite_same_thread": thr[TETHER_NORMAL.key]["same_thread_steps_per_s"]
        / thr[LG_SQLITE.key]["same_thread_steps_per_s"],
    }
    last = {key: entry["runs"][-1] for key, entry in sto.items()}
    horizon = p.horizons[-1]
    ratios["langgraph_bytes_over_tether_normal_bytes"] = (
        last[LG_SQLITE.key]["bytes_total"] / last[TETHER_NORMAL.key]["bytes_total"]
    )
    ratios["langgraph_bytes_over_tether_full_bytes"] = (
        last[LG_SQLITE.key]["bytes_total"] / last[TETHER_FULL.key]["bytes_total"]
    )
    note = "" if horizon == 1000 else f" (quick run: {horizon} turns, target is for 1,000)"
    targets: list[dict[str, Any]] = []

    def target(name: str, value: float, goal: str, ok: bool | None, unit: str = "") -> None:
        targets.append(
            {
                "name": name,
                "value": value,
                "unit": unit,
                "target": goal,
                "pass": ok,
                "status": "INFO" if ok is None else ("PASS" if ok else "MISS"),
            }
        )

    for key, label in ((TETHER_FULL.key, "FULL, same setting"), (TETHER_NORMAL.key, "NORMAL default")):
        r = thr[key]["steps_per_s"] / lg
        target(
            f"steps/s Tether {label} / LangGraph SqliteSaver", r, f">= {TARGET_SPEEDUP:g}x", r >= TARGET_SPEEDUP, "x"
        )
    for key, label in (
        (TETHER_NORMAL.key, "NORMAL"),
        (TETHER_FULL.key, "FULL"),
        ("tether_sqlite_normal_uuid_thread", "NORMAL, UUID thread id"),
    ):
        b = last[key]["bytes_total"]
        target(
            f"bytes on disk after {horizon} turns, Tether {label}{note}",
            b,
            f"<= {TARGET_BYTES / 1e6:g} MB",
            b <= TARGET_BYTES,
            "B",
        )
    for key, label in ((TETHER_NORMAL.key, "NORMAL"), (TETHER_FULL.key, "FULL")):
        r = last[key]["end_over_start"]
        target(
            f"time per turn end/start ({horizon} turns), Tether {label}",
            r,
            f"<= {TARGET_TURN_RATIO:g}x",
            r <= TARGET_TURN_RATIO,
            "x",
        )
    b = last[LG_SQLITE.key]["bytes_total"]
    target(
        f"bytes on disk after {horizon} turns, LangGraph SqliteSaver{note}",
        b,
        f"reference ~{LANGGRAPH_REFERENCE_BYTES / 1e6:g} MB",
        None,
        "B",
    )
    r = last[LG_SQLITE.key]["end_over_start"]
    target(f"time per turn end/start ({horizon} turns), LangGraph SqliteSaver", r, "reference", None, "x")
    return ratios, targets


# -- output -----------------------------------------------------------------------------------
def fmt_bytes(n: float) -> str:
    if n >= 1e6:
        return f"{n / 1e6:,.2f} MB"
    if n >= 1e3:
        return f"{n / 1e3:,.1f} kB"
    return f"{n:,.0f} B"


def fmt_value(v: float, unit: str) -> str:
    if unit == "B":
        return f"{fmt_bytes(v)} ({v:,.0f} B)"
    if unit == "x":
        return f"{v:,.2f}x"
    return f"{v:,.3g}"


class Out:
    def __init__(self, plain: bool) -> None:
        self.console = None
        if not plain:
            try:
                from rich.console import Console

                tty = sys.stdout.isatty()
                self.console = Console(highlight=False, width=None if tty else 160)
            except ImportError:
                self.console = None

    def line(self, text: str = "") -> None:
        if self.console is not None:
            self.console.print(text, markup=False)
        else:
            print(text)

    def table(self, title: str, columns: list[str], rows: list[list[str]], right: set[int] | None = None) -> None:
        right = right if right is not None else set(range(1, len(columns)))
        if self.console is not None:
            from rich.table import Table

            t = Table(title=title, title_justify="left")
            for i, c in enumerate(columns):
                t.add_column(c, justify="right" if i in right else "left")
            for row in rows:
                t.add_row(*row)
            self.console.print(t)
            return
        widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(columns)]

        def fmt(cells: list[str]) -> str:
            return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

        print(title)
        print(fmt(columns))
        print("  ".join("-" * w for w in widths))
        for row in rows:
            print(fmt(row))
        print()


def report(out: Out, result: dict[str, Any]) -> None:
    meta, thr, sto = result["meta"], result["throughput"], result["storage"]
    p = meta["params"]
    out.line(
        f"Tether {meta['versions']['tether']} vs LangGraph {meta['versions']['langgraph']} "
        f"(langgraph-checkpoint-sqlite {meta['versions']['langgraph-checkpoint-sqlite']}), "
        f"Python {meta['python']}, SQLite {meta['sqlite']}"
    )
    out.line(
        f"{meta['platform']}, {meta['cpus']} CPUs; databases in {meta['tmpdir']} ({meta['filesystem']})"
        + ("; QUICK run (small counts, figures are rough)" if meta["quick"] else "")
    )
    out.line(f"LangGraph SqliteSaver source sets: {'; '.join(meta['langgraph_pragma_statements']) or '(none found)'}")
    for key in (LG_SQLITE.key, TETHER_FULL.key, TETHER_NORMAL.key):
        pr = thr[key]["pragmas"]
        out.line(
            f"  PRAGMA on {thr[key]['label']} connection: journal_mode={pr['journal_mode']}, "
            f"synchronous={pr['synchronous']}"
        )
    out.line()

    lg = thr[LG_SQLITE.key]["steps_per_s"]
    rows = []
    for e in thr.values():
        stm = e.get("statements_per_invocation")
        commits = str(stm.get("COMMIT", 0)) if stm else "-"
        same = e.get("same_thread_steps_per_s")
        rows.append(
            [
                e["label"],
                f"{e['steps_per_s']:,.0f}",
                f"{e['steps_per_s_best']:,.0f}",
                f"{e['us_per_invocation'] / 1e3:,.2f}",
                f"{same:,.0f}" if same else "-",
                f"{e['same_over_new']:.2f}" if same else "-",
                commits,
                f"{e['steps_per_s'] / lg:.2f}x",
            ]
        )
    out.table(
        f"(a) Steps/s, {NODES}-node linear graph, each invocation on a new thread "
        f"(median of {p['rounds']} rounds x {p['invocations']} invocations; best round beside)",
        [
            "configuration",
            "steps/s",
            "best",
            "ms/invoke",
            "steps/s 1 thread",
            "1 thread/new",
            "commits/invoke",
            "vs LG SqliteSaver",
        ],
        rows,
    )
    r = result["ratios"]
    goal = f"[target >= {TARGET_SPEEDUP:g}x]"
    full, normal = r["tether_full_over_langgraph_sqlite"], r["tether_normal_over_langgraph_sqlite"]
    out.line(f"Tether FULL / LangGraph SqliteSaver (both synchronous FULL): {full:6.2f}x   {goal}")
    out.line(f"Tether NORMAL (default) / LangGraph SqliteSaver:             {normal:6.2f}x   {goal}")
    full, normal = (
        r["tether_full_over_langgraph_sqlite_durability_sync"],
        r["tether_normal_over_langgraph_sqlite_durability_sync"],
    )
    out.line(f"Same, against LangGraph durability='sync': FULL {full:.2f}x, NORMAL {normal:.2f}x")
    out.line(
        f"Same, all invocations on one thread: FULL "
        f"{r['tether_full_same_thread_over_langgraph_sqlite_same_thread']:.2f}x, NORMAL "
        f"{r['tether_normal_same_thread_over_langgraph_sqlite_same_thread']:.2f}x"
    )
    out.line(f"No checkpointer, Tether / LangGraph: {r['tether_over_langgraph_no_checkpointer']:.2f}x")
    out.line()

    rows = []
    for e in sto.values():
        for run in e["runs"]:
            rows.append(
                [
                    e["label"],
                    f"{run['turns']:,}",
                    fmt_bytes(run["bytes_total"]),
                    f"{fmt_bytes(run['bytes_db'])} / {fmt_bytes(run['bytes_wal'])} / {fmt_bytes(run['bytes_shm'])}",
                    f"{run['bytes_per_turn']:,.0f}",
                    f"{run['turn_ms_start']:.3f}",
                    f"{run['turn_ms_end']:.3f}",
                    f"{run['end_over_start']:.2f}x",
                    f"{run['wall_s']:.1f}",
                ]
            )
    w = sto[TETHER_NORMAL.key]["runs"][-1]["window"]
    out.table(
        f"(b) Storage growth: one 100-byte item appended per turn, same thread "
        f"(sizes after closing; turn times = median of first / last {w} turns)",
        [
            "configuration",
            "turns",
            "on disk",
            "db / wal / shm",
            "B/turn",
            "ms/turn start",
            "ms/turn end",
            "end/start",
            "wall s",
        ],
        rows,
    )
    out.line(
        f"Thread ids: {STORAGE_THREAD_ID!r} unless marked UUID (36 characters); "
        "Tether stores a thread id once, in its threads table."
    )
    out.line(
        f"Targets: Tether <= {TARGET_BYTES / 1e6:g} MB (1 MB = 1,000,000 B) after 1,000 turns; "
        f"Tether end/start <= {TARGET_TURN_RATIO:g}x; "
        f"LangGraph reference ~{LANGGRAPH_REFERENCE_BYTES / 1e6:g} MB after 1,000 turns"
    )
    out.line(
        f"LangGraph / Tether bytes on disk at {p['horizons'][-1]} turns: "
        f"NORMAL {r['langgraph_bytes_over_tether_normal_bytes']:,.0f}x, "
        f"FULL {r['langgraph_bytes_over_tether_full_bytes']:,.0f}x"
    )
    out.line()

    out.table(
        "Summary",
        ["measure", "value", "target", "result"],
        [[t["name"], fmt_value(t["value"], t["unit"]), t["target"], t["status"]] for t in result["targets"]],
        right={1},
    )
    out.line(f"total wall time: {meta['wall_s']:.1f} s")


# -- main -------------------------------------------------------------------------------------
def filesystem_of(path: str) -> str:
    path = os.path.realpath(path)
    best, fs = "", "unknown"
    with contextlib.suppress(OSError), open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3:
                mnt = parts[1].replace("\\040", " ")
                if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) > len(best):
                    best, fs = mnt, parts[2]
    return fs


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


@contextlib.contextmanager
def temp_dir(base: str | None) -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="tether-bench-", dir=base)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="small counts, for smoke tests (figures are rough)")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    ap.add_argument("--plain", action="store_true", help="plain-text tables even if rich is installed")
    ap.add_argument("--tmpdir", metavar="DIR", help="where to create the databases (default: the system temp dir)")
    ap.add_argument("--rounds", type=int, help="throughput rounds")
    ap.add_argument("--invocations", type=int, help="throughput invocations per round")
    ap.add_argument("--turns", metavar="N[,N...]", help="storage horizons, e.g. 100,1000")
    args = ap.parse_args(argv)

    p = QUICK if args.quick else FULL
    overrides: dict[str, Any] = {}
    if args.rounds:
        overrides["rounds"] = args.rounds
    if args.invocations:
        overrides["invocations"] = args.invocations
    if args.turns:
        overrides["horizons"] = tuple(sorted(int(x) for x in args.turns.split(",")))
    if overrides:
        p = Params(**{**p.__dict__, **overrides})

    wall = time.perf_counter()
    with temp_dir(args.tmpdir) as tmp:
        meta: dict[str, Any] = {
            "quick": args.quick,
            "params": {**p.__dict__, "horizons": list(p.horizons)},
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "sqlite": sqlite3.sqlite_version,
            "tmpdir": tmp,
            "filesystem": filesystem_of(tmp),
            "versions": {
                d: version(d) for d in ("tether", "langgraph", "langgraph-checkpoint-sqlite", "langgraph-checkpoint")
            },
            "langgraph_pragma_statements": langgraph_pragma_lines(),
        }
        thr = bench_throughput(p, tmp)
        sto = bench_storage(p, tmp)
    meta["wall_s"] = time.perf_counter() - wall
    ratios, targets = summarize(thr, sto, p)
    result = {"meta": meta, "throughput": thr, "storage": sto, "ratios": ratios, "targets": targets}
    report(Out(args.plain), result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
        progress(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
