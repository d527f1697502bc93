"""A throwaway PostgreSQL server for tests: Debian's package, a fresh data folder, 127.0.0.1 on a free port.

CI runs as root and `initdb` refuses root, so the server's commands run as the package's `postgres` user (the
data folder is that user's). The package is installed (apt-get, non-interactive) when it is missing and we are
root; `.ci/run` does the same before the tests, so this only matters for a developer's first run.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

START_TIMEOUT_S = 60
SERVICE_USER = "postgres"  # created by Debian's postgresql package


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    username: str
    database: str

    @property
    def url(self) -> str:
        return f"postgresql://{self.username}@{self.host}:{self.port}/{self.database}"

    def create_database(self, name: str) -> "PostgresServer":
        """An empty database `name` on this server (one per test keeps instances apart)."""
        import psycopg2  # dagster-postgres's driver

        if not name.isidentifier():
            raise ValueError(f"database name {name!r} must be an identifier")
        con = psycopg2.connect(self.url)
        try:
            con.autocommit = True  # CREATE DATABASE cannot run inside a transaction
            with con.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            con.close()
        return PostgresServer(self.host, self.port, self.username, name)


def _bin_dir() -> Path | None:
    """The newest installed server's binaries (Debian keeps them off PATH, under /usr/lib/postgresql/N/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def ensure_installed() -> Path:
    """The server binaries' folder, installing Debian's `postgresql` first when it is missing (root only)."""
    if (found := _bin_dir()) is not None:
        return found
    if os.geteuid() != 0:
        raise RuntimeError("PostgreSQL is not installed and this is not root: run "
                           "`sudo apt-get install -y postgresql` (the tests start their own server)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"], check=True, env=env)
    if (found := _bin_dir()) is None:
        raise RuntimeError("apt-get installed postgresql but no /usr/lib/postgresql/*/bin/initdb appeared")
    return found


def free_port() -> int:
    """A port nothing listens on now, on 127.0.0.1 (the tests' servers bind there only)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run_as_owner(args: list[str], user: str | None) -> None:
    result = subprocess.run(args, user=user, capture_output=True, text=True, cwd="/")
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])} failed ({result.returncode}): {(result.stderr or result.stdout)[-2000:]}")


@contextmanager
def postgres_server(database: str = "dagster") -> Iterator[PostgresServer]:
    """A running server with an empty `database`, trusted connections from 127.0.0.1 only; removed afterwards."""
    bin_dir = ensure_installed()
    user = SERVICE_USER if os.geteuid() == 0 else None
    owner = pwd.getpwnam(SERVICE_USER if user else pwd.getpwuid(os.geteuid()).pw_name)
    root = Path(tempfile.mkdtemp(prefix="kinetics-pg-"))  # under /tmp: the service user can reach it
    data = root / "data"
    try:
        data.mkdir()
        os.chown(root, owner.pw_uid, owner.pw_gid), os.chown(data, owner.pw_uid, owner.pw_gid)
        _run_as_owner([str(bin_dir / "initdb"), "-D", str(data), "-U", owner.pw_name, "--auth=trust",
                       "--encoding=UTF8", "--no-sync"], user)
        port = free_port()
        options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} -c fsync=off"
        _run_as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "server.log"),
                       "-w", "-t", str(START_TIMEOUT_S), "start"], user)
        try:
            _run_as_owner([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", owner.pw_name,
                           database], user)
            yield PostgresServer(host="127.0.0.1", port=port, username=owner.pw_name, database=database)
        finally:
            _run_as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], user)
    finally:
        shutil.rmtree(root, ignore_errors=True)
