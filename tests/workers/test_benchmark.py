"""Smoke test of benchmarks/workers.py: it runs (--quick) and writes well-formed JSON.

No timing assertions: figures from a quick run on a shared machine are noise.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_workers_benchmark_runs(postgres_server: str, tmp_path: Path) -> None:
    pytest.importorskip("langgraph", reason="the benchmarks share bench.py's output helpers: pip install -e '.[dev]'")
    out = tmp_path / "workers.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "workers.py"),
            "--quick",
            "--plain",
            "--json",
            str(out),
            "--url",
            postgres_server,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"workers.py failed\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    data = json.loads(out.read_text())
    assert [r["workers"] for r in data["workers"]] == data["meta"]["params"]["worker_counts"]
    for row in data["workers"]:
        for key in ("runs_per_s", "p50_ms", "p99_ms"):
            assert math.isfinite(row[key]) and row[key] > 0, (key, row)
    assert "runs/s" in proc.stdout
