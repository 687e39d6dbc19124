"""Listing threads at scale: a page of ``list_threads`` over 100,000 threads in one database.

    python benchmarks/threads.py [--threads N] [--repeats R] [--json PATH] [--tmpdir DIR] [--postgres]

Two real threads are run through a one-node graph first (one waits on ``interrupt()``, one is
done); the database is then filled with N copies of them (every tenth waits), each with its own
thread id, fresh checkpoint ids in time order and task ids recomputed for those ids, by bulk
``INSERT``s into the saver's own tables (running 100,000 graphs would take minutes and measure
writing, not listing). Each head's metadata carries ``user`` (one of 10) and ``team`` (one of
1,000). Timed, as the median of R calls of ``tether.graph._thread_list.list_threads`` (status
and questions included, as ``tether threads`` and the server list them): the first page, a page
from a cursor half-way down, a ``status="waiting"`` page, a ``user`` page and a rare ``team`` page,
each of 50 threads. The target is 50 ms a page.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict

from tether import START, StateGraph, interrupt
from tether.checkpoint import BaseCheckpointSaver, CheckpointRecord, InMemorySaver, SqliteSaver
from tether.checkpoint._base import new_checkpoint_id
from tether.checkpoint._listing import encode_cursor
from tether.graph._algo import tasks_from_specs
from tether.graph._state import decode_record
from tether.graph._thread_list import list_threads
from tether.graph._thread_status import read_thread_status

TARGET_MS = 50.0
PAGE = 50


class S(TypedDict, total=False):
    ask: bool
    answer: str


def _templates() -> dict[bool, tuple[list[CheckpointRecord], list[Any]]]:
    """The chain (oldest first, snapshot on the first) and head pending writes of a waiting and a done thread."""

    def node(state: S) -> S:
        return {"answer": interrupt("approve?") if state.get("ask") else "none"}

    g = StateGraph(S)
    g.add_node("node", node)
    g.add_edge(START, "node")
    saver = InMemorySaver()
    app = g.compile(checkpointer=saver)
    out = {}
    for ask in (True, False):
        tid = f"template-{ask}"
        app.invoke({"ask": ask}, {"configurable": {"thread_id": tid}})
        loaded = saver.get(tid)
        assert loaded is not None
        out[ask] = (loaded.chain, loaded.pending)
    return out


def rows(n: int) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    """The rows of N threads: threads, checkpoints, snapshots and pending writes (module docstring)."""
    templates = _templates()
    threads, checkpoints, snapshots, pending = [], [], [], []
    for i in range(n):
        waits = i % 10 == 0
        chain, writes = templates[waits]
        key = i + 1
        threads.append((key, f"thread-{i:06d}", ""))
        parent = None
        for position, rec in enumerate(chain):
            cid = new_checkpoint_id()
            is_head = position == len(chain) - 1
            metadata = json.dumps({"user": f"u{i % 10}", "team": f"t{i % 1000}"}) if is_head else "{}"
            checkpoints.append((key, cid, parent, rec.step, rec.source, rec.created_at, rec.next, rec.writes, metadata))
            if rec.snapshot is not None:
                snapshots.append((key, cid, rec.snapshot))
            parent = cid
        assert parent is not None
        specs = decode_record(chain[-1]).next
        old_tasks, new_tasks = tasks_from_specs(chain[-1].checkpoint_id, specs), tasks_from_specs(parent, specs)
        new_ids = {old.id: new.id for old, new in zip(old_tasks, new_tasks, strict=True)}
        pending += [(key, parent, new_ids[w.task_id], w.kind, w.value) for w in writes if w.task_id in new_ids]
    return threads, checkpoints, snapshots, pending


_INSERTS = [
    "INSERT INTO threads (id, thread_id, checkpoint_ns) VALUES ({0}, {0}, {0})",
    "INSERT INTO checkpoints (thread, checkpoint_id, parent_id, step, source, created_at, next, writes, metadata)"
    " VALUES ({0}, {0}, {0}, {0}, {0}, {0}, {1}, {1}, {1})",
    "INSERT INTO snapshots (thread, checkpoint_id, state) VALUES ({0}, {0}, {1})",
    "INSERT INTO pending_writes (thread, checkpoint_id, task_id, kind, value) VALUES ({0}, {0}, {0}, {0}, {1})",
]


def fill_sqlite(saver: SqliteSaver, n: int) -> None:
    tables = rows(n)
    with saver._lock:
        saver.conn.execute("BEGIN")
        saver.conn.executemany(
            "INSERT INTO threads (id, thread_id, checkpoint_ns, created_at) VALUES (?, ?, ?, '2026-01-01T00:00:00Z')",
            tables[0],
        )
        for sql, table in zip(_INSERTS[1:], tables[1:], strict=True):
            saver.conn.executemany(sql.format("?", "?"), table)
        saver.conn.execute("COMMIT")
        saver.conn.execute("ANALYZE")


def fill_postgres(url: str, n: int) -> None:
    import psycopg

    with psycopg.connect(url) as conn, conn.cursor() as cur:
        for sql, table in zip(_INSERTS, rows(n), strict=True):
            cur.executemany(sql.format("%s", "%s::jsonb"), table)
        cur.execute("SELECT setval(pg_get_serial_sequence('threads', 'id'), (SELECT max(id) FROM threads))")
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")


def median_ms(call: Callable[[], Any], repeats: int) -> float:
    call()  # warm the page cache once
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def measure(saver: BaseCheckpointSaver, n: int, repeats: int) -> dict[str, float]:
    first = list_threads(saver, limit=PAGE)
    assert len(first.items) == min(PAGE, n), "the first page is short"
    for info in first.items[:5]:  # the listing and the one reader agree
        assert info.status == read_thread_status(saver, info.thread_id).status()
    # a cursor half-way down: the key of the thread written in the middle (threads were written oldest first)
    middle = saver.get(f"thread-{n // 2:06d}")
    assert middle is not None
    deep = encode_cursor((middle.record.checkpoint_id, middle.record.thread_id, ""))
    assert list_threads(saver, limit=1, after=deep).items[0].thread_id == f"thread-{n // 2 - 1:06d}"
    waiting = list_threads(saver, limit=PAGE, status="waiting")
    assert all(i.status == "waiting" and i.interrupts for i in waiting.items) and waiting.items
    return {
        "first_page_ms": median_ms(lambda: list_threads(saver, limit=PAGE), repeats),
        "deep_page_ms": median_ms(lambda: list_threads(saver, limit=PAGE, after=deep), repeats),
        "waiting_page_ms": median_ms(lambda: list_threads(saver, limit=PAGE, status="waiting"), repeats),
        "user_page_ms": median_ms(lambda: list_threads(saver, limit=PAGE, metadata={"user": "u3"}), repeats),
        "rare_team_page_ms": median_ms(lambda: list_threads(saver, limit=PAGE, metadata={"team": "t7"}), repeats),
    }


def report(result: dict[str, Any], backend: str, fill_s: float, figures: dict[str, float]) -> None:
    result[backend] = {"fill_s": round(fill_s, 2), **{k: round(v, 2) for k, v in figures.items()}}
    n, repeats = result["threads"], result["repeats"]
    print(f"thread listing, {backend}, {n:,} threads (filled in {fill_s:.1f} s), pages of {PAGE}, median of {repeats}:")
    for name, ms in figures.items():
        mark = "ok" if ms <= TARGET_MS else "OVER"
        print(f"  {name:<20} {ms:8.2f} ms   (target {TARGET_MS:.0f} ms: {mark})")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--tmpdir", type=Path)
    parser.add_argument("--quick", action="store_true", help="2,000 threads, 3 repeats (a smoke run)")
    parser.add_argument("--postgres", action="store_true", help="also on a throwaway PostgreSQL server")
    args = parser.parse_args(argv)
    n, repeats = (2000, 3) if args.quick else (args.threads, args.repeats)
    result: dict[str, Any] = {"threads": n, "repeats": repeats, "page": PAGE, "target_ms": TARGET_MS}
    with tempfile.TemporaryDirectory(dir=args.tmpdir) as tmp:
        saver = SqliteSaver.from_conn_string(Path(tmp) / "threads.sqlite")
        start = time.perf_counter()
        fill_sqlite(saver, n)
        report(result, "sqlite", time.perf_counter() - start, measure(saver, n, repeats))
        saver.close()
    if args.postgres:
        sys.path[:0] = [str(Path(__file__).resolve().parents[1])]
        from tests.pg import PostgresServer

        from tether.checkpoint import PostgresSaver

        with PostgresServer(database="bench_threads") as url:
            with PostgresSaver.from_conn_string(url):  # creates the schema
                pass
            start = time.perf_counter()
            fill_postgres(url, n)
            fill_s = time.perf_counter() - start
            with PostgresSaver.from_conn_string(url) as pg:
                report(result, "postgres", fill_s, measure(pg, n, repeats))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
