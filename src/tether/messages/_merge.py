"""How the parts of two messages fold into one: contents, metadata dicts, indexed lists, usage.

Shared by ``AIMessageChunk`` addition and ``merge_message_runs``; the rules are LangChain's, so a
stream summed in Tether gives what it gives there:

- contents: two strings concatenate; a string meeting a block list joins it as a list item (or
  extends a trailing string item); two lists concatenate, except that items carrying the same
  integer ``index`` are merged into one (that is how streamed blocks grow);
- dicts: new keys are added, strings concatenate, nested dicts and lists merge, integers add
  (``index``, ``created`` and ``timestamp`` take the newer value), ``None`` yields to a value;
- usage: counts add, details included.
"""

from __future__ import annotations

from typing import Any, cast

from tether.messages._types import UsageMetadata

__all__ = ["add_usage", "merge_content", "merge_dicts", "merge_lists"]

Content = str | list[str | dict[str, Any]]

_KEEP_NEWER_INT = frozenset({"index", "created", "timestamp"})
_KEEP_SAME_STR = frozenset({"id", "output_version", "model_provider"})


def merge_content(first: Content | None, *others: Content) -> Content:
    """One content from several, in order (see the module docstring for the rules)."""
    merged: Content = "" if first is None else (list(first) if isinstance(first, list) else first)
    for content in others:
        if isinstance(merged, str):
            merged = merged + content if isinstance(content, str) else [merged, *content]
        elif isinstance(content, list):
            merged = merge_lists(merged, content) or []
        elif merged and isinstance(merged[-1], str):
            merged[-1] = merged[-1] + content
        elif content and merged:
            merged.append(content)
    return merged


def merge_dicts(left: dict[str, Any], *others: dict[str, Any]) -> dict[str, Any]:
    """A new dict: ``left`` with each of ``others`` folded in, key by key."""
    merged = dict(left)
    for other in others:
        for key, value in other.items():
            if key not in merged or (merged[key] is None and value is not None):
                merged[key] = value
            elif value is not None:
                merged[key] = _merge_values(key, merged[key], value)
    return merged


def _merge_values(key: str, mine: Any, value: Any) -> Any:
    if type(mine) is not type(value):
        raise TypeError(
            f"cannot merge {key!r}: one side has a {type(mine).__name__}, the other a {type(value).__name__}"
        )
    if isinstance(mine, str):
        keep = (key == "index" and mine.startswith("lc_")) or (key in _KEEP_SAME_STR and mine == value)
        return mine if keep else mine + value
    if isinstance(mine, dict):
        return merge_dicts(mine, value)
    if isinstance(mine, list):
        return merge_lists(mine, value)
    if mine == value:
        return mine
    if isinstance(mine, int) and not isinstance(mine, bool):
        return value if key in _KEEP_NEWER_INT else mine + value
    raise TypeError(f"cannot merge two different {type(mine).__name__} values for {key!r}: {mine!r} and {value!r}")


def _indexed(item: Any) -> bool:
    if not isinstance(item, dict) or "index" not in item:
        return False
    index = item["index"]
    return (isinstance(index, int) and not isinstance(index, bool)) or (
        isinstance(index, str) and index.startswith("lc_")
    )


def merge_lists(left: list[Any] | None, *others: list[Any] | None) -> list[Any] | None:
    """Concatenate, merging dict items that share an ``index`` (and do not disagree on ``id``)."""
    merged = None if left is None else list(left)
    for other in others:
        if other is None:
            continue
        if merged is None:
            merged = list(other)
            continue
        for item in other:
            if not _indexed(item):
                merged.append(item)
                continue
            target = next(
                (
                    i
                    for i, mine in enumerate(merged)
                    if isinstance(mine, dict)
                    and "index" in mine
                    and mine["index"] == item["index"]
                    and (mine.get("id") in (None, "") or item.get("id") in (None, "") or mine.get("id") == item["id"])
                ),
                None,
            )
            if target is None:
                merged.append(item)
            else:
                merged[target] = merge_dicts(merged[target], {k: v for k, v in item.items() if k != "type"})
    return merged


def _add_counts(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in {**left, **right}:
        a, b = left.get(key), right.get(key)
        if isinstance(a, dict) or isinstance(b, dict):
            out[key] = _add_counts(a or {}, b or {})
        else:
            out[key] = (a or 0) + (b or 0)
    return out


def add_usage(left: UsageMetadata | None, right: UsageMetadata | None) -> UsageMetadata:
    """Token counts of two replies (or two chunks of one) added up; zeros when neither has any."""
    if not left and not right:
        return UsageMetadata(input_tokens=0, output_tokens=0, total_tokens=0)
    if not left or not right:
        return cast(UsageMetadata, left or right)
    return cast(UsageMetadata, _add_counts(dict(left), dict(right)))
