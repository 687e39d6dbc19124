"""examples/agent_approval.py: a person approves each tool call; stopping at the question loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pexpect

from tether import SqliteSaver
from tether.messages import AIMessage
from tether.tools import ToolNode

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "examples" / "agent_approval.py"
ENV = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}", "PYTHONUNBUFFERED": "1"}
ENV.pop("TETHER_MODEL", None)
QUESTION = r"approve\? \[y / n <reason>\] > "


def agent(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--db", str(db), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=ENV,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def spawn(db: Path, *args: str) -> pexpect.spawn:
    return pexpect.spawn(
        sys.executable, [str(SCRIPT), "--db", str(db), *args], cwd=str(ROOT), env=ENV, encoding="utf-8", timeout=30
    )


def history(db: Path, thread: str = "agent-1") -> list[tuple[int, str, tuple[str, ...]]]:
    with SqliteSaver.from_conn_string(db) as saver:
        sys.path.insert(0, str(ROOT))
        try:
            from examples.agent_approval import build

            app = build(saver)
        finally:
            sys.path.remove(str(ROOT))
        config = {"configurable": {"thread_id": thread}}
        return [(s.metadata["step"], s.metadata["source"], s.next) for s in app.get_state_history(config)]


def test_terminal_approval_survives_kill_at_the_question(tmp_path: Path) -> None:
    db = tmp_path / "a.sqlite"
    first = spawn(db, "--say", "what is 6*7?")
    first.expect(r"The agent wants to run calculator\(expression='6\*7'\)")
    first.expect(QUESTION)
    at_question = history(db)
    assert at_question[0][2] == ("tools",)
    first.kill(signal.SIGKILL)  # the person walks away; the process dies hard
    first.wait()

    second = spawn(db)
    second.expect("waits for your approval")
    second.expect(r"calculator\(expression='6\*7'\)")  # the same question, nothing redone
    second.expect(QUESTION)
    assert history(db) == at_question
    second.sendline("n I can do that myself")
    second.expect(r"agent> The calculator call was not run \(the person rejected this call: I can do that myself\)")
    second.expect("you> ")
    second.sendline("and what is 2+3?")
    second.expect(r"calculator\(expression='2\+3'\)")
    second.expect(QUESTION)
    second.sendline("y")
    second.expect("agent> calculator says: 5.")
    second.expect("you> ")
    second.sendcontrol("d")
    second.expect(pexpect.EOF)
    sources = [source for _, source, _ in history(db)]
    assert sources.count("update") == 1  # one rejection written as the tools node's answer


def test_scripted_answers_pause_and_resume(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    paused = agent(db, "--say", "what is 12*12 and what time is it?")
    assert paused.returncode == 3, paused.stderr
    assert "waits for approval" in paused.stdout and "calculator(expression='12*12')" in paused.stdout
    done = agent(db, "--approve", "--reject", "no clocks today")
    assert done.returncode == 0, done.stderr
    assert (
        "agent> The clock call was not run (the person rejected this call: no clocks today). calculator says: 144."
        in (done.stdout)
    )
    assert history(db)[0][2] == ()


def test_email_runs_only_when_approved(tmp_path: Path) -> None:
    db = tmp_path / "e.sqlite"
    rejected = agent(db, "--thread", "e1", "--say", "email bob hello", "--reject", "not now")
    assert rejected.returncode == 0 and "[send_email]" not in rejected.stdout
    approved = agent(db, "--thread", "e2", "--say", "email bob hello", "--approve")
    assert "[send_email] to: bob@example.com | subject: A note | email bob hello" in approved.stdout
    assert "agent> send_email says: email to bob@example.com sent." in approved.stdout


def test_tools_refuse_what_they_cannot_do() -> None:
    sys.path.insert(0, str(ROOT))
    try:
        from examples.agent_approval import calculator, clock
    finally:
        sys.path.remove(str(ROOT))
    assert calculator.invoke({"expression": "2 ** 10 - (3 * 4)"}) == "1012"
    calls = [
        {"name": "calculator", "args": {"expression": "__import__('os')"}, "id": "1"},
        {"name": "calculator", "args": {"expression": "1 +"}, "id": "2"},
        {"name": "clock", "args": {"timezone": "Mars/Olympus"}, "id": "3"},
    ]
    out = ToolNode([calculator, clock])({"messages": [AIMessage(content="", tool_calls=calls)]})["messages"]
    assert [m.status for m in out] == ["error"] * 3
    assert "only numbers and + - * / ** ( ) are allowed" in out[0].text
    assert "is not an arithmetic expression" in out[1].text
    assert "unknown time zone 'Mars/Olympus'" in out[2].text
    assert clock.invoke({"timezone": "UTC"}).endswith("UTC")


def test_terminal_yes_approves_and_unclear_answers_are_asked_again(tmp_path: Path) -> None:
    """Anything but y used to reject; now `yes` approves and gibberish is asked again."""
    db = tmp_path / "u.sqlite"
    child = spawn(db, "--say", "what is 6*7?")
    child.expect(QUESTION)
    child.sendline("maybe later")
    child.expect("unclear answer 'maybe later'")
    child.expect(QUESTION)  # asked again, nothing rejected
    child.sendline("edit: 6*8")  # no edits here: the forms offered are approve and reject
    child.expect("'edit' is not an option here")
    child.expect(QUESTION)
    child.sendline("yes")
    child.expect("agent> calculator says: 42.")
    child.expect(pexpect.EOF)
    assert [source for _, source, _ in history(db)].count("update") == 0  # no rejection was written
