"""Folding many logged steps onto a state in time proportional to the writes folded.

``apply_step`` is the run's merge: it copies a reducer key's list and calls the reducer with the
whole list at every step, which is right for one step and quadratic for a rebuild that folds a
thousand of them (``operator.add`` builds a new list each time, ``add_messages`` re-indexes the
whole conversation). A ``Folder`` owns a private copy of the state instead and keeps, for the
reducers Tether knows, a mutable accumulator per key: ``operator.add`` on lists extends one list,
``add_messages`` keeps its id index between steps. The result equals calling the reducer step by
step (the property tests compare the two on random logs); any other reducer, or a write the fast
path does not cover, goes through the reducer exactly as ``apply_step`` calls it.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

from tether.graph._algo import Topology
from tether.messages._reducer import RemoveMessage, _is_remove_all, _messages, _with_id, add_messages

__all__ = ["Folder"]


class _ListSum:
    """``operator.add`` / ``operator.concat`` over lists: ``a + b`` is ``a.extend(b)`` on a private list."""

    def __init__(self, current: list[Any]) -> None:
        self.items = list(current)

    def add(self, value: Any) -> bool:
        if type(value) is not list:
            return False
        self.items.extend(value)
        return True

    def value(self, *, copy: bool) -> list[Any]:
        return list(self.items) if copy else self.items


class _Conversation:
    """``add_messages`` with its id index kept between steps: each write costs its own length."""

    def __init__(self, current: Any) -> None:
        self.merged: dict[str, Any] = {}
        for message in _messages(current):
            message = _with_id(message)
            self.merged[message.id] = message  # type: ignore[index]  # _with_id set it

    def add(self, value: Any) -> bool:
        incoming = _messages(value)
        last_remove_all = max((i for i, m in enumerate(incoming) if _is_remove_all(m)), default=None)
        if last_remove_all is not None:
            self.merged.clear()
            incoming = incoming[last_remove_all + 1 :]
        for message in incoming:
            if isinstance(message, RemoveMessage):
                if message.id not in self.merged:
                    raise ValueError(
                        f"cannot remove message {message.id!r}: no message with that id in the conversation"
                    )
                del self.merged[message.id]
                continue
            message = _with_id(message)
            self.merged[message.id] = message  # type: ignore[index]  # _with_id set it
        return True

    def value(self, *, copy: bool) -> list[Any]:
        return list(self.merged.values())


def _accumulator(reducer: Any, current: Any) -> _ListSum | _Conversation | None:
    if reducer is operator.add or reducer is operator.concat:
        return _ListSum(current) if type(current) is list else None
    if reducer is add_messages:
        return _Conversation(current)
    return None


class Folder:
    """A state being rebuilt: ``apply`` folds one step's writes, ``state`` reads it out."""

    def __init__(self, topo: Topology, values: dict[str, Any]) -> None:
        self.topo = topo
        self.values = dict(values)
        self.acc: dict[str, _ListSum | _Conversation] = {}

    def apply(self, ran_nodes: Sequence[str], writes: Sequence[tuple[str, Sequence[tuple[str, Any]]]]) -> None:
        """What ``apply_step(topo, state, ran_nodes, writes, check=False)`` returns, in place."""
        values, topo = self.values, self.topo
        for node in ran_nodes:
            for join in topo.joins_into.get(node, ()):
                seen = values.get(join.channel)
                if seen is not None and set(seen) >= join.sources:
                    del values[join.channel]
        by_key: dict[str, list[Any]] = {}
        for _, pairs in writes:
            for key, value in pairs:
                by_key.setdefault(key, []).append(value)
        for key, items in by_key.items():
            channel = topo.channels.get(key)
            if channel is None:
                if key in topo.join_channels:
                    values[key] = sorted(set(values.get(key, ())) | set(items))
                continue
            if channel.reducer is None:
                self.acc.pop(key, None)
                values[key] = items[-1]
                continue
            acc = self.acc.get(key)
            if acc is None:
                if key in values:
                    current = values[key]
                elif channel.initial is not None:
                    current = channel.initial()
                else:  # the first value is taken as written, unreduced (as apply_step does)
                    values[key] = self._reduce(channel.reducer, items[0], items[1:])
                    continue
                acc = _accumulator(channel.reducer, current)
                if acc is None:
                    values[key] = self._reduce(channel.reducer, current, items)
                    continue
                self.acc[key] = acc
            for i, value in enumerate(items):
                if not acc.add(value):  # not the fast path's case: the reducer decides, as in a run
                    del self.acc[key]
                    values[key] = self._reduce(channel.reducer, acc.value(copy=False), items[i:])
                    break

    @staticmethod
    def _reduce(reducer: Any, current: Any, items: Sequence[Any]) -> Any:
        if type(current) in (list, dict, set):
            current = current.copy()  # a reducer that mutates must not alter an earlier state
        for value in items:
            current = reducer(current, value)
        return current

    def state(self, *, final: bool = False) -> dict[str, Any]:
        """The state folded so far; ``final`` hands over the accumulators' lists (fold no more after)."""
        out = dict(self.values)
        for key, acc in self.acc.items():
            out[key] = acc.value(copy=not final)
        return out
