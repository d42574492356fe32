"""The README's layout is the real tree: every path it names exists, and every group of the
package and of the tests, and every top-level module, is named there."""

from __future__ import annotations

import re

from tests.support.repo_files import ROOT

PACKAGE = ROOT / "src" / "voice_gateway"


def layout_paths() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"^## Layout\n\n```\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)
    assert block, "README.md has no ## Layout code block"
    return [line.split()[0] for line in block.group(1).splitlines() if line.strip()]


def test_every_path_the_layout_names_exists() -> None:
    missing = [path for path in layout_paths() if not (ROOT / path).exists()]

    assert not missing


def test_every_group_and_top_level_module_is_in_the_layout() -> None:
    named = set(layout_paths())
    groups = [
        f"src/voice_gateway/{p.name}/" for p in PACKAGE.iterdir() if (p / "__init__.py").exists()
    ]
    modules = [
        f"src/voice_gateway/{p.name}"
        for p in PACKAGE.glob("*.py")
        if p.name not in {"__init__.py", "__main__.py"}
    ]
    test_groups = [
        f"tests/{p.name}/" for p in (ROOT / "tests").iterdir() if (p / "__init__.py").exists()
    ]

    assert not set(groups + modules + test_groups) - named
