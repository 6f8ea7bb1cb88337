"""The ASGI GraphQL app; mount it as `Route("/graphql", app)` and `WebSocketRoute("/graphql", app)`."""

from __future__ import annotations

from pasar_core.services import Services
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.schema import BaseSchema

from pasar_graphql.context import Context
from pasar_graphql.schema import build_schema


class PasarGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI view with a typed context built from the lifespan's `Services`."""

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        services = getattr(request.state, "services", None)
        if not isinstance(services, Services):
            raise RuntimeError("no Services in the app state: run the app with its lifespan")
        return Context(request=request, response=response, services=services)


def build_graphql_app(schema: BaseSchema | None = None) -> PasarGraphQL:
    """The `/graphql` endpoint, with GraphiQL for browsers."""
    return PasarGraphQL(schema or build_schema(), graphql_ide="graphiql")
