"""The `pasar` command line: serve, worker, db, plugins, plugin, tools, users, orgs, api-keys,
keys, sandbox, dev.

Each command imports what it needs when it runs, so `pasar --help` loads click and little else
(the app, SQLAlchemy and LangChain take seconds to import)."""

from __future__ import annotations

import json
import sys
import uuid
from typing import TYPE_CHECKING, Any

import click

from pasar.cli_organisations import organisations
from pasar.cli_plugin_commands import PluginCommandGroup
from pasar.cli_plugins import plugin, plugins_check
from pasar.cli_support import emit, friendly_errors, json_flag, run, table

if TYPE_CHECKING:
    from pasar_core.accounts.api_key_store import ApiKeyView
    from pasar_core.settings import Settings


@click.group(cls=PluginCommandGroup, lists_plugins=False)
@click.version_option(package_name="pasar")
def main() -> None:
    """pasar: compose LangChain agents from a marketplace of tools.

    Installed plugins may add commands (hook `register_commands`); `pasar dev --help` lists
    the development tools they add."""


main.add_command(organisations)
main.add_command(plugin)


@main.command()
@click.option("--host", default=None, help="Interface to bind (default PASAR_HOST or 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default PASAR_PORT or 8000).")
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=None,
    help="Worker processes sharing one database (default PASAR_WORKERS or 1; 0: one per core).",
)
@click.option(
    "--server",
    type=click.Choice(["granian", "uvicorn"]),
    default=None,
    help="HTTP server (default PASAR_SERVER or granian).",
)
@click.option("--log-level", default="info", show_default=True)
@click.option(
    "--dev",
    is_flag=True,
    help="Development mode: GraphQL introspection for anyone, field suggestions in errors "
    "(also PASAR_DEV=1). Production mode otherwise.",
)
@friendly_errors
def serve(
    host: str | None,
    port: int | None,
    workers: int | None,
    server: str | None,
    log_level: str,
    dev: bool,
) -> None:
    """Serve the API. Without DATABASE_URL, starts the embedded PostgreSQL (once, for every
    worker)."""
    import os

    from pasar_core.settings import Settings

    from pasar.serving import ServeOptions, serve

    settings = Settings.from_env()
    settings = settings.with_overrides(
        host=host or settings.host,
        port=port or settings.port,
        dev_mode=dev or settings.dev_mode,
        # No Redis for the sandbox queue: start an embedded one and a local sandbox worker.
        embedded_sandbox=not settings.sandbox_redis_url
        and settings.env.get("PASAR_SANDBOX_EMBEDDED", "1") != "0",
    )
    count = settings.workers if workers is None else workers
    options = ServeOptions(
        workers=count or os.cpu_count() or 1,
        server=settings.server if server is None else server,  # type: ignore[arg-type]
        log_level=log_level,
        backlog=settings.backlog,
    )
    where = (settings.database_url and "DATABASE_URL") or f"embedded, in {settings.postgres_dir}"
    click.echo(f"pasar: database {where}; {options.workers} worker(s) on {options.server}")
    if settings.dev_mode:
        click.echo("pasar: development mode (GraphQL introspection open, field suggestions on)")
    if settings.embedded_sandbox:
        click.echo("pasar: sandbox queue embedded (its own Redis and a local sandbox worker)")
    base = f"http://{settings.host}:{settings.port}"
    click.echo(f"pasar: dashboard on {base}/ (open it in a browser)")
    click.echo(f"pasar: GraphQL (GraphiQL) on {base}/graphql, REST API docs on {base}/docs")
    serve(settings, options)


@main.command()
@click.option("--burst", is_flag=True, help="Exit when the queue is empty.")
@click.option(
    "--queue",
    "queue_name",
    type=click.Choice(["executions", "sandbox"]),
    default="executions",
    show_default=True,
    help="executions: agent runs; sandbox: custom tool and sandboxed plugin calls (Docker).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=None,
    help="Executions run at once on this process's event loop "
    "(default PASAR_WORKER_CONCURRENCY, 500; executions queue only).",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(min=1, max=65535),
    default=None,
    help="Serve this worker's Prometheus metrics at /metrics on this port "
    "(default PASAR_METRICS_PORT; none when unset; executions queue only).",
)
@friendly_errors
def worker(burst: bool, queue_name: str, concurrency: int | None, metrics_port: int | None) -> None:
    """Run agent executions from the Redis queue (needs REDIS_URL and the server's database)."""
    from pasar_core.observability.logs import configure_logging
    from pasar_core.settings import Settings

    from pasar.worker import work

    settings = Settings.from_env()
    if metrics_port is not None:
        settings = settings.with_overrides(metrics_port=metrics_port)
    configure_logging(settings.log_format)
    if queue_name == "sandbox":
        from pasar.sandbox_worker import work_sandbox

        if not settings.sandbox_redis_url:
            raise click.ClickException("set REDIS_URL (or PASAR_SANDBOX_REDIS_URL) to the server's")
        click.echo(f"pasar worker: sandbox calls from {settings.sandbox_redis_url.split('@')[-1]}")
        work_sandbox(settings.sandbox_redis_url, settings.sandbox, burst=burst)
        return
    if not settings.redis_url:
        raise click.ClickException("set REDIS_URL to the Redis server the API server uses")
    click.echo(f"pasar worker: executions from {settings.redis_url.split('@')[-1]}")
    work(settings, burst=burst, concurrency=concurrency)


@main.group()
def db() -> None:
    """Database commands."""


@db.command("upgrade")
@json_flag
@friendly_errors
def db_upgrade(as_json: bool) -> None:
    """Apply all migrations (also done automatically when the server starts)."""
    from pasar_core.settings import Settings
    from pasar_core.storage.migrate import upgrade_async

    from pasar.lifecycle import database_url, direct_url

    async def upgrade() -> None:
        settings = Settings.from_env()
        async with database_url(settings) as url:
            await upgrade_async(direct_url(settings, url))

    run(upgrade())
    emit(as_json, {"database": "up to date"}, "database is up to date")


@main.group()
def plugins() -> None:
    """Installed plugins."""


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def plugins_list(as_json: bool) -> None:
    """Plugins found through the `pasar` entry points, with their tool families."""
    from pasar_core.plugins import build_plugin_manager, describe_plugins
    from pasar_core.registry import build_registry
    from pasar_core.settings import Settings

    settings = Settings.from_env()
    pm = build_plugin_manager(enabled=settings.enabled_plugins)
    registry = build_registry(pm)
    rows: list[dict[str, Any]] = []
    for info in describe_plugins(pm):
        families = [f for f, plugin in registry.family_plugins.items() if plugin == info.name]
        tool_ids = [t for t in sorted(registry.tools) if registry.tools[t].family.id in families]
        rows.append(
            {
                "plugin": info.name,
                "distribution": info.distribution,
                "version": info.version,
                "families": families,
                "tools": tool_ids,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no plugins installed")
    for row in rows:
        click.secho(f"{row['plugin']} ", bold=True, nl=False)
        click.echo(f"({row['distribution'] or 'not from a distribution'} {row['version'] or ''})")
        click.echo(f"  families: {', '.join(row['families']) or '-'}")
        click.echo(f"  tools:    {', '.join(row['tools']) or '-'}")


plugins.add_command(plugins_check)


@plugins.command("install")
@click.argument("source")
@click.option("--sandboxed", is_flag=True, help="Required: install into a sandbox image layer.")
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    metavar="HOST[:PORT]",
    help="A host the plugin's tools may reach through the sandbox egress proxy (repeatable).",
)
@json_flag
@friendly_errors
def plugins_install(
    source: str, sandboxed: bool, allow_hosts: tuple[str, ...], as_json: bool
) -> None:
    """Install an untrusted plugin (a wheel file or a requirement) into a sandbox image layer,
    never into this environment; its tools run only in sandbox containers, with no network but
    the hosts approved here with --allow-host."""
    if not sandboxed:
        raise click.UsageError(
            "only --sandboxed installs are done here; trusted plugins are pip packages "
            "installed next to pasar (pip install ...)"
        )
    from pasar_core.settings import Settings

    from pasar.sandboxed_install import install_sandboxed

    view = run(install_sandboxed(Settings.from_env(), source, allow_hosts))
    installed = {"name": view.name, "version": view.version, "revision": view.revision,
                 "image": view.image, "allow_hosts": list(view.allow_hosts),
                 "tools": list(view.tools)}  # fmt: skip
    lines = [f"installed {view.name} {view.version} (sandboxed, revision {view.revision})",
             f"  image: {view.image}"]  # fmt: skip
    if view.allow_hosts:
        lines.append(f"  hosts: {', '.join(view.allow_hosts)}")
    lines.append(f"  tools: {', '.join(view.tools) or '-'}")
    emit(as_json, installed, *lines)


@plugins.command("remove")
@click.argument("name")
@click.option("--sandboxed", is_flag=True, help="Required: remove a sandboxed plugin.")
@json_flag
@friendly_errors
def plugins_remove(name: str, sandboxed: bool, as_json: bool) -> None:
    """Remove a sandboxed plugin and its tools (refused while agents use them)."""
    if not sandboxed:
        raise click.UsageError("only sandboxed plugins are removed here (pip uninstall the rest)")
    from pasar_core.settings import Settings

    from pasar.sandboxed_install import remove_sandboxed

    run(remove_sandboxed(Settings.from_env(), name))
    emit(as_json, {"removed": name}, f"removed {name}")


@main.group()
def tools() -> None:
    """The tool catalogue."""


@tools.command("list")
@click.option("--family", default=None, help="Only this family.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON with schemas.")
@friendly_errors
def tools_list(family: str | None, as_json: bool) -> None:
    """Every installed tool: id, effect, scopes and title."""
    from pasar_core.catalog import list_tools
    from pasar_core.plugins import build_plugin_manager
    from pasar_core.registry import build_registry
    from pasar_core.settings import Settings

    settings = Settings.from_env()
    registry = build_registry(build_plugin_manager(enabled=settings.enabled_plugins))
    if settings.mcp_servers:  # their families are listed by the servers themselves
        registry = run(with_mcp_tools(registry, settings))
    if family is not None and family not in registry.families:
        known = ", ".join(sorted(registry.families)) or "none"
        raise click.ClickException(f"no tool family {family!r} is installed (installed: {known})")
    views = list_tools(registry, family)
    if as_json:
        click.echo(json.dumps(views, indent=2))
        return
    rows = [(v["id"], v["effect"], v["title"], ", ".join(v["scopes"]) or "-") for v in views]
    table(("ID", "EFFECT", "TITLE", "SCOPES"), rows, empty="no tools")


async def with_mcp_tools(registry: Any, settings: Any) -> Any:
    """`registry` with the families of the operator's MCP servers, listed now."""
    from pasar_core.mcp.clients import mcp_tools

    async with mcp_tools(registry, settings.mcp_servers) as (with_mcp, _):
        return with_mcp


@main.group()
def users() -> None:
    """User accounts."""


def read_password() -> str:
    """Prompted (twice) on a terminal; otherwise the first line of stdin."""
    if sys.stdin.isatty():
        return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
    line = str(sys.stdin.readline()).rstrip("\r\n")
    if not line:
        raise click.UsageError(
            "no password: give --password, or send it as the first line of stdin"
        )
    return line


@users.command("create")
@click.argument("email")
@click.option(
    "--password",
    default=None,
    help="The password (default: prompted on a terminal, else the first line of stdin).",
)
@click.option("--operator", is_flag=True, help="The server's operator (sandboxed plugins).")
@json_flag
@friendly_errors
def users_create(email: str, password: str | None, operator: bool, as_json: bool) -> None:
    """Create a user and their personal organisation (the password is prompted for on a
    terminal, read from stdin otherwise, or given with --password)."""
    from pasar_core.accounts import service as accounts
    from pasar_core.schemas import parse_model
    from pasar_core.settings import Settings

    from pasar.lifecycle import running_services

    if password is None:
        password = read_password()
    credentials = parse_model(accounts.Credentials, {"email": email, "password": password})

    async def create() -> str:
        async with running_services(Settings.from_env()) as services:
            signed_up = await accounts.sign_up(services, credentials, operator=operator)
            return str(signed_up.user.id)

    user_id = run(create())
    kind = "operator" if operator else "user"
    emit(as_json, {"id": user_id, "email": credentials.email, "operator": operator},
         f"created {kind} {credentials.email} ({user_id})")  # fmt: skip


@users.command("set-operator")
@click.argument("email")
@click.option("--off", is_flag=True, help="Take the operator flag away.")
@json_flag
@friendly_errors
def users_set_operator(email: str, off: bool, as_json: bool) -> None:
    """Make a user the server's operator (or not, with --off); their sessions end.
    Roles in organisations: `pasar orgs members set-role`."""
    from pasar_core.accounts import service as accounts
    from pasar_core.settings import Settings

    from pasar.lifecycle import running_services

    async def change() -> None:
        async with running_services(Settings.from_env()) as services:
            await accounts.set_operator(services, email, not off)

    run(change())
    state = "no longer the operator" if off else "the operator"
    emit(as_json, {"email": email, "operator": not off},
         f"{email} is now {state}; their sessions ended (they log in again)")  # fmt: skip


@users.command("delete")
@click.argument("email")
@click.confirmation_option(prompt="Delete this user and everything they own?")
@json_flag
@friendly_errors
def users_delete(email: str, as_json: bool) -> None:
    """Delete a user and everything they own; their access tokens are refused at once."""
    from pasar_core.accounts import service as accounts
    from pasar_core.settings import Settings

    from pasar.lifecycle import running_services

    async def delete() -> str:
        async with running_services(Settings.from_env()) as services:
            return str(await accounts.delete_user(services, email))

    user_id = run(delete())
    emit(as_json, {"deleted": email, "id": user_id}, f"deleted {email} ({user_id})")


@main.group("api-keys")
def api_keys() -> None:
    """Users' API keys (the operator's view: any user's keys)."""


def _key_row(view: ApiKeyView) -> dict[str, Any]:
    return {
        "id": str(view.id),
        "prefix": view.prefix,
        "name": view.name,
        "owner": view.owner_email,
        "status": view.status,
        "created_at": view.created_at.isoformat(),
        "last_used_at": view.last_used_at.isoformat() if view.last_used_at else None,
        "expires_at": view.expires_at.isoformat() if view.expires_at else None,
        "revoked_at": view.revoked_at.isoformat() if view.revoked_at else None,
    }


@api_keys.command("list")
@click.option("--user", "email", default=None, help="Only this user's keys (by email).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def api_keys_list(email: str | None, as_json: bool) -> None:
    """API keys, newest first, with prefix, owner, status and dates (never the keys)."""
    from pasar_core.accounts import api_key_store
    from pasar_core.accounts import service as accounts
    from pasar_core.settings import Settings

    from pasar.lifecycle import running_services

    async def collect() -> list[dict[str, Any]]:
        async with running_services(Settings.from_env()) as services:
            user_id = (await accounts.user_by_email(services, email)).id if email else None
            views = await api_key_store.list_api_keys(
                services, user_id, limit=api_key_store.MAX_PAGE
            )
            return [_key_row(view) for view in views]

    rows = run(collect())
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table(
        ("ID", "PREFIX", "STATUS", "OWNER", "NAME", "CREATED", "LAST USED", "EXPIRES"),
        [(r["id"], r["prefix"], r["status"], r["owner"], r["name"], r["created_at"],
          r["last_used_at"] or "never", r["expires_at"] or "never") for r in rows],
        empty="no API keys",
    )  # fmt: skip


@api_keys.command("create")
@click.argument("email")
@click.option("--name", default="default", show_default=True)
@click.option(
    "--expires-in",
    "expires_in_s",
    type=int,
    default=None,
    help="Seconds until the key expires (default: never).",
)
@click.option(
    "--organisation",
    "organisation_id",
    type=click.UUID,
    default=None,
    help="The organisation the key acts in (default: the user's personal one).",
)
@click.option(
    "--role",
    type=click.Choice(["admin", "member", "viewer"]),
    default=None,
    help="The key's role (default and at most: the user's role in the organisation).",
)
@click.option(
    "--operator", is_flag=True,
    help="The key carries the user's operator powers (the user must be the operator).",
)  # fmt: skip
@json_flag
@friendly_errors
def api_keys_create(
    email: str,
    name: str,
    expires_in_s: int | None,
    organisation_id: uuid.UUID | None,
    role: str | None,
    operator: bool,
    as_json: bool,
) -> None:
    """Create an API key for a user; the key is printed once, on its own line."""
    from pasar_core.accounts import api_key_store
    from pasar_core.accounts import service as accounts
    from pasar_core.accounts.api_key_store import CreatedApiKey
    from pasar_core.schemas import parse_model
    from pasar_core.settings import Settings

    from pasar.lifecycle import running_services

    request = parse_model(
        api_key_store.ApiKeyRequest,
        {"name": name, "expires_in_s": expires_in_s, "role": role, "operator": operator},
    )

    async def create() -> CreatedApiKey:
        async with running_services(Settings.from_env()) as services:
            user = await accounts.user_by_email(services, email)
            return await api_key_store.create_api_key(
                services, user.id, request, organisation_id=organisation_id
            )

    created = run(create())
    if as_json:
        emit(True, {**_key_row(created.view), "key": created.key})
        return
    expiry = created.view.expires_at.isoformat() if created.view.expires_at else "never"
    click.echo(
        f"created {created.view.prefix} ({created.view.id}) for {created.view.owner_email}, "
        f"expires {expiry}; the key (shown only now):",
        err=True,
    )
    click.echo(created.key)


@api_keys.command("revoke")
@click.argument("key")
@json_flag
@friendly_errors
def api_keys_revoke(key: str, as_json: bool) -> None:
    """Revoke an API key by its id or its prefix (`psr_1a2b3c4d`)."""
    from pasar_core.accounts import api_key_store
    from pasar_core.settings import Settings

    from pasar.lifecycle import running_services

    async def revoke() -> ApiKeyView:
        async with running_services(Settings.from_env()) as services:
            key_id = await api_key_store.find_api_key(services, key)
            return await api_key_store.revoke_api_key(services, key_id, owner_id=None)

    view = run(revoke())
    emit(as_json, _key_row(view), f"revoked {view.prefix} ({view.id}) of {view.owner_email}")


@main.group()
def keys() -> None:
    """Encryption keys of secrets at rest (OAuth tokens, agent secrets)."""


@keys.command("rotate")
@click.option(
    "--new-key",
    is_flag=True,
    help="First add a fresh key to the data dir's key file and make it active "
    "(not with PASAR_ENCRYPTION_KEYS: put the new key first there instead).",
)
@json_flag
@friendly_errors
def keys_rotate(new_key: bool, as_json: bool) -> None:
    """Re-encrypt every stored secret with the active key (the first of PASAR_ENCRYPTION_KEYS)."""
    from pasar_core.crypto import new_key as make_key
    from pasar_core.oauth.tokens import rotate_keys
    from pasar_core.settings import Settings

    from pasar.lifecycle import running_services

    settings = Settings.from_env()
    if new_key:
        if settings.encryption_keys:
            raise click.ClickException(
                "keys come from PASAR_ENCRYPTION_KEYS: put the new key first there, keep the "
                "old ones after it, and run `pasar keys rotate` without --new-key"
            )
        settings.keyring()  # creates the key file on first use
        key_file = settings.ensure_data_dir() / "encryption_keys.json"
        data = json.loads(key_file.read_text())
        key_id, key = make_key()
        data["keys"][key_id] = key
        data["active"] = key_id
        key_file.write_text(json.dumps(data))
        if not as_json:
            click.echo(f"new active key {key_id}")

    async def rotate() -> dict[str, int]:
        async with running_services(settings) as services:
            return await rotate_keys(services)

    counts = run(rotate())
    active = settings.keyring().active_key_id
    emit(as_json, {"active_key_id": active, "re_encrypted": counts},
         f"re-encrypted with key {active}: "
         + ", ".join(f"{count} {name}" for name, count in counts.items()))  # fmt: skip


@main.group()
def sandbox() -> None:
    """Docker sandboxes for custom tools and untrusted plugins (used by sandbox workers)."""


@sandbox.command("build")
@click.option("--force", is_flag=True, help="Build even if the image's tag exists.")
@click.option("--prune", is_flag=True, help="Then remove older builds of the image.")
@json_flag
@friendly_errors
def sandbox_build(force: bool, prune: bool, as_json: bool) -> None:
    """Build the sandbox image offline from this machine's Python (cached by content hash)."""
    from pasar_core.sandbox import images
    from pasar_core.sandbox.daemon import connect
    from pasar_core.sandbox.settings import SandboxSettings

    settings = SandboxSettings.from_env()
    definition = images.load_definition(images.DEFAULT_IMAGE, settings.images_dir)
    client = connect(settings)
    try:
        result = images.ensure_image(client, definition, force=force)
        tag = result.ref.tag
        removed = list(images.remove_stale_images(client, result.ref)) if prune else []
        built = f"built {tag} in {result.seconds:.1f} s" if result.built else f"{tag} is up to date"
        emit(as_json, {"image": tag, "built": result.built, "removed": removed},
             built, *(f"removed {old}" for old in removed))  # fmt: skip
    finally:
        client.close()


@sandbox.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def sandbox_status(as_json: bool) -> None:
    """Whether sandboxes can run here: the Docker daemon, the image and the sandbox queue
    (its Redis, jobs waiting, workers, failed jobs); exit 1 if something is missing."""
    from pasar_core.sandbox import images
    from pasar_core.sandbox.daemon import HOW_TO_START, daemon_status
    from pasar_core.settings import Settings

    server_settings = Settings.from_env()
    settings = server_settings.sandbox
    ref = images.resolve(images.load_definition(images.DEFAULT_IMAGE, settings.images_dir))
    daemon, client = daemon_status(settings)
    image: dict[str, Any] = {"tag": ref.tag, "present": None}
    if client is not None:
        try:
            image = images.image_summary(client, ref)
        finally:
            client.close()
    missing = []
    if not daemon.reachable:
        missing.append(f"no Docker daemon answers at {daemon.address}: {HOW_TO_START}")
    elif not image["present"]:
        missing.append(f"the image {ref.tag} is not built: run `pasar sandbox build`")
    queue = _sandbox_queue_report(server_settings)
    if queue["problem"]:
        missing.append(queue["problem"])
    report = {
        "ready": not missing,
        "daemon": {"address": daemon.address, "reachable": daemon.reachable,
                   "version": daemon.version},
        "image": image,
        "queue": queue,
        "missing": missing,
    }  # fmt: skip
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        state = f"Docker {daemon.version}" if daemon.reachable else "not reachable"
        click.echo(f"daemon: {daemon.address} ({state})")
        presence = {True: "present", False: "missing", None: "unknown (no daemon)"}
        size = f", {image['size_mb']} MB" if image.get("size_mb") else ""
        click.echo(f"image:  {ref.tag} ({presence[image['present']]}{size})")
        click.echo(f"queue:  {_queue_line(queue)}")
        for line in missing:
            click.echo(f"missing: {line}")
        if not missing:
            click.echo("ready: sandbox workers can run custom tools here")
    if missing:
        raise SystemExit(1)


def _sandbox_queue_report(settings: Settings) -> dict[str, Any]:
    """The sandbox queue's part of `pasar sandbox status`: `problem` says what is missing."""
    from pasar_core.errors import StartupError
    from pasar_core.sandbox.queue import EMBEDDED, NO_QUEUE, queue_status

    status = queue_status(settings.sandbox_redis_url)
    report: dict[str, Any] = {"redis": status.redis, "reachable": status.reachable,
                              "queued": status.queued, "workers": status.workers,
                              "failed": status.failed, "problem": status.problem()}  # fmt: skip
    if status.redis == EMBEDDED:
        from pasar.embedded_sandbox import redis_server_binary

        if settings.env.get("PASAR_SANDBOX_EMBEDDED", "1") == "0":
            report.update(reachable=False, problem=NO_QUEUE)
            return report
        try:
            report["redis_server"] = str(redis_server_binary())
        except StartupError as error:
            report.update(reachable=False, problem=error.message)
    return report


def _queue_line(queue: dict[str, Any]) -> str:
    if queue["redis"] == "embedded":
        if queue.get("redis_server"):
            return (f"embedded (pasar serve starts {queue['redis_server']} and a local sandbox "
                    "worker)")  # fmt: skip
        return "embedded (not available)"
    if not queue["reachable"]:
        return f"{queue['redis']} (not reachable)"
    return (f"{queue['redis']} ({queue['queued']} waiting, {queue['workers']} workers, "
            f"{queue['failed']} failed)")  # fmt: skip


@main.group(cls=PluginCommandGroup)
def dev() -> None:
    """Tools for development and trying pasar offline (plugins add them: the Google plugin's
    `google-emulator`)."""


def _add_commands() -> None:
    from pasar.audit_cli import audit
    from pasar.cli_schedules import schedules

    main.add_command(audit)
    main.add_command(schedules)


_add_commands()
