"""TLS for a connection pinned to an IP address: libpq's sslmodes, checked against the DSN's name.

The driver dials the address the guard checked, so on its own it would send that address as SNI
and verify the certificate against it. `NamedContext` puts the DSN's host name back for both.
Certificates are verified (verify-ca, verify-full) against PGSSLROOTCERT, else
~/.postgresql/root.crt, else the system's CAs. The server's own client certificate
(~/.postgresql/postgresql.crt, PGSSLCERT) is never presented to a server an agent names.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any

ALPN_PROTOCOLS = ["postgresql"]


class NamedContext(ssl.SSLContext):
    """An SSLContext that uses `server_name` for SNI and hostname checks, whatever address the
    caller connects to."""

    server_name: str | None = None

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        return super().wrap_bio(
            incoming,
            outgoing,
            server_side=server_side,
            server_hostname=self.server_name or server_hostname,
            session=session,
        )


def _roots(context: ssl.SSLContext) -> None:
    configured = os.environ.get("PGSSLROOTCERT")
    if configured:
        context.load_verify_locations(cafile=configured)
        return
    home = Path.home() / ".postgresql" / "root.crt"
    if home.is_file():
        context.load_verify_locations(cafile=str(home))
    else:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)


def context_for(sslmode: str, server_name: str | None) -> NamedContext:
    """The context of a TLS attempt under `sslmode` (allow, prefer, require, verify-ca/full)."""
    context = NamedContext(ssl.PROTOCOL_TLS_CLIENT)
    context.server_name = server_name
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(ALPN_PROTOCOLS)
    if sslmode in ("verify-ca", "verify-full"):
        context.check_hostname = sslmode == "verify-full"
        context.verify_mode = ssl.CERT_REQUIRED
        _roots(context)
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def attempts(sslmode: str, server_name: str | None) -> list[Any]:
    """The driver's `ssl` argument for each attempt, in order (False: no TLS).

    allow: plain, then TLS if the server refused plain; prefer: TLS, then plain if the server
    does not speak TLS; the others: one attempt.
    """
    if sslmode == "disable":
        return [False]
    tls = context_for(sslmode, server_name)
    if sslmode == "allow":
        return [False, tls]
    if sslmode == "prefer":
        return [tls, False]
    return [tls]


def server_has_no_tls(error: BaseException) -> bool:
    """asyncpg's error for a server that answered the TLS request with 'N' (no TLS)."""
    return isinstance(error, ConnectionError) and "rejected SSL upgrade" in str(error)
