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


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_importable(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert exported == sorted(exported, key=isort_key), f"{name}.__all__ is not sorted (constants, classes, functions)"
    for member in exported:
        assert hasattr(module, member), f"{name}.__all__ names missing member {member}"


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
