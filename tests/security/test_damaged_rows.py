"""Damaged stored rows (red-team issue 12, items 3 and 7), on SQLite and PostgreSQL.

Each case damages "main"'s rows with raw SQL, as a person with ``sqlite3``/``psql`` (or a bad
restore) could, then runs every reader. A reader that reads the damaged value must raise
``CorruptCheckpointError`` naming the thread, the checkpoint and the column; the others return
as before; nothing raises a raw exception, hangs, grows without bound or writes; the thread
"other" in the same database stays readable; ``tether`` prints one line and exits non-zero.
"""

from __future__ import annotations

import threading
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.security.damage import (
    CLI_COMMANDS,
    MAIN,
    READERS,
    Backend,
    cli,
    other_thread,
    pg_url,
    populate,
    resume,
)
from tether.errors import CorruptCheckpointError, SchemaVersionError, TetherError

WATCHDOG_S = 30  # generous: a shared, noisy machine; a hang (the defect) never ends
MEMORY_BOUND = 50 * 1024 * 1024


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A database holding "main" (paused on an interrupt, a sibling's result pending) and "other"."""
    if request.param == "sqlite":
        b = Backend("sqlite", str(tmp_path / "damaged.sqlite"))
    else:
        conninfo = request.getfixturevalue("postgres_schema")
        b = Backend("postgres", pg_url(conninfo), conninfo)
    saver = b.open()
    try:
        populate(saver)
    finally:
        saver.close()
    yield b


@dataclass
class Ctx:
    ids: list[str]  # "main"'s checkpoints, oldest first: ids[0] is the root, ids[4] a snapshot
    key: int

    @property
    def head(self) -> str:
        return self.ids[-1]

    @property
    def snap(self) -> str:
        return self.ids[4]


def context(backend: Backend) -> Ctx:
    ids, snap = backend.chain_ids()
    assert len(ids) == 8 and snap == ids[4], "the fixture thread changed shape: update the cases"
    return Ctx(ids, backend.key())


def watched(fn: Callable[[], Any]) -> tuple[str, Any]:
    """Run ``fn`` in a thread: ("ok", result) or ("raised", exception); fail on a hang or on unbounded memory."""
    out: list[tuple[str, Any]] = []

    def work() -> None:
        try:
            out.append(("ok", fn()))
        except BaseException as exc:  # checked by the caller
            out.append(("raised", exc))

    tracemalloc.start()
    try:
        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        worker.join(WATCHDOG_S)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert not worker.is_alive(), f"reader still running after {WATCHDOG_S} s: it hangs"
    assert peak < MEMORY_BOUND, f"reader allocated {peak / 1e6:.0f} MB"
    return out[0]


def read_all(backend: Backend, ids: list[str], *, with_resume: bool = True) -> dict[str, tuple[str, Any]]:
    """Every reader (then invoke-resume, which writes), each under the watchdog; only Tether errors may escape."""
    results: dict[str, tuple[str, Any]] = {}
    saver = backend.open()
    try:
        for name, (_, reader) in READERS.items():
            results[name] = watched(lambda reader=reader: reader(saver, ids))  # type: ignore[misc]
        if with_resume:
            results["resume"] = watched(lambda: resume(saver, ids))
    finally:
        saver.close()
    for name, (outcome, value) in results.items():
        if outcome == "raised":
            assert isinstance(value, TetherError), f"{name} raised a raw {type(value).__name__}: {value!r}"
    return results


def assert_names(exc: BaseException, column: str, checkpoint: object) -> None:
    assert isinstance(exc, CorruptCheckpointError), f"{type(exc).__name__}: {exc}"
    assert exc.thread_id == MAIN
    assert exc.column == column, str(exc)
    assert exc.checkpoint_id == checkpoint, str(exc)
    assert MAIN in str(exc) and column in str(exc) and repr(checkpoint) in str(exc)


def assert_cli_reports(backend: Backend, *, must_fail: set[str]) -> None:
    for command in CLI_COMMANDS:
        result = cli(backend, *command)
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            f"tether {command[0]}: {result.exception!r}"
        )
        assert "Traceback" not in result.output
        if command[0] in must_fail:
            assert result.exit_code != 0, f"tether {command[0]} read a damaged row and exited 0"
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr


GRAPH = {"get_state", "get_state_history", "read_state", "resume"}
HEAD_ROW = {"saver.get", "saver.list", "saver.threads"} | GRAPH  # every reader that reads the newest row


# -- item 3: parent links that loop or lead nowhere ---------------------------------------------------
CYCLES: dict[str, Callable[[Ctx], list[str]]] = {
    # the newest checkpoint is its own parent
    "self": lambda c: [f"UPDATE checkpoints SET parent_id = checkpoint_id WHERE checkpoint_id = '{c.head}'"],
    # A -> B -> A inside the key range the fast path reads (after the snapshot)
    "pair": lambda c: [f"UPDATE checkpoints SET parent_id = '{c.head}' WHERE checkpoint_id = '{c.ids[5]}'"],
    # no snapshot at all: the recursive SQL walk meets the loop
    "sql walk": lambda c: [
        "DELETE FROM snapshots",
        f"UPDATE checkpoints SET parent_id = '{c.head}' WHERE checkpoint_id = '{c.ids[2]}'",
    ],
}


@pytest.mark.parametrize("shape", list(CYCLES))
def test_parent_cycle_fails_promptly_in_every_reader(backend: Backend, shape: str) -> None:
    c = context(backend)
    for statement in CYCLES[shape](c):
        backend.sql(statement)
    in_cycle = {c.head} if shape == "self" else set(c.ids[5 if shape == "pair" else 2 :])
    results = read_all(backend, c.ids)
    for name in ("saver.get", *sorted(GRAPH)):
        outcome, exc = results[name]
        assert outcome == "raised", f"{name} returned {exc!r} from a cycle"
        assert isinstance(exc, CorruptCheckpointError) and exc.column == "checkpoints.parent_id"
        assert exc.thread_id == MAIN and exc.checkpoint_id in in_cycle, str(exc)
        assert "cycle" in str(exc)
    assert results["saver.list"][0] == "ok" and len(results["saver.list"][1]) == 8  # listing follows no links
    assert_cli_reports(backend, must_fail={"show"})


def test_missing_parent_names_the_parent_and_its_child(backend: Backend) -> None:
    c = context(backend)
    backend.sql(f"UPDATE checkpoints SET parent_id = 'no-such-parent' WHERE checkpoint_id = '{c.ids[6]}'")
    results = read_all(backend, c.ids)
    for name in ("saver.get", *sorted(GRAPH)):
        outcome, exc = results[name]
        assert outcome == "raised", f"{name} rebuilt a state from a chain with a missing parent: {exc!r}"
        assert_names(exc, "checkpoints.parent_id", c.ids[6])
        assert "'no-such-parent'" in str(exc) and "not stored" in str(exc)
    assert_cli_reports(backend, must_fail={"show"})


def test_parent_cut_mid_history_is_refused_not_rebuilt_without_its_past(backend: Backend) -> None:
    """A NULL parent on a checkpoint without a snapshot made the state lose every earlier key."""
    c = context(backend)
    backend.sql(f"UPDATE checkpoints SET parent_id = NULL WHERE checkpoint_id = '{c.ids[6]}'")
    results = read_all(backend, c.ids)
    for name in sorted(GRAPH):
        outcome, exc = results[name]
        assert outcome == "raised", f"{name} returned a state rebuilt without its past: {exc!r}"
        assert_names(exc, "checkpoints.parent_id", c.ids[6])


def test_parent_cut_on_a_snapshot_loses_nothing(backend: Backend) -> None:
    """The legitimate shape: a snapshot bounds the chain, so its parent link is not needed to read."""
    c = context(backend)
    before = read_all(backend, c.ids, with_resume=False)
    backend.sql(f"UPDATE checkpoints SET parent_id = NULL WHERE checkpoint_id = '{c.snap}'")
    after = read_all(backend, c.ids)
    for name in ("get_state", "read_state"):
        assert after[name] == before[name] == ("ok", before[name][1])
    assert after["resume"][0] == "ok" and after["resume"][1]["answer"] == "yes"


# -- item 7: damaged columns --------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    statements: Callable[[Ctx], list[str]]
    column: str
    checkpoint: Callable[[Ctx], object]
    must_raise: frozenset[str]
    sqlite_only: bool = False  # PostgreSQL's column types refuse this damage outright


def _on_head(assignment: str) -> Callable[[Ctx], list[str]]:
    return lambda c: [f"UPDATE checkpoints SET {assignment} WHERE checkpoint_id = '{c.head}'"]


def _on_snapshot(assignment: str) -> Callable[[Ctx], list[str]]:
    return lambda c: [f"UPDATE snapshots SET {assignment} WHERE checkpoint_id = '{c.snap}'"]


def _on_pending(kind: str, assignment: str) -> Callable[[Ctx], list[str]]:
    return lambda c: [
        f"UPDATE pending_writes SET {assignment} WHERE thread = {c.key} AND checkpoint_id = '{c.head}'"
        f" AND kind = '{kind}'"
    ]


def _head(c: Ctx) -> object:
    return c.head


def _snap(c: Ctx) -> object:
    return c.snap


DEEP = "[" * 1100 + "]" * 1100  # deeper than any JSON reader should follow
PENDING_ROW = frozenset({"saver.get", "saver.pending", "saver.threads", "get_state", "get_state_history", "resume"})
CASES: dict[str, Case] = {
    "step is text": Case(_on_head("step = 'x'"), "checkpoints.step", _head, frozenset(HEAD_ROW), sqlite_only=True),
    "step is a float": Case(_on_head("step = 1.5"), "checkpoints.step", _head, frozenset(HEAD_ROW), sqlite_only=True),
    "checkpoint_id is a blob": Case(
        _on_head("checkpoint_id = X'00ff'"),
        "checkpoints.checkpoint_id",
        lambda c: b"\x00\xff",
        # listing pages by id: a blob id sorts after every text id and is not listed
        frozenset({"saver.get", "saver.threads", "get_state", "read_state", "resume"}),
        sqlite_only=True,
    ),
    "created_at is a blob": Case(
        _on_head("created_at = X'00'"), "checkpoints.created_at", _head, frozenset(HEAD_ROW), sqlite_only=True
    ),
    "source is unknown": Case(_on_head("source = 'bogus'"), "checkpoints.source", _head, frozenset(HEAD_ROW)),
    "next is truncated JSON": Case(
        _on_head("next = substr(next, 1, 5)"), "checkpoints.next", _head, frozenset(GRAPH), sqlite_only=True
    ),
    "next is an object": Case(_on_head("""next = '{"a": 1}'"""), "checkpoints.next", _head, frozenset(GRAPH)),
    "next has a number for a task": Case(_on_head("next = '[1]'"), "checkpoints.next", _head, frozenset(GRAPH)),
    "writes is an object": Case(_on_head("""writes = '{"x": 1}'"""), "checkpoints.writes", _head, frozenset(GRAPH)),
    "writes pair has a number key": Case(
        _on_head("""writes = '[{"node": "side", "writes": [[1, 2]]}]'"""),
        "checkpoints.writes",
        _head,
        frozenset(GRAPH),
    ),
    "writes does not fit the reducer": Case(
        _on_head("""writes = '[{"node": "side", "writes": [["log", 5]]}]'"""),
        "checkpoints.writes",
        _head,
        frozenset(GRAPH),
    ),
    "writes is a huge number": Case(_on_head("writes = '1e400'"), "checkpoints.writes", _head, frozenset(GRAPH)),
    "writes nests too deep": Case(_on_head(f"writes = '{DEEP}'"), "checkpoints.writes", _head, frozenset(GRAPH)),
    "writes is a blob": Case(
        _on_head("writes = X'5b5d'"), "checkpoints.writes", _head, frozenset(HEAD_ROW), sqlite_only=True
    ),
    "metadata is a list": Case(_on_head("metadata = '[1]'"), "checkpoints.metadata", _head, frozenset(GRAPH)),
    "metadata is an integer": Case(
        _on_head("metadata = 7"), "checkpoints.metadata", _head, frozenset(GRAPH), sqlite_only=True
    ),
    "snapshot is a list": Case(_on_snapshot("state = '[1]'"), "snapshots.state", _snap, frozenset(GRAPH)),
    "snapshot values is a list": Case(
        _on_snapshot("""state = '{"values": [1]}'"""), "snapshots.state", _snap, frozenset(GRAPH)
    ),
    "snapshot is a blob": Case(
        _on_snapshot("state = X'7b7d'"),
        "snapshots.state",
        _snap,
        frozenset({"saver.get", *GRAPH}),
        sqlite_only=True,
    ),
    "pending kind is unknown": Case(
        _on_pending("interrupt", "kind = 'bogus'"), "pending_writes.kind", _head, PENDING_ROW | {"read_state"}
    ),
    "pending task_id is a blob": Case(
        _on_pending("interrupt", "task_id = X'00'"),
        "pending_writes.task_id",
        _head,
        PENDING_ROW | {"read_state"},
        sqlite_only=True,
    ),
    "interrupt value is truncated": Case(
        _on_pending("interrupt", "value = '[{'"),
        "pending_writes.value",
        _head,
        frozenset({"get_state", "get_state_history", "read_state", "resume"}),
        sqlite_only=True,
    ),
    "interrupt value has no id": Case(
        _on_pending("interrupt", """value = '[{"value": 1}]'"""),
        "pending_writes.value",
        _head,
        frozenset({"get_state", "get_state_history", "read_state", "resume"}),
    ),
    "result value has writes of the wrong shape": Case(
        _on_pending("result", """value = '{"writes": 5, "goto": []}'"""),
        "pending_writes.value",
        _head,
        frozenset({"get_state", "get_state_history", "resume"}),
    ),
    "next names a node the graph lacks": Case(
        _on_head("""next = '["ghost"]'"""), "checkpoints.next", _head, frozenset({"resume"})
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_damaged_column_fails_as_one_error_naming_it(backend: Backend, case: str) -> None:
    spec = CASES[case]
    c = context(backend)
    if spec.sqlite_only and backend.name != "sqlite":
        # PostgreSQL's column types refuse the value, or store it as valid text (X'00' is a bit
        # string there): either way nothing Tether cannot read; reading must still go well
        import psycopg

        try:
            for statement in spec.statements(c):
                backend.sql(statement)
        except psycopg.Error:
            return
        read_all(backend, c.ids)
        return
    other_before = _read_other(backend)
    for statement in spec.statements(c):
        backend.sql(statement)
    damaged = backend.dump()
    results = read_all(backend, c.ids)
    for name in sorted(spec.must_raise):
        outcome, exc = results[name]
        assert outcome == "raised", f"{name} read the damaged {spec.column} and returned {exc!r}"
        assert_names(exc, spec.column, spec.checkpoint(c))
    if results["resume"][0] == "raised":
        assert backend.dump() == damaged, "a failed read changed the database"
    assert _read_other(backend) == other_before, "damage to one thread broke another"
    cli_must_fail = {"show"} if spec.must_raise & {"read_state"} else set()
    assert_cli_reports(backend, must_fail=cli_must_fail)


def _read_other(backend: Backend) -> Any:
    saver = backend.open()
    try:
        return other_thread(saver)
    finally:
        saver.close()


def test_undamaged_database_reads_and_legitimate_nulls_are_fine(backend: Backend) -> None:
    """The checks refuse only what Tether never writes: NULL metadata and a root without parent are normal."""
    c = context(backend)
    before = read_all(backend, c.ids, with_resume=False)
    assert all(outcome == "ok" for outcome, _ in before.values()), before
    backend.sql(f"UPDATE checkpoints SET metadata = NULL WHERE thread = {c.key}")
    after = read_all(backend, c.ids)
    for name in ("get_state", "get_state_history", "read_state"):
        assert after[name] == before[name]
    assert after["resume"][0] == "ok" and after["resume"][1]["answer"] == "yes"


def test_a_future_or_damaged_schema_version_is_refused_on_open(backend: Backend) -> None:
    backend.sql("UPDATE tether_schema SET version = 99 WHERE version = (SELECT max(version) FROM tether_schema)")
    with pytest.raises(SchemaVersionError):
        backend.open()
    result = cli(backend, "threads")
    assert result.exit_code != 0 and len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize("damage", ["SET version = 0", "SET version = -3"])
def test_a_schema_table_with_gaps_is_refused_not_migrated_again(backend: Backend, damage: str) -> None:
    """Found by the fuzz: the newest version row edited to 0 made opening re-run that migration."""
    backend.sql(f"UPDATE tether_schema {damage} WHERE version = (SELECT max(version) FROM tether_schema)")
    before = backend.dump()
    with pytest.raises(SchemaVersionError, match="tether_schema is damaged"):
        backend.open()
    assert backend.dump() == before
    result = cli(backend, "threads")
    assert result.exit_code != 0 and "tether_schema is damaged" in result.stderr, result.stderr


def test_in_memory_store_detects_cycles_and_missing_parents_too() -> None:
    from tether.checkpoint import CheckpointRecord, InMemorySaver

    def record(cid: str, parent: str | None, snapshot: str | None = None) -> CheckpointRecord:
        return CheckpointRecord(
            thread_id=MAIN,
            checkpoint_ns="",
            checkpoint_id=cid,
            parent_id=parent,
            step=0,
            source="loop",
            created_at="2026-01-01T00:00:00+00:00",
            next="[]",
            writes="[]",
            metadata="{}",
            snapshot=snapshot,
        )

    saver = InMemorySaver()
    for r in (record("a", None, '{"values": {}}'), record("b", "c"), record("c", "b"), record("d", "gone")):
        saver.put(r)
    outcome, exc = watched(lambda: saver.get(MAIN, "", "c"))
    assert outcome == "raised" and isinstance(exc, CorruptCheckpointError) and "cycle" in str(exc)
    with pytest.raises(CorruptCheckpointError, match="'gone', which is not stored") as missing:
        saver.get(MAIN, "", "d")
    assert missing.value.checkpoint_id == "d" and missing.value.column == "checkpoints.parent_id"
    assert saver.get(MAIN, "", "a") is not None
