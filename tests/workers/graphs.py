"""Graphs the worker tests run (importable as ``tests.workers.graphs:<name>`` by worker processes)."""

from __future__ import annotations

import operator
import os
import threading
import time
from typing import Annotated, Any, TypedDict

from tether import END, START, StateGraph, interrupt


class S(TypedDict, total=False):
    n: int
    log: Annotated[list[str], operator.add]
    answers: Annotated[list[Any], operator.add]


# -- counter: one step per run -------------------------------------------------------------------
def add(s: S) -> dict[str, Any]:
    n = s.get("n", 0) + 1
    return {"n": n, "log": [f"add{n}"]}


def counter() -> StateGraph:
    g = StateGraph(S)
    g.add_node("add", add)
    g.add_edge(START, "add")
    return g


# -- approval: a step, then a question ------------------------------------------------------------
def draft(s: S) -> dict[str, Any]:
    return {"log": ["draft"]}


def ask(s: S) -> dict[str, Any]:
    return {"answers": [interrupt({"q": "ship it?"})]}


def approval() -> StateGraph:
    g = StateGraph(S)
    g.add_node("draft", draft)
    g.add_node("ask", ask)
    g.add_edge(START, "draft")
    g.add_edge("draft", "ask")
    return g


# -- slow: many short steps (cancellation) ---------------------------------------------------------
def tick(s: S) -> dict[str, Any]:
    time.sleep(0.05)
    return {"n": s.get("n", 0) + 1}


def slow() -> StateGraph:
    g = StateGraph(S)
    g.add_node("tick", tick)
    g.add_edge(START, "tick")
    g.add_conditional_edges("tick", lambda s: "tick" if s["n"] < 200 else END)
    return g


# -- flaky: fails as often as FAILS says, per thread (in this process); BROKEN threads have a bug ---
FAILS: dict[str, int] = {}
BROKEN: set[str] = set()
_fails_lock = threading.Lock()


def flaky_node(s: S, config: Any) -> dict[str, Any]:
    thread = config["configurable"]["thread_id"]
    if thread in BROKEN:
        raise KeyError(f"no record for {thread}")  # a programming error: not worth another attempt
    with _fails_lock:
        left = FAILS.get(thread, 0)
        FAILS[thread] = left - 1
    if left > 0:
        raise ConnectionError(f"flaky service is down ({left} more)")
    return {"n": s.get("n", 0) + 1, "log": ["flaky ok"]}


def flaky() -> StateGraph:
    g = StateGraph(S)
    g.add_node("first", add)
    g.add_node("flaky", flaky_node)
    g.add_edge(START, "first")
    g.add_edge("first", "flaky")
    return g


# -- turns: the kill test's graph (fan-out, join, Send map, two questions in one node) -------------
NAP = float(os.environ.get("TETHER_TEST_NAP", "0.002"))


def begin(s: S) -> dict[str, Any]:
    time.sleep(NAP)
    return {"n": s.get("n", 0) + 1, "log": ["begin"]}


def left(s: S) -> dict[str, Any]:
    time.sleep(NAP)
    return {"log": [f"left{s['n']}"]}


def right(s: S) -> dict[str, Any]:
    time.sleep(NAP)
    return {"log": ["right"]}


def merge(s: S) -> dict[str, Any]:
    return {"log": [f"merge{len(s['log'])}"]}


def work(i: int) -> dict[str, Any]:
    time.sleep(NAP)
    return {"log": [f"work{i}"]}


def questions(s: S) -> dict[str, Any]:
    first = interrupt({"q": "first", "n": s["n"]})
    time.sleep(NAP)
    second = interrupt({"q": "second"})
    return {"answers": [first, second]}


def finish(s: S) -> dict[str, Any]:
    return {"n": s["n"] * 10, "log": ["done"]}


def turns() -> StateGraph:
    from tether import Send

    g = StateGraph(S)
    for fn in (begin, left, right, merge, work, questions, finish):
        g.add_node(fn)
    g.add_edge(START, "begin")
    g.add_edge("begin", "left")
    g.add_edge("begin", "right")
    g.add_edge(["left", "right"], "merge")
    g.add_conditional_edges("merge", lambda s: [Send("work", i) for i in range(3)])
    g.add_edge("work", "questions")
    g.add_edge("questions", "finish")
    return g
