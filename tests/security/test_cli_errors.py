"""Every `tether` command reports a damaged or missing database in one line, without a traceback.

Red-team report, issue 12, defect 7 (the CLI part): damaged rows gave CLI tracebacks. The commands
run here as real subprocesses on databases damaged with plain SQL (or not databases at all); each
one either works or prints exactly one line, ``error: …``, on stderr and exits non-zero. Unexpected
exceptions (bugs) still show their traceback: the last test checks that too.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
GRAPH = "examples.approval:builder"
ENV = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}", "PYTHONUNBUFFERED": "1", "COLUMNS": "80"}
ENV.pop("TETHER_GRAPH", None)
THREAD = "rel"


@pytest.fixture(scope="module")
def good_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two release threads: one waiting at its question, one published."""
    db = tmp_path_factory.mktemp("good") / "good.sqlite"
    for thread, answers in ((THREAD, []), ("done", ["--answer", "approve"])):
        script = str(ROOT / "examples" / "approval_scripted.py")
        subprocess.run(
            [sys.executable, script, "--db", str(db), "--thread", thread, *answers],
            check=False,
            capture_output=True,
            cwd=ROOT,
            env=ENV,
            timeout=60,
        )
    assert db.exists()
    return db


def sql(statement: str) -> Callable[[Path, Path], Path]:
    def damage(good: Path, tmp: Path) -> Path:
        db = tmp / "damaged.sqlite"
        shutil.copy(good, db)
        with sqlite3.connect(db) as conn:
            conn.execute(statement)
        return db

    return damage


def missing(good: Path, tmp: Path) -> Path:
    return tmp / "no-such.sqlite"


def directory(good: Path, tmp: Path) -> Path:
    (tmp / "a-directory").mkdir()
    return tmp / "a-directory"


def not_a_database(good: Path, tmp: Path) -> Path:
    path = tmp / "notes.sqlite"
    path.write_text("these are not the rows you are looking for\n" * 100)
    return path


def truncated(good: Path, tmp: Path) -> Path:
    path = tmp / "truncated.sqlite"
    path.write_bytes(good.read_bytes()[:3000])
    return path


DAMAGE: dict[str, Callable[[Path, Path], Path]] = {
    "next garbage": sql("UPDATE checkpoints SET next = 'garbage'"),
    "next wrong shape": sql("""UPDATE checkpoints SET next = '[{"x": 1}]'"""),
    "writes garbage": sql("UPDATE checkpoints SET writes = 'garbage'"),
    "metadata garbage": sql("UPDATE checkpoints SET metadata = '{not json'"),
    "snapshot empty": sql("UPDATE snapshots SET state = '{}'"),
    "pending garbage": sql("UPDATE pending_writes SET value = 'nope'"),
    "unknown type tag": sql(
        """UPDATE snapshots SET state = '{"values": {"draft": {"__type__": "os:system", "v": "x"}}}'"""
    ),
    "schema table dropped": sql("DROP TABLE checkpoints"),
    "missing file": missing,
    "a directory": directory,
    "not a database": not_a_database,
    "truncated": truncated,
}
COMMANDS: dict[str, list[str]] = {
    "threads": ["threads", "{db}"],
    "history": ["history", "{db}", THREAD],
    "show": ["show", "{db}", THREAD, "--json"],
    "resume": ["resume", "{db}", THREAD, "--graph", GRAPH, "--answer", "approve"],
    "tune export": ["tune", "export", "{db}", "--out", "{tmp}/prefs.jsonl", "--on-error", "fail"],
}
ALWAYS_FAILS = {"missing file", "a directory", "not a database", "truncated", "schema table dropped"}


def tether(args: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tether.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=ENV,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def assert_reported_in_one_line(result: subprocess.CompletedProcess[str], banner: str | None = None) -> None:
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if not (banner and line.startswith(banner))]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert result.returncode in (1, 2)


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("command", list(COMMANDS))
def test_damaged_databases_give_one_line(good_db: Path, tmp_path: Path, damage: str, command: str) -> None:
    db = DAMAGE[damage](good_db, tmp_path)
    args = [a.format(db=db, tmp=tmp_path) for a in COMMANDS[command]]
    result = tether(args)
    if result.returncode == 0:  # read around the damage: fine, as long as nothing crashed
        assert damage not in ALWAYS_FAILS, result.stdout
        assert "Traceback" not in result.stderr + result.stdout
        return
    assert_reported_in_one_line(result)


def test_the_good_database_works(good_db: Path, tmp_path: Path) -> None:
    for command in COMMANDS.values():
        if "resume" in command:
            continue  # resuming would change the module-wide database
        result = tether([a.format(db=good_db, tmp=tmp_path) for a in command])
        assert result.returncode == 0, (command, result.stderr)


def test_other_commands_report_in_one_line(tmp_path: Path) -> None:
    for args in (
        ["plan", "--preset", "no-such-model"],
        ["worker", "--db", "postgresql://127.0.0.1:1/nothing", "--graph", GRAPH],  # connection refused
        ["worker", "--db", "postgresql://127.0.0.1:1/nothing", "--graph", "no_such_module:graph"],
        ["tune", "export", str(tmp_path / "no-such.sqlite")],
        ["tune", "export", str(tmp_path), "--near-duplicates", "2"],
    ):
        assert_reported_in_one_line(tether(args), banner="tether worker: ")


def test_an_unwritable_output_is_one_line(good_db: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = tether(["tune", "export", str(good_db), "--out", str(blocker / "prefs.jsonl")])
    assert_reported_in_one_line(result)


def test_bugs_keep_their_traceback(tmp_path: Path) -> None:
    """Only errors a person can act on become one line; anything else is a bug and shows where it is."""
    script = (
        "import sys\n"
        "from tether.cli import app\n"
        "@app.command('boom')\n"
        "def boom() -> None:\n"
        "    raise ZeroDivisionError('a bug')\n"
        "sys.argv = ['tether', 'boom']\n"
        "app()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=60
    )
    assert result.returncode != 0
    assert "ZeroDivisionError" in result.stderr and "a bug" in result.stderr
    assert "error: a bug" not in result.stderr
