"""What the gateway makes of participants joining and leaving (sessions/lifecycle.py): the pure
rules under the webhook intake, the sweep and the list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from livekit import api
from livekit.protocol.models import ParticipantInfo

from tests.support.records import session_record
from voice_gateway.sessions.lifecycle import reason_livekit_closed, seen_joining, seen_leaving
from voice_gateway.sessions.record import Observed, record_of

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
RECORD = session_record(NOW)
AGENT = api.ParticipantInfo(identity="agent-AJ_1", kind=api.ParticipantInfo.Kind.AGENT)


def joined(
    identity: str, at: datetime, kind: ParticipantInfo.Kind = ParticipantInfo.STANDARD
) -> api.ParticipantInfo:
    return api.ParticipantInfo(
        identity=identity, kind=kind, joined_at_ms=int(at.timestamp() * 1000)
    )


def test_a_join_from_before_the_agents_leave_does_not_bring_it_back() -> None:
    # A participant_joined retried, replayed or late, after the participant_left.
    left = Observed(
        agent_identity="agent-AJ_1", agent_joined_at=NOW, agent_left_at=NOW + timedelta(seconds=5)
    )
    stale = joined("agent-AJ_1", NOW, api.ParticipantInfo.Kind.AGENT)

    assert seen_joining(left, RECORD, stale) == left


def test_an_agent_joining_again_after_its_leave_is_back() -> None:
    left = Observed(
        agent_identity="agent-AJ_1", agent_joined_at=NOW, agent_left_at=NOW + timedelta(seconds=5)
    )
    again = joined("agent-AJ_2", NOW + timedelta(seconds=9), api.ParticipantInfo.Kind.AGENT)

    back = seen_joining(left, RECORD, again)

    assert (back.agent_identity, back.agent_left_at) == ("agent-AJ_2", None)


def test_a_user_seen_only_leaving_had_joined_so_the_end_is_user_left() -> None:
    observed = seen_leaving(Observed(), RECORD, joined("nate", NOW), NOW + timedelta(seconds=30))
    record = RECORD.model_copy(update={"observed": observed})

    assert observed.user_joined_at == NOW
    assert reason_livekit_closed(record, NOW + timedelta(seconds=50)) == "user_left"


def test_with_no_user_ever_seen_livekits_close_is_user_never_joined() -> None:
    assert reason_livekit_closed(RECORD, NOW + timedelta(seconds=120)) == "user_never_joined"


def test_past_its_expiry_livekits_close_is_expired() -> None:
    assert reason_livekit_closed(RECORD, NOW + timedelta(hours=2)) == "expired"


def test_a_room_without_the_prefix_is_never_parsed_as_a_session() -> None:
    assert record_of("elsewhere_nate", RECORD.to_metadata(), "foundry") is None
