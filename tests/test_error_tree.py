"""One error tree: every exception class defined in ``tether`` derives from ``TetherError`` and is
drawn in ``tether.errors``' docstring, under the parent it really derives from.

Classes are found by reading the source (so a class in a module that imports torch is found
without importing torch); only the modules that define exceptions are imported, to check the
real classes.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import tether
import tether.errors
from tether.errors import TetherError

SRC = Path(tether.__file__).parent

# Exceptions that are control flow, not errors: each is caught by Tether before a caller could
# see it (or, for GraphInterrupt, is Tether's documented signal), so it must NOT be a TetherError:
# a program's `except TetherError` around a node must never swallow an interrupt or a retry.
CONTROL_FLOW = {
    # a node pauses its run; invoke/stream turn it into the thread's state and never raise it
    "tether._types.GraphInterrupt",  # defined there (the bottom layer), public as tether.types.GraphInterrupt
    # asks the job engine (procrastinate) to run the job again after a delay; never reaches a caller
    "tether.workers._execute.RetryRun",
    # unwinds an attempt that was cancelled or shut down; caught in RunExecutor
    "tether.workers._execute._Aborted",
    # carries the path to the failing value while decode unwinds; re-raised as SerializationError
    "tether.checkpoint._serde._ReadError",
    # a decoded column is not the shape Tether writes; re-raised as CorruptCheckpointError
    "tether.graph._state._ShapeError",
}
_EXCEPTION_SUFFIXES = ("Error", "Exception", "Exit", "Interrupt", "Warning")
_BUILTIN_EXCEPTIONS = {n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)}


@dataclass(frozen=True)
class Found:
    module: str
    name: str
    line: int
    top_level: bool
    bases: tuple[str, ...]  # the last part of each base's name

    @property
    def where(self) -> str:
        return f"{self.module}.{self.name} (line {self.line})"


def _base_name(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Subscript):
        return _base_name(node.value)
    return ""


def _classes() -> list[Found]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        module = ".".join(("tether", *path.relative_to(SRC).with_suffix("").parts)).removesuffix(".__init__")
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases = tuple(_base_name(b) for b in node.bases)
                found.append(Found(module, node.name, node.lineno, id(node) in top, bases))
    return found


def _exception_classes() -> list[Found]:
    """Classes whose bases (by name, followed through the tree) look like exceptions."""
    classes = _classes()
    names = set(_BUILTIN_EXCEPTIONS)
    while True:
        more = {
            c.name
            for c in classes
            if c.name not in names and any(b in names or b.endswith(_EXCEPTION_SUFFIXES) for b in c.bases)
        }
        if not more:
            break
        names |= more
    return [
        c for c in classes if c.name in names and any(b in names or b.endswith(_EXCEPTION_SUFFIXES) for b in c.bases)
    ]


EXCEPTIONS = _exception_classes()


def _real(found: Found) -> type[BaseException]:
    cls = getattr(importlib.import_module(found.module), found.name)
    assert isinstance(cls, type) and issubclass(cls, BaseException), f"{found.where} is not an exception class"
    return cls


def _tree() -> dict[str, str | None]:
    """Each name drawn in the docstring tree, with its parent's name."""
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in (tether.errors.__doc__ or "").splitlines():
        m = re.match(r"^ {4}(?:([│ ]*)[├└]── )?([A-Z]\w*)\b", line)  # the tree is indented by 4
        if m is None or (m.group(1) is None and m.group(2) != "TetherError"):
            continue
        depth = 0 if m.group(1) is None else len(m.group(1)) // 4 + 1
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[m.group(2)] = stack[-1][1] if stack else None
        stack.append((depth, m.group(2)))
    return parents


def test_the_walk_finds_the_known_errors() -> None:
    # guards the finder itself: a change that made it miss classes would make every other test vacuous
    names = {c.name for c in EXCEPTIONS}
    for expected in ("TetherError", "APIError", "DeadlineExceededError", "UnreadableThreadError", "RunError"):
        assert expected in names
    assert {f"{c.module}.{c.name}" for c in EXCEPTIONS} >= CONTROL_FLOW, "a control-flow entry names no class"


def test_exception_classes_are_defined_at_module_level() -> None:
    nested = [c.where for c in EXCEPTIONS if not c.top_level]
    assert not nested, (
        f"exception classes defined inside a function or class (the checks here cannot import them): {nested}"
    )


@pytest.mark.parametrize("found", EXCEPTIONS, ids=lambda c: f"{c.module}.{c.name}")
def test_every_exception_derives_from_tether_error(found: Found) -> None:
    cls = _real(found)
    if f"{found.module}.{found.name}" in CONTROL_FLOW:
        assert not issubclass(cls, TetherError), (
            f"{found.where} is control flow: `except TetherError` must not catch it"
        )
        return
    assert issubclass(cls, TetherError), (
        f"{found.where} does not derive from TetherError: put it under the right subtree of tether.errors"
    )


@pytest.mark.parametrize("found", EXCEPTIONS, ids=lambda c: f"{c.module}.{c.name}")
def test_every_exception_is_drawn_under_its_real_parent(found: Found) -> None:
    if found.name.startswith("_") and f"{found.module}.{found.name}" in CONTROL_FLOW:
        return  # private control flow: caught where it is raised, never seen outside its module
    doc = tether.errors.__doc__ or ""
    assert re.search(rf"\b{found.name}\b", doc), f"{found.where} is missing from the tree in tether.errors' docstring"
    if f"{found.module}.{found.name}" in CONTROL_FLOW:
        return
    parents = _tree()
    assert found.name in parents, f"{found.where} is named in tether.errors' docstring but not drawn in its tree"
    parent = parents[found.name]
    if parent is None:
        return
    by_name = {c.name: c for c in EXCEPTIONS}
    assert issubclass(_real(found), _real(by_name[parent])), (
        f"the tree draws {found.name} under {parent}, which it does not derive from"
    )


def test_the_tree_draws_only_classes_that_exist() -> None:
    names = {c.name for c in EXCEPTIONS}
    assert set(_tree()) - names == set()


def test_error_names_are_unique() -> None:
    # the docstring tree names classes without their module: two classes of one name would be ambiguous
    names = [c.name for c in EXCEPTIONS]
    assert sorted(n for n in set(names) if names.count(n) > 1) == []


def test_model_errors_import_and_catch_without_httpx() -> None:
    # httpx is the `models` extra: a program without it must still be able to name the errors
    code = (
        "import sys; sys.modules['httpx'] = None\n"
        "import tether.models._http_errors\n"
        "from tether.errors import TetherError\n"
        "from tether.models import APIError, ChatModelError, DeadlineExceededError, RateLimitError\n"
        "assert issubclass(DeadlineExceededError, APIError) and issubclass(APIError, ChatModelError)\n"
        "assert issubclass(RateLimitError, TetherError)\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
