"""The SQL of the PostgreSQL store, written once as *plans* that both savers run.

A plan is a generator that yields SQL statements and receives their rows (``_postgres_driver``):
``PostgresSaver`` drives plans over ``psycopg.Connection``s, ``AsyncPostgresSaver`` over
``psycopg.AsyncConnection``s, so both run the very same SQL. Rows become records here, checked
by ``_rows``; JSON text goes in and out of ``jsonb`` through ``_postgres_text``. The plans of
the advisory-lock leases live with the leases (``_postgres_leases``).
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any

from tether._names import CONSUMED_KINDS_SQL
from tether.checkpoint._base import CheckpointRecord, LoadedCheckpoint, PendingWrite, ThreadSummary, lease_lost_error
from tether.checkpoint._key_cache import ThreadKeys
from tether.checkpoint._listing import ThreadFilter, ThreadPage, encode_cursor, listing_key
from tether.checkpoint._postgres_driver import Plan
from tether.checkpoint._postgres_text import from_db, to_db
from tether.checkpoint._rows import checked_pending, checked_record, checked_thread, follow_links

__all__ = ["PAGE", "Plans"]

_COLUMNS = "checkpoint_id, parent_id, step, source, created_at, next::text, writes::text, metadata::text"
_C_COLUMNS = ", ".join(f"c.{c.strip()}" for c in _COLUMNS.split(","))
PAGE = 200  # checkpoints a page of ``list`` reads
_IS_HEAD = "NOT EXISTS (SELECT 1 FROM checkpoints n WHERE n.thread = c.thread AND n.checkpoint_id > c.checkpoint_id)"
# keyset: strictly after the cursor's (head id, thread id, namespace), compared byte-wise as ORDER BY does
_AFTER = (
    "c.checkpoint_id <= %s AND (c.checkpoint_id < %s"
    ' OR (t.thread_id COLLATE "C", t.checkpoint_ns COLLATE "C") < (%s COLLATE "C", %s COLLATE "C"))'
)


def _record(thread_id: str, ns: str, row: Sequence[Any], snapshot: str | None = None) -> CheckpointRecord:
    return checked_record(thread_id, ns, row, snapshot, text=from_db)  # the values a row holds: checked


def _pending_write(thread_id: str, checkpoint_id: str, row: Sequence[Any]) -> PendingWrite:
    return checked_pending(thread_id, checkpoint_id, row, text=from_db)


class Plans:
    """The SQL of the store. Each method returns a plan (see the module docstring)."""

    _keys: ThreadKeys
    _lock_class: int  # the first key of a thread's advisory lock: the OID of the `threads` table

    def _key_plan(self, thread_id: str, ns: str, *, create: bool = False) -> Plan[int | None]:
        """The integer key of a thread; with ``create``, add the thread.

        Plans run in autocommit, so a thread row commits by itself, before the write that needs it:
        a thread whose first write then fails is left with no checkpoints, which reads as no thread.
        """
        key = self._keys.get((thread_id, ns))
        if key is not None:
            return key
        select = "SELECT id FROM threads WHERE thread_id = %s AND checkpoint_ns = %s"
        rows = yield select, (thread_id, ns), True
        if not rows and create:
            rows = yield (
                "INSERT INTO threads (thread_id, checkpoint_ns) VALUES (%s, %s)"
                " ON CONFLICT (thread_id, checkpoint_ns) DO NOTHING RETURNING id",
                (thread_id, ns),
                True,
            )
            if not rows:
                rows = yield select, (thread_id, ns), True  # another session created it meanwhile
        if not rows:
            return None
        self._keys[(thread_id, ns)] = int(rows[0][0])
        return int(rows[0][0])

    # -- reading ----------------------------------------------------------------------------------
    def _get_plan(self, thread_id: str, ns: str, checkpoint_id: str | None, have: str | None) -> Plan[Any]:
        key = yield from self._key_plan(thread_id, ns)
        if key is None:
            return None
        # the checkpoint and its pending writes in one query: a row per pending write (or one with NULLs)
        where = "ORDER BY checkpoint_id DESC LIMIT 1" if checkpoint_id is None else "AND checkpoint_id = %(id)s"
        rows = yield (
            f"""SELECT {_C_COLUMNS}, p.task_id, p.kind, p.value::text
                FROM (SELECT * FROM checkpoints WHERE thread = %(key)s {where}) c
                LEFT JOIN pending_writes p ON p.thread = %(key)s AND p.checkpoint_id = c.checkpoint_id
                ORDER BY p.task_id, p.kind""",
            {"key": key, "id": checkpoint_id},
            True,
        )
        if not rows:
            return None
        record = _record(thread_id, ns, rows[0][:8])
        target = record.checkpoint_id
        pending = [_pending_write(thread_id, target, r[8:11]) for r in rows if r[8] is not None]
        chain: builtins.list[CheckpointRecord] = []
        if target != have:
            chain = yield from self._chain_plan(thread_id, ns, key, target)
        return LoadedCheckpoint(record=chain[-1] if chain else record, chain=chain, pending=pending)

    def _chain_plan(
        self, thread_id: str, ns: str, key: int, checkpoint_id: str
    ) -> Plan[builtins.list[CheckpointRecord]]:
        """From ``checkpoint_id`` back to the nearest snapshot (or the root), oldest first.

        Fast path: ancestors are older, so read the key range from the newest snapshot at or
        before the target and follow parent links in memory. If that snapshot sits on
        another branch, walk the parent links in SQL instead. Either walk stops on a cycle
        and fails on a parent that is not stored (``follow_links``).
        """
        rows = yield (
            f"""WITH snap AS (SELECT checkpoint_id, state FROM snapshots
                              WHERE thread = %(key)s AND checkpoint_id <= %(id)s
                              ORDER BY checkpoint_id DESC LIMIT 1)
                SELECT {_C_COLUMNS}, CASE WHEN c.checkpoint_id = snap.checkpoint_id THEN snap.state::text END
                FROM snap JOIN checkpoints c ON c.thread = %(key)s
                 AND c.checkpoint_id BETWEEN snap.checkpoint_id AND %(id)s""",
            {"key": key, "id": checkpoint_id},
            True,
        )
        by_id = {r[0]: r for r in rows}
        stops = [i for i, r in by_id.items() if r[8] is not None]  # the snapshot the range started from
        ids = follow_links(thread_id, checkpoint_id, {i: r[1] for i, r in by_id.items()}, stops, complete=False)
        if ids is not None:
            return [_record(thread_id, ns, by_id[i][:8], by_id[i][8]) for i in ids]
        # UNION (not UNION ALL) adds an id once: parent links that loop end the walk instead of
        # looping forever; follow_links then names the cycle
        rows = yield (
            f"""WITH RECURSIVE chain (id) AS (
                    SELECT %(id)s::text COLLATE "C"
                    UNION
                    SELECT c.parent_id
                    FROM chain JOIN checkpoints c ON c.thread = %(key)s AND c.checkpoint_id = chain.id
                    WHERE c.parent_id IS NOT NULL
                      AND NOT EXISTS (SELECT 1 FROM snapshots s WHERE s.thread = %(key)s AND s.checkpoint_id = chain.id)
                )
                SELECT {_C_COLUMNS}, s.state::text
                FROM chain
                JOIN checkpoints c ON c.thread = %(key)s AND c.checkpoint_id = chain.id
                LEFT JOIN snapshots s ON s.thread = %(key)s AND s.checkpoint_id = chain.id""",
            {"key": key, "id": checkpoint_id},
            True,
        )
        by_id = {r[0]: r for r in rows}
        stops = [i for i, r in by_id.items() if r[8] is not None]
        ids = follow_links(thread_id, checkpoint_id, {i: r[1] for i, r in by_id.items()}, set(stops), complete=True)
        assert ids is not None
        return [_record(thread_id, ns, by_id[i][:8], by_id[i][8]) for i in ids]

    def _pending_plan(self, thread_id: str, key: int, checkpoint_id: str) -> Plan[builtins.list[PendingWrite]]:
        rows = yield (
            "SELECT task_id, kind, value::text FROM pending_writes WHERE thread = %s AND checkpoint_id = %s"
            " ORDER BY task_id, kind",
            (key, checkpoint_id),
            True,
        )
        return [_pending_write(thread_id, checkpoint_id, r) for r in rows]

    def _pending_of_plan(self, thread_id: str, ns: str, checkpoint_id: str) -> Plan[builtins.list[PendingWrite]]:
        key = yield from self._key_plan(thread_id, ns)
        if key is None:
            return []
        return (yield from self._pending_plan(thread_id, key, checkpoint_id))

    def _first_child_plan(self, thread_id: str, ns: str, checkpoint_id: str) -> Plan[CheckpointRecord | None]:
        key = yield from self._key_plan(thread_id, ns)
        if key is None:
            return None
        # children are newer: walk the key forward from the parent. "not another source" rather than
        # "= 'loop'": a damaged source is read (and refused), not skipped
        rows = yield (
            f"SELECT {_COLUMNS} FROM checkpoints WHERE thread = %s AND checkpoint_id > %s"
            " AND parent_id = %s AND source NOT IN ('input', 'update', 'fork') ORDER BY checkpoint_id LIMIT 1",
            (key, checkpoint_id, checkpoint_id),
            True,
        )
        return _record(thread_id, ns, rows[0]) if rows else None

    def _page_plan(self, thread_id: str, ns: str, before: str | None) -> Plan[builtins.list[CheckpointRecord]]:
        """One page of a thread's checkpoints, newest first, older than ``before``."""
        key = yield from self._key_plan(thread_id, ns)
        if key is None:
            return []
        if before is None:
            rows = yield (
                f"SELECT {_COLUMNS} FROM checkpoints WHERE thread = %s ORDER BY checkpoint_id DESC LIMIT %s",
                (key, PAGE),
                True,
            )
        else:
            rows = yield (
                f"SELECT {_COLUMNS} FROM checkpoints WHERE thread = %s AND checkpoint_id < %s"
                " ORDER BY checkpoint_id DESC LIMIT %s",
                (key, before, PAGE),
                True,
            )
        return [_record(thread_id, ns, r) for r in rows]

    def _threads_plan(self) -> Plan[builtins.list[ThreadSummary]]:
        heads = yield (
            f"""SELECT t.thread_id, t.checkpoint_ns, t.id, {_C_COLUMNS},
                       (SELECT count(*) FROM checkpoints n WHERE n.thread = t.id)
                FROM threads t
                JOIN LATERAL (SELECT * FROM checkpoints h WHERE h.thread = t.id
                              ORDER BY h.checkpoint_id DESC LIMIT 1) c ON true
                ORDER BY c.checkpoint_id DESC""",
            None,
            True,
        )
        pending: dict[tuple[int, str], builtins.list[PendingWrite]] = {}
        if heads:
            rows = yield (
                """SELECT p.thread, p.checkpoint_id, p.task_id, p.kind, p.value::text
                   FROM pending_writes p
                   JOIN unnest(%s::bigint[], %s::text[]) AS h (thread, checkpoint_id)
                     ON p.thread = h.thread AND p.checkpoint_id = h.checkpoint_id COLLATE "C"
                   ORDER BY p.task_id, p.kind""",
                ([h[2] for h in heads], [h[3] for h in heads]),
                True,
            )
            names = {h[2]: h[0] for h in heads}
            for r in rows:
                write = _pending_write(names[r[0]], r[1], r[2:5])
                pending.setdefault((r[0], r[1]), []).append(write)
        out = []
        for h in heads:
            thread_id, ns, count = checked_thread(h[0], h[1], h[11])
            out.append(
                ThreadSummary(
                    thread_id=thread_id,
                    checkpoint_ns=ns,
                    checkpoints=count,
                    head=_record(thread_id, ns, h[3:11]),
                    pending=pending.get((h[2], h[3]), []),
                )
            )
        return out

    def _list_threads_plan(self, flt: ThreadFilter) -> Plan[ThreadPage]:
        """A page of threads newest activity first (``_listing``): checkpoints newest first, keeping
        each thread's head (no index on the id alone yet: docs/storage.md says why)."""
        where = [_IS_HEAD]
        params: builtins.list[Any] = []
        if flt.after is not None:
            cid, tid, ns = flt.after
            where.append(_AFTER)
            params += [cid, cid, tid, ns]
        for key, value in flt.metadata:
            where.append("c.metadata -> %s::text = %s::jsonb")
            params += [key, value]
        if flt.updated_after is not None:
            where.append("c.created_at >= %s")
            params.append(flt.updated_after)
        if flt.updated_before is not None:
            where.append("c.created_at < %s")
            params.append(flt.updated_before)
        heads = yield (
            f"""SELECT t.thread_id, t.checkpoint_ns, t.id, {_C_COLUMNS},
                       (SELECT count(*) FROM checkpoints n WHERE n.thread = t.id)
                FROM checkpoints c JOIN threads t ON t.id = c.thread
                WHERE {" AND ".join(where)}
                ORDER BY c.checkpoint_id DESC, t.thread_id COLLATE "C" DESC, t.checkpoint_ns COLLATE "C" DESC
                LIMIT %s""",
            [*params, flt.limit + 1],
            True,
        )
        more = len(heads) > flt.limit
        heads = heads[: flt.limit]
        pending: dict[tuple[int, str], builtins.list[PendingWrite]] = {}
        if heads:
            rows = yield (
                """SELECT p.thread, p.checkpoint_id, p.task_id, p.kind, p.value::text
                   FROM pending_writes p
                   JOIN unnest(%s::bigint[], %s::text[]) AS h (thread, checkpoint_id)
                     ON p.thread = h.thread AND p.checkpoint_id = h.checkpoint_id COLLATE "C"
                   ORDER BY p.task_id, p.kind""",
                ([h[2] for h in heads], [h[3] for h in heads]),
                True,
            )
            names = {h[2]: h[0] for h in heads}
            for r in rows:
                pending.setdefault((r[0], r[1]), []).append(_pending_write(names[r[0]], r[1], r[2:5]))
        items = []
        for h in heads:
            thread_id, ns, count = checked_thread(h[0], h[1], h[11])
            items.append(
                ThreadSummary(
                    thread_id=thread_id,
                    checkpoint_ns=ns,
                    checkpoints=count,
                    head=_record(thread_id, ns, h[3:11]),
                    pending=pending.get((h[2], h[3]), []),
                )
            )
        return ThreadPage(items=items, next_cursor=encode_cursor(listing_key(items[-1])) if more else None)

    # -- writing: each write is one statement, so it commits atomically by itself -------------------
    # A write on a thread this saver holds for a run is *fenced*: it commits only if the run's
    # ``thread_leases`` row still names it (and locks that row while it commits). A run that lost its
    # lock (its lease connection was cut) and whose thread another run has since taken cannot commit.
    def _fences(
        self, threads: Sequence[tuple[str, str, int]], leases: Mapping[tuple[str, str], tuple[int, str]]
    ) -> tuple[builtins.list[str], dict[str, Any], dict[str, str]]:
        """CTEs ending in ``go``, a row only while every held thread among ``threads`` is still this run's."""
        ctes: builtins.list[str] = []
        params: dict[str, Any] = {}
        names: dict[str, str] = {}
        for thread_id, ns, key in threads:
            held = leases.get((thread_id, ns))
            if held is None or held[0] != key or thread_id in names:
                continue
            name = f"fence{len(names)}"
            names[thread_id] = name
            params[f"{name}_thread"], params[f"{name}_owner"] = key, held[1]
            ctes.append(
                f"{name} AS (SELECT 1 FROM thread_leases WHERE thread = %({name}_thread)s"
                f" AND owner = %({name}_owner)s FOR SHARE)"
            )
        if names:
            ctes.append(f"go AS (SELECT 1 FROM {', '.join(names.values())})")
        return ctes, params, names

    def _fenced_out(self, thread_id: str, key: int) -> Plan[None]:
        rows = yield "SELECT owner FROM thread_leases WHERE thread = %s", (key,), True
        raise lease_lost_error(
            thread_id, rows[0][0] if rows else None, "this run's lease connection to PostgreSQL was lost"
        )

    def _put_plan(
        self, records: Sequence[CheckpointRecord], leases: Mapping[tuple[str, str], tuple[int, str]]
    ) -> Plan[None]:
        """Every record in one statement: its checkpoint row, its snapshot, and its parent's consumed
        pending writes (results, errors and inputs are now in ``writes``; interrupts stay as history)."""
        keys = []
        for r in records:
            key = yield from self._key_plan(r.thread_id, r.checkpoint_ns, create=True)
            assert key is not None
            keys.append(key)
        ctes, params, fences = self._fences([(r.thread_id, r.checkpoint_ns, k) for r, k in zip(records, keys)], leases)
        go = " FROM go" if fences else ""
        rows: builtins.list[str] = []
        for i, (r, key) in enumerate(zip(records, keys)):
            params.update(
                {
                    f"thread{i}": key,
                    f"id{i}": r.checkpoint_id,
                    f"parent{i}": r.parent_id,
                    f"step{i}": r.step,
                    f"source{i}": r.source,
                    f"created{i}": r.created_at,
                    f"next{i}": to_db(r.next),
                    f"writes{i}": to_db(r.writes),
                    f"metadata{i}": None if r.metadata == "{}" else to_db(r.metadata),
                }
            )
            rows.append(
                f"(%(thread{i})s, %(id{i})s, %(parent{i})s, %(step{i})s, %(source{i})s, %(created{i})s,"
                f" %(next{i})s::jsonb, %(writes{i})s::jsonb, %(metadata{i})s::jsonb)"
            )
            if r.snapshot is not None:
                params[f"snapshot{i}"] = to_db(r.snapshot)
                ctes.append(
                    f"snap{i} AS (INSERT INTO snapshots (thread, checkpoint_id, state)"
                    f" SELECT %(thread{i})s, %(id{i})s, %(snapshot{i})s::jsonb{go})"
                )
            if r.parent_id is not None and r.source == "loop" and r.clears_pending:
                ctes.append(
                    f"done{i} AS (DELETE FROM pending_writes WHERE thread = %(thread{i})s"
                    f" AND checkpoint_id = %(parent{i})s AND kind IN {CONSUMED_KINDS_SQL}"
                    f"{' AND EXISTS (SELECT 1 FROM go)' if fences else ''})"
                )
        head = f"WITH {', '.join(ctes)} " if ctes else ""
        columns = "thread, checkpoint_id, parent_id, step, source, created_at, next, writes, metadata"
        if not fences:
            yield f"{head}INSERT INTO checkpoints ({columns}) VALUES {', '.join(rows)}", params, False
            return
        written = yield (
            f"{head}INSERT INTO checkpoints ({columns})"
            f" SELECT v.* FROM (VALUES {', '.join(rows)}) AS v CROSS JOIN go RETURNING 1",
            params,
            True,
        )
        if len(written) < len(records):
            yield from self._fenced_out(records[0].thread_id, keys[0])

    def _put_pending_plan(
        self,
        thread_id: str,
        ns: str,
        checkpoint_id: str,
        writes: Sequence[PendingWrite],
        leases: Mapping[tuple[str, str], tuple[int, str]],
    ) -> Plan[None]:
        latest = {(w.task_id, w.kind): w for w in writes}  # a later write of a (task, kind) replaces an earlier one
        if not latest:
            return
        key = yield from self._key_plan(thread_id, ns, create=True)
        assert key is not None
        ctes, params, fences = self._fences([(thread_id, ns, key)], leases)
        params.update(
            {
                "thread": key,
                "id": checkpoint_id,
                "tasks": [w.task_id for w in latest.values()],
                "kinds": [w.kind for w in latest.values()],
                "values": [to_db(w.value) for w in latest.values()],
            }
        )
        written = yield (
            f"""{"WITH " + ", ".join(ctes) if ctes else ""}
                INSERT INTO pending_writes (thread, checkpoint_id, task_id, kind, value)
                SELECT %(thread)s, %(id)s, w.task_id, w.kind, w.value::jsonb
                FROM unnest(%(tasks)s::text[], %(kinds)s::text[], %(values)s::text[]) AS w (task_id, kind, value)
                {"CROSS JOIN go" if fences else ""}
                ON CONFLICT (thread, checkpoint_id, task_id, kind) DO UPDATE SET value = EXCLUDED.value
                RETURNING 1""",
            params,
            True,
        )
        if len(written) < len(latest):
            yield from self._fenced_out(thread_id, key)

    def _delete_plan(self, thread_id: str) -> Plan[None]:
        # the threads row stays, so keys cached by other savers stay valid
        yield (
            """WITH keys AS (SELECT id FROM threads WHERE thread_id = %s),
                    c AS (DELETE FROM checkpoints WHERE thread IN (SELECT id FROM keys)),
                    s AS (DELETE FROM snapshots WHERE thread IN (SELECT id FROM keys)),
                    p AS (DELETE FROM pending_writes WHERE thread IN (SELECT id FROM keys))
               DELETE FROM thread_leases WHERE thread IN (SELECT id FROM keys)""",
            (thread_id,),
            False,
        )
