"""The sandboxed Python tool: a fresh bubblewrap sandbox per call, scratch tmpfs, minimal environment.

The adversarial probes (environment, files, network, tree-wide bounds) are in tests/security/test_sandbox.py.
"""

from __future__ import annotations

import os
import shutil
import sys
import time

import pytest

from tether.messages import AIMessage
from tether.tools import ToolNode, create_python_tool

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox is bubblewrap, on Linux")


@pytest.fixture(autouse=True)
def _bubblewrap() -> None:
    if shutil.which("bwrap") is None:
        message = "bubblewrap (bwrap) is not installed: run `bash scripts/ensure-sandbox.sh` (as root) to install it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def run(tool: object, *codes: str) -> list[tuple[str, str]]:
    calls = [{"name": "python", "args": {"code": code}, "id": str(i)} for i, code in enumerate(codes)]
    out = ToolNode([tool])({"messages": [AIMessage(content="", tool_calls=calls)]})["messages"]  # type: ignore[list-item]
    return [(m.status, m.text) for m in out]


def test_prints_and_final_expression() -> None:
    python = create_python_tool()
    assert run(python, "x = 6 * 7\nprint('x is', x)\nx + 1", "None", "pass") == [
        ("success", "x is 42\n43\n"),
        ("success", "(no output)"),
        ("success", "(no output)"),
    ]


def test_description_states_the_limits() -> None:
    schema = create_python_tool(timeout=3, memory_mb=128).json_schema()
    assert "3 s wall clock" in schema["description"] and "128 MB of memory" in schema["description"]
    assert "isolated sandbox" in schema["description"] and "no network" in schema["description"]
    assert list(schema["parameters"]["properties"]) == ["code"]


def test_errors_and_limits_come_back_to_the_model() -> None:
    python = create_python_tool(timeout=1, memory_mb=200, max_file_mb=1)
    started = time.monotonic()
    results = run(
        python,
        "raise ValueError('bad input')",
        "while True: pass",
        "block = bytearray(400 * 1024 * 1024)",
        "open('big.bin', 'wb').write(b'x' * (2 * 1024 * 1024))",
        "import subprocess, time\nsubprocess.Popen(['sleep', '30'])\ntime.sleep(30)",
    )
    assert time.monotonic() - started < 10  # the calls ran side by side, and the sleeper was killed
    assert all(status == "error" for status, _ in results)
    texts = [text for _, text in results]
    assert "ValueError: bad input" in texts[0] and '"<string>"' not in texts[0]
    assert "ran longer than 1 s" in texts[1]
    assert "MemoryError" in texts[2]
    assert "File too large" in texts[3]
    assert "ran longer than 1 s" in texts[4]


def test_scratch_directory_and_minimal_environment() -> None:
    python = create_python_tool()
    lines = ["import os, sys", "print(os.getcwd())", "print(sorted(os.environ))", "print(sys.flags.isolated)"]
    code = "\n".join([*lines, "open('left-behind', 'w').close()"])
    ((status, text),) = run(python, code)
    cwd, env, isolated = text.splitlines()
    assert status == "success" and cwd == "/tmp"
    assert env == "['HOME', 'LANG', 'PATH', 'PWD', 'PYTHONIOENCODING', 'TMPDIR']"
    assert isolated == "1"
    ((_, again),) = run(python, "import os\nprint(os.listdir('.'))")
    assert again.strip() == "[]"  # each call gets a new, empty scratch directory


def test_output_is_clipped_and_arguments_checked() -> None:
    python = create_python_tool(max_output_chars=100)
    ((_, text),) = run(python, "print('a' * 1000)")
    assert "characters cut" in text and len(text) < 200
    for bad in ({"timeout": 0}, {"max_disk_mb": 0}, {"max_processes": 0}, {"max_file_mb": -1}):
        with pytest.raises(ValueError):
            create_python_tool(**bad)  # type: ignore[arg-type]
