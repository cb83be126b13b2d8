"""Readers for the packaging files: the Dockerfile, .dockerignore, sidecar configs, README's schema."""
from __future__ import annotations

import fnmatch
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import yaml

from paths import REPO

CONFIGS = {
    "image default": REPO / "deploy" / "config" / "saeguard.yaml",
    "kubernetes": REPO / "deploy" / "kubernetes" / "base" / "saeguard.yaml",
    "compose": REPO / "deploy" / "compose" / "saeguard.yaml",
}


@dataclass
class Stage:
    base: str  # image reference with ARGs substituted, or an earlier stage's name
    name: str
    instructions: List[Tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, arguments)


@dataclass
class Dockerfile:
    args: Dict[str, str]  # global ARG defaults (before the first FROM)
    stages: List[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    def image(self, name: str) -> List[Tuple[str, str]]:
        """The instructions that make the image of target ``name``: those of the stages it is built FROM in this
        file (first the earliest), then its own."""
        chain: List[Stage] = []
        stage = self.stage(name)
        names = {s.name for s in self.stages}
        while True:
            chain.insert(0, stage)
            if stage.base not in names:
                return [i for s in chain for i in s.instructions]
            stage = self.stage(stage.base)

    def all(self, instruction: str) -> Iterator[Tuple[Stage, str]]:
        for s in self.stages:
            for ins, arg in s.instructions:
                if ins == instruction:
                    yield s, arg


def _logical_lines(text: str) -> Iterator[str]:
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        yield current + line
        current = ""
    if current:
        yield current


def parse_dockerfile(path: Path) -> Dockerfile:
    args: Dict[str, str] = {}
    stages: List[Stage] = []
    for line in _logical_lines(path.read_text()):
        ins, _, rest = line.partition(" ")
        ins, rest = ins.upper(), rest.strip()
        if ins == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif ins == "FROM":
            parts = [p for p in rest.split() if not p.startswith("--")]  # --platform=...
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), parts[0])
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(base, name))
        else:
            stages[-1].instructions.append((ins, rest))
    return Dockerfile(args, stages)


def dockerignore_excludes(rel_path: str) -> bool:
    """Whether .dockerignore keeps ``rel_path`` out of the build context (its patterns, simplified:
    ``**/`` prefixes and trailing ``/`` directories; no ``!`` exceptions are used)."""
    patterns = [p.strip() for p in (REPO / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.strip().startswith("#")]
    for p in patterns:
        p = p.rstrip("/")
        candidates = [p, p[3:]] if p.startswith("**/") else [p]
        parts = rel_path.split("/")
        for c in candidates:
            for i in range(len(parts)):
                prefix = "/".join(parts[: i + 1])
                tail = "/".join(parts[i:i + 1 + c.count("/")])
                if fnmatch.fnmatch(prefix, c) or (p.startswith("**/") and fnmatch.fnmatch(tail, c)):
                    return True
    return False


def exec_form(arg: str) -> List[str]:
    """The argument list of an exec-form (JSON array) CMD/ENTRYPOINT/HEALTHCHECK CMD."""
    return yaml.safe_load(arg)


def shell_words(arg: str) -> List[str]:
    return shlex.split(arg)


def key_paths(node, prefix: str = "") -> Set[str]:
    """Every key path of a YAML config (``kafka.bootstrap``; list items as ``saes[].id``)."""
    out: Set[str] = set()
    if isinstance(node, dict):
        for k, v in node.items():
            path = "%s.%s" % (prefix, k) if prefix else str(k)
            out.add(path)
            if path in ("kafka.consumer", "kafka.producer", "kafka.admin"):
                continue  # pass-through client properties
            out |= key_paths(v, path)
    elif isinstance(node, list):
        for item in node:
            out |= key_paths(item, prefix + "[]")
    return out


def readme_config_schema() -> Set[str]:
    """Key paths of the README's "full schema, with defaults" block."""
    text = (REPO / "README.md").read_text()
    start = text.index("The full schema, with defaults:")
    block = text[text.index("```yaml", start) + len("```yaml"):]
    block = block[: block.index("```")]
    return key_paths(yaml.safe_load(block))


def load_config(name: str) -> dict:
    return yaml.safe_load(CONFIGS[name].read_text())
