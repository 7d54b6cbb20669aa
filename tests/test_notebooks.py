"""The notebooks in ``notebooks/``: stored without outputs, public API only, and they run top to bottom.

Each notebook is executed with nbclient in a fresh kernel of this interpreter (the ``python3`` kernel
spec runs ``sys.executable``), from ``notebooks/`` as Jupyter would start it. As papermill does, a cell
inserted after the one tagged ``parameters`` points it at a smaller copy of ``data/samples/`` (a short
cut of alice's memo beside her band-limited file and broken upload, three of bob's takes), so every
cell runs on real recordings of each kind in a fraction of the time. Its temporary run folders go
under the test's ``tmp_path`` (``TMPDIR``).
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from _samples import MEMO, SAMPLES, cut
from nbclient import NotebookClient

import pipeline

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
NAMES = ("01_explore_a_recording.ipynb", "02_batch_quality.ipynb")

# What each notebook must show: (figures rendered as PNG, audio players).
SHOWS = {"01_explore_a_recording.ipynb": (3, 2), "02_batch_quality.ipynb": (1, 1)}

SMALL_SAMPLES = (
    "alice/upsampled_16k.wav",
    "alice/broken.m4a",
    *(f"bob/takes/take_{i}.m4a" for i in (1, 2, 3)),
)
"""Demo recordings copied whole into the smaller samples folder (beside the first 12.5 s of the memo)."""


def _parameters(name: str, samples: Path) -> dict[str, Path]:
    """The values the test gives each notebook's ``parameters`` cell: its inputs, in ``samples``."""
    return {
        "01_explore_a_recording.ipynb": {
            "SAMPLES": samples,
            "RECORDING": samples / "alice" / "phone_memo.m4a",
        },
        "02_batch_quality.ipynb": {"INPUT": samples},
    }[name]


@pytest.fixture(scope="module")
def small_samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A smaller copy of ``data/samples/``, laid out the same way."""
    root = tmp_path_factory.mktemp("notebooks") / "samples"
    cut(MEMO, root / "alice" / MEMO.name, 12.5)
    for rel in SMALL_SAMPLES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SAMPLES / rel, root / rel)
    return root


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


@pytest.mark.parametrize("name", NAMES)
def test_notebooks_have_one_parameters_cell_that_sets_what_the_test_gives(name: str, tmp_path: Path) -> None:
    tagged = [c for c in _read(name).cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code"
    assigned = {
        target.id
        for node in ast.parse(tagged[0].source).body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    assert set(_parameters(name, tmp_path)) <= assigned


def _with_parameters(nb: nbformat.NotebookNode, values: dict[str, Path]) -> None:
    """Insert a cell setting ``values`` right after the cell tagged ``parameters``, as papermill does."""
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    source = "\n".join(f"{key} = Path({str(value)!r})" for key, value in values.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(index + 1, cell)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_top_to_bottom(
    name: str, small_samples: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the kernel inherits it: run folders land here
    nb = _read(name)
    _with_parameters(nb, _parameters(name, small_samples))
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
