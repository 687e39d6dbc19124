"""The savers' map of thread → integer row key: a cache, so it is bounded (least recently used goes)."""

from __future__ import annotations

import threading
from collections import OrderedDict

__all__ = ["ThreadKeys"]

DEFAULT_SIZE = 50_000


class ThreadKeys:
    """``(thread_id, checkpoint_ns)`` → the ``threads`` row's key, for the most recent ``size`` threads.

    A missing entry costs one indexed lookup, so evicting is always safe; without a bound a
    server that sees millions of threads would keep every one of them in memory.
    """

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        self._keys: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, key: tuple[str, str]) -> int | None:
        with self._lock:
            found = self._keys.get(key)
            if found is not None:
                self._keys.move_to_end(key)
            return found

    def __setitem__(self, key: tuple[str, str], value: int) -> None:
        with self._lock:
            self._keys[key] = value
            self._keys.move_to_end(key)
            while len(self._keys) > self.size:
                self._keys.popitem(last=False)

    def pop(self, key: tuple[str, str], default: int | None = None) -> int | None:
        with self._lock:
            return self._keys.pop(key, default)

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()
