#!/usr/bin/env bash
# Benchmark Tether against LangGraph (the peer) in a dedicated virtualenv, .bench-venv.
#
#   bash benchmarks/run.sh [--quick] [--json PATH] [--plain] [...]   (arguments go to bench.py)
#
# Needs only Python >= 3.11 and access to PyPI. The venv is created on first use and
# re-synced when this script, pyproject.toml or the pins below change.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="${BENCH_VENV:-$ROOT/.bench-venv}"
PYTHON="${PYTHON:-python3}"
PEER=(langgraph==1.2.24 langgraph-checkpoint-sqlite==3.1.2 langgraph-checkpoint-postgres==3.2.0)

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "benchmarks/run.sh: need Python >= 3.11 (set PYTHON=...); '$PYTHON' is $("$PYTHON" -V 2>&1 || echo missing)" >&2
    exit 1
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "[bench] creating $VENV" >&2
    "$PYTHON" -m venv "$VENV"
fi

# Re-install only when the inputs change (a stamp holds their checksum).
STAMP="$VENV/.bench-installed"
WANT="$(cat pyproject.toml benchmarks/run.sh | cksum | cut -d' ' -f1) ${PEER[*]}"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ] \
    || ! "$VENV/bin/python" -c 'import tether, langgraph.checkpoint.sqlite, langgraph.checkpoint.postgres' 2>/dev/null; then
    echo "[bench] installing tether (editable) and ${PEER[*]} into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[workers]' "${PEER[@]}"
    echo "$WANT" > "$STAMP"
fi

# SQLite throughput and storage take every argument; the PostgreSQL benchmarks take --quick and
# --plain (they start a throwaway server, so its binaries must be installed).
"$VENV/bin/python" benchmarks/bench.py "$@"
# reading long threads (get_state, history pages, first invoke; warm and in a fresh process)
READ_ARGS=()
for arg in "$@"; do
    case "$arg" in --quick) READ_ARGS+=("$arg") ;; esac
done
"$VENV/bin/python" benchmarks/reads.py "${READ_ARGS[@]}"
# listing threads: a page of 50 among 100,000 threads in one SQLite database (--quick: 2,000)
"$VENV/bin/python" benchmarks/threads.py "${READ_ARGS[@]}"
PG_ARGS=()
for arg in "$@"; do
    case "$arg" in --quick | --plain) PG_ARGS+=("$arg") ;; esac
done
bash scripts/ensure-postgres.sh
"$VENV/bin/python" benchmarks/postgres.py "${PG_ARGS[@]}"
"$VENV/bin/python" benchmarks/workers.py "${PG_ARGS[@]}"
