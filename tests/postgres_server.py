"""A throwaway PostgreSQL server for the tests: initdb in a temporary folder, listening on 127.0.0.1 only, with a
password, stopped and started again on the same port at will.

The binaries come from the `pgserver` wheel (in the `dev` extra), so `make test` needs no system package; where it
has no wheel (Linux on ARM, Python 3.13 and later) a system PostgreSQL's are used (Debian's `postgresql`). initdb and
postgres refuse to run as root: under root (CI) they run as `nobody`, from a copy of the wheel's binaries inside the
server's own folder, so that no parent folder's permissions matter.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import psycopg

SERVER_USER = "nobody"  # who runs the server when the tests run as root
# Fast and throwaway: fsync off (a crash of the server, not of the machine, loses no committed row).
SETTINGS = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = ''
fsync = off
full_page_writes = off
max_connections = 60
"""


class ServerUnavailable(Exception):
    """No PostgreSQL server can be started here; the message says why, on one line."""


class PostgresServer:
    """A PostgreSQL server of the tests' own; `url` connects to it as `postgres` with `password`."""

    def __init__(self, password: str) -> None:
        self.password = password
        self.folder = Path(tempfile.mkdtemp(prefix="articlebot-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self._as = _unprivileged() if os.geteuid() == 0 else {}
        self._databases = 0
        try:
            self._own(self.folder)
            self._bin = self._binaries()
            self._init()
            self.start()
        except BaseException:
            self.close()
            raise

    def url(self, database: str = "postgres", password: str | None = None, port: int | None = None) -> str:
        return f"postgresql://postgres:{password or self.password}@127.0.0.1:{port or self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; its URL."""
        self._databases += 1
        name = f"log{self._databases}"
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def start(self) -> None:
        self._pg_ctl("-l", str(self.folder / "server.log"), "-w", "-t", "30", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` closes sessions, `immediate` is a crash (sessions just vanish)."""
        self._pg_ctl("-m", mode, "-w", "stop")

    def close(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)

    def _binaries(self) -> Path:
        wheel = _wheel_install()
        if wheel is not None:
            return self._copied(wheel) if self._as else wheel / "bin"
        system = shutil.which("initdb") or max(map(str, Path("/usr/lib/postgresql").glob("*/bin/initdb")), default="")
        if not system:
            raise ServerUnavailable(
                "no PostgreSQL server binaries: pgserver has no wheel for this platform and initdb is not installed "
                "(apt-get install postgresql)"
            )
        return Path(system).resolve().parent

    def _copied(self, install: Path) -> Path:
        """The wheel's binaries copied where `nobody` can run them, laid out as the wheel is (its binaries find
        their libraries at ../../../pgserver.libs)."""
        shutil.copytree(
            install, self.folder / "pgserver" / "pginstall", ignore=shutil.ignore_patterns("include", "*.a")
        )
        libraries = install.parent.parent / "pgserver.libs"
        if libraries.is_dir():
            shutil.copytree(libraries, self.folder / "pgserver.libs")
        return self.folder / "pgserver" / "pginstall" / "bin"

    def _init(self) -> None:
        secret = self.folder / "password"
        secret.write_text(self.password, encoding="utf-8")
        self._own(secret)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", f"--pwfile={secret}", "--auth=scram-sha-256")
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(SETTINGS.format(port=self.port))

    def _own(self, path: Path) -> None:
        """Give a file or folder to the user who runs the server, when it is not ours."""
        if self._as:
            os.chown(path, self._as["user"], self._as["group"])

    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), *args)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self._bin / program), *args]
        with tempfile.TemporaryFile("w+") as output:  # not a pipe: the server pg_ctl starts would hold it open
            done = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, check=False, **self._as)
            output.seek(0)
            said = output.read().strip().splitlines()
        if done.returncode:
            server_log = self.folder / "server.log"
            last = server_log.read_text().strip().splitlines()[-1:] if server_log.exists() else []
            raise ServerUnavailable(f"{program} failed (exit {done.returncode}): {(said + last or ['no output'])[-1]}")


def _unprivileged() -> dict[str, Any]:
    """subprocess.run arguments that run a program as SERVER_USER."""
    entry = pwd.getpwnam(SERVER_USER)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _wheel_install() -> Path | None:
    """pgserver's PostgreSQL install (bin, lib, share), found without importing pgserver (which starts servers)."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "pginstall"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
