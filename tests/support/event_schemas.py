"""The published JSON Schemas of session events (docs/events/schemas/, one per type), as a
receiver would use them: every event a test's receiver is sent is checked against its type's."""

from __future__ import annotations

import functools
import json
from typing import Any

from jsonschema import Draft202012Validator

from tests.support.repo_files import ROOT

SCHEMAS = ROOT / "docs" / "events" / "schemas"


@functools.cache
def validator_for(event_type: str) -> Draft202012Validator | None:
    path = SCHEMAS / f"{event_type}.json"
    if not path.is_file():
        return None
    schema = json.loads(path.read_text())
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def schema_errors(payload: Any) -> list[str]:
    """What is wrong with `payload` by its type's schema; a type without one is wrong too."""
    event_type = payload.get("type") if isinstance(payload, dict) else None
    validator = validator_for(str(event_type))
    if validator is None:
        return [f"no schema for event type {event_type!r}"]
    return [
        f"{event_type}: {error.json_path}: {error.message}"
        for error in validator.iter_errors(payload)
    ]
