"""`knowledge:search`: an agent searches its own knowledge (and its caller's past exchanges
with it) while it runs, a built-in plugin like any other."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from pasar_core.agents.config import AgentConfig
from pasar_core.errors import ToolError
from pasar_core.hookspecs import hookimpl
from pasar_core.memory.knowledge import MAX_QUERY_CHARS, search_agent
from pasar_core.services import Services
from pasar_core.specs import ToolContext, ToolFamily, ToolSpec
from pasar_core.storage.models import Agent

SEARCHER = "knowledge.services"
MAX_K = 20


async def _run_search(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    services: Services | None = ctx.extras.get(SEARCHER)
    if services is None or ctx.agent_id is None:
        raise ToolError("knowledge search runs only inside an agent's run on a pasar server")
    agent_id = uuid.UUID(ctx.agent_id)
    async with services.sessionmaker() as session:
        config = await session.scalar(select(Agent.config).where(Agent.id == agent_id))
    if config is None:
        raise ToolError("the agent is gone")
    settings = AgentConfig.model_validate(config).knowledge
    hits = await search_agent(services, agent_id, settings, args["query"],
                              args.get("k", 5), uuid.UUID(ctx.user_id))  # fmt: skip
    return {"hits": [{"content": hit.content, "document": hit.metadata.get("name"),
                      "kind": hit.kind, "score": round(hit.score, 4)} for hit in hits]}  # fmt: skip


KNOWLEDGE_SEARCH = ToolSpec(
    id="knowledge:search",
    title="Search the agent's knowledge",
    description=(
        "Search the documents this agent was taught and your past conversations with it by "
        f"meaning: the k (default 5, at most {MAX_K}) passages nearest the query, best first, "
        "each with its document name and cosine similarity score (1 = same meaning)."
    ),
    input_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["query"],
        "properties": {
            "query": {"type": "string", "minLength": 1, "maxLength": MAX_QUERY_CHARS},
            "k": {"type": "integer", "minimum": 1, "maximum": MAX_K, "default": 5},
        },
    },
    output_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["hits"],
        "properties": {
            "hits": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["content", "document", "kind", "score"],
                    "properties": {
                        "content": {"type": "string"},
                        "document": {"type": ["string", "null"]},
                        "kind": {"enum": ["knowledge", "exchange"]},
                        "score": {"type": "number"},
                    },
                },
            }
        },
    },
    run=_run_search,
    timeout_s=180.0,  # the first search of a process loads the local model
)


@hookimpl
def register_tool_families() -> list[ToolFamily]:
    return [
        ToolFamily(
            id="knowledge",
            title="Knowledge",
            description="Search what the agent was taught (memory: vector).",
            tools=(KNOWLEDGE_SEARCH,),
        )
    ]


@hookimpl
def startup(services: Services) -> None:
    services.extras[SEARCHER] = services
