"""The new packages export sorted, importable names, and never import LangChain or LangGraph."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PACKAGES = ["tether.tools", "tether.agents", "tether.prompts", "tether.messages"]


def isort_key(name: str) -> tuple[int, str]:
    """The order ruff's RUF022 keeps: CONSTANTS, then Classes, then functions."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2), name


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_importable(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__all__ == sorted(module.__all__, key=isort_key)
    for member in module.__all__:
        assert hasattr(module, member), f"{name}.__all__ names missing member {member}"


def test_no_langchain_or_langgraph_at_runtime() -> None:
    code = (
        "import sys, tether.tools, tether.agents, tether.prompts, tether.messages; "
        "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith(('langchain', 'langgraph'))}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
