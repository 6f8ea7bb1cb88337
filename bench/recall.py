"""Recall latency of vector memory at N chunks for one agent (beside another agent's N, so the
agent filter is exercised): the partial HNSW index (`embedding::vector(384)`, cosine, iterative
scan) against an exact scan, the HNSW index's recall@5 against the exact answer, and embedding
throughput of the local model (all-MiniLM-L6-v2) on one core.

The corpus vectors are random unit vectors (the hardest case for HNSW: no clusters), so 10k or
100k chunks need no hours of embedding; the throughput part embeds real sentences.

    uv run python bench/recall.py --chunks 10000 --queries 200
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import statistics
import time
import uuid
from typing import Any

from _common import embedded_postgres, machine, summary_ms, table, write_results

DIMENSIONS = 384
MODEL = "local:all-minilm-l6-v2"


def unit(rng: random.Random) -> list[float]:
    vector = [rng.gauss(0, 1) for _ in range(DIMENSIONS)]
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector]


async def fill(url: str, chunks: int, rng: random.Random) -> uuid.UUID:
    from pasar_core.memory import store
    from pasar_core.storage.db import build_engine
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import async_sessionmaker

    engine = build_engine(url, pool_size=2)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    user, org = uuid.uuid4(), uuid.uuid4()
    agents = [uuid.uuid4(), uuid.uuid4()]
    async with sessions.begin() as session:
        await session.execute(text("INSERT INTO users (id, email, password_hash) "
                                   "VALUES (:id, 'bench@example.com', 'x')"), {"id": user})  # fmt: skip
        await session.execute(text("INSERT INTO organisations (id, name, personal) "
                                   "VALUES (:id, 'bench', true)"), {"id": org})  # fmt: skip
        for agent in agents:
            await session.execute(
                text("INSERT INTO agents (id, owner_id, name, config, organisation_id) "
                     "VALUES (:id, :user, 'bench', '{}', :org)"),
                {"id": agent, "user": user, "org": org},
            )  # fmt: skip
    for agent in agents:
        for start in range(0, chunks, 1000):
            count = min(1000, chunks - start)
            async with sessions.begin() as session:
                await store.insert_chunks(
                    session, user_id=user, agent_id=agent, kind="knowledge", model=MODEL,
                    document_id=None, chunks=[f"chunk {start + i}" for i in range(count)],
                    vectors=[unit(rng) for _ in range(count)], metadata={"name": "bench"},
                )  # fmt: skip
    async with sessions.begin() as session:
        await session.execute(text("ANALYZE embeddings"))
    await engine.dispose()
    return agents[0]


async def measure(url: str, agent: uuid.UUID, queries: int, rng: random.Random) -> dict[str, Any]:
    from pasar_core.memory import store
    from pasar_core.storage.db import build_engine
    from sqlalchemy.ext.asyncio import async_sessionmaker

    engine = build_engine(url, pool_size=2)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    times: dict[str, list[float]] = {"hnsw": [], "exact": []}
    recalls: list[float] = []
    for _ in range(queries):
        vector = unit(rng)
        found: dict[str, list[uuid.UUID]] = {}
        for variant in ("hnsw", "exact") if rng.random() < 0.5 else ("exact", "hnsw"):
            async with sessions.begin() as session:
                started = time.perf_counter()
                hits = await store.nearest(session, agent_id=agent, model=MODEL, vector=vector,
                                           k=5, caller=None, exact=variant == "exact")  # fmt: skip
                times[variant].append(time.perf_counter() - started)
            found[variant] = [hit.id for hit in hits]
        recalls.append(len(set(found["hnsw"]) & set(found["exact"])) / 5)
    await engine.dispose()
    return {"latency_ms": {v: summary_ms(t) for v, t in times.items()},
            "recall_at_5": statistics.mean(recalls)}  # fmt: skip


def throughput(sentences: int) -> dict[str, Any]:
    import torch
    from pasar_core.memory.providers import LocalMiniLM

    torch.set_num_threads(1)  # per core
    model = LocalMiniLM()
    started = time.perf_counter()
    model.embed(["warm up"])
    load_s = time.perf_counter() - started
    texts = [f"Sentence number {i} about the quarterly report and the guest wifi."
             for i in range(sentences)]  # fmt: skip
    started = time.perf_counter()
    model.embed(texts)
    elapsed = time.perf_counter() - started
    return {"load_s": round(load_s, 1), "sentences": sentences,
            "per_second_one_core": round(sentences / elapsed, 1),
            "ms_per_sentence": round(elapsed / sentences * 1000, 2)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=10_000, help="chunks per agent (two agents)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--sentences", type=int, default=256, help="for embedding throughput")
    args = parser.parse_args()
    rng = random.Random(14)
    from pasar_core.storage.migrate import upgrade

    with embedded_postgres() as (url, _):
        upgrade(url)
        started = time.perf_counter()
        agent = asyncio.run(fill(url, args.chunks, rng))
        fill_s = time.perf_counter() - started
        measured = asyncio.run(measure(url, agent, args.queries, rng))
    embedding = throughput(args.sentences)
    latency = measured["latency_ms"]
    print(table(
        ["chunks (one agent, of 2x)", "variant", "p50 ms", "p90 ms", "recall@5 vs exact"],
        [[args.chunks, v, latency[v]["median_ms"], latency[v]["p90_ms"],
          round(measured["recall_at_5"], 3) if v == "hnsw" else 1.0] for v in ("hnsw", "exact")],
    ))  # fmt: skip
    print(table(["model", "load s", "sentences/s on one core", "ms per sentence"],
                [[MODEL, embedding["load_s"], embedding["per_second_one_core"],
                  embedding["ms_per_sentence"]]]))  # fmt: skip
    write_results(f"recall_{args.chunks}", {
        "machine": machine(), "args": vars(args), "fill_s": round(fill_s, 1), **measured,
        "embedding": embedding,
    })  # fmt: skip


if __name__ == "__main__":
    main()
