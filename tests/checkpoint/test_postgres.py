"""What is specific to the PostgreSQL store (the shared behaviour is in test_conformance.py).

Every test gets a schema of its own in the session's server (see tests/pg.py and conftest.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import operator
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from tests.checkpoint.test_conformance import chain_of, record
from tests.pg import sql
from tether import START, Command, StateGraph, interrupt
from tether.checkpoint import BaseCheckpointSaver, PendingWrite
from tether.checkpoint import _serde as serde
from tether.checkpoint._base import run_owner
from tether.errors import CheckpointError, SchemaVersionError, ThreadBusyError

try:
    import psycopg
    from psycopg_pool import ConnectionPool

    from tether.checkpoint import AsyncPostgresSaver, PostgresSaver
    from tether.checkpoint._postgres_schema import SCHEMA_VERSION
except ImportError:  # the postgres fixtures skip (or, in CI, fail) and say how to install it
    pass

ROOT = Path(__file__).parents[2]


class S(TypedDict, total=False):
    n: int
    log: Annotated[list[Any], operator.add]
    blob: Any


def cfg(thread: str = "t") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def two_steps() -> StateGraph:
    g = StateGraph(S)
    g.add_node("work", lambda s: {"log": ["w"], "n": s.get("n", 0) + 1})
    g.add_node("ask", lambda s: {"log": [interrupt({"q": "ok?"})]})
    g.add_edge(START, "work")
    g.add_edge("work", "ask")
    return g


@pytest.fixture
def pg(postgres_schema: str) -> Iterator[PostgresSaver]:
    with PostgresSaver.from_conn_string(postgres_schema) as saver:
        yield saver


# -- schema ----------------------------------------------------------------------------------------
def test_setup_is_idempotent_and_records_the_version(postgres_schema: str) -> None:
    for _ in range(3):
        with PostgresSaver.from_conn_string(postgres_schema) as saver:
            saver.setup()
            assert saver.schema_version == SCHEMA_VERSION
    assert sql(postgres_schema, "SELECT version FROM tether_schema ORDER BY version") == [
        (v,) for v in range(1, SCHEMA_VERSION + 1)
    ]
    tables = {r[0] for r in sql(postgres_schema, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
    assert tables == {"threads", "checkpoints", "snapshots", "pending_writes", "thread_leases", "tether_schema"}
    views = {r[0] for r in sql(postgres_schema, "SELECT viewname FROM pg_views WHERE schemaname = current_schema()")}
    assert views == {"thread_checkpoints", "checkpoint_writes", "waiting_interrupts"}


def _setup_in_a_process(conninfo: str, start: Any) -> None:
    start.wait(30)
    with PostgresSaver.from_conn_string(conninfo) as saver:
        saver.setup()


def test_setup_from_many_processes_and_threads_at_once(postgres_schema: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_setup_in_a_process, args=(postgres_schema, start)) for _ in range(4)]
    for p in procs:
        p.start()
    errors: list[BaseException] = []

    def in_a_thread() -> None:
        try:
            start.wait(30)
            saver = PostgresSaver(psycopg.connect(postgres_schema))
            saver.setup()
            saver.close()
            assert saver._conn is not None
            saver._conn.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=in_a_thread) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.3)  # let everyone reach the starting line
    start.set()
    for t in threads:
        t.join(60)
    for p in procs:
        p.join(60)
    assert errors == []
    assert [p.exitcode for p in procs] == [0] * 4
    assert sql(postgres_schema, "SELECT version FROM tether_schema ORDER BY version") == [
        (v,) for v in range(1, SCHEMA_VERSION + 1)
    ]


def test_a_newer_schema_is_refused(postgres_schema: str) -> None:
    PostgresSaver.from_conn_string(postgres_schema).close()
    sql(postgres_schema, "INSERT INTO tether_schema (version, description) VALUES (99, 'from the future')")
    with pytest.raises(SchemaVersionError, match="version 99"):
        PostgresSaver.from_conn_string(postgres_schema)
    with psycopg.connect(postgres_schema) as conn:
        saver = PostgresSaver(conn)  # the schema is checked on first use
        with pytest.raises(SchemaVersionError, match="upgrade Tether"):
            saver.get("t")


async def test_a_newer_schema_is_refused_by_the_async_saver(postgres_schema: str) -> None:
    PostgresSaver.from_conn_string(postgres_schema).close()
    sql(postgres_schema, "INSERT INTO tether_schema (version, description) VALUES (7, 'from the future')")
    with pytest.raises(SchemaVersionError, match="version 7"):
        async with AsyncPostgresSaver.from_conn_string(postgres_schema):
            pass


# -- reading it with plain SQL -----------------------------------------------------------------------
def test_tables_and_views_are_readable_with_plain_sql(pg: PostgresSaver, postgres_schema: str) -> None:
    app = two_steps().compile(checkpointer=pg)
    app.invoke({"n": 1}, {"configurable": {"thread_id": "quickstart"}, "metadata": {"user": "ada"}})
    steps = sql(
        postgres_schema,
        "SELECT step, source, metadata FROM thread_checkpoints WHERE thread_id = 'quickstart' ORDER BY checkpoint_id",
    )
    assert [(s, src) for s, src, _ in steps] == [(-1, "input"), (0, "loop"), (1, "loop")]
    assert steps[0][2] == {"user": "ada"}  # jsonb arrives as Python data
    assert sql(postgres_schema, "SELECT node, writes FROM checkpoint_writes WHERE step = 1") == [
        ("work", [["log", ["w"]], ["n", 2]])
    ]
    waiting = sql(postgres_schema, "SELECT thread_id, interrupts FROM waiting_interrupts")
    assert len(waiting) == 1 and waiting[0][0] == "quickstart"
    assert waiting[0][1][0]["value"] == {"q": "ok?"}
    # JSON columns are jsonb: queryable with jsonb operators
    types = dict(
        sql(
            postgres_schema,
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND data_type = 'jsonb'",
        )
    )
    for column in ("checkpoints.next", "checkpoints.writes", "checkpoints.metadata", "snapshots.state"):
        assert types[column] == "jsonb"
    assert types["pending_writes.value"] == "jsonb"
    assert sql(postgres_schema, "SELECT state -> 'reducers' ->> 'log' FROM snapshots") == [("_operator:add",)]
    # the queries docs/postgres.md shows
    assert sql(postgres_schema, "SELECT thread_id, interrupts -> 0 -> 'value' FROM waiting_interrupts") == [
        ("quickstart", {"q": "ok?"})
    ]
    assert sql(
        postgres_schema,
        "SELECT thread_id, step FROM thread_checkpoints WHERE metadata ->> 'user' = 'ada' ORDER BY step",
    ) == [
        ("quickstart", -1),
        ("quickstart", 0),
        ("quickstart", 1),
    ]
    snap = sql(
        postgres_schema,
        "SELECT created_at::timestamptz, state -> 'values' -> 'log'"
        " FROM snapshots JOIN checkpoints USING (thread, checkpoint_id)",
    )
    assert len(snap) == 1 and snap[0][1] == []
    # a thread id is stored once; the log refers to it by an integer key
    assert sql(postgres_schema, "SELECT count(*), min(id) FROM threads") == [(1, 1)]


def test_values_jsonb_cannot_hold_as_is_read_back_equal(pg: PostgresSaver) -> None:
    value = {
        "floats": [1e16, 1e300, 5e-324, 1.5e-10, -2.5e22, 0.1, 100.0, 1.7976931348623157e308],
        "ints": [10**16, -(2**63), 2**63 - 1, 2**70],
        "nul": "a\x00b\\u0000c\\\x00",
        "fffe": "x\ufffe0y\ufffe\ufffe\x00",
        "looks_like_numbers": '1e5 and "2E-3" \\\\1e+9',
        "keys": {"zebra": 1, "a": 2, "mm": {"1e3": 1e3}},
        "nested": [{"$t": "tuple", "v": [1, 2]}, (1.0e20, "\x00")],
    }
    encoded = serde.dumps(value)
    r = record("t", None, -1, source="input", snapshot=encoded, writes=encoded, metadata=encoded)
    pg.put(r)
    pg.put_pending("t", "", r.checkpoint_id, [PendingWrite(task_id="x", kind="result", value=encoded)])
    loaded = pg.get("t")
    assert loaded is not None
    for text in (loaded.record.writes, loaded.record.metadata, loaded.chain[0].snapshot, loaded.pending[0].value):
        assert text is not None
        back = serde.loads(text)
        assert back == value
        assert [type(x) for x in back["floats"]] == [float] * 8 and [type(x) for x in back["ints"]] == [int] * 4
    assert serde.loads(pg.get("t", "", r.checkpoint_id).record.next) == ["a"]  # type: ignore[union-attr]


def test_hand_written_json_reads_back_equal_too(pg: PostgresSaver) -> None:
    text = '["\\ufffe0", "\\uFFFE\\u0000", "\\\\ufffe", 1E+3, 2.5e-3, -0.0]'
    pg.put(record("t", None, -1, source="input", writes=text))
    loaded = pg.get("t")
    assert loaded is not None
    back = json.loads(loaded.record.writes)
    assert back == json.loads(text) == ["\ufffe0", "\ufffe\x00", "\\ufffe", 1000.0, 0.0025, 0.0]
    assert [type(x) for x in back[3:]] == [float] * 3  # -0.0 comes back as 0.0: jsonb numbers have no signed zero


# -- one run per thread --------------------------------------------------------------------------------
HOLDER = textwrap.dedent(
    """
    import sys, time
    from tether.checkpoint import PostgresSaver
    from tether.checkpoint._base import run_owner
    saver = PostgresSaver.from_conn_string(sys.argv[1])
    saver.acquire("shared", "", run_owner())
    print("holding", flush=True)
    time.sleep(120)
    """
)


@contextlib.contextmanager
def holder_process(conninfo: str) -> Iterator[subprocess.Popen[str]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, conninfo], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "holding", proc.stderr.read() if proc.stderr else line
        yield proc
    finally:
        proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def acquire_soon(saver: BaseCheckpointSaver, thread: str, owner: str, within: float = 10) -> None:
    """The server frees a dead client's locks as soon as it notices the connection is gone."""
    deadline = time.monotonic() + within
    while True:
        try:
            saver.acquire(thread, "", owner)
            return
        except ThreadBusyError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_lease_is_respected_across_processes_and_freed_when_the_holder_dies(
    pg: PostgresSaver, postgres_schema: str
) -> None:
    with holder_process(postgres_schema) as proc:
        with pytest.raises(ThreadBusyError, match=rf"'shared' already has a run in progress \(held by .*:{proc.pid}:"):
            pg.acquire("shared", "", run_owner())
        (owner,) = sql(postgres_schema, "SELECT owner FROM thread_leases")[0]
        assert f":{proc.pid}:" in owner
        pg.acquire("free", "", run_owner())  # other threads are free
        os.kill(proc.pid, signal.SIGKILL)  # a crashed run must not block the thread, and there is no expiry to wait for
        proc.wait()
        mine = run_owner()
        acquire_soon(pg, "shared", mine)
    assert (mine,) in sql(postgres_schema, "SELECT owner FROM thread_leases")
    pg.release("shared", "", mine)
    assert (mine,) not in sql(postgres_schema, "SELECT owner FROM thread_leases")


def test_lease_is_freed_when_the_holders_connection_is_cut(pg: PostgresSaver, postgres_schema: str) -> None:
    first = run_owner()
    pg.acquire("t", "", first)
    with PostgresSaver.from_conn_string(postgres_schema) as other:
        with pytest.raises(ThreadBusyError, match=first):
            other.acquire("t", "", run_owner())
        cut_lease_connections(postgres_schema)  # the server ends the holder's session and frees its lock
        acquire_soon(other, "t", run_owner())
    pg.release("t", "", first)  # the lock died with its connection: releasing is quiet
    pg.acquire("u", "", first)  # and the saver takes a fresh lease connection
    pg.release("u", "", first)


def cut_lease_connections(conninfo: str) -> None:
    """What a network failure does to the runs holding threads: their lease sessions end."""
    sql(
        conninfo,
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
        " AND classid = 'threads'::regclass::oid AND granted",
    )


def test_a_run_that_lost_its_thread_cannot_commit(pg: PostgresSaver, postgres_schema: str) -> None:
    (root,) = chain_of(pg, 1)
    stale = run_owner()
    pg.acquire("t", "", stale)
    cut_lease_connections(postgres_schema)
    with PostgresSaver.from_conn_string(postgres_schema) as other:
        newer = run_owner()
        acquire_soon(other, "t", newer)  # the thread is free again, and another run takes it
        with pytest.raises(ThreadBusyError, match=rf"'t' was taken by another run \(held by {newer}\)"):
            pg.put(record("t", root.checkpoint_id, 0))
        with pytest.raises(ThreadBusyError, match="was not saved"):
            pg.put_pending("t", "", root.checkpoint_id, [PendingWrite(task_id="a", kind="result", value="1")])
        assert [r.checkpoint_id for r in pg.list("t")] == [root.checkpoint_id]  # nothing of the stale run's
        assert pg.pending("t", "", root.checkpoint_id) == []
        other.put(record("t", root.checkpoint_id, 0))  # while the run holding the thread commits
        other.release("t", "", newer)
    pg.release("t", "", stale)  # quiet: its lock went with its connection


def test_a_run_that_lost_its_lease_but_not_its_thread_goes_on(pg: PostgresSaver, postgres_schema: str) -> None:
    (root,) = chain_of(pg, 1)
    owner = run_owner()
    pg.acquire("t", "", owner)
    cut_lease_connections(postgres_schema)
    pg.put(record("t", root.checkpoint_id, 0))  # nobody else took the thread: nothing to refuse
    pg.acquire("u", "", run_owner())  # a fresh lease connection takes "t" back along with "u"
    with PostgresSaver.from_conn_string(postgres_schema) as other, pytest.raises(ThreadBusyError):
        other.acquire("t", "", run_owner())
    pg.release("t", "", owner)


def test_a_graph_run_that_lost_its_thread_stops_without_saving(pg: PostgresSaver, postgres_schema: str) -> None:
    entered, go_on = threading.Event(), threading.Event()

    def slow(s: S) -> dict[str, Any]:
        entered.set()
        go_on.wait(10)
        return {"log": ["stale"]}

    g = StateGraph(S)
    g.add_node("slow", slow)
    g.add_edge(START, "slow")
    errors: list[BaseException] = []

    def run() -> None:
        try:
            g.compile(checkpointer=pg).invoke({"n": 1}, cfg())
        except BaseException as exc:
            errors.append(exc)

    runner = threading.Thread(target=run)
    runner.start()
    try:
        assert entered.wait(10)
        cut_lease_connections(postgres_schema)
        with PostgresSaver.from_conn_string(postgres_schema) as other:
            newer = run_owner()
            acquire_soon(other, "t", newer)
            go_on.set()
            runner.join(10)
            assert len(errors) == 1 and isinstance(errors[0], ThreadBusyError)
            state = g.compile(checkpointer=other).get_state(cfg())
            assert state.values == {"n": 1, "log": []} and state.next == ("slow",)  # the stale step left no trace
            other.release("t", "", newer)
    finally:
        go_on.set()
        runner.join()


def test_leases_use_one_connection_and_give_it_back(postgres_schema: str) -> None:
    with PostgresSaver.from_conn_string(postgres_schema, min_size=1, max_size=2) as saver:
        owners = [run_owner() for _ in range(20)]
        for i, owner in enumerate(owners):  # more runs at once than the pool has connections
            saver.acquire(f"t{i}", "", owner)
        chain_of(saver, 3)  # and checkpoints still commit
        locks = sql(postgres_schema, "SELECT count(DISTINCT pid), count(*) FROM pg_locks WHERE locktype = 'advisory'")
        assert locks == [(1, 20)]
        live = sql(  # the query docs/postgres.md gives for live leases
            postgres_schema,
            """SELECT t.thread_id, l.owner, l.acquired_at
               FROM thread_leases l JOIN threads t ON t.id = l.thread
               JOIN pg_locks k ON k.locktype = 'advisory' AND k.granted AND k.objsubid = 2
                AND k.classid = 'threads'::regclass::oid AND k.objid::bigint = l.thread % 4294967296""",
        )
        assert sorted((r[0], r[1]) for r in live) == sorted((f"t{i}", o) for i, o in enumerate(owners))
        for i, owner in enumerate(owners):
            saver.release(f"t{i}", "", owner)
        assert sql(postgres_schema, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == [(0,)]
        assert sql(postgres_schema, "SELECT count(*) FROM thread_leases") == [(0,)]


def test_closing_a_saver_frees_its_threads(postgres_schema: str) -> None:
    saver = PostgresSaver.from_conn_string(postgres_schema)
    saver.acquire("t", "", run_owner())
    saver.close()
    with PostgresSaver.from_conn_string(postgres_schema) as other:
        other.acquire("t", "", run_owner())


def test_a_graph_run_holds_its_thread_against_another_process(pg: PostgresSaver, postgres_schema: str) -> None:
    entered, release = threading.Event(), threading.Event()

    def slow(s: S) -> dict[str, Any]:
        entered.set()
        release.wait(10)
        return {"log": ["slow"]}

    g = StateGraph(S)
    g.add_node("slow", slow)
    g.add_edge(START, "slow")
    app = g.compile(checkpointer=pg)
    runner = threading.Thread(target=lambda: app.invoke({"n": 1}, cfg()))
    runner.start()
    try:
        assert entered.wait(10)
        with (
            PostgresSaver.from_conn_string(postgres_schema) as elsewhere,  # another process, as far as PG knows
            pytest.raises(ThreadBusyError, match="'t' already has a run in progress"),
        ):
            g.compile(checkpointer=elsewhere).invoke({"n": 2}, cfg())
    finally:
        release.set()
        runner.join()
    assert app.invoke({"n": 3}, cfg())["log"] == ["slow", "slow"]


# -- connections --------------------------------------------------------------------------------------
def test_a_single_connection_or_a_users_pool_works(postgres_schema: str) -> None:
    with psycopg.connect(postgres_schema) as conn:  # not autocommit: the saver switches it
        saver = PostgresSaver(conn)
        chain_of(saver, 3)
        owner = run_owner()
        saver.acquire("t", "", owner)
        with PostgresSaver.from_conn_string(postgres_schema) as other, pytest.raises(ThreadBusyError):
            other.acquire("t", "", run_owner())
        saver.release("t", "", owner)
        saver.close()
        assert not conn.closed  # the caller's connection stays the caller's
    with ConnectionPool(postgres_schema, min_size=1, max_size=3, open=True) as pool:  # not autocommit either
        saver = PostgresSaver(pool)
        assert [len(list(saver.list("t")))] == [3]
        chain_of(saver, 2, thread="u")
        owner = run_owner()
        saver.acquire("u", "", owner)
        saver.release("u", "", owner)
        saver.close()
        assert not pool.closed
        with pool.connection() as conn:
            assert conn.execute("SELECT count(*) FROM checkpoints").fetchone() == (5,)


def test_a_connection_made_for_langgraphs_saver_works(postgres_schema: str) -> None:
    """LangGraph's docs open connections with row_factory=dict_row; a port keeps that line."""
    from psycopg.rows import dict_row

    with psycopg.connect(postgres_schema, autocommit=True, prepare_threshold=0, row_factory=dict_row) as conn:
        saver = PostgresSaver(conn)
        saver.setup()
        app = two_steps().compile(checkpointer=saver)
        app.invoke({"log": []}, cfg())
        assert app.get_state(cfg()).values == {"log": ["w"], "n": 1}
        assert app.get_state(cfg()).interrupts[0].value == {"q": "ok?"}
        app.invoke(Command(resume="yes"), cfg())
        assert app.get_state(cfg()).values == {"log": ["w", "yes"], "n": 1}
        owner = run_owner()
        saver.acquire("held", "", owner)
        with pytest.raises(ThreadBusyError):
            saver.acquire("held", "", run_owner())
        saver.release("held", "", owner)


async def test_an_async_connection_made_for_langgraphs_saver_works(postgres_schema: str) -> None:
    from psycopg.rows import dict_row

    conn = await psycopg.AsyncConnection.connect(
        postgres_schema, autocommit=True, prepare_threshold=0, row_factory=dict_row
    )
    async with conn:
        saver = AsyncPostgresSaver(conn)
        await saver.setup()
        app = two_steps().compile(checkpointer=saver)
        await app.ainvoke({"log": []}, cfg())
        await app.ainvoke(Command(resume="yes"), cfg())
        assert (await app.aget_state(cfg())).values == {"log": ["w", "yes"], "n": 1}


def test_errors_name_what_was_being_done(postgres_schema: str) -> None:
    with pytest.raises(CheckpointError, match=r"cannot open PostgreSQL database 127\.0\.0\.1:1/nowhere") as info:
        PostgresSaver.from_conn_string("postgresql://postgres@127.0.0.1:1/nowhere?connect_timeout=2")
    assert isinstance(info.value.__cause__, psycopg.Error)
    saver = PostgresSaver.from_conn_string(postgres_schema)
    saver.get("t")
    saver.close()
    with pytest.raises(CheckpointError, match="PostgreSQL error while loading thread 't'") as info:
        saver.get("t")
    assert isinstance(info.value.__cause__, psycopg.Error)
    with PostgresSaver.from_conn_string(postgres_schema) as saver:
        r = record("t", None, -1, source="input")
        saver.put(r)
        with pytest.raises(CheckpointError, match=r"while committing a checkpoint of thread 't'.*duplicate key"):
            saver.put(r)
        saver.put(record("t", r.checkpoint_id, 0))  # the failed transaction left the pool's connection usable
    with pytest.raises(CheckpointError, match="max_size"):
        PostgresSaver.from_conn_string(postgres_schema, max_size=1)


def test_importing_tether_does_not_import_psycopg_and_a_missing_driver_says_what_to_install() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    code = "import sys, tether, tether.checkpoint; print('psycopg' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.strip() == "False"
    code = "import sys; sys.modules['psycopg'] = None\nfrom tether.checkpoint import PostgresSaver"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode != 0 and "pip install 'tether[postgres]'" in proc.stderr


# -- asyncio ------------------------------------------------------------------------------------------------
async def test_async_saver_runs_a_graph_end_to_end(postgres_schema: str) -> None:
    async with AsyncPostgresSaver.from_conn_string(postgres_schema) as saver:
        app = two_steps().compile(checkpointer=saver)
        out = await app.ainvoke({"n": 1}, cfg())
        assert out["log"] == ["w"] and out["__interrupt__"][0].value == {"q": "ok?"}
        state = await app.aget_state(cfg())  # runs the saver's plain methods from a worker thread
        assert state.values == {"n": 2, "log": ["w"]} and state.next == ("ask",)
        assert state.interrupts[0].value == {"q": "ok?"}
        out = await app.ainvoke(Command(resume="yes"), cfg())
        assert out == {"n": 2, "log": ["w", "yes"]}
        history = [s async for s in app.aget_state_history(cfg())]
        assert [h.metadata["step"] for h in history] == [2, 1, 0, -1]  # type: ignore[index]
        assert history[0].values == {"n": 2, "log": ["w", "yes"]}
        await app.aupdate_state(cfg(), {"log": ["edited"]}, as_node="ask")
        assert (await app.aget_state(cfg())).values["log"] == ["w", "yes", "edited"]
        summaries = await saver.athreads()
        assert [(t.thread_id, t.checkpoints) for t in summaries] == [("t", 5)]
    assert sql(postgres_schema, "SELECT count(*) FROM thread_leases") == [(0,)]


async def test_async_saver_protocol(postgres_schema: str) -> None:
    saver = AsyncPostgresSaver.from_conn_string(postgres_schema)  # opens on first use
    try:
        root = record("t", None, -1, source="input", snapshot='{"values": {}}')
        step = record("t", root.checkpoint_id, 0)
        await saver.aput_many([root, step])
        loaded = await saver.aget("t")
        assert loaded is not None and [r.checkpoint_id for r in loaded.chain] == [
            root.checkpoint_id,
            step.checkpoint_id,
        ]
        assert [r.checkpoint_id for r in await saver.alist("t")] == [step.checkpoint_id, root.checkpoint_id]
        await saver.aput_pending("t", "", step.checkpoint_id, [PendingWrite(task_id="a", kind="result", value="{}")])
        assert len(await saver.apending("t", "", step.checkpoint_id)) == 1
        child = record("t", step.checkpoint_id, 1)
        await saver.aput(child)
        assert await saver.apending("t", "", step.checkpoint_id) == []
        assert (await saver.afirst_child("t", "", step.checkpoint_id)).checkpoint_id == child.checkpoint_id  # type: ignore[union-attr]
        first, second = run_owner(), run_owner()
        await saver.aacquire("t", "", first)
        with pytest.raises(ThreadBusyError):
            await saver.aacquire("t", "", second)
        other = PostgresSaver.from_conn_string(postgres_schema)
        with pytest.raises(ThreadBusyError, match=first):
            other.acquire("t", "", second)
        await saver.arelease("t", "", first)
        other.acquire("t", "", second)
        other.close()
        with pytest.raises(CheckpointError, match="await the a… method"):
            saver.get("t")  # a plain call on the event loop would block it
        assert await asyncio.to_thread(lambda: saver.get("t").record.checkpoint_id) == child.checkpoint_id  # type: ignore[union-attr]
        await saver.adelete_thread("t")
        assert await saver.aget("t") is None
    finally:
        await saver.aclose()


async def test_many_concurrent_async_runs_share_a_small_pool(postgres_schema: str) -> None:
    async with AsyncPostgresSaver.from_conn_string(postgres_schema, max_size=3) as saver:
        app = two_steps().compile(checkpointer=saver)
        outs = await app.abatch([{"n": i} for i in range(30)], [cfg(f"t{i}") for i in range(30)])
        assert sorted(o["n"] for o in outs) == list(range(1, 31))
        assert len(await saver.athreads()) == 30


def test_async_saver_plain_methods_need_its_loop(postgres_schema: str) -> None:
    saver = AsyncPostgresSaver.from_conn_string(postgres_schema)
    with pytest.raises(CheckpointError, match="use the async methods"):
        saver.get("t")


# -- the conformance suite, over the async saver's plain methods ---------------------------------------------
@pytest.fixture
def async_saver_on_its_loop(postgres_schema: str) -> Iterator[AsyncPostgresSaver]:
    """An AsyncPostgresSaver whose event loop runs in another thread, so its plain methods work
    (as when ``graph.aget_state`` calls them from a worker thread)."""
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()

    async def make() -> AsyncPostgresSaver:
        saver = AsyncPostgresSaver.from_conn_string(postgres_schema)
        await saver.__aenter__()
        return saver

    saver = asyncio.run_coroutine_threadsafe(make(), loop).result(30)
    try:
        yield saver
    finally:
        asyncio.run_coroutine_threadsafe(saver.aclose(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        runner.join(10)
        loop.close()


def _sync_conformance_tests() -> list[Any]:
    from tests.checkpoint import test_conformance

    return [
        f
        for name, f in sorted(vars(test_conformance).items())
        if name.startswith("test_") and not asyncio.iscoroutinefunction(f)
    ]


@pytest.mark.parametrize("check", _sync_conformance_tests(), ids=lambda f: f.__name__)
def test_async_saver_passes_the_conformance_suite(check: Any, async_saver_on_its_loop: AsyncPostgresSaver) -> None:
    check(async_saver_on_its_loop)
