"""The README's and docs' blocks, as tests read them: console examples (commands and what they print) and
what is shown of a report, where `…` stands for ids, times and the like."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.DOTALL | re.MULTILINE)


@dataclass
class Example:
    """One `$ command` of a console block and the lines it is shown to print."""

    where: str
    command: str
    prints: list[str] = field(default_factory=list)


def blocks(path: Path, language: str) -> list[str]:
    return [body for kind, body in _BLOCK.findall(path.read_text()) if kind == language]


def console_examples(path: Path) -> list[Example]:
    examples: list[Example] = []
    for number, body in enumerate(blocks(path, "console"), 1):
        for line in body.splitlines():
            if line.startswith("$ "):
                examples.append(Example(f"{path.name} console block {number}", line[2:]))
            elif examples:
                examples[-1].prints.append(line)
    return examples


def shown(line: str) -> re.Pattern[str]:
    """A line as the docs show it, as a pattern: `…` is anything, trailing blanks do not count."""
    return re.compile(".*?".join(re.escape(part) for part in line.rstrip().split("…")))


def matches(expected: list[str], actual: list[str]) -> bool:
    return len(expected) == len(actual) and all(
        shown(want).fullmatch(got.rstrip()) for want, got in zip(expected, actual, strict=True)
    )


def contains_in_order(expected: list[str], actual: list[str]) -> bool:
    """Whether `expected` appears as consecutive lines somewhere in `actual`."""
    return any(matches(expected, actual[start : start + len(expected)]) for start in range(len(actual)))
