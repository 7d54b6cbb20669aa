"""The speaker API the pipeline uses (:mod:`pipeline.analysis.speaker`): CAM++ behind it, the shared pause
trimming, and the model's identity (part of the cached partials' key, so another model's are not reused).

The network and its front-end are tested in ``tests/test_campplus.py``; GE2E, the earlier model, in
``tests/test_ge2e.py``.
"""

from __future__ import annotations

import fnmatch
import tomllib
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from _corpus import corpus_file

from pipeline.analysis import campplus, speaker
from pipeline.analysis.base import ANALYSIS_RATE
from pipeline.audio.view import load_mono
from pipeline.errors import InvalidArgument

ROOT = Path(__file__).resolve().parents[1]
LJ = "coqui_ljspeech_LJ001-0001.wav"  # Linda Johnson, LJ Speech
LJ_OTHER = "coqui_ljspeech_LJ001-0003.wav"
READER_3080 = "resem_librispeech_3080-5032-0006.flac"  # LibriSpeech reader 3080


@cache
def voice(name: str) -> np.ndarray:
    """A recording of ``data/corpus/speech`` as the 16 kHz mono analysis signal."""
    audio, _, _ = load_mono(corpus_file("speech", name), rate=ANALYSIS_RATE)
    return audio


def test_the_api_hands_out_campplus() -> None:
    assert speaker.MODEL_NAME == "campplus"
    assert speaker.MODEL_PATH == campplus.MODEL_PATH and speaker.MODEL_SHA256 == campplus.MODEL_SHA256
    assert speaker.EMBEDDING_SIZE == campplus.EMBEDDING_SIZE == 192
    assert speaker.PARTIAL_S == campplus.PARTIAL_S
    x = voice(LJ)
    vector = speaker.embed(x)
    assert vector.shape == (192,) and np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(vector, campplus.embed(x), atol=1e-6)
    partials = speaker.partial_embeddings(x, step_s=0.5)
    expected = campplus.partial_embeddings(x, step_s=0.5, partial_s=speaker.PARTIAL_S)
    assert isinstance(partials, speaker.Partials) and partials.vectors.shape[1] == 192
    np.testing.assert_allclose(partials.vectors, expected.vectors, atol=1e-6)
    np.testing.assert_allclose(partials.starts_s, expected.starts_s)


def test_the_package_data_carries_the_model_and_its_licence() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = setuptools["package-data"]["pipeline"]
    for path in (speaker.MODEL_PATH, speaker.MODEL_PATH.parent / "campplus-LICENSE.txt"):
        relative = path.relative_to(ROOT / "pipeline").as_posix()
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), relative


def test_one_reader_is_nearer_herself_than_another_reader() -> None:
    own = float(speaker.cosine(speaker.embed(voice(LJ)), speaker.embed(voice(LJ_OTHER))))
    other = float(speaker.cosine(speaker.embed(voice(LJ)), speaker.embed(voice(READER_3080))))
    assert own > 0.6 and other < 0.4


def test_side_by_side_partials_cover_the_span_once() -> None:
    x = voice(READER_3080)
    partials = speaker.partial_embeddings(x, step_s=speaker.PARTIAL_S)
    assert np.all(np.diff(partials.starts_s) > 0)
    assert len(partials) <= int(partials.heard_s / speaker.PARTIAL_S) + 2


def test_pauses_are_cut_short_and_each_kept_sample_says_where_it_came_from() -> None:
    x = voice(LJ)
    gap = np.zeros(2 * ANALYSIS_RATE, dtype=np.float32)
    joined = np.concatenate([x, gap, x])
    trimmed, kept = speaker.preprocess(joined)
    assert trimmed.size == kept.size
    assert np.all(np.diff(kept) > 0)
    in_gap = np.count_nonzero((kept >= x.size) & (kept < x.size + gap.size))
    assert in_gap < 0.5 * ANALYSIS_RATE  # at most the dilation around the speech on each side
    assert kept.size > 2 * 0.7 * x.size  # the speech stays


def test_a_step_longer_than_a_partial_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="step_s"):
        speaker.partial_embeddings(voice(LJ), step_s=speaker.PARTIAL_S + 0.1)


def test_cosine_takes_vectors_or_a_matrix_and_rejects_mismatches() -> None:
    v = speaker.embed(voice(LJ))
    w = speaker.embed(voice(READER_3080))
    assert speaker.cosine(v, v) == pytest.approx(1.0)
    np.testing.assert_allclose(speaker.cosine(np.stack([v, w]), v), [1.0, speaker.cosine(w, v)])
    with pytest.raises(InvalidArgument):
        speaker.cosine(v, v[:10])
