"""Everything a stand-in server knows, shared by its ASGI app and the test hooks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .calls import CallLog
from .faults import Faults
from .store import RoomStore


@dataclass
class StandInState:
    """`api_keys` maps API key to secret, like the server's `keys:` config."""

    api_keys: Mapping[str, str]
    close_empty_rooms: bool = True  # close rooms past empty_timeout / departure_timeout
    store: RoomStore = field(default_factory=RoomStore)
    faults: Faults = field(default_factory=Faults)
    calls: CallLog = field(default_factory=CallLog)
