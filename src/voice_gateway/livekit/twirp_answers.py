"""What a Twirp answer must look like before livekit-api reads it.

livekit-api trusts what it gets: an error whose JSON body is a string or an array (what a proxy in
front of LiveKit sends) makes its `_server_error` call `.get` on it and raise AttributeError, and
any 200 parses as an empty message, so a catch-all backend behind a mis-pointed `LIVEKIT_URL`
looks like a LiveKit with no rooms. The pool's responses are of this class, so both are caught
where the bytes arrive.
"""

from __future__ import annotations

from typing import Any

import aiohttp

TWIRP_MEDIA_TYPE = "application/protobuf"  # what LiveKit answers a protobuf request with


class NotLiveKit(Exception):
    """A 200 that is not a Twirp answer: whatever answered is not LiveKit."""


class TwirpResponse(aiohttp.ClientResponse):
    async def read(self) -> bytes:
        body = await super().read()
        if self.status == 200 and self.content_type != TWIRP_MEDIA_TYPE:
            raise NotLiveKit(f"HTTP 200 with Content-Type {self.content_type!r}")
        return body

    async def json(self, *args: Any, **kwargs: Any) -> Any:
        # A Twirp error is a JSON object; anything else is nobody's error code.
        data = await super().json(*args, **kwargs)
        return data if isinstance(data, dict) else {}
