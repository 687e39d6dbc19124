"""Learning from people, part 1: a chatbot's replies, a person's edits, and the training data they make.

    python examples/feedback_loop.py --db feedback.sqlite --out prefs.jsonl
    tether tune export feedback.sqlite --out prefs.jsonl      # the same export, from the terminal

A scripted support bot answers a few questions, each in its own thread. A reviewer (scripted
here; in production, whoever reads the transcripts) fixes the replies that were wrong with
``update_state`` — replacing the reply by its id — approves one by answering the bot's review
question, and rejects one with a reason. Nothing else is recorded: the edits are in the
checkpoint log already, and ``tether tune export`` turns them into preference pairs
(``prefs.jsonl``), supervised examples (``prefs.sft.jsonl``) and verdicts
(``prefs.unpaired.jsonl``) in TRL's conversational format.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tether import END, START, Command, MessagesState, SqliteSaver, StateGraph, interrupt
from tether.messages import AIMessage, HumanMessage
from tether.tune import export_preferences

# what the bot says (deliberately not always right), and what the reviewer does about it
SCRIPT: list[tuple[str, str, Any]] = [
    ("How do I reset my password?", "Email support.", "edit:Open Settings → Account → Reset password."),
    ("Can I export my data?", "Yes: Settings → Privacy → Export downloads a ZIP of everything.", "approve"),
    ("Is there a mobile app?", "No.", "edit:Yes, for iOS and Android; search for Tether in the store."),
    ("Why was I charged twice?", "That cannot happen.", {"action": "reject", "reason": "dismissive; offer a refund"}),
]
ANSWERS = {question: answer for question, answer, _ in SCRIPT}


def bot(state: MessagesState) -> dict[str, Any]:
    question = next(m.text for m in reversed(state["messages"]) if isinstance(m, HumanMessage))
    return {"messages": [AIMessage(content=ANSWERS.get(question, "I don't know."))]}


def review(state: MessagesState) -> dict[str, Any]:
    """Ask the reviewer about the reply. An approval changes nothing; anything else is handled outside."""
    reply = state["messages"][-1]
    interrupt({"question": "Is this reply right?", "message_id": reply.id, "reply": reply.text})
    return {}


def builder() -> StateGraph:
    graph = StateGraph(MessagesState)
    graph.add_node("bot", bot)
    graph.add_node("review", review)
    graph.add_edge(START, "bot")
    graph.add_edge("bot", "review")
    graph.add_edge("review", END)
    return graph


def collect(app: Any, reviewer: str = "dana") -> None:
    """Run each question in its own thread and let the reviewer act on the reply."""
    for i, (question, _, verdict) in enumerate(SCRIPT):
        config = {"configurable": {"thread_id": f"ticket-{i + 1}"}, "metadata": {"rater": reviewer}}
        if app.get_state(config).values:
            continue  # already collected (run the example twice: nothing is duplicated)
        app.invoke({"messages": [("user", question)]}, config)
        reply = app.get_state(config).values["messages"][-1]
        answer = verdict
        if isinstance(verdict, str) and verdict.startswith("edit:"):
            # the person rewrites the reply in place (same id, new text), then approves it as it now stands
            fixed = AIMessage(content=verdict.removeprefix("edit:"), id=reply.id)
            app.update_state(config, {"messages": [fixed]}, as_node="bot")
            app.invoke(None, config)  # the review asks again, about the fixed reply
            answer = "approve"
        app.invoke(Command(resume=answer), config)
        print(f"ticket-{i + 1}: {question!r} -> {json.dumps(verdict, ensure_ascii=False)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Collect a reviewer's edits on a chatbot and export them.")
    parser.add_argument("--db", default="feedback.sqlite", help="SQLite file that keeps the threads")
    parser.add_argument("--out", default="prefs.jsonl", help="where the preference pairs go")
    args = parser.parse_args(argv)
    with SqliteSaver.from_conn_string(args.db) as saver:
        collect(builder().compile(checkpointer=saver))
        result = export_preferences(saver, Path(args.out))
    print(f"\nwrote {result.written} to {', '.join(str(p) for p in result.paths.values())}")
    for line in Path(args.out).read_text().splitlines()[:1]:
        record = json.loads(line)
        print(f"first pair: chosen {record['chosen'][0]['content']!r} over {record['rejected'][0]['content']!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
