"""The service container handed to the API layers, hooks and workers (built in the lifespan).

Leaf resources only; the execution runtime (`pasar_core.executions.runtime.Runs`) is its own
object, built on these and handed to what runs agents."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pasar_core.accounts.access_tokens import TokenSigner
from pasar_core.accounts.revocations import RevokedSessions
from pasar_core.accounts.throttle import LoginThrottle
from pasar_core.crypto import Keyring
from pasar_core.memory.embedder import Embedders
from pasar_core.models.cache import BuiltCache, ModelCache
from pasar_core.objects import ObjectStore
from pasar_core.observability.metrics import Metrics
from pasar_core.observability.tracing import Tracing
from pasar_core.rate_limits import RateLimiter, unlimited
from pasar_core.registry import Registry
from pasar_core.settings import Settings

if TYPE_CHECKING:
    from pasar_core.custom_tools.overlay import ToolOverlays
    from pasar_core.executions.cache import ResultCache
    from pasar_core.mcp.clients import McpClients
    from pasar_core.sandbox.queue import SandboxQueue
    from pasar_core.storage.reads import Reads


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    plugins: pluggy.PluginManager
    registry: Registry
    sessionmaker: async_sessionmaker[AsyncSession]
    tokens: TokenSigner
    keyring: Keyring
    object_store: ObjectStore | None = None
    """Where user files live (`pasar_core.objects.build_object_store`); None: not started."""
    result_cache: ResultCache | None = None
    """Outputs of agents with `cache_ttl_s` (Redis when configured, else the executions table)."""
    login_throttle: LoginThrottle = field(default_factory=LoginThrottle)
    """Log-in attempts per email and source in this process (see pasar_core.accounts.throttle)."""
    rate_limiter: RateLimiter = field(default_factory=unlimited)
    """Request budgets per route class (pasar_core.rate_limits); the lifespan builds it from
    settings (Redis-backed when `REDIS_URL` is set)."""
    revoked_sessions: RevokedSessions = field(default_factory=RevokedSessions)
    """Sessions whose access tokens are refused, kept current by the revocation listener the
    lifespan starts (see pasar_core.accounts.revocations)."""
    models: ModelCache = field(default_factory=ModelCache)
    """Chat models built for runs in this process, shared between runs."""
    embedders: Embedders = field(default_factory=Embedders)
    """Embedding models built in this process (`pasar_core.memory`), loaded on first use."""
    graphs: BuiltCache[Any] = field(default_factory=BuiltCache)
    """Compiled agent graphs by (config, tools), shared between runs of this process."""
    reads: Reads | None = None
    """The pool of single-statement reads (pasar_core.storage.reads); None: not started."""
    sandbox_queue: SandboxQueue | None = None
    """Where custom tool and sandboxed plugin calls go (`pasar_core.sandbox.queue`); None: no
    sandbox queue is configured (those calls fail with SANDBOX_UNAVAILABLE)."""
    tool_overlays: ToolOverlays | None = None
    """Owners' registries (custom tools, sandboxed plugins); None: installed tools only."""
    mcp: McpClients | None = None
    """The sessions with the operator's MCP servers (`PASAR_MCP_SERVERS`); None: none configured."""
    metrics: Metrics = field(default_factory=Metrics)
    """This process's Prometheus instruments (`pasar_core.observability.metrics`)."""
    tracing: Tracing = field(default_factory=Tracing)
    """Spans for runs, model, tool and sandbox calls; off unless configured."""
    extras: dict[str, Any] = field(default_factory=dict)
    """What plugins' `startup` hooks share with their tools (shared clients), keyed
    `<plugin>.<name>`; every tool context gets them as `ToolContext.extras`."""
