"""CAM++ speaker embeddings (3D-Speaker's model run by onnxruntime): the shipped model, the Kaldi fbank
front-end against Kaldi's own numbers, a known embedding, and what the vectors say about real voices.

Torch cannot run here, so the graph is checked at conversion against a float64 numpy network
(``scripts/convert_campplus_model.py``) and here by facts a wrong conversion or front-end would break:
one reader's recordings score high with each other and far lower against other readers (much further
apart than GE2E's), and partials along two joined voices side with the right one.
"""

from __future__ import annotations

import hashlib
import itertools
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from _corpus import corpus_file

from pipeline.analysis import campplus
from pipeline.analysis.base import ANALYSIS_RATE
from pipeline.audio.view import load_mono
from pipeline.errors import InvalidArgument

MODEL_SHA256 = "1859c0a3371c360c7aea3b3c724248d8649cd6fafad9516b92f540425de18613"
"""sha256 of pipeline/analysis/models/campplus.onnx as scripts/convert_campplus_model.py writes it."""

LJ = (  # Linda Johnson, LJ Speech
    "coqui_ljspeech_LJ001-0001.wav",
    "coqui_ljspeech_LJ001-0003.wav",
    "coqui_ljspeech_LJ001-0005.wav",
    "sb_ljspeech_LJ050-0131.wav",
)
READER_3080 = (  # LibriSpeech reader 3080
    "resem_librispeech_3080-5032-0006.flac",
    "resem_librispeech_3080-5032-0007.flac",
    "resem_librispeech_3080-5032-0009.flac",
)
OTHERS = ("pra_cmu_arctic_us_aew_a0001.wav", "sms_speech-male.wav", "aug_vctk_p286_011.wav")


@cache
def voice(name: str) -> np.ndarray:
    """A recording of ``data/corpus/speech`` as the 16 kHz mono analysis signal."""
    audio, _, _ = load_mono(corpus_file("speech", name), rate=ANALYSIS_RATE)
    return audio


@cache
def embedding(name: str) -> np.ndarray:
    return campplus.embed(voice(name))


def test_the_shipped_model_is_the_converted_campplus_checkpoint() -> None:
    assert (
        hashlib.sha256(campplus.MODEL_PATH.read_bytes()).hexdigest() == MODEL_SHA256 == campplus.MODEL_SHA256
    )
    licence = (campplus.MODEL_PATH.parent / "campplus-LICENSE.txt").read_text()
    assert "Version 2.0, January 2004" in licence and "CAM++ Speaker Verification Model" in licence


def test_a_tampered_model_file_is_refused(tmp_path: Path) -> None:
    data = bytearray(campplus.MODEL_PATH.read_bytes())
    data[len(data) // 2] ^= 1
    tampered = tmp_path / "campplus.onnx"
    tampered.write_bytes(bytes(data))
    with pytest.raises(RuntimeError, match="sha256"):
        campplus._CamPlusPlus(tampered)


def test_the_fbank_is_kaldis() -> None:
    """Known answer from kaldi-native-fbank 1.23 (Kaldi's fbank, dither 0, 80 bands, energy floor 0)."""
    t = np.arange(ANALYSIS_RATE // 2) / ANALYSIS_RATE
    x = (0.1 * np.sin(2 * np.pi * 1000 * t) + 0.05 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    features = campplus.fbank(x)
    assert features.shape == (48, 80)  # 1 + (8000 - 400) // 160 frames, no padding
    kaldi = [-10.3112, -1.077, -12.2711, -7.5276, -15.7862, -15.9424]
    np.testing.assert_allclose(features[10, [0, 10, 20, 30, 40, 79]], kaldi, atol=2e-3)
    assert set(np.argsort(features[10])[-2:]) == {26, 27}  # the 1 kHz tone's bands


def test_a_known_embedding() -> None:
    """LJ001-0001 whole (pauses cut short): the first values of its unit vector, as this model gives them."""
    v = embedding(LJ[0])
    assert v.shape == (campplus.EMBEDDING_SIZE,)
    assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(v[:5], [0.0789, -0.0688, 0.1118, -0.1233, 0.0968], atol=2e-3)


def test_one_readers_recordings_are_close_and_other_readers_far() -> None:
    names = LJ + READER_3080 + OTHERS
    who = [0] * len(LJ) + [1] * len(READER_3080) + [2, 3, 4]
    same, different = [], []
    for (i, a), (j, b) in itertools.combinations(enumerate(names), 2):
        (same if who[i] == who[j] else different).append(float(embedding(a) @ embedding(b)))
    # measured: same 0.88 at the least, others 0.22 at the most (GE2E: 0.85 and 0.67)
    assert min(same) > 0.75
    assert max(different) < 0.40


def test_partials_along_two_joined_voices_side_with_the_right_reader() -> None:
    first, second = voice(LJ[0]), voice(READER_3080[1])
    joined = np.concatenate([first, second])
    boundary_s = first.size / ANALYSIS_RATE
    lj = campplus.embed(np.concatenate([voice(LJ[1]), voice(LJ[2])]))
    reader = campplus.embed(np.concatenate([voice(READER_3080[0]), voice(READER_3080[2])]))
    partials = campplus.partial_embeddings(joined, step_s=0.5, partial_s=1.5)
    assert len(partials) >= 30
    np.testing.assert_allclose(np.linalg.norm(partials.vectors, axis=1), 1.0, atol=1e-5)
    assert np.all(np.diff(partials.starts_s) > 0) and np.all(partials.ends_s > partials.starts_s)
    assert partials.ends_s[-1] <= joined.size / ANALYSIS_RATE
    to_lj, to_reader = campplus.cosine(partials.vectors, lj), campplus.cosine(partials.vectors, reader)
    before, after = partials.ends_s <= boundary_s, partials.starts_s >= boundary_s
    assert before.sum() >= 8 and after.sum() >= 15
    assert np.all(to_lj[before] > to_reader[before])
    assert np.all(to_reader[after] > to_lj[after])


def test_partial_times_are_times_of_the_signal_inside_the_span() -> None:
    partials = campplus.partial_embeddings(voice(READER_3080[2]), 4.0, 12.0, step_s=0.8, partial_s=2.0)
    assert partials.starts_s[0] >= 4.0 and partials.ends_s[-1] <= 12.0
    assert 6.0 < partials.heard_s <= 8.0


@pytest.mark.parametrize(
    ("n_frames", "length", "step", "starts"),
    [
        (100, 150, 50, [0]),
        (150, 150, 50, [0]),
        (250, 150, 50, [0, 50, 100]),
        (290, 150, 50, [0, 50, 100, 140]),
    ],
)
def test_partials_cover_the_span_to_its_end(n_frames: int, length: int, step: int, starts: list[int]) -> None:
    assert campplus.partial_starts(n_frames, length, step) == starts


def test_silence_and_very_short_spans_still_give_one_vector() -> None:
    partials = campplus.partial_embeddings(np.zeros(3 * ANALYSIS_RATE, dtype=np.float32))
    assert partials.heard_s == 0.0 and len(partials) == 1
    assert campplus.embed(voice(LJ[0])[:800], trim_pauses=False).shape == (campplus.EMBEDDING_SIZE,)


def test_bad_spans_and_partials_are_refused() -> None:
    x = voice(LJ[0])
    with pytest.raises(InvalidArgument):
        campplus.embed(x, 3.0, 2.0)
    with pytest.raises(InvalidArgument):
        campplus.partial_embeddings(x, step_s=2.0, partial_s=1.5)


def test_shared_pooling_hears_the_span_once_and_still_sides_with_the_right_reader() -> None:
    first, second = voice(LJ[0]), voice(READER_3080[1])
    joined = np.concatenate([first, second])
    boundary_s = first.size / ANALYSIS_RATE
    lj = campplus.embed(np.concatenate([voice(LJ[1]), voice(LJ[2])]))
    reader = campplus.embed(np.concatenate([voice(READER_3080[0]), voice(READER_3080[2])]))
    shared = campplus.partial_embeddings(joined, pooling="shared")
    separate = campplus.partial_embeddings(joined, pooling="separate")
    np.testing.assert_array_equal(shared.starts_s, separate.starts_s)
    before, after = shared.ends_s <= boundary_s - 1.0, shared.starts_s >= boundary_s + 1.0
    to_lj, to_reader = campplus.cosine(shared.vectors, lj), campplus.cosine(shared.vectors, reader)
    assert np.all(to_lj[before] > to_reader[before]) and np.all(to_reader[after] > to_lj[after])
    # one window over the whole span is the span's own embedding
    x = voice(READER_3080[0])
    whole = campplus.partial_embeddings(x, partial_s=x.size / ANALYSIS_RATE, step_s=0.5, pooling="shared")
    assert float(whole.vectors[0] @ campplus.embed(x)) > 0.999
    with pytest.raises(InvalidArgument):
        campplus.partial_embeddings(x, pooling="sliding")
