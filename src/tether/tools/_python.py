"""A tool that runs Python code in a separate, resource-limited process.

Each call starts a fresh interpreter (``python -I``: no PYTHON* variables, no user site) in an
empty scratch directory that is deleted afterwards, with a minimal environment, closed stdin,
and kernel limits set with ``resource.setrlimit`` before the code runs: CPU seconds, address
space, size of files written, no core dumps. A wall-clock timeout kills its whole process group.

This bounds mistakes (an endless loop, a huge allocation, a stray file); it is not a security
boundary against hostile code: the process runs as the same user, can read what that user can
read and can use the network. Run it in a container or VM for that.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from typing import Any

from tether.tools._tool import Tool, ToolException

__all__ = ["create_python_tool"]

# Runs in the child before the model's code: applies the limits, then runs the code like a REPL
# cell (the value of a final expression is printed). The code arrives on stdin, never in argv.
_BOOTSTRAP = """
import ast, resource, sys
for name, value in {limits!r}:
    kind = getattr(resource, name)
    soft, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(kind, (value, value))
source = sys.stdin.read()
sys.stdin.close()
tree = ast.parse(source, "<tool>")
last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
scope = {{"__name__": "__main__"}}
exec(compile(tree, "<tool>", "exec"), scope)
if last is not None:
    value = eval(compile(ast.Expression(last.value), "<tool>", "eval"), scope)
    if value is not None:
        print(repr(value))
"""


def _describe(timeout: float, memory_mb: int, max_file_mb: int) -> str:
    return (
        "Run Python 3 code and return what it prints (the value of a final expression is printed too). "
        f"Each call is a fresh process: no state is kept between calls. Limits: {timeout:g} s wall clock, "
        f"{memory_mb} MB of memory, files up to {max_file_mb} MB, in an empty scratch directory that is "
        "deleted afterwards; no input can be read. Installed packages can be imported."
    )


def create_python_tool(
    *,
    name: str = "python",
    timeout: float = 10.0,
    memory_mb: int = 512,
    max_file_mb: int = 16,
    max_output_chars: int = 8000,
) -> Tool:
    """A ``python`` tool (``code: str``) that runs each call in a fresh, limited subprocess.

    See the module docstring for what the limits do and do not protect against.
    """
    if timeout <= 0 or memory_mb <= 0 or max_file_mb < 0 or max_output_chars <= 0:
        raise ValueError("timeout, memory_mb and max_output_chars must be positive, max_file_mb non-negative")
    limits = [
        ("RLIMIT_CPU", int(timeout) + 1),  # CPU time cannot exceed the wall clock; +1 as a backstop
        ("RLIMIT_AS", memory_mb * 1024 * 1024),
        ("RLIMIT_FSIZE", max_file_mb * 1024 * 1024),
        ("RLIMIT_CORE", 0),
    ]
    bootstrap = _BOOTSTRAP.format(limits=limits)

    def python(code: str) -> str:
        """Run Python code.

        Args:
            code: a complete Python program; print() what you want to see.
        """
        return _run(code, bootstrap, timeout, max_output_chars)

    built = Tool.from_function(python, name=name, description=_describe(timeout, memory_mb, max_file_mb))
    built.handle_tool_error = True  # failing code is an answer the model should read, not a crash
    return built


def _run(code: str, bootstrap: str, timeout: float, max_output_chars: int) -> str:
    with tempfile.TemporaryDirectory(prefix="tether-python-") as scratch:
        env = {"PATH": os.defpath, "HOME": scratch, "TMPDIR": scratch, "LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8"}
        # no preexec_fn: it is unsafe when other threads run (ToolNode runs tools on threads);
        # the limits are applied by the child itself, before the code is read
        process = subprocess.Popen(
            [sys.executable, "-I", "-c", bootstrap],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=scratch,
            env=env,
            start_new_session=True,  # its own process group, so a timeout kills whatever it started
            text=True,
        )
        try:
            out, err = process.communicate(code, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            out, err = process.communicate()
            raise ToolException(
                f"the code ran longer than {timeout:g} s and was stopped{_tail(out, err, max_output_chars)}"
            ) from None
    if process.returncode != 0:
        raise ToolException(f"the code failed ({_exit_reason(process.returncode)}){_tail(out, err, max_output_chars)}")
    text = out + (f"\n[stderr]\n{err}" if err.strip() else "")
    return _clip(text, max_output_chars) or "(no output)"


def _kill_group(process: subprocess.Popen[Any]) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may have ended just now
        os.killpg(process.pid, signal.SIGKILL)


def _exit_reason(code: int) -> str:
    if code < 0:
        name = signal.Signals(-code).name
        why = {"SIGXCPU": "CPU time limit", "SIGKILL": "killed", "SIGSEGV": "crashed"}.get(name, "signal")
        return f"{name}: {why}"
    return f"exit status {code}"


def _tail(out: str, err: str, limit: int) -> str:
    # the bootstrap's own frames say nothing to the model; keep the lines about its code
    lines = [line for line in (out + err).splitlines() if not line.startswith('  File "<string>"')]
    text = "\n".join(lines).strip()
    return f":\n{_clip(text, limit)}" if text else ""


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit // 2] + f"\n… [{len(text) - limit} characters cut] …\n" + text[-limit // 2 :]
