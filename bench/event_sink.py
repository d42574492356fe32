"""A receiver of the gateway's session events for the bench: answers every POST 204 at once and
counts them (GET / says how many). Served by uvicorn, its access log off.

Run: python -m bench.event_sink --host 127.0.0.1 --port 8300
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def create_app() -> Starlette:
    received = {"events": 0}

    async def receive(request: Request) -> Response:
        await request.body()
        received["events"] += 1
        return Response(status_code=204)

    async def count(request: Request) -> Response:
        return JSONResponse(received)

    return Starlette(routes=[Route("/", receive, methods=["POST"]), Route("/", count)])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.event_sink", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvicorn.run(create_app(), host=args.host, port=args.port, access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
