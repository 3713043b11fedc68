"""A real PostgreSQL server for the tests and benchmarks: a new cluster in a temporary directory, on a loopback port.

Debian's `postgresql` package provides the binaries (`scripts/test` installs it when missing: it
is the server deployments run, with LISTEN/NOTIFY and advisory locks, where a PyPI-packaged
server would be an unofficial build). PostgreSQL refuses to run as root, so under root the
cluster belongs to the `postgres` user the package creates and every command runs as it. The
cluster is stopped and its directory removed afterwards; `restart` and `stop`/`start` let a test
take the database away mid-run. The tests run it with `fsync=off` (nothing they check needs the disk);
a benchmark of write latency keeps fsync on, as a deployment does.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg

DATABASE = "glm_mcp"
PASSWORD = "tests-only-password"


def _bin_dir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    return versions[0] if versions else None


def available() -> str | None:
    """None when a server can be run here, else why not (the tests then skip, saying so)."""
    if _bin_dir() is None:
        return "PostgreSQL is not installed (scripts/test installs Debian's postgresql package)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root with no postgres user to run the server as"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One throwaway cluster; `url` reaches its database as a user with a password."""

    def __init__(self, *, fsync: bool = False) -> None:
        bin_dir = _bin_dir()
        assert bin_dir is not None, available()
        self._bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="glm-mcp-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.fsync = fsync
        self._user: str | None = "postgres" if os.geteuid() == 0 else None
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.url = f"postgresql://glm:{PASSWORD}@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self._bin / args[0]), *args[1:]]
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=120, cwd=self.root)

    def create(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        self.start()
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as db:
            db.execute(f"CREATE USER glm PASSWORD '{PASSWORD}'")
            db.execute(f"CREATE DATABASE {DATABASE} OWNER glm")

    def start(self) -> None:
        fsync = "on" if self.fsync else "off"
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync={fsync} -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def reset(self) -> None:
        """Drop everything glm-mcp created: the next store migrates a fresh schema."""
        with psycopg.connect(self.url, autocommit=True) as db:
            db.execute("DROP SCHEMA public CASCADE")
            db.execute("CREATE SCHEMA public")


@contextlib.contextmanager
def postgres_server(*, fsync: bool = False) -> Iterator[PostgresServer]:
    """A new cluster for the `with` block, removed after it."""
    server = PostgresServer(fsync=fsync)
    try:
        server.create()
        yield server
    finally:
        server.remove()
