"""Recall for `memory: "vector"`: before a run, the chunks of the agent's knowledge and past
exchanges nearest its input, within the agent's top-k, score threshold and token budget, go into
the prompt (recorded as a `recall` step); after a successful run its exchange is embedded."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from pasar_core.agents.config import KnowledgeSettings
from pasar_core.memory import store
from pasar_core.memory.knowledge import embed, search_agent
from pasar_core.services import Services

log = logging.getLogger("pasar.knowledge")

CHARS_PER_TOKEN = 4
"""A rough token count (English text), so a budget needs no tokenizer of the chat model."""
PREAMBLE = (
    "Passages recalled from your knowledge and past conversations, most relevant first. Use "
    "them when they help answer; they may be incomplete or unrelated:"
)
MAX_EXCHANGE_CHARS = 4_000


def within_budget(hits: list[store.Hit], settings: KnowledgeSettings) -> list[dict[str, Any]]:
    """The hits at or above the score threshold, best first, while they fit the token budget."""
    kept: list[dict[str, Any]] = []
    left = settings.token_budget * CHARS_PER_TOKEN
    for hit in hits[: settings.top_k]:
        if hit.score < settings.min_score or len(hit.content) > left:
            continue
        left -= len(hit.content)
        kept.append(hit.as_json())
    return kept


async def recall(
    services: Services, agent_id: uuid.UUID, caller: uuid.UUID, settings: KnowledgeSettings,
    query: str,
) -> list[dict[str, Any]]:  # fmt: skip
    hits = await search_agent(services, agent_id, settings, query, settings.top_k, caller)
    return within_budget(hits, settings)


def recall_prompt(hits: list[dict[str, Any]]) -> str:
    passages = "\n\n".join(
        f"[{index}] ({hit['document'] or hit['kind']}) {hit['content']}"
        for index, hit in enumerate(hits, start=1)
    )
    return f"{PREAMBLE}\n\n{passages}"


async def remember_exchange(
    services: Services, *, user_id: uuid.UUID, agent_id: uuid.UUID,
    settings: KnowledgeSettings, execution_id: uuid.UUID, question: str, answer: str,
) -> None:  # fmt: skip
    """Embed a finished run's exchange for later recall; a failure costs the memory, not the
    run (logged)."""
    content = f"User: {question}\nAssistant: {answer}"[:MAX_EXCHANGE_CHARS]
    try:
        [vector] = await embed(services, settings.embedding_model, [content])
        async with services.sessionmaker.begin() as session:
            await store.insert_chunks(
                session, user_id=user_id, agent_id=agent_id, kind="exchange",
                model=settings.embedding_model, document_id=None, chunks=[content],
                vectors=[vector], metadata={"execution_id": str(execution_id)},
            )  # fmt: skip
    except Exception as error:  # the embedder or the database: the run has already succeeded
        log.warning("execution %s: exchange not remembered (%s)", execution_id,
                    type(error).__name__)  # fmt: skip
