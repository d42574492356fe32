"""The repository's deployment files, read the way their tools read them (for tests that have
no Docker engine or cluster to hand them to)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def read_yaml(relative: str) -> Any:
    return yaml.safe_load((ROOT / relative).read_text())


def compose_interpolate(text: str, env: Mapping[str, str]) -> str:
    """`text` with Compose's `${VAR}`, `${VAR:-default}` (nested too) and `${VAR:?message}`
    replaced from `env`, the forms compose.yaml uses; a missing required one raises KeyError."""
    out, position = "", 0
    while (start := text.find("${", position)) != -1:
        end, depth = start + 2, 1
        while depth:
            if text.startswith("${", end):
                depth, end = depth + 1, end + 2
                continue
            if text[end] == "}":
                depth -= 1
            end += 1
        out += text[position:start] + _expand(text[start + 2 : end - 1], env)
        position = end
    return out + text[position:]


def _expand(expression: str, env: Mapping[str, str]) -> str:
    match = re.fullmatch(r"(\w+)(?:(:-|:\?)(.*))?", expression, re.S)
    if match is None:
        raise ValueError(f"an interpolation compose.yaml does not use: ${{{expression}}}")
    name, operator, operand = match.groups()
    value = env.get(name, "")
    if value or operator is None:
        return value
    if operator == ":-":
        return compose_interpolate(operand, env)
    raise KeyError(f"{name}: {operand}")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form CMD/ENTRYPOINT/HEALTHCHECK, else None (shell form)."""
        text = re.sub(r"^(--\S+\s+)*(CMD\s+)?", "", self.arguments)
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, list) else None


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction:
        return self.all(keyword)[-1]


def dockerfile_stages(relative: str = "Dockerfile") -> list[Stage]:
    """Stages of a Dockerfile: continuation lines joined, comments and parser directives dropped."""
    text = (ROOT / relative).read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    stages: list[Stage] = []
    for line in filter(None, (raw.strip() for raw in joined.splitlines())):
        keyword, _, arguments = line.partition(" ")
        keyword, arguments = keyword.upper(), arguments.strip()
        if keyword == "FROM":
            base, _, name = arguments.partition(" AS ")
            stages.append(Stage(base.strip(), name.strip() or None))
        elif stages:
            stages[-1].instructions.append(Instruction(keyword, arguments))
    return stages


def dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides;
    `!` re-includes. Patterns use `*`, `?` and `**` as Go's filepath.Match plus `**`."""
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        if _matches(pattern.lstrip("!").strip("/"), path):
            excluded = not negated
    return excluded


def docker_build_context(context: Path, ignore_file: str = ".dockerignore") -> Path:
    """The files of the repository (tracked or not ignored by git) that `ignore_file` lets into
    a Docker build context, copied under `context`: what `docker build` would see."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    patterns = dockerignore_patterns(ignore_file)
    for name in listed:
        if (ROOT / name).is_file() and not dockerignore_excludes(name, patterns):
            (context / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / name, context / name)
    return context


def dockerignore_patterns(relative: str = ".dockerignore") -> list[str]:
    lines = (ROOT / relative).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _matches(pattern: str, path: str) -> bool:
    regex = re.compile(_translate(pattern))
    parts = path.split("/")
    return any(regex.fullmatch("/".join(parts[:end])) for end in range(1, len(parts) + 1))


def _translate(pattern: str) -> str:
    out = ""
    for token in re.split(r"(\*\*/|\*\*|\*|\?|\[[^\]]*\])", pattern):
        if token.startswith("[") and token.endswith("]"):
            out += token  # a character class means the same in a regex
        else:
            wildcards = {"**/": "(.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
            out += wildcards.get(token, re.escape(token))
    return out
