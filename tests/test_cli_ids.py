"""Checkpoint ids in the command line: history shows the part that tells them apart, and show takes it back."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tether._checkpoint_ids import MIN_SHOWN, matching_ids, short_ids
from tether.cli import app

from .test_cli import make_db

runner = CliRunner()


def history_ids(db: Path, thread: str) -> list[str]:
    result = runner.invoke(app, ["history", str(db), thread, "--json"])
    assert result.exit_code == 0, result.output
    return [row["checkpoint_id"] for row in json.loads(result.output)]


def shown_at(db: Path, checkpoint: str) -> str:
    result = runner.invoke(app, ["show", str(db), "waiting-one", "--checkpoint", checkpoint, "--json"])
    assert result.exit_code == 0, result.output
    return str(json.loads(result.output)["checkpoint_id"])


def test_history_at_80_columns_shows_ids_that_differ_and_type_back(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite"
    make_db(db)
    ids = history_ids(db, "waiting-one")
    assert len({i[:13] for i in ids}) < len(ids)  # the time-ordered starts are shared: the old cut showed them
    env = {**os.environ, "COLUMNS": "80", "LINES": "40"}
    out = subprocess.run(
        [sys.executable, "-m", "tether.cli", "history", str(db), "waiting-one"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert max(len(line) for line in out.stdout.splitlines()) <= 80
    shown = short_ids(ids)
    assert len(set(shown.values())) == len(ids)
    for checkpoint_id in ids:
        tail = shown[checkpoint_id]
        assert re.search(rf"│ {re.escape(tail)} +│", out.stdout), out.stdout  # whole, never cut with "…"
        assert shown_at(db, tail) == checkpoint_id
        assert shown_at(db, "…" + tail) == checkpoint_id


def test_show_takes_a_unique_prefix_and_names_the_candidates_of_an_ambiguous_one(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite"
    make_db(db)
    ids = history_ids(db, "waiting-one")
    for checkpoint_id in ids:
        others = [i for i in ids if i != checkpoint_id]
        length = next(n for n in range(1, 37) if not any(o.startswith(checkpoint_id[:n]) for o in others))
        assert shown_at(db, checkpoint_id[:length]) == checkpoint_id
        assert shown_at(db, checkpoint_id) == checkpoint_id
    common = next(ids[0][:n] for n in range(36, 0, -1) if all(i.startswith(ids[0][:n]) for i in ids))
    ambiguous = runner.invoke(app, ["show", str(db), "waiting-one", "--checkpoint", common])
    assert ambiguous.exit_code == 1
    assert "ambiguous" in ambiguous.output and all(i in ambiguous.output for i in ids)
    unknown = runner.invoke(app, ["show", str(db), "waiting-one", "--checkpoint", "zzz"])
    assert unknown.exit_code == 1 and "'zzz'" in unknown.output and "Traceback" not in unknown.output


def test_a_prefix_of_another_thread_does_not_match(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite"
    make_db(db)
    other = history_ids(db, "done-one")[0]
    result = runner.invoke(app, ["show", str(db), "waiting-one", "--checkpoint", other])
    assert result.exit_code == 1 and "has no checkpoint" in result.output


def test_short_ids_grow_past_a_shared_tail() -> None:
    ids = ["0000-aaaa-11112222", "0000-bbbb-11112222", "0000-cccc-33334444"]
    shown = short_ids(ids)
    assert shown["0000-cccc-33334444"] == "33334444"
    assert shown["0000-aaaa-11112222"] == "a-11112222" and shown["0000-bbbb-11112222"] == "b-11112222"
    assert all(len(s) >= MIN_SHOWN for s in shown.values())
    assert short_ids(["abc"]) == {"abc": "abc"}  # shorter than MIN_SHOWN: the whole id


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("0000-aaaa-11112222", ["0000-aaaa-11112222"]),
        ("0000-a", ["0000-aaaa-11112222"]),
        ("0000-", ["0000-aaaa-11112222", "0000-bbbb-11112222"]),
        ("b-11112222", ["0000-bbbb-11112222"]),
        ("…11112222", ["0000-aaaa-11112222", "0000-bbbb-11112222"]),
        ("...b-11112222", ["0000-bbbb-11112222"]),
        ("…", []),
        ("", []),
        ("9", []),
    ],
)
def test_matching_ids(given: str, expected: list[str]) -> None:
    assert matching_ids(["0000-aaaa-11112222", "0000-bbbb-11112222"], given) == expected
