"""Thread leases across hosts and processes: expiry, heartbeat, fencing, and a release that fails.

A run holds its thread through a lease. These tests check that a lease written on another host
frees the thread once it expires, that a live holder keeps it past its TTL by renewing it, that a
holder whose lease was taken over cannot commit on top of the new holder's work, and that a
release failing after the run's steps are committed neither fails the run nor blocks the thread.
"""

from __future__ import annotations

import asyncio
import logging
import operator
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from tests.conftest import raw
from tether import END, START, StateGraph
from tether.checkpoint import AsyncSqliteSaver, BaseCheckpointSaver, InMemorySaver, SqliteSaver
from tether.checkpoint._base import run_owner
from tether.checkpoint._sqlite_schema import MIGRATIONS, SCHEMA_VERSION
from tether.errors import CheckpointError, ThreadBusyError

ROOT = Path(__file__).resolve().parents[2]
ELSEWHERE = "build-host-7.example:4242:0badc0de"  # a run on another machine: its pid means nothing here


class S(TypedDict, total=False):
    who: str
    log: Annotated[list[str], operator.add]


def graph(saver: BaseCheckpointSaver, node: Callable[[S], dict[str, Any]] | None = None) -> Any:
    g = StateGraph(S)
    g.add_node("work", node or (lambda s: {"log": [s["who"]]}))
    g.add_edge(START, "work")
    g.add_edge("work", END)
    return g.compile(checkpointer=saver)


def config(thread_id: str = "t") -> Any:
    return {"configurable": {"thread_id": thread_id}}


def lease_row(path: Path, thread_id: str = "t") -> tuple[Any, ...] | None:
    rows = raw(
        path,
        "SELECT l.owner, l.expires_at FROM thread_leases l JOIN threads t ON t.id = l.thread"
        f" WHERE t.thread_id = '{thread_id}'",
    )
    return rows[0] if rows else None


def write_lease(path: Path, owner: str, expires_at: float, thread_id: str = "t") -> None:
    """A lease as another process (here: on another host) would have written it."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "INSERT OR IGNORE INTO threads (thread_id, checkpoint_ns, created_at) VALUES (?, '', '2026-01-01')",
            (thread_id,),
        )
        conn.execute(
            "INSERT OR REPLACE INTO thread_leases (thread, owner, acquired_at, expires_at)"
            " SELECT id, ?, '2026-01-01T00:00:00.000+00:00', ? FROM threads WHERE thread_id = ?",
            (owner, expires_at, thread_id),
        )
    conn.close()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "leases.sqlite"
    SqliteSaver.from_conn_string(path).close()
    yield path


# -- expiry across hosts --------------------------------------------------------------------------
def test_an_expired_lease_from_another_host_is_taken_over(db: Path) -> None:
    write_lease(db, ELSEWHERE, time.time() - 1)  # its host crashed: nothing renews it
    with SqliteSaver.from_conn_string(db) as saver:
        assert graph(saver).invoke({"who": "here"}, config())["log"] == ["here"]
    assert lease_row(db) is None


def test_a_renewed_lease_from_another_host_is_respected_and_the_error_says_until_when(db: Path) -> None:
    expires_at = time.time() + 60
    write_lease(db, ELSEWHERE, expires_at)
    expected = rf"held by {ELSEWHERE}, lease expires at 20\d\d-.*unless renewed"
    with SqliteSaver.from_conn_string(db) as saver, pytest.raises(ThreadBusyError, match=expected):
        graph(saver).invoke({"who": "here"}, config())
    assert lease_row(db) == (ELSEWHERE, expires_at)  # untouched


def test_leases_written_before_expiry_existed_expire_after_30_seconds(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite"
    conn = sqlite3.connect(path)
    for sql in MIGRATIONS[0][2]:
        conn.execute(sql)
    conn.execute("CREATE TABLE tether_schema (version INTEGER PRIMARY KEY, description TEXT, applied_at TEXT)")
    conn.execute("INSERT INTO tether_schema VALUES (1, 'v1', '2026-01-01')")
    conn.execute("INSERT INTO threads VALUES (1, 'old', '', '2026-01-01')")
    conn.execute("INSERT INTO threads VALUES (2, 'new', '', '2026-01-01')")
    taken = time.time()
    for key, at in ((1, taken - 3600), (2, taken)):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + ".000+00:00"
        conn.execute("INSERT INTO thread_leases VALUES (?, ?, ?)", (key, ELSEWHERE, stamp))
    conn.commit()
    conn.close()
    with SqliteSaver.from_conn_string(path) as saver:
        assert saver.schema_version == SCHEMA_VERSION  # migrated past version 2, which added expires_at
        saver.acquire("old", "", run_owner())  # taken an hour ago by a version that never renewed it
        with pytest.raises(ThreadBusyError, match=ELSEWHERE):
            saver.acquire("new", "", run_owner())
    assert abs(lease_row(path, "new")[1] - (int(taken) + 30)) < 1  # type: ignore[index]


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "30", True])
def test_lease_ttl_is_validated(tmp_path: Path, bad: Any) -> None:
    with pytest.raises(CheckpointError, match="lease_ttl"):
        SqliteSaver.from_conn_string(tmp_path / "x.sqlite", lease_ttl=bad)


# -- heartbeat: a real second process ---------------------------------------------------------------
HOLDER = """
import sys, time
from pathlib import Path
from typing import TypedDict
from tether import END, START, StateGraph
from tether.checkpoint import SqliteSaver

class S(TypedDict, total=False):
    who: str

def long_model_call(s):
    Path(sys.argv[2]).write_text("in the node")
    time.sleep(120)
    return {}

saver = SqliteSaver.from_conn_string(sys.argv[1], lease_ttl=float(sys.argv[3]))
g = StateGraph(S)
g.add_node("work", long_model_call)
g.add_edge(START, "work")
g.add_edge("work", END)
g.compile(checkpointer=saver).invoke({"who": "child"}, {"configurable": {"thread_id": "t"}})
"""


def test_a_live_holder_keeps_its_lease_past_the_ttl_and_a_killed_one_loses_it_after_the_ttl(
    db: Path, tmp_path: Path
) -> None:
    ttl = 1.0
    script, ready = tmp_path / "holder.py", tmp_path / "ready"
    script.write_text(textwrap.dedent(HOLDER))
    proc = subprocess.Popen(
        [sys.executable, str(script), str(db), str(ready), str(ttl)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the holder never reached its node"
            time.sleep(0.05)
        first = lease_row(db)
        assert first is not None
        time.sleep(3 * ttl)  # three TTLs inside one node: only renewals keep the lease
        renewed = lease_row(db)
        assert renewed is not None and renewed[0] == first[0] and renewed[1] > first[1] + ttl
        with SqliteSaver.from_conn_string(db) as saver:
            with pytest.raises(ThreadBusyError, match=first[0]):
                saver.acquire("t", "", run_owner())
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30)
            # pretend it ran on another machine, so that its pid cannot tell us it is dead
            conn = sqlite3.connect(db)
            with conn:
                conn.execute("UPDATE thread_leases SET owner = ?", (ELSEWHERE,))
            conn.close()
            row = lease_row(db)
            assert row is not None
            expires_at = row[1]
            if time.time() < expires_at - 0.3:
                with pytest.raises(ThreadBusyError, match=ELSEWHERE):
                    saver.acquire("t", "", run_owner())
            mine = run_owner()
            deadline = time.monotonic() + ttl + 15
            while True:
                try:
                    saver.acquire("t", "", mine)
                    break
                except ThreadBusyError:
                    assert time.monotonic() < deadline, "the killed holder's lease never expired"
                    time.sleep(0.1)
            assert time.time() >= expires_at  # taken over only once expired
            assert lease_row(db) is not None and lease_row(db)[0] == mine  # type: ignore[index]
            saver.release("t", "", mine)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def test_the_heartbeat_stops_when_no_lease_is_held(db: Path) -> None:
    with SqliteSaver.from_conn_string(db, lease_ttl=0.3) as saver:
        owner = run_owner()
        saver.acquire("t", "", owner)
        assert any(t.name == "tether-lease-heartbeat" for t in threading.enumerate())
        saver.release("t", "", owner)
        deadline = time.monotonic() + 10
        while any(t.name == "tether-lease-heartbeat" for t in threading.enumerate()):
            assert time.monotonic() < deadline
            time.sleep(0.05)


# -- fencing ------------------------------------------------------------------------------------
def test_a_holder_whose_lease_was_taken_over_cannot_commit_over_the_new_holders_work(db: Path) -> None:
    entered, go_on = threading.Event(), threading.Event()

    def work(s: S) -> dict[str, Any]:
        if s["who"] == "A":
            entered.set()
            assert go_on.wait(30)
        return {"log": [s["who"]]}

    a_saver = SqliteSaver.from_conn_string(db, lease_ttl=0.5)
    b_saver = SqliteSaver.from_conn_string(db)
    outcome: dict[str, BaseException] = {}

    def run_a() -> None:
        try:
            graph(a_saver, work).invoke({"who": "A"}, config())
        except BaseException as exc:
            outcome["A"] = exc

    a_saver._leases.renew = lambda held: None  # type: ignore[method-assign]  # A is paused: no renewals
    runner = threading.Thread(target=run_a)
    runner.start()
    try:
        assert entered.wait(30)
        deadline = time.monotonic() + 20
        while True:  # B takes the thread once A's lease has expired
            try:
                assert graph(b_saver, work).invoke({"who": "B"}, config())["log"] == ["B"]
                break
            except ThreadBusyError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        b_history = [c.config["configurable"]["checkpoint_id"] for c in graph(b_saver).get_state_history(config())]
    finally:
        go_on.set()
        runner.join(30)
    error = outcome.get("A")
    assert isinstance(error, ThreadBusyError), error
    assert "'t' was taken by another run" in str(error) and "was not saved" in str(error)
    after = [c.config["configurable"]["checkpoint_id"] for c in graph(b_saver).get_state_history(config())]
    assert after == b_history  # nothing of A's after the takeover
    assert graph(b_saver).get_state(config()).values["log"] == ["B"]
    assert lease_row(db) is None  # B gave it back; A's release did not touch B's row either
    a_saver.close()
    b_saver.close()


def test_a_run_of_the_same_saver_keeps_its_thread_from_that_saver_even_past_its_expiry(db: Path) -> None:
    # the fence tells runs apart by thread within one saver, so that saver never lets two in at once
    with SqliteSaver.from_conn_string(db, lease_ttl=0.2) as saver:
        saver._leases.renew = lambda held: None  # type: ignore[method-assign]
        first = run_owner()
        saver.acquire("t", "", first)
        time.sleep(0.5)
        with pytest.raises(ThreadBusyError, match=first):
            saver.acquire("t", "", run_owner())
        saver.release("t", "", first)
        saver.acquire("t", "", run_owner())


# -- a release that fails after the run committed ----------------------------------------------------
def refuse_lease_deletes(saver: SqliteSaver) -> Callable[[], None]:
    """Make SQLite itself refuse to delete lease rows on the saver's lease connection (as a full
    disk or a locked database would make the delete fail); return the undo."""
    conn = saver._lease_conn

    def authorizer(action: int, table: str | None, *_: Any) -> int:
        if action == sqlite3.SQLITE_DELETE and table == "thread_leases":
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    conn.set_authorizer(authorizer)
    return lambda: conn.set_authorizer(None)


class ReleaseFails(InMemorySaver):
    """A store whose release raises, as any store's may when its database cannot be written."""

    def release(self, thread_id: str, checkpoint_ns: str, owner: str) -> None:
        super().release(thread_id, checkpoint_ns, owner)
        raise CheckpointError(f"ending a run on thread {thread_id!r}: database or disk is full")


def inputs_in_history(app: Any, thread_id: str = "t") -> int:
    return sum(1 for c in app.get_state_history(config(thread_id)) if c.metadata.get("source") == "input")


def assert_warned(caplog: pytest.LogCaptureFixture, times: int) -> None:
    warnings = [r for r in caplog.records if r.name == "tether" and "could not be given back" in r.getMessage()]
    assert len(warnings) == times, caplog.text


def test_a_failed_release_after_a_commit_does_not_fail_the_run_nor_block_the_thread(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tether")
    with SqliteSaver.from_conn_string(db) as saver:
        app = graph(saver)
        undo = refuse_lease_deletes(saver)
        assert app.invoke({"who": "first"}, config())["log"] == ["first"]  # committed: no error
        assert_warned(caplog, 1)
        assert inputs_in_history(app) == 1 and app.get_state(config()).values["log"] == ["first"]
        assert lease_row(db) is not None  # the row is left behind…
        # …but this process knows that run ended, so the next run takes the thread at once
        assert app.invoke({"who": "second"}, config())["log"] == ["first", "second"]
        assert_warned(caplog, 2)
        undo()
        app.invoke({"who": "third"}, config())
        assert inputs_in_history(app) == 3
    assert lease_row(db) is None


def test_a_lease_left_behind_by_a_failed_release_expires_for_other_processes(db: Path) -> None:
    with SqliteSaver.from_conn_string(db, lease_ttl=0.5) as saver:
        refuse_lease_deletes(saver)
        graph(saver).invoke({"who": "first"}, config())
        owner, expires_at = lease_row(db)  # type: ignore[misc]
        write_lease(db, owner.replace(owner.partition(":")[0], "another-host", 1), expires_at)
        time.sleep(1.5)  # no renewals for a run that ended
        assert lease_row(db)[1] == expires_at  # type: ignore[index]
    with SqliteSaver.from_conn_string(db) as other:
        assert graph(other).invoke({"who": "other"}, config())["log"] == ["first", "other"]


def test_a_failed_release_on_the_async_path(db: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tether")

    async def main() -> None:
        async with AsyncSqliteSaver.from_conn_string(db) as saver:
            app = graph(saver)
            refuse_lease_deletes(saver)
            assert (await app.ainvoke({"who": "first"}, config()))["log"] == ["first"]
            assert (await app.ainvoke({"who": "second"}, config()))["log"] == ["first", "second"]
            assert inputs_in_history(app) == 2

    asyncio.run(main())
    assert_warned(caplog, 2)


def test_a_failing_release_of_any_store_does_not_fail_invoke_stream_or_update_state(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="tether")
    app = graph(ReleaseFails())
    assert app.invoke({"who": "a"}, config())["log"] == ["a"]
    assert [c for c in app.stream({"who": "b"}, config())] == [{"work": {"log": ["b"]}}]
    app.update_state(config(), {"log": ["c"]})
    assert asyncio.run(app.ainvoke({"who": "d"}, config()))["log"] == ["a", "b", "c", "d"]
    assert_warned(caplog, 4)
    assert inputs_in_history(app) == 3


def test_a_run_that_fails_keeps_its_own_error_when_the_release_fails_too(caplog: pytest.LogCaptureFixture) -> None:
    def broken(s: S) -> dict[str, Any]:
        raise ValueError("the node's own error")

    caplog.set_level(logging.WARNING, logger="tether")
    with pytest.raises(ValueError, match="the node's own error"):
        graph(ReleaseFails(), broken).invoke({"who": "a"}, config())
    assert_warned(caplog, 1)


# -- PostgreSQL: the same release failure ------------------------------------------------------------
DISK_FULL = (
    "DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = 'disk_full',"
    " MESSAGE = 'could not extend file: No space left on device'; END $$"
)


def test_a_failed_unlock_after_a_commit_on_postgres(postgres_schema: str, caplog: pytest.LogCaptureFixture) -> None:
    from tether.checkpoint import PostgresSaver

    class UnlockFails(PostgresSaver):
        failing = True

        def _unlock_plan(self, key: int, owner: str, *, last: bool) -> Any:
            if self.failing:
                yield DISK_FULL, None, False
            return (yield from super()._unlock_plan(key, owner, last=last))

    caplog.set_level(logging.WARNING, logger="tether")
    with UnlockFails.from_conn_string(postgres_schema) as saver:
        app = graph(saver)
        assert app.invoke({"who": "first"}, config())["log"] == ["first"]
        assert_warned(caplog, 1)
        assert "No space left on device" in caplog.text
        assert inputs_in_history(app) == 1
        assert app.invoke({"who": "second"}, config())["log"] == ["first", "second"]  # same saver: not blocked
        with PostgresSaver.from_conn_string(postgres_schema) as other:  # another process: the lock was freed
            assert graph(other).invoke({"who": "other"}, config())["log"] == ["first", "second", "other"]
        saver.failing = False
        app.invoke({"who": "third"}, config())
        assert inputs_in_history(app) == 4
    assert_warned(caplog, 2)


def test_a_failed_unlock_after_a_commit_on_async_postgres(
    postgres_schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    from tether.checkpoint import AsyncPostgresSaver

    class UnlockFails(AsyncPostgresSaver):
        def _unlock_plan(self, key: int, owner: str, *, last: bool) -> Any:
            yield DISK_FULL, None, False
            return (yield from super()._unlock_plan(key, owner, last=last))

    caplog.set_level(logging.WARNING, logger="tether")

    async def main() -> None:
        async with UnlockFails.from_conn_string(postgres_schema) as saver:
            app = graph(saver)
            assert (await app.ainvoke({"who": "first"}, config()))["log"] == ["first"]
            assert (await app.ainvoke({"who": "second"}, config()))["log"] == ["first", "second"]
            async with AsyncPostgresSaver.from_conn_string(postgres_schema) as other:
                assert (await graph(other).ainvoke({"who": "other"}, config()))["log"] == ["first", "second", "other"]
            history = [c async for c in app.aget_state_history(config())]
            assert sum(1 for c in history if c.metadata["source"] == "input") == 3

    asyncio.run(main())
    assert_warned(caplog, 2)
