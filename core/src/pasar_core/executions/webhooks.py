"""Webhooks: each recorded event of an execution is POSTed, in order, signed with HMAC-SHA256.

Header `X-Pasar-Signature: t=<unix time>,v1=<hex hmac of "<t>.<body>">` with the user's webhook
secret (GET /webhook-secret). Failed deliveries are retried with backoff, then dropped.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Sequence

from pasar_core.errors import PasarError, ValidationFailed
from pasar_core.executions.events import EventHub
from pasar_core.net.client import Options, Outgoing, send
from pasar_core.net.guard import AllowList, check_addresses, check_target, parse_target
from pasar_core.net.resolver import SystemResolver

log = logging.getLogger("pasar.webhooks")

RETRY_DELAYS_S: Sequence[float] = (0.5, 2.0, 8.0)
TIMEOUT_S = 10.0
MAX_RESPONSE_BYTES = 64 * 1024


def webhook_allow_list(hosts: Sequence[str]) -> AllowList:
    """Webhooks reach public addresses only, plus the operator's PASAR_WEBHOOK_ALLOW_HOSTS."""
    return AllowList.parse(list(hosts))


def check_webhook_url(url: str, allow: AllowList) -> None:
    """Refuse, when the run is requested, URLs the SSRF guard would never deliver to."""
    try:
        target = parse_target(url)
        listed = check_target(target, allow)
        if target.ip is not None:
            check_addresses(target, [str(target.ip)], allow_listed=listed)
    except PasarError as error:
        raise ValidationFailed(
            f"invalid parameters: /parameters/webhook_url: {error.message}",
            details={"errors": [{"path": "/parameters/webhook_url", "message": error.message}]},
        ) from None


def webhook_secret(server_secret: str, user_id: uuid.UUID) -> str:
    """A per-user signing secret derived from the server's secret key."""
    digest = hmac.new(server_secret.encode(), f"webhook|{user_id}".encode(), hashlib.sha256)
    return "whsec_" + digest.hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, body: bytes, header: str, tolerance_s: int = 300) -> bool:
    """What a receiver does; here for tests and as the reference implementation."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, body, timestamp), header)


async def deliver(
    hub: EventHub, allow: AllowList, execution_id: uuid.UUID, url: str, secret: str
) -> int:
    """POST every stored event of the execution to `url` through the SSRF guard (every hop
    checked, the address pinned); returns how many were delivered."""
    options = Options(
        allow=allow,
        resolver=SystemResolver(),
        max_bytes=MAX_RESPONSE_BYTES,
        timeout_s=TIMEOUT_S,
        user_agent="pasar-webhooks",
    )
    delivered = 0
    async for event in hub.subscribe(execution_id):
        if event.seq is None:
            continue  # live-only token deltas are not sent
        body = json.dumps(
            {"execution_id": str(execution_id), **event.as_json()}, default=str
        ).encode()
        for delay in (0.0, *RETRY_DELAYS_S):
            await asyncio.sleep(delay)
            headers = {
                "Content-Type": "application/json",
                "X-Pasar-Event": event.type,
                "X-Pasar-Delivery": f"{execution_id}:{event.seq}",
                "X-Pasar-Signature": sign(secret, body, int(time.time())),
            }
            try:
                response = await send(Outgoing("POST", url, headers, body), options)
            except PasarError as error:
                log.info("webhook delivery failed (%s), retrying", error.code)
                continue
            if response.status < 300:
                delivered += 1
                break
            if 400 <= response.status < 500 and response.status not in (408, 429):
                break  # the receiver refused this event; retrying will not help
        if event.is_terminal:
            break
    return delivered
