"""Tests for pipeline.audio.view: the streaming 16 kHz mono analysis view and one-shot mono loads."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from _corpus import corpus_file

from pipeline.audio.mix import examine_channels
from pipeline.audio.resample import output_length, resample
from pipeline.audio.view import AnalysisView, load_mono

SPEECH_48K = ("speech", "aug_vctk_p286_011.wav")  # 6.77 s, mono, 48 kHz, 16-bit
NOISE_16K = ("noise", "pra_doing_the_dishes.wav")


def _db(x: np.ndarray) -> float:
    return 10 * math.log10(float(np.mean(np.asarray(x, dtype=np.float64) ** 2)))


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    data, rate = sf.read(corpus_file(*SPEECH_48K), dtype="float32")
    assert rate == 48000 and data.ndim == 1
    return data


def _write(path: Path, left: np.ndarray, right: np.ndarray, rate: int = 48000) -> Path:
    sf.write(path, np.stack([left, right], 1), rate, subtype="FLOAT")
    return path


def _stream(view: AnalysisView) -> np.ndarray:
    return np.concatenate(list(view))


def _noise_like(speech: np.ndarray, snr_db: float) -> np.ndarray:
    noise, rate = sf.read(corpus_file(*NOISE_16K), dtype="float32")
    noise = soxr.resample(noise, rate, 48000)[: len(speech)]
    gain = math.sqrt(np.mean(speech.astype(np.float64) ** 2) / np.mean(noise.astype(np.float64) ** 2))
    return (noise * gain * 10 ** (-snr_db / 20)).astype(np.float32)


def test_silent_left_real_speech(tmp_path: Path, speech: np.ndarray) -> None:
    path = _write(tmp_path / "left_silent.wav", np.zeros_like(speech), speech)
    expected = resample(speech, in_rate=48000, out_rate=16000)

    best = AnalysisView(path, block_s=1.3)
    assert best.rate == 16000 and best.info.channels == 2
    assert (best.choice.method, best.choice.reason) == ("channel", "first_channel_silent")
    assert best.choice.first_channel_silent
    out = _stream(best)
    assert len(out) == output_length(len(speech), in_rate=48000, out_rate=16000)
    np.testing.assert_allclose(out, expected, atol=1e-4)

    first = AnalysisView(path, channel_strategy="first", block_s=1.3)
    assert first.choice.method == "first" and first.choice.first_channel_silent
    heard = _stream(first)
    assert len(heard) == len(out)
    assert np.all(heard == 0.0)  # what a service reading only channel 0 hears


def test_anti_phase_real_speech(tmp_path: Path, speech: np.ndarray) -> None:
    path = _write(tmp_path / "anti.wav", speech, -speech)
    mean = _stream(AnalysisView(path, channel_strategy="mean"))
    assert np.max(np.abs(mean)) == 0.0  # the plain mean cancels exactly
    view = AnalysisView(path)
    assert (view.choice.method, view.choice.reason) == ("inverted_mean", "anti_phase")
    out = _stream(view)
    reference = resample(speech, in_rate=48000, out_rate=16000)
    assert _db(out) == pytest.approx(_db(reference), abs=1.0)
    np.testing.assert_allclose(out, reference, atol=1e-4)


def test_one_noisy_side_real_speech(tmp_path: Path, speech: np.ndarray) -> None:
    left = speech + _noise_like(speech, 30.0)
    right = speech + _noise_like(speech, 3.0)
    path = _write(tmp_path / "noisy_right.wav", left, right)
    view = AnalysisView(path)
    assert (view.choice.method, view.choice.reason, view.choice.weights) == (
        "channel",
        "channel_noisier",
        (1.0, 0.0),
    )
    np.testing.assert_allclose(_stream(view), resample(left, in_rate=48000, out_rate=16000), atol=1e-4)


def test_similar_channels_are_averaged(tmp_path: Path, speech: np.ndarray) -> None:
    rng = np.random.default_rng(4)
    left = speech + 1e-4 * rng.standard_normal(len(speech)).astype(np.float32)
    right = speech + 1e-4 * rng.standard_normal(len(speech)).astype(np.float32)
    path = _write(tmp_path / "similar.wav", left, right)
    view = AnalysisView(path)
    assert (view.choice.method, view.choice.reason) == ("mean", "channels_similar")
    expected = resample((left + right) / 2, in_rate=48000, out_rate=16000)
    np.testing.assert_allclose(_stream(view), expected, atol=1e-4)


@pytest.mark.parametrize("strategy", ["first", "mean", "best"])
@pytest.mark.parametrize(("start_s", "end_s"), [(0.0, None), (1.25, 4.0)])
def test_stream_equals_load_mono(
    tmp_path: Path, speech: np.ndarray, strategy: str, start_s: float, end_s: float | None
) -> None:
    rng = np.random.default_rng(5)
    right = 0.5 * speech + 0.01 * rng.standard_normal(len(speech)).astype(np.float32)
    path = _write(tmp_path / "pair.wav", speech, right)
    view = AnalysisView(path, channel_strategy=strategy, block_s=0.37, start_s=start_s, end_s=end_s)
    streamed = _stream(view)
    one_shot, rate, choice = load_mono(
        path, rate=16000, channel_strategy=strategy, start_s=start_s, end_s=end_s
    )
    assert rate == 16000
    assert choice.weights == view.choice.weights
    native = (len(speech) if end_s is None else round(end_s * 48000)) - round(start_s * 48000)
    assert len(streamed) == len(one_shot) == output_length(native, in_rate=48000, out_rate=16000)
    np.testing.assert_allclose(streamed, one_shot, atol=1e-4)


def test_mixed_blocks_pair_the_original_with_the_view(tmp_path: Path, speech: np.ndarray) -> None:
    right = 0.25 * speech
    path = _write(tmp_path / "pair.wav", speech, right)
    view = AnalysisView(path, block_s=0.5)
    pairs = [(native, mono) for native, _, mono in view.mixed_blocks()]
    block_frames = 24000
    assert all(native.shape == (block_frames, 2) for native, _ in pairs[:-1])
    assert 0 < pairs[-1][0].shape[0] <= block_frames
    native = np.concatenate([n for n, _ in pairs])
    np.testing.assert_array_equal(native, np.stack([speech, right], 1))
    mono = np.concatenate([m for _, m in pairs])
    assert len(mono) == output_length(len(speech), in_rate=48000, out_rate=16000)
    np.testing.assert_allclose(mono, _stream(view), atol=0)  # same decode, same answer


def test_mono_file_at_its_own_rate_passes_through() -> None:
    path = corpus_file("speech", "pra_cmu_arctic_us_aew_a0001.wav")
    data, rate = sf.read(path, dtype="float32")
    assert rate == 16000
    view = AnalysisView(path, block_s=0.25)
    assert (view.choice.method, view.choice.reason, view.choice.stats) == ("mono", "mono_input", None)
    np.testing.assert_array_equal(_stream(view), data)
    loaded, out_rate, _ = load_mono(path)
    assert out_rate == 16000
    np.testing.assert_array_equal(loaded, data)


def test_mono_file_at_another_rate() -> None:
    path = corpus_file("speech", "sb_ljspeech_LJ050-0131.wav")
    data, rate = sf.read(path, dtype="float32")
    assert rate == 22050
    out = _stream(AnalysisView(path))
    assert len(out) == output_length(len(data), in_rate=22050, out_rate=16000)
    np.testing.assert_allclose(out, resample(data, in_rate=22050, out_rate=16000), atol=1e-4)


def test_load_mono_native_rate_and_window(tmp_path: Path, speech: np.ndarray) -> None:
    path = _write(tmp_path / "left_silent.wav", np.zeros_like(speech), speech)
    mono, rate, choice = load_mono(path, start_s=1.0, end_s=2.5)
    assert rate == 48000 and choice.reason == "first_channel_silent"
    np.testing.assert_array_equal(mono, speech[48000:120000])
    mono24, rate24, _ = load_mono(path, rate=24000, start_s=1.0, end_s=2.5)
    assert rate24 == 24000 and len(mono24) == 36000


def test_given_choice_is_used_as_is(tmp_path: Path, speech: np.ndarray) -> None:
    path = _write(tmp_path / "left_silent.wav", np.zeros_like(speech), speech)
    first = examine_channels(path, channel_strategy="first")
    view = AnalysisView(path, choice=first)
    assert view.choice is first
    assert np.all(_stream(view) == 0.0)
    mono, _, used = load_mono(path, choice=first)
    assert used is first and np.all(mono == 0.0)


def test_truncated_file_warning_reaches_the_view(tmp_path: Path) -> None:
    path = tmp_path / "cut.wav"
    x = (0.1 * np.random.default_rng(6).standard_normal((16000 * 4, 2))).astype(np.float32)
    sf.write(path, x, 16000, subtype="PCM_16")
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])  # the header still promises 4 s
    view = AnalysisView(path)
    assert view.warnings == []
    out = _stream(view)
    assert view.warnings == ["truncated"]
    assert 1.9 * 16000 < len(out) < 2.1 * 16000


def test_an_abandoned_iteration_can_be_restarted(tmp_path: Path, speech: np.ndarray) -> None:
    path = _write(tmp_path / "pair.wav", speech, speech)
    view = AnalysisView(path, block_s=0.5)
    first_block = next(iter(view))
    again = _stream(view)
    np.testing.assert_array_equal(again[: len(first_block)], first_block)
    assert len(again) == output_length(len(speech), in_rate=48000, out_rate=16000)


def test_range_past_the_end_yields_nothing(tmp_path: Path, speech: np.ndarray) -> None:
    path = _write(tmp_path / "pair.wav", speech[:48000], -speech[:48000])
    view = AnalysisView(path, start_s=5.0)
    assert view.choice.reason == "all_silent"
    assert list(view) == []
    assert list(view.mixed_blocks()) == []
