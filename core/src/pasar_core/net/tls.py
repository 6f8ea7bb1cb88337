"""The process's verifying TLS context for outbound HTTPS (httpx's: certifi's CA bundle).

Loading the bundle takes about a tenth of a second of CPU, and a configured context is safe to
share between connections, clients and threads: made once, never changed afterwards."""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def verifying_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()
