"""`pasar dev google-emulator`, added to the command line by the plugin's `register_commands`."""

from __future__ import annotations

import click


@click.command("google-emulator")
@click.option("--port", type=int, default=8765, show_default=True)
@click.option("--auto-consent", is_flag=True, help="Grant at once instead of a consent page.")
def google_emulator(port: int, auto_consent: bool) -> None:
    """Serve a local Google (OAuth and the Gmail, Docs, Sheets, Calendar, Drive subsets the
    google_workspace tools call) on 127.0.0.1, with sample data."""
    import uvicorn

    from pasar_google_workspace.emulator import EmulatorState, build_emulator

    url = f"http://127.0.0.1:{port}"
    click.echo("Google emulator: start pasar with")
    click.echo(f"  PASAR_GOOGLE_CLIENT_ID=emulator PASAR_GOOGLE_CLIENT_SECRET=emulator \\\n"
               f"  PASAR_GOOGLE_BASE_URL={url} pasar serve")  # fmt: skip
    app = build_emulator(EmulatorState(auto_consent=auto_consent))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="info")


def add_commands(cli: click.Group) -> None:
    """`google-emulator` in the `dev` group (made when the command line has none)."""
    dev = cli.commands.get("dev")
    if not isinstance(dev, click.Group):
        dev = click.Group("dev", help="Tools for development and trying pasar offline.")
        cli.add_command(dev)
    dev.add_command(google_emulator)
