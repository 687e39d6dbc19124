"""Smoke test of benchmarks/threads.py: it fills a small database, lists it and reports figures.

No timing assertions: figures from a small run on a shared machine are noise.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_threads_benchmark_runs(tmp_path: Path) -> None:
    out = tmp_path / "threads.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "threads.py"),
            "--quick",
            "--json",
            str(out),
            "--tmpdir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["threads"] == 2000 and result["target_ms"] == 50.0
    keys = {"first_page_ms", "deep_page_ms", "waiting_page_ms", "user_page_ms", "rare_team_page_ms"}
    assert set(result["sqlite"]) == {*keys, "fill_s"} and all(v > 0 for v in result["sqlite"].values())
    assert "first_page_ms" in proc.stdout and "target 50 ms" in proc.stdout
