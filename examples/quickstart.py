"""Quick start: a durable workflow on the embedded SQLite default.

Runs a small "research → draft → review" graph whose review step loops until the draft
is good enough, checkpointing after every step to a SQLite file. Run it twice: the
second run continues the same thread (its history keeps growing), and
``tether history tether.sqlite quickstart`` shows every step from outside the process.
"""

from __future__ import annotations

import argparse
import operator
from typing import Annotated, Literal, TypedDict

from tether import END, START, SqliteSaver, StateGraph


class Draft(TypedDict):
    topic: str
    notes: Annotated[list[str], operator.add]
    draft: str
    revisions: int


def research(state: Draft) -> dict[str, object]:
    return {"notes": [f"{state['topic']}: checkpoints after every step make runs resumable"]}


def write(state: Draft) -> dict[str, object]:
    revision = state.get("revisions", 0) + 1
    body = " ".join(state["notes"])
    return {"draft": f"[v{revision}] {body}", "revisions": revision}


def review(state: Draft) -> dict[str, object]:
    return {"notes": [f"review of v{state['revisions']}: tighten the wording"]}


def good_enough(state: Draft) -> Literal["write", "__end__"]:
    return END if state["revisions"] >= 2 else "write"


def build() -> StateGraph:
    graph = StateGraph(Draft)
    graph.add_node("research", research)
    graph.add_node("write", write)
    graph.add_node("review", review)
    graph.add_edge(START, "research")
    graph.add_edge("research", "write")
    graph.add_edge("write", "review")
    graph.add_conditional_edges("review", good_enough)
    return graph


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="tether.sqlite", help="SQLite file for the checkpoints")
    parser.add_argument("--thread", default="quickstart", help="thread_id to run")
    args = parser.parse_args()

    with SqliteSaver.from_conn_string(args.db) as saver:
        app = build().compile(checkpointer=saver)
        config = {"configurable": {"thread_id": args.thread}}
        for update in app.stream({"topic": "durable agents"}, config, stream_mode="updates"):
            for node, change in update.items():
                print(f"  {node:<9} -> {change}")
        state = app.get_state(config)
        print(f"\nfinal draft: {state.values['draft']}")
        print(f"\nhistory of thread {args.thread!r} in {args.db} (newest first):")
        for snap in app.get_state_history(config, limit=12):
            print(f"  step {snap.metadata['step']:>3}  {snap.metadata['source']:<6} next={list(snap.next)}")
    print(f"\nInspect it from outside: tether history {args.db} {args.thread}")


if __name__ == "__main__":
    main()
