"""``graph.get_graph()``: the graph's shape, for people (a Mermaid diagram) and for code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tether.types import END, START

if TYPE_CHECKING:
    from tether.graph._spec import BuiltGraph

__all__ = ["DrawableGraph", "Edge"]


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    conditional: bool = False


@dataclass(frozen=True, slots=True)
class DrawableGraph:
    nodes: tuple[str, ...]
    edges: tuple[Edge, ...]

    @classmethod
    def from_builder(cls, builder: BuiltGraph) -> DrawableGraph:
        edges: list[Edge] = [Edge(a, b) for a, b in builder.edges]
        for sources, target in builder.joins:
            edges += [Edge(s, target) for s in sources]
        for branch in builder.branches:
            targets = branch.targets()
            for target in targets if targets is not None else (*builder.nodes, END):
                edges.append(Edge(branch.source, target, conditional=True))
        for spec in builder.nodes.values():
            for target in spec.declared_targets or ():
                edges.append(Edge(spec.name, target, conditional=True))
        has_end = any(e.target == END for e in edges)
        nodes = (START, *builder.nodes, *((END,) if has_end else ()))
        return cls(nodes=nodes, edges=tuple(dict.fromkeys(edges)))

    def draw_mermaid(self) -> str:
        """A Mermaid flowchart: solid arrows for edges, dotted for conditional routes."""
        lines = ["flowchart TD"]
        for node in self.nodes:
            label = node.replace('"', "'")
            shape = f'(["{label}"])' if node in (START, END) else f'["{label}"]'
            lines.append(f"    {_id(node)}{shape}")
        for edge in self.edges:
            arrow = "-.->" if edge.conditional else "-->"
            lines.append(f"    {_id(edge.source)} {arrow} {_id(edge.target)}")
        return "\n".join(lines) + "\n"


def _id(name: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name) or "_"
