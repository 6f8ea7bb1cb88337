"""The service container handed to the API layers, hooks and workers (built in the lifespan)."""

from __future__ import annotations

from dataclasses import dataclass

import pluggy
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pasar_core.accounts.access_tokens import TokenSigner
from pasar_core.crypto import Keyring
from pasar_core.registry import Registry
from pasar_core.settings import Settings


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    plugins: pluggy.PluginManager
    registry: Registry
    sessionmaker: async_sessionmaker[AsyncSession]
    tokens: TokenSigner
    keyring: Keyring
