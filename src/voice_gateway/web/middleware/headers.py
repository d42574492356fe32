"""Request headers read straight from the ASGI scope's list, one scan each.

What Starlette's `Headers(scope=scope).get(name)` returns, without building the object, lowering
and encoding the name each time and, for a header that is absent (X-Request-ID and Origin, on
most requests), raising and catching a KeyError: the middlewares read a few headers of every
request (bench/README.md, measured decisions). Names are lowercase bytes, as ASGI servers hand
them over (and as Starlette's lookups assume).
"""

from __future__ import annotations

from starlette.types import Scope


def first_header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def all_headers(scope: Scope, name: bytes) -> list[str]:
    return [value.decode("latin-1") for key, value in scope["headers"] if key == name]
