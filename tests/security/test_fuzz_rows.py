"""Fuzzing stored rows: random damage to every column of every table, then every reader.

Each example restores the undamaged database ("main" paused on an interrupt with a sibling's
result pending, a snapshot every 4 steps; "other" beside it), applies one damage drawn by
hypothesis (a table, a row of "main", a column, a kind of damage) with raw SQL, and runs every
reader: the saver's get/list/pending/threads/first_child, get_state, get_state_history,
``read_state`` (``tether show``), invoke-resume, and ``tether threads/history/show``. It asserts:

* each reader finishes within the watchdog (a cycle once hung them) and Python memory stays
  under a generous bound (the hang also grew without bound);
* a reader returns or raises a ``TetherError``: never a raw exception; the command line never
  prints a traceback;
* no module is imported by reading (stored data never names code to load);
* reading changes nothing stored, and the other thread reads as before.

The oracle for wrong answers. A damage is classified by what it does to the column:
``row`` (a value of the wrong type or an unknown ``source``/``kind``: no Tether writes it),
``json`` (JSON that is not JSON, or not the shape Tether writes there: truncated, a number or
``true`` or ``[1]`` where a list of entries or an object belongs, nesting past the decoder's
limit, a number too large for a float), ``link`` (a parent link to no row, to itself, or into
a cycle) and ``cut`` (a NULL parent, or a snapshot moved away from its checkpoint). A reader
that reads that kind of column (store readers: ``row``; readers that follow parent links:
``row``, ``link``; graph readers: all four) must then either raise a ``TetherError`` or return
exactly what it returned before the damage: if it returned something else it used a value
Tether never wrote, or a chain that lost its past. This is sound because none of these damages
can turn one valid stored thread into another valid one. The other damages (``plausible``: a
renamed id, a different valid ``source``, a huge but valid ``step``, a parent link that jumps
to another real checkpoint…) store something a Tether could have written; for them only the
first four properties are asserted, since a different answer is the right answer.
"""

from __future__ import annotations

import shutil
import sys
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.pg import fresh_schema
from tests.security.damage import (
    CLI_COMMANDS,
    READERS,
    Backend,
    cli,
    other_thread,
    pg_keep_pristine,
    pg_restore,
    pg_url,
    populate,
    resume,
)
from tether.errors import TetherError

WATCHDOG_S = 60  # for all readers of one example together: generous on a shared machine
MEMORY_BOUND = 50 * 1024 * 1024
CHECKED = {"store": {"row"}, "links": {"row", "link"}, "graph": {"row", "json", "link", "cut"}}
DEEP = "[" * 1100 + "]" * 1100


@dataclass(frozen=True)
class Damage:
    table: str
    where: str  # SQL selecting the one row
    column: str
    kind: str
    value: str  # SQL expression
    cls: str  # row | json | link | cut | plausible | open

    def sql(self) -> str:
        return f"UPDATE {self.table} SET {self.column} = {self.value} WHERE {self.where}"

    def __repr__(self) -> str:  # what hypothesis prints for a failing example
        return f"<{self.table}.{self.column} {self.kind} ({self.cls}) where {self.where}>"


def _json_damages(column: str, pg: bool, plausible: str | None) -> list[tuple[str, str, str]]:
    text = f"{column}::text" if pg else column
    cast = "::jsonb" if pg else ""
    out = [
        ("wrapped", f"('[[[' || {text} || ']]]'){cast}", "json"),
        ("true", f"'true'{cast}", "json"),
        ("[1]", f"'[1]'{cast}", "json"),
        ("huge number", f"'1e400'{cast}", "json"),
        ("too deep", f"'{DEEP}'{cast}", "json"),
        ("integer", "7" if not pg else "'7'::jsonb", "json"),
    ]
    if not pg:  # PostgreSQL's jsonb and text types refuse these outright
        out += [
            ("truncated", f"substr({column}, 1, length({column}) / 2)", "json"),
            ("not JSON", "'not json'", "json"),
            ("blob", "X'5b5d'", "row"),
        ]
    if plausible is not None:
        out.append(("other valid", f"'{plausible}'{cast}", "plausible"))
    return out


def damages(backend: Backend, ids: list[str], key: int) -> list[Damage]:
    """Every damage this test can draw, for "main"'s rows of every table."""
    pg = backend.name == "postgres"
    out: list[Damage] = []
    snapshots = {r[0] for r in backend.sql("SELECT checkpoint_id FROM snapshots WHERE thread = ?", (key,))}
    chain_after_snapshot = set(ids[5:])  # the newest checkpoint's chain: ids[4] (a snapshot) … ids[7]
    for cid in ids:
        where = f"thread = {key} AND checkpoint_id = '{cid}'"

        def add(column: str, kind: str, value: str, cls: str, where: str = where) -> None:
            out.append(Damage("checkpoints", where, column, kind, value, cls))

        for column, plausible in (("next", "[]"), ("writes", "[]"), ("metadata", '{"k": 1}')):
            for kind, value, cls in _json_damages(column, pg, plausible):
                add(column, kind, value, cls)
        add("metadata", "NULL", "NULL", "plausible")  # NULL is how "no metadata" is stored
        add("parent_id", "NULL", "NULL", "cut")
        add("parent_id", "dangling", "'nowhere'", "link")
        add("parent_id", "itself", "checkpoint_id", "link")
        add("parent_id", "an integer", "7", "link")  # stored as the text '7': no such checkpoint
        # onto the newest checkpoint: a cycle when this row is on its chain, else a jump to a real row
        add("parent_id", "the newest", f"'{ids[-1]}'", "link" if cid in chain_after_snapshot else "plausible")
        add("source", "unknown", "'bogus'", "row")
        add("source", "other valid", "'update'", "plausible")
        add("step", "huge", "2147483647", "plausible")
        add("step", "negative", "-7", "plausible")
        add("checkpoint_id", "renamed", "'zzzz'", "plausible")
        add("created_at", "other text", "'yesterday'", "plausible")
        if not pg:
            add("parent_id", "blob", "X'00'", "link")  # no longer a link: its child is not found by it
            add("source", "integer", "7", "row")  # the text '7': not a source
            add("source", "blob", "X'00'", "row")
            add("step", "text", "'x'", "row")
            add("step", "float", "1.5", "row")
            add("created_at", "blob", "X'00'", "row")
            add("checkpoint_id", "blob", "X'00'", "plausible")  # sorts after every id: no longer listed
        if cid in snapshots:
            swhere = f"thread = {key} AND checkpoint_id = '{cid}'"
            for kind, value, cls in _json_damages("state", pg, '{"values": {}}'):
                out.append(Damage("snapshots", swhere, "state", kind, value, cls))
            out.append(Damage("snapshots", swhere, "checkpoint_id", "moved away", "'nowhere'", "cut"))
    for task_id, kind in backend.sql(
        "SELECT task_id, kind FROM pending_writes WHERE thread = ? AND checkpoint_id = ?", (key, ids[-1])
    ):
        pwhere = f"thread = {key} AND checkpoint_id = '{ids[-1]}' AND task_id = '{task_id}' AND kind = '{kind}'"
        for dkind, value, cls in _json_damages("value", pg, None):
            out.append(Damage("pending_writes", pwhere, "value", dkind, value, cls))
        out.append(Damage("pending_writes", pwhere, "kind", "unknown", "'bogus'", "row"))
        out.append(Damage("pending_writes", pwhere, "kind", "other valid", "'error'", "plausible"))
        out.append(Damage("pending_writes", pwhere, "task_id", "renamed", "'t'", "plausible"))
        if not pg:
            out.append(Damage("pending_writes", pwhere, "task_id", "blob", "X'00'", "row"))
            out.append(Damage("pending_writes", pwhere, "kind", "blob", "X'00'", "row"))
    twhere = f"id = {key}"
    out.append(Damage("threads", twhere, "thread_id", "renamed", "'renamed'", "plausible"))
    out.append(Damage("threads", twhere, "checkpoint_ns", "other text", "'ns'", "plausible"))
    out.append(Damage("threads", twhere, "created_at", "other", "now()" if pg else "'yesterday'", "plausible"))
    if not pg:
        out.append(Damage("threads", twhere, "thread_id", "blob", "X'00'", "plausible"))  # the thread is gone
        out.append(Damage("threads", twhere, "checkpoint_ns", "integer", "7", "plausible"))
    newest = "version = (SELECT max(version) FROM tether_schema)"
    out.append(Damage("tether_schema", newest, "version", "future", "99", "open"))
    out.append(Damage("tether_schema", newest, "version", "older", "0", "open"))
    out.append(Damage("tether_schema", newest, "description", "other text", "'x'", "plausible"))
    # thread_leases holds rows only while a run is in progress; its damage is the lease tests' (tests/checkpoint)
    return out


# -- the undamaged database, once per backend ------------------------------------------------------------
@dataclass
class Pristine:
    backend: Backend
    restore: Callable[[], None]
    ids: list[str]
    expected: dict[str, Any]
    other: Any
    damages: list[Damage]


def run_readers(backend: Backend, ids: list[str], *, check_modules: bool = True) -> dict[str, tuple[str, Any]]:
    """Open the database and run every reader, then invoke-resume, then the CLI, under one watchdog.

    Returns each reader's ("ok", summary) or ("raised", exception), plus "open" when opening failed,
    "unchanged" (whether reading wrote nothing) and the CLI's results.
    """
    results: dict[str, tuple[str, Any]] = {}

    def work() -> None:
        before = backend.dump()
        try:
            saver = backend.open()
        except BaseException as exc:
            results["open"] = ("raised", exc)
            return
        try:
            for name, (_, reader) in READERS.items():
                results[name] = _attempt(lambda reader=reader: reader(saver, ids))  # type: ignore[misc]
            results["unchanged"] = ("ok", backend.dump() == before)
            results["resume"] = _attempt(lambda: resume(saver, ids))
        finally:
            saver.close()
        for command in CLI_COMMANDS:
            results[f"tether {command[0]}"] = ("cli", cli(backend, *command))

    modules = set(sys.modules)
    tracemalloc.start()
    try:
        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        worker.join(WATCHDOG_S)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert not worker.is_alive(), f"readers still running after {WATCHDOG_S} s: one of them hangs"
    assert peak < MEMORY_BOUND, f"readers allocated {peak / 1e6:.0f} MB"
    if check_modules:
        assert set(sys.modules) == modules, f"reading imported {sorted(set(sys.modules) - modules)}"
    return results


def _attempt(fn: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return ("ok", fn())
    except BaseException as exc:  # judged by the test
        return ("raised", exc)


def _pristine(backend: Backend, restore: Callable[[], None]) -> Pristine:
    ids, _ = backend.chain_ids()
    key = backend.key()
    restore()
    saver = backend.open()
    try:
        other = other_thread(saver)
    finally:
        saver.close()
    # warm up: every reader on the undamaged rows, and on rows damaged in each class, so that what
    # reading legitimately imports on first use (error paths included) is loaded before the check
    expected: dict[str, tuple[str, Any]] = {}
    for results in _warm_up(backend, ids, key, restore):
        expected = expected or results
    restore()
    baseline = {name: value for name, (outcome, value) in expected.items() if outcome == "ok"}
    assert set(baseline) >= {*READERS, "resume"}, expected
    return Pristine(backend, restore, ids, baseline, other, damages(backend, ids, key))


def _warm_up(backend: Backend, ids: list[str], key: int, restore: Callable[[], None]) -> Iterator[Any]:
    restore()
    yield run_readers(backend, ids, check_modules=False)
    for statement in (
        f"UPDATE checkpoints SET source = 'bogus' WHERE checkpoint_id = '{ids[-1]}'",
        f"UPDATE checkpoints SET writes = '[1]' WHERE checkpoint_id = '{ids[-1]}'",
        f"UPDATE checkpoints SET parent_id = checkpoint_id WHERE checkpoint_id = '{ids[-1]}'",
        f"UPDATE pending_writes SET value = '[1]' WHERE thread = {key}",
        "UPDATE tether_schema SET version = 99 WHERE version = (SELECT max(version) FROM tether_schema)",
    ):
        restore()
        backend.sql(statement)
        run_readers(backend, ids, check_modules=False)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def pristine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pristine]:
    if request.param == "sqlite":
        folder = tmp_path_factory.mktemp("fuzz")
        original = folder / "pristine.sqlite"
        saver = Backend("sqlite", str(original)).open()
        try:
            populate(saver)
        finally:
            saver.close()
        backend = Backend("sqlite", str(folder / "damaged.sqlite"))

        def restore() -> None:
            for suffix in ("-wal", "-shm"):
                Path(backend.target + suffix).unlink(missing_ok=True)
            shutil.copyfile(original, backend.target)

        restore()
        yield _pristine(backend, restore)
        return
    with fresh_schema(request.getfixturevalue("postgres_server")) as conninfo:
        backend = Backend("postgres", pg_url(conninfo), conninfo)
        saver = backend.open()
        try:
            populate(saver)
        finally:
            saver.close()
        pg_keep_pristine(backend)
        yield _pristine(backend, lambda: pg_restore(backend))


EXAMPLES = {"sqlite": 90, "postgres": 50}


def test_random_damage_to_stored_rows(pristine: Pristine) -> None:
    @settings(
        max_examples=EXAMPLES[pristine.backend.name],
        deadline=None,
        derandomize=False,
        suppress_health_check=[HealthCheck.too_slow],
        database=None,
    )
    @given(damage=st.sampled_from(pristine.damages))
    def check(damage: Damage) -> None:
        pristine.restore()
        pristine.backend.sql(damage.sql())
        results = run_readers(pristine.backend, pristine.ids)
        judge(pristine, damage, results)

    check()


def judge(pristine: Pristine, damage: Damage, results: dict[str, tuple[str, Any]]) -> None:
    if "open" in results:  # the database itself was refused
        outcome, exc = results["open"]
        assert isinstance(exc, TetherError), f"opening raised a raw {type(exc).__name__}: {exc!r}"
        assert damage.cls in ("open", "row"), f"{damage!r} made the database unopenable: {exc}"
        return
    for name, (outcome, value) in results.items():
        if outcome == "raised":
            assert isinstance(value, TetherError), f"{name} raised a raw {type(value).__name__}: {value!r}"
        elif outcome == "cli":
            assert value.exception is None or isinstance(value.exception, SystemExit), f"{name}: {value.exception!r}"
            assert "Traceback" not in value.output
            if value.exit_code != 0:
                assert len(value.stderr.strip().splitlines()) == 1, value.stderr
    assert results["unchanged"] == ("ok", True), f"reading changed the database after {damage!r}"
    readers = {name: level for name, (level, _) in READERS.items()} | {"resume": "graph"}
    for name, level in readers.items():
        outcome, value = results[name]
        if outcome == "ok" and damage.cls in CHECKED[level]:
            assert value == pristine.expected[name], (
                f"{name} returned a different answer after {damage!r} instead of failing"
            )
    saver = pristine.backend.open()
    try:
        assert other_thread(saver) == pristine.other, f"{damage!r} to 'main' changed 'other'"
    finally:
        saver.close()
