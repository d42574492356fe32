"""JSON responses from the wire models, serialised by pydantic."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel
from starlette.responses import Response

# Join tokens are bearer credentials: no cache, proxy or browser may keep them.
NO_STORE = {"Cache-Control": "no-store"}


def model_response(
    model: BaseModel,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    *,
    exclude_none: bool = False,
) -> Response:
    return Response(
        model.model_dump_json(exclude_none=exclude_none),
        status_code,
        headers=dict(headers or {}),
        media_type="application/json",
    )
