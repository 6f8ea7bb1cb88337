"""The admin API's sandboxed installs: the wheel travels to a sandbox worker on the sandbox
queue (`plugin.install`), which stages the layer, builds the image and reads the manifest in a
container; this process only checks the manifest and stores the plugin. It never talks to Docker
and never imports the package."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from pasar_core.accounts.principal import Principal
from pasar_core.audit import record as audit
from pasar_core.audit.record import Action, Actor
from pasar_core.errors import Forbidden, SandboxUnavailable, ToolError, ValidationFailed
from pasar_core.net.guard import MAX_ALLOW_HOSTS, AllowList
from pasar_core.sandbox.allow_hosts import check_egress_hosts
from pasar_core.sandbox.queue import NO_QUEUE
from pasar_core.sandboxed_plugins.install import Built, checked
from pasar_core.sandboxed_plugins.store import PluginView, list_plugins, remove_plugin, save_plugin
from pasar_core.services import Services

INSTALL_TIMEOUT_S = 900.0
"""pip (wheels only, bounded by its own timeout), the image build and the manifest read."""


class WheelUpload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filename: Annotated[str, StringConstraints(min_length=5, max_length=200)]
    content_base64: Annotated[str, StringConstraints(min_length=1)]


class SandboxedInstall(BaseModel):
    """A wheel (base64, within the body limit) or a requirement the worker fetches."""

    model_config = ConfigDict(extra="forbid")

    wheel: WheelUpload | None = None
    requirement: Annotated[str, StringConstraints(min_length=1, max_length=300)] | None = None
    allow_hosts: list[Annotated[str, StringConstraints(min_length=1, max_length=300)]] = Field(
        default_factory=list, max_length=MAX_ALLOW_HOSTS
    )
    """The hosts the admin approves for the plugin's tools (through the sandbox egress proxy);
    none: no network."""

    @model_validator(mode="after")
    def _one_source(self) -> SandboxedInstall:
        if (self.wheel is None) == (self.requirement is None):
            raise ValueError("give exactly one of wheel and requirement")
        return self


def checked_allow_hosts(allow_hosts: list[str], bound: tuple[str, ...]) -> list[str]:
    """The hosts approved for a sandboxed plugin, checked like a python tool's allow_hosts."""
    try:
        check_egress_hosts(allow_hosts, AllowList.parse(list(bound)))
    except ToolError as error:
        raise ValidationFailed(
            f"allow_hosts: {error.message}",
            details={"errors": [{"path": "allow_hosts", "message": error.message}]},
        ) from None
    return list(allow_hosts)


def require_admin(principal: Principal) -> None:
    if not principal.operator:
        raise Forbidden("only the server operator manages sandboxed plugins")


async def install(services: Services, principal: Principal, body: SandboxedInstall) -> PluginView:
    require_admin(principal)
    allow_hosts = checked_allow_hosts(body.allow_hosts, services.settings.allow_private_hosts)
    queue = services.sandbox_queue
    if queue is None:
        raise SandboxUnavailable(NO_QUEUE)
    source = body.model_dump(exclude_none=True, exclude={"allow_hosts"})
    request: dict[str, Any] = {"op": "plugin.install", **source}
    reply = await queue.call(request, timeout_s=INSTALL_TIMEOUT_S)
    result = reply.get("result")
    built = Built.from_json(result if isinstance(result, dict) else {})
    families = checked(built, services.registry)
    async with services.sessionmaker.begin() as session:
        view = await save_plugin(
            session, services.registry, name=built.name, distribution=built.distribution,
            version=built.version, image=built.image, manifest=built.manifest,
            families=families, allow_hosts=allow_hosts, installed_by=principal.user_id,
        )  # fmt: skip
        await audit.record(session, Action.PLUGIN_INSTALLED, Actor.of(principal),
                           target=("plugin", built.name),
                           details={"distribution": built.distribution, "version": built.version,
                                    "image": built.image})  # fmt: skip
        return view


async def listed(services: Services, principal: Principal) -> list[PluginView]:
    require_admin(principal)
    async with services.sessionmaker() as session:
        return await list_plugins(session)


async def remove(services: Services, principal: Principal, name: str) -> None:
    require_admin(principal)
    async with services.sessionmaker.begin() as session:
        await remove_plugin(session, name)
        await audit.record(session, Action.PLUGIN_REMOVED, Actor.of(principal),
                           target=("plugin", name))  # fmt: skip
