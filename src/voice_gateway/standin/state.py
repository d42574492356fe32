"""Everything a stand-in server knows, shared by its ASGI app and the test hooks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .agent_workers import AgentWorkers
from .calls import CallLog
from .faults import Faults
from .store import RoomStore
from .webhooks import WebhookSender


@dataclass
class StandInState:
    """`api_keys` maps API key to secret, like the server's `keys:` config; webhooks are signed
    with the first pair (the server's `webhook.api_key`) and sent to `webhook_urls`."""

    api_keys: Mapping[str, str]
    close_empty_rooms: bool = True  # close rooms past empty_timeout / departure_timeout
    store: RoomStore = field(default_factory=RoomStore)
    faults: Faults = field(default_factory=Faults)
    calls: CallLog = field(default_factory=CallLog)
    webhook_urls: tuple[str, ...] = ()
    # psrpc's client timeout: how long a call routed to a room no node holds takes to fail.
    no_response_after_s: float = 3.0
    webhooks: WebhookSender = field(init=False)
    agents: AgentWorkers = field(init=False)

    def __post_init__(self) -> None:
        api_key, api_secret = next(iter(self.api_keys.items()))
        self.webhooks = WebhookSender(api_key, api_secret, self.webhook_urls)
        self.store.listener = self.webhooks.notify
        self.agents = AgentWorkers(self.store)
        self.store.dispatch_listener = self.agents.on_dispatch
