"""The import graph between tether's modules has no cycles.

Layering only holds if it is checked: value types at the bottom, the
node-facing runtime context above them, graph/checkpoint/models on top.
Module-level imports count, including those under ``if TYPE_CHECKING:`` and
``importlib.import_module("tether....")`` string literals, because a cycle
through a type-only import still ties the modules into one unit for readers
and type checkers. Imports inside functions are deliberate lazy loads (CLI
sub-commands, optional extras) and are not counted.

The one lazy load that closes a circle: ``tether.checkpoint._serde._resolve`` imports
``tether.messages`` (through its ``_TETHER_TYPES`` table) when stored data names a message
class, and the message modules import ``_serde`` to register those classes. Reading must work
before the program has imported ``tether.messages``, so that edge stays, inside the function.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "tether"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _module_level_nodes(tree: ast.Module) -> list[ast.AST]:
    """Statements run at import time: the body, through if/try blocks, not into defs."""
    found: list[ast.AST] = []
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        found.append(node)
        if isinstance(node, ast.ClassDef):
            # class bodies run at import time, their methods do not
            pending.extend(node.body)
        else:
            pending.extend(ast.iter_child_nodes(node))
    return found


def _imports(path: Path, modules: set[str]) -> set[str]:
    module = _module_name(path)
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in _module_level_nodes(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node)
            # `from pkg import sub` imports the submodule when one exists
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, (ast.Attribute, ast.Name))
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names = [node.args[0].value]
        elif isinstance(node, ast.Dict):
            # a table of names to modules that a module __getattr__ hands to importlib
            names = [
                value.value
                for value in node.values
                if isinstance(value, ast.Constant) and isinstance(value.value, str) and value.value in modules
            ]
        for name in names:
            # `from tether.graph import x` where x is a name: count the package
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
    return targets


def import_graph() -> dict[str, set[str]]:
    """Each tether module and the tether modules it imports at import time (or for type checking)."""
    paths = sorted((SRC / PACKAGE).rglob("*.py"))
    modules = {_module_name(path) for path in paths}
    return {_module_name(path): _imports(path, modules) for path in paths}


def import_cycles(graph: dict[str, set[str]], limit: int = 20) -> list[list[str]]:
    """Cycles found one at a time, dropping one edge of each, so several circles show at once."""
    edges = {module: set(targets) for module, targets in graph.items()}
    cycles: list[list[str]] = []
    while len(cycles) < limit:
        try:
            graphlib.TopologicalSorter(edges).prepare()
        except graphlib.CycleError as exc:
            cycle: list[str] = exc.args[1]
            cycles.append(cycle)
            edges[cycle[1]].discard(cycle[0])  # graphlib lists the cycle against the import direction
        else:
            return cycles
    return cycles


def test_import_graph_is_found() -> None:
    graph = import_graph()
    assert "tether.graph._compiled" in graph["tether.graph._builder"]
    assert sum(len(targets) for targets in graph.values()) > 200


def test_cycle_finder_reports_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    (cycle,) = import_cycles(graph)
    assert set(cycle) == {"a", "b", "c"}


def test_no_import_cycles() -> None:
    cycles = import_cycles(import_graph())
    assert not cycles, "import cycles between tether modules:\n" + "\n".join(
        " -> ".join(reversed(cycle)) for cycle in cycles
    )
