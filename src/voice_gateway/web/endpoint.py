"""An endpoint is declared once, in its routes module beside its handler: the handler, its OpenAPI
operation, and whether it is public. The app's routes, the OpenAPI document and the access
middleware's public paths are all derived from the list in `web/routes/__init__.py`, so adding an
endpoint touches one routes module."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from .openapi import Operation

Handler = Callable[[Any], Awaitable[Response]]


@dataclass(frozen=True)
class Endpoint:
    handler: Handler
    operation: Operation

    def route(self) -> Route:
        method = self.operation.method.upper()
        return Route(self.operation.path, self.handler, methods=[method])


def routes_of(endpoints: Sequence[Endpoint]) -> list[Route]:
    return [endpoint.route() for endpoint in endpoints]


def public_paths_of(endpoints: Sequence[Endpoint]) -> frozenset[str]:
    return frozenset(e.operation.path for e in endpoints if e.operation.public)


def operations_of(endpoints: Sequence[Endpoint]) -> list[Operation]:
    return [endpoint.operation for endpoint in endpoints]
