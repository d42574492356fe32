"""The LiveKit SDK names the gateway uses, without importing the `livekit.api` package.

`livekit/api/__init__.py` imports aiohttp and every service client of the SDK, which the gateway
never calls (it calls LiveKit over its own pool, twirp_pool.py): about a sixth of `serve`'s
start-up (bench/README.md, measured decisions). So the protobuf messages come from their
`livekit.protocol` modules, and the SDK's token and webhook modules (`access_token.py`,
`webhook.py`, which import nothing of their package but each other) are loaded from their files
under their own names. A later `import livekit.api` (the stand-in, the tests) finds them in
`sys.modules` and reuses them: one `AccessToken` class either way (only the package's
`access_token` attribute is then missing; `from livekit.api import access_token` still works).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from livekit.protocol.agent import JobStatus
from livekit.protocol.agent_dispatch import (
    AgentDispatch,
    ListAgentDispatchRequest,
    ListAgentDispatchResponse,
    RoomAgentDispatch,
)
from livekit.protocol.models import DisconnectReason, ParticipantInfo, Room
from livekit.protocol.room import (
    CreateRoomRequest,
    DeleteRoomRequest,
    DeleteRoomResponse,
    ListParticipantsRequest,
    ListParticipantsResponse,
    ListRoomsRequest,
    ListRoomsResponse,
    RoomConfiguration,
    UpdateRoomMetadataRequest,
)
from livekit.protocol.webhook import WebhookEvent

SDK_PACKAGE = "livekit.api"


def sdk_module(name: str) -> ModuleType:
    """`livekit.api.<name>`, executed without the package's `__init__` unless it already ran."""
    qualified = f"{SDK_PACKAGE}.{name}"
    if (module := sys.modules.get(qualified)) is not None:
        return module
    if SDK_PACKAGE in sys.modules:  # the whole SDK is loaded anyway: import as usual
        return importlib.import_module(qualified)
    package = importlib.util.find_spec(SDK_PACKAGE)  # imports `livekit` only, not livekit.api
    if package is None or not package.submodule_search_locations:
        raise ImportError(f"{SDK_PACKAGE} is not installed", name=qualified)
    location = Path(package.submodule_search_locations[0]) / f"{name}.py"
    spec = importlib.util.spec_from_file_location(qualified, location)
    if spec is None or spec.loader is None:
        raise ImportError(f"no module at {location}", name=qualified)
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module  # before executing, as the import system does
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[qualified]
        raise
    return module


if TYPE_CHECKING:
    from livekit.api.access_token import (
        AccessToken,
        Claims,
        TokenVerifier,
        VideoGrants,
        snake_to_lower_camel,
    )
    from livekit.api.webhook import WebhookReceiver
else:
    _access_token = sdk_module("access_token")
    AccessToken = _access_token.AccessToken
    Claims = _access_token.Claims
    TokenVerifier = _access_token.TokenVerifier
    VideoGrants = _access_token.VideoGrants
    snake_to_lower_camel = _access_token.snake_to_lower_camel
    WebhookReceiver = sdk_module("webhook").WebhookReceiver

__all__ = [
    "AccessToken",
    "AgentDispatch",
    "Claims",
    "CreateRoomRequest",
    "DeleteRoomRequest",
    "DeleteRoomResponse",
    "DisconnectReason",
    "JobStatus",
    "ListAgentDispatchRequest",
    "ListAgentDispatchResponse",
    "ListParticipantsRequest",
    "ListParticipantsResponse",
    "ListRoomsRequest",
    "ListRoomsResponse",
    "ParticipantInfo",
    "Room",
    "RoomAgentDispatch",
    "RoomConfiguration",
    "TokenVerifier",
    "UpdateRoomMetadataRequest",
    "VideoGrants",
    "WebhookEvent",
    "WebhookReceiver",
    "snake_to_lower_camel",
]
