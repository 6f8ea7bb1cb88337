"""`pasar plugins install --sandboxed` and `pasar plugins remove --sandboxed`, on the operator's
machine: the wheel goes into a sandbox image layer (never into this environment), its manifest is
read inside a container and checked, then the plugin and its tools are stored; every server and
worker picks them up as proxy families whose calls go through the sandbox queue."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pasar_core.sandbox.client import SandboxClient
from pasar_core.sandboxed_plugins.install import build_and_read, checked
from pasar_core.sandboxed_plugins.service import checked_allow_hosts
from pasar_core.sandboxed_plugins.store import PluginView, remove_plugin, save_plugin
from pasar_core.settings import Settings

from pasar.lifecycle import running_services


async def install_sandboxed(
    settings: Settings, source: str | Path, allow_hosts: Sequence[str] = ()
) -> PluginView:
    """Build, read, check and store one sandboxed plugin (a new revision if it exists). Its
    tools reach `allow_hosts` (approved by the operator here) through the sandbox egress proxy,
    and nothing else; none: no network."""
    hosts = checked_allow_hosts(list(allow_hosts), settings.allow_private_hosts)
    sandbox = SandboxClient(settings.sandbox).start(janitor=False)
    try:
        built = build_and_read(source, sandbox)
    finally:
        sandbox.close()
    async with running_services(settings) as services:
        families = checked(built, services.registry)
        async with services.sessionmaker.begin() as session:
            return await save_plugin(
                session, services.registry, name=built.name, distribution=built.distribution,
                version=built.version, image=built.image, manifest=built.manifest,
                families=families, allow_hosts=hosts, installed_by=None,
            )  # fmt: skip


async def remove_sandboxed(settings: Settings, name: str) -> None:
    async with (
        running_services(settings) as services,
        services.sessionmaker.begin() as session,
    ):
        await remove_plugin(session, name)
