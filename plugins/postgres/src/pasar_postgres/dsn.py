"""Parse the agent's `postgres_dsn` secret into explicit connection arguments.

We never hand the raw DSN to the driver: asyncpg (like libpq) fills gaps from the server's own
environment and files (PGPASSWORD, ~/.pgpass, PGHOST, unix sockets, service files), which would
let an agent borrow the server's credentials. Every argument is explicit, and error messages name
what is wrong without repeating the DSN or its password. Only the URL form is read, with one
host and no parameter but `sslmode`: libpq's `host=a,b`, `hostaddr=`, `service=` and
`passfile=` are refused. Whether the host may be reached is `pasar_postgres.reach`'s decision.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from pasar_core.errors import ToolError

from pasar_postgres.limits import MAX_DSN_CHARS

SECRET_NAME = "postgres_dsn"  # noqa: S105 - the name of the secret, not its value
SCHEMES = ("postgresql", "postgres")
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
ALLOWED_PARAMETERS = ("sslmode",)


@dataclass(frozen=True, slots=True)
class ConnectArgs:
    """Explicit asyncpg connection arguments; `repr` hides the password."""

    host: str
    """A DNS name, an IP literal (IPv6 without brackets), or a unix-socket directory."""
    port: int
    user: str
    database: str
    password: str = field(repr=False)
    sslmode: str = "prefer"

    @property
    def is_socket(self) -> bool:
        return self.host.startswith("/")

    def secrets(self) -> tuple[str, ...]:
        """Strings that must never appear in a message."""
        return tuple(s for s in (self.password,) if s)


def missing_secret(agent_id: str | None) -> ToolError:
    agent = agent_id or "{id}"
    return ToolError(
        f"no database is configured for this agent: store a connection string as the agent "
        f"secret {SECRET_NAME!r} with PUT /agents/{agent}/secrets/{SECRET_NAME} and the body "
        '{"value": "postgresql://USER:PASSWORD@HOST:5432/DATABASE"}'
    )


def _bad(reason: str) -> ToolError:
    return ToolError(f"the agent secret {SECRET_NAME!r} is not a usable PostgreSQL URL: {reason}")


def parse_dsn(dsn: str) -> ConnectArgs:
    """`postgresql://user:password@host:port/database?sslmode=...`, one TCP host only."""
    if not dsn.strip():
        raise _bad("it is empty")
    if len(dsn) > MAX_DSN_CHARS:
        raise _bad(f"it is longer than {MAX_DSN_CHARS} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in dsn):
        raise _bad("it contains control characters")
    scheme, sep, _ = dsn.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        raise _bad("it must start with postgresql:// or postgres://")
    try:
        parts = urlsplit(dsn)
        if "," in parts.netloc.rpartition("@")[2]:
            raise _bad("give exactly one host (multi-host URLs are not supported)")
        port = parts.port
        hostname = parts.hostname
    except ValueError:
        raise _bad("its host or port cannot be parsed") from None
    host = unquote(hostname or "")
    if host.startswith("/"):  # a socket directory keeps its case (urlsplit lowercases hosts)
        raw = parts.netloc.rpartition("@")[2]
        host = unquote(raw.rpartition(":")[0] if port is not None else raw)
    if not host:
        raise _bad("it needs a host name (unix sockets are not supported)")
    if host.startswith("@"):
        raise _bad("abstract unix sockets are not supported")
    if host.startswith("/") and not _plain_directory(host):
        raise _bad("a unix-socket directory must be an absolute path without '.' or '..' parts")
    user = unquote(parts.username or "")
    if not user:
        raise _bad("it needs a user name")
    password = unquote(parts.password or "")
    database = unquote(parts.path.lstrip("/")) or user
    if "/" in database:
        raise _bad("the database name must not contain '/'")
    if parts.fragment:
        raise _bad("it must not have a #fragment")
    try:
        query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise _bad("its ?parameters cannot be parsed") from None
    sslmode = "prefer"
    for name, value in query:
        if name not in ALLOWED_PARAMETERS:
            raise _bad(
                f"the parameter {name[:40]!r} is not supported "
                f"(supported: {', '.join(ALLOWED_PARAMETERS)})"
            )
        if value not in SSL_MODES:
            raise _bad(f"sslmode must be one of {', '.join(SSL_MODES)}")
        sslmode = value
    return ConnectArgs(
        host=host,
        port=port or 5432,
        user=user,
        database=database,
        password=password,
        sslmode=sslmode,
    )


def _plain_directory(path: str) -> bool:
    parts = path.split("/")[1:]
    return all(part not in ("", ".", "..") for part in parts) and "\\" not in path


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret (and its URL-encoded form) in `text` with ***."""
    for secret in secrets:
        if not secret:
            continue
        for form in {secret, quote(secret, safe=""), quote(secret)}:
            text = text.replace(form, "***")
    return text
