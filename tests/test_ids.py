"""Ids drawn from the entropy pool: as random and as well-formed as the stdlib's."""

from __future__ import annotations

import os
import re
import uuid
import warnings

from voice_gateway import ids as entropy


def test_tokens_are_urlsafe_and_never_repeat() -> None:
    tokens = {entropy.token_urlsafe(16) for _ in range(10_000)}

    assert len(tokens) == 10_000
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", token) for token in tokens)


def test_uuids_are_version_4_and_never_repeat() -> None:
    ids = [entropy.uuid4() for _ in range(1000)]

    assert len(set(ids)) == 1000
    assert all(i.version == 4 and i.variant == uuid.RFC_4122 for i in ids)


def test_requests_larger_than_a_page_are_served_whole() -> None:
    assert len(entropy.token_urlsafe(entropy.PAGE_BYTES * 2)) > entropy.PAGE_BYTES * 2


def test_a_forked_child_does_not_reuse_its_parents_bytes() -> None:
    entropy.token_urlsafe(16)  # the parent now holds a page
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about forking a process with threads; the child only writes and exits.
        warnings.simplefilter("ignore", DeprecationWarning)
        child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.write(write_end, entropy.token_urlsafe(16).encode())
        os._exit(0)
    os.close(write_end)
    os.waitpid(child, 0)
    from_child = os.read(read_end, 64).decode()
    os.close(read_end)

    assert from_child != entropy.token_urlsafe(16)
