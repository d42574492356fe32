"""A LiveKit server stand-in: the Twirp RoomService over HTTP on loopback, for tests, the
`voice-gateway dev` command and benchmarks. It is not a media server: no WebRTC, no `/rtc`.

What it reproduces follows the shared reference notes on the real server (livekit-server.md).
"""

from .app import StandInApp, create_standin_app
from .calls import TwirpCall
from .controller import StandIn
from .join import JoinRefused
from .server import standin_config
from .state import StandInState
from .webhooks import WebhookDelivery, sign_webhook, webhook_body

__all__ = [
    "JoinRefused",
    "StandIn",
    "StandInApp",
    "StandInState",
    "TwirpCall",
    "WebhookDelivery",
    "create_standin_app",
    "sign_webhook",
    "standin_config",
    "webhook_body",
]
