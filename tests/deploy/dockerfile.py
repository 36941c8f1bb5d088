"""A small reader for the project's Dockerfile and .dockerignore: enough to check what the images promise
without a Docker engine (none runs on these machines)."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from tests.data import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, arguments)

    def all(self, instruction: str) -> list[str]:
        return [args for name, args in self.instructions if name == instruction]

    def last(self, instruction: str) -> str:
        found = self.all(instruction)
        assert found, f"stage {self.name} has no {instruction}"
        return found[-1]

    def exec_form(self, instruction: str) -> list[str]:
        """The JSON (exec) form of ENTRYPOINT / CMD."""
        return json.loads(self.last(instruction))

    def env(self) -> dict[str, str]:
        variables: dict[str, str] = {}
        for args in self.all("ENV"):
            for token in shlex.split(args):
                key, _, value = token.partition("=")
                variables[key] = value
        return variables


@dataclass
class Dockerfile:
    args: dict[str, str]  # global ARG defaults (before the first FROM)
    stages: dict[str, Stage]


def _logical_lines(text: str) -> list[str]:
    """Lines with comments dropped and backslash continuations joined."""
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    return lines


def parse_dockerfile(path: Path = DOCKERFILE) -> Dockerfile:
    args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    stage: Stage | None = None
    for line in _logical_lines(path.read_text()):
        instruction, _, rest = line.partition(" ")
        instruction, rest = instruction.upper(), rest.strip()
        if instruction == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", rest, flags=re.IGNORECASE)
            assert match, f"cannot read FROM {rest!r}"
            stage = Stage(name=match.group(2) or f"stage{len(stages)}", base=match.group(1))
            stages[stage.name] = stage
        elif stage is None:
            assert instruction == "ARG", f"{instruction} before the first FROM"
            key, _, value = rest.partition("=")
            args[key] = value.strip('"')
        else:
            stage.instructions.append((instruction, rest))
    return Dockerfile(args=args, stages=stages)


def copy_sources(stage: Stage) -> list[str]:
    """Build-context paths a stage's COPY instructions read (COPY --from reads another stage instead)."""
    sources: list[str] = []
    for args in stage.all("COPY"):
        tokens = shlex.split(args)
        if any(token.startswith("--from=") for token in tokens):
            continue
        paths = [token for token in tokens if not token.startswith("--")]
        sources.extend(paths[:-1])
    return sources


def dockerignore_excludes(relative_path: str, path: Path = DOCKERIGNORE) -> bool:
    """Whether ``relative_path`` stays out of the build context (last matching rule wins, like Docker).

    A rule matching a directory also matches everything below it. This covers the pattern forms the
    project's .dockerignore uses (``*``, ``!dir/``, ``**/name``), not every corner of Docker's syntax.
    """
    parts = relative_path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for raw in path.read_text().splitlines():
        rule = raw.strip()
        if not rule or rule.startswith("#"):
            continue
        negate = rule.startswith("!")
        pattern = rule.lstrip("!").strip("/")
        if pattern.startswith("**/"):
            matches = any(fnmatch.fnmatch(part, pattern[3:]) for part in parts)
        else:
            matches = any(fnmatch.fnmatch(prefix, pattern) for prefix in prefixes)
        if matches:
            excluded = not negate
    return excluded
