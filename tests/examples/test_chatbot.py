"""examples/chatbot.py: remembers each thread across processes, trims and summarises, offline by default."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pexpect

from tether import SqliteSaver

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "examples" / "chatbot.py"
ENV = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}", "PYTHONUNBUFFERED": "1"}
ENV.pop("TETHER_MODEL", None)  # offline, whatever the developer's shell says


def chat(db: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--db", str(db), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env or ENV,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_remembers_each_thread_across_processes(tmp_path: Path) -> None:
    db = tmp_path / "chat.sqlite"
    first = chat(db, "--say", "my name is Ada")
    assert first.returncode == 0, first.stderr
    assert 'bot> You said "my name is Ada".' in first.stdout
    second = chat(db, "--say", "what is my name?")
    assert 'Before that you said "my name is Ada"' in second.stdout  # a new process remembers
    other = chat(db, "--thread", "other", "--say", "hello")
    assert "Before that" not in other.stdout  # another thread does not
    shown = chat(db, "--show").stdout.splitlines()
    assert shown[0] == "human: my name is Ada" and len(shown) == 4


def test_old_turns_are_summarised_and_stay_in_history(tmp_path: Path) -> None:
    db = tmp_path / "sum.sqlite"
    says = [f"fact number {i}" for i in range(6)]
    args = [arg for text in says for arg in ("--say", text)]
    run = chat(db, "--summarize-after", "60", "--keep-last", "2", *args)
    assert run.returncode == 0, run.stderr
    assert "[memory: older turns were replaced by a summary]" in run.stdout
    assert "From earlier I remember that fact number 0" in run.stdout
    shown = chat(db, "--show").stdout.splitlines()
    assert shown[0].startswith("summary: ") and len([s for s in shown if s.startswith("human: ")]) <= 2
    sys.path.insert(0, str(ROOT))
    try:
        from examples.chatbot import builder, make_model

        graph = builder(make_model(), context_tokens=1000, summarize_after=60, keep_last=2)
    finally:
        sys.path.remove(str(ROOT))
    with SqliteSaver.from_conn_string(db) as saver:
        app = graph.compile(checkpointer=saver)
        config = {"configurable": {"thread_id": "default"}}
        seen = {m.text for s in app.get_state_history(config) for m in s.values.get("messages", [])}
    assert set(says) <= seen  # the originals are reachable in earlier checkpoints


def test_terminal_session_survives_kill(tmp_path: Path) -> None:
    db = tmp_path / "tty.sqlite"
    first = pexpect.spawn(
        sys.executable, [str(SCRIPT), "--db", str(db)], cwd=str(ROOT), env=ENV, encoding="utf-8", timeout=30
    )
    first.expect("0 stored message")
    first.expect("you> ")
    first.sendline("remember the number 7")
    first.expect('You said "remember the number 7"')
    first.expect("you> ")
    first.kill(signal.SIGKILL)
    first.wait()

    second = pexpect.spawn(
        sys.executable, [str(SCRIPT), "--db", str(db)], cwd=str(ROOT), env=ENV, encoding="utf-8", timeout=30
    )
    second.expect("2 stored message")
    second.expect("you> ")
    second.sendline("which number?")
    second.expect('Before that you said "remember the number 7"')
    second.expect("you> ")
    second.sendcontrol("d")
    second.expect(pexpect.EOF)


def test_tether_model_selects_a_real_client(tmp_path: Path) -> None:
    env = {**ENV, "TETHER_MODEL": "no-such-provider:model"}
    run = chat(tmp_path / "x.sqlite", "--say", "hi", env=env)
    assert run.returncode != 0
    assert "unknown model provider 'no-such-provider'" in run.stderr
