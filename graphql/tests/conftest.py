"""Helpers for the GraphQL tests: a stub-context executor (no database) and an HTTP caller."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import pasar_files
import pytest
from pasar_core.accounts.access_tokens import TokenSigner
from pasar_core.crypto import parse_keys
from pasar_core.plugins import build_plugin_manager
from pasar_core.registry import build_registry
from pasar_core.services import Services
from pasar_core.settings import Settings
from pasar_core.testing import TEST_SECRET_KEY
from pasar_graphql.context import Context
from pasar_graphql.schema import build_schema
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from starlette.requests import Request
from starlette.responses import Response
from starlette.testclient import TestClient
from strawberry.schema import BaseSchema

Execute = Callable[..., dict[str, Any]]
Call = Callable[..., dict[str, Any]]


@pytest.fixture(scope="session")
def offline_services() -> Services:
    """Real services over the files plugin; the database URL points nowhere (never connected)."""
    pm = build_plugin_manager(enabled=(), extra=[pasar_files])
    engine = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:9/none")
    return Services(
        settings=Settings(secret_key=TEST_SECRET_KEY),
        plugins=pm,
        registry=build_registry(pm),
        sessionmaker=async_sessionmaker(engine),
        tokens=TokenSigner(TEST_SECRET_KEY, 60),
        keyring=parse_keys("test:" + "A" * 43),
    )


def http_request(headers: Mapping[str, str] | None = None) -> Request:
    raw = [(key.lower().encode(), value.encode()) for key, value in (headers or {}).items()]
    return Request({"type": "http", "method": "POST", "path": "/graphql", "headers": raw})


@pytest.fixture
def execute(offline_services: Services) -> Execute:
    """execute(query, variables=None, headers=None, schema=None) -> the formatted response."""

    def run(
        query: str,
        variables: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        schema: BaseSchema | None = None,
    ) -> dict[str, Any]:
        context = Context(
            request=http_request(headers), response=Response(), services=offline_services
        )
        result = asyncio.run(
            (schema or build_schema()).execute(query, variables, context_value=context)
        )
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [error.formatted for error in result.errors]
        return body

    return run


@pytest.fixture
def gql(client: TestClient) -> Call:
    """gql(query, variables=None, headers=None) -> the JSON body of POST /graphql."""

    def call(
        query: str,
        variables: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        response = client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=dict(headers or {})
        )
        assert response.headers["content-type"].startswith("application/json"), response.text
        body: dict[str, Any] = response.json()
        return body

    return call
