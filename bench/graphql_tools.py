"""GraphQL `{ tools { id title effect } }` (the whole catalogue, no auth): pasar against raw
graphql-core with cached parse and validation over the same catalogue as plain dicts."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _graphql

QUERY = "{ tools { id title effect } }"

if __name__ == "__main__":
    _graphql.run("graphql_tools", __doc__.split("\n")[0], QUERY, needs_agent=False)
