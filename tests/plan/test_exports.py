from __future__ import annotations

import subprocess
import sys

import tether.plan


def isort_key(name: str) -> tuple[int, str]:
    """The order ruff's RUF022 keeps: CONSTANTS, then Classes, then functions."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2), name


def test_all_is_sorted_and_importable() -> None:
    exported = tether.plan.__all__
    assert exported == sorted(exported, key=isort_key)
    for name in exported:
        assert hasattr(tether.plan, name), name


def test_the_planner_imports_no_heavy_libraries() -> None:
    heavy = ("torch", "transformers", "matplotlib", "numpy")
    code = f"import sys, tether, tether.plan; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
