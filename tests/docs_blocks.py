"""The code blocks of the docs pages and their marker comments (see tests/test_docs.py).

``<!-- real-airflow -->`` marks a console block that needs a real Airflow deployment:
tests/stack/test_quickstart.py runs those on the real-stack fixture.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})\s*(?P<info>.*)$")
MARKER = re.compile(r"^<!--\s*(?P<name>[a-z-]+)\s*(?::\s*(?P<arg>.*?))?\s*-->$")
MARKERS = {"not-runnable", "runnable", "output", "file", "pytest", "real-airflow"}
CODE_DIRECTIVES = {"code-block", "code", "sourcecode", "code-cell"}


class DocsError(AssertionError):
    """A block that failed, or that breaks the rules above; the message names page and line."""


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page and the marker comment just before it."""

    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    marker: str | None = None
    arg: str = ""

    @property
    def where(self) -> str:
        """``docs/page.md:LINE``."""
        return f"{_relative(self.page)}:{self.line}"


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def parse_blocks(page: Path) -> list[Block]:
    """The page's code blocks; directive fences (toctree, eval-rst, ...) are not code."""
    lines = page.read_text().splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence, info = opening["indent"], opening["fence"], opening["info"].strip()
        end = i + 1
        while end < len(lines) and not lines[end].strip().startswith(fence[0] * len(fence)):
            end += 1
        if end == len(lines):
            raise DocsError(f"{_relative(page)}:{i + 1}: the code block is never closed")
        directive = re.match(r"^\{([\w-]+)\}", info)
        if directive and directive[1] in CODE_DIRECTIVES:
            raise DocsError(
                f"{_relative(page)}:{i + 1}: write ```LANG with a marker comment, not "
                f"{{{directive[1]}}}, so that the snippet runner sees the block"
            )
        if not directive:
            name, arg = _marker(page, lines, i)
            code = "\n".join(line.removeprefix(indent) for line in lines[i + 1 : end]) + "\n"
            blocks.append(Block(page, i + 1, info.split()[0] if info else "", code, name, arg))
        i = end + 1
    return blocks


def _marker(page: Path, lines: list[str], fence: int) -> tuple[str | None, str]:
    before = fence - 1
    while before >= 0 and not lines[before].strip():
        before -= 1
    found = MARKER.match(lines[before].strip()) if before >= 0 else None
    if not found:
        return None, ""
    if found["name"] not in MARKERS:
        raise DocsError(
            f"{_relative(page)}:{before + 1}: unknown marker {found['name']!r}; "
            f"use one of {sorted(MARKERS)}"
        )
    return found["name"], found["arg"] or ""


def matches(expected: str, actual: str) -> bool:
    """Whether each expected line matches an actual line, in order (``...``: anything)."""
    wanted = [line.rstrip() for line in expected.strip("\n").splitlines()]
    patterns = [
        re.compile(".*".join(re.escape(part) for part in line.split("...")))
        for line in wanted
        if line.strip() and line.strip() != "..."
    ]
    got = iter(line.rstrip() for line in actual.splitlines())
    return all(any(p.fullmatch(line) for line in got) for p in patterns)


def parse_console(code: str) -> list[tuple[str, str]]:
    """``(command, expected output)`` pairs; a command may continue over ``\\`` lines."""
    steps: list[tuple[str, list[str]]] = []
    lines = iter(code.splitlines())
    for line in lines:
        if line.startswith("$ "):
            command = [line[2:]]
            while command[-1].endswith("\\"):
                command.append(next(lines))
            steps.append(("\n".join(command), []))
        elif steps:
            steps[-1][1].append(line)
        elif line.strip():
            raise ValueError(f"output before any '$ ' command: {line!r}")
    return [(command, "\n".join(out)) for command, out in steps]
