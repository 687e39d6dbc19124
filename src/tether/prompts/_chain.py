"""``prompt | model | parser``: steps run one after another, each given the previous one's output."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

__all__ = ["Chain", "Pipeable"]


def _run(step: Any, value: Any) -> Any:
    invoke = getattr(step, "invoke", None)
    return invoke(value) if callable(invoke) else step(value)


async def _arun(step: Any, value: Any) -> Any:
    ainvoke = getattr(step, "ainvoke", None)
    if callable(ainvoke):
        return await ainvoke(value)
    result = await asyncio.to_thread(_run, step, value)
    return await result if inspect.isawaitable(result) else result


class Pipeable:
    """Mixin: ``a | b`` makes a ``Chain``; ``model | parser`` works too, through ``__ror__``."""

    def __or__(self, other: Any) -> Chain:
        return Chain(self, other)

    def __ror__(self, other: Any) -> Chain:
        return Chain(other, self)


class Chain(Pipeable):
    """Steps (anything with ``invoke``, or a function) run in order: ``invoke(x)`` returns the last output."""

    steps: list[Any]

    def __init__(self, *steps: Any) -> None:
        flat: list[Any] = []
        for step in steps:
            if not (callable(getattr(step, "invoke", None)) or callable(step)):
                raise TypeError(f"a chain step needs invoke() or must be callable, got {step!r}")
            flat.extend(step.steps if isinstance(step, Chain) else [step])
        self.steps = flat

    def invoke(self, input: Any, config: Any = None) -> Any:
        value = input
        for step in self.steps:
            value = _run(step, value)
        return value

    async def ainvoke(self, input: Any, config: Any = None) -> Any:
        value = input
        for step in self.steps:
            value = await _arun(step, value)
        return value

    def __repr__(self) -> str:
        return " | ".join(type(s).__name__ for s in self.steps)
