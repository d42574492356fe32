"""The JSON Schema of each event type (docs/events/schemas/): valid Draft 2020-12, one per type,
linked from docs/events.md, and strict enough that an event with a field missing, renamed or
added fails. That every event sent matches is checked on every receiver of every test
(tests/conftest.py `_events_match_their_schemas`)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tests.support.event_gateway import gateway
from tests.support.event_receiver import EventReceiver
from tests.support.event_schemas import SCHEMAS, schema_errors
from tests.support.gateway import create_session, serving
from tests.support.polling import wait_until
from tests.support.repo_files import ROOT
from voice_gateway.sessions.events import EVENT_TYPES
from voice_gateway.standin import StandIn


def test_every_event_type_has_one_valid_schema() -> None:
    files = sorted(path.name for path in SCHEMAS.glob("*.json"))

    assert files == sorted(f"{event_type}.json" for event_type in EVENT_TYPES)
    for name in files:
        schema = json.loads((SCHEMAS / name).read_text())
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_the_events_doc_links_every_schema() -> None:
    doc = (ROOT / "docs" / "events.md").read_text()

    for event_type in EVENT_TYPES:
        assert f"(events/schemas/{event_type}.json)" in doc


@pytest.fixture
async def sent(standin: StandIn) -> dict[str, dict[str, Any]]:
    """A created and an ended event as the gateway sent them, by type."""
    receiver = EventReceiver()
    async with serving(receiver) as receiver_url, gateway(standin, receiver_url) as client:
        room = (await create_session(client)).json()["room_name"]
        await client.delete(f"/api/voice/session/{room}")
        await wait_until(lambda: len(receiver.received) == 2)
    standin.set_webhook_urls([])
    return {event.type: event.payload for event in receiver.received}


def without(payload: dict[str, Any], field: str) -> dict[str, Any]:
    changed = copy.deepcopy(payload)
    del changed["data"][field]
    return changed


def renamed(payload: dict[str, Any], field: str, to: str) -> dict[str, Any]:
    changed = copy.deepcopy(payload)
    changed["data"][to] = changed["data"].pop(field)
    return changed


def test_what_is_sent_matches(sent: dict[str, dict[str, Any]]) -> None:
    assert sorted(sent) == ["session.created", "session.ended"]
    assert [schema_errors(payload) for payload in sent.values()] == [[], []]


@pytest.mark.parametrize("field", ["session_id", "room_name", "user_id", "agent_id", "sequence"])
def test_a_missing_common_field_fails(sent: dict[str, dict[str, Any]], field: str) -> None:
    assert schema_errors(without(sent["session.created"], field)) != []


@pytest.mark.parametrize(
    "field", ["end_reason", "created_at", "started_at", "ended_at", "duration_s"]
)
def test_a_missing_ended_field_fails(sent: dict[str, dict[str, Any]], field: str) -> None:
    assert schema_errors(without(sent["session.ended"], field)) != []


def test_a_renamed_or_added_field_fails(sent: dict[str, dict[str, Any]]) -> None:
    ended = sent["session.ended"]
    added = copy.deepcopy(ended)
    added["data"]["reason"] = "deleted"

    assert schema_errors(renamed(ended, "end_reason", "reason")) != []
    assert schema_errors(renamed(ended, "duration_s", "duration")) != []
    assert schema_errors(added) != []
    assert schema_errors(ended | {"extra": 1}) != []


def test_a_value_out_of_its_set_fails(sent: dict[str, dict[str, Any]]) -> None:
    ended = copy.deepcopy(sent["session.ended"])
    ended["data"]["end_reason"] = "crashed"
    late = copy.deepcopy(sent["session.created"])
    late["data"]["sequence"] = 5
    local_time = copy.deepcopy(sent["session.created"])
    local_time["timestamp"] = local_time["timestamp"].replace("Z", "+01:00")

    assert schema_errors(ended) != []
    assert schema_errors(late) != []
    assert schema_errors(local_time) != []
    assert schema_errors({"type": "session.unknown", "data": {}}) != []
