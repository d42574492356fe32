"""Two awaitables at once, for when neither needs the other's result."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar, cast

import anyio

A = TypeVar("A")
B = TypeVar("B")


async def both(first: Awaitable[A], second: Awaitable[B]) -> tuple[A, B]:
    """Both results; if either fails, the other is cancelled and that one error is raised.

    anyio's task groups wrap errors in an ExceptionGroup; callers here expect the domain error
    itself (a LiveKitTimeout, say), and the cancelled partner adds nothing worth reporting.
    """
    results: list[Any] = [None, None]

    async def run(index: int, awaitable: Awaitable[Any]) -> None:
        results[index] = await awaitable

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(run, 0, first)
            group.start_soon(run, 1, second)
    except BaseExceptionGroup as failures:
        raise failures.exceptions[0] from None
    return cast(A, results[0]), cast(B, results[1])
