"""Paged thread listing on every backend: newest activity first, keyset cursors, filters, status."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

import pytest

from tether import START, StateGraph, interrupt
from tether.checkpoint import BaseCheckpointSaver, CheckpointRecord
from tether.checkpoint._base import new_checkpoint_id
from tether.errors import CheckpointError
from tether.graph._thread_list import list_threads
from tether.graph._thread_status import read_thread_status


def head(thread: str, *, metadata: str = "{}", created_at: str = "2026-01-01T00:00:00+00:00", cid: str | None = None):
    return CheckpointRecord(
        thread_id=thread,
        checkpoint_ns="",
        checkpoint_id=cid or new_checkpoint_id(),
        parent_id=None,
        step=0,
        source="input",
        created_at=created_at,
        next="[]",
        writes="[]",
        metadata=metadata,
    )


def walk(saver: BaseCheckpointSaver, **kw: Any) -> list[str]:
    """Every thread id the listing yields, page after page."""
    seen: list[str] = []
    cursor = None
    while True:
        page = saver.list_threads(after=cursor, **kw)
        seen += [s.thread_id for s in page.items]
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


def test_newest_activity_first_and_pages_match_threads(saver: BaseCheckpointSaver) -> None:
    for i in range(7):
        saver.put(head(f"t{i}"))
    first = saver.list("t2")
    parent = next(iter(first)).checkpoint_id
    saver.put(dataclasses.replace(head("t2"), parent_id=parent, step=1, source="loop"))  # t2 is active again
    page = saver.list_threads(limit=3)
    assert [s.thread_id for s in page.items] == ["t2", "t6", "t5"]
    assert page.items[0].checkpoints == 2 and page.items[0].head.step == 1
    assert walk(saver, limit=3) == [s.thread_id for s in saver.threads()]
    assert walk(saver, limit=100) == walk(saver, limit=1)


def test_paging_lists_every_thread_once_while_threads_are_added(saver: BaseCheckpointSaver) -> None:
    old = [f"old{i:02d}" for i in range(25)]
    for t in old:
        saver.put(head(t))
    seen: list[str] = []
    cursor = None
    added = 0
    while True:
        page = saver.list_threads(limit=4, after=cursor)
        seen += [s.thread_id for s in page.items]
        saver.put(head(f"new{added}"))  # newer than every cursor: neither shifts nor repeats the rest
        added += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sorted(seen) == sorted(old) and len(seen) == len(set(seen))


def test_equal_head_ids_are_ordered_by_thread(saver: BaseCheckpointSaver) -> None:
    cid = new_checkpoint_id()
    for t in ("a", "b", "c"):
        saver.put(head(t, cid=cid))
    assert walk(saver, limit=1) == ["c", "b", "a"]


def test_metadata_and_time_filters(saver: BaseCheckpointSaver) -> None:
    saver.put(head("u1", metadata='{"user": "ann", "n": 1, "ok": true}', created_at="2026-01-01T10:00:00+00:00"))
    saver.put(head("u2", metadata='{"user": "bob", "n": true}', created_at="2026-01-02T10:00:00+00:00"))
    saver.put(head("u3", metadata='{"user": "ann"}', created_at="2026-01-03T10:00:00+00:00"))
    saver.put(head("u4", metadata="{}", created_at="2026-01-04T10:00:00+00:00"))
    assert walk(saver, limit=1, metadata={"user": "ann"}) == ["u3", "u1"]
    assert walk(saver, metadata={"user": "ann", "n": 1}) == ["u1"]
    assert walk(saver, metadata={"n": 1}) == ["u1"]  # true is not 1
    assert walk(saver, metadata={"n": True}) == ["u2"]
    assert walk(saver, metadata={"ok": True}) == ["u1"]
    assert walk(saver, metadata={"user": "zed"}) == []
    day2 = datetime(2026, 1, 2, tzinfo=UTC)
    assert walk(saver, updated_after=day2) == ["u4", "u3", "u2"]
    assert walk(saver, updated_before=day2) == ["u1"]
    assert walk(saver, updated_after=day2, updated_before=day2 + timedelta(days=1), metadata={"user": "bob"}) == ["u2"]


@pytest.mark.parametrize(
    ("kw", "says"),
    [
        ({"after": "not-a-cursor"}, "bad thread listing cursor"),
        ({"after": "WyJhIl0"}, "bad thread listing cursor"),  # valid base64 JSON, wrong shape
        ({"limit": 0}, "limit must be an integer"),
        ({"limit": 10_000}, "limit must be an integer"),
        ({"metadata": {"k": object()}}, "is not JSON"),
        ({"metadata": {"": 1}}, "metadata filter keys"),
        ({"updated_after": datetime(2026, 1, 1)}, "timezone-aware"),
    ],
)
def test_bad_input_is_a_clear_error(saver: BaseCheckpointSaver, kw: dict[str, Any], says: str) -> None:
    saver.put(head("x"))
    with pytest.raises(CheckpointError, match=says):
        saver.list_threads(**kw)


class S(TypedDict, total=False):
    ask: bool
    answer: str


def asker(saver: BaseCheckpointSaver) -> Any:
    def node(state: S) -> S:
        return {"answer": interrupt(f"question for {state.get('answer', '?')}") if state.get("ask") else "none"}

    g = StateGraph(S)
    g.add_node("node", node)
    g.add_edge(START, "node")
    return g.compile(checkpointer=saver)


def test_status_and_questions_come_from_the_one_reader(saver: BaseCheckpointSaver) -> None:
    app = asker(saver)
    for i in range(12):
        app.invoke({"ask": i % 3 == 0, "answer": f"q{i}"}, {"configurable": {"thread_id": f"g{i:02d}"}})
    waiting = {f"g{i:02d}" for i in range(12) if i % 3 == 0}
    everything = list_threads(saver, limit=100)
    assert everything.next_cursor is None and len(everything.items) == 12
    for info in everything.items:
        where = read_thread_status(saver, info.thread_id)
        assert info.status == where.status() and info.interrupts == where.open_interrupts()
        assert info.next == where.next
        assert (info.status == "waiting") == (info.thread_id in waiting)
    asks = {i.thread_id: i.interrupts[0]["value"] for i in everything.items if i.status == "waiting"}
    assert asks["g03"] == "question for q3"
    # filtered pages, scanning at most 2 heads a call: short pages carry a cursor until the end
    seen: list[str] = []
    cursor = None
    calls = 0
    while True:
        page = list_threads(saver, limit=2, after=cursor, status="waiting", max_scan=2)
        calls += 1
        assert len(page.items) <= 2 and all(i.status == "waiting" for i in page.items)
        seen += [i.thread_id for i in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sorted(seen) == sorted(waiting) and len(seen) == len(set(seen)) and calls >= 6
    done = list_threads(saver, limit=100, status=["done", "error"])
    assert {i.thread_id for i in done.items} == {f"g{i:02d}" for i in range(12)} - waiting


def test_unknown_status_is_refused(saver: BaseCheckpointSaver) -> None:
    with pytest.raises(CheckpointError, match="unknown thread status"):
        list_threads(saver, status="sleeping")


async def test_async_listing_matches(saver: BaseCheckpointSaver) -> None:
    for i in range(5):
        saver.put(head(f"a{i}"))
    page = await saver.alist_threads(limit=2)
    assert [s.thread_id for s in page.items] == ["a4", "a3"]
    rest = await saver.alist_threads(limit=10, after=page.next_cursor)
    assert [s.thread_id for s in rest.items] == ["a2", "a1", "a0"] and rest.next_cursor is None


async def test_async_postgres_saver_lists_natively(postgres_schema: str) -> None:
    from tether.checkpoint import AsyncPostgresSaver

    async with AsyncPostgresSaver.from_conn_string(postgres_schema) as saver:
        for i in range(3):
            await saver.aput(head(f"p{i}", metadata=f'{{"n": {i}}}'))
        page = await saver.alist_threads(limit=2, metadata={"n": 1})
        assert [s.thread_id for s in page.items] == ["p1"] and page.next_cursor is None
        first = await saver.alist_threads(limit=2)
        assert [s.thread_id for s in first.items] == ["p2", "p1"] and first.next_cursor is not None
