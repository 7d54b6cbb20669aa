"""Where the tests find real recordings.

Two places, looked up in this order:

1. ``data/corpus/`` in the repository: a few MB of recordings copied unchanged from the larger corpus
   (their licences and credits in ``data/corpus/SOURCES.md``), enough for a fresh clone;
2. the larger corpus outside the repository: the folder named by ``VOICEPREP_CORPUS``, by default
   ``../shared/data`` beside the repository.

A test asks for a recording by its relative name (``corpus_file("speech", "x.wav")``) when it runs, never
at import, so a module whose recordings are missing still imports and runs the rest of its tests. A test
whose recording is in neither place is skipped with :data:`NO_CORPUS`, one line that says how to get it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REPO_CORPUS = REPO / "data" / "corpus"
"""The small corpus committed with the repository."""
CORPUS = Path(os.environ.get("VOICEPREP_CORPUS") or REPO.parent / "shared" / "data")
"""The larger corpus of real recordings (``VOICEPREP_CORPUS``, default ``../shared/data``)."""
NO_CORPUS = (
    f"needs the larger recordings corpus, not found at {CORPUS}: place the shared data folder there "
    "(or set VOICEPREP_CORPUS) to run these tests"
)
"""The one reason every test skipped for a missing recording gives."""


def corpus_file(*parts: str) -> Path:
    """The recording ``parts`` (e.g. ``"speech", "x.wav"``): the repository's copy, else the larger corpus's.

    Skips the calling test with :data:`NO_CORPUS` when neither place holds it.
    """
    relative = Path(*parts)
    for root in (REPO_CORPUS, CORPUS):
        path = root / relative
        if path.is_file():
            return path
    pytest.skip(NO_CORPUS)


def corpus_dir(*parts: str) -> Path:
    """A folder of the larger corpus (for tests that need all of its recordings); skips when it is absent."""
    path = CORPUS.joinpath(*parts)
    if not path.is_dir():
        pytest.skip(NO_CORPUS)
    return path
