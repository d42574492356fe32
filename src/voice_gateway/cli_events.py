"""`voice-gateway events dead` and `voice-gateway events resend`: the dead letters of session
events, listed and sent again (sessions/event_dead_letters.py). Redis only: in memory, dead letters
live and die with the gateway process, where no other process can reach them."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, NoReturn

import anyio

from .sessions.receivers import receiver_of
from .settings import Settings

if TYPE_CHECKING:  # the Redis client (coredis, numpy through it) only when a command runs:
    # every `serve` builds this parser, and its start-up must not pay for it.
    from .sessions.event_dead_letters import DeadLetter, DeadLetters

COLUMNS = ("ID", "EVENT", "TYPE", "SESSION", "RECEIVER", "ATTEMPTS", "ERROR")
NO_REDIS = (
    "events dead and resend need VOICE_GATEWAY_REDIS_URL: without Redis, dead letters are kept in "
    "the gateway's memory only (docs/events.md)"
)


def add_event_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    load_settings: Callable[[], Settings],
) -> None:
    events = commands.add_parser("events", help="list and re-send dead session events (Redis)")
    actions = events.add_subparsers(required=True, metavar="ACTION")
    dead = actions.add_parser("dead", help="list dead events, oldest first")
    dead.set_defaults(run=lambda args: _run(load_settings(), _list_dead))
    resend = actions.add_parser("resend", help="queue dead events again (same webhook-id)")
    which = resend.add_mutually_exclusive_group(required=True)
    which.add_argument("ids", nargs="*", default=[], metavar="ID", help="dead letter or event id")
    which.add_argument("--all", action="store_true", help="every dead event")
    resend.set_defaults(run=lambda args: _run(load_settings(), _resend, args.ids, args.all))


def _run(settings: Settings, command: Callable[..., Awaitable[int]], *args: object) -> None:
    if settings.redis_url is None:
        _exit_with(NO_REDIS)
    status = anyio.run(_with_dead_letters, settings, command, args)
    if status:
        sys.exit(status)


async def _with_dead_letters(
    settings: Settings, command: Callable[..., Awaitable[int]], args: Sequence[object]
) -> int:
    from .sessions.event_dead_letters import DeadLetters
    from .sessions.event_queue_redis import redis_client

    assert settings.redis_url is not None  # checked by _run
    client = redis_client(settings.redis_url.get_secret_value())
    try:
        return await command(DeadLetters(client, settings.room_prefix), *args)
    finally:
        client.connection_pool.disconnect()


async def _list_dead(letters: DeadLetters) -> int:
    print("\t".join(COLUMNS))
    async for letter in letters.all():
        print("\t".join(_row(letter)))
    return 0


def _row(letter: DeadLetter) -> tuple[str, ...]:
    event = letter.delivery.event
    receiver = receiver_of(letter.delivery.url)  # a query may carry the receiver's token
    return (letter.id, event.id, event.type, event.session_id, receiver, str(letter.attempts),
            letter.error)  # fmt: skip


async def _resend(letters: DeadLetters, ids: list[str], every: bool) -> int:
    wanted = set(ids)
    chosen = [
        letter
        async for letter in letters.all()
        if every or letter.id in wanted or letter.delivery.event.id in wanted
    ]
    found = {name for letter in chosen for name in (letter.id, letter.delivery.event.id)}
    unknown = wanted - found
    resent = await letters.resend(chosen)
    print(f"re-queued {resent} dead event deliveries")
    for name in sorted(unknown):
        print(f"no dead event {name}", file=sys.stderr)
    return 1 if unknown else 0


def _exit_with(message: str) -> NoReturn:
    print(f"voice-gateway: {message}", file=sys.stderr)
    sys.exit(2)
