"""pasar: compose LangChain agents from a marketplace of tool plugins.

Importing the package is cheap (the CLI answers `--help` without loading the app); `create_app`
loads the application (Starlette, GraphQL, SQLAlchemy, LangChain) on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pasar.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from pasar.app import create_app

        return create_app
    raise AttributeError(f"module 'pasar' has no attribute {name!r}")
