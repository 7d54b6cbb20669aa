"""GE2E speaker embeddings (:mod:`pipeline.analysis.ge2e`, Resemblyzer's encoder run by onnxruntime; the pipeline's model
before CAM++): the shipped model, the front-end against librosa, Resemblyzer's slicing, and what the vectors
say about real voices.

Torch cannot run here, so the embeddings are not compared with Resemblyzer's own numbers; instead the
tests check facts a wrong conversion (gate order, layout, front-end scale) would break: recordings of one
reader score high with each other and low against other readers, a one-sample shift changes nothing,
and partials along two joined voices side with the right one (references from *other* recordings).
"""

from __future__ import annotations

import fnmatch
import hashlib
import itertools
import tomllib
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from _corpus import corpus_file

from pipeline.analysis import ge2e as speaker
from pipeline.analysis import speaker as shared
from pipeline.analysis.base import ANALYSIS_RATE
from pipeline.audio.view import load_mono
from pipeline.errors import InvalidArgument

ROOT = Path(__file__).resolve().parents[1]
MODEL_SHA256 = "fd2657001aad1e28cb1ec3c2a08faac2cdd9300cd41f28094cbf096bfac6e0aa"
"""sha256 of pipeline/analysis/models/ge2e.onnx as scripts/convert_speaker_model.py writes it."""

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
"""One recording each of three more speakers (CMU ARCTIC aew, a male sample, VCTK p286)."""


@cache
def voice(name: str) -> np.ndarray:
    """A recording of ``data/corpus/speech`` as the 16 kHz mono analysis signal."""
    audio, _, _ = load_mono(corpus_file("speech", name), rate=ANALYSIS_RATE)
    return audio


@cache
def embedding(name: str) -> np.ndarray:
    return speaker.embed(voice(name))


def test_the_shipped_model_is_the_converted_resemblyzer_encoder() -> None:
    assert hashlib.sha256(speaker.MODEL_PATH.read_bytes()).hexdigest() == MODEL_SHA256 == speaker.MODEL_SHA256
    licence = (speaker.MODEL_PATH.parent / "ge2e-LICENSE.txt").read_text()
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence


def test_the_package_data_carries_the_model_and_its_licence() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = setuptools["package-data"]["pipeline"]
    for path in speaker.MODEL_PATH.parent.iterdir():
        relative = path.relative_to(ROOT / "pipeline").as_posix()
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), relative


def test_a_tampered_model_file_is_refused(tmp_path: Path) -> None:
    data = bytearray(speaker.MODEL_PATH.read_bytes())
    data[len(data) // 2] ^= 1
    tampered = tmp_path / "ge2e.onnx"
    tampered.write_bytes(bytes(data))
    with pytest.raises(RuntimeError, match="sha256"):
        speaker._Ge2e(tampered)


def test_the_model_is_loaded_once_per_process() -> None:
    assert speaker._model() is speaker._model()


def test_the_mel_filterbank_is_librosas() -> None:
    import librosa

    expected = librosa.filters.mel(sr=ANALYSIS_RATE, n_fft=400, n_mels=40)
    np.testing.assert_allclose(speaker.slaney_mel_filterbank(), expected, rtol=1e-5, atol=1e-8)


def test_a_tone_gives_librosas_mel_spectrogram_in_the_band_that_holds_it() -> None:
    import librosa

    t = np.arange(ANALYSIS_RATE) / ANALYSIS_RATE
    tone = (0.5 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)
    mel = speaker.mel_spectrogram(tone)
    expected = librosa.feature.melspectrogram(
        y=tone, sr=ANALYSIS_RATE, n_fft=400, hop_length=160, n_mels=40
    ).T
    assert mel.shape == expected.shape == (101, 40)
    np.testing.assert_allclose(mel, expected, rtol=0, atol=1e-4 * float(expected.max()))
    centres = librosa.mel_frequencies(n_mels=42, fmax=ANALYSIS_RATE / 2)[1:-1]
    assert set(np.argmax(mel[2:-2], axis=1)) == {int(np.argmin(np.abs(centres - 1000.0)))}


@pytest.mark.parametrize(
    ("n_samples", "step_s", "starts"),
    [
        (48000, 0.77, [0, 77, 154]),  # 3 s: the last partial 91 % covered, kept
        (32000, 0.77, [0, 77]),  # 2 s: the second partial 77 % covered, kept
        (31000, 0.77, [0]),  # 1.94 s: the second only 73 % covered, dropped
        (8000, 0.77, [0]),  # shorter than one partial: one, zero-padded
        (48000, 0.5, [0, 50, 100, 150]),
    ],
)
def test_partials_follow_resemblyzers_slicing(n_samples: int, step_s: float, starts: list[int]) -> None:
    assert speaker.partial_frames(n_samples, step_s) == starts


def test_pauses_are_cut_short_and_each_kept_sample_says_where_it_came_from() -> None:
    x = voice(LJ[0])
    gap = np.zeros(2 * ANALYSIS_RATE, dtype=np.float32)
    joined = np.concatenate([x, gap, x])
    trimmed, kept = shared.preprocess(joined)
    assert trimmed.size == kept.size
    assert np.all(np.diff(kept) > 0)
    in_gap = np.count_nonzero((kept >= x.size) & (kept < x.size + gap.size))
    assert in_gap < 0.5 * ANALYSIS_RATE  # at most the dilation around the speech on each side
    assert kept.size > 2 * 0.7 * x.size  # the speech stays


def test_one_readers_recordings_are_close() -> None:
    # LJ050-0131 is from another chapter of the book (0.85-0.89 with the others): ranked in the next test
    for group in (LJ[:3], READER_3080):
        for a, b in itertools.combinations(group, 2):
            assert speaker.cosine(embedding(a), embedding(b)) >= 0.85, (a, b)


def test_every_recordings_nearest_neighbour_is_by_the_same_reader() -> None:
    names = [*LJ, *READER_3080, *OTHERS]
    reader = {name: group for group in (LJ, READER_3080) for name in group}
    for name in (*LJ, *READER_3080):
        others = [other for other in names if other != name]
        nearest = max(others, key=lambda other: speaker.cosine(embedding(name), embedding(other)))
        assert nearest in reader[name], (name, nearest)


def test_different_readers_are_apart() -> None:
    groups = [LJ, READER_3080, *((name,) for name in OTHERS)]
    for first, second in itertools.combinations(groups, 2):
        for a, b in itertools.product(first, second):
            assert speaker.cosine(embedding(a), embedding(b)) <= 0.75, (a, b)


def test_a_one_sample_shift_leaves_the_embedding_where_it_was() -> None:
    x = voice(LJ[0])
    assert speaker.cosine(speaker.embed(x), speaker.embed(x[1:])) >= 0.995


def test_partials_along_two_joined_voices_side_with_the_right_reader() -> None:
    first, second = voice(LJ[0]), voice(READER_3080[1])
    joined = np.concatenate([first, second])
    boundary_s = first.size / ANALYSIS_RATE
    # references from other recordings of each reader
    lj = speaker.embed(np.concatenate([voice(LJ[1]), voice(LJ[2])]))
    reader = speaker.embed(np.concatenate([voice(READER_3080[0]), voice(READER_3080[2])]))
    partials = speaker.partial_embeddings(joined)
    assert len(partials) >= 30
    np.testing.assert_allclose(np.linalg.norm(partials.vectors, axis=1), 1.0, atol=1e-5)
    assert np.all(np.diff(partials.starts_s) > 0) and np.all(partials.ends_s > partials.starts_s)
    assert partials.ends_s[-1] <= joined.size / ANALYSIS_RATE
    to_lj, to_reader = speaker.cosine(partials.vectors, lj), speaker.cosine(partials.vectors, reader)
    before = partials.ends_s <= boundary_s
    after = partials.starts_s >= boundary_s
    assert before.sum() >= 8 and after.sum() >= 15
    assert np.all(to_lj[before] > to_reader[before])
    assert np.all(to_reader[after] > to_lj[after])


def test_partial_times_are_times_of_the_signal_inside_the_span() -> None:
    x = voice(READER_3080[2])
    partials = speaker.partial_embeddings(x, 4.0, 12.0, step_s=0.8)
    assert partials.starts_s[0] >= 4.0 and partials.ends_s[-1] <= 12.0
    assert 6.0 < partials.heard_s <= 8.0


def test_silence_is_heard_as_nothing() -> None:
    partials = speaker.partial_embeddings(np.zeros(3 * ANALYSIS_RATE, dtype=np.float32))
    assert partials.heard_s == 0.0
    assert len(partials) == 1


def test_cosine_takes_vectors_or_a_matrix_and_rejects_mismatches() -> None:
    v = embedding(LJ[0])
    assert speaker.cosine(v, v) == pytest.approx(1.0)
    matrix = np.stack([v, embedding(READER_3080[0])])
    np.testing.assert_allclose(speaker.cosine(matrix, v), [1.0, speaker.cosine(matrix[1], v)])
    with pytest.raises(InvalidArgument):
        speaker.cosine(v, v[:10])


def test_bad_spans_and_steps_are_refused() -> None:
    x = voice(LJ[0])
    with pytest.raises(InvalidArgument, match="span"):
        speaker.embed(x, 20.0, 30.0)
    with pytest.raises(InvalidArgument, match="step_s"):
        speaker.partial_embeddings(x, step_s=2.0)
    with pytest.raises(InvalidArgument, match="audio16k"):
        speaker.embed(np.zeros((100, 2), dtype=np.float32))
