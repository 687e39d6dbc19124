"""Checkpoint ids as a person sees and types them in the ``tether`` command line.

Ids are UUIDv7: they begin with their creation time, so the ids of one thread share their first
dozen characters and differ at the end (the random part). ``tether history`` shows each id's
shortest tail that no other checkpoint of the thread ends with (at least ``MIN_SHOWN``
characters); ``--checkpoint`` takes the full id, that tail, or any prefix, as long as one
checkpoint of the thread matches.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

__all__ = ["MIN_SHOWN", "matching_ids", "short_ids"]

MIN_SHOWN = 8
_ELLIPSES = ("…", "...")


def short_ids(ids: Sequence[str]) -> dict[str, str]:
    """Each id's shortest unique tail among ``ids``, at least ``MIN_SHOWN`` characters (or the whole id)."""
    out: dict[str, str] = {}
    left = set(ids)
    length = MIN_SHOWN
    while left:  # one pass over the ids for each length tried: usually only MIN_SHOWN
        tails = Counter(i[-length:] for i in ids)
        for checkpoint_id in list(left):
            tail = checkpoint_id[-length:]
            if tails[tail] == 1 or length >= len(checkpoint_id):
                out[checkpoint_id] = tail
                left.discard(checkpoint_id)
        length += 1
    return out


def matching_ids(ids: Sequence[str], given: str) -> list[str]:
    """The ids ``given`` names: the id itself; else those it begins; else those it ends
    (as ``history`` shows them, with or without a leading ``…``). Several: it is ambiguous."""
    if given in ids:
        return [given]
    text = given.strip()
    for mark in _ELLIPSES:
        if text.startswith(mark):
            return [i for i in ids if i.endswith(text[len(mark) :])] if text[len(mark) :] else []
    if not text:
        return []
    by_prefix = [i for i in ids if i.startswith(text)]
    return by_prefix or [i for i in ids if i.endswith(text)]
