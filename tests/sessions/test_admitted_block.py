"""`Admission.admitted`'s block keeps the slot it counted when the block ends well and frees it
when the block fails or is cancelled; a replay's block, which counted nothing, frees nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from tests.support.gateway import make_settings_for
from voice_gateway.errors import ConcurrencyLimited
from voice_gateway.ops.metrics import Metrics
from voice_gateway.sessions.admission import Admission, open_admission
from voice_gateway.sessions.service import SessionAsk, plan_session


@pytest.fixture
async def admission() -> AsyncIterator[Admission]:
    settings = make_settings_for("http://127.0.0.1:9", max_sessions_per_user=1)
    async with open_admission(settings, Metrics()) as admission:
        yield admission


async def admits_another(admission: Admission) -> bool:
    try:
        async with admission.admitted(plan_session(SessionAsk("nate", "pm-agent", 1))):
            return True
    except ConcurrencyLimited:
        return False


async def test_a_block_that_ends_well_keeps_its_slot(admission: Admission) -> None:
    async with admission.admitted(plan_session(SessionAsk("nate", "pm-agent", 1))):
        pass

    assert not await admits_another(admission)


async def test_a_block_that_fails_frees_its_slot(admission: Admission) -> None:
    with pytest.raises(LookupError):
        async with admission.admitted(plan_session(SessionAsk("nate", "pm-agent", 1))):
            raise LookupError

    assert await admits_another(admission)


async def test_a_cancelled_block_frees_its_slot(admission: Admission) -> None:
    with anyio.move_on_after(0.01) as waited:
        async with admission.admitted(plan_session(SessionAsk("nate", "pm-agent", 1))):
            await anyio.sleep(10)

    assert waited.cancelled_caught
    assert await admits_another(admission)


async def test_a_replays_failing_block_leaves_the_live_sessions_slot(
    admission: Admission,
) -> None:
    live = plan_session(SessionAsk("nate", "pm-agent", 1))
    async with admission.admitted(live):
        pass

    async def is_live() -> bool:
        return True

    replay = plan_session(SessionAsk("nate", "pm-agent", 1), live.session_id)
    with pytest.raises(LookupError):
        async with admission.admitted(replay, is_live):
            raise LookupError

    assert not await admits_another(admission)
