"""Request and response bodies: binary protobuf or JSON, as chosen by the request's Content-Type."""

from __future__ import annotations

import enum
import json
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

M = TypeVar("M", bound=Message)

# Well-known types have their own JSON forms (a Timestamp is a string), so no recursion.
WELL_KNOWN_PREFIX = "google.protobuf."


class Encoding(enum.Enum):
    PROTOBUF = "application/protobuf"
    JSON = "application/json"

    @property
    def content_type(self) -> str:
        return self.value


def encoding_for(content_type: str) -> Encoding | None:
    """The encoding twirp picks: the part before `;`, trimmed and lower-cased; else none."""
    kind = content_type.partition(";")[0].strip().lower()
    try:
        return Encoding(kind)
    except ValueError:
        return None


class MalformedBody(Exception):
    """The body is not a valid message of the expected type in the chosen encoding."""


def decode(body: bytes, encoding: Encoding, message_type: type[M]) -> M:
    if encoding is Encoding.PROTOBUF:
        try:
            return message_type.FromString(body)  # an empty body is a valid empty message
        except DecodeError as exc:
            raise MalformedBody from exc
    try:
        # protojson with DiscardUnknown: camelCase and snake_case keys, unknown keys ignored.
        return json_format.Parse(body, message_type(), ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, RecursionError) as exc:
        raise MalformedBody from exc


def encode(message: Message, encoding: Encoding) -> bytes:
    if encoding is Encoding.PROTOBUF:
        return message.SerializeToString()
    return json.dumps(to_json_dict(message), separators=(",", ":"), ensure_ascii=False).encode()


def to_json_dict(message: Message) -> dict[str, Any]:
    """protojson with UseProtoNames and EmitUnpopulated, as the server writes JSON responses."""
    data = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    _emit_unset_messages(message, data)
    return data


def _emit_unset_messages(message: Message, data: dict[str, Any]) -> None:
    # Go's EmitUnpopulated writes an unset singular message field as null (unset oneof members
    # excepted); Python's option skips every field with presence, so add those nulls here.
    for field in message.DESCRIPTOR.fields:
        if field.message_type is None:
            continue
        if field.is_repeated:
            if not field.message_type.GetOptions().map_entry:
                items = zip(getattr(message, field.name), data[field.name], strict=True)
                for item, item_data in items:
                    _emit_unset_messages(item, item_data)
        elif message.HasField(field.name):
            if not field.message_type.full_name.startswith(WELL_KNOWN_PREFIX):
                _emit_unset_messages(getattr(message, field.name), data[field.name])
        elif field.containing_oneof is None:
            data[field.name] = None
