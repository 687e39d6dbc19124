"""A tool-calling agent that asks you before it runs any tool.

    python examples/agent_approval.py                                  # chat in the terminal
    python examples/agent_approval.py --say "what is 17 * 23?"         # one request; you approve in the terminal
    python examples/agent_approval.py --say "email bob the time" --approve --reject "not today"
    TETHER_MODEL=openai:gpt-4o-mini python examples/agent_approval.py  # a real model (or ollama:llama3.2)

The agent is ``create_react_agent(..., interrupt_before=["tools"])`` on SQLite
(``tether-agent.sqlite``): before each batch of tool calls the run stops with its checkpoint
committed, and you answer each call: approve (y, yes), or reject (n, no) with a reason; anything
else is asked again, never taken as a rejection. A rejection goes back to the model as the
call's ToolMessage, so it can explain or try something else. Stop the program
at the question (Ctrl-D, Ctrl-C, even kill -9) and run it again: it asks the same question.

``--approve`` / ``--reject REASON`` answer the questions in order without asking (for scripts and
tests); when they run out, the terminal is asked, and end of input pauses the thread (exit code 3).
Without ``TETHER_MODEL`` a scripted model picks tools from keywords, so it all runs offline.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import operator
import os
import re
import sys
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tether import SqliteSaver
from tether.agents import create_react_agent, pending_tool_calls
from tether.answers import ApprovalAnswer, read_answer
from tether.errors import InvalidResumeError
from tether.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from tether.models import ScriptedChatModel, init_chat_model
from tether.tools import ToolException, tool

PAUSED = 3
SYSTEM_PROMPT = (
    "You are a helpful assistant with a calculator, a clock and an email tool. A person approves every tool "
    "call; if one is rejected, say so and respect the reason."
)

_OPS: dict[type, Any] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


@tool(handle_tool_error=True)  # a refusal is an answer for the model, not a crash
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression exactly.

    Args:
        expression: numbers with + - * / ** and parentheses, e.g. "17 * (3 + 4)".
    """

    def value(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](value(node.left), value(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](value(node.operand))
        raise ToolException(f"only numbers and + - * / ** ( ) are allowed, not {ast.dump(node)[:40]}")

    try:
        tree = ast.parse(expression, mode="eval")  # parsed, never eval()'d
    except SyntaxError as exc:
        raise ToolException(f"{expression!r} is not an arithmetic expression: {exc.msg}") from exc
    return str(value(tree.body))


@tool(handle_tool_error=True)  # a refusal is an answer for the model, not a crash
def clock(timezone: str = "UTC") -> str:
    """The current date and time.

    Args:
        timezone: an IANA time zone name such as "Europe/Paris".
    """
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ToolException(f"unknown time zone {timezone!r}; use a name like 'Europe/Paris'") from exc
    return dt.datetime.now(zone).strftime("%Y-%m-%d %H:%M %Z")


@tool(handle_tool_error=True)  # a refusal is an answer for the model, not a crash
def send_email(to: str, subject: str, body: str) -> str:
    """Send an email. (In this example nothing is sent: the email is only printed.)

    Args:
        to: the recipient's address.
        subject: the subject line.
        body: the text of the email.
    """
    print(f"[send_email] to: {to} | subject: {subject} | {body}")
    return f"email to {to} sent"


TOOLS = [calculator, clock, send_email]


def offline_reply(messages: list[BaseMessage]) -> dict[str, Any]:
    """The scripted model: tools chosen by keywords, then an answer built from the tool results."""
    results: list[ToolMessage] = []
    for message in reversed(messages):
        if not isinstance(message, ToolMessage):
            break
        results.insert(0, message)
    if results:
        parts = [
            f"The {r.name} call was not run ({r.text})." if r.status == "error" else f"{r.name} says: {r.text}."
            for r in results
        ]
        return {"content": " ".join(parts)}
    text = next((m.text for m in reversed(messages) if isinstance(m, HumanMessage)), "")
    calls: list[dict[str, Any]] = []
    expression = re.search(r"[\d(][\d\s+\-*/().]*[\d)]", text)
    if expression and re.search(r"[+\-*/]", expression.group()):
        calls.append({"name": "calculator", "args": {"expression": expression.group().strip()}})
    if re.search(r"\b(time|clock|date)\b", text, re.I):
        calls.append({"name": "clock", "args": {"timezone": "UTC"}})
    if re.search(r"\bemail\b", text, re.I):
        match = re.search(r"\bemail\s+(\w+)", text, re.I)
        to = f"{match.group(1).lower() if match else 'someone'}@example.com"
        calls.append({"name": "send_email", "args": {"to": to, "subject": "A note", "body": text}})
    if not calls:
        return {"content": "I can do arithmetic, tell the time, and send emails (this example only prints them)."}
    return {"content": "", "tool_calls": [{**c, "id": f"call_{i}_{len(messages)}"} for i, c in enumerate(calls)]}


def make_model() -> Any:
    name = os.environ.get("TETHER_MODEL")
    if name:
        return init_chat_model(name)
    return ScriptedChatModel([offline_reply], cycle=True, name="offline-keywords")


def build(saver: Any) -> Any:
    return create_react_agent(make_model(), TOOLS, prompt=SYSTEM_PROMPT, checkpointer=saver, interrupt_before=["tools"])


class Answers:
    """Decisions from the command line first, then from the terminal; None means "stop here"."""

    def __init__(self, given: list[str] | None) -> None:
        self.given = list(given or [])

    def decide(self, call: dict[str, Any]) -> ApprovalAnswer | None:
        print(f"\nThe agent wants to run {describe(call)}")
        if self.given:
            answer = self.given.pop(0)
            print(f"approve? [y / n <reason>] > {answer}  (from the command line)")
            return parse(answer)
        while True:  # an unclear answer is asked again, never taken as a rejection
            try:
                answer = input("approve? [y / n <reason>] > ")
            except (EOFError, KeyboardInterrupt):
                return None
            try:
                return parse(answer)
            except InvalidResumeError as exc:
                print(exc)


def describe(call: dict[str, Any]) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in call.get("args", {}).items())
    return f"{call['name']}({args})"


def parse(answer: str) -> ApprovalAnswer:
    """An approval (y, yes, approve) or a rejection (n, no, reject, with a reason: "n too slow").

    Anything else raises InvalidResumeError listing these forms (tether.answers reads them).
    """
    return read_answer(answer, actions=("approve", "reject"))


def settle(app: Any, config: dict[str, Any], answers: Answers) -> bool:
    """Answer every tool call the thread waits on and run on; False if the person stopped answering."""
    while (state := app.get_state(config)).next == ("tools",):
        rejections = []
        for call in pending_tool_calls(state.values["messages"]):
            answer = answers.decide(call)
            if answer is None:
                return False  # nothing was applied: the same questions come back next time
            if answer.action == "reject":
                rejections.append(
                    ToolMessage(
                        content=f"the person rejected this call: {answer.reason or 'no reason given'}",
                        tool_call_id=call["id"],
                        name=call["name"],
                        status="error",
                    )
                )
        if rejections:
            # as if the tools node had answered these calls; the approved ones still run next
            app.update_state(config, {"messages": rejections}, as_node="tools")
        app.invoke(None, config)
        show_answer(app, config)
    return True


def show_answer(app: Any, config: dict[str, Any]) -> None:
    state = app.get_state(config)
    last = state.values["messages"][-1] if state.values.get("messages") else None
    if not state.next and isinstance(last, AIMessage):
        print(f"agent> {last.text}")


def ask(app: Any, config: dict[str, Any], text: str, answers: Answers) -> bool:
    app.invoke({"messages": [("user", text)]}, config)
    show_answer(app, config)
    return settle(app, config, answers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A tool-calling agent that asks before running each tool.")
    parser.add_argument("--db", default="tether-agent.sqlite", help="SQLite file that keeps the threads")
    parser.add_argument("--thread", default="agent-1", help="conversation id (thread_id)")
    parser.add_argument("--say", action="append", help="send this request (repeatable), then exit")
    parser.add_argument("--approve", dest="answers", action="append_const", const="y", help="approve the next call")
    parser.add_argument(
        "--reject", dest="answers", action="append", type=lambda r: f"n {r}", metavar="REASON", help="reject it"
    )
    args = parser.parse_args(argv)
    answers = Answers(args.answers)
    with SqliteSaver.from_conn_string(args.db) as saver:
        app = build(saver)
        config = {"configurable": {"thread_id": args.thread}}
        if app.get_state(config).next == ("tools",):
            print(f"thread {args.thread!r} waits for your approval; picking up at the question")
            if not settle(app, config, answers):
                print(f"\npaused: thread {args.thread!r} waits for approval; run the same command to continue")
                return PAUSED
        if args.say or args.answers:  # scripted: do what the command line says, then stop
            for text in args.say or []:
                print(f"you> {text}")
                if not ask(app, config, text, answers):
                    print(f"\npaused: thread {args.thread!r} waits for approval; run the same command to continue")
                    return PAUSED
            return 0
        print(f"thread {args.thread!r}: ask for arithmetic, the time or an email; Ctrl-D to leave")
        while True:
            try:
                text = input("you> ").strip()
            except (EOFError, KeyboardInterrupt):
                print()
                return 0
            if text and not ask(app, config, text, answers):
                print(f"\npaused: thread {args.thread!r} waits for approval; run the same command to continue")
                return PAUSED


if __name__ == "__main__":
    sys.exit(main())
