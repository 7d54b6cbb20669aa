"""Size of the code a newcomer must hold: lines of ``pipeline/``, type definitions, internal re-checks.

Usage: ``python benchmarks/code_size.py [PACKAGE_DIR ...]`` (default ``pipeline``); give a second folder (an
older checkout's ``pipeline``) to print the ratio. A type definition is a ``@dataclass`` or a class that
derives from pydantic's ``BaseModel`` (directly or through another model of the package).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def measure(root: Path) -> dict[str, int]:
    """Lines, dataclass + pydantic model definitions and ``raise InvalidArgument`` statements under ``root``."""
    lines = raises = 0
    classes: dict[str, tuple[bool, list[str]]] = {}
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines += len(text.splitlines())
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Raise) and node.exc is not None:
                call = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                raises += ast.unparse(call).split(".")[-1] == "InvalidArgument"
            if isinstance(node, ast.ClassDef):
                is_dataclass = any(
                    ast.unparse(d).split("(")[0].endswith("dataclass") for d in node.decorator_list
                )
                bases = [ast.unparse(b).split("[")[0].split(".")[-1] for b in node.bases]
                classes[f"{path}:{node.name}"] = (is_dataclass, bases)
    models = {"BaseModel"}
    grew = True
    while grew:
        before = len(models)
        models |= {key.rsplit(":", 1)[1] for key, (_, bases) in classes.items() if set(bases) & models}
        grew = len(models) > before
    types = sum(1 for dc, bases in classes.values() if dc or set(bases) & models)
    return {"lines": lines, "types": types, "invalid_argument_raises": raises}


def main(argv: list[str]) -> None:
    """Print the figures of each folder, and the ratio of the first to the second."""
    roots = [Path(a) for a in argv] or [Path(__file__).resolve().parents[1] / "pipeline"]
    figures = [measure(r) for r in roots]
    for root, fig in zip(roots, figures, strict=True):
        print(f"{root}: " + ", ".join(f"{k} {v}" for k, v in fig.items()))
    if len(figures) == 2:
        print("ratio: " + ", ".join(f"{k} {figures[0][k] / figures[1][k]:.3f}" for k in figures[0]))


if __name__ == "__main__":
    main(sys.argv[1:])
