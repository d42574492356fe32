"""The real stack, once per test run: `livekit-server` in a network namespace of the run's own, the
example agent registered with it, and a gateway port LiveKit's webhooks reach. Each test serves
its own gateway on that port with the settings it needs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.agent_worker import agent_worker
from tests.support.livekit_server import livekit_server, require_binary
from tests.support.netns import veth_namespace
from tests.support.processes import free_port
from tests.support.real_stack import AGENT_NAME, WEBHOOK_PATH, RealStack


@pytest.fixture(scope="session")
def real_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealStack]:
    require_binary()
    log_dir = tmp_path_factory.mktemp("real-stack")
    gateway_port = free_port()
    with veth_namespace() as namespace:
        webhook_url = f"http://{namespace.outer_address}:{gateway_port}{WEBHOOK_PATH}"
        with (
            livekit_server(log_dir, [webhook_url], namespace=namespace) as server,
            agent_worker(server.ws_url, AGENT_NAME, log_dir) as agent,
        ):
            yield RealStack(namespace, server, agent, gateway_port)
