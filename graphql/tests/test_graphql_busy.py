"""A busy database (`Unavailable`) is a 503 with Retry-After only when nothing of the request
ran; once a field has run (a mutation's earlier field committed, a query's other field
answered), the answer is a 200 with the typed errors, so a client does not retry what was done."""

from __future__ import annotations

import asyncio

import pytest
import strawberry
from pasar_core.errors import Unavailable
from pasar_core.services import Services
from pasar_graphql.context import Context
from pasar_graphql.schema import PasarSchema, default_extensions
from starlette.requests import Request
from starlette.responses import Response


class Done:
    """What the resolvers did, in order (stands for what a mutation commits)."""

    log: list[str] = []


def busy() -> Unavailable:
    return Unavailable("the server is busy; try again shortly", retry_after_s=1)


@strawberry.type
class Query:
    @strawberry.field
    def answered(self) -> str:
        return "yes"

    @strawberry.field
    def refused(self) -> str:
        raise busy()

    @strawberry.field
    def maybe(self) -> str | None:
        raise busy()

    @strawberry.field
    def nothing(self) -> str | None:
        return None


@strawberry.type
class Mutation:
    @strawberry.mutation
    def commit(self) -> str:
        Done.log.append("commit")
        return "committed"

    @strawberry.mutation
    def refused(self) -> str:
        raise busy()


SCHEMA = PasarSchema(query=Query, mutation=Mutation, extensions=default_extensions(dev_mode=True))


def answer(services: Services, query: str) -> tuple[Response, dict[str, object]]:
    request = Request({"type": "http", "method": "POST", "path": "/graphql", "headers": []})
    response = Response()
    context = Context(request=request, response=response, services=services)
    result = asyncio.run(SCHEMA.execute(query, context_value=context))
    codes = [error.formatted["extensions"]["code"] for error in result.errors or ()]
    return response, {"data": result.data, "codes": codes}


@pytest.mark.parametrize(
    "query",
    [
        "mutation { refused commit }",  # refused first: commit never ran
        "mutation { r: refused }",
        "{ refused }",
        "{ refused answered }",  # a query changes nothing; null data, nothing to keep
        "{ maybe }",  # a nullable field refused: nothing answered
        "{ a: maybe b: maybe }",
    ],
)
def test_a_request_refused_before_anything_ran_is_a_503(
    offline_services: Services, query: str
) -> None:
    Done.log.clear()
    response, body = answer(offline_services, query)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "UNAVAILABLE" in body["codes"]  # type: ignore[operator]
    assert Done.log == []


def test_a_mutation_refused_after_an_earlier_field_committed_is_a_200(
    offline_services: Services,
) -> None:
    Done.log.clear()
    response, body = answer(offline_services, "mutation { commit refused }")
    assert Done.log == ["commit"]
    assert response.status_code == 200  # a retry would commit twice
    assert "retry-after" not in response.headers
    assert body["codes"] == ["UNAVAILABLE"]


@pytest.mark.parametrize(
    "query",
    [
        "mutation { ... on Mutation { refused } commit }",  # not sure what ran first: say so
        "mutation { refused @include(if: true) commit }",
    ],
)
def test_a_mutation_whose_first_field_is_not_plain_is_never_a_503(
    offline_services: Services, query: str
) -> None:
    response, body = answer(offline_services, query)
    assert response.status_code == 200
    assert body["codes"] == ["UNAVAILABLE"]


def test_a_query_with_data_for_what_answered_is_a_200(offline_services: Services) -> None:
    response, body = answer(offline_services, "{ answered maybe }")
    assert response.status_code == 200
    assert body["data"] == {"answered": "yes", "maybe": None}
    assert body["codes"] == ["UNAVAILABLE"]


def test_a_nullable_field_refused_beside_one_answered_with_null_is_a_200(
    offline_services: Services,
) -> None:
    response, body = answer(offline_services, "{ maybe nothing: nothing }")
    assert response.status_code == 200
    assert body["data"] == {"maybe": None, "nothing": None}
