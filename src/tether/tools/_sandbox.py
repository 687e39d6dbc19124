"""Run a command in a bubblewrap sandbox with bounds that hold for its whole process tree.

What the sandbox is made of (see docs/sandbox.md for the guarantee in full):

* **Isolation** — ``bwrap --unshare-all --unshare-user --disable-userns``: new user, PID, network,
  IPC, UTS and cgroup namespaces, no capabilities, no nested user namespaces; a fresh ``/proc``
  (only the sandbox's processes) and a minimal ``/dev``; ``--clearenv`` and a six-variable
  environment (bwrap adds ``PWD``). The filesystem is a read-only root holding only the Python runtime (``/usr``, the
  ``/bin``/``/lib`` links, the interpreter's prefix and ``/etc/ld.so.cache``); ``/tmp`` (the
  working directory) and ``/dev/shm`` are size-capped tmpfs mounts that vanish with the sandbox.
  The agent's home, project, temporary files, databases and environment are never mounted or
  passed. Code arrives on stdin.
* **Time** — at the deadline the sandbox's PID-namespace init is killed, which kills every
  process in it (detached ``setsid`` children included); output is read with a deadline too.
* **Processes** — ``RLIMIT_NPROC`` set inside the sandbox's user namespace, which the kernel counts
  per user namespace; a ``pids`` cgroup when one can be created; a watch that stops the sandbox
  when its tree holds more tasks than allowed (root is exempt from ``RLIMIT_NPROC``).
* **Memory** — ``RLIMIT_AS`` per process; a ``memory`` cgroup for the whole tree when one can be
  created; everywhere, a watch that sums the resident anonymous and shared memory of every process
  in the tree every 50 ms and kills the sandbox when the sum passes the limit.
* **Disk** — the tmpfs sizes (their pages are memory, on top of the memory limit) and
  ``RLIMIT_FSIZE`` per file.
* **Output** — at most ``output_limit`` bytes are read before the sandbox is killed; the caller
  keeps only the head and tail of each stream.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tether.errors import TetherError
from tether.tools._cgroup import RunCgroups
from tether.tools._supervise import Outcome, supervise

__all__ = ["Sandbox", "SandboxLimits", "SandboxUnavailableError"]

MIB = 1024 * 1024
SHM_BYTES = 4 * MIB  # /dev/shm: enough for multiprocessing's semaphores, counted in the disk bound
# the environment inside, in full; HOME and TMPDIR are the scratch tmpfs
SANDBOX_ENV = {
    "HOME": "/tmp",
    "LANG": "C.UTF-8",
    "PATH": "/usr/bin:/bin",
    "PYTHONIOENCODING": "utf-8",
    "TMPDIR": "/tmp",
}
_FIX = (
    "Install bubblewrap 0.8 or newer (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap) "
    "on a Linux kernel that allows unprivileged user namespaces, or pass unsafe_local_execution=True to run "
    "the code without any isolation (only for code you trust)"
)


class SandboxUnavailableError(TetherError, RuntimeError):
    """This machine cannot isolate code: bubblewrap is missing or cannot create its namespaces.

    The message says why and how to fix it. ``create_python_tool(unsafe_local_execution=True)``
    runs code without isolation instead, when you choose that by name.
    """


@dataclass(frozen=True, kw_only=True)
class SandboxLimits:
    """Bounds for one run, each for the whole process tree unless it says otherwise."""

    timeout: float  # wall clock, seconds
    memory_mb: int  # resident memory of all processes together (and address space of each)
    max_file_mb: int  # size of any one file written
    max_disk_mb: int  # everything written to /tmp (the scratch directory)
    max_processes: int  # processes and threads at once
    output_limit: int  # bytes of stdout + stderr before the sandbox is stopped
    keep: int  # bytes of the head and of the tail of each stream the caller keeps


@functools.cache
def _runtime() -> tuple[str, tuple[str, ...]]:
    """The interpreter to run inside, and the host directories it needs, read-only."""
    interpreter = os.path.realpath(sys.executable)
    wanted = {"/usr", os.path.realpath(sys.base_prefix), os.path.realpath(sys.base_exec_prefix)}
    wanted.add(os.path.dirname(os.path.dirname(interpreter)))
    kept = sorted(p for p in wanted if not any(p != q and p.startswith(q.rstrip("/") + "/") for q in wanted))
    return interpreter, tuple(kept)


def _bwrap_args(bwrap: str, limits: SandboxLimits) -> list[str]:
    _, runtime = _runtime()
    args = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session"]
    args += ["--uid", "65534", "--gid", "65534", "--hostname", "sandbox", "--clearenv"]
    for name, value in SANDBOX_ENV.items():
        args += ["--setenv", name, value]
    for path in runtime:
        args += ["--ro-bind", path, path]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):  # merged-/usr links, or real dirs
        top = f"/{name}"
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top) and not any(top == p or top.startswith(p + "/") for p in runtime):
            args += ["--ro-bind", top, top]
    for path in ("/etc/ld.so.cache", "/etc/localtime"):
        args += ["--ro-bind-try", path, path]
    args += ["--proc", "/proc", "--dev", "/dev", "--size", str(SHM_BYTES), "--tmpfs", "/dev/shm"]
    args += ["--size", str(limits.max_disk_mb * MIB), "--tmpfs", "/tmp"]
    args += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", "/tmp"]
    return args


class Sandbox:
    """Runs ``python -I -c <bootstrap>`` in bubblewrap, with ``code`` on its stdin."""

    def __init__(self, limits: SandboxLimits) -> None:
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise SandboxUnavailableError(f"cannot sandbox code: bubblewrap (bwrap) is not on PATH. {_FIX}.")
        self.limits = limits
        self.bwrap = bwrap
        self.interpreter, self.runtime = _runtime()
        _probe(bwrap, self.interpreter)

    def run(self, bootstrap: str, code: str) -> tuple[Outcome, str | None]:
        """Run once; returns how it ended and, if a tree-wide bound stopped it, which one."""
        limits = self.limits
        cgroups = RunCgroups.create(
            {
                # + 3: the /bin/sh that joins the groups and becomes bwrap, bwrap's init inside, its monitor
                "pids": limits.max_processes + 3,
                "memory": (limits.memory_mb + limits.max_disk_mb) * MIB + SHM_BYTES + 16 * MIB,
            }
        )
        command = [*_bwrap_args(self.bwrap, limits), "--", self.interpreter, "-I", "-c", bootstrap]
        if cgroups.procs_files:
            join = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'
            command = ["/bin/sh", "-c", join, "tether-sandbox", *cgroups.procs_files, "--", *command]
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={"PATH": os.defpath},
                cwd="/",
                start_new_session=True,
            )
            watch = _TreeWatch(process.pid, limits)
            outcome = supervise(
                process,
                code.encode(),
                timeout=limits.timeout,
                output_limit=limits.output_limit,
                keep=limits.keep,
                kill=watch.kill,
                watch=watch.check,
            )
            watch.kill()  # the tree is gone already when the code ended; make sure of it
            stopped_by = watch.reason
            if stopped_by is None and outcome.returncode == -signal.SIGKILL and cgroups.memory_exhausted():
                stopped_by = "memory"
            return outcome, stopped_by
        finally:
            cgroups.remove()


class _TreeWatch:
    """Reads the sandbox's process tree from /proc: counts its tasks, sums its memory, kills it."""

    def __init__(self, root_pid: int, limits: SandboxLimits) -> None:
        self.root_pid = root_pid
        self.memory_bytes = limits.memory_mb * MIB
        self.max_tasks = limits.max_processes + 2  # bwrap outside and its init inside are in the tree too
        self.reason: str | None = None

    def check(self) -> str | None:
        tasks, memory = 0, 0
        for pid in _tree(self.root_pid):
            with contextlib.suppress(OSError, ValueError):
                status = dict(
                    line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
                )
                tasks += int(status.get("Threads", "1"))
                memory += sum(int(status.get(key, "0 kB").split()[0]) * 1024 for key in ("RssAnon", "RssShmem"))
        if tasks > self.max_tasks:
            self.reason = "processes"
        elif memory > self.memory_bytes:
            self.reason = "memory"
        return self.reason

    def kill(self) -> None:
        # the init of the sandbox's PID namespace first: when it dies the kernel kills every process
        # in the namespace; then bwrap outside (--die-with-parent would take the init down with it too)
        for pid in [*_children(self.root_pid), self.root_pid]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    found: list[int] = []
    for tid in tasks:
        with contextlib.suppress(OSError, ValueError):
            found += [int(child) for child in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
    return found


def _tree(root: int) -> list[int]:
    # orphans in the sandbox are re-parented to its PID-namespace init, so they stay in this tree
    seen, todo = [root], [root]
    while todo:
        for child in _children(todo.pop()):
            if child not in seen:
                seen.append(child)
                todo.append(child)
    return seen


@functools.cache
def _probe(bwrap: str, interpreter: str) -> None:
    """Start one sandbox with the real options, once per process, to fail early and clearly."""
    limits = SandboxLimits(
        timeout=30, memory_mb=256, max_file_mb=1, max_disk_mb=1, max_processes=8, output_limit=65536, keep=4096
    )
    command = [*_bwrap_args(bwrap, limits), "--", interpreter, "-I", "-c", "print('ok')"]
    try:
        done = subprocess.run(command, capture_output=True, timeout=30, env={"PATH": os.defpath}, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SandboxUnavailableError(f"cannot sandbox code: running {bwrap} failed ({error}). {_FIX}.") from error
    if done.returncode != 0 or done.stdout.strip() != b"ok":
        said = done.stderr.decode(errors="replace").strip() or f"exit status {done.returncode}"
        hint = ""
        if "namespace" in said or "uid map" in said or "Operation not permitted" in said:
            hint = (
                " The kernel refused to create the sandbox's namespaces: enable unprivileged user namespaces "
                "(sysctl user.max_user_namespaces > 0; kernel.unprivileged_userns_clone=1 on older Debian; on "
                "Ubuntu 24.04+ allow bwrap in AppArmor), or run where they are allowed."
            )
        elif "Unknown option" in said or "unrecognized" in said:
            hint = " This bubblewrap is too old: 0.8 or newer is needed (--size, --disable-userns)."
        raise SandboxUnavailableError(f"cannot sandbox code: {bwrap} failed: {said}.{hint} {_FIX}.")
