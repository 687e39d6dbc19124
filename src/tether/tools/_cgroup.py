"""Kernel-enforced caps for a whole process tree, where this process may create child cgroups.

Optional hardening on top of the sandbox's portable bounds: when the ``pids`` or ``memory``
controller of this process's own cgroup (v1, or v2 with the controller delegated) lets us create a
child group, each sandbox run gets one, its limits are set, and the run's first process joins it
before bubblewrap starts, so every process of the tree is counted. Where no controller is writable
(a typical non-root machine without delegation) this returns nothing and the portable bounds apply.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["RunCgroups"]

_LIMIT_FILES = {  # controller -> (v1 limit file, v2 limit file)
    "pids": ("pids.max", "pids.max"),
    "memory": ("memory.limit_in_bytes", "memory.max"),
}


@dataclass
class RunCgroups:
    """The child cgroups of one run; ``procs_files`` are what its first process writes its pid to."""

    dirs: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def create(cls, limits: dict[str, int]) -> RunCgroups:
        groups = cls()
        for controller, value in limits.items():
            own = _own_cgroup_dir(controller)
            if own is None:
                continue
            child = own / f"tether-sandbox-{uuid.uuid4().hex[:12]}"
            try:
                child.mkdir()
            except OSError:
                continue
            limit_file = next((child / name for name in _LIMIT_FILES[controller] if (child / name).exists()), None)
            try:
                if limit_file is None:
                    raise OSError(f"{controller} is not enabled for child groups of {own}")
                limit_file.write_text(str(value))
            except OSError:
                with contextlib.suppress(OSError):
                    child.rmdir()
                continue
            groups.dirs[controller] = child
        return groups

    @property
    def procs_files(self) -> list[str]:
        return [str(path / "cgroup.procs") for path in self.dirs.values()]

    def memory_exhausted(self) -> bool:
        """Whether the kernel refused or reclaimed memory at the limit (the tree hit it)."""
        path = self.dirs.get("memory")
        if path is None:
            return False
        with contextlib.suppress(OSError, ValueError):
            if (path / "memory.failcnt").exists():
                return int((path / "memory.failcnt").read_text()) > 0
            events = dict(line.split() for line in (path / "memory.events").read_text().splitlines())
            return int(events.get("max", 0)) > 0 or int(events.get("oom_kill", 0)) > 0
        return False

    def remove(self) -> None:
        """Remove the groups once their processes are gone (a killed tree takes a moment to be reaped)."""
        for path in self.dirs.values():
            for _ in range(40):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)


def _own_cgroup_dir(controller: str) -> Path | None:
    """This process's cgroup directory in the hierarchy holding ``controller``, if it is writable."""
    try:
        memberships = Path("/proc/self/cgroup").read_text().splitlines()
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    for line in memberships:
        _, controllers, path = line.split(":", 2)
        v2 = controllers == ""
        if not v2 and controller not in controllers.split(","):
            continue
        for mount in mounts:
            fields, _, rest = mount.partition(" - ")
            fstype, _, options = [*rest.split(), "", "", ""][:3]
            parts = fields.split()
            root, mountpoint = parts[3], parts[4]
            if (v2 and fstype == "cgroup2") or (not v2 and fstype == "cgroup" and controller in options.split(",")):
                relative = os.path.relpath(path, root) if path.startswith(root) else None
                if relative is None or relative.startswith(".."):
                    continue
                candidate = Path(mountpoint) / relative
                if os.access(candidate, os.W_OK):
                    return candidate
    return None
