"""A network namespace of the test's own, joined to this one by a veth pair, for the real server
when WebRTC media must flow.

libwebrtc (the rtc SDK's core) never gathers loopback candidates, so a client and a server that
both sit on 127.0.0.1 pair nothing unless the kernel happens to route through another address of
the machine. The real tier never relies on that: the server runs inside the namespace on the
veth's inner address, the gateway, the agent and the user stay here and reach it through the
outer one (docs/livekit-observed.md has the matrix that was measured).

Needs root (CAP_NET_ADMIN) and `ip` (iproute2). Outside CI their absence skips the test with one
line; in CI (CI=true) it fails it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

PREFIX = "vgw"  # every namespace and link made here is vgw<pid>...: a stale one is recognisable


@dataclass(frozen=True)
class Namespace:
    name: str
    outer_address: str  # this namespace's end of the veth pair
    inner_address: str  # the namespace's end, where the server binds

    def command(self, argv: Sequence[str]) -> list[str]:
        """`argv` run inside the namespace (`ip netns exec` execs it: the pid is the program's)."""
        return ["ip", "netns", "exec", self.name, *argv]


def require_netns() -> None:
    missing = _missing()
    if missing is None:
        return
    message = f"the real-media tests need {missing}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def veth_namespace() -> Iterator[Namespace]:
    """A fresh namespace with `lo` up and a veth pair on a /24 of its own, removed after."""
    require_netns()
    _remove_stale()
    pid = os.getpid()
    subnet = _free_subnet()
    namespace = Namespace(f"{PREFIX}{pid}", f"{subnet}.1", f"{subnet}.2")
    outer, inner = f"{PREFIX}{pid}o", f"{PREFIX}{pid}i"
    try:
        _ip("netns", "add", namespace.name)
        _ip("-n", namespace.name, "link", "set", "lo", "up")
        _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", namespace.name)
        _ip("addr", "add", f"{namespace.outer_address}/24", "dev", outer)
        _ip("-n", namespace.name, "addr", "add", f"{namespace.inner_address}/24", "dev", inner)
        _ip("link", "set", outer, "up")
        _ip("-n", namespace.name, "link", "set", inner, "up")
        yield namespace
    finally:
        _remove(namespace.name, outer)


def _missing() -> str | None:
    if shutil.which("ip") is None:
        return "`ip` (apt-get install iproute2)"
    if os.geteuid() != 0:
        return "root, to create a network namespace (`ip netns`)"
    return None


def _free_subnet() -> str:
    used = _ip("-4", "-o", "addr", "show")
    for third in range(213, 254):
        if f" 10.{third}." not in used:
            return f"10.{third}.0"
    raise RuntimeError("no free 10.x.0.0/24 for the test namespace")


def _remove_stale() -> None:
    """Namespaces left by a run that was killed before its clean-up (their pid is gone)."""
    for line in _ip("netns", "list").splitlines():
        name = line.split()[0] if line.strip() else ""
        pid = name.removeprefix(PREFIX)
        if name.startswith(PREFIX) and pid.isdigit() and not _alive(int(pid)):
            _remove(name, f"{name}o")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _remove(name: str, outer_link: str) -> None:
    # What still runs inside (a server whose test run was killed) would keep the namespace alive.
    pids = subprocess.run(  # noqa: S603
        ["ip", "netns", "pids", name],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    # Deleting the namespace deletes its veth end, and with it the pair; the outer link goes too.
    for removal in (["link", "del", outer_link], ["netns", "del", name]):
        subprocess.run(["ip", *removal], capture_output=True, check=False)  # noqa: S603, S607


def _ip(*arguments: str) -> str:
    result = subprocess.run(  # noqa: S603
        ["ip", *arguments],  # noqa: S607
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(arguments)}: {result.stderr.strip()}")
    return result.stdout
