"""Public names live in one place: each package's sorted ``__all__``, documented in docs/api.md."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest


def isort_key(name: str) -> tuple[int, str]:
    """The order ruff's RUF022 keeps: CONSTANTS, then Classes, then functions."""
    kind = 0 if name.isupper() else 1 if name[0].isupper() else 2
    return kind, name


PACKAGES = ["tether", "tether.graph", "tether.checkpoint", "tether.errors", "tether.types"]
# modules named after LangGraph's, so a program ports by changing its imports
LANGGRAPH_MIRRORS = [
    "tether.checkpoint.memory",
    "tether.checkpoint.postgres",
    "tether.checkpoint.postgres.aio",
    "tether.checkpoint.sqlite",
    "tether.checkpoint.sqlite.aio",
    "tether.config",
    "tether.constants",
    "tether.graph.message",
    "tether.graph.state",
    "tether.prebuilt",
    "tether.runtime",
]


@pytest.mark.parametrize("name", PACKAGES + LANGGRAPH_MIRRORS)
def test_all_is_sorted_and_importable(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert exported == sorted(exported, key=isort_key), f"{name}.__all__ is not sorted (constants, classes, functions)"
    for member in exported:
        assert hasattr(module, member), f"{name}.__all__ names missing member {member}"


@pytest.mark.parametrize("name", LANGGRAPH_MIRRORS)
def test_langgraph_mirrors_export_what_langgraph_does(name: str) -> None:
    """Each mirror's names exist under the same name in the LangGraph module it mirrors."""
    mirror = importlib.import_module(name)
    original = importlib.import_module(name.replace("tether", "langgraph", 1))
    assert mirror.__all__
    assert [n for n in mirror.__all__ if not hasattr(original, n)] == []


def test_docs_list_exactly_the_public_api() -> None:
    import tether

    text = (Path(__file__).parents[1] / "docs" / "api.md").read_text()
    documented = set(re.findall(r"^- `([A-Za-z_]+)`", text, flags=re.M))
    assert documented == set(tether.__all__)


def test_core_import_stays_light() -> None:
    import subprocess
    import sys

    heavy = ("torch", "langgraph", "httpx", "psycopg")
    code = f"import sys, tether; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
