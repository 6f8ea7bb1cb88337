"""An agent's knowledge through REST, with the real local embedding model (all-MiniLM-L6-v2)
and real pgvector: the relevant fact is found among distractors; files are read by the files
plugin's readers; bad input is refused with nothing stored; another user's agent is NOT_FOUND."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import pytest
from pasar_core.settings import Settings
from starlette.testclient import TestClient

from pasar.app import create_app

DISTRACTORS = [
    "The office coffee machine is descaled every Friday afternoon.",
    "Our football team won the regional cup in 2019 after a penalty shoot-out.",
    "The quarterly report template lives in the shared finance folder.",
    "Parking spaces on level two are reserved for visitors.",
    "The cafeteria serves vegetarian lasagne on Wednesdays.",
    "Printer toner is ordered through the facilities request form.",
    "The annual summer party takes place by the lake in July.",
    "New laptops are imaged by IT within two working days.",
]
FACT = "The wifi password for the guest network is purple-elephant-42."


def signed_in(client: TestClient, email: str) -> dict[str, str]:
    credentials = {"email": email, "password": "correct horse battery staple"}
    client.post("/auth/signup", json=credentials)
    token = client.post("/auth/token", json=credentials).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def client(pasar_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(pasar_settings)) as client:
        yield client


def vector_agent(client: TestClient, headers: dict[str, str]) -> str:
    created = client.post(
        "/agents", json={"name": "remembers", "config": {"model": "scripted", "memory": "vector",
                                            "model_options": {"script": [{"content": "ok"}]}}},
        headers=headers,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    return str(created.json()["agent_id"])


def test_search_finds_the_relevant_fact_among_distractors(client: TestClient) -> None:
    headers = signed_in(client, "learner@example.com")
    agent = vector_agent(client, headers)
    for index, text in enumerate(DISTRACTORS):
        added = client.post(f"/agents/{agent}/knowledge",
                            json={"name": f"note {index}", "text": text}, headers=headers)  # fmt: skip
        assert added.status_code == 201, added.text
    fact = client.post(f"/agents/{agent}/knowledge", json={"name": "wifi", "text": FACT},
                       headers=headers).json()  # fmt: skip
    assert fact["chunks"] == 1
    assert fact["model"] == "local:all-minilm-l6-v2"

    found = client.post(f"/agents/{agent}/knowledge/search",
                        json={"query": "How do guests connect to the wireless internet?", "k": 3},
                        headers=headers)  # fmt: skip
    assert found.status_code == 200, found.text
    hits = found.json()["hits"]
    assert hits[0]["content"] == FACT
    assert hits[0]["document"] == "wifi"
    assert hits[0]["score"] > hits[1]["score"]

    listed = client.get(f"/agents/{agent}/knowledge", headers=headers).json()["documents"]
    assert [d["name"] for d in listed] == [*(f"note {i}" for i in range(8)), "wifi"]
    deleted = client.delete(f"/agents/{agent}/knowledge/{fact['id']}", headers=headers)
    assert deleted.status_code == 204
    again = client.post(f"/agents/{agent}/knowledge/search",
                        json={"query": "wifi password for guests"}, headers=headers).json()  # fmt: skip
    assert FACT not in [hit["content"] for hit in again["hits"]]
    missing = client.delete(f"/agents/{agent}/knowledge/{fact['id']}", headers=headers)
    assert missing.status_code == 404


def test_files_are_read_chunked_and_found(client: TestClient) -> None:
    from docx import Document

    headers = signed_in(client, "reader@example.com")
    agent = vector_agent(client, headers)
    document = Document()
    document.add_paragraph("Shipping policy. " + " ".join(DISTRACTORS * 3))
    document.add_paragraph("Refunds are paid within fourteen days of the returned parcel arriving.")
    buffer = io.BytesIO()
    document.save(buffer)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    added = client.post(f"/agents/{agent}/knowledge/files",
                        json={"filename": "policy.docx", "content_base64": encoded},
                        headers=headers)  # fmt: skip
    assert added.status_code == 201, added.text
    assert added.json()["chunks"] >= 2  # long enough to be cut
    csv = base64.b64encode(b"city,population\nLyon,522000\nNantes,320000\n").decode()
    assert client.post(f"/agents/{agent}/knowledge/files",
                       json={"filename": "cities.csv", "content_base64": csv},
                       headers=headers).status_code == 201  # fmt: skip
    hits = client.post(f"/agents/{agent}/knowledge/search",
                       json={"query": "how long until I get my money back", "k": 1},
                       headers=headers).json()["hits"]  # fmt: skip
    assert "fourteen days" in hits[0]["content"]


def test_bad_input_is_refused_and_nothing_is_stored(client: TestClient) -> None:
    headers = signed_in(client, "careful@example.com")
    agent = vector_agent(client, headers)
    cases = [
        ("/knowledge/files", {"filename": "tool.exe", "content_base64": "eA=="},
         415, "UNSUPPORTED_FILE_TYPE"),
        ("/knowledge/files", {"filename": "broken.pdf",
                              "content_base64": base64.b64encode(b"not a pdf").decode()},
         422, "UNREADABLE_DOCUMENT"),
        ("/knowledge/files", {"filename": "a.txt", "content_base64": "***"},
         422, "VALIDATION_FAILED"),
        ("/knowledge", {"name": "blank", "text": "   \n  "}, 422, "VALIDATION_FAILED"),
        ("/knowledge", {"name": "huge", "text": "word " * 450_000}, 422, "VALIDATION_FAILED"),
    ]  # fmt: skip
    for path, body, status, code in cases:
        answer = client.post(f"/agents/{agent}{path}", json=body, headers=headers)
        assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), answer.text
    assert client.get(f"/agents/{agent}/knowledge", headers=headers).json() == {"documents": []}


def test_another_users_agent_is_not_found(client: TestClient) -> None:
    owner = signed_in(client, "owner@example.com")
    agent = vector_agent(client, owner)
    fact = client.post(f"/agents/{agent}/knowledge", json={"name": "wifi", "text": FACT},
                       headers=owner).json()  # fmt: skip
    stranger = signed_in(client, "stranger@example.com")
    answers = [
        client.post(f"/agents/{agent}/knowledge", json={"name": "x", "text": "mine now"},
                    headers=stranger),
        client.get(f"/agents/{agent}/knowledge", headers=stranger),
        client.post(f"/agents/{agent}/knowledge/search", json={"query": "wifi"}, headers=stranger),
        client.delete(f"/agents/{agent}/knowledge/{fact['id']}", headers=stranger),
    ]  # fmt: skip
    assert [(a.status_code, a.json()["error"]["code"]) for a in answers] == [(404, "NOT_FOUND")] * 4
    assert [d["name"] for d in
            client.get(f"/agents/{agent}/knowledge", headers=owner).json()["documents"]] == ["wifi"]  # fmt: skip


def test_each_run_recalls_the_relevant_chunks_into_its_prompt_and_remembers_its_exchange(
    client: TestClient,
) -> None:
    headers = signed_in(client, "runner@example.com")
    echo = {"script": [{"echo": True}, {"echo": True}]}  # answers with the prompt it received
    config = {"model": "scripted", "model_options": echo, "memory": "vector",
              "knowledge": {"top_k": 2, "min_score": 0.2}}  # fmt: skip
    agent = client.post("/agents", json={"name": "recaller", "config": config},
                        headers=headers).json()["agent_id"]  # fmt: skip
    for index, text in enumerate([*DISTRACTORS, FACT]):
        client.post(f"/agents/{agent}/knowledge", json={"name": f"n{index}", "text": text},
                    headers=headers)  # fmt: skip

    run = client.post(f"/agents/{agent}/execute",
                      json={"input": "What is the guest wifi password?"}, headers=headers).json()  # fmt: skip
    assert run["status"] == "succeeded", run
    assert [step["type"] for step in run["steps"]] == ["recall", "model_call"]
    recall = run["steps"][0]
    assert recall["model"] == "local:all-minilm-l6-v2"
    assert recall["hits"][0]["content"] == FACT
    assert 1 <= len(recall["hits"]) <= 2  # top_k
    assert all(hit["score"] >= 0.2 for hit in recall["hits"])  # min_score
    assert "purple-elephant-42" in run["output"]["message"]  # the prompt the model saw held it

    # The exchange is remembered: a later run recalls it, and search shows it as an exchange.
    hits = client.post(f"/agents/{agent}/knowledge/search",
                       json={"query": "guest wifi password question", "k": 10},
                       headers=headers).json()["hits"]  # fmt: skip
    assert "exchange" in [hit["kind"] for hit in hits]
    other = signed_in(client, "not-the-runner@example.com")
    assert client.post(f"/agents/{agent}/knowledge/search", json={"query": "wifi"},
                       headers=other).status_code == 404  # fmt: skip


def test_the_token_budget_and_threshold_bound_what_is_recalled() -> None:
    from pasar_core.agents.config import KnowledgeSettings
    from pasar_core.memory.recall import within_budget
    from pasar_core.memory.store import Hit

    def hit(content: str, score: float) -> Hit:
        import uuid

        return Hit(uuid.uuid4(), "knowledge", None, content, {}, score)

    hits = [hit("a" * 300, 0.9), hit("b" * 300, 0.8), hit("c" * 40, 0.7), hit("d" * 10, 0.1)]
    settings = KnowledgeSettings(top_k=4, min_score=0.5, token_budget=100)  # 400 characters
    kept = within_budget(hits, settings)
    assert [h["content"][0] for h in kept] == ["a", "c"]  # b passes the budget, d the threshold


def test_the_agent_searches_its_knowledge_with_the_knowledge_search_tool(
    client: TestClient,
) -> None:
    headers = signed_in(client, "searcher@example.com")
    script = [{"tool_calls": [{"name": "knowledge_search",
                               "args": {"query": "guest wireless password", "k": 2}}]},
              {"content": "done"}]  # fmt: skip
    config = {"model": "scripted", "model_options": {"script": script}}  # memory "none": no recall
    agent = client.post("/agents", json={"name": "tool user", "tools": ["knowledge:search"],
                                         "config": config}, headers=headers)  # fmt: skip
    assert agent.status_code == 201, agent.text
    agent_id = agent.json()["agent_id"]
    for index, text in enumerate([*DISTRACTORS[:4], FACT]):
        client.post(f"/agents/{agent_id}/knowledge", json={"name": f"n{index}", "text": text},
                    headers=headers)  # fmt: skip
    run = client.post(f"/agents/{agent_id}/execute", json={"input": "search"},
                      headers=headers).json()  # fmt: skip
    assert run["status"] == "succeeded", run
    assert [step["type"] for step in run["steps"]] == [
        "model_call", "tool_call", "tool_result", "model_call"]  # fmt: skip
    result = run["steps"][2]["result"]
    assert len(result["hits"]) == 2
    assert result["hits"][0]["content"] == FACT
    assert result["hits"][0]["document"] == "n4"


def test_an_unknown_embedding_provider_or_memory_type_is_refused(client: TestClient) -> None:
    headers = signed_in(client, "typo@example.com")
    script = {"script": [{"content": "ok"}]}
    bad: list[tuple[dict[str, Any], str]] = [
        ({"memory": "vector", "knowledge": {"embedding_model": "nope:model"}}, "UNKNOWN_PROVIDER"),
        ({"memory": "vectors"}, "VALIDATION_FAILED"),
        ({"memory": "vector", "knowledge": {"top_k": 0}}, "VALIDATION_FAILED"),
        ({"memory": "vector", "knowledge": {"min_score": 2}}, "VALIDATION_FAILED"),
    ]
    for config, code in bad:
        answer = client.post("/agents", json={"name": "x", "config": {
            "model": "scripted", "model_options": script, **config}}, headers=headers)  # fmt: skip
        assert (answer.status_code, answer.json()["error"]["code"]) == (422, code), answer.text
    assert client.get("/agents", headers=headers).json()["agents"] == []


def test_knowledge_through_graphql(client: TestClient) -> None:
    """The same services through GraphQL: add text and a file, list, search, delete; typed
    errors with nothing stored; another user's agent is NOT_FOUND."""
    headers = signed_in(client, "graph@example.com")
    agent = vector_agent(client, headers)

    def gql(document: str, who: dict[str, str] = headers, **variables: Any) -> Any:
        return client.post("/graphql", json={"query": document, "variables": variables},
                           headers=who).json()  # fmt: skip

    add = "mutation($a: ID!, $n: String!, $t: String!) { addKnowledge(agentId: $a, name: $n, text: $t) { id name chunks model } }"
    for index, text in enumerate(DISTRACTORS[:4]):
        assert "errors" not in gql(add, a=agent, n=f"note {index}", t=text)
    fact = gql(add, a=agent, n="wifi", t=FACT)["data"]["addKnowledge"]
    assert (fact["name"], fact["chunks"], fact["model"]) == ("wifi", 1, "local:all-minilm-l6-v2")
    csv = base64.b64encode(b"city,population\nLyon,522000\n").decode()
    added_file = gql("mutation($a: ID!, $c: String!) { addKnowledgeFile(agentId: $a, filename: \"cities.csv\", contentBase64: $c) { name } }",
                     a=agent, c=csv)  # fmt: skip
    assert added_file["data"]["addKnowledgeFile"]["name"] == "cities.csv"

    search = "query($a: ID!, $q: String!, $k: Int!) { searchKnowledge(agentId: $a, query: $q, k: $k) { content document documentId kind score } }"
    hits = gql(search, a=agent, q="How do guests connect to the wireless internet?", k=3)
    hits = hits["data"]["searchKnowledge"]
    assert (hits[0]["content"], hits[0]["document"], hits[0]["documentId"]) == (
        FACT,
        "wifi",
        fact["id"],
    )
    assert hits[0]["kind"] == "knowledge"
    assert hits[0]["score"] > hits[1]["score"]

    listing = "query($a: ID!) { knowledge(agentId: $a) { name } }"
    names = [d["name"] for d in gql(listing, a=agent)["data"]["knowledge"]]
    assert names == ["note 0", "note 1", "note 2", "note 3", "wifi", "cities.csv"]

    refused = [
        gql(add, a=agent, n="blank", t="  \n "),
        gql("mutation($a: ID!) { addKnowledgeFile(agentId: $a, filename: \"tool.exe\", contentBase64: \"eA==\") { id } }", a=agent),
        gql("mutation($a: ID!) { addKnowledgeFile(agentId: $a, filename: \"a.txt\", contentBase64: \"***\") { id } }", a=agent),
        gql(search, a=agent, q="wifi", k=500),
    ]  # fmt: skip
    codes = [answer["errors"][0]["extensions"]["code"] for answer in refused]
    assert codes == ["VALIDATION_FAILED", "UNSUPPORTED_FILE_TYPE", "VALIDATION_FAILED",
                     "VALIDATION_FAILED"]  # fmt: skip
    assert len(gql(listing, a=agent)["data"]["knowledge"]) == 6

    stranger = signed_in(client, "graph-stranger@example.com")
    foreign = [
        gql(add, stranger, a=agent, n="x", t="mine now"),
        gql(listing, stranger, a=agent),
        gql(search, stranger, a=agent, q="wifi", k=1),
        gql("mutation($a: ID!, $d: ID!) { deleteKnowledge(agentId: $a, documentId: $d) }",
            stranger, a=agent, d=fact["id"]),
    ]  # fmt: skip
    assert [answer["errors"][0]["extensions"]["code"] for answer in foreign] == ["NOT_FOUND"] * 4

    delete = "mutation($a: ID!, $d: ID!) { deleteKnowledge(agentId: $a, documentId: $d) }"
    assert gql(delete, a=agent, d=fact["id"])["data"]["deleteKnowledge"] is True
    again = gql(delete, a=agent, d=fact["id"])
    assert again["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert "wifi" not in [d["name"] for d in gql(listing, a=agent)["data"]["knowledge"]]
