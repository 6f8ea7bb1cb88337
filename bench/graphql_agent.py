"""GraphQL `agent(id)` with variables and a JWT: pasar against raw graphql-core with cached parse
and validation and the same SELECT (bench/bare/bare_graphql.py), same server, same database."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _graphql

QUERY = "query ($id: ID!) { agent(id: $id) { id name tools config createdAt } }"

if __name__ == "__main__":
    _graphql.run("graphql_agent", __doc__.split("\n")[0], QUERY, needs_agent=True)
