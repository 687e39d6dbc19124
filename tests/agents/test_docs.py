"""docs/agents.md: its Python blocks run, in order, as one program."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

DOC = Path(__file__).parents[2] / "docs" / "agents.md"


def test_agents_doc_examples_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 6
    monkeypatch.chdir(tmp_path)
    module = types.ModuleType("agents_doc")  # a real module, so type hints resolve as in a script
    monkeypatch.setitem(sys.modules, "agents_doc", module)
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), module.__dict__)
