"""A durable approval workflow: draft release notes, ask a person, publish.

    python examples/approval.py --db tether.sqlite --thread release-1.4

The graph gathers changes, drafts notes, and pauses at ``review`` with interrupt() until a
person answers in the terminal: approve, edit (give the final text) or reject (say why;
the draft is revised and comes back). An unclear answer ("sure", "yes please") is asked
again, never taken as a rejection (the accepted forms: ``tether.answers``). Stop the program
at the question (Ctrl-C, closing the terminal, even kill -9) and run the same command again:
it asks the same question, without redoing the work before it. ``approval_scripted.py`` runs
the same graph with the answers given on the command line.
"""

from __future__ import annotations

import argparse
import operator
import sys
from dataclasses import replace
from typing import Annotated, Any, Literal, TypedDict

from tether import END, START, Command, SqliteSaver, StateGraph, interrupt
from tether.answers import read_answer
from tether.errors import InvalidResumeError

GRAPH = "examples.approval:builder"  # recorded with each run; `tether resume` shows it, never imports it


class Release(TypedDict, total=False):
    version: str
    changes: Annotated[list[str], operator.add]
    draft: str
    feedback: Annotated[list[str], operator.add]
    published: str


def gather(state: Release) -> dict[str, Any]:
    """Collect what changed (a real workflow would read the git log or an issue tracker)."""
    return {
        "changes": [
            "checkpoints are now a log of writes plus snapshots",
            "SQLite threads can be read with plain sqlite3",
            "runs survive kill -9 and resume where they stopped",
        ]
    }


def draft(state: Release) -> dict[str, Any]:
    lines = [f"Tether {state['version']}", ""] + [f"- {c}" for c in state["changes"]]
    if state.get("feedback"):
        lines += ["", f"(revised after review: {state['feedback'][-1]})"]
    return {"draft": "\n".join(lines)}


def review(state: Release) -> Command[Literal["publish", "draft"]]:
    question = {
        "question": "Publish these release notes?",
        "draft": state["draft"],
        "options": ["approve", "edit", "reject"],
    }
    answer = interrupt(question)
    while True:  # an unclear answer is asked again, never taken as a rejection
        try:
            decision = read_answer(answer)
            break
        except InvalidResumeError as exc:
            answer = interrupt({**question, "unclear": str(exc)})
    if decision.action == "approve":
        return Command(goto="publish")
    if decision.action == "edit":
        return Command(update={"draft": decision.text}, goto="publish")
    return Command(update={"feedback": [decision.reason or "no reason given"]}, goto="draft")


def publish(state: Release) -> dict[str, Any]:
    return {"published": state["draft"]}


def typed_answer(text: str) -> dict[str, Any]:
    """What a person typed (approve | edit:<text> | reject:<why>, or JSON) as the value to resume with.

    Raises InvalidResumeError, listing the accepted forms, when the answer is unclear. In a typed
    edit, ``\\n`` stands for a line break.
    """
    decision = read_answer(text)
    if decision.action == "edit" and not text.lstrip().startswith(("{", '"')):
        decision = replace(decision, text=(decision.text or "").replace("\\n", "\n"))
    return decision.as_resume()


def builder() -> StateGraph:
    graph = StateGraph(Release)
    graph.add_sequence([gather, draft, review])
    graph.add_node(publish)
    graph.add_edge(START, "gather")
    graph.add_edge("publish", END)
    return graph


def run(app: Any, thread: str, version: str, answers: Any) -> dict[str, Any]:
    """Drive the thread until it is published or no answer is available; return its values.

    ``answers`` is called with the interrupt payload and returns an answer, or None to stop here.
    """
    config = {"configurable": {"thread_id": thread}, "metadata": {"graph": GRAPH}}
    state = app.get_state(config)
    if not state.values:
        print(f"starting thread {thread!r}: release notes for {version}")
        app.invoke({"version": version}, config)
    elif state.interrupts:
        print(f"thread {thread!r} is waiting for you (since {state.created_at}); picking up at the question")
    elif state.next:
        print(f"thread {thread!r} stopped mid-run; continuing from its last checkpoint")
        app.invoke(None, config)
    while (state := app.get_state(config)).interrupts:
        (pending,) = state.interrupts
        answer = answers(pending.value)
        if answer is None:
            print(f"\npaused: thread {thread!r} waits for an answer; run the same command to continue")
            return state.values
        app.invoke(Command(resume=answer), config)
    print(f"\npublished ({len(state.values.get('feedback', []))} revision(s)):\n{state.values['published']}")
    return state.values


def ask_in_terminal(payload: dict[str, Any]) -> dict[str, Any] | None:
    """Ask until the answer is clear; None (end of input, Ctrl-C) leaves the thread waiting."""
    print(f"\n{payload['draft']}\n")
    if payload.get("unclear"):
        print(payload["unclear"])
    print(f"{payload['question']}  [approve | edit:<new text> | reject:<why>]")
    while True:
        try:
            text = input("> ")
        except (EOFError, KeyboardInterrupt):
            return None
        try:
            return typed_answer(text)
        except InvalidResumeError as exc:
            print(exc)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Draft release notes and ask a person to approve them.")
    parser.add_argument("--db", default="tether.sqlite", help="SQLite file that keeps the thread")
    parser.add_argument("--thread", default="release-1.4", help="thread_id (one per release)")
    parser.add_argument("--version", default="1.4.0", help="version the notes are for")
    args = parser.parse_args(argv)
    with SqliteSaver.from_conn_string(args.db) as saver:
        app = builder().compile(checkpointer=saver)
        run(app, args.thread, args.version, ask_in_terminal)


if __name__ == "__main__":
    sys.exit(main())
