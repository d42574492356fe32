"""record_of: which rooms are the gateway's sessions, in both name shapes, and which are not."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.support.records import session_record
from voice_gateway.sessions.record import SessionRecord, record_of
from voice_gateway.vocabulary import token_session_id_of

NOW = datetime(2030, 1, 1, tzinfo=UTC)
TOKEN_ID = "1b4e28ba-2fa1-41d2-883f-0016d3cca427"


def record(**fields: object) -> SessionRecord:
    return session_record(NOW, **fields)


def test_a_session_room_is_recognised_by_its_four_part_name() -> None:
    found = record_of("foundry_nate_pm-agent_sess_abc", record().to_metadata(), "foundry")

    assert found == record()


def test_metadata_written_before_the_source_field_reads_as_a_session_room() -> None:
    legacy = record().model_dump_json(exclude={"source"})

    assert record_of("foundry_nate_pm-agent_sess_abc", legacy, "foundry") == record()


def test_a_token_room_is_recognised_by_its_short_name() -> None:
    token = record(session_id=TOKEN_ID, source="token", agent_id="")

    assert record_of(f"foundry_{TOKEN_ID}", token.to_metadata(), "foundry") == token


@pytest.mark.parametrize(
    ("room_name", "stored"),
    [
        # a session record in a room of the token shape, and the other way round
        (f"foundry_{TOKEN_ID}", record(session_id=TOKEN_ID)),
        (f"foundry_nate_pm-agent_{TOKEN_ID}", record(session_id=TOKEN_ID, source="token")),
        # a token record whose id is not a canonical UUID cannot name any room
        ("foundry_sess_abc", record(source="token")),
        (f"foundry_{TOKEN_ID.upper()}", record(session_id=TOKEN_ID.upper(), source="token")),
        # another prefix
        ("acme_nate_pm-agent_sess_abc", record()),
    ],
)
def test_a_record_naming_another_room_shape_is_not_a_session(
    room_name: str, stored: SessionRecord
) -> None:
    assert record_of(room_name, stored.to_metadata(), "foundry") is None


@pytest.mark.parametrize("metadata", ["", "{}", "not json", '{"session_id": "sess_abc"}'])
def test_a_room_without_a_session_record_is_not_a_session(metadata: str) -> None:
    assert record_of("foundry_nate_pm-agent_sess_abc", metadata, "foundry") is None


def test_an_unknown_source_is_not_a_session() -> None:
    forged = record().model_dump(exclude={"observed"}) | {"source": "elsewhere"}

    metadata = SessionRecord.model_construct(**forged).model_dump_json()

    assert record_of("foundry_nate_pm-agent_sess_abc", metadata, "foundry") is None


@pytest.mark.parametrize(
    ("room_name", "session_id"),
    [
        (f"foundry_{TOKEN_ID}", TOKEN_ID),
        (f"acme_{TOKEN_ID}", None),
        ("foundry_nate_pm-agent_sess_abc", None),
        (f"foundry_{{{TOKEN_ID}}}", None),
        (f"foundry_{TOKEN_ID.replace('-', '')}", None),
    ],
)
def test_token_session_ids_come_only_from_canonical_uuid_names(
    room_name: str, session_id: str | None
) -> None:
    assert token_session_id_of(room_name, "foundry") == session_id
