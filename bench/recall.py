"""Recall latency of vector memory at N chunks for one agent (beside another agent's N, so the
agent filter is exercised): the partial HNSW index (`embedding::vector(384)`, cosine, iterative
scan) against an exact scan, the HNSW index's recall@5 against the exact answer, and embedding
throughput of the local model (all-MiniLM-L6-v2) on one core.

The corpus is synthetic, so 10k or 100k chunks need no hours of embedding: `uniform` random unit
vectors (the hardest case for HNSW: no neighbourhoods), or `clustered` ones (unit vectors around
a few hundred topic centres, queries near them: closer to real sentence embeddings, which cluster
by topic). HNSW is measured at several `hnsw.ef_search` breadths beside the exact scan; the
throughput part embeds real sentences.

    uv run python bench/recall.py --chunks 10000 --queries 200 --corpus clustered
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


def normalised(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector]


def unit(rng: random.Random) -> list[float]:
    return normalised([rng.gauss(0, 1) for _ in range(DIMENSIONS)])


class Corpus:
    """Vectors for chunks and queries: uniform on the sphere, or around `centres` topics (each
    coordinate spread `spread` around its topic's centre, so members of a topic sit at a cosine
    of about 0.6 to 0.7 with each other, as sentences on one subject do with the local model)."""

    def __init__(self, kind: str, rng: random.Random, centres: int = 300, spread: float = 0.04):
        self.kind, self.rng, self.spread = kind, rng, spread
        self.centres = [unit(rng) for _ in range(centres)] if kind == "clustered" else []

    def vector(self) -> list[float]:
        if not self.centres:
            return unit(self.rng)
        centre = self.rng.choice(self.centres)
        return normalised([c + self.rng.gauss(0, self.spread) for c in centre])


async def fill(url: str, chunks: int, corpus: Corpus) -> uuid.UUID:
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
    # The HNSW index is built once after the load (as a bulk import would), not row by row.
    async with sessions.begin() as session:
        indexes = (await session.execute(text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'embeddings' "
            "AND indexdef ILIKE '%hnsw%' AND indexdef LIKE '%vector(384)%'"
        ))).all()  # fmt: skip
        for index in indexes:
            await session.execute(text(f'DROP INDEX "{index.indexname}"'))
    for agent in agents:
        for start in range(0, chunks, 1000):
            count = min(1000, chunks - start)
            async with sessions.begin() as session:
                await store.insert_chunks(
                    session, user_id=user, agent_id=agent, kind="knowledge", model=MODEL,
                    document_id=None, chunks=[f"chunk {start + i}" for i in range(count)],
                    vectors=[corpus.vector() for _ in range(count)], metadata={"name": "bench"},
                )  # fmt: skip
    async with sessions.begin() as session:
        await session.execute(text("SET LOCAL maintenance_work_mem = '1GB'"))
        for index in indexes:
            await session.execute(text(index.indexdef))
        await session.execute(text("ANALYZE embeddings"))
    await engine.dispose()
    return agents[0]


async def measure(
    url: str, agent: uuid.UUID, queries: int, corpus: Corpus, breadths: list[int]
) -> dict[str, Any]:
    from pasar_core.memory import store
    from pasar_core.storage.db import build_engine
    from sqlalchemy.ext.asyncio import async_sessionmaker

    engine = build_engine(url, pool_size=2)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    variants = [*(f"hnsw@{breadth}" for breadth in breadths), "exact"]
    times: dict[str, list[float]] = {variant: [] for variant in variants}
    recalls: dict[str, list[float]] = {variant: [] for variant in variants[:-1]}
    for _ in range(queries):
        vector = corpus.vector()
        found: dict[str, list[uuid.UUID]] = {}
        for variant in corpus.rng.sample(variants, len(variants)):
            exact = variant == "exact"
            breadth = None if exact else int(variant.split("@")[1])
            async with sessions.begin() as session:
                started = time.perf_counter()
                hits = await store.nearest(session, agent_id=agent, model=MODEL, vector=vector,
                                           k=5, caller=None, exact=exact, ef_search=breadth)  # fmt: skip
                times[variant].append(time.perf_counter() - started)
            found[variant] = [hit.id for hit in hits]
        for variant in recalls:
            recalls[variant].append(len(set(found[variant]) & set(found["exact"])) / 5)
    await engine.dispose()
    return {"latency_ms": {v: summary_ms(t) for v, t in times.items()},
            "recall_at_5": {v: round(statistics.mean(r), 3) for v, r in recalls.items()}}  # fmt: skip


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
    parser.add_argument("--corpus", choices=["uniform", "clustered"], default="clustered")
    parser.add_argument("--ef-search", type=int, nargs="+", default=[40, 100, 200, 400],
                        help="hnsw.ef_search breadths to measure")  # fmt: skip
    parser.add_argument("--sentences", type=int, default=256, help="for embedding throughput")
    parser.add_argument("--no-embedding", action="store_true", help="skip the model's throughput")
    args = parser.parse_args()
    corpus = Corpus(args.corpus, random.Random(14))
    from pasar_core.storage.migrate import upgrade

    with embedded_postgres() as (url, _):
        upgrade(url)
        started = time.perf_counter()
        agent = asyncio.run(fill(url, args.chunks, corpus))
        fill_s = time.perf_counter() - started
        measured = asyncio.run(measure(url, agent, args.queries, corpus, args.ef_search))
    latency, recall = measured["latency_ms"], measured["recall_at_5"]
    exact_p50 = latency["exact"]["median_ms"]
    print(table(
        ["chunks (one agent, of 2x)", "corpus", "variant", "p50 ms", "p90 ms", "p50 vs exact",
         "recall@5 vs exact"],
        [[args.chunks, args.corpus, v, latency[v]["median_ms"], latency[v]["p90_ms"],
          round(latency[v]["median_ms"] / exact_p50, 2), recall.get(v, 1.0)] for v in latency],
    ))  # fmt: skip
    embedding = None if args.no_embedding else throughput(args.sentences)
    if embedding is not None:
        print(table(["model", "load s", "sentences/s on one core", "ms per sentence"],
                    [[MODEL, embedding["load_s"], embedding["per_second_one_core"],
                      embedding["ms_per_sentence"]]]))  # fmt: skip
    write_results(f"recall_{args.corpus}_{args.chunks}", {
        "machine": machine(), "args": vars(args), "fill_s": round(fill_s, 1), **measured,
        "embedding": embedding,
    })  # fmt: skip


if __name__ == "__main__":
    main()
