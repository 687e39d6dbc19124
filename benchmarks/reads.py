"""Reading a long thread: Tether's get_state and history pages against LangGraph's, on SQLite.

    python benchmarks/reads.py [--quick] [--json PATH] [--tmpdir DIR]

Two threads per library, each written by a one-node graph: ``items`` (``operator.add``, one
100-byte item a turn) and ``messages`` (``add_messages``, one 200-byte AI message a turn).
For each: the median of repeated ``get_state`` and ``get_state_history(limit=10)`` calls in the
process that wrote the thread (warm), the same first call in a fresh process (cold, the median
of a few processes), the first ``invoke`` on the thread in a fresh process, and the database
size. Ratios are Tether's time over LangGraph's: below 1 means Tether is faster.
"""

# no `from __future__ import annotations`: the state classes are local, their hints must be objects

import argparse
import contextlib
import json
import operator
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypedDict

ITEM_BYTES = 100
MESSAGE_BYTES = 200
FULL = {"items": (1000, 5000), "messages": (2000,), "calls": 200, "processes": 5, "tether_only": (5000,)}
QUICK = {"items": (20, 40), "messages": (20,), "calls": 5, "processes": 1, "tether_only": (40,)}
# LangGraph stores the whole list again at every step: 5,000 turns would take gigabytes


def make_graph(lib: str, kind: str, saver: Any) -> Any:
    if lib == "tether":
        from tether import END, START, StateGraph
        from tether.messages import AIMessage, add_messages
    else:
        from langchain_core.messages import AIMessage
        from langgraph.graph import END, START, StateGraph
        from langgraph.graph.message import add_messages

    if kind == "items":

        class Items(TypedDict):
            turn: int
            items: Annotated[list[str], operator.add]

        def append(state: Items) -> dict[str, Any]:
            return {"items": [f"item-{state['turn']:06d}-".ljust(ITEM_BYTES, "x")]}

        g: Any = StateGraph(Items)
        g.add_node("append", append)
    else:

        class Chat(TypedDict):
            turn: int
            messages: Annotated[list[Any], add_messages]

        def reply(state: Chat) -> dict[str, Any]:
            return {"messages": [AIMessage(content=f"reply-{state['turn']:06d}-".ljust(MESSAGE_BYTES, "x"))]}

        g = StateGraph(Chat)
        g.add_node("append", reply)
    g.add_edge(START, "append")
    g.add_edge("append", END)
    return g.compile(checkpointer=saver)


@contextlib.contextmanager
def opened(lib: str, path: str) -> Iterator[Any]:
    if lib == "tether":
        import tether

        saver = tether.SqliteSaver.from_conn_string(path)
        try:
            yield saver
        finally:
            saver.close()
    else:
        from langgraph.checkpoint.sqlite import SqliteSaver

        with SqliteSaver.from_conn_string(path) as saver:
            yield saver


CONFIG = {"configurable": {"thread_id": "t"}}


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def calls(graph: Any) -> dict[str, Callable[[], Any]]:
    return {
        "get_state": lambda: graph.get_state(CONFIG),
        "history10": lambda: list(graph.get_state_history(CONFIG, limit=10)),
    }


def build_and_time_warm(lib: str, kind: str, turns: int, path: str, repeat: int) -> dict[str, float]:
    with opened(lib, path) as saver:
        graph = make_graph(lib, kind, saver)
        for turn in range(turns):
            graph.invoke({"turn": turn}, CONFIG)
        out = {
            f"{name}_warm_ms": statistics.median(timed(fn) for _ in range(repeat)) for name, fn in calls(graph).items()
        }
    out["bytes_db"] = sum(os.path.getsize(path + s) for s in ("", "-wal") if os.path.exists(path + s))
    return out


def cold(lib: str, kind: str, path: str, what: str) -> float:
    """One first call in this (fresh) process, after opening the database and compiling."""
    with opened(lib, path) as saver:
        graph = make_graph(lib, kind, saver)
        if what == "invoke":
            return timed(lambda: graph.invoke({"turn": -1}, {"configurable": {"thread_id": "t"}}))
        return timed(calls(graph)[what])


def cold_in_fresh_processes(lib: str, kind: str, path: str, what: str, processes: int) -> float:
    times = []
    for _ in range(processes):
        proc = subprocess.run(
            [sys.executable, __file__, "--cold", lib, kind, path, what], capture_output=True, text=True, check=True
        )
        times.append(float(proc.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run: the figures mean nothing)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--tmpdir", help="where the databases go (default: a temporary directory)")
    ap.add_argument("--cold", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.cold:
        print(cold(*args.cold))
        return
    p = QUICK if args.quick else FULL
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(dir=args.tmpdir) as tmp:
        for kind in ("items", "messages"):
            for turns in p[kind]:  # type: ignore[attr-defined]
                row: dict[str, Any] = {}
                libs = ("tether",) if turns in p["tether_only"] else ("tether", "langgraph")  # type: ignore[operator]
                for lib in libs:
                    path = os.path.join(tmp, f"{lib}-{kind}-{turns}.db")
                    figures = build_and_time_warm(lib, kind, turns, path, int(p["calls"]))  # type: ignore[call-overload]
                    for what in ("get_state", "history10", "invoke"):
                        figures[f"{what}_cold_ms"] = cold_in_fresh_processes(lib, kind, path, what, int(p["processes"]))  # type: ignore[call-overload]
                    row[lib] = figures
                peer = row.get("langgraph", {})
                row["ratio"] = {k: row["tether"][k] / peer[k] for k in row["tether"] if peer.get(k, 0) > 0}
                results[f"{kind}_{turns}"] = row
                print(f"\n{kind}, {turns} turns (Tether / LangGraph; ratio < 1: Tether faster or smaller)", flush=True)
                for k in row["tether"]:
                    t, lg = row["tether"][k], peer.get(k, float("nan"))
                    print(f"  {k:22} {t:12.3f} {lg:12.3f}   x{t / lg:.2f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
