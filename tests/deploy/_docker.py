"""Reading the Dockerfile and .dockerignore as Docker does, for tests that cannot run Docker.

Only what this repository's files use: line continuations, comments, build stages, JSON (exec)
form, ``ENV`` and ``ARG`` with ``${NAME}`` defaults, and .dockerignore's patterns with ``!``
exceptions (the last pattern that matches a path or one of its parent folders decides).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


@dataclass(frozen=True, slots=True)
class Instruction:
    """One instruction: ``COPY src dest`` is ``Instruction("COPY", "src dest", line)``."""

    keyword: str
    args: str
    line: int

    def exec_form(self) -> list[str] | None:
        """The JSON array of ``CMD ["a", "b"]`` (None for the shell form)."""
        text = self.args.strip()
        if not text.startswith("["):
            return None
        value = json.loads(text)
        if not (isinstance(value, list) and all(isinstance(item, str) for item in value)):
            raise ValueError(f"Dockerfile:{self.line}: {self.keyword} is not a JSON string array")
        return value

    def words(self) -> list[str]:
        """The arguments split as a shell would, flags first (``--from=build``, ``--mount=...``)."""
        return shlex.split(self.args)


@dataclass(slots=True)
class Stage:
    """A build stage: ``FROM image AS name`` and its instructions."""

    image: str
    name: str | None
    line: int
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None

    def env(self) -> dict[str, str]:
        """Its ``ENV`` values, in order (``$NAME`` left as written)."""
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for word in instruction.words():
                name, sep, value = word.partition("=")
                if not sep:
                    raise ValueError(f"Dockerfile:{instruction.line}: write ENV {name}=value")
                values[name] = value
        return values


@dataclass(slots=True)
class Dockerfile:
    """The stages of a Dockerfile and the ARGs declared before the first one."""

    global_args: dict[str, str]
    stages: list[Stage]

    @property
    def runtime(self) -> Stage:
        """The last stage: the image that is run."""
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        return next(stage for stage in self.stages if stage.name == name)

    def entry_command(self) -> list[str]:
        """What the container runs: ENTRYPOINT then CMD, both in exec form."""
        entrypoint = self.runtime.last("ENTRYPOINT")
        cmd = self.runtime.last("CMD")
        command: list[str] = []
        for instruction in (entrypoint, cmd):
            if instruction is None:
                continue
            words = instruction.exec_form()
            if words is None:
                raise ValueError(f"Dockerfile:{instruction.line}: use the exec (JSON) form")
            command += words
        return command

    def healthcheck(self) -> tuple[dict[str, str], list[str]]:
        """The runtime stage's HEALTHCHECK: its options and its command (exec form)."""
        instruction = self.runtime.last("HEALTHCHECK")
        if instruction is None:
            raise ValueError("the runtime stage has no HEALTHCHECK")
        options: dict[str, str] = {}
        rest = instruction.args.strip()
        while rest.startswith("--"):
            option, _, rest = rest.partition(" ")
            name, _, value = option[2:].partition("=")
            options[name] = value
            rest = rest.lstrip()
        keyword, _, command = rest.partition(" ")
        if keyword != "CMD":
            raise ValueError(f"Dockerfile:{instruction.line}: HEALTHCHECK {keyword} is not CMD")
        words = Instruction("CMD", command, instruction.line).exec_form()
        if words is None:
            raise ValueError(f"Dockerfile:{instruction.line}: use the exec (JSON) form")
        return options, words


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Instructions with their continuation lines joined, and their first line numbers."""
    lines: list[tuple[int, str]] = []
    current: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        # A comment (or a parser directive) is dropped, even between continuation lines.
        if not stripped or stripped.startswith("#"):
            continue
        if not current:
            start = number
        if stripped.endswith("\\"):
            current.append(stripped[:-1].strip())
            continue
        current.append(stripped)
        lines.append((start, " ".join(current)))
        current = []
    if current:
        raise ValueError(f"Dockerfile:{start}: the file ends inside a continued instruction")
    return lines


def _substitute(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values.get(m[1] or m[2], m[0]), text)


def parse_dockerfile(path: Path = DOCKERFILE) -> Dockerfile:
    """The stages of the Dockerfile at ``path``."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line, instruction in _logical_lines(path.read_text(encoding="utf-8")):
        keyword, _, args = instruction.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = _substitute(args, global_args).split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            if len(words) not in (1, 3) or (len(words) == 3 and name is None):
                raise ValueError(f"Dockerfile:{line}: cannot read FROM {args!r}")
            stages.append(Stage(words[0], name, line))
        elif not stages:
            if keyword != "ARG":
                raise ValueError(f"Dockerfile:{line}: {keyword} before the first FROM")
            name, _, default = args.strip().partition("=")
            global_args[name] = default
        else:
            stages[-1].instructions.append(Instruction(keyword, args.strip(), line))
    return Dockerfile(global_args, stages)


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go's filepath.Match, plus ``**``) as a regular expression."""
    parts: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            parts.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            parts.append(".*")
            i += 2
        elif pattern[i] == "*":
            parts.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            parts.append("[^/]")
            i += 1
        else:
            parts.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(parts) + r"\Z")


def ignored_by_dockerignore(relative: str, path: Path = DOCKERIGNORE) -> bool:
    """True when ``relative`` (a path in the build context, with /) is left out of it."""
    rules: list[tuple[bool, re.Pattern[str]]] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        pattern = line.removeprefix("!").strip().strip("/")
        rules.append((exception, _pattern_regex(pattern)))
    parts = relative.strip("/").split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for exception, regex in rules:
        if any(regex.match(candidate) for candidate in candidates):
            ignored = not exception
    return ignored
