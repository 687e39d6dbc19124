"""examples/feedback_loop.py: a reviewer's edits on a chatbot become TRL preference data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_feedback_loop_exports_the_reviewers_decisions(tmp_path: Path) -> None:
    cmd = [sys.executable, str(ROOT / "examples" / "feedback_loop.py"), "--db", "f.sqlite", "--out", "prefs.jsonl"]
    first = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert "wrote {'pairs': 2, 'sft': 3, 'unpaired': 6}" in first
    again = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert "wrote {'pairs': 2, 'sft': 3, 'unpaired': 6}" in again  # nothing collected twice
    pairs = [json.loads(line) for line in (tmp_path / "prefs.jsonl").read_text().splitlines()]
    assert {(p["meta"]["thread_id"], p["rejected"][0]["content"]) for p in pairs} == {
        ("ticket-1", "Email support."),
        ("ticket-3", "No."),
    }
    assert all(p["meta"]["rater"] == "dana" for p in pairs)
    verdicts = [json.loads(line) for line in (tmp_path / "prefs.unpaired.jsonl").read_text().splitlines()]
    (refund,) = [v for v in verdicts if v["meta"]["thread_id"] == "ticket-4"]
    assert refund["label"] is False and refund["meta"]["reason"] == "dismissive; offer a refund"
