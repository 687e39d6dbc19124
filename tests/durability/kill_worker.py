"""Drive threads of a test graph to completion on a SQLite file. Made to be killed at any moment.

Each thread takes two turns; each turn fans out to parallel branches, joins them, maps over
Send tasks and pauses twice on interrupt(), answered by this worker. Where a thread stands
is read back from the database, so a new worker continues whatever a killed one left.

Environment: KILL_AT_STATEMENT=N  SIGKILL itself when SQLite is about to run its N-th statement
             KILL_AT_NODE=N       SIGKILL itself inside its N-th node call
             NAP=seconds          how long each node sleeps (widens the windows between commits)
"""

from __future__ import annotations

import operator
import os
import signal
import sys
import time
from typing import Annotated, Any, TypedDict

from tether import START, Command, Send, SqliteSaver, StateGraph, interrupt

NAP = float(os.environ.get("NAP", "0.003"))
KILL_AT_NODE = int(os.environ.get("KILL_AT_NODE", "0"))
KILL_AT_STATEMENT = int(os.environ.get("KILL_AT_STATEMENT", "0"))
_calls = {"node": 0, "statement": 0}


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def nap() -> None:
    _calls["node"] += 1
    if _calls["node"] == KILL_AT_NODE:
        die()
    time.sleep(NAP)


class S(TypedDict, total=False):
    n: int
    log: Annotated[list[str], operator.add]
    answers: Annotated[list[str], operator.add]


def begin(s: S) -> dict[str, Any]:
    nap()
    return {"n": s.get("n", 0) + 1, "log": ["begin"]}


def left(s: S) -> dict[str, Any]:
    nap()
    return {"log": [f"left{s['n']}"]}


def right(s: S) -> dict[str, Any]:
    nap()
    return {"log": ["right"]}


def merge(s: S) -> dict[str, Any]:
    return {"log": [f"merge{len(s['log'])}"]}


def work(i: int) -> dict[str, Any]:
    nap()
    return {"log": [f"work{i}"]}


def ask(s: S) -> dict[str, Any]:
    first = interrupt({"q": "first", "n": s["n"]})
    nap()
    second = interrupt({"q": "second"})
    return {"answers": [first, second]}


def finish(s: S) -> dict[str, Any]:
    return {"n": s["n"] * 10, "log": ["done"]}


def build() -> StateGraph:
    g = StateGraph(S)
    for fn in (begin, left, right, merge, work, ask, finish):
        g.add_node(fn)
    g.add_edge(START, "begin")
    g.add_edge("begin", "left")
    g.add_edge("begin", "right")
    g.add_edge(["left", "right"], "merge")
    g.add_conditional_edges("merge", lambda s: [Send("work", i) for i in range(3)])
    g.add_edge("work", "ask")
    g.add_edge("ask", "finish")
    return g


def drive(app: Any, thread_id: str) -> None:
    config = {"configurable": {"thread_id": thread_id}}
    while True:
        state = app.get_state(config)
        if state.interrupts:
            (pending,) = state.interrupts
            app.invoke(Command(resume=f"{thread_id}:{pending.value['q']}"), config)
        elif state.next:
            app.invoke(None, config)  # a run died mid-way: continue from its last checkpoint
        else:
            turns = state.values.get("log", []).count("done") if state.values else 0
            if turns >= 2:
                return
            app.invoke({"n": 7 * turns}, config)


def main() -> None:
    db, threads = sys.argv[1], sys.argv[2:]
    saver = SqliteSaver.from_conn_string(db)
    if KILL_AT_STATEMENT:

        def count(statement: str) -> None:
            _calls["statement"] += 1
            if _calls["statement"] == KILL_AT_STATEMENT:
                die()

        saver.conn.set_trace_callback(count)
        saver._lease_conn.set_trace_callback(count)
    app = build().compile(checkpointer=saver)
    print("ready", flush=True)
    for thread_id in threads:
        drive(app, thread_id)
    saver.close()
    print("finished", flush=True)


if __name__ == "__main__":
    main()
