"""The small corpus of real recordings in ``data/corpus/``: listed, licensed, small, and unchanged copies.

Every recording there must have its row in ``data/corpus/SOURCES.md`` (origin, licence, evidence) and
nothing else may be listed; only licences that allow redistribution without share-alike or
non-commercial terms are accepted; the header facts of each row (rate, channels, seconds) are those of the
file; and, when the larger corpus is present, each file is a byte-for-byte copy of the one there, with the
same row.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from _corpus import REPO_CORPUS, corpus_dir

from pipeline.audio import io

SIZE_LIMIT_BYTES = 7_000_000
"""About 6.5 MB today: the corpus stays a few MB (the larger one lives outside the repository)."""
ALLOWED_LICENCES = ("public domain", "cc0 1.0", "cc by 4.0", "cmu arctic licence")
FORBIDDEN_TERMS = ("by-sa", "share-alike", "sharealike", "-nc", "non-commercial", "noncommercial")


def _rows(sources_md: Path) -> dict[str, dict[str, str]]:
    """file -> its row (column name -> cell) from every table of a SOURCES.md."""
    rows: dict[str, dict[str, str]] = {}
    header: list[str] = []
    for line in sources_md.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == "file":
            header = cells
        elif header and not set(cells[0]) <= {"-"}:
            rows[cells[0].strip("`")] = dict(zip(header, cells, strict=True))
    return rows


ROWS = _rows(REPO_CORPUS / "SOURCES.md")
FILES = sorted(p.relative_to(REPO_CORPUS).as_posix() for p in REPO_CORPUS.rglob("*") if p.is_file())
RECORDINGS = [name for name in FILES if name != "SOURCES.md"]


def test_every_recording_has_exactly_one_row_and_the_folder_is_small() -> None:
    assert RECORDINGS and sorted(ROWS) == RECORDINGS
    assert sum((REPO_CORPUS / name).stat().st_size for name in FILES) < SIZE_LIMIT_BYTES


@pytest.mark.parametrize("name", RECORDINGS)
def test_licence_allows_redistribution_without_share_alike_or_nc(name: str) -> None:
    licence = ROWS[name]["licence of the audio"].lower()
    assert any(allowed in licence for allowed in ALLOWED_LICENCES), licence
    assert not any(term in licence for term in FORBIDDEN_TERMS), licence
    notes = (REPO_CORPUS / "SOURCES.md").read_text(encoding="utf-8")
    if "cc by" in licence:
        assert "https://creativecommons.org/licenses/by/4.0/" in notes
    if "cmu arctic" in licence:
        assert "Carnegie Mellon University" in notes and "disclaim" in notes


@pytest.mark.parametrize("name", RECORDINGS)
def test_row_states_the_files_rate_channels_and_length(name: str) -> None:
    row = ROWS[name]
    rate = re.match(r"([\d.]+)\s*kHz", row["rate"])
    assert rate is not None, row["rate"]
    info = io.probe(REPO_CORPUS / name, hash=False)
    assert info.sample_rate == float(rate.group(1)) * 1000
    assert info.channels == int(row["ch"])
    assert info.duration_s == pytest.approx(float(row["seconds"]), abs=0.006)  # the table rounds to 0.01 s


def test_copies_are_unchanged_from_the_larger_corpus() -> None:
    larger = corpus_dir()
    larger_rows = _rows(larger / "SOURCES.md")
    for name in RECORDINGS:
        original = larger / name
        assert original.is_file(), f"{name} is not in {larger}"
        digest = hashlib.sha256((REPO_CORPUS / name).read_bytes()).hexdigest()
        assert digest == hashlib.sha256(original.read_bytes()).hexdigest(), name
        assert larger_rows[name] == ROWS[name], name
