"""A throwaway PostgreSQL server for the test session.

``PostgresServer`` runs ``initdb`` on a temporary data directory, starts ``postgres`` on a free
loopback port (its unix socket in the same directory), creates a database and hands out a URL.
Leaving the ``with`` block stops the server and removes the directory. As root, the server
runs as the ``postgres`` system user (PostgreSQL refuses to run as root).

Set ``TETHER_TEST_POSTGRES_URL`` to use an existing server instead (a CI service container,
say); the tests then only create and drop schemas in it.

Run it by hand to get a server for experiments: ``python -m tests.pg`` prints a URL and waits;
SIGINT or SIGTERM stops the server and removes its directory.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = [
    "INSTALL_HINT",
    "PostgresServer",
    "PostgresUnavailableError",
    "find_binary",
    "fresh_schema",
    "postgres_url",
    "sql",
    "with_search_path",
]

INSTALL_HINT = (
    "install PostgreSQL's server binaries (initdb, pg_ctl, postgres): `sudo bash scripts/ensure-postgres.sh` "
    "(Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql), "
    "or point TETHER_TEST_POSTGRES_URL at a server you may create schemas in"
)

_SEARCH = ("/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin", "/usr/pgsql-*/bin", "/opt/homebrew/opt/postgresql*/bin")


class PostgresUnavailableError(RuntimeError):
    """No PostgreSQL server could be started (or reached) for the tests."""


def find_binary(name: str) -> str | None:
    """A PostgreSQL server binary: on PATH, or in the usual install folders (newest version first)."""
    found = shutil.which(name)
    if found:
        return found
    candidates: list[str] = []
    for pattern in _SEARCH:
        candidates += glob.glob(os.path.join(pattern, name))

    def version(path: str) -> tuple[int, ...]:
        digits = "".join(c if c.isdigit() else " " for c in path)
        return tuple(int(d) for d in digits.split())

    candidates.sort(key=version, reverse=True)
    return next((c for c in candidates if os.access(c, os.X_OK)), None)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """``with PostgresServer() as url: ...`` — a private server for as long as the block runs."""

    def __init__(self, database: str = "tether_test", *, durable: bool = False) -> None:
        self.database = database
        # tests want speed (fsync off); benchmarks want a server configured as in production
        self.durable = durable
        self.root: Path | None = None
        self.url = ""
        self._pg_ctl = ""
        self._user: str | None = None  # the system user the server runs as, when we are root

    # -- running commands as the server's user -------------------------------------------------
    def _cmd(self, *argv: str) -> list[str]:
        if self._user is None:
            return list(argv)
        runuser = shutil.which("runuser")
        if runuser:
            return [runuser, "-u", self._user, "--", *argv]
        return ["su", "-s", "/bin/sh", self._user, "-c", " ".join(_quote(a) for a in argv)]

    def _run(self, *argv: str, timeout: float = 60) -> None:
        proc = subprocess.run(
            self._cmd(*argv), capture_output=True, text=True, timeout=timeout, cwd=self.root, check=False
        )
        if proc.returncode != 0:
            raise PostgresUnavailableError(
                f"{Path(argv[0]).name} failed ({proc.returncode}): {proc.stderr or proc.stdout}"
            )

    def start(self) -> str:
        initdb, pg_ctl = find_binary("initdb"), find_binary("pg_ctl")
        if not initdb or not pg_ctl or not find_binary("postgres"):
            raise PostgresUnavailableError(f"PostgreSQL server binaries not found; {INSTALL_HINT}")
        self._pg_ctl = pg_ctl
        self.root = Path(tempfile.mkdtemp(prefix="tether-pg-"))
        if os.geteuid() == 0:
            import pwd

            try:
                entry = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise PostgresUnavailableError(
                    "running as root and there is no `postgres` system user to run the server as"
                ) from exc
            self._user = "postgres"
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.root.chmod(0o700)
        data = self.root / "data"
        self._run(
            initdb,
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        # a test server: durability off (fsync and friends) makes it start and commit quickly
        options = f"-c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} -c max_connections=200"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        last: PostgresUnavailableError | None = None
        for _attempt in range(5):  # another process may take the port between choosing and binding it
            port = _free_port()
            try:
                self._run(
                    pg_ctl,
                    "-D",
                    str(data),
                    "-l",
                    str(self.root / "server.log"),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    f"-p {port} {options}",
                    "start",
                )
            except PostgresUnavailableError as exc:
                last = exc
                continue
            break
        else:
            log = (self.root / "server.log").read_text(errors="replace")[-2000:] if self.root else ""
            raise PostgresUnavailableError(f"{last}\nserver log:\n{log}")
        admin = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        _create_database(admin, self.database)
        self.url = f"postgresql://postgres@127.0.0.1:{port}/{self.database}"
        return self.url

    def stop(self) -> None:
        if self.root is None:
            return
        data = self.root / "data"
        if (data / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self._run(self._pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop", timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def __enter__(self) -> str:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


def _create_database(admin_url: str, name: str) -> None:
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
            return
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise PostgresUnavailableError(f"the server started but does not answer: {exc}") from exc
            time.sleep(0.1)


def with_search_path(url: str, schema: str) -> str:
    """``url`` as a connection string whose sessions create and find tables in ``schema``."""
    from psycopg.conninfo import make_conninfo

    return make_conninfo(url, options=f"-c search_path={schema}")


@contextlib.contextmanager
def fresh_schema(url: str) -> Iterator[str]:
    """A new, empty schema for one test (dropped afterwards): a connection string that uses it."""
    import uuid

    import psycopg

    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")  # type: ignore[arg-type]
    try:
        yield with_search_path(url, schema)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")  # type: ignore[arg-type]


def sql(conninfo: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    """Run ``query`` the way a person would, over a separate plain connection; return its rows."""
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(query, params)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


@contextlib.contextmanager
def postgres_url() -> Iterator[str]:
    """A URL of a database the tests may create schemas in: ``TETHER_TEST_POSTGRES_URL`` or a private server.

    Raises ``PostgresUnavailableError`` (with how to install PostgreSQL) when neither works.
    """
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise PostgresUnavailableError("psycopg is not installed: pip install 'tether[postgres]'") from exc
    external = os.environ.get("TETHER_TEST_POSTGRES_URL")
    if external:
        yield external
        return
    with PostgresServer() as url:
        yield url


def _serve() -> None:
    import signal

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)  # also when started in the background, where SIGINT is ignored
    with postgres_url() as url:
        print(url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


if __name__ == "__main__":
    _serve()
