"""Smoke test of benchmarks/bench.py: it runs (--quick) and writes well-formed JSON.

No timing assertions: the figures from a quick run on a shared machine are noise.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest


def _installed(dist: str) -> bool:
    try:
        metadata.version(dist)
    except metadata.PackageNotFoundError:
        return False
    return True


pytestmark = pytest.mark.skipif(
    not (_installed("langgraph") and _installed("langgraph-checkpoint-sqlite")),
    reason="the benchmark measures LangGraph beside Tether (pip install -e '.[dev]')",
)

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "bench.py"

THROUGHPUT_KEYS = [
    "langgraph_sqlite",
    "langgraph_sqlite_durability_sync",
    "tether_sqlite_full",
    "tether_sqlite_normal",
    "langgraph_none",
    "tether_none",
]
DURABLE = {"langgraph_sqlite", "langgraph_sqlite_durability_sync", "tether_sqlite_full", "tether_sqlite_normal"}
STORAGE_KEYS = ["langgraph_sqlite", "tether_sqlite_normal", "tether_sqlite_full", "tether_sqlite_normal_uuid_thread"]
RUN_KEYS = ["bytes_total", "bytes_db", "bytes_per_turn", "turn_ms_start", "turn_ms_end", "end_over_start", "wall_s"]


def positive(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("bench")
    out = tmp / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--plain", "--json", str(out), "--tmpdir", str(tmp)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"bench.py failed\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Summary" in proc.stdout
    data = json.loads(out.read_text())
    data["_stdout"] = proc.stdout
    return data


def test_meta(result: dict) -> None:
    meta = result["meta"]
    assert meta["quick"] is True
    assert meta["versions"]["langgraph"] != "unknown"
    assert positive(meta["wall_s"])


def test_throughput(result: dict) -> None:
    thr = result["throughput"]
    assert sorted(thr) == sorted(THROUGHPUT_KEYS)
    for key, entry in thr.items():
        for field in ("steps_per_s", "steps_per_s_best", "us_per_invocation"):
            assert positive(entry[field]), (key, field, entry[field])
        assert entry["rounds_steps_per_s"] and all(positive(v) for v in entry["rounds_steps_per_s"])
        assert entry["checkpointer"] is (key in DURABLE)
        if key in DURABLE:
            assert positive(entry["same_thread_steps_per_s"]), key
            assert positive(entry["statements_per_invocation"].get("COMMIT")), key
            assert entry["pragmas"]["journal_mode"] == "wal", key
    assert thr["tether_sqlite_full"]["pragmas"]["synchronous"] == "FULL"
    assert thr["tether_sqlite_normal"]["pragmas"]["synchronous"] == "NORMAL"
    assert thr["langgraph_sqlite"]["pragmas"]["synchronous"] in {"OFF", "NORMAL", "FULL", "EXTRA"}


def test_storage(result: dict) -> None:
    sto = result["storage"]
    assert sorted(sto) == sorted(STORAGE_KEYS)
    horizons = result["meta"]["params"]["horizons"]
    for key, entry in sto.items():
        assert [run["turns"] for run in entry["runs"]] == horizons, key
        for run in entry["runs"]:
            for field in RUN_KEYS:
                assert positive(run[field]), (key, run["turns"], field, run[field])


def test_ratios_and_targets(result: dict) -> None:
    for name, value in result["ratios"].items():
        assert positive(value), (name, value)
    assert result["targets"]
    for target in result["targets"]:
        assert positive(target["value"]), target
        assert target["status"] in {"PASS", "MISS", "INFO"}
        assert target["status"] in result["_stdout"]


POSTGRES_KEYS = [
    "langgraph_postgres",
    "langgraph_postgres_sync",
    "tether_postgres",
    "langgraph_postgres_nowait",
    "tether_postgres_nowait",
]


def run_against_server(script: str, url: str, tmp_path: Path) -> tuple[dict, str]:
    """Run ``benchmarks/<script> --quick`` against the tests' PostgreSQL; its JSON and its stdout."""
    out = tmp_path / f"{script}.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--quick", "--plain", "--json", str(out), "--url", url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"{script} failed\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return json.loads(out.read_text()), proc.stdout


def test_postgres_benchmark_runs_both_libraries_on_one_server(postgres_server: str, tmp_path: Path) -> None:
    pytest.importorskip("langgraph.checkpoint.postgres", reason="pip install -e '.[dev]'")
    data, stdout = run_against_server("postgres.py", postgres_server, tmp_path)
    assert sorted(data["throughput"]) == sorted(POSTGRES_KEYS)
    rows = {entry["checkpoint_rows"] for entry in data["throughput"].values()}
    assert len(rows) == 1 and rows.pop() > 0, "both libraries must have committed the same number of checkpoints"
    for name, value in data["ratios"].items():
        assert positive(value), (name, value)
    assert "Tether / LangGraph" in stdout


def test_workers_benchmark_runs(postgres_server: str, tmp_path: Path) -> None:
    pytest.importorskip("procrastinate", reason="pip install -e '.[dev]'")
    data, stdout = run_against_server("workers.py", postgres_server, tmp_path)
    assert [r["workers"] for r in data["workers"]] == data["meta"]["params"]["worker_counts"]
    for row in data["workers"]:
        for key in ("runs_per_s", "p50_ms", "p99_ms"):
            assert positive(row[key]), (key, row)
    assert "runs/s" in stdout


def test_reads_benchmark_runs(tmp_path: Path) -> None:
    """benchmarks/reads.py --quick: every figure is there for both libraries (no timing asserted)."""
    out = tmp_path / "reads.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "reads.py"),
            "--quick",
            "--json",
            str(out),
            "--tmpdir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"reads.py failed\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    data = json.loads(out.read_text())
    assert sorted(data) == ["items_20", "items_40", "messages_20"]
    for name, row in data.items():
        libs = ["tether"] if name == "items_40" else ["langgraph", "tether"]
        assert sorted(k for k in row if k != "ratio") == libs
        for lib in libs:
            for key in (
                "get_state_warm_ms",
                "history10_warm_ms",
                "get_state_cold_ms",
                "history10_cold_ms",
                "invoke_cold_ms",
                "bytes_db",
            ):
                assert positive(row[lib][key]), (name, lib, key)
