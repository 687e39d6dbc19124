"""A durable approval workflow: draft release notes, ask a person, publish.

    python examples/approval.py --db tether.sqlite --thread release-1.4

The graph gathers changes, drafts notes, and pauses at ``review`` with interrupt() until a
person answers in the terminal: approve, edit (give the final text) or reject (say why;
the draft is revised and comes back). Stop the program at the question (Ctrl-C, closing the
terminal, even kill -9) and run the same command again: it asks the same question, without
redoing the work before it. ``approval_scripted.py`` runs the same graph with the answers
given on the command line.
"""

from __future__ import annotations

import argparse
import operator
import sys
from typing import Annotated, Any, Literal, TypedDict

from tether import END, START, Command, SqliteSaver, StateGraph, interrupt

GRAPH = "examples.approval:builder"  # recorded with each run, so `tether resume` can find the graph


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
    answer = interrupt(
        {"question": "Publish these release notes?", "draft": state["draft"], "options": ["approve", "edit", "reject"]}
    )
    decision = parse_answer(answer)
    if decision["action"] == "approve":
        return Command(goto="publish")
    if decision["action"] == "edit":
        return Command(update={"draft": decision["text"]}, goto="publish")
    return Command(update={"feedback": [decision.get("reason") or "no reason given"]}, goto="draft")


def publish(state: Release) -> dict[str, Any]:
    return {"published": state["draft"]}


def parse_answer(answer: Any) -> dict[str, Any]:
    """Accept {"action": …}, or the short forms "approve", "edit:<text>", "reject:<reason>"."""
    if isinstance(answer, dict) and answer.get("action") in ("approve", "edit", "reject"):
        return answer
    text = str(answer).strip()
    action, _, rest = text.partition(":")
    action = {"a": "approve", "e": "edit", "r": "reject"}.get(action.strip().lower(), action.strip().lower())
    if action == "approve":
        return {"action": "approve"}
    if action == "edit" and rest.strip():
        return {"action": "edit", "text": rest.strip().replace("\\n", "\n")}
    if action == "reject":
        return {"action": "reject", "reason": rest.strip()}
    return {
        "action": "reject",
        "reason": f"unclear answer {text!r}; please answer approve, edit:<text> or reject:<why>",
    }


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


def ask_in_terminal(payload: dict[str, Any]) -> str | None:
    print(f"\n{payload['draft']}\n")
    print(f"{payload['question']}  [approve | edit:<new text> | reject:<why>]")
    try:
        return input("> ")
    except (EOFError, KeyboardInterrupt):
        return None


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
