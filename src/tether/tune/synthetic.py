"""Generated training data with a known rule, for tests and the validation run (no torch here).

The task: a prompt lists distinct letters ("sort: d b a c"). Supervised examples answer with the same
letters in a random order, so a model tuned on them learns the format but no order; preference pairs put the
letters in alphabetical order in *chosen* ("a b c d") and in any other order in *rejected*. A model that
has only seen the supervised set prefers neither (about 50% preference accuracy); DPO on the pairs should
teach it the rule.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["preference_pairs", "supervised_examples", "write_jsonl"]


def _letters(rng: random.Random, count: int, alphabet: str) -> list[str]:
    return rng.sample(alphabet, count)


def _prompt(letters: list[str]) -> list[dict[str, str]]:
    return [{"role": "user", "content": "sort: " + " ".join(letters)}]


def _answer(letters: list[str]) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": " ".join(letters)}]


def supervised_examples(
    n: int, *, letters: int = 5, alphabet: str = string.ascii_lowercase, seed: int = 0
) -> list[dict[str, Any]]:
    """``n`` prompt/completion examples: the prompt's letters back, in a random order."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        chosen = _letters(rng, letters, alphabet)
        answer = rng.sample(chosen, len(chosen))
        rows.append({"prompt": _prompt(chosen), "completion": _answer(answer), "meta": {"source": "synthetic"}})
    return rows


def preference_pairs(
    n: int, *, letters: int = 5, alphabet: str = string.ascii_lowercase, seed: int = 1
) -> list[dict[str, Any]]:
    """``n`` pairs: *chosen* sorts the prompt's letters, *rejected* lists them in some other order."""
    if letters < 2:
        raise ValueError("pairs need at least 2 letters, or no order breaks the rule")
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        shown = _letters(rng, letters, alphabet)
        ordered = sorted(shown)
        broken = ordered
        while broken == ordered:
            broken = rng.sample(shown, len(shown))
        rows.append(
            {
                "prompt": _prompt(shown),
                "chosen": _answer(ordered),
                "rejected": _answer(broken),
                "meta": {"source": "synthetic", "rule": "alphabetical order"},
            }
        )
    return rows


def write_jsonl(rows: Iterable[dict[str, Any]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path
