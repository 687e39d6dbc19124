"""Unclear answers are asked again or refused, never taken as rejections (rejections become training data).

Red-team report, issue 12, defect 9: at the approval prompt `yes` counted as a rejection; in the
agent example anything but `y` rejected; `tether resume … --value '{"action": "approve"'` (broken
JSON) was taken as a string, rejected, and exited 0. One reader, ``tether.answers.read_answer``,
now serves the examples and the CLI; the terminal flows are in tests/examples/.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tether.answers import ApprovalAnswer, accepted_forms, read_answer
from tether.errors import InvalidResumeError
from tether.tune.decisions import parse_answer

ROOT = Path(__file__).parents[2]
GRAPH = "examples.approval:builder"
ENV = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}", "PYTHONUNBUFFERED": "1"}
ENV.pop("TETHER_GRAPH", None)

CLEAR: list[tuple[Any, ApprovalAnswer]] = [
    ("approve", ApprovalAnswer(action="approve")),
    ("a", ApprovalAnswer(action="approve")),
    ("yes", ApprovalAnswer(action="approve")),
    ("  Y ", ApprovalAnswer(action="approve")),
    ("YES", ApprovalAnswer(action="approve")),
    ("reject", ApprovalAnswer(action="reject")),
    ("r", ApprovalAnswer(action="reject")),
    ("no", ApprovalAnswer(action="reject")),
    ("n too slow", ApprovalAnswer(action="reject", reason="too slow")),
    ("no, too long", ApprovalAnswer(action="reject", reason="too long")),
    ("reject: mention the CLI", ApprovalAnswer(action="reject", reason="mention the CLI")),
    ("edit:Tether 1.4 ships.", ApprovalAnswer(action="edit", text="Tether 1.4 ships.")),
    ("e: shorter", ApprovalAnswer(action="edit", text="shorter")),
    ('"approve"', ApprovalAnswer(action="approve")),
    ('{"action": "approve"}', ApprovalAnswer(action="approve")),
    ('{"action": "reject", "reason": "x"}', ApprovalAnswer(action="reject", reason="x")),
    ('{"action": "edit", "text": "t", "rater": "al"}', ApprovalAnswer(action="edit", text="t", rater="al")),
    (True, ApprovalAnswer(action="approve")),
    (False, ApprovalAnswer(action="reject")),
    ({"action": "reject"}, ApprovalAnswer(action="reject")),
]
UNCLEAR: list[Any] = [
    "",
    "   ",
    "sure",
    "yes please",
    "approve it",
    "y.",
    "yess",
    "nope",
    "edit",
    "edit:",
    "ok",
    '{"action": "approve"',  # broken JSON is not a string answer
    '{"action": "approve", }',
    '"approve',
    "[1, 2]",
    '{"action": "maybe"}',
    '{"action": "reject", "reasn": "typo"}',
    '{"action": "edit"}',
    '{"action": "approve", "reason": "why"}',
    '"{\\"action\\": \\"approve\\"}"',
    42,
    None,
    ["approve"],
    {"action": "edit", "text": 3},
]


@pytest.mark.parametrize(("given", "expected"), CLEAR)
def test_clear_answers(given: Any, expected: ApprovalAnswer) -> None:
    assert read_answer(given) == expected
    # the value a prompt resumes with reads back the same, here and in tether tune
    assert read_answer(expected.as_resume()) == expected
    decided = parse_answer(expected.as_resume())
    assert decided is not None and decided.action == expected.action
    assert (decided.reason, decided.text, decided.rater) == (expected.reason, expected.text, expected.rater)


@pytest.mark.parametrize("given", UNCLEAR)
def test_unclear_answers_are_refused_with_the_forms_listed(given: Any) -> None:
    with pytest.raises(InvalidResumeError) as caught:
        read_answer(given)
    assert accepted_forms() in str(caught.value)


def test_tune_reads_typed_answers_as_the_prompt_did() -> None:
    """A graph that stores the typed text is read by `tether tune` as the prompt read it."""
    for given, expected in CLEAR:
        if isinstance(given, str):
            decided = parse_answer(given)
            assert decided is not None and decided.action == expected.action, given
    for given in ("sure", "yes please", "approve it", "y."):
        assert parse_answer(given) is None


def test_actions_can_be_narrowed() -> None:
    with pytest.raises(InvalidResumeError) as caught:
        read_answer("edit: x", actions=("approve", "reject"))
    assert "edit" not in accepted_forms(("approve", "reject"))
    assert accepted_forms(("approve", "reject")) in str(caught.value)
    assert read_answer("n", actions=("approve", "reject")).action == "reject"


# -- the command line --------------------------------------------------------------------------


def scripted(db: Path, *answers: str, thread: str = "rel") -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(ROOT / "examples" / "approval_scripted.py"), "--db", str(db), "--thread", thread]
    for answer in answers:
        cmd += ["--answer", answer]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=60)


def tether(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tether.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=ENV,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def rows(db: Path) -> tuple[int, int]:
    with sqlite3.connect(db) as conn:
        checkpoints = conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0]
        pending = conn.execute("SELECT count(*) FROM pending_writes").fetchone()[0]
    return int(checkpoints), int(pending)


def values(db: Path, thread: str = "rel") -> dict[str, Any]:
    shown = tether("show", str(db), thread, "--json")
    assert shown.returncode == 0, shown.stderr
    return dict(json.loads(shown.stdout)["values"])


@pytest.mark.parametrize(
    "bad",
    [
        ["--value", '{"action": "approve"'],
        ["--value", "approve"],  # plain text is not JSON: '"approve"' or --answer approve
        ["--answer", "yes please"],
        ["--answer", "sure"],
        ["--value", '"x"', "--answer", "approve"],
    ],
)
def test_resume_refuses_unclear_answers_and_writes_nothing(tmp_path: Path, bad: list[str]) -> None:
    db = tmp_path / "t.sqlite"
    assert scripted(db).returncode == 3  # waiting at the question
    before = rows(db)
    result = tether("resume", str(db), "rel", "--graph", GRAPH, *bad)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and "nothing was written" in line
    assert rows(db) == before
    listed = json.loads(tether("threads", str(db), "--json").stdout)
    assert listed[0]["status"] == "waiting"


def test_resume_answer_forms(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite"
    assert scripted(db, thread="yes").returncode == 3
    assert tether("resume", str(db), "yes", "--graph", GRAPH, "--answer", "yes").returncode == 0
    assert values(db, "yes")["published"]  # `yes` approves
    assert scripted(db, thread="no").returncode == 3
    done = tether("resume", str(db), "no", "--graph", GRAPH, "--answer", "n needs a date")
    assert done.returncode == 0 and "waiting again" in done.stdout
    assert values(db, "no")["feedback"] == ["needs a date"]


def test_a_json_answer_the_graph_finds_unclear_is_asked_again_not_rejected(tmp_path: Path) -> None:
    """Valid JSON the CLI cannot judge reaches the graph, which asks again: no rejection is recorded."""
    db = tmp_path / "t.sqlite"
    assert scripted(db).returncode == 3
    result = tether("resume", str(db), "rel", "--graph", GRAPH, "--value", '"yes please"')
    assert result.returncode == 0, result.stderr
    assert "waiting again" in result.stdout and "unclear answer" in result.stdout
    assert values(db).get("feedback", []) == []  # not a rejection
    assert "published" not in values(db)
    approved = tether("resume", str(db), "rel", "--graph", GRAPH, "--value", '{"action": "approve"}')
    assert approved.returncode == 0 and values(db)["published"]


def test_scripted_example_refuses_unclear_answers_before_running(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite"
    for bad in ("yes please", '{"action": "approve"', "sure"):
        result = scripted(db, bad)
        assert result.returncode == 2 and "unclear answer" in result.stderr
        assert not db.exists()  # nothing ran
    assert scripted(db, "yes").returncode == 0
