"""The Python tool's sandbox holds against each probe of the red-team report (issue 12, item 2).

Each test runs hostile code through ``create_python_tool`` and checks, from outside, that the
probe failed: the agent's environment, files, open database and network are out of reach, and
every bound (time, processes, memory, disk, output) holds for the whole process tree. The
tree-wide bounds run twice: with whatever cgroups this machine lets the tool create, and with
cgroups switched off, so the portable mechanisms (rlimits in the user namespace, the tree watch)
are tested on every machine.

Without bubblewrap these tests are skipped, saying how to install it, except in CI (``CI`` set),
where they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import tether.tools._sandbox as sandbox_module
from tether.tools import SandboxUnavailableError, Tool, ToolException, create_python_tool
from tether.tools._cgroup import RunCgroups

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="bubblewrap needs Linux")
REPO = Path(__file__).parents[2]
MARGIN_S = 5.0  # generous: a shared, noisy machine


@pytest.fixture(autouse=True)
def _bubblewrap() -> None:
    if shutil.which("bwrap") is None:
        message = "bubblewrap (bwrap) is not installed: run `bash scripts/ensure-sandbox.sh` (as root) to install it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(params=["cgroups-if-any", "no-cgroups"])
def cgroups(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "no-cgroups":
        monkeypatch.setattr(sandbox_module.RunCgroups, "create", classmethod(lambda cls, limits: RunCgroups()))
    return str(request.param)


def call(tool: Tool, code: str) -> tuple[str, str]:
    """(status, text) of one call, as the model would see it."""
    try:
        return "success", tool.invoke({"code": code})
    except ToolException as error:
        return "error", str(error)


def peak_rss_kb() -> int:
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])


def marked_processes(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


# -- the agent's environment, files, database and network ---------------------------------------


def test_parent_environment_is_not_readable() -> None:
    # /proc/<pid>/environ shows what a process was started with, so the agent is a fresh process
    # started with the key, as a real agent is
    secret = f"sk-test-{uuid.uuid4().hex}"
    probe = """
import os
seen = [str(os.environ)]
pids = [str(os.getppid()), "1", "self"] + [p for p in os.listdir("/proc") if p.isdigit()]
for pid in pids:
    try:
        seen.append(open("/proc/" + pid + "/environ", "rb").read().decode(errors="replace"))
    except OSError as error:
        seen.append("refused " + pid + ": " + type(error).__name__)
print("\\n".join(seen))
"""
    agent = f"""
from tether.tools import create_python_tool
print(create_python_tool().invoke({{"code": {probe!r}}}))
"""
    env = {**os.environ, "TETHER_TEST_API_KEY": secret}
    done = subprocess.run([sys.executable, "-c", agent], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "environ({" in done.stdout  # the probe ran
    assert secret not in done.stdout
    assert "TETHER_TEST_API_KEY" not in done.stdout


def test_open_checkpoint_database_is_not_reachable(tmp_path: Path) -> None:
    db_path = tmp_path / "checkpoints.sqlite"
    db = sqlite3.connect(db_path)
    db.execute("create table approvals (id integer primary key, approved text)")
    db.execute("insert into approvals (approved) values ('no')")
    db.commit()
    code = f"""
import os, sqlite3
hits = []
for pid in [p for p in os.listdir("/proc") if p.isdigit()] + ["{os.getpid()}"]:
    try:
        for fd in os.listdir(f"/proc/{{pid}}/fd"):
            target = os.readlink(f"/proc/{{pid}}/fd/{{fd}}")
            if "checkpoints.sqlite" in target:
                hits.append(target)
    except OSError:
        pass
for path in hits + [{str(db_path)!r}]:
    try:
        con = sqlite3.connect(path)
        con.execute("update approvals set approved = 'yes'")
        con.commit()
        print("CHANGED", path)
    except Exception as error:
        print("refused", path, type(error).__name__)
print("fd hits:", hits)
"""
    status, text = call(create_python_tool(), code)
    db.close()
    assert status == "success", text
    assert "CHANGED" not in text and "fd hits: []" in text
    assert sqlite3.connect(db_path).execute("select approved from approvals").fetchall() == [("no",)]


def test_files_outside_the_scratch_directory_are_out_of_reach(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("the agent's secret")
    home = Path.home()
    targets = [secret, home / ".bashrc", REPO / "pyproject.toml", Path(sys.executable), Path("/etc/passwd")]
    new_files = [tmp_path / "planted.txt", home / f"planted-{uuid.uuid4().hex}", REPO / f"planted-{uuid.uuid4().hex}"]
    new_files += [Path(sys.base_prefix) / f"planted-{uuid.uuid4().hex}", Path("/usr") / f"planted-{uuid.uuid4().hex}"]
    code = f"""
for path in {[str(p) for p in targets]!r}:
    try:
        open(path, "rb").read(1)
        print("READ", path)
    except OSError as error:
        print("refused", path, type(error).__name__)
for path in {[str(p) for p in new_files]!r}:
    try:
        open(path, "w").write("x")
        print("WROTE", path)
    except OSError as error:
        print("refused", path, type(error).__name__)
open("scratch.txt", "w").write("fine")
print(open("/tmp/scratch.txt").read())
"""
    status, text = call(create_python_tool(), code)
    planted = [path for path in new_files if path.exists()]
    for path in planted:  # a failing sandbox must not leave litter in the repo or $HOME
        path.unlink()
    assert status == "success", text
    assert "READ" not in text and "WROTE" not in text, text
    assert text.rstrip().endswith("fine")  # the scratch directory itself is writable
    assert planted == []


def test_network_is_unreachable() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        server.setblocking(False)
        port = server.getsockname()[1]
        code = f"""
import socket
for host in ["127.0.0.1", "::1", "1.1.1.1"]:
    try:
        socket.create_connection((host, {port}), timeout=2).close()
        print("CONNECTED", host)
    except OSError as error:
        print("refused", host, type(error).__name__)
"""
        status, text = call(create_python_tool(), code)
        assert status == "success", text
        assert "CONNECTED" not in text
        with pytest.raises(BlockingIOError):
            server.accept()  # nothing ever reached the server


def test_no_capabilities_and_no_nested_namespaces() -> None:
    code = """
import ctypes, os
print([line for line in open("/proc/self/status") if line.startswith("CapEff")][0].split()[1])
libc = ctypes.CDLL(None, use_errno=True)
if libc.unshare(0x10000000) == 0:  # CLONE_NEWUSER: a nested namespace would hand out capabilities
    print("UNSHARED")
else:
    print("refused", os.strerror(ctypes.get_errno()))
"""
    status, text = call(create_python_tool(), code)
    assert status == "success", text
    assert text.splitlines()[0] == "0000000000000000"
    assert "UNSHARED" not in text


# -- bounds on the whole process tree -----------------------------------------------------------


def test_detached_child_neither_outlives_the_call_nor_holds_it(cgroups: str) -> None:
    marker = f"tether-detached-{uuid.uuid4().hex}"
    code = f"""
import os, subprocess, sys, time
if os.fork() == 0:  # a grandchild in its own session, holding stdout open
    os.setsid()
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)  # {marker}"])
    time.sleep(60)
    os._exit(0)
print("started", flush=True)
time.sleep(60)
"""
    tool = create_python_tool(timeout=2)
    started = time.monotonic()
    status, text = call(tool, code)
    elapsed = time.monotonic() - started
    assert status == "error" and "ran longer than 2 s" in text, text
    assert elapsed < 2 + MARGIN_S
    time.sleep(0.5)  # the kernel reaps a killed namespace quickly, but not instantly
    assert marked_processes(marker) == []

    # and when the code ends on its own, what it left behind goes with it
    status, text = call(tool, code.replace('print("started", flush=True)\ntime.sleep(60)\n', 'print("left")\n'))
    time.sleep(0.5)
    assert (status, text) == ("success", "left\n")
    assert marked_processes(marker) == []


def test_fork_bomb_is_capped(cgroups: str) -> None:
    code = """
import os, time
started = 0
try:
    for _ in range(300):
        if os.fork() == 0:
            time.sleep(5)
            os._exit(0)
        started += 1
except OSError as error:
    print("refused after", started, type(error).__name__)
print("started", started)
"""
    status, text = call(create_python_tool(timeout=8, max_processes=32), code)
    assert "started 300" not in text, text
    if status == "success":  # the kernel refused the fork (RLIMIT_NPROC in the user namespace, or pids cgroup)
        started = int(text.split("started")[-1])
        assert started <= 32, text
    else:  # the tree watch saw too many tasks and stopped the sandbox
        assert "processes or threads" in text, text


def test_children_cannot_each_take_the_whole_memory_allowance(cgroups: str) -> None:
    code = """
import os, time
pipes = []
for _ in range(5):
    read, write = os.pipe()
    if os.fork() == 0:
        block = b"x" * (160 * 1024 * 1024)  # touched, so resident
        os.write(write, b"1")
        time.sleep(3)
        os._exit(0)
    pipes.append(read)
held = sum(len(os.read(r, 1)) for r in pipes)
print("held together", held)
"""
    status, text = call(create_python_tool(timeout=10, memory_mb=200), code)
    assert "held together 5" not in text, text
    assert status == "error"
    assert "MB of memory" in text or "SIGKILL" in text or "MemoryError" in text, text


def test_disk_writes_are_capped_in_total(cgroups: str) -> None:
    code = """
written = 0
try:
    for i in range(12):
        with open(f"part{i}.bin", "wb") as f:
            f.write(b"x" * (16 * 1024 * 1024))
        written += 16
except OSError as error:
    print("refused", error.strerror)
print("written MB", written)
"""
    status, text = call(create_python_tool(max_file_mb=16, max_disk_mb=64), code)
    assert status == "success", text
    assert "No space left on device" in text
    assert int(text.split("written MB")[-1]) <= 64


def test_huge_output_is_cut_without_being_held(cgroups: str) -> None:
    before = peak_rss_kb()
    code = "import sys\nchunk = 'a' * (1 << 20)\nfor _ in range(400):\n    sys.stdout.write(chunk)\n"
    started = time.monotonic()
    status, text = call(create_python_tool(timeout=30, max_output_chars=1000), code)
    assert time.monotonic() - started < 30
    assert status == "error" and "truncated" in text, text[:300]
    assert len(text) < 2000
    assert peak_rss_kb() - before < 100 * 1024  # far less than the 400 MB printed


# -- where the machine cannot isolate --------------------------------------------------------------


@pytest.fixture
def no_bwrap_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    yield bin_dir


def test_refuses_to_start_without_bubblewrap(no_bwrap_on_path: Path) -> None:
    with pytest.raises(SandboxUnavailableError) as caught:
        create_python_tool()
    message = str(caught.value)
    assert "bubblewrap" in message and "apt-get install bubblewrap" in message
    assert "unsafe_local_execution=True" in message


def test_refuses_when_namespaces_cannot_be_created(no_bwrap_on_path: Path) -> None:
    fake = no_bwrap_on_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(SandboxUnavailableError) as caught:
        create_python_tool()
    assert "user namespaces" in str(caught.value) and "No permissions" in str(caught.value)


def test_unsafe_local_execution_is_chosen_by_name(no_bwrap_on_path: Path) -> None:
    tool = create_python_tool(unsafe_local_execution=True, timeout=5)
    assert "UNSAFE LOCAL EXECUTION" in tool.description
    assert call(tool, "print(6 * 7)") == ("success", "42\n")
    with pytest.raises(TypeError):
        create_python_tool(unsafe=True)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        create_python_tool(unsafe_local_execution="yes")  # type: ignore[arg-type]
