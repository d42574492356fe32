"""What draining changes in the app: readiness says 503, answers close their connections,
everything else is still served."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest
from asgi_lifespan import LifespanManager

from tests.support.gateway import create_session
from voice_gateway.ops.drain import Drain
from voice_gateway.settings import Settings
from voice_gateway.standin import StandIn
from voice_gateway.web.app import create_app


@pytest.fixture
def drain() -> Drain:
    return Drain()


@pytest.fixture
async def gateway(settings: Settings, drain: Drain) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, drain)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client


async def test_readyz_is_503_once_draining(gateway: httpx.AsyncClient, drain: Drain) -> None:
    assert (await gateway.get("/readyz")).status_code == 200

    drain.start()
    response = await gateway.get("/readyz")

    assert response.status_code == 503
    assert response.json()["code"] == "shutting_down"


async def test_healthz_stays_200_while_draining(gateway: httpx.AsyncClient, drain: Drain) -> None:
    drain.start()

    assert (await gateway.get("/healthz")).status_code == 200


async def test_sessions_are_still_created_while_draining(
    gateway: httpx.AsyncClient, drain: Drain
) -> None:
    drain.start()

    assert (await create_session(gateway)).status_code == 201


async def test_answers_close_their_connection_while_draining(
    gateway: httpx.AsyncClient, drain: Drain
) -> None:
    assert "connection" not in (await gateway.get("/healthz")).headers

    drain.start()

    assert (await gateway.get("/healthz")).headers["connection"] == "close"


async def test_a_hurry_cuts_short_a_wait_within_the_grace_already_under_way() -> None:
    drain = Drain()
    drain.start()
    waited: list[float] = []

    async def wait_within_the_grace() -> None:
        started = anyio.current_time()
        with drain.within_grace(30):
            await anyio.sleep(30)
        waited.append(anyio.current_time() - started)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(wait_within_the_grace)
            await anyio.sleep(0.1)
            # As a signal handler calls it: a callback of the loop's, in no task.
            asyncio.get_running_loop().call_soon(drain.hurry)

    (waited_s,) = waited
    assert waited_s < 1
    assert drain.seconds_left(30) == 0


async def test_a_request_cancelled_while_not_draining_is_not_answered_but_cancelled(
    gateway: httpx.AsyncClient, standin: StandIn
) -> None:
    # Only a stop's cut-off is answered 503 (tests/ops/test_shutdown.py); any other
    # cancellation of a request goes on up, as cancellations must.
    standin.hang()
    answers: list[httpx.Response] = []
    with anyio.move_on_after(0.5) as waiting:
        answers.append(await create_session(gateway))

    assert waiting.cancelled_caught
    assert answers == []
