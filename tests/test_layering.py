"""The layering of DESIGN.md, exactly: ruff's banned-api keeps Starlette and aiohttp out of the
lower groups, but cannot say which group may import which. web/ is on top; sessions/ may use
access/ and livekit/; livekit/, access/ and ops/ use only what is beneath everything (settings,
errors, ids, vocabulary) and, for livekit/, ops/ metrics."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.repo_files import ROOT

PACKAGE = ROOT / "src" / "voice_gateway"
THIRD_PARTY = {"starlette": {"web", "standin"}, "aiohttp": {"livekit", "standin"}}
# For each group, the groups of the package it must never import.
FORBIDDEN = {
    "access": {"web", "sessions", "livekit", "ops", "standin"},
    "livekit": {"web", "sessions", "access", "standin"},
    "ops": {"web", "sessions", "access", "livekit", "standin"},
    "sessions": {"web", "standin"},
}


def imports_of(path: Path) -> set[str]:
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            name = f"{base}.{node.module}" if node.level else node.module
            found |= {name or base} | {f"{name or base}.{a.name}" for a in node.names}
    return found


def group_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else "top"


@pytest.mark.parametrize("library", sorted(THIRD_PARTY))
def test_a_web_library_is_imported_only_where_it_belongs(library: str) -> None:
    users = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if any(name.split(".")[0] == library for name in imports_of(path))
        and group_of(path) not in THIRD_PARTY[library]
    }

    assert not users


@pytest.mark.parametrize("group", sorted(FORBIDDEN))
def test_a_group_imports_no_group_above_it(group: str) -> None:
    crossings = {
        (str(path.relative_to(PACKAGE)), name)
        for path in (PACKAGE / group).rglob("*.py")
        for name in imports_of(path)
        if name.startswith("voice_gateway.") and name.split(".")[1] in FORBIDDEN[group]
    }

    assert not crossings
