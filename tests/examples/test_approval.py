"""The main job: a person approves in the terminal; stopping at the question loses nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pexpect
from typer.testing import CliRunner

from tether import SqliteSaver
from tether.cli import app as cli

ROOT = Path(__file__).parents[2]
ENV = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}", "PYTHONUNBUFFERED": "1"}
QUESTION = "Publish these release notes?"
GRAPH = "examples.approval:builder"


def approval(db: Path, *args: str) -> pexpect.spawn:
    return pexpect.spawn(
        sys.executable,
        [str(ROOT / "examples" / "approval.py"), "--db", str(db), *args],
        cwd=str(ROOT),
        env=ENV,
        encoding="utf-8",
        timeout=30,
    )


def scripted(db: Path, *answers: str, thread: str = "rel") -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(ROOT / "examples" / "approval_scripted.py"), "--db", str(db), "--thread", thread]
    for answer in answers:
        cmd += ["--answer", answer]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=60)


def history(db: Path, thread: str) -> list[tuple[int, str, tuple[str, ...]]]:
    from examples.approval import builder

    with SqliteSaver.from_conn_string(db) as saver:
        graph = builder().compile(checkpointer=saver)
        return [
            (s.metadata["step"], s.metadata["source"], s.next)
            for s in graph.get_state_history({"configurable": {"thread_id": thread}})
        ]


def test_terminal_flow_survives_kill_at_the_prompt(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite"
    first = approval(db)
    first.expect("starting thread")
    first.expect(QUESTION)
    first.expect("> ")
    steps_at_question = history(db, "release-1.4")
    first.kill(signal.SIGKILL)  # the person walks away; the process dies hard
    first.wait()

    second = approval(db)
    second.expect("waiting for you")  # resumed at the question, not from scratch
    second.expect(QUESTION)
    second.expect("> ")
    assert history(db, "release-1.4") == steps_at_question  # nothing re-ran before the question
    second.sendline("reject:mention the CLI")
    second.expect(r"revised after review: mention the CLI")
    second.expect("> ")
    second.sendcontrol("d")  # end of input at the prompt: pause politely
    second.expect("paused")
    second.expect(pexpect.EOF)

    third = approval(db)
    third.expect("waiting for you")
    third.expect("> ")
    third.sendline("edit:Tether 1.4.0 ships durable threads.")
    third.expect("published")
    third.expect("Tether 1.4.0 ships durable threads.")
    third.expect(pexpect.EOF)
    sources = [source for _, source, _ in history(db, "release-1.4")]
    assert sources.count("input") == 1  # one run of the workflow, across three processes


def test_scripted_answers_and_partial_progress(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    paused = scripted(db, "reject:too long")
    assert paused.returncode == 3 and "waits for an answer" in paused.stdout
    done = scripted(db, "approve")
    assert done.returncode == 0, done.stderr
    assert "published (1 revision(s))" in done.stdout and "revised after review: too long" in done.stdout
    json_answer = scripted(db, json.dumps({"action": "edit", "text": "short"}), thread="rel-json")
    assert json_answer.returncode == 0 and "short" in json_answer.stdout


def test_cli_lists_waiting_threads_and_resumes_one(tmp_path: Path, monkeypatch: object) -> None:
    db = tmp_path / "c.sqlite"
    assert scripted(db, thread="waiting-1").returncode == 3  # no answers: stops at the question
    assert scripted(db, "approve", thread="done-1").returncode == 0
    runner = CliRunner()
    listed = runner.invoke(cli, ["threads", str(db), "--waiting", "--json"])
    rows = json.loads(listed.output)
    assert [r["thread_id"] for r in rows] == ["waiting-1"]
    assert rows[0]["interrupts"][0]["value"]["question"] == QUESTION
    os.chdir(ROOT)  # --graph examples.approval:builder imports from the project root
    resumed = runner.invoke(cli, ["resume", str(db), "waiting-1", "--graph", GRAPH, "--value", '"approve"'])
    assert resumed.exit_code == 0, resumed.output
    assert "resumed" in resumed.output
    after = json.loads(runner.invoke(cli, ["threads", str(db), "--json"]).output)
    assert {r["thread_id"]: r["status"] for r in after} == {"waiting-1": "done", "done-1": "done"}
    again = runner.invoke(cli, ["resume", str(db), "waiting-1", "--graph", GRAPH, "--answer", "approve"])
    assert again.exit_code == 1 and "not waiting" in again.output


def test_cli_resume_prompts_when_no_value_is_given(tmp_path: Path) -> None:
    db = tmp_path / "p.sqlite"
    assert scripted(db, thread="ask-me").returncode == 3
    child = pexpect.spawn(
        sys.executable,
        ["-m", "tether.cli", "resume", str(db), "ask-me", "--graph", GRAPH],
        cwd=str(ROOT),
        env=ENV,
        encoding="utf-8",
        timeout=30,
    )
    child.expect("asks:")
    child.expect("answer")
    child.sendline("reject:needs a changelog link")
    child.expect("waiting again")
    child.expect(pexpect.EOF)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "tether.cli", "resume", str(db), "ask-me", "--graph", GRAPH, "--answer", "approve"],
        cwd=str(ROOT),
        env=ENV,
        encoding="utf-8",
        timeout=30,
    )
    child.expect("resumed")
    child.expect(pexpect.EOF)


def test_terminal_yes_approves_and_unclear_answers_are_asked_again(tmp_path: Path) -> None:
    """`yes` is an approval; gibberish and broken JSON are asked again, never taken as a rejection."""
    db = tmp_path / "y.sqlite"
    child = approval(db)
    child.expect(QUESTION)
    child.expect("> ")
    child.sendline("sure")
    child.expect("unclear answer 'sure'")
    child.expect(r"approve \(or a, yes, y\)")  # the accepted forms are listed
    child.expect("> ")
    child.sendline('{"action": "approve"')
    child.expect("not valid JSON")
    child.expect("> ")
    child.sendline("yes")
    child.expect(r"published \(0 revision\(s\)\)")  # no rejection was recorded on the way
    child.expect(pexpect.EOF)
    sources = [source for _, source, _ in history(db, "release-1.4")]
    assert sources.count("input") == 1


def test_cli_prompt_asks_again_until_the_answer_is_clear(tmp_path: Path) -> None:
    db = tmp_path / "q.sqlite"
    assert scripted(db, thread="ask-me").returncode == 3
    child = pexpect.spawn(
        sys.executable,
        ["-m", "tether.cli", "resume", str(db), "ask-me", "--graph", GRAPH],
        cwd=str(ROOT),
        env=ENV,
        encoding="utf-8",
        timeout=30,
    )
    child.expect("asks:")
    child.expect("answer")
    child.sendline("yes please")
    child.expect("unclear answer 'yes please'")
    child.expect("answer")
    child.sendline("y")
    child.expect("resumed")
    child.expect(pexpect.EOF)
    shown = json.loads(CliRunner().invoke(cli, ["show", str(db), "ask-me", "--json"]).output)
    assert shown["values"]["published"] and shown["values"].get("feedback", []) == []
