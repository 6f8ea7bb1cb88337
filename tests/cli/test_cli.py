"""The `pasar` command line: friendly output and non-zero exit codes on failure."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from pasar_core.plugins import build_plugin_manager
from pasar_core.registry import build_registry
from pasar_core.settings import Settings
from pasar_core.testing import TEST_PASSWORD

from pasar.cli import main


@pytest.fixture
def env(pasar_settings: Settings) -> dict[str, str]:
    return {
        "DATABASE_URL": pasar_settings.database_url or "",
        "PASAR_DATA_DIR": str(pasar_settings.data_dir),
        "PASAR_SECRET_KEY": pasar_settings.secret_key or "",
    }


def test_plugins_list_shows_pasar_files_from_its_entry_point() -> None:
    result = CliRunner().invoke(main, ["plugins", "list"])
    assert result.exit_code == 0, result.output
    assert "files (pasar-files 0.1.0)" in result.output
    assert "txt:read" in result.output
    rows = json.loads(CliRunner().invoke(main, ["plugins", "list", "--json"]).output)
    files = next(row for row in rows if row["plugin"] == "files")
    assert {"csv:read", "csv:write", "txt:read", "txt:write", "pdf:read"} <= set(files["tools"])


def test_tools_list_text_and_json() -> None:
    result = CliRunner().invoke(main, ["tools", "list"])
    assert result.exit_code == 0
    header, *lines = result.output.splitlines()
    assert header.split() == ["ID", "EFFECT", "TITLE", "SCOPES"]
    assert "\x1b[" not in result.output  # not a terminal: no colour
    starts = [header.index(name) for name in ("EFFECT", "TITLE", "SCOPES")]
    printed = {}
    for line in lines:
        cut = [line[:starts[0]], line[starts[0]:starts[1]], line[starts[1]:starts[2]],
               line[starts[2]:]]  # fmt: skip
        tool_id, effect, title, scopes = (cell.strip() for cell in cut)
        printed[tool_id] = (effect, title, scopes)
    registry = build_registry(build_plugin_manager())
    assert printed == {
        tool_id: (
            tool.spec.effect.value,
            tool.spec.title,
            ", ".join(sorted(tool.spec.scopes)) or "-",
        )
        for tool_id, tool in registry.tools.items()
    }
    assert printed["txt:write"] == ("write", registry.tools["txt:write"].spec.title, "-")
    coloured = CliRunner().invoke(main, ["tools", "list"], color=True)
    assert coloured.output.startswith("\x1b[1mID")  # a terminal gets a bold header
    tools = json.loads(
        CliRunner().invoke(main, ["tools", "list", "--json", "--family", "files"]).output
    )
    assert {"csv:read", "csv:write", "txt:read", "txt:write", "files:list"} <= {
        tool["id"] for tool in tools
    }


def test_an_unknown_family_is_a_failure_naming_the_installed_ones() -> None:
    result = CliRunner().invoke(main, ["tools", "list", "--family", "nope"])
    assert result.exit_code == 1
    assert "no tool family 'nope' is installed" in result.output
    assert "files" in result.output
    assert "Traceback" not in result.output


def test_users_create_without_a_terminal_reads_the_password_from_stdin(
    env: dict[str, str],
) -> None:
    runner = CliRunner()
    nothing = runner.invoke(main, ["users", "create", "pipe@example.com"], env=env, input="")
    assert nothing.exit_code == 2
    assert "give --password, or send it as the first line of stdin" in nothing.output
    assert "Aborted" not in nothing.output
    piped = runner.invoke(main, ["users", "create", "pipe@example.com", "--json"], env=env,
                          input=f"{TEST_PASSWORD}\n")  # fmt: skip
    assert piped.exit_code == 0, piped.output
    created = json.loads(piped.output)
    assert created["email"] == "pipe@example.com"
    token = runner.invoke(main, ["api-keys", "create", "pipe@example.com", "--json"], env=env)
    assert token.exit_code == 0, token.output
    assert json.loads(token.output)["key"].startswith("psr_")


EXEMPT_FROM_JSON = {
    "serve",
    "worker",
    "dev google-emulator",  # they serve until stopped
}


def leaf_commands(
    group: click.Group, prefix: str = "", parent: click.Context | None = None
) -> dict[str, click.Command]:
    found: dict[str, click.Command] = {}
    ctx = click.Context(group, parent=parent, info_name=prefix.strip() or "pasar")
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            found |= leaf_commands(command, f"{path} ", ctx)
        else:
            found[path] = command
    return found


def test_every_command_that_prints_a_result_has_json() -> None:
    commands = leaf_commands(main)
    assert {"tools list", "users create", "api-keys create", "dev google-emulator"} <= set(commands)
    missing = [
        path for path, command in commands.items()
        if path not in EXEMPT_FROM_JSON
        and "--json" not in {o for p in command.params for o in getattr(p, "opts", ())}
    ]  # fmt: skip
    assert missing == []


def test_unknown_plugin_is_a_clean_failure() -> None:
    result = CliRunner().invoke(main, ["plugins", "list"], env={"PASAR_PLUGINS": "nope"})
    assert result.exit_code == 1
    assert "no installed plugin is named 'nope'" in result.output
    assert "Traceback" not in result.output


def test_db_upgrade_and_users_create(env: dict[str, str]) -> None:
    runner = CliRunner()
    upgraded = runner.invoke(main, ["db", "upgrade"], env=env)
    assert upgraded.exit_code == 0, upgraded.output
    assert "up to date" in upgraded.output
    created = runner.invoke(
        main,
        ["users", "create", "Ops@Example.com", "--operator", "--password", TEST_PASSWORD],
        env=env,
    )
    assert created.exit_code == 0, created.output
    assert "created operator ops@example.com" in created.output
    again = runner.invoke(
        main, ["users", "create", "ops@example.com", "--password", TEST_PASSWORD], env=env
    )
    assert again.exit_code == 1
    assert "already exists" in again.output


def test_users_create_refuses_bad_input(env: dict[str, str]) -> None:
    result = CliRunner().invoke(
        main, ["users", "create", "not-an-email", "--password", "x"], env=env
    )
    assert result.exit_code == 1
    assert "invalid" in result.output
    bad_role = CliRunner().invoke(
        main, ["users", "create", "a@b.co", "--role", "admin", "--password", TEST_PASSWORD]
    )
    assert bad_role.exit_code == 2


def as_user(env: dict[str, str], email: str, act: Any) -> Any:
    """`act(services, principal)` as the user's session (through the services the REST and
    GraphQL surfaces call)."""
    import asyncio

    from pasar_core.accounts import service as accounts
    from pasar_core.accounts.principal import Principal

    from pasar.lifecycle import running_services

    async def run() -> Any:
        async with running_services(Settings.from_env(env)) as services:
            user = await accounts.user_by_email(services, email)
            principal = Principal(user.id, email, "admin", "token", user.id)
            return await act(services, principal)

    return asyncio.run(run())


def new_team(env: dict[str, str], email: str) -> str:
    from pasar_core.organisations.store import OrganisationInput, create_organisation

    async def create(services: Any, principal: Any) -> str:
        view = await create_organisation(services, principal, OrganisationInput(name="crew"))
        return str(view.organisation_id)

    return str(as_user(env, email, create))


def accept(env: dict[str, str], email: str, invitation_id: str, secret: str) -> None:
    from pasar_core.organisations.invitations import accept_invitation

    async def act(services: Any, principal: Any) -> None:
        await accept_invitation(services, principal, invitation_id, secret)

    as_user(env, email, act)


def test_users_set_operator_members_and_delete(env: dict[str, str]) -> None:
    runner = CliRunner()
    email, other = "roles@example.com", "other@example.com"
    create = ["users", "create", email, "--password", TEST_PASSWORD]
    assert runner.invoke(main, create, env=env).exit_code == 0
    assert runner.invoke(main, ["users", "create", other, "--password", TEST_PASSWORD],
                         env=env).exit_code == 0  # fmt: skip
    changed = runner.invoke(main, ["users", "set-operator", email], env=env)
    assert changed.exit_code == 0, changed.output
    assert "now the operator" in changed.output
    unknown = runner.invoke(main, ["users", "set-operator", "nobody@example.com"], env=env)
    assert (unknown.exit_code, "no user" in unknown.output) == (1, True)

    listed = runner.invoke(main, ["orgs", "list", email], env=env)
    assert listed.exit_code == 0, listed.output
    organisation, role = listed.output.split()[:2]
    assert role == "admin"
    assert "(personal)" in listed.output
    members = ["orgs", "members"]
    personal = runner.invoke(main, [*members, "invite", organisation, other], env=env)
    assert (personal.exit_code, "personal organisation" in personal.output) == (1, True)
    unknown_org = runner.invoke(main, [*members, "invite", str(uuid.uuid4()), other], env=env)
    assert unknown_org.exit_code == 1, unknown_org.output
    assert "no organisation" in unknown_org.output
    assert "Traceback" not in unknown_org.output
    assert isinstance(unknown_org.exception, SystemExit)
    organisation = new_team(env, email)
    invited = runner.invoke(main, [*members, "invite", organisation, other, "--role", "viewer"],
                            env=env)  # fmt: skip
    assert invited.exit_code == 0, invited.output
    assert f"invited {other} as viewer" in invited.output
    secret = invited.output.split("accepts with it): ")[1].split()[0]
    pending = runner.invoke(main, [*members, "invitations", organisation], env=env)
    assert other in pending.output
    assert secret not in pending.output  # shown once
    invitation_id = pending.output.split()[0]
    roster = runner.invoke(main, [*members, "list", organisation], env=env)
    assert other not in roster.output  # not a member until they accept
    accept(env, other, invitation_id, secret)
    promoted = runner.invoke(main, [*members, "set-role", organisation, other, "admin"], env=env)
    assert promoted.exit_code == 0, promoted.output
    assert "admin" in promoted.output
    assert runner.invoke(main, [*members, "set-role", organisation, other, "god"],
                         env=env).exit_code == 2  # fmt: skip
    removed = runner.invoke(main, [*members, "remove", organisation, email], env=env)
    assert removed.exit_code == 0, removed.output
    last = runner.invoke(main, [*members, "set-role", organisation, other, "member"], env=env)
    assert (last.exit_code, "last admin" in last.output) == (1, True)
    roster = runner.invoke(main, [*members, "list", organisation], env=env)
    assert other in roster.output
    assert email not in roster.output
    as_json = runner.invoke(main, [*members, "list", organisation, "--json"], env=env)
    assert [(m["email"], m["role"]) for m in json.loads(as_json.output)] == [(other, "admin")]
    memberships = json.loads(runner.invoke(main, ["orgs", "list", other, "--json"], env=env).output)
    assert {"organisation_id": organisation, "role": "admin"}.items() <= next(
        m for m in memberships if m["organisation_id"] == organisation
    ).items()

    kept = runner.invoke(main, ["users", "delete", email], env=env, input="n\n")
    assert kept.exit_code == 1  # not confirmed
    deleted = runner.invoke(main, ["users", "delete", email, "--yes"], env=env)
    assert deleted.exit_code == 0, deleted.output
    again = runner.invoke(main, ["users", "delete", email, "--yes"], env=env)
    assert (again.exit_code, "no user" in again.output) == (1, True)
    assert runner.invoke(main, create, env=env).exit_code == 0  # the email is free again


def test_bad_database_url_is_reported(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["db", "upgrade"],
        env={"DATABASE_URL": "mysql://x@y/z", "PASAR_DATA_DIR": str(tmp_path)},
    )
    assert result.exit_code == 1
    assert "must be PostgreSQL" in result.output
