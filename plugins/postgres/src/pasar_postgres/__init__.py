"""pasar tool family `postgres`: introspect a PostgreSQL database, query it read-only, and run
approval-gated writes. The connection string is the per-agent secret `postgres_dsn`."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from pasar_core.hookspecs import hookimpl
from pasar_core.specs import ToolFamily

from pasar_postgres.dsn import SECRET_NAME
from pasar_postgres.introspect import DESCRIBE_TABLE, LIST_TABLES
from pasar_postgres.limits import SETTINGS_SCHEMA
from pasar_postgres.query import EXECUTE, QUERY

try:
    __version__ = version("pasar-postgres")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0"

POSTGRES = ToolFamily(
    id="postgres",
    title="PostgreSQL",
    description=(
        "Explore a PostgreSQL database, query it read-only, and (with approval) change it. "
        f"Connects with the agent secret {SECRET_NAME!r} (a postgresql:// URL)."
    ),
    tools=(LIST_TABLES, DESCRIBE_TABLE, QUERY, EXECUTE),
    version=__version__,
    settings_schema=SETTINGS_SCHEMA,
    secrets=(SECRET_NAME,),
)


@hookimpl
def register_tool_families() -> list[ToolFamily]:
    """The `postgres` family: list_tables, describe_table, query, execute."""
    return [POSTGRES]


__all__ = ["POSTGRES", "register_tool_families"]
