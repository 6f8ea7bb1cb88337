"""pasar: compose LangChain agents from a marketplace of tool plugins."""

from __future__ import annotations

from pasar.app import create_app

__all__ = ["create_app"]
