"""The ASGI GraphQL app; mount it as `Route("/graphql", app)` and `WebSocketRoute("/graphql", app)`."""

from __future__ import annotations

import json
from typing import Any

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from pasar_core.errors import BadRequest, PasarError
from pasar_core.services import Services
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.extensions import SchemaExtension
from strawberry.http import GraphQLRequestData
from strawberry.schema import BaseSchema

from pasar_graphql.context import Context
from pasar_graphql.direct import answer_directly
from pasar_graphql.schema import build_schema
from pasar_graphql.tools.catalogue import ToolCatalogue
from pasar_graphql.transport import decode_http_json, decode_ws_message, http_code, request_error


class PasarGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI view with a typed context built from the lifespan's `Services`; every
    request error (malformed body, too large, wrong method) is a GraphQL JSON error with
    `extensions.code`."""

    def __init__(
        self,
        *args: Any,
        ide_html: str | None = None,
        direct_queries: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.catalogue = ToolCatalogue()
        self.ide_html = ide_html
        self.direct_queries = direct_queries
        """Answer plain cached queries without Strawberry's view (`pasar_graphql.direct`)."""
        self.extension_hooks: dict[type[SchemaExtension], dict[str, bool] | None] = {}
        """`pasar_graphql.direct.extension_hooks` of each extension class met."""
        self.answered_directly = 0
        """How many requests `pasar_graphql.direct` answered (tests check the path taken)."""

    @property
    def graphql_ide_html(self) -> str:
        """The server's own GraphiQL page when given (pasar's, which loads nothing from another
        origin), else Strawberry's."""
        return self.ide_html if self.ide_html is not None else super().graphql_ide_html

    async def render_graphql_ide(self, request: Request) -> Response:
        """The page names its files by the static digest: revalidate it like `/` and `/docs`."""
        return HTMLResponse(self.graphql_ide_html, headers={"Cache-Control": "no-cache"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        response: Response
        try:
            direct = await answer_directly(self, request) if self.direct_queries else None
            response = direct if direct is not None else await self.run(request)
        except PasarError as error:
            response = request_error(error.status, error.code, error.message, error.details)
        except HTTPException as error:
            response = request_error(error.status_code, http_code(error.status_code), error.reason)
        await response(scope, receive, send)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        services = getattr(request.state, "services", None)
        if not isinstance(services, Services):
            raise RuntimeError("no Services in the app state: run the app with its lifespan")
        runs = getattr(request.state, "runs", None)
        return Context(
            request=request,
            response=response,
            services=services,
            catalogue=self.catalogue,
            runs=runs,
        )

    def parse_json(self, data: str | bytes) -> Any:
        """Every JSON text of an HTTP request: the body, GET's `variables` and `extensions`."""
        return decode_http_json(data)

    def decode_json(self, data: str | bytes) -> object:
        """Websocket messages (Strawberry closes the socket with 4400 on a JSONDecodeError)."""
        try:
            return decode_ws_message(data)
        except BadRequest as error:
            raise json.JSONDecodeError(error.message, "", 0) from None

    async def execute_operation(self, *args: Any, **kwargs: Any) -> Any:
        request_data, context = kwargs.get("request_data"), kwargs.get("context")
        if isinstance(request_data, list) and isinstance(context, Context):
            context.batch = True
        return await super().execute_operation(*args, **kwargs)

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        parsed = await super().parse_http_body(request)
        for operation in parsed if isinstance(parsed, list) else [parsed]:
            if not isinstance(operation.operation_name, (str, type(None))):
                raise BadRequest("the GraphQL request's 'operationName' must be a string or null")
        return parsed


def build_graphql_app(
    schema: BaseSchema | None = None,
    *,
    dev_mode: bool = False,
    ide_html: str | None = None,
    direct_queries: bool = True,
) -> PasarGraphQL:
    """The `/graphql` endpoint, with GraphiQL for browsers (`ide_html`: the page to serve).
    Production mode unless `dev_mode` (see `pasar_graphql.production`)."""
    return PasarGraphQL(
        schema or build_schema(dev_mode=dev_mode),
        graphql_ide="graphiql",
        ide_html=ide_html,
        direct_queries=direct_queries,
    )
