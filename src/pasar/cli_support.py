"""What every `pasar` command shares: typed errors as one line, running a coroutine, `--json`
and tables."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, ParamSpec, TypeVar

import click
from pasar_core.errors import PasarError
from pasar_core.printable import printable

P = ParamSpec("P")
T = TypeVar("T")


def friendly_errors(command: Callable[P, T]) -> Callable[P, T]:
    """Typed errors become one red line and exit code 1, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return command(*args, **kwargs)
        except PasarError as error:
            raise click.ClickException(printable(error.message)) from None

    return wrapper


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def json_flag(command: Callable[P, T]) -> Callable[P, T]:
    """The `--json` flag every command that prints a result has (as `as_json`)."""
    return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")(
        command
    )


def emit(as_json: bool, result: Any, *lines: str) -> None:
    """`result` as JSON with `--json`, else the text `lines`."""
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
        return
    for line in lines:
        click.echo(printable(line))


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, empty: str) -> None:
    """Rows in aligned columns under a bold header (bold only on a terminal: click strips
    styles from output that is not one); `empty` when there are no rows."""
    cells = [[printable(str(cell)) for cell in row] for row in rows]
    if not cells:
        click.echo(empty)
        return
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    click.secho("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
                bold=True)  # fmt: skip
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
