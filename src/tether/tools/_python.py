"""A tool that runs Python code in a bubblewrap sandbox, or, only when asked by name, unsandboxed.

Each call starts a fresh interpreter (``python -I``) in a new sandbox (``tether.tools._sandbox``):
separate user, PID, network, IPC and mount namespaces, a read-only runtime, an empty size-capped
tmpfs as working directory, a minimal environment, and bounds on time, memory, disk,
processes and output that hold for the whole process tree. docs/sandbox.md states the guarantee.

Where the machine cannot isolate (no bubblewrap, user namespaces disabled) ``create_python_tool``
raises ``SandboxUnavailableError`` at creation. ``unsafe_local_execution=True`` runs the code as
a plain child process with per-process rlimits instead: that contains mistakes, not attackers, and
the tool's description says so.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile

from tether.tools._sandbox import Sandbox, SandboxLimits
from tether.tools._supervise import Outcome, supervise
from tether.tools._tool import Tool, ToolException

__all__ = ["create_python_tool"]

MIB = 1024 * 1024
OUTPUT_LIMIT_BYTES = 1 * MIB  # a program that prints more than this is stopped
_NOFILE = 256

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


def create_python_tool(
    *,
    name: str = "python",
    timeout: float = 10.0,
    memory_mb: int = 512,
    max_file_mb: int = 16,
    max_disk_mb: int = 64,
    max_processes: int = 32,
    max_output_chars: int = 8000,
    unsafe_local_execution: bool = False,
) -> Tool:
    """A ``python`` tool (``code: str``) that runs each call in a fresh bubblewrap sandbox.

    ``timeout`` (seconds, wall clock), ``memory_mb`` (resident memory of all its processes
    together), ``max_disk_mb`` (all files in its scratch directory), ``max_processes`` (processes
    and threads at once) bound the whole process tree; ``max_file_mb`` bounds each file. Output past
    1 MiB stops the code; the model sees at most ``max_output_chars`` characters of it.

    Raises ``SandboxUnavailableError`` when this machine cannot sandbox code (it says why and what
    to install), unless ``unsafe_local_execution=True``: then the code runs unisolated, as your
    user, with your files and network, under per-process limits only. See docs/sandbox.md.
    """
    if timeout <= 0 or memory_mb <= 0 or max_output_chars <= 0 or max_disk_mb <= 0 or max_processes <= 0:
        raise ValueError(
            "timeout, memory_mb, max_disk_mb, max_processes and max_output_chars must be positive, "
            "max_file_mb non-negative"
        )
    if max_file_mb < 0:
        raise ValueError("max_file_mb must be non-negative")
    if not isinstance(unsafe_local_execution, bool):
        raise TypeError("unsafe_local_execution must be True or False")
    limits = [
        ("RLIMIT_CPU", int(timeout) + 1),  # CPU time cannot exceed the wall clock; +1 as a backstop
        ("RLIMIT_AS", memory_mb * MIB),
        ("RLIMIT_FSIZE", max_file_mb * MIB),
        ("RLIMIT_CORE", 0),
    ]
    keep = max_output_chars * 2  # bytes of each stream's head and tail: enough for the characters shown
    if unsafe_local_execution:
        bootstrap = _BOOTSTRAP.format(limits=limits)

        def execute(code: str) -> str:
            return _result(
                _run_unsandboxed(code, bootstrap, timeout, keep),
                None,
                timeout,
                memory_mb,
                max_output_chars,
                max_processes,
            )

        description = _describe_unsafe(timeout, memory_mb, max_file_mb)
    else:
        # inside the sandbox RLIMIT_NPROC counts only the sandbox's own user namespace
        limits += [("RLIMIT_NPROC", max_processes), ("RLIMIT_NOFILE", _NOFILE)]
        bootstrap = _BOOTSTRAP.format(limits=limits)
        sandbox = Sandbox(
            SandboxLimits(
                timeout=timeout,
                memory_mb=memory_mb,
                max_file_mb=max_file_mb,
                max_disk_mb=max_disk_mb,
                max_processes=max_processes,
                output_limit=OUTPUT_LIMIT_BYTES,
                keep=keep,
            )
        )

        def execute(code: str) -> str:
            outcome, stopped_by = sandbox.run(bootstrap, code)
            return _result(outcome, stopped_by, timeout, memory_mb, max_output_chars, max_processes)

        description = _describe(timeout, memory_mb, max_file_mb, max_disk_mb, max_processes)

    def python(code: str) -> str:
        """Run Python code.

        Args:
            code: a complete Python program; print() what you want to see.
        """
        return execute(code)

    built = Tool.from_function(python, name=name, description=description)
    built.handle_tool_error = True  # failing code is an answer the model should read, not a crash
    return built


def _describe(timeout: float, memory_mb: int, max_file_mb: int, max_disk_mb: int, max_processes: int) -> str:
    return (
        "Run Python 3 code and return what it prints (the value of a final expression is printed too). "
        "Each call is a fresh, isolated sandbox: no state is kept between calls, no network, no access to "
        f"files outside its scratch directory. Limits: {timeout:g} s wall clock, {memory_mb} MB of memory, "
        f"files up to {max_file_mb} MB and {max_disk_mb} MB in all in the scratch directory (the working "
        f"directory, also /tmp), {max_processes} processes; no input can be read. The standard library "
        "and the packages installed with that Python can be imported."
    )


def _describe_unsafe(timeout: float, memory_mb: int, max_file_mb: int) -> str:
    return (
        "Run Python 3 code and return what it prints (the value of a final expression is printed too). "
        "UNSAFE LOCAL EXECUTION, WITHOUT A SANDBOX: the code runs as the agent's user and can read its files "
        f"and use the network. Each call is a fresh process. Limits: {timeout:g} s wall clock, {memory_mb} MB "
        f"of memory per process, files up to {max_file_mb} MB, in an empty scratch directory that is deleted "
        "afterwards; no input can be read."
    )


def _run_unsandboxed(code: str, bootstrap: str, timeout: float, keep: int) -> Outcome:
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
            start_new_session=True,  # its own process group, so a timeout kills what it started (unless it left it)
        )

        def kill() -> None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)

        outcome = supervise(
            process, code.encode(), timeout=timeout, output_limit=OUTPUT_LIMIT_BYTES, keep=keep, kill=kill
        )
        kill()
        return outcome


def _result(
    outcome: Outcome, stopped_by: str | None, timeout: float, memory_mb: int, limit: int, max_processes: int
) -> str:
    out, err = outcome.stdout.text(), outcome.stderr.text()
    why = stopped_by or outcome.stopped
    if why == "timeout":
        raise ToolException(f"the code ran longer than {timeout:g} s and was stopped{_tail(out, err, limit)}")
    if why == "output":
        raise ToolException(
            f"the code printed more than {OUTPUT_LIMIT_BYTES // MIB} MiB and was stopped; its output was truncated"
            f"{_tail(out, err, limit)}"
        )
    if why == "memory":
        raise ToolException(
            f"the code's processes together used more than {memory_mb} MB of memory and were stopped"
            f"{_tail(out, err, limit)}"
        )
    if why == "processes":
        raise ToolException(
            f"the code ran more than {max_processes} processes or threads at once and was stopped"
            f"{_tail(out, err, limit)}"
        )
    if outcome.returncode != 0:
        raise ToolException(f"the code failed ({_exit_reason(outcome.returncode)}){_tail(out, err, limit)}")
    text = out + (f"\n[stderr]\n{err}" if err.strip() else "")
    return _clip(text, limit) or "(no output)"


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "it could not be stopped in time"
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
