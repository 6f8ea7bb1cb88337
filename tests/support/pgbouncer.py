"""A real PgBouncer (Debian's `pgbouncer`) in transaction mode in front of a PostgreSQL server.

PgBouncer refuses to run as root: as root it is started with `-u` as the embedded PostgreSQL's
system user, with its files in a directory that user reaches (never under /root).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pasar_core.embedded_pg import SYSTEM_USER, install_dir
from sqlalchemy.engine import make_url

from tests.support.processes import started
from tests.support.servers import free_port

START_TIMEOUT_S = 20.0


ADMIN_USER = "pgbouncer_admin"
ADMIN_PASSWORD = "pgbouncer-admin-password"


class NoPgBouncer(RuntimeError):
    """Debian's pgbouncer is not installed."""


@dataclass(frozen=True, slots=True)
class PgBouncer:
    url: str
    """The server URL with PgBouncer's address (same user, password and database)."""
    port: int

    def show(self, what: str) -> list[dict[str, str]]:
        """`SHOW <what>` on PgBouncer's admin console (through the wheel's psql)."""
        result = subprocess.run(
            [str(install_dir() / "bin" / "psql"), "-h", "127.0.0.1", "-p", str(self.port),
             "-U", ADMIN_USER, "-d", "pgbouncer", "-A", "-F", "\t", "-c", f"SHOW {what}"],
            env={**os.environ, "PGPASSWORD": ADMIN_PASSWORD},
            capture_output=True, text=True, check=True, timeout=30,
        )  # fmt: skip
        header, *rows = [line.split("\t") for line in result.stdout.splitlines()[:-1]]
        return [dict(zip(header, row, strict=True)) for row in rows]

    def transactions(self, database: str) -> int:
        """Transactions PgBouncer has pooled for `database` so far."""
        return sum(int(row["total_xact_count"]) for row in self.show("STATS")
                   if row["database"] == database)  # fmt: skip


def _config(port: int, server_host: str, server_port: int, workdir: Path, pool_size: int) -> str:
    return f"""[databases]
* = host={server_host} port={server_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {workdir}/users.txt
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 500
ignore_startup_parameters = extra_float_digits
logfile = {workdir}/pgbouncer.log
pidfile = {workdir}/pgbouncer.pid
admin_users = {ADMIN_USER}
"""


def _reachable(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def pgbouncer(server_url: str, *, pool_size: int = 4) -> Iterator[PgBouncer]:
    """PgBouncer in transaction mode in front of `server_url`'s server, `pool_size` server
    connections per database and user."""
    binary = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )
    if binary is None:
        raise NoPgBouncer("pgbouncer is not installed: apt-get install -y pgbouncer")
    url = make_url(server_url)
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="pasar-test-pgbouncer-", dir="/tmp"))
    (workdir / "users.txt").write_text(
        f'"{url.username}" "{url.password}"\n"{ADMIN_USER}" "{ADMIN_PASSWORD}"\n'
    )
    (workdir / "pgbouncer.ini").write_text(
        _config(port, url.host or "127.0.0.1", url.port or 5432, workdir, pool_size)
    )
    argv = [binary]
    if os.geteuid() == 0:
        entry = pwd.getpwnam(SYSTEM_USER)
        for path in (workdir, *workdir.iterdir()):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        argv += ["-u", SYSTEM_USER]
    argv.append(str(workdir / "pgbouncer.ini"))
    try:
        with started(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as process:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not _reachable(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    log = (
                        (workdir / "pgbouncer.log").read_text()
                        if (workdir / "pgbouncer.log").exists()
                        else ""
                    )
                    raise RuntimeError(f"pgbouncer did not start: {log[-2000:]}")
                time.sleep(0.05)
            address = url.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
            yield PgBouncer(address, port)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
