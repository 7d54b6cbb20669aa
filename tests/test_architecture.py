"""The layout rule: one package per stage, imports only point down the stack, no cycles.

Read from the source with ``ast`` (nothing is imported), so the rule holds for lazy imports inside
functions too. A failure prints the offending line. The tiny planted trees at the end prove the checker
catches what it should.
"""

from __future__ import annotations

import ast
import itertools
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "pipeline"

STAGES = ("audio", "rules", "analysis", "content", "selection", "render", "batch", "enroll", "report", "cli")
"""Bottom to top: a module may import its own stage and the stages before it in this list."""

SHARED = ("errors",)
"""Top-level modules every stage may import (they import nothing of the package)."""

ROOT_NAMES_ALLOWED = {"__version__"}
"""What a stage may take from the package's public ``__init__`` (it sits above every stage)."""


@dataclass(frozen=True)
class Import:
    """One import statement of one module, resolved to the module it loads."""

    source: str  # dotted module doing the import
    target: str  # dotted module imported
    names: tuple[str, ...]  # names taken with `from X import ...` (empty for `import X`)
    file: Path
    line: int
    text: str
    type_only: bool  # under `if TYPE_CHECKING:`


def _module_name(path: Path, package_dir: Path) -> str:
    parts = [package_dir.name, *path.relative_to(package_dir).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def read_imports(package_dir: Path) -> tuple[set[str], list[Import]]:
    """Every module of the package and every import of the package's own modules inside it."""
    files = sorted(package_dir.rglob("*.py"))
    modules = {_module_name(f, package_dir) for f in files}
    top = package_dir.name
    found: list[Import] = []
    for file in files:
        source = _module_name(file, package_dir)
        lines = file.read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines), filename=str(file))
        type_only_lines: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and _is_type_checking(node.test):
                for inner in node.body:
                    type_only_lines.update(range(inner.lineno, (inner.end_lineno or inner.lineno) + 1))
        is_package = file.name == "__init__.py"
        for node in ast.walk(tree):
            targets: list[tuple[str, tuple[str, ...]]] = []
            if isinstance(node, ast.Import):
                targets = [(alias.name, ()) for alias in node.names if alias.name.split(".")[0] == top]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = source.split(".") if is_package else source.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    module = ".".join([*base, node.module] if node.module else base)
                else:
                    module = node.module or ""
                if module.split(".")[0] != top:
                    continue
                plain = tuple(a.name for a in node.names if f"{module}.{a.name}" not in modules)
                targets = [(f"{module}.{a.name}", ()) for a in node.names if f"{module}.{a.name}" in modules]
                if plain:
                    targets.append((module, plain))
            for target, names in targets:
                found.append(
                    Import(
                        source=source,
                        target=target,
                        names=names,
                        file=file,
                        line=node.lineno,
                        text=lines[node.lineno - 1].strip(),
                        type_only=node.lineno in type_only_lines,
                    )
                )
    return modules, found


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def layout_problems(package_dir: Path, stages: tuple[str, ...] = STAGES) -> list[str]:
    """Every breach of the layout rule, one readable line each (empty when the layout holds)."""
    modules, imports = read_imports(package_dir)
    top = package_dir.name
    rank = {name: index for index, name in enumerate(stages)}
    problems: list[str] = []
    for module in sorted(modules):
        stage = _stage(module)
        if stage is not None and stage not in rank and stage not in SHARED:
            problems.append(f"{module}: not inside a stage package (stages: {', '.join(stages)})")
    for imp in imports:
        where = f"{imp.file.relative_to(package_dir.parent)}:{imp.line}: {imp.text}"
        src, dst = _stage(imp.source), _stage(imp.target)
        if dst is None:  # the package's public __init__: above every stage
            if imp.source != top and not set(imp.names) <= ROOT_NAMES_ALLOWED:
                problems.append(f"{where}\n    a stage imports the public API of {top} (above every stage)")
            continue
        if dst in SHARED or src is None or (src in SHARED and dst in SHARED):
            continue
        if src in SHARED:
            problems.append(f"{where}\n    {src} is shared by every stage and may import no stage")
        elif src in rank and dst in rank and rank[dst] > rank[src]:
            problems.append(
                f"{where}\n    {src} may not import {dst}: {dst} is above {src} ({' < '.join(stages)})"
            )
    problems.extend(_cycles(imports))
    return problems


def _cycles(imports: list[Import]) -> list[str]:
    """Module-level import cycles (type-only imports excluded: they never run)."""
    graph: dict[str, dict[str, Import]] = {}
    for imp in imports:
        if not imp.type_only and imp.source != imp.target:
            graph.setdefault(imp.source, {}).setdefault(imp.target, imp)
    problems: list[str] = []
    seen_cycles: set[frozenset[str]] = set()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, {}):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                key = frozenset(cycle)
                if key not in seen_cycles:
                    seen_cycles.add(key)
                    steps = "\n".join(
                        f"    {graph[a][b].file.name}:{graph[a][b].line}: {graph[a][b].text}"
                        for a, b in itertools.pairwise(cycle)
                    )
                    problems.append(f"import cycle {' -> '.join(cycle)}\n{steps}")
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return problems


# --- the rule on the real package ------------------------------------------------------------------


def test_imports_point_down_the_stages_and_never_cycle() -> None:
    problems = layout_problems(PACKAGE_DIR)
    assert not problems, "layout rule broken:\n" + "\n".join(problems)


def test_every_stage_package_says_what_it_takes_gives_and_may_import() -> None:
    for stage in STAGES:
        init = PACKAGE_DIR / stage / "__init__.py"
        if not init.exists():
            continue  # a stage not built yet (content)
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        for word in ("Takes", "Gives", "May import"):
            assert word in doc, f"{init}: the docstring should say '{word}:'"


def test_only_errors_and_the_public_api_stay_at_the_top() -> None:
    loose = sorted(p.name for p in PACKAGE_DIR.glob("*.py"))
    assert loose == ["__init__.py", "errors.py"]


# --- the checker catches what it should ------------------------------------------------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    package = root / "pkg"
    for name, body in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body), encoding="utf-8")
    for folder in [package, *[p for p in package.rglob("*") if p.is_dir()]]:
        (folder / "__init__.py").touch()
    return package


def test_a_planted_upward_import_is_caught_with_its_line(tmp_path: Path) -> None:
    package = _tree(
        tmp_path,
        {
            "audio/io.py": "import os\n\n\ndef f():\n    from pkg.cli.main import app  # upward, lazy\n",
            "cli/main.py": "app = 1\n",
        },
    )
    problems = layout_problems(package)
    assert len(problems) == 1
    assert "pkg/audio/io.py:5: from pkg.cli.main import app" in problems[0]
    assert "audio may not import cli" in problems[0]


def test_a_planted_cycle_is_caught_and_type_only_imports_are_not_one(tmp_path: Path) -> None:
    package = _tree(
        tmp_path,
        {
            "analysis/a.py": "from pkg.analysis import b\n",
            "analysis/b.py": "def g():\n    from pkg.analysis.a import x\n",
            "analysis/c.py": "from pkg.analysis.d import y\n",
            "analysis/d.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.analysis.c import z\ny = 1\n"
            ),
        },
    )
    problems = layout_problems(package)
    assert len(problems) == 1
    assert problems[0].startswith("import cycle pkg.analysis.a -> pkg.analysis.b -> pkg.analysis.a")
    assert "b.py:2: from pkg.analysis.a import x" in problems[0]


def test_a_module_outside_the_stages_and_a_stage_using_the_public_api_are_caught(tmp_path: Path) -> None:
    package = _tree(
        tmp_path,
        {
            "helpers.py": "x = 1\n",
            "batch/run.py": "from pkg import __version__\nfrom pkg import analyze\n",
        },
    )
    problems = layout_problems(package)
    assert any(p.startswith("pkg.helpers: not inside a stage package") for p in problems)
    assert any("from pkg import analyze" in p and "public API" in p for p in problems)
    assert not any("__version__" in p for p in problems)


@pytest.mark.parametrize("relative", ["from ..cli import main", "from ..cli.main import app"])
def test_relative_imports_are_resolved(tmp_path: Path, relative: str) -> None:
    package = _tree(tmp_path, {"audio/io.py": relative + "\n", "cli/main.py": "app = 1\n"})
    assert any("audio may not import cli" in p for p in layout_problems(package))
