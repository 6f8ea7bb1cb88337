"""One short-lived connection per call, always inside a transaction with timeouts set, and
database errors turned into messages the model can act on (never carrying the DSN)."""

from __future__ import annotations

import asyncio
import json
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

APPLICATION_NAME = "pasar"
MAX_MESSAGE_CHARS = 2_000

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
            "statement_timeout_ms in the agent's postgres settings"
        )
    if sqlstate == "55P03":
        return ToolError(f"a lock was not granted within {LOCK_TIMEOUT_MS} ms: {message}")
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
    return ToolError(_clip(" ".join(parts)))


def client_error(error: Exception) -> ToolError:
    """A ToolError for a problem the driver found before or after the server (bad argument)."""
    if isinstance(error, UnicodeError):
        return ToolError("SQL text and parameters must be valid UTF-8 (no lone surrogates)")
    return ToolError(_clip(f"the database driver refused the call: {error}"))


async def _open(args: ConnectArgs) -> Any:
    where = f"{args.host}:{args.port}"
    try:
        return await asyncpg.connect(
            host=args.host,
            port=args.port,
            user=args.user,
            password=args.password,  # never None: no fallback to PGPASSWORD or ~/.pgpass
            database=args.database,
            ssl=args.sslmode,
            timeout=CONNECT_TIMEOUT_S,
            statement_cache_size=0,
            server_settings={"application_name": APPLICATION_NAME},
        )
    except asyncpg.PostgresError as error:
        reason = scrub(str(getattr(error, "message", "") or type(error).__name__), args.secrets())
        raise ToolError(
            f"could not connect to PostgreSQL at {where} as {args.user!r}: {_clip(reason)}"
        ) from None
    except TimeoutError:
        raise ToolError(
            f"could not connect to PostgreSQL at {where}: no answer within {CONNECT_TIMEOUT_S:g} s"
        ) from None
    except (OSError, asyncpg.InterfaceError, ValueError) as error:
        reason = type(error).__name__
        if isinstance(error, OSError) and error.strerror:
            reason = error.strerror
        elif isinstance(error, asyncpg.InterfaceError):
            reason = scrub(str(error), args.secrets())
        raise ToolError(f"could not connect to PostgreSQL at {where}: {_clip(reason)}") from None


@asynccontextmanager
async def transaction(ctx: ToolContext, limits: Limits, *, read_only: bool) -> AsyncIterator[Any]:
    """A fresh connection inside one transaction (READ ONLY when asked) with every timeout set.

    The transaction is rolled back when `read_only`, committed otherwise if the body succeeds.
    Any failure terminates the connection at once, which also ends a still-running statement
    on the server's next check; `statement_timeout` is always set, so it cannot run on.
    """
    args = connect_args(ctx)
    connection = await _open(args)
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
