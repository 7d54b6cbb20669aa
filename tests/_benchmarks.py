"""Import the benchmark modules by path for tests (``benchmarks/`` is not an installed package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from _corpus import corpus_file

ROOT = Path(__file__).resolve().parents[1]


def load_corpus() -> ModuleType:
    """``benchmarks/corpus.py`` as a module, imported once per process, reading recordings via ``corpus_file``."""
    name = "voiceprep_benchmarks_corpus"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    # The tests find recordings as every test does: the repository's copy, else the larger corpus, else
    # the test is skipped (one reason line) instead of failing on a missing file.
    module.recording_path = corpus_file
    return module
