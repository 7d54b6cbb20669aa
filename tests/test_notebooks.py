"""The notebooks in ``notebooks/``: stored without outputs, public API only, and they run top to bottom.

Each notebook is executed with nbclient in a fresh kernel of this interpreter (the ``python3`` kernel
spec runs ``sys.executable``), from ``notebooks/`` as Jupyter would start it, against ``data/samples/``.
Its temporary run folders go under the test's ``tmp_path`` (``TMPDIR``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import pipeline

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
NAMES = ("01_explore_a_recording.ipynb", "02_batch_quality.ipynb")

# What each notebook must show: (figures rendered as PNG, audio players).
SHOWS = {"01_explore_a_recording.ipynb": (3, 2), "02_batch_quality.ipynb": (1, 1)}


def _read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS / name, as_version=4)


def _code(nb: nbformat.NotebookNode) -> str:
    """The notebook's code cells as one Python module (IPython magics dropped)."""
    cells = [c.source for c in nb.cells if c.cell_type == "code"]
    return "\n".join(line for cell in cells for line in cell.splitlines() if not line.startswith("%"))


def test_every_notebook_is_listed_here_and_in_the_readme() -> None:
    found = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert found == sorted(NAMES)
    readme = (NOTEBOOKS / "README.md").read_text()
    assert all(name in readme for name in NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_notebooks_are_stored_without_outputs(name: str) -> None:
    nb = _read(name)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "a notebook without code"
    assert [c.outputs for c in code] == [[] for _ in code]
    assert [c.execution_count for c in code] == [None for _ in code]
    assert all("execution" not in c.metadata for c in nb.cells)


@pytest.mark.parametrize("name", NAMES)
def test_notebooks_use_only_the_public_api(name: str) -> None:
    tree = ast.parse(_code(_read(name)))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert "pipeline" in imported
    assert not [m for m in imported if m.startswith("pipeline.")]
    used = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "pipeline"
    }
    assert used and used <= set(pipeline.__all__), used - set(pipeline.__all__)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_top_to_bottom(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the kernel inherits it: run folders land here
    nb = _read(name)
    client = NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()  # raises CellExecutionError naming the cell on any error

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    stderr = [o.text for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    assert not [text for text in stderr if "Traceback" in text or "DeprecationWarning" in text]
    figures = sum("image/png" in o.get("data", {}) for o in outputs)
    players = sum(bool(re.search(r"<audio\b", o.get("data", {}).get("text/html", ""))) for o in outputs)
    assert all(p >= w for p, w in zip((figures, players), SHOWS[name], strict=True)), (figures, players)
    runs = [p for p in tmp_path.glob("voiceprep-*") if (p / "clips.jsonl").is_file()]
    assert len(runs) == 1, sorted(tmp_path.iterdir())
    assert pipeline.load_run(runs[0]).ready_clips().shape[0] >= 1
