#!/usr/bin/env python3
"""Tether vs LangGraph on PostgreSQL: steps per second of the 10-node graph, in one run.

The same 10-node linear graph as ``bench.py`` (``{"n": int}``, each node adds one), invoked
many times, each invocation on a new thread, with a checkpoint committed after every step:
Tether's ``PostgresSaver`` against LangGraph's (package ``langgraph-checkpoint-postgres``),
each in its own database of one throwaway PostgreSQL server on loopback. The server runs with
PostgreSQL's defaults for durability (``fsync=on``, ``synchronous_commit=on``): a committed
checkpoint is on disk. Configurations run round-robin after a warm-up; medians are reported.

LangGraph's default durability (``"async"``) writes a step's checkpoint while the next step
runs; ``durability="sync"`` waits for it, as Tether always does. Both are measured.

Usage: ``python benchmarks/postgres.py [--quick] [--json PATH]`` (``bash benchmarks/run.sh``
runs it after ``bench.py``). Needs PostgreSQL's server binaries (``scripts/ensure-postgres.sh``).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from langgraph.checkpoint.postgres import PostgresSaver as LGPostgresSaver
from psycopg.conninfo import make_conninfo

import tether
from tether.checkpoint import PostgresSaver

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import LANGGRAPH, NODES, TETHER, BenchError, Lib, Out, linear_graph, progress, version
from tests.pg import PostgresServer


@dataclass(frozen=True)
class Params:
    warmup: int
    rounds: int
    invocations: int


FULL = Params(warmup=50, rounds=5, invocations=200)
QUICK = Params(warmup=3, rounds=2, invocations=5)


@dataclass(frozen=True)
class Config:
    key: str
    label: str
    lib: Lib
    open: Callable[[str, contextlib.ExitStack], Any]
    invoke_kwargs: dict[str, Any] = field(default_factory=dict)


def open_tether(url: str, stack: contextlib.ExitStack) -> Any:
    saver = stack.enter_context(PostgresSaver.from_conn_string(url))
    saver.setup()
    return saver


def open_langgraph(url: str, stack: contextlib.ExitStack) -> Any:
    saver = stack.enter_context(LGPostgresSaver.from_conn_string(url))
    saver.setup()
    return saver


def no_commit_wait(opener: Callable[[str, contextlib.ExitStack], Any]) -> Callable[[str, contextlib.ExitStack], Any]:
    """The same saver on sessions with ``synchronous_commit=off``: a commit returns before its
    WAL record is flushed (a server crash may lose the last few hundred milliseconds of
    commits, never consistency). It shows what is left once the fsync per commit is gone."""

    def opener_off(url: str, stack: contextlib.ExitStack) -> Any:
        return opener(make_conninfo(url, options="-c synchronous_commit=off"), stack)

    return opener_off


CONFIGS = [
    Config(
        "langgraph_postgres", "LangGraph PostgresSaver (durability='async', its default)", LANGGRAPH, open_langgraph
    ),
    Config(
        "langgraph_postgres_sync",
        "LangGraph PostgresSaver, durability='sync'",
        LANGGRAPH,
        open_langgraph,
        {"durability": "sync"},
    ),
    Config("tether_postgres", "Tether PostgresSaver", TETHER, open_tether),
    Config(
        "langgraph_postgres_nowait",
        "LangGraph PostgresSaver, synchronous_commit=off",
        LANGGRAPH,
        no_commit_wait(open_langgraph),
    ),
    Config(
        "tether_postgres_nowait", "Tether PostgresSaver, synchronous_commit=off", TETHER, no_commit_wait(open_tether)
    ),
]


class Runner:
    def __init__(self, cfg: Config, url: str) -> None:
        self.cfg = cfg
        self.stack = contextlib.ExitStack()
        self.graph = linear_graph(cfg.lib, cfg.open(url, self.stack))

    def call(self) -> None:
        out = self.graph.invoke({"n": 0}, {"configurable": {"thread_id": uuid.uuid4().hex}}, **self.cfg.invoke_kwargs)
        if out.get("n") != NODES:
            raise BenchError(f"{self.cfg.label}: expected n == {NODES}, got {out!r}")

    def run(self, count: int) -> float:
        gc.collect()
        start = time.perf_counter()
        for _ in range(count):
            self.call()
        return count * NODES / (time.perf_counter() - start)


def create_database(admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def server_settings(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'server_version')"
        ).fetchall()
    return dict(rows)


def checkpoint_rows(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM checkpoints").fetchone()
    return int(row[0]) if row else 0


@contextlib.contextmanager
def server() -> Iterator[str]:
    with PostgresServer(database="bench_admin", durable=True) as url:
        yield url


def bench(p: Params, admin_url: str) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]  # databases of their own, also on a server shared with others (--url)
    urls = {cfg.key: create_database(admin_url, f"bench_{run}_{cfg.key}") for cfg in CONFIGS}
    runners = [Runner(cfg, urls[cfg.key]) for cfg in CONFIGS]
    results: dict[str, Any] = {}
    try:
        progress(f"postgres: warm-up ({p.warmup} invocations per configuration)")
        for r in runners:
            r.run(p.warmup)
        samples: dict[str, list[float]] = {r.cfg.key: [] for r in runners}
        for rnd in range(p.rounds):
            progress(f"postgres: round {rnd + 1}/{p.rounds} ({p.invocations} invocations per configuration)")
            shift = rnd % len(runners)
            for r in runners[shift:] + runners[:shift]:
                samples[r.cfg.key].append(r.run(p.invocations))
        for r in runners:
            rounds = samples[r.cfg.key]
            results[r.cfg.key] = {
                "label": r.cfg.label,
                "library": r.cfg.lib.name,
                "steps_per_s": statistics.median(rounds),
                "steps_per_s_best": max(rounds),
                "rounds_steps_per_s": rounds,
                "us_per_invocation": 1e6 * NODES / statistics.median(rounds),
            }
    finally:
        for r in runners:
            r.stack.close()
        for key, url in urls.items():
            if key in results:
                results[key]["checkpoint_rows"] = checkpoint_rows(url)
        with psycopg.connect(admin_url, autocommit=True) as conn:
            for url in urls.values():
                conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}"')  # type: ignore[arg-type]
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="small counts, for smoke tests (figures are rough)")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    ap.add_argument("--plain", action="store_true", help="plain-text tables even if rich is installed")
    ap.add_argument("--url", help="an existing server's admin URL (creates databases there) instead of a private one")
    args = ap.parse_args(argv)
    p = QUICK if args.quick else FULL

    wall = time.perf_counter()
    with contextlib.nullcontext(args.url) if args.url else server() as admin_url:
        settings = server_settings(admin_url)
        results = bench(p, admin_url)
    tether_rate = results["tether_postgres"]["steps_per_s"]
    ratios = {
        "tether_over_langgraph": tether_rate / results["langgraph_postgres"]["steps_per_s"],
        "tether_over_langgraph_sync": tether_rate / results["langgraph_postgres_sync"]["steps_per_s"],
        "tether_over_langgraph_nowait": results["tether_postgres_nowait"]["steps_per_s"]
        / results["langgraph_postgres_nowait"]["steps_per_s"],
    }
    result = {
        "meta": {
            "quick": args.quick,
            "params": p.__dict__,
            "server": settings,
            "versions": {d: version(d) for d in ("tether", "langgraph", "langgraph-checkpoint-postgres", "psycopg")},
            "wall_s": time.perf_counter() - wall,
        },
        "throughput": results,
        "ratios": ratios,
    }

    out = Out(args.plain)
    out.line(
        f"PostgreSQL {settings.get('server_version')} on loopback, fsync={settings.get('fsync')}, "
        f"synchronous_commit={settings.get('synchronous_commit')}; tether {tether.__version__}"
    )
    rows = [
        [
            r["label"],
            f"{r['steps_per_s']:,.0f}",
            f"{r['steps_per_s_best']:,.0f}",
            f"{r['us_per_invocation'] / 1000:,.2f}",
            f"{r['checkpoint_rows']:,}",
        ]
        for r in results.values()
    ]
    out.table(
        f"10-node graph on PostgreSQL, a checkpoint per step ({p.rounds} rounds x {p.invocations} invocations)",
        ["configuration", "steps/s (median)", "best", "ms/invocation", "checkpoint rows"],
        rows,
    )
    out.line(f"Tether / LangGraph (its default, durability='async'): {ratios['tether_over_langgraph']:.2f}x")
    out.line(f"Tether / LangGraph (durability='sync', as Tether):     {ratios['tether_over_langgraph_sync']:.2f}x")
    out.line(f"Tether / LangGraph (both synchronous_commit=off):      {ratios['tether_over_langgraph_nowait']:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
        progress(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
