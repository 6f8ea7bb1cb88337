"""pytest fixtures for pasar and for plugin authors (loaded through the `pytest11` entry point).

- `pasar_postgres`: one PostgreSQL server per test session (the embedded one, or the server
  named by `PASAR_TEST_DATABASE_URL`), with a migrated template database.
- `pasar_database_url`: a fresh database per test, cloned from the template.
- `pasar_settings`: `Settings` pointing at that database and a temporary data dir (password
  hashes at argon2id's lowest cost, `TEST_PASSWORD_HASHING`).
- `tool_context`: a `ToolContext` with a temporary per-user storage root.
- `assert_follows_contract(plugin)`: start-up's own registry check on a plugin (a module, an
  installed entry-point name, or one family) alone; `contract_problems(plugin)` lists them.
- `pasar_plugin(plugin)`: that plugin alone in a registry built as at start-up, its tools called
  through the core's validation (`await pasar_plugin(mod).call("svc:act", args)`);
  `async with pasar_plugin(mod).started() as plugin:` runs its `startup` hook first (the
  extras it makes reach its tools' `ctx.extras`) and its `shutdown` hook on exit.
- `pasar_docker`: one Docker daemon per session (one that answers, or a private `dockerd` this
  session starts and stops) with the python sandbox image built; skips without Docker, fails
  when `CI=true`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pluggy
import pytest
from sqlalchemy.engine import make_url

from pasar_core.accounts.passwords import PasswordHashing
from pasar_core.contract import ContractProblem
from pasar_core.crypto import KEY_BYTES, Keyring
from pasar_core.hookspecs import hookimpl
from pasar_core.plugin_lifecycle import started_plugins
from pasar_core.plugin_sources import plugin_manager_for
from pasar_core.registry import Registry, build_registry, registration_problems
from pasar_core.sandbox.testing import DockerForTests as DockerForTests
from pasar_core.sandbox.testing import NoDockerForTests, docker_for_tests
from pasar_core.settings import Settings
from pasar_core.specs import ToolContext, ToolFamily

TEMPLATE_DATABASE = "pasar_test_template"
TEST_SECRET_KEY = "pasar-test-secret-key-0123456789abcdef"
TEST_PASSWORD = "correct horse battery staple"
TEST_ALLOW_PRIVATE_HOSTS = ("127.0.0.1", "localhost", "[::1]")
"""What the test deployment's operator lets agents open: the loopback test servers."""


@dataclass(frozen=True, slots=True)
class PostgresForTests:
    """An admin URL to the server, and how to make and drop throwaway databases on it."""

    admin_url: str

    def url_for(self, database: str) -> str:
        return make_url(self.admin_url).set(database=database).render_as_string(hide_password=False)

    async def _admin(self, *statements: str) -> None:
        import asyncpg

        url = make_url(self.admin_url).set(drivername="postgresql")
        connection = await asyncpg.connect(url.render_as_string(hide_password=False))
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()

    def create_database(self, name: str, template: str | None = None) -> str:
        clause = f' TEMPLATE "{template}"' if template else ""
        asyncio.run(self._admin(f'CREATE DATABASE "{name}"{clause}'))
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        asyncio.run(self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


TEST_RATE_LIMIT = "1000000/60"
TEST_PASSWORD_HASHING = PasswordHashing(time_cost=1, memory_kib=8, parallelism=1)
"""Argon2id at its cheapest: thousands of sign-ups and log-ins cost a tenth of a second each at
the production cost (core/tests/test_password_hashing.py keeps that one)."""


def _test_tmp_root() -> Path:
    # PostgreSQL's own user must reach the data directory: never under /root.
    return Path(os.environ.get("PASAR_TEST_TMPDIR", "/tmp"))  # noqa: S108


@pytest.fixture(scope="session")
def pasar_postgres() -> Iterator[PostgresForTests]:
    """The session's PostgreSQL server with a migrated template database."""
    from pasar_core.embedded_pg import EmbeddedPostgres
    from pasar_core.storage.migrate import upgrade

    external = os.environ.get("PASAR_TEST_DATABASE_URL")
    base_dir: Path | None = None
    server: EmbeddedPostgres | None = None
    if external:
        admin_url = external
    else:
        base_dir = Path(tempfile.mkdtemp(prefix="pasar-test-pg-", dir=_test_tmp_root()))
        server = EmbeddedPostgres(base_dir)
        admin_url = server.start()
    postgres = PostgresForTests(admin_url=admin_url)
    postgres.drop_database(TEMPLATE_DATABASE)
    upgrade(postgres.create_database(TEMPLATE_DATABASE))
    try:
        yield postgres
    finally:
        postgres.drop_database(TEMPLATE_DATABASE)
        if server is not None:
            server.stop()
        if base_dir is not None:
            shutil.rmtree(base_dir, ignore_errors=True)


@pytest.fixture
def pasar_database_url(pasar_postgres: PostgresForTests) -> Iterator[str]:
    """A fresh, migrated database for one test, dropped afterwards."""
    name = f"pasar_test_{uuid.uuid4().hex[:12]}"
    url = pasar_postgres.create_database(name, template=TEMPLATE_DATABASE)
    try:
        yield url
    finally:
        pasar_postgres.drop_database(name)


@pytest.fixture
def pasar_settings(pasar_database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=pasar_database_url,
        secret_key=TEST_SECRET_KEY,
        db_pool_size=4,
        allow_private_hosts=TEST_ALLOW_PRIVATE_HOSTS,
        # Counted as in production, but high enough that tests of other areas (hundreds of
        # sign-ups and runs from one test client) never meet them; tests/governance sets its own.
        rate_limit_auth=TEST_RATE_LIMIT,
        rate_limit_writes=TEST_RATE_LIMIT,
        rate_limit_runs=TEST_RATE_LIMIT,
        password_hashing=TEST_PASSWORD_HASHING,
    )


@pytest.fixture(scope="session")
def pasar_docker() -> Iterator[DockerForTests]:
    """The session's Docker daemon and sandbox image (see pasar_core.sandbox.testing)."""
    try:
        with docker_for_tests(_test_tmp_root()) as docker:
            yield docker
    except NoDockerForTests as error:
        message = f"no Docker daemon for the sandbox tests: {error}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def tool_context(tmp_path: Path) -> ToolContext:
    root = tmp_path / "storage" / "test-user"
    root.mkdir(parents=True)
    return ToolContext(user_id="test-user", storage_root=root)


class _FamilyAlone:
    """A throwaway plugin registering one family, so a family alone meets the same checks."""

    def __init__(self, family: ToolFamily) -> None:
        self.__name__ = family.id
        self.family = family

    @hookimpl
    def register_tool_families(self) -> list[ToolFamily]:
        return [self.family]


def contract_problems(plugin: object | str | ToolFamily) -> list[ContractProblem]:
    """What start-up's registry check refuses in `plugin` alone (a module, an installed
    entry-point name, or one family), every problem listed."""
    if isinstance(plugin, ToolFamily):
        plugin = _FamilyAlone(plugin)
    return registration_problems(plugin_manager_for(plugin))


def assert_follows_contract(plugin: object | str | ToolFamily) -> None:
    """Fails listing every problem start-up would refuse `plugin` for (see contract_problems)."""
    problems = contract_problems(plugin)
    assert not problems, "breaks the plugin contract:\n" + "\n".join(map(str, problems))


UNREACHABLE_DATABASE = "postgresql://pasar-plugin-test@127.0.0.1:9/none"
"""`PluginUnderTest.started`'s database without `settings`: port 9 (discard) refuses, so a
`startup` that needs the database fails at once, naming the connection."""


@dataclass(frozen=True, slots=True)
class PluginUnderTest:
    """One plugin's registry, built as at start-up, and its tools called through the core."""

    registry: Registry
    context: ToolContext
    plugins: pluggy.PluginManager

    async def call(self, tool_id: str, args: Any, ctx: ToolContext | None = None) -> Any:
        """Input validated, run within its timeout, output checked: `Registry.invoke`."""
        return await self.registry.invoke(tool_id, ctx or self.context, args)

    @contextlib.asynccontextmanager
    async def started(self, settings: Settings | None = None) -> AsyncIterator[PluginUnderTest]:
        """The plugin's `startup` hook run as the server runs it (the same namespace check;
        `PluginStartupFailed` when it raises), then this plugin with the extras it made in its
        tools' context; its `shutdown` hook on exit. `services.settings` is `settings` (e.g. the
        `pasar_settings` fixture, whose database is real); without it, defaults whose database
        refuses connections."""
        from pasar_core.accounts.access_tokens import TokenSigner
        from pasar_core.services import Services
        from pasar_core.storage.db import build_engine, build_sessionmaker

        settings = settings or Settings(database_url=UNREACHABLE_DATABASE)
        engine = build_engine(settings.database_url or UNREACHABLE_DATABASE, pool_size=2)
        services = Services(
            settings=settings, plugins=self.plugins, registry=self.registry,
            sessionmaker=build_sessionmaker(engine),
            tokens=TokenSigner(secrets.token_urlsafe(32), 900),
            keyring=Keyring({"test": secrets.token_bytes(KEY_BYTES)}, "test"),
        )  # fmt: skip
        try:
            async with started_plugins(self.plugins, services):
                context = dataclasses.replace(self.context, extras=services.extras)
                yield dataclasses.replace(self, context=context)
        finally:
            await engine.dispose()


@pytest.fixture
def pasar_plugin(tool_context: ToolContext) -> Callable[[object | str], PluginUnderTest]:
    """`pasar_plugin(module_or_entry_point_name)`: that plugin alone in a registry built as
    start-up builds it (refused with the start-up error if it breaks the contract)."""

    def load(plugin: object | str) -> PluginUnderTest:
        plugins = plugin_manager_for(plugin)
        return PluginUnderTest(build_registry(plugins), tool_context, plugins)

    return load
