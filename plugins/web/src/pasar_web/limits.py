"""Sizes, counts and times of the web tools, in one place so descriptions match the code."""

from __future__ import annotations

from pasar_core.net.client import MAX_REDIRECTS
from pasar_core.net.guard import MAX_ALLOW_HOSTS, MAX_URL_CHARS

__all__ = ["MAX_ALLOW_HOSTS", "MAX_REDIRECTS", "MAX_URL_CHARS"]

KIB = 1024
MIB = 1024 * KIB


FETCH_DEFAULT_BYTES = 2 * MIB
HTTP_DEFAULT_BYTES = MIB
MAX_BYTES = 10 * MIB

DEFAULT_TIMEOUT_S = 20.0
MAX_TIMEOUT_S = 60.0
TOOL_TIMEOUT_S = MAX_TIMEOUT_S + 30.0  # the registry's own cap, above any per-call timeout_s

LINKS_DEFAULT = 100
LINKS_MAX = 1_000
LINK_TEXT_CHARS = 200

MAX_REQUEST_HEADERS = 50
MAX_HEADER_VALUE_CHARS = 8 * KIB
MAX_QUERY_PARAMS = 100
MAX_JSON_BODY_BYTES = MIB
MAX_RESPONSE_HEADERS = 100
