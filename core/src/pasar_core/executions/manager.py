"""The executions runtime of one process: event hub, executors and the stale-run reaper."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from pasar_core.errors import BadRequest
from pasar_core.executions.events import EventHub
from pasar_core.executions.executors import Executor, InlineExecutor, RQExecutor, reap_stale
from pasar_core.executions.webhooks import deliver, webhook_allow_list, webhook_secret
from pasar_core.services import Services

log = logging.getLogger("pasar.executions")


class ExecutionRuntime:
    def __init__(self, services: Services, database_url: str) -> None:
        self.services = services
        self.hub = EventHub(database_url, services.sessionmaker)
        self.inline = InlineExecutor(services, services.settings.inline_max_concurrency)
        self.rq = RQExecutor(services.settings.redis_url) if services.settings.redis_url else None
        self.hub.on_cancel(self._cancel_local)
        self._reaper: asyncio.Task[None] | None = None
        self.webhook_allow = webhook_allow_list(services.settings.webhook_allow_hosts)
        self._deliveries: set[asyncio.Task[int]] = set()

    @property
    def default_executor(self) -> str:
        return "rq" if self.rq is not None else "inline"

    def executor(self, name: str | None) -> Executor:
        name = name or self.default_executor
        if name == "inline":
            return self.inline
        if name == "rq" and self.rq is not None:
            return self.rq
        raise BadRequest("the rq executor needs REDIS_URL to be configured on the server")

    def _cancel_local(self, execution_id: uuid.UUID) -> None:
        self.inline.cancel_local(execution_id)

    def deliver_webhooks(self, execution_id: uuid.UUID, user_id: uuid.UUID, url: str) -> None:
        secret = webhook_secret(self.services.tokens.secret, user_id)
        task = asyncio.create_task(deliver(self.hub, self.webhook_allow, execution_id, url, secret))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def start(self) -> None:
        await self.hub.start()
        self._reaper = asyncio.create_task(self._reap_forever())

    async def _reap_forever(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                reaped = await reap_stale(self.services)
                if reaped:
                    log.warning("failed %d execution(s) whose process stopped", reaped)
            await asyncio.sleep(max(1.0, self.services.settings.stale_after_s / 3))

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        await self.inline.close()
        if self.rq is not None:
            await self.rq.close()
        for task in list(self._deliveries):
            task.cancel()
        await self.hub.close()
