"""One short-lived connection per call, always inside a transaction with timeouts set, and
database errors turned into messages the model can act on (never carrying the DSN).

Connecting goes where `pasar_postgres.reach` allows (the SSRF guard, before any packet is sent)
and fails with one error, `DatabaseUnreachable`, whatever the reason; the reason is logged at
debug level without the password."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from pasar_core.errors import ToolError, ToolTimeout
from pasar_core.specs import ToolContext

from pasar_postgres.dsn import SECRET_NAME, ConnectArgs, missing_secret, parse_dsn, scrub
from pasar_postgres.limits import (
    CONNECT_TIMEOUT_S,
    IDLE_IN_TRANSACTION_TIMEOUT_MS,
    LOCK_TIMEOUT_MS,
    Limits,
)
from pasar_postgres.reach import Refused, Route, route_for
from pasar_postgres.tls import attempts, server_has_no_tls

APPLICATION_NAME = "pasar"
MAX_MESSAGE_CHARS = 2_000
MAX_ADDRESSES_TRIED = 4

log = logging.getLogger("pasar.postgres")

_SET_LIMITS = (
    "SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $2, true), "
    "set_config('idle_in_transaction_session_timeout', $3, true), "
    # our lexer reads strings as the server does only with standard-conforming strings
    "set_config('standard_conforming_strings', 'on', true)"
)


def connect_args(ctx: ToolContext) -> ConnectArgs:
    dsn = ctx.secrets.get(SECRET_NAME)
    if not dsn:
        raise missing_secret(ctx.agent_id)
    return parse_dsn(dsn)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS] + "…"


def database_error(error: asyncpg.PostgresError, limits: Limits, *, read_only: bool) -> ToolError:
    """A ToolError for an error the server reported while running a statement."""
    sqlstate = str(getattr(error, "sqlstate", "") or "")
    message = str(getattr(error, "message", "") or error)
    if sqlstate == "57014":
        return ToolTimeout(
            f"the statement was cancelled after the statement timeout of "
            f"{limits.statement_timeout_ms} ms; narrow it (WHERE, LIMIT) or raise "
            "statement_timeout_ms in the agent's postgres settings",
            details={"sqlstate": sqlstate},
        )
    if sqlstate == "55P03":
        return ToolError(
            f"a lock was not granted within {LOCK_TIMEOUT_MS} ms: {message}",
            details={"sqlstate": sqlstate},
        )
    if sqlstate == "25006" and read_only:
        return ToolError(
            f"postgres:query runs in a READ ONLY transaction, so the database refused: {message}. "
            "Use postgres:execute for writes."
        )
    parts = [f"PostgreSQL error {sqlstate}: {message}"]
    for label in ("detail", "hint"):
        value = getattr(error, label, None)
        if value:
            parts.append(f"{label.capitalize()}: {value}")
    position = getattr(error, "position", None)
    if position:
        parts.append(f"(at character {position})")
    return ToolError(_clip(" ".join(parts)), details={"sqlstate": sqlstate})


def client_error(error: Exception) -> ToolError:
    """A ToolError for a problem the driver found before or after the server (bad argument)."""
    if isinstance(error, UnicodeError):
        return ToolError("SQL text and parameters must be valid UTF-8 (no lone surrogates)")
    return ToolError(_clip(f"the database driver refused the call: {error}"))


class DatabaseUnreachable(ToolError):
    """No connection was made, for whatever reason: the same error for every one of them, so the
    tools cannot be used to map a network (which hosts exist, which ports are open)."""

    code = "POSTGRES_UNREACHABLE"

    def __init__(self) -> None:
        super().__init__(UNREACHABLE_MESSAGE)


UNREACHABLE_MESSAGE = (
    f"could not connect to the PostgreSQL server in the agent secret {SECRET_NAME!r}: it cannot "
    "be reached, it refused the connection, TLS or the credentials, or this pasar server does not "
    "let agents reach it (loopback, private and unix-socket addresses need its operator's "
    "PASAR_ALLOW_PRIVATE_HOSTS or PASAR_ALLOW_UNIX_SOCKETS; cloud metadata addresses never). "
    "Check the host, port, user, password, database and sslmode."
)
CONNECT_ERRORS: tuple[type[Exception], ...] = (
    OSError,  # refused, unreachable, TLS (ssl.SSLError), per-attempt timeouts
    asyncpg.PostgresError,  # authentication, unknown database, too many connections
    asyncpg.InterfaceError,
    ValueError,
)


async def _dial(route: Route, args: ConnectArgs) -> Any:
    """Connect to the first of the route's addresses that answers, trying sslmode's fallbacks."""
    last: Exception = OSError("no address to connect to")
    for address in route.addresses[:MAX_ADDRESSES_TRIED]:
        modes = [False] if route.is_socket else attempts(args.sslmode, route.server_name)
        for first, ssl_argument in zip((True, False), modes, strict=False):
            try:
                return await asyncpg.connect(
                    host=address,  # an IP literal the guard checked, or an allowed socket dir
                    port=route.port,
                    user=args.user,
                    password=args.password,  # never None: no fallback to PGPASSWORD or ~/.pgpass
                    database=args.database,
                    ssl=ssl_argument,
                    timeout=CONNECT_TIMEOUT_S,
                    statement_cache_size=0,
                    server_settings={"application_name": APPLICATION_NAME},
                )
            except asyncpg.PostgresError as error:
                if not (first and args.sslmode == "allow"):
                    raise  # the server answered: its other addresses are the same server
                last = error
            except OSError as error:
                last = error
                if not (first and args.sslmode == "prefer" and server_has_no_tls(error)):
                    break  # try the next address
    raise last


async def _open(ctx: ToolContext, args: ConnectArgs) -> Any:
    """A connection to where the guard allows, or `DatabaseUnreachable` (the reason is logged)."""
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            route = await route_for(ctx, args)
            return await _dial(route, args)
    except Refused as refused:
        reason = f"refused by the network guard: {refused.reason}"
    except TimeoutError:
        reason = f"no answer within {CONNECT_TIMEOUT_S:g} s"
    except CONNECT_ERRORS as error:
        reason = f"{type(error).__name__}: {error}"
    log.debug(
        "postgres: no connection to %s:%s as %r: %s",
        args.host, args.port, args.user, _clip(scrub(reason, args.secrets())),
    )  # fmt: skip
    raise DatabaseUnreachable


@asynccontextmanager
async def transaction(ctx: ToolContext, limits: Limits, *, read_only: bool) -> AsyncIterator[Any]:
    """A fresh connection inside one transaction (READ ONLY when asked) with every timeout set.

    The transaction is rolled back when `read_only`, committed otherwise if the body succeeds.
    Any failure terminates the connection at once, which also ends a still-running statement
    on the server's next check; `statement_timeout` is always set, so it cannot run on.
    """
    args = connect_args(ctx)
    connection = await _open(ctx, args)
    finished = False
    try:
        await connection.set_type_codec(
            "json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )
        await connection.set_type_codec(
            "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )
        tx = connection.transaction(readonly=read_only)
        await tx.start()
        await connection.execute(
            _SET_LIMITS,
            str(limits.statement_timeout_ms),
            str(LOCK_TIMEOUT_MS),
            str(IDLE_IN_TRANSACTION_TIMEOUT_MS),
        )
        yield connection
        if read_only:
            await tx.rollback()
        else:
            await tx.commit()
        finished = True
    except asyncpg.PostgresError as error:
        raise database_error(error, limits, read_only=read_only) from None
    except (asyncpg.InterfaceError, UnicodeError) as error:
        raise client_error(error) from None
    finally:
        if finished:
            await connection.close(timeout=CONNECT_TIMEOUT_S)
        else:
            connection.terminate()


@asynccontextmanager
async def deadline(limits: Limits) -> AsyncIterator[None]:
    """The client-side backstop: a call never outlives its statement timeout by much."""
    try:
        async with asyncio.timeout(limits.deadline_s):
            yield
    except TimeoutError:
        raise ToolTimeout(
            f"the database did not answer within {limits.deadline_s:g} s; the call was abandoned"
        ) from None
