"""A chatbot that remembers each conversation across restarts, in bounded memory.

    python examples/chatbot.py                           # talk in the terminal (Ctrl-D to leave)
    python examples/chatbot.py --thread work             # another conversation, kept apart
    python examples/chatbot.py --say "hi" --say "again"  # one turn per --say, for scripts and tests
    TETHER_MODEL=openai:gpt-4o-mini python examples/chatbot.py   # a real model (or ollama:llama3.2)

Each thread's conversation is checkpointed to SQLite (``tether-chat.sqlite``), so stopping the
program loses nothing. Two things keep it bounded: what is sent to the model is trimmed to
``--context-tokens``, and once the stored conversation passes ``--summarize-after`` tokens, the
older turns are replaced by one summary message written by the model. The originals stay in
the thread's earlier checkpoints (``tether history tether-chat.sqlite <thread>``).

Without ``TETHER_MODEL`` it runs offline with a scripted model that echoes what you say and
what it remembers, so everything above can be tried without a network.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from tether import END, START, MessagesState, SqliteSaver, StateGraph
from tether.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SummarizationNode,
    SystemMessage,
    count_tokens_approximately,
    is_summary,
    trim_messages,
)
from tether.models import ScriptedChatModel, init_chat_model

SYSTEM_PROMPT = "You are a friendly, concise assistant. A summary of earlier turns may precede the conversation."
SUMMARY_MARK = "the user said: "


def offline_reply(messages: list[BaseMessage]) -> str:
    """The scripted model: echoes, shows what it remembers, and writes simple summaries."""
    first = messages[0].text if messages else ""
    if len(messages) == 2 and "Write a concise summary" in first:
        return summarize_transcript(messages[1].text)
    said = [m.text for m in messages if isinstance(m, HumanMessage)]
    reply = f'You said "{said[-1] if said else ""}".'
    if len(said) > 1:
        reply += f' Before that you said "{said[-2]}".'
    summary = next((m.text for m in messages if is_summary(m)), None)
    if summary:
        reply += f" From earlier I remember that {summary.split(SUMMARY_MARK, 1)[-1]}."
    return reply


def summarize_transcript(transcript: str) -> str:
    """Keeps the last few things the user said, folding in the earlier summary."""
    items: list[str] = []
    for line in transcript.splitlines():
        if line.startswith("(earlier summary)") and SUMMARY_MARK in line:
            items += line.split(SUMMARY_MARK, 1)[1].split(" | ")
        elif line.startswith("human: "):
            items.append(line.removeprefix("human: "))
    return SUMMARY_MARK + " | ".join(items[-6:])


def make_model() -> Any:
    name = os.environ.get("TETHER_MODEL")
    if name:
        return init_chat_model(name)
    return ScriptedChatModel([offline_reply], cycle=True, name="offline-echo")


def builder(model: Any, *, context_tokens: int, summarize_after: int, keep_last: int) -> StateGraph:
    def chat(state: MessagesState) -> dict[str, Any]:
        # the stored conversation may be longer than what the model should read: send the newest part
        window = trim_messages(
            state["messages"],
            max_tokens=context_tokens,
            token_counter=count_tokens_approximately,
            include_system=True,  # a summary at the front stays
            start_on="human",
        )
        return {"messages": [model.invoke([SystemMessage(content=SYSTEM_PROMPT), *window])]}

    graph = StateGraph(MessagesState)
    graph.add_node("chat", chat)
    graph.add_node("summarize", SummarizationNode(model, max_tokens=summarize_after, keep_last=keep_last))
    graph.add_edge(START, "chat")
    graph.add_edge("chat", "summarize")  # after the reply, so the person is not kept waiting for it
    graph.add_edge("summarize", END)
    return graph


def turn(app: Any, config: dict[str, Any], text: str) -> str:
    """Send one message, print the reply as it streams, and return it."""
    print("bot> ", end="", flush=True)
    reply = ""
    for mode, payload in app.stream({"messages": [("user", text)]}, config, stream_mode=["messages", "updates"]):
        if mode == "messages":
            chunk, meta = payload
            if meta.get("langgraph_node") == "chat" and isinstance(chunk, AIMessage):
                print(chunk.text, end="", flush=True)
        elif mode == "updates" and payload.get("chat"):
            reply = payload["chat"]["messages"][-1].text
        elif mode == "updates" and (payload.get("summarize") or {}).get("messages"):
            print("\n[memory: older turns were replaced by a summary]", end="")
    print(flush=True)
    return reply


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A chatbot that remembers each thread across restarts.")
    parser.add_argument("--db", default="tether-chat.sqlite", help="SQLite file that keeps the conversations")
    parser.add_argument("--thread", default="default", help="conversation id (thread_id)")
    parser.add_argument("--say", action="append", help="send this message and exit (repeatable)")
    parser.add_argument("--context-tokens", type=int, default=1000, help="most tokens sent to the model")
    parser.add_argument("--summarize-after", type=int, default=1500, help="summarise past this many stored tokens")
    parser.add_argument("--keep-last", type=int, default=6, help="newest messages kept word for word")
    parser.add_argument("--show", action="store_true", help="print the stored conversation and exit")
    args = parser.parse_args(argv)

    model = make_model()
    graph = builder(
        model, context_tokens=args.context_tokens, summarize_after=args.summarize_after, keep_last=args.keep_last
    )
    with SqliteSaver.from_conn_string(args.db) as saver:
        app = graph.compile(checkpointer=saver)
        config = {"configurable": {"thread_id": args.thread}}
        stored = app.get_state(config).values.get("messages", [])
        if args.show:
            for message in stored:
                print(f"{'summary' if is_summary(message) else message.role}: {message.text}")
            return 0
        if args.say:
            for text in args.say:
                print(f"you> {text}")
                turn(app, config, text)
            return 0
        print(f"thread {args.thread!r}: {len(stored)} stored message(s); Ctrl-D or /quit to leave")
        while True:
            try:
                text = input("you> ").strip()
            except (EOFError, KeyboardInterrupt):
                print()
                return 0
            if text in ("/quit", "/exit"):
                return 0
            if text:
                turn(app, config, text)


if __name__ == "__main__":
    sys.exit(main())
