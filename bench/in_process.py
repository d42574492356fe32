"""The gateway app driven in process, for `bench.instructions`: POST /api/voice/session over ASGI,
32 at a time, against the stand-in at `LIVEKIT_URL`. No HTTP server: what it counts is the app's
own work (middleware, handler, LiveKit call, signing, logs, metrics), which is what most changes
touch.

The app is built as `serve` builds it (the environment's settings, JSON logs through the writer
thread, what start-up made frozen), and its lifespan runs around the requests. Every answer must
be a 201, or the run fails: a count of refusals would be a count of something else.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import uvloop

from voice_gateway.ops import server
from voice_gateway.ops.logs import configure_logging
from voice_gateway.settings import Settings
from voice_gateway.web.app import create_app

PATH = "/api/voice/session"
AT_ONCE = 32  # as the fast scenario's wrk connections


class NotCreated(Exception):
    """An answer other than 201."""


def session_scope(state: dict[str, Any], number: int, body: bytes) -> dict[str, Any]:
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"authorization", b"Bearer " + os.environ["VOICE_GATEWAY_API_KEYS"].encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": PATH, "raw_path": PATH.encode(), "query_string": b"",
        "root_path": "", "headers": headers, "client": ("127.0.0.1", 40000 + number % 20000),
        "server": ("127.0.0.1", 8000), "state": state.copy(),
    }  # fmt: skip


async def create_one(app: Any, state: dict[str, Any], number: int) -> None:
    body = json.dumps({"user_id": f"user-{number}", "agent_id": "pm-agent"}).encode()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(session_scope(state, number, body), receive, send)
    if sent[0]["status"] != 201:
        raise NotCreated(f"answer {sent[0]['status']}: {sent[-1].get('body', b'')[:300]!r}")


async def create_sessions(requests: int) -> None:
    app = create_app(Settings())
    async with app.router.lifespan_context(app) as lifespan_state:
        state = dict(lifespan_state or {})
        _settle_heap()  # as `serve` does once it has started
        numbers: Iterator[int] = iter(range(requests))

        async def worker() -> None:
            for number in numbers:
                await create_one(app, state, number)

        await asyncio.gather(*(worker() for _ in range(AT_ONCE)))


def _settle_heap() -> None:
    # Trees from before `settle_heap` (an --alt-src of bench.instructions) only froze the heap.
    settle = getattr(server, "settle_heap", None)
    if settle is None:
        gc.freeze()
    else:
        settle()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, required=True)
    args = parser.parse_args(argv)
    with open(os.devnull, "w") as lines:  # logged as `serve` logs, to nowhere
        writer = configure_logging("json", "info", stream=lines)
        try:
            uvloop.run(create_sessions(args.requests))
        except NotCreated as exc:
            sys.exit(f"in_process: {exc}")
        finally:
            writer.stop()


if __name__ == "__main__":
    main()
