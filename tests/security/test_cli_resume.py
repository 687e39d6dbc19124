"""`tether resume` runs the graph the operator names, never code named by the database.

Red-team report, issue 12, defect 1: without --graph, `resume` imported the `module:attr` stored in
a thread's metadata (with the current directory importable) and called it, so whoever could write
one row chose the code run in the operator's shell. Each test stores such a name with plain SQL,
as an attacker with write access to the file would, and runs the real command in a subprocess.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
GRAPH = "examples.approval:builder"
ENV = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}", "PYTHONUNBUFFERED": "1"}
ENV.pop("TETHER_GRAPH", None)  # the operator's default graph would answer the question these tests ask
EVIL = """\
import pathlib
pathlib.Path({marker!r}).write_text("imported")

def graph():
    pathlib.Path({marker!r}).write_text("called")
    raise SystemExit(0)
"""


def waiting_thread(db: Path, thread: str = "rel") -> None:
    """A release-notes thread paused at its approval question (examples/approval.py)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "approval_scripted.py"), "--db", str(db), "--thread", thread],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=ENV,
        timeout=60,
    )
    assert done.returncode == 3, done.stderr  # paused at the question


def store_graph_name(db: Path, name: str) -> None:
    """What anyone who can write the file can do: name other code in every checkpoint's metadata."""
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE checkpoints SET metadata = json_set(coalesce(metadata, '{}'), '$.graph', ?)", (name,))


def tether(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tether.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=ENV,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def checkpoints(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0])


def assert_one_line_refusal(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize("answer", [["--value", '"approve"'], ["--answer", "approve"], []])
def test_a_stored_os_abort_is_shown_not_run(tmp_path: Path, answer: list[str]) -> None:
    db = tmp_path / "t.sqlite"
    waiting_thread(db)
    store_graph_name(db, "os:abort")
    before = checkpoints(db)
    result = tether(tmp_path, "resume", str(db), "rel", *answer)
    assert result.returncode != -signal.SIGABRT  # os.abort() was called: the old behaviour
    line = assert_one_line_refusal(result)
    assert "'os:abort'" in line and "--graph os:abort if you trust it" in line
    assert checkpoints(db) == before


def test_a_module_beside_the_database_and_in_cwd_is_never_imported(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite"
    waiting_thread(db)
    marker = tmp_path / "marker"
    (tmp_path / "evil.py").write_text(EVIL.format(marker=str(marker)))  # beside the database, and the cwd
    store_graph_name(db, "evil:graph")

    refused = tether(tmp_path, "resume", str(db), "rel", "--answer", "approve")
    assert "pass --graph evil:graph if you trust it" in assert_one_line_refusal(refused)
    assert not marker.exists()

    # the operator names a graph: the stored one differs, so it is refused without --other-graph
    mismatch = tether(tmp_path, "resume", str(db), "rel", "--graph", GRAPH, "--answer", "approve")
    line = assert_one_line_refusal(mismatch)
    assert "'evil:graph'" in line and repr(GRAPH) in line and "--other-graph" in line
    assert not marker.exists()

    # with --other-graph the operator's graph runs; the stored name is still never imported
    resumed = tether(tmp_path, "resume", str(db), "rel", "--graph", GRAPH, "--other-graph", "--answer", "approve")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed" in resumed.stdout
    assert not marker.exists()


def test_the_stored_name_must_match_the_given_graph(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite"
    waiting_thread(db)
    other = tether(ROOT, "resume", str(db), "rel", "--graph", "tests.security.test_cli_resume:nothing", "--value", "1")
    line = assert_one_line_refusal(other)
    assert repr(GRAPH) in line and "--other-graph" in line
    same = tether(ROOT, "resume", str(db), "rel", "--graph", GRAPH, "--answer", "approve")
    assert same.returncode == 0, same.stderr


def test_a_stored_name_with_control_characters_is_shown_escaped(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite"
    waiting_thread(db)
    store_graph_name(db, "x:y\n\x1b[2Jrm -rf ~")
    line = assert_one_line_refusal(tether(tmp_path, "resume", str(db), "rel", "--answer", "approve"))
    assert "\x1b" not in line and "\\x1b" in line
    assert "if you trust it" not in line  # no command line is suggested for a name that is no module:attribute


def test_without_a_stored_name_the_graph_is_asked_for(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite"
    waiting_thread(db)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE checkpoints SET metadata = NULL")
    line = assert_one_line_refusal(tether(tmp_path, "resume", str(db), "rel", "--answer", "approve"))
    assert "pass --graph module:attribute" in line
    resumed = tether(ROOT, "resume", str(db), "rel", "--graph", GRAPH, "--answer", "approve")
    assert resumed.returncode == 0, resumed.stderr


def test_a_graph_given_by_the_operator_that_cannot_be_imported_is_one_line(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite"
    waiting_thread(db)
    store_graph_name(db, "no_such_module:graph")
    line = assert_one_line_refusal(
        tether(tmp_path, "resume", str(db), "rel", "--graph", "no_such_module:graph", "--answer", "approve")
    )
    assert "cannot import graph 'no_such_module:graph'" in line
