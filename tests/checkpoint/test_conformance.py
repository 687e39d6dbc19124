"""Every checkpointer backend behaves the same: one suite, run over each of them."""

from __future__ import annotations

import threading

import pytest

from tether.checkpoint import BaseCheckpointSaver, CheckpointRecord, PendingWrite
from tether.checkpoint._base import new_checkpoint_id, run_owner
from tether.errors import ThreadBusyError


def record(
    thread: str,
    parent: str | None,
    step: int,
    *,
    source: str = "loop",
    snapshot: str | None = None,
    ns: str = "",
    writes: str = "[]",
    metadata: str = "{}",
) -> CheckpointRecord:
    return CheckpointRecord(
        thread_id=thread,
        checkpoint_ns=ns,
        checkpoint_id=new_checkpoint_id(),
        parent_id=parent,
        step=step,
        source=source,
        created_at="2026-01-01T00:00:00+00:00",
        next='["a"]',
        writes=writes,
        metadata=metadata,
        snapshot=snapshot,
    )


def chain_of(
    saver: BaseCheckpointSaver, n: int, *, snapshot_every: int = 0, thread: str = "t"
) -> list[CheckpointRecord]:
    out: list[CheckpointRecord] = []
    parent = None
    for i in range(n):
        snap = '{"values": {}}' if i == 0 or (snapshot_every and i % snapshot_every == 0) else None
        r = record(thread, parent, i - 1, source="input" if i == 0 else "loop", snapshot=snap, writes=f'[{{"i": {i}}}]')
        saver.put(r)
        out.append(r)
        parent = r.checkpoint_id
    return out


def test_empty_thread_has_no_checkpoint(saver: BaseCheckpointSaver) -> None:
    assert saver.get("nope") is None
    assert list(saver.list("nope")) == []


def test_put_then_get_newest_and_by_id(saver: BaseCheckpointSaver) -> None:
    records = chain_of(saver, 3)
    newest = saver.get("t")
    assert newest is not None and newest.record.checkpoint_id == records[-1].checkpoint_id
    assert newest.record.writes == records[-1].writes and newest.record.step == 1
    middle = saver.get("t", "", records[1].checkpoint_id)
    assert middle is not None and middle.record.parent_id == records[0].checkpoint_id
    assert saver.get("t", "", "missing-id") is None


def test_chain_starts_at_nearest_snapshot(saver: BaseCheckpointSaver) -> None:
    records = chain_of(saver, 10, snapshot_every=4)
    loaded = saver.get("t")
    assert loaded is not None
    assert [r.checkpoint_id for r in loaded.chain] == [r.checkpoint_id for r in records[8:]]
    assert loaded.chain[0].snapshot is not None
    assert all(r.snapshot is None for r in loaded.chain[1:])
    early = saver.get("t", "", records[3].checkpoint_id)
    assert early is not None and [r.checkpoint_id for r in early.chain] == [r.checkpoint_id for r in records[:4]]


def test_have_skips_the_chain_only_when_it_matches(saver: BaseCheckpointSaver) -> None:
    records = chain_of(saver, 3)
    same = saver.get("t", have=records[-1].checkpoint_id)
    assert same is not None and same.chain == []
    other = saver.get("t", have=records[0].checkpoint_id)
    assert other is not None and len(other.chain) == 3


def test_list_newest_first_with_before(saver: BaseCheckpointSaver) -> None:
    records = chain_of(saver, 450)  # more than one page
    listed = list(saver.list("t"))
    assert [r.checkpoint_id for r in listed] == [r.checkpoint_id for r in reversed(records)]
    assert all(r.snapshot is None for r in listed)
    before = list(saver.list("t", before=records[10].checkpoint_id))
    assert [r.checkpoint_id for r in before] == [r.checkpoint_id for r in reversed(records[:10])]


def test_threads_and_namespaces_are_separate(saver: BaseCheckpointSaver) -> None:
    chain_of(saver, 2, thread="a")
    chain_of(saver, 3, thread="b")
    saver.put(record("a", None, -1, source="input", ns="sub", snapshot='{"values": {}}'))
    assert len(list(saver.list("a"))) == 2
    assert len(list(saver.list("a", "sub"))) == 1
    summaries = {(s.thread_id, s.checkpoint_ns): s.checkpoints for s in saver.threads()}
    assert summaries == {("a", ""): 2, ("b", ""): 3, ("a", "sub"): 1}


def test_pending_results_are_dropped_when_the_step_commits_interrupts_kept(saver: BaseCheckpointSaver) -> None:
    (root,) = chain_of(saver, 1)
    cid = root.checkpoint_id
    saver.put_pending("t", "", cid, [PendingWrite(task_id="x", kind="result", value="1")])
    saver.put_pending(
        "t",
        "",
        cid,
        [PendingWrite(task_id="x", kind="result", value="2"), PendingWrite(task_id="y", kind="interrupt", value="[]")],
    )
    got = {(p.task_id, p.kind): p.value for p in saver.pending("t", "", cid)}
    assert got == {("x", "result"): "2", ("y", "interrupt"): "[]"}
    loaded = saver.get("t")
    assert loaded is not None and len(loaded.pending) == 2
    # an update or fork on top keeps the parent's pending writes; a loop step consumes them
    saver.put(record("t", cid, 0, source="update"))
    assert len(saver.pending("t", "", cid)) == 2
    saver.put(record("t", cid, 0, source="loop"))
    # the result is now in the new checkpoint's writes; the interrupt stays as history
    assert [(p.task_id, p.kind) for p in saver.pending("t", "", cid)] == [("y", "interrupt")]


def test_forks_keep_both_branches(saver: BaseCheckpointSaver) -> None:
    records = chain_of(saver, 3)
    fork = record("t", records[0].checkpoint_id, 0, source="fork")
    saver.put(fork)
    assert len(list(saver.list("t"))) == 4
    loaded = saver.get("t", "", records[2].checkpoint_id)
    assert loaded is not None and [r.checkpoint_id for r in loaded.chain] == [r.checkpoint_id for r in records]
    newest = saver.get("t")
    assert newest is not None and newest.record.checkpoint_id == fork.checkpoint_id


def test_delete_thread(saver: BaseCheckpointSaver) -> None:
    chain_of(saver, 3, thread="gone")
    chain_of(saver, 2, thread="kept")
    saver.delete_thread("gone")
    assert saver.get("gone") is None
    assert saver.get("kept") is not None


def test_one_run_per_thread(saver: BaseCheckpointSaver) -> None:
    first, second = run_owner(), run_owner()
    saver.acquire("t", "", first)
    with pytest.raises(ThreadBusyError, match="'t'"):
        saver.acquire("t", "", second)
    saver.acquire("other", "", second)  # other threads are free
    saver.release("t", "", second)  # not the holder: no effect
    with pytest.raises(ThreadBusyError):
        saver.acquire("t", "", second)
    saver.release("t", "", first)
    saver.acquire("t", "", second)


def test_concurrent_puts_from_threads(saver: BaseCheckpointSaver) -> None:
    def work(n: int) -> None:
        chain_of(saver, 20, thread=f"t{n}")

    workers = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert sorted(s.checkpoints for s in saver.threads()) == [20] * 6


async def test_async_face(saver: BaseCheckpointSaver) -> None:
    r = record("t", None, -1, source="input", snapshot='{"values": {}}')
    await saver.aput(r)
    loaded = await saver.aget("t")
    assert loaded is not None and loaded.record.checkpoint_id == r.checkpoint_id
    assert [x.checkpoint_id for x in await saver.alist("t")] == [r.checkpoint_id]
    await saver.aput_pending("t", "", r.checkpoint_id, [PendingWrite(task_id="a", kind="result", value="{}")])
    assert len(await saver.apending("t", "", r.checkpoint_id)) == 1


def test_chain_of_a_fork_skips_a_snapshot_on_another_branch(saver: BaseCheckpointSaver) -> None:
    main = chain_of(saver, 3)  # r0 (snapshot) → r1 → r2
    snap_on_main = record("t", main[2].checkpoint_id, 2, snapshot='{"values": {}}')
    saver.put(snap_on_main)
    fork = record("t", main[1].checkpoint_id, 1, source="update")  # newer than the main-branch snapshot
    saver.put(fork)
    loaded = saver.get("t", "", fork.checkpoint_id)
    assert loaded is not None
    assert [r.checkpoint_id for r in loaded.chain] == [main[0].checkpoint_id, main[1].checkpoint_id, fork.checkpoint_id]
    assert loaded.chain[0].snapshot is not None
