"""One run per thread on SQLite: leases with an expiry, a heartbeat, and fenced commits.

A ``thread_leases`` row names the run holding a thread (``host:pid:tag``) and the time
(``expires_at``, Unix seconds) after which any process may take the thread over. While runs of
a saver hold leases, one daemon thread of that saver renews them all every third of the TTL,
so a node that waits minutes for a model keeps its thread. Another process takes a lease over
once it has expired, whatever host wrote it, or at once when the holder is a dead process of
this host or a run of this process that has ended.

Expiry compares wall clocks of different hosts: it assumes their skew is well under the TTL
(NTP keeps it to milliseconds). A holder that was paused past its expiry (a stopped VM, a long
GC, a suspended laptop) may find its thread taken; its commits are *fenced*: each one checks,
inside its own transaction, that the lease row still names its run, and fails with
``ThreadBusyError`` otherwise, so it never writes on top of the new holder's work.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from tether.checkpoint._base import busy_error, lease_given_back, lease_lost_error, lease_taken, owner_is_alive
from tether.errors import CheckpointError, TetherError, ThreadBusyError

__all__ = ["DEFAULT_LEASE_TTL", "SqliteLeases", "check_lease_ttl"]

DEFAULT_LEASE_TTL = 30.0

_log = logging.getLogger("tether")


class KeyOf(Protocol):
    """The saver's lookup of a thread's integer key (adding the thread with ``create``)."""

    def __call__(
        self, thread_id: str, ns: str, *, create: bool = False, conn: sqlite3.Connection | None = None
    ) -> int | None: ...


def check_lease_ttl(lease_ttl: object) -> float:
    if isinstance(lease_ttl, bool) or not isinstance(lease_ttl, int | float) or not math.isfinite(lease_ttl):
        raise CheckpointError(f"lease_ttl must be a number of seconds, got {lease_ttl!r}")
    if lease_ttl <= 0:
        raise CheckpointError(f"lease_ttl must be more than 0 seconds, got {lease_ttl!r}")
    return float(lease_ttl)


@dataclass(slots=True)
class _Held:
    key: int
    owner: str
    lost: bool = False  # the heartbeat found another run's row: stop renewing, the fence will refuse


class SqliteLeases:
    """The leases that runs of one ``SqliteSaver`` hold, on the saver's lease connection.

    ``guard`` serialises transactions on ``conn`` (the saver's own lock when the lease
    connection is the main one).
    """

    def __init__(self, conn: sqlite3.Connection, guard: threading.RLock, ttl: float, key_of: KeyOf) -> None:
        self.conn = conn
        self.ttl = ttl
        self._guard = guard
        self._key_of = key_of
        self._lock = threading.Lock()  # guards _held and the heartbeat's life; never held around SQL
        self._held: dict[tuple[str, str], _Held] = {}
        self._beat: threading.Thread | None = None
        self._closed = threading.Event()

    @contextmanager
    def _transaction(self, doing: str) -> Iterator[sqlite3.Connection]:
        with self._guard:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self.conn
                except BaseException:
                    if self.conn.in_transaction:
                        self.conn.execute("ROLLBACK")
                    raise
                self.conn.execute("COMMIT")
            except TetherError:
                raise
            except sqlite3.Error as exc:
                raise CheckpointError(f"SQLite error while {doing}: {exc}") from exc

    # -- the runtime's calls -------------------------------------------------------------------
    def acquire(self, thread_id: str, ns: str, owner: str) -> None:
        mine = self._held.get((thread_id, ns))
        if mine is not None and mine.owner != owner:
            # a run of this very saver, alive until it releases (even if its lease expired): writes are
            # fenced per thread, so two runs of one saver on one thread could not be told apart
            raise busy_error(thread_id, mine.owner)
        added = False
        try:
            with self._transaction(f"starting a run on thread {thread_id!r}") as conn:
                key = self._key_of(thread_id, ns, create=True, conn=conn)
                assert key is not None
                row = conn.execute("SELECT owner, expires_at FROM thread_leases WHERE thread = ?", (key,)).fetchone()
                now = time.time()
                if row is not None and row[0] != owner and row[1] > now and owner_is_alive(row[0]):
                    raise busy_error(thread_id, row[0], row[1])
                conn.execute(
                    "INSERT OR REPLACE INTO thread_leases (thread, owner, acquired_at, expires_at) VALUES (?, ?, ?, ?)",
                    (key, owner, datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds"), now + self.ttl),
                )
                added = self._hold(thread_id, ns, _Held(key, owner))  # before the row is visible to anyone
        except BaseException:
            if added:
                self._forget(thread_id, ns, owner)
            raise

    def _hold(self, thread_id: str, ns: str, held: _Held) -> bool:
        """Renew ``held`` from now on, and count its owner as a live run of this process (so that no
        one takes its lease for a leftover); return whether it is new."""
        with self._lock:
            new = (thread_id, ns) not in self._held
            if new:
                lease_taken(held.owner)
            self._held[(thread_id, ns)] = held
            if self._beat is None and not self._closed.is_set():
                self._beat = threading.Thread(target=self._heartbeat, name="tether-lease-heartbeat", daemon=True)
                self._beat.start()
        return new

    def _forget(self, thread_id: str, ns: str, owner: str) -> _Held | None:
        with self._lock:
            held = self._held.get((thread_id, ns))
            if held is None or held.owner != owner:
                return None
            del self._held[(thread_id, ns)]
        lease_given_back(owner)
        return held

    def release(self, thread_id: str, ns: str, owner: str) -> None:
        # Forget the lease first: if the delete below fails, nothing renews the row any more and
        # this process no longer counts the owner as alive, so the thread frees itself.
        held = self._forget(thread_id, ns, owner)
        with self._transaction(f"ending a run on thread {thread_id!r}") as conn:
            key = held.key if held is not None else self._key_of(thread_id, ns, conn=conn)
            if key is not None:
                conn.execute("DELETE FROM thread_leases WHERE thread = ? AND owner = ?", (key, owner))

    def holder_of(self, thread_id: str, ns: str) -> tuple[int, str] | None:
        """The thread's key and the owner of this saver's run holding it, if one does: a write
        of that thread commits only while the lease row still names that owner (the fence)."""
        held = self._held.get((thread_id, ns))
        return None if held is None else (held.key, held.owner)

    def check_held(self, conn: sqlite3.Connection, thread_id: str, ns: str) -> None:
        """Inside a write transaction on ``conn``: refuse to commit for a run of this saver whose
        thread another run has taken (one primary-key lookup; nothing for threads not held here)."""
        held = self._held.get((thread_id, ns))
        if held is None:
            return
        row = conn.execute("SELECT owner FROM thread_leases WHERE thread = ?", (held.key,)).fetchone()
        if row is None or row[0] != held.owner:
            raise self.lost(conn, thread_id, held.key)

    def lost(self, conn: sqlite3.Connection, thread_id: str, key: int) -> ThreadBusyError:
        """The error for a fenced write that found its run's lease gone."""
        row = conn.execute("SELECT owner FROM thread_leases WHERE thread = ?", (key,)).fetchone()
        return lease_lost_error(
            thread_id,
            row[0] if row else None,
            f"this run's lease was not renewed within lease_ttl ({self.ttl:g} s: the process was paused, or "
            "could not write to the database), so another run could take it (or the thread was deleted)",
        )

    # -- heartbeat -----------------------------------------------------------------------------
    def _heartbeat(self) -> None:
        try:
            while not self._closed.wait(self.ttl / 3):
                with self._lock:
                    if not self._held:
                        self._beat = None  # under the lock: the next acquire starts a new one
                        return
                    held = [(thread_id, h) for (thread_id, _ns), h in self._held.items() if not h.lost]
                if not held:
                    continue
                try:
                    self.renew(held)
                except CheckpointError as exc:  # a busy or full database: try again at the next beat
                    _log.warning("could not renew thread leases: %s", exc)
        finally:
            with self._lock:
                if self._beat is threading.current_thread():
                    self._beat = None

    def renew(self, held: list[tuple[str, _Held]]) -> None:
        with self._transaction("renewing thread leases") as conn:
            expires_at = time.time() + self.ttl
            for thread_id, h in held:
                updated = conn.execute(
                    "UPDATE thread_leases SET expires_at = ? WHERE thread = ? AND owner = ?",
                    (expires_at, h.key, h.owner),
                ).rowcount
                if not updated:
                    h.lost = True
                    _log.warning("the lease of the run on thread %r expired and another run took it", thread_id)

    def close(self) -> None:
        """Stop renewing; give back the leases still held (quietly: they expire anyway)."""
        self._closed.set()
        with self._lock:
            beat, held = self._beat, list(self._held.items())
            self._held.clear()
        if beat is not None and beat is not threading.current_thread():
            beat.join(timeout=self.ttl + 15)
        for (thread_id, _ns), h in held:
            lease_given_back(h.owner)
            try:
                with self._transaction(f"ending a run on thread {thread_id!r}") as conn:
                    conn.execute("DELETE FROM thread_leases WHERE thread = ? AND owner = ?", (h.key, h.owner))
            except CheckpointError as exc:
                _log.warning("could not give back the lease of thread %r (%s); it expires by itself", thread_id, exc)
