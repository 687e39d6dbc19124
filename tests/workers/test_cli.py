"""``tether worker``: its help, and what it says about a graph it cannot import."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from tests.workers.conftest import ROOT
from tether.cli import app

runner = CliRunner()


def test_worker_has_help() -> None:
    result = runner.invoke(app, ["worker", "--help"])
    assert result.exit_code == 0
    for option in ("--db", "--graph", "--concurrency", "--stalled-after"):
        assert option in result.output


def test_worker_refuses_a_graph_it_cannot_import(url: str) -> None:
    result = runner.invoke(app, ["worker", "--db", url, "--graph", "no_such_module:graph"])
    assert result.exit_code == 2
    assert "cannot import graph" in result.output


def test_importing_the_cli_does_not_import_procrastinate() -> None:
    code = "import sys, tether.cli; assert 'procrastinate' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
