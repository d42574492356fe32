"""What `serve` loads before its first request: the Redis client (coredis, and numpy through it)
and httpx only when a setting asks for them (bench/README.md, measured decisions: each was a
large share of the start-up). Merging the events CLI once brought coredis back into every start."""

from __future__ import annotations

import subprocess
import sys

LOADED = """
import sys
import voice_gateway.cli, voice_gateway.web.app
print(",".join(name for name in ("coredis", "numpy", "httpx") if name in sys.modules))
"""


def test_the_cli_and_the_app_load_neither_redis_nor_httpx_unasked() -> None:
    answer = subprocess.run(  # noqa: S603 - this interpreter, our own script
        [sys.executable, "-c", LOADED], capture_output=True, text=True, timeout=60, check=True
    )

    assert answer.stdout.strip() == ""
