"""What every `pasar` command shares: typed errors as one line, and running a coroutine."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import click
from pasar_core.errors import PasarError

P = ParamSpec("P")
T = TypeVar("T")


def friendly_errors(command: Callable[P, T]) -> Callable[P, T]:
    """Typed errors become one red line and exit code 1, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return command(*args, **kwargs)
        except PasarError as error:
            raise click.ClickException(error.message) from None

    return wrapper


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)
