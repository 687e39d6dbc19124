#!/usr/bin/env python3
"""Scale-out workers: runs per second and enqueue-to-finish latency with 1, 2 and 4 workers.

``tether worker`` processes (``--concurrency 2`` each) run a 10-node linear graph (``{"n": int}``,
each node adds one, a checkpoint committed after every step) on a throwaway PostgreSQL server on
loopback with its default durability (``fsync=on``, ``synchronous_commit=on``); each worker count
gets a database of its own. Two measurements per worker count, after a warm-up:

* throughput: a burst of runs (over many threads, four runs each) enqueued at once; runs per
  second from the first enqueue to the last finish;
* latency: runs enqueued one by one at half that throughput, so the queue stays short; p50 and
  p99 of ``finished_at - created_at`` (both stamped by the database, in the same clock).

Usage: ``python benchmarks/workers.py [--quick] [--json PATH] [--plain] [--url ADMIN_URL]``
(``bash benchmarks/run.sh`` runs it). Needs PostgreSQL's server binaries (``scripts/ensure-postgres.sh``).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NODES = 10


# -- the graph the workers run (imported by them as ``workers:graph``) --------------------------------
class CounterState(TypedDict):
    n: int


def graph() -> Any:
    from tether import START, StateGraph

    g = StateGraph(CounterState)
    names = [f"node{i}" for i in range(NODES)]
    for name in names:
        g.add_node(name, lambda s: {"n": s["n"] + 1})
    g.add_edge(START, names[0])
    for a, b in itertools.pairwise(names):
        g.add_edge(a, b)
    return g


# -- the benchmark ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Params:
    worker_counts: tuple[int, ...]
    concurrency: int
    warmup: int
    burst: int  # runs in the throughput burst
    paced: int  # runs in the latency measurement


FULL = Params(worker_counts=(1, 2, 4), concurrency=2, warmup=40, burst=600, paced=200)
QUICK = Params(worker_counts=(1, 2), concurrency=2, warmup=4, burst=20, paced=10)


def start_workers(url: str, count: int, concurrency: int, log: Path) -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    procs = []
    with open(log, "ab") as out:
        for _ in range(count):
            cmd = [sys.executable, "-m", "tether.cli", "worker", "--db", url, "--graph", "workers:graph"]
            cmd += [f"--concurrency={concurrency}", "--log-level=warning", "--poll=1"]
            procs.append(subprocess.Popen(cmd, cwd=HERE, env=env, stdout=out, stderr=out))
    return procs


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def wait_done(client: Any, run_ids: list[str], timeout: float = 600) -> None:
    for run_id in run_ids:
        run = client.runs.wait(run_id, timeout=timeout)
        if run.status != "success":
            raise RuntimeError(f"run {run_id} ended {run.status}: {run.error}")


def db_times(url: str, run_ids: list[str]) -> list[tuple[float, float]]:
    """(created, finished) of each run, in seconds since the epoch, from the database's clock."""
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM created_at)::float8, extract(epoch FROM finished_at)::float8"
            " FROM tether_runs WHERE run_id = ANY(%s)",
            (run_ids,),
        ).fetchall()
    return [(float(a), float(b)) for a, b in rows]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def measure(admin_url: str, workers: int, p: Params, log: Path, tag: str) -> dict[str, Any]:
    import psycopg

    from tether.workers import Client

    name = f"bench_{tag}_w{workers}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with Client(url) as client:
            procs = start_workers(url, workers, p.concurrency, log)
            threads = max(1, p.burst // 4)
            warm = [client.runs.create(f"warm-{i}", {"n": 0}).run_id for i in range(p.warmup)]
            wait_done(client, warm)
            # throughput: one burst
            burst = [client.runs.create(f"t{i % threads}", {"n": 0}).run_id for i in range(p.burst)]
            wait_done(client, burst)
            times = db_times(url, burst)
            span = max(f for _, f in times) - min(c for c, _ in times)
            rate = len(burst) / span
            burst_latency = [f - c for c, f in times]
            # latency: paced at half the throughput
            gap = 2.0 / rate
            paced = []
            next_at = time.monotonic()
            for i in range(p.paced):
                paced.append(client.runs.create(f"p{i}", {"n": 0}).run_id)
                next_at += gap
                time.sleep(max(0.0, next_at - time.monotonic()))
            wait_done(client, paced)
            latency = [f - c for c, f in db_times(url, paced)]
    finally:
        stop_workers(procs)
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]
    return {
        "workers": workers,
        "concurrency": p.concurrency,
        "runs_per_s": rate,
        "steps_per_s": rate * NODES,
        "burst_runs": len(burst),
        "burst_p50_ms": 1000 * statistics.median(burst_latency),
        "paced_runs": len(latency),
        "paced_rate_per_s": 1 / gap,
        "p50_ms": 1000 * statistics.median(latency),
        "p99_ms": 1000 * percentile(latency, 0.99),
    }


@contextlib.contextmanager
def server() -> Iterator[str]:
    sys.path.insert(0, str(ROOT))
    from tests.pg import PostgresServer

    with PostgresServer(database="bench_admin", durable=True) as url:
        yield url


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(HERE))
    from bench import Out, progress, version

    import tether

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="small counts, for smoke tests (figures are rough)")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    ap.add_argument("--plain", action="store_true", help="plain-text tables even if rich is installed")
    ap.add_argument("--url", help="an existing server's admin URL (creates databases there) instead of a private one")
    args = ap.parse_args(argv)
    p = QUICK if args.quick else FULL
    wall = time.perf_counter()
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"tether-bench-workers-{os.getpid()}.log"
    tag = uuid.uuid4().hex[:8]
    results = []
    with contextlib.nullcontext(args.url) if args.url else server() as admin_url:
        for n in p.worker_counts:
            progress(f"workers: {n} worker process(es) x concurrency {p.concurrency}")
            results.append(measure(admin_url, n, p, log, tag))
    result = {
        "meta": {
            "quick": args.quick,
            "params": {**p.__dict__, "worker_counts": list(p.worker_counts)},
            "versions": {d: version(d) for d in ("tether", "procrastinate", "psycopg")},
            "cpus": os.cpu_count(),
            "wall_s": time.perf_counter() - wall,
        },
        "workers": results,
    }
    out = Out(args.plain)
    out.line(f"tether {tether.__version__}, procrastinate {version('procrastinate')}; {os.cpu_count()} CPUs")
    out.table(
        f"Runs of the 10-node graph through tether workers (loopback PostgreSQL, fsync on; log: {log})",
        ["workers x concurrency", "runs/s", "steps/s", "p50 ms", "p99 ms", "paced at runs/s", "burst p50 ms"],
        [
            [
                f"{r['workers']} x {r['concurrency']}",
                f"{r['runs_per_s']:,.1f}",
                f"{r['steps_per_s']:,.0f}",
                f"{r['p50_ms']:,.1f}",
                f"{r['p99_ms']:,.1f}",
                f"{r['paced_rate_per_s']:,.1f}",
                f"{r['burst_p50_ms']:,.0f}",
            ]
            for r in results
        ],
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
        progress(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
