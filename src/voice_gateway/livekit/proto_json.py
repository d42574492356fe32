"""Protobuf messages as `MessageToDict` shows them, built faster for the plain ones.

A join token carries its room configuration as protobuf JSON (the SDK's `Claims.asdict()` calls
`MessageToDict`), and json_format's generic printer costs ~12 µs for the gateway's small
configuration: most of a signing's share of the worker thread, where every µs is also held
against the event loop as GIL time (bench/README.md, measured decisions).

`message_dict` walks only the fields that are set (`ListFields`, as json_format does) and writes
them itself when every one is a string, a bool, a 32-bit integer or a plain message of such
fields, keyed by its `json_name`, in the same order. Anything else (64-bit integers, which
protobuf JSON quotes; floats, bytes, enums, maps, extensions, well-known types) is left to
`MessageToDict`, for the whole message, so the answer is always json_format's.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

_PLAIN_SCALARS = frozenset(
    {
        FieldDescriptor.CPPTYPE_STRING,
        FieldDescriptor.CPPTYPE_BOOL,
        FieldDescriptor.CPPTYPE_INT32,
        FieldDescriptor.CPPTYPE_UINT32,
    }
)


_WELL_KNOWN = "google.protobuf."


class _NotPlain(Exception):
    """A field json_format renders in a way of its own: it renders the message."""


def message_dict(message: Message) -> Any:
    """`MessageToDict(message)`: a dict, or for a well-known type its JSON value."""
    if message.DESCRIPTOR.full_name.startswith(_WELL_KNOWN):
        return MessageToDict(message)
    try:
        return _plain_message(message)
    except _NotPlain:
        return MessageToDict(message)


def _plain_message(message: Message) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    for field, value in message.ListFields():
        key, kind = _FIELDS.get(field) or _learn(field)
        if kind == _SCALAR:
            shown[key] = value
        elif kind == _SCALARS:
            shown[key] = list(value)
        elif kind == _MESSAGE:
            shown[key] = _plain_message(value)
        elif kind == _MESSAGES:
            shown[key] = [_plain_message(item) for item in value]
        else:
            raise _NotPlain
    return shown


_SCALAR, _SCALARS, _MESSAGE, _MESSAGES, _OTHER = "scalar", "scalars", "message", "messages", "other"
# What each field is, worked out once: the descriptors' attributes are C calls each time.
_FIELDS: dict[FieldDescriptor, tuple[str, str]] = {}


def _learn(field: FieldDescriptor) -> tuple[str, str]:
    _FIELDS[field] = found = (field.json_name, _kind_of(field))
    return found


def _kind_of(field: FieldDescriptor) -> str:
    if field.is_extension or field.type == FieldDescriptor.TYPE_BYTES:
        return _OTHER
    if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
        kind = field.message_type
        if (
            kind is None
            or kind.full_name.startswith(_WELL_KNOWN)
            or (kind.has_options and kind.GetOptions().map_entry)
        ):
            return _OTHER
        return _MESSAGES if field.is_repeated else _MESSAGE
    if field.cpp_type in _PLAIN_SCALARS:
        return _SCALARS if field.is_repeated else _SCALAR
    return _OTHER
