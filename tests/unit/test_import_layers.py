"""No package of ledgerguard imports a package that imports it back.

The layering (settings/money/errors -> db -> cluster -> fraud/api/monitoring/orchestration/load
-> cli) is only real if nothing reaches up: a cycle between two packages means neither can be
understood, tested or moved without the other. The test walks the source with `ast` rather than
importing it, so it sees imports inside functions too; imports under `if TYPE_CHECKING:` are left
out (they never run). A top-level module (`platform.py`, `demo.py`, ...) counts as a package.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

import ledgerguard

SRC = Path(ledgerguard.__file__).parent
Edges = dict[str, dict[str, list[str]]]


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            for child in node.body:
                skipped.update(id(n) for n in ast.walk(child))
    return skipped


def _imported_modules(path: Path, src: Path) -> list[str]:
    """Absolute names of the ledgerguard modules `path` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skipped = _type_checking_nodes(tree)
    module = ["ledgerguard", *path.relative_to(src).with_suffix("").parts]
    if module[-1] == "__init__":
        module = [*module[:-1], "__init__"]  # the package is the base of `from . import`
    names: list[str] = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module[: len(module) - node.level]
                names.append(".".join(base + ([node.module] if node.module else [])))
            elif node.module:
                names.append(node.module)
    return [name for name in names if name.startswith("ledgerguard.")]


def package_imports(src: Path = SRC) -> Edges:
    """package -> imported package -> the files that import it."""
    edges: Edges = defaultdict(lambda: defaultdict(list))
    for path in sorted(src.rglob("*.py")):
        parts = path.relative_to(src).parts
        if len(parts) == 1 and parts[0] == "__init__.py":
            continue
        package = parts[0].removesuffix(".py")
        for name in _imported_modules(path, src):
            target = name.split(".")[1]
            if target != package:
                edges[package][target].append(str(path.relative_to(src)))
    return edges


def cycles(edges: Edges) -> list[str]:
    """Every pair of packages that import each other, with the files on both sides."""
    found = []
    for a in sorted(edges):
        for b in sorted(edges[a]):
            if a < b and a in edges.get(b, {}):
                found.append(f"{a} <-> {b}: {edges[a][b]} / {edges[b][a]}")
    return found


def test_no_two_packages_import_each_other():
    assert cycles(package_imports()) == []


def test_the_walk_finds_a_planted_cycle(tmp_path):
    """The test above can fail: a cycle written into a throw-away tree is reported."""
    (tmp_path / "low").mkdir()
    (tmp_path / "high").mkdir()
    (tmp_path / "low" / "x.py").write_text("def f():\n    from ledgerguard.high.y import g\n")
    (tmp_path / "high" / "y.py").write_text("from ledgerguard.low import x\n")
    (tmp_path / "high" / "z.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ledgerguard.low import x\n"
    )
    edges = package_imports(tmp_path)
    assert cycles(edges) == ["high <-> low: ['high/y.py'] / ['low/x.py']"]


@pytest.mark.parametrize(
    ("lower", "upper"),
    [("settings", "fraud"), ("db", "cluster"), ("cluster", "monitoring")],
)
def test_lower_layers_do_not_reach_up(lower, upper):
    assert upper not in package_imports()[lower]
