"""The one assertion that an answer is a problem+json of the gateway's shape."""

from __future__ import annotations

from typing import Any

import httpx


def field_names(response: httpx.Response) -> list[str]:
    return [error["field"] for error in response.json()["errors"]]


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["type"].startswith("urn:voice-gateway:problem:")
    assert body["title"]
    assert body["detail"]
    return body
