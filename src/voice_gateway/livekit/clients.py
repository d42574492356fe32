"""Everything the gateway holds to talk to LiveKit for its lifetime, opened together: the one
connection pool for RoomService and AgentDispatchService, the join-token signer and the webhook
verifier, and the one thread limiter that every synchronous SDK call (signing, verifying) runs
under."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio

from ..ops.metrics import Metrics
from ..settings import Settings
from .dispatches import LiveKitDispatches
from .join_tokens import TokenSigner
from .rooms import LiveKitRooms, open_livekit_calls
from .webhooks import WebhookInbox


@dataclass(frozen=True)
class LiveKit:
    rooms: LiveKitRooms
    join_tokens: TokenSigner
    webhooks: WebhookInbox
    dispatches: LiveKitDispatches


@asynccontextmanager
async def open_livekit(settings: Settings, metrics: Metrics) -> AsyncIterator[LiveKit]:
    limiter = anyio.CapacityLimiter(settings.thread_limit)
    metrics.watch_thread_limiter(limiter)
    key, secret = settings.livekit_api_key, settings.livekit_api_secret
    webhooks = WebhookInbox(key, secret, limiter, metrics)
    async with (
        open_livekit_calls(settings, limiter, metrics) as calls,
        anyio.create_task_group() as signing_hops,
    ):
        signer = TokenSigner(key, secret, limiter, signing_hops)
        yield LiveKit(LiveKitRooms(calls), signer, webhooks, LiveKitDispatches(calls))
