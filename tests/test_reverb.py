"""Tests for pipeline.analysis.reverb: known-answer decays, streaming invariance, and rank validation.

The validation material is real dry speech from ../shared/data/speech convolved with synthetic
exponential-decay room responses of known T60 and with three measured room responses, whose true T60 is
computed here from the response itself (Schroeder backward integration, T20 fit).
"""

from __future__ import annotations

import itertools
import math
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from _corpus import corpus_file
from scipy.signal import fftconvolve
from scipy.stats import spearmanr

from pipeline.analysis.base import FRAME_SAMPLES
from pipeline.analysis.reverb import (
    BAND_EDGES_HZ,
    MIN_FREE_DECAYS,
    ReverbMeter,
    reverb_score_from_decay_time,
)

FS = 16000
DRY_FILES = (
    "resem_librispeech_150-126107-0000.flac",
    "resem_librispeech_196-122150-0000.flac",
    "resem_librispeech_1246-124548-0000.flac",
)
SYNTHETIC_T60 = (0.2, 0.3, 0.45, 0.6, 0.8, 1.0, 1.2)
MEASURED_RIRS = (
    "sa_rir_clap.wav",
    "openair_genesis6_studio_live_room.wav",
    "openair_st_margarets_church.wav",
)
SNR_DB = 40.0


# ---------------------------------------------------------------- helpers


def _load_16k(path: Path) -> np.ndarray:
    """Channel 0 of an audio file, resampled to 16 kHz, float64."""
    audio, rate = sf.read(path, always_2d=True, dtype="float64")
    channel = audio[:, 0]
    return channel if rate == FS else soxr.resample(channel, rate, FS)


def _synthetic_rir(t60_s: float, seed: int) -> np.ndarray:
    """Direct-path spike plus white noise under an exp(-6.9 t / T60) amplitude envelope."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(1.3 * t60_s * FS)) / FS
    rir = 0.05 * rng.standard_normal(t.size) * np.exp(-6.9 * t / t60_s)
    rir[0] = 1.0
    return rir


def _schroeder_t20(rir: np.ndarray) -> float:
    """T60 of a room response by Schroeder backward integration and a -5..-25 dB (T20) line fit.

    The measurement noise floor (mean power of the last tenth) is subtracted and the response truncated
    where its 10 ms envelope first falls to 5 dB above that floor, so that noise does not bend the curve.
    """
    energy = rir[int(np.argmax(np.abs(rir))) :] ** 2
    noise = float(np.mean(energy[-max(energy.size // 10, 1) :]))
    block = FS // 100
    n_blocks = energy.size // block
    envelope = energy[: n_blocks * block].reshape(n_blocks, block).mean(axis=1)
    near_floor = np.flatnonzero(envelope <= noise * 10 ** (5 / 10))
    cut = int(near_floor[0]) * block if near_floor.size else energy.size
    decay = np.clip(energy[:cut] - noise, 0.0, None)
    edc = np.cumsum(decay[::-1])[::-1]
    edc_db = 10 * np.log10(edc / edc[0] + 1e-300)
    t = np.arange(cut) / FS
    fit = (edc_db <= -5) & (edc_db >= -25)
    slope = np.polyfit(t[fit], edc_db[fit], 1)[0]
    return -60.0 / slope


def _reverberate(dry: np.ndarray, rir: np.ndarray, seed: int) -> np.ndarray:
    """Dry speech convolved with ``rir``, normalised, plus white noise at ``SNR_DB``; float32."""
    wet = fftconvolve(dry, rir)[: dry.size + FS // 2]
    wet = wet / np.sqrt(np.mean(wet**2)) * 0.05
    rng = np.random.default_rng(1000 + seed)
    wet = wet + rng.standard_normal(wet.size) * 0.05 * 10 ** (-SNR_DB / 20)
    return wet.astype(np.float32)


def _burst_train(t60_s: float, *, seed: int, seconds: float = 20.0, snr_db: float = 40.0) -> np.ndarray:
    """Noise bursts (250 ms on, max(1 s, 1.2 T60) off) convolved with an exponential decay of ``t60_s``."""
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    source = np.zeros(n)
    on, off = int(0.25 * FS), int(max(1.0, 1.2 * t60_s) * FS)
    start = FS // 10
    while start + on < n:
        source[start : start + on] = rng.standard_normal(on)
        start += on + off
    t = np.arange(int(1.5 * t60_s * FS)) / FS
    decay = rng.standard_normal(t.size) * np.exp(-6.9 * t / t60_s)
    wet = fftconvolve(source, decay)[:n]
    wet = wet / np.sqrt(np.mean(wet**2)) * 0.1
    wet = wet + rng.standard_normal(n) * 0.1 * 10 ** (-snr_db / 20)
    return wet.astype(np.float32)


def _measure(signal: np.ndarray, mask: np.ndarray | None = None) -> dict:
    meter = ReverbMeter(sample_rate=FS)
    meter.process(signal)
    return meter.finish(mask).metrics


@pytest.fixture(scope="module")
def rooms() -> list[tuple[str, float, np.ndarray]]:
    """(name, true T60 in s, reverberant speech) for the dry reference and ten rooms."""
    parts = []
    for name in DRY_FILES:
        speech = _load_16k(corpus_file("speech", name))
        parts += [speech / np.sqrt(np.mean(speech**2)), np.zeros(FS // 4)]
    dry = np.concatenate(parts)[: 40 * FS]
    material = [("dry", 0.0, _reverberate(dry, np.array([1.0]), 0))]
    for index, t60 in enumerate(SYNTHETIC_T60, start=1):
        rir = _synthetic_rir(t60, seed=index)
        material.append((f"synthetic {t60:.2f} s", _schroeder_t20(rir), _reverberate(dry, rir, index)))
    for index, name in enumerate(MEASURED_RIRS, start=20):
        rir = _load_16k(corpus_file("rir", name))
        material.append((name.removesuffix(".wav"), _schroeder_t20(rir), _reverberate(dry, rir, index)))
    return material


@pytest.fixture(scope="module")
def room_results(rooms: list[tuple[str, float, np.ndarray]]) -> list[dict]:
    return [_measure(signal) for _, _, signal in rooms]


# ---------------------------------------------------------------- known answers


def test_band_power_of_a_sine_is_its_mean_square() -> None:
    # A 700 Hz sine of amplitude 0.5 lies in the 500-1000 Hz band: mean square 0.125 there, and the Hann
    # window's sidelobes (>= 4 bins away) keep the other bands more than 40 dB lower.
    t = np.arange(FS) / FS
    meter = ReverbMeter()
    meter.process((0.5 * np.sin(2 * np.pi * 700 * t)).astype(np.float32))
    powers = meter.band_powers()[5:]  # the first frame's window still holds silence
    assert powers.shape == (FS // FRAME_SAMPLES - 5, len(BAND_EDGES_HZ) - 1)
    np.testing.assert_allclose(powers[:, 1], 0.125, rtol=0.02)
    assert np.all(np.delete(powers, 1, axis=1) < 0.125e-4)


@pytest.mark.parametrize("t60", [0.3, 0.6, 1.0])
def test_rt60_of_decaying_noise_bursts_is_within_20_percent(t60: float) -> None:
    values = _measure(_burst_train(t60, seed=int(t60 * 10)))
    assert values["reverb_free_decays"] >= MIN_FREE_DECAYS
    assert values["rt60_s"] == pytest.approx(t60, rel=0.2)


def test_longer_decay_gives_higher_score_on_bursts() -> None:
    scores = [_measure(_burst_train(t60, seed=3))["reverb_score"] for t60 in (0.3, 0.6, 1.0)]
    assert scores[0] < scores[1] < scores[2]


def test_speech_mask_limits_the_decays_used() -> None:
    signal = _burst_train(0.6, seed=4)
    unmasked = _measure(signal)
    n_frames = signal.size // FRAME_SAMPLES
    mask = np.zeros(n_frames, dtype=bool)
    mask[: n_frames // 2] = True  # only the first half counts as speech
    masked = _measure(signal, mask)
    assert masked["reverb_free_decays"] < 0.7 * unmasked["reverb_free_decays"]
    assert masked["rt60_s"] == pytest.approx(0.6, rel=0.2)


def test_result_does_not_depend_on_the_level() -> None:
    # every threshold is relative to the band's own noise floor, so a 40 dB quieter copy reads the same
    signal = _burst_train(0.6, seed=9, seconds=10.0)
    loud, quiet = _measure(signal), _measure(signal * np.float32(0.01))
    assert quiet["reverb_free_decays"] == loud["reverb_free_decays"]
    assert quiet["rt60_s"] == pytest.approx(loud["rt60_s"], abs=2e-3)
    assert quiet["reverb_score"] == pytest.approx(loud["reverb_score"], abs=2e-3)


def test_noise_gated_recording_with_digital_silence_is_measured() -> None:
    # a gate zeroes everything 80 dB below the peak: the gaps become digital silence, which must not be
    # taken as the noise floor (more than 5 % of the frames are exact zeros)
    signal = _burst_train(0.6, seed=10, seconds=20.0, snr_db=math.inf)
    signal[np.abs(signal) < 1e-4] = 0.0
    frames = signal[: signal.size // FRAME_SAMPLES * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES)
    assert np.mean(np.all(frames == 0.0, axis=1)) > 0.1
    assert _measure(signal)["rt60_s"] == pytest.approx(0.6, rel=0.2)


def test_stationary_noise_has_no_free_decays() -> None:
    rng = np.random.default_rng(5)
    meter = ReverbMeter()
    meter.process((0.01 * rng.standard_normal(10 * FS)).astype(np.float32))
    result = meter.finish()
    assert result.metrics["rt60_s"] is None
    assert result.null_reasons["rt60_s"].startswith("not_measured: too few free decays (found 0, need 5)")
    assert result.metrics["reverb_score"] is None
    assert result.null_reasons["reverb_score"].startswith("not_measured:")


def test_too_little_audio_is_not_measured() -> None:
    meter = ReverbMeter()
    meter.process(np.zeros(FS // 10, dtype=np.float32))
    result = meter.finish()
    assert result.metrics["rt60_s"] is None and result.metrics["reverb_score"] is None
    assert result.null_reasons["rt60_s"].startswith("not_measured: too little audio")


def test_mask_without_speech_gives_no_speech_reason() -> None:
    signal = _burst_train(0.5, seed=6, seconds=5.0)
    meter = ReverbMeter()
    meter.process(signal)
    result = meter.finish(np.zeros(meter.n_frames, dtype=bool))
    assert result.metrics["rt60_s"] is None
    assert result.null_reasons["reverb_score"].startswith("no_speech:")


def test_score_mapping_known_values() -> None:
    # 1 / (1 + (0.5 / t) ** 3)
    assert reverb_score_from_decay_time(0.5) == pytest.approx(0.5)
    assert reverb_score_from_decay_time(0.25) == pytest.approx(1 / 9)
    assert reverb_score_from_decay_time(1.0) == pytest.approx(8 / 9)
    grid = [reverb_score_from_decay_time(t) for t in np.geomspace(0.05, 5.0, 50)]
    assert all(0.0 < s < 1.0 for s in grid)
    assert all(a < b for a, b in itertools.pairwise(grid))


# ---------------------------------------------------------------- streaming and validation of arguments


def test_block_size_does_not_change_the_result() -> None:
    signal = _burst_train(0.5, seed=7, seconds=8.0)
    whole = ReverbMeter()
    whole.process(signal)
    streamed = ReverbMeter()
    rng = np.random.default_rng(8)
    position = 0
    sizes = [1, 159, 160, 161, 0]
    while position < signal.size:
        size = sizes.pop(0) if sizes else int(rng.integers(1, 5000))
        streamed.process(signal[position : position + size])
        position += size
    assert streamed.n_frames == whole.n_frames == signal.size // FRAME_SAMPLES
    np.testing.assert_allclose(streamed.band_powers(), whole.band_powers(), rtol=1e-5, atol=1e-12)
    a, b = whole.finish().metrics, streamed.finish().metrics
    assert a["reverb_free_decays"] == b["reverb_free_decays"]
    assert a["rt60_s"] == pytest.approx(b["rt60_s"], abs=1e-3)
    assert a["reverb_score"] == pytest.approx(b["reverb_score"], abs=1e-3)


# ---------------------------------------------------------------- validation on real speech


def test_schroeder_helper_recovers_synthetic_t60() -> None:
    for index, t60 in enumerate(SYNTHETIC_T60, start=1):
        assert _schroeder_t20(_synthetic_rir(t60, seed=index)) == pytest.approx(t60, rel=0.06)


def test_reverb_score_ranks_rooms_by_true_t60(rooms: list, room_results: list[dict]) -> None:
    true_t60 = [t60 for _, t60, _ in rooms[1:]]
    scores = [r["reverb_score"] for r in room_results]
    assert all(s is not None and 0.0 <= s <= 1.0 for s in scores)
    rho = spearmanr(true_t60, scores[1:]).statistic
    assert rho >= 0.8, f"Spearman {rho:.3f}: " + ", ".join(
        f"{name} {t60:.2f}->{s:.2f}" for (name, t60, _), s in zip(rooms, scores, strict=True)
    )
    assert all(scores[0] < s for s in scores[1:]), "the dry version must score lowest"


def test_rt60_ranks_rooms_by_true_t60(rooms: list, room_results: list[dict]) -> None:
    pairs = [(t60, r["rt60_s"]) for (_, t60, _), r in zip(rooms[1:], room_results[1:], strict=True)]
    measured = [(t, e) for t, e in pairs if e is not None]
    assert len(measured) >= 6
    rho = spearmanr(*zip(*measured, strict=True)).statistic
    assert rho >= 0.8, f"Spearman {rho:.3f}: {pairs}"


def test_rt60_of_synthetic_rooms_from_045_s_is_within_30_percent(
    rooms: list, room_results: list[dict]
) -> None:
    # the documented accuracy on speech: free decays of speech are slower than the room's below ~0.4 s
    for (name, t60, _), result in zip(rooms, room_results, strict=True):
        if name.startswith("synthetic") and t60 >= 0.44:
            assert result["rt60_s"] == pytest.approx(t60, rel=0.3), name


def test_speech_mask_from_the_dry_speech_keeps_the_ranking(rooms: list) -> None:
    dry = rooms[0][2].astype(np.float64)
    n_frames = dry.size // FRAME_SAMPLES
    frame_db = 10 * np.log10(np.mean(dry[: n_frames * FRAME_SAMPLES].reshape(n_frames, -1) ** 2, axis=1))
    speech = frame_db > frame_db.max() - 45.0
    scores = []
    for _, _, signal in rooms:
        mask = np.zeros(signal.size // FRAME_SAMPLES, dtype=bool)
        mask[: speech.size] = speech
        scores.append(_measure(signal, mask)["reverb_score"])
    rho = spearmanr([t for _, t, _ in rooms[1:]], scores[1:]).statistic
    assert rho >= 0.8
    assert all(scores[0] < s for s in scores[1:])


def test_finish_of_an_hour_needs_little_memory() -> None:
    """An hour of decaying bursts (the same 10 s again and again): finish() works on one band's frames at
    a time (2.9 MB of float64 for an hour), never on a copy of all the stored powers."""
    block = _burst_train(0.6, seed=11, seconds=10.0)
    meter = ReverbMeter()
    for _ in range(360):
        meter.process(block)
    mask = np.ones(meter.n_frames, dtype=bool)
    tracemalloc.start()
    try:
        values = meter.finish(mask).metrics
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert values["rt60_s"] == pytest.approx(0.6, rel=0.2)
    assert peak < 20e6
