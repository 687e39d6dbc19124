"""Reading a Google-style docstring: the tool's description and one description per argument."""

from __future__ import annotations

import inspect
import re

__all__ = ["parse_docstring"]

# Section headers end the free-text description; only "Args:" (and its synonyms) is read further.
_ARGS_HEADERS = frozenset({"Args:", "Arguments:", "Parameters:", "Params:"})
_OTHER_HEADERS = frozenset(
    {
        "Returns:",
        "Return:",
        "Raises:",
        "Yields:",
        "Yield:",
        "Example:",
        "Examples:",
        "Note:",
        "Notes:",
        "See Also:",
        "Attributes:",
        "Warning:",
        "Warnings:",
        "Todo:",
    }
)
# "name: text", "name (int): text", "*args: text"
_ARG_LINE = re.compile(r"^\*{0,2}(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?:\([^)]*\))?\s*:\s*(?P<text>.*)$")


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """``(description, {argument: description})`` from a Google-style docstring.

    The description is the text before the first section, its paragraphs joined by a space
    (as langchain-core does, so a ported tool describes itself to the model the same way).
    Continuation lines of an argument, indented deeper than its name, are joined to it.
    """
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    description: list[str] = []
    args: dict[str, str] = {}
    section: str | None = None
    base_indent: int | None = None
    current: str | None = None
    for line in lines:
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if indent == 0 and (stripped in _ARGS_HEADERS or stripped in _OTHER_HEADERS):
            section = "args" if stripped in _ARGS_HEADERS else "other"
            base_indent, current = None, None
            continue
        if section is None:
            description.append(line)
            continue
        if section != "args" or not stripped:
            continue
        if base_indent is None:
            base_indent = indent
        match = _ARG_LINE.match(stripped)
        if indent <= base_indent and match:
            current = match.group("name")
            args[current] = match.group("text").strip()
        elif current is not None:
            args[current] = f"{args[current]} {stripped}".strip()
    paragraphs = [p.strip() for p in "\n".join(description).split("\n\n") if p.strip()]
    return " ".join(paragraphs), args
