"""The README's code runs, and the quick-start example does what the README says."""

from __future__ import annotations

import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def test_readme_python_blocks_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)
    module = types.ModuleType("readme")  # a real module, so type hints resolve as in a script
    monkeypatch.setitem(sys.modules, "readme", module)
    for block in blocks:
        exec(compile(block, "README.md", "exec"), module.__dict__)
    out = capsys.readouterr().out
    assert "Publish this draft?" in out
    assert (tmp_path / "tether.sqlite").exists()


def test_quickstart_resumes_the_same_thread(tmp_path: Path) -> None:
    db = tmp_path / "q.sqlite"
    cmd = [sys.executable, str(ROOT / "examples" / "quickstart.py"), "--db", str(db)]
    first = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    second = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    assert "final draft: [v2]" in first
    assert "step  -1  input" in first
    assert "step   6  input" in second  # the second run continued the same thread
    assert "step  10  loop" in second
    cli = subprocess.run(
        [sys.executable, "-m", "tether.cli", "threads", str(db), "--json"], capture_output=True, text=True, check=True
    ).stdout
    assert '"checkpoints": 12' in cli
