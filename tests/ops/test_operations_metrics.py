"""`/metrics`: HTTP requests by route template and status, the thread limiter, event-loop lag."""

from __future__ import annotations

import time

import anyio
import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.gateway import create_session, make_settings, running_gateway
from tests.support.log_capture import captured_logs
from voice_gateway.ops.metrics import Metrics
from voice_gateway.standin import StandIn


def samples(exposition: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample called `name`, keyed by its sorted labels."""
    found = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def sample(exposition: str, name: str, **labels: str) -> float:
    return samples(exposition, name)[tuple(sorted(labels.items()))]


async def scrape(client: httpx.AsyncClient) -> str:
    return (await client.get("/metrics")).text


REQUESTS = "voice_gateway_http_request_duration_seconds_count"


async def test_requests_are_counted_by_route_template_and_status(
    client: httpx.AsyncClient,
) -> None:
    await create_session(client)
    await client.get("/api/voice/session/foundry_nate_pm-agent_sess_doesnotexist0000000000")

    text = await scrape(client)

    post = {"method": "POST", "route": "/api/voice/session", "status": "201"}
    get = {"method": "GET", "route": "/api/voice/session/{room_name}", "status": "404"}
    assert sample(text, REQUESTS, **post) == 1
    assert sample(text, REQUESTS, **get) == 1
    assert "sess_doesnotexist" not in text


async def test_each_status_of_a_route_is_its_own_series(client: httpx.AsyncClient) -> None:
    for method in ("GET", "GET", "POST", "GET"):
        await client.request(method, "/healthz")

    text = await scrape(client)

    assert sample(text, REQUESTS, method="GET", route="/healthz", status="200") == 3
    assert sample(text, REQUESTS, method="POST", route="/healthz", status="405") == 1


async def test_request_latency_is_a_histogram(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")

    text = await scrape(client)

    labels = {"method": "GET", "route": "/healthz", "status": "200"}
    buckets = "voice_gateway_http_request_duration_seconds_bucket"
    assert sample(text, buckets, **labels, le="+Inf") == 1
    assert sample(text, "voice_gateway_http_request_duration_seconds_sum", **labels) > 0


async def test_unmatched_paths_share_one_series(client: httpx.AsyncClient) -> None:
    for path in ("/wp-admin", "/.env", "/a/b/c"):
        await client.get(path)

    text = await scrape(client)

    unmatched = {"method": "GET", "route": "<unmatched>", "status": "404"}
    assert sample(text, REQUESTS, **unmatched) == 3
    assert "wp-admin" not in text


async def test_unknown_methods_are_folded_into_one_label(client: httpx.AsyncClient) -> None:
    await client.request("BREW", "/healthz")

    text = await scrape(client)

    assert sample(text, REQUESTS, method="OTHER", route="/healthz", status="405") == 1
    assert "BREW" not in text


async def test_thread_limiter_capacity_is_the_setting(standin: StandIn) -> None:
    async with running_gateway(make_settings(standin, thread_limit=7)) as client:
        text = await scrape(client)

    assert sample(text, "voice_gateway_thread_limiter_capacity") == 7
    assert sample(text, "voice_gateway_thread_limiter_borrowed") == 0
    assert sample(text, "voice_gateway_thread_limiter_waiting") == 0


async def test_thread_limiter_gauges_are_read_when_scraped() -> None:
    metrics, limiter = Metrics(), anyio.CapacityLimiter(1)
    metrics.watch_thread_limiter(limiter)
    release = anyio.Event()

    async def hold_a_thread() -> None:
        async with limiter:
            await release.wait()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(hold_a_thread)
        tasks.start_soon(hold_a_thread)
        await anyio.wait_all_tasks_blocked()
        text = metrics.exposition().decode()
        release.set()

    assert sample(text, "voice_gateway_thread_limiter_borrowed") == 1
    assert sample(text, "voice_gateway_thread_limiter_waiting") == 1


async def test_event_loop_lag_is_sampled_while_the_app_runs(standin: StandIn) -> None:
    settings = make_settings(standin, loop_lag_interval_s=0.01)
    async with running_gateway(settings) as client:
        await anyio.sleep(0.1)
        text = await scrape(client)

    assert sample(text, "voice_gateway_event_loop_lag_seconds_count") >= 3


async def test_a_blocked_event_loop_is_measured_and_logged(standin: StandIn) -> None:
    settings = make_settings(standin, loop_lag_interval_s=0.02, loop_lag_warning_s=0.2)
    with captured_logs() as logs:
        async with running_gateway(settings) as client:
            await anyio.sleep(0.05)  # the monitor is asleep, waiting for its next sample
            time.sleep(0.3)  # noqa: ASYNC251  # the blocking call that must be seen
            await anyio.sleep(0.05)
            text = await scrape(client)

    lag = "voice_gateway_event_loop_lag_seconds_bucket"
    assert sample(text, lag, le="+Inf") > sample(text, lag, le="0.25")
    warnings = logs.from_logger("voice_gateway.loop_lag")
    assert {line["level"] for line in warnings} == {"warning"}
    assert max(line["loop_lag_s"] for line in warnings) >= 0.25


async def test_openapi_documents_the_metrics_route(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()

    ok = document["paths"]["/metrics"]["get"]["responses"]["200"]
    (media_type,) = ok["content"]
    assert media_type.startswith("text/plain")
