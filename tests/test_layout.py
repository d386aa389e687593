"""The package's shape, as the README's layout section states it: small modules, no import
cycle, and no layer reaching into the hook's private methods."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "armada_hooks"
MAX_LINES = 600


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def runtime_imports(path: Path, known: dict[str, Path]) -> set[str]:
    """Package modules ``path`` imports outside ``if TYPE_CHECKING:`` (at any depth)."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(sub)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for sub in ast.walk(node)
    }
    targets: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("armada_hooks"):
            module = str(node.module)
            subs = {f"{module}.{a.name}" for a in node.names} & known.keys()
            targets |= subs if len(subs) == len(node.names) else {module, *subs}
        elif isinstance(node, ast.Import):
            targets |= {a.name for a in node.names} & known.keys()
    return targets


def test_no_module_is_over_600_lines():
    long = {
        name: n
        for name, path in modules().items()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_no_import_cycle():
    known = modules()
    graph = {name: runtime_imports(path, known) - {name} for name, path in known.items()}
    cycles = []

    def visit(name: str, trail: list[str]) -> None:
        for nxt in sorted(graph[name]):
            if nxt in trail:
                cycles.append([*trail[trail.index(nxt) :], nxt])
            elif nxt not in done:
                done.add(nxt)
                visit(nxt, [*trail, nxt])

    done: set[str] = set()
    for name in sorted(graph):
        if name not in done:
            done.add(name)
            visit(name, [name])
    assert cycles == []


def test_the_check_sees_a_cycle(tmp_path):
    # the negative control: two modules importing each other are found
    (tmp_path / "a.py").write_text("from armada_hooks import b\n")
    known = {"armada_hooks.a": tmp_path / "a.py", "armada_hooks.b": tmp_path / "b.py"}
    assert runtime_imports(known["armada_hooks.a"], known) == {"armada_hooks.b"}
    (tmp_path / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from armada_hooks import b\n"
    )
    assert runtime_imports(tmp_path / "c.py", known) == set()


def test_only_the_hook_touches_its_private_members():
    offenders = []
    for name, path in modules().items():
        if name == "armada_hooks.hooks.armada":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name | ast.Attribute)
                and ast.unparse(node.value).split(".")[-1] in {"hook", "ArmadaHook", "log_hook"}
            ):
                offenders.append(f"{name}: {ast.unparse(node)}")
    assert offenders == []
