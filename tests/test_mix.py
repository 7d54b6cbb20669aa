"""Tests for pipeline.audio.mix: channel measurements, the three strategies and the mixing itself."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from _corpus import corpus_file
from _signals import sine_amplitude, tone

from pipeline.audio.mix import (
    DIGITAL_SILENCE_DBFS,
    ChannelChoice,
    choose_channels,
    examine_channels,
    mix,
)

SR = 16000


def _db(x: np.ndarray) -> float:
    return 10 * math.log10(float(np.mean(np.asarray(x, dtype=np.float64) ** 2)))


def _tone(freq: float, seconds: float, rms_dbfs: float) -> np.ndarray:
    """A sine with the given RMS level. 1 kHz and 500 Hz fit whole periods into a 20 ms frame at 16 kHz."""
    return tone(freq, seconds, SR, sine_amplitude(rms_dbfs), dtype=np.float32)


def _bursts(*, speech_dbfs: float, floor_dbfs: float, seed: int, seconds: float = 4.0) -> np.ndarray:
    """Speech stand-in: 0.5 s tone bursts alternating with 0.5 s gaps, over white noise at ``floor_dbfs``."""
    n = int(SR * seconds)
    gate = (np.arange(n) // (SR // 2)) % 2 == 0
    tone = _tone(1000, seconds, speech_dbfs) * gate
    noise = np.random.default_rng(seed).standard_normal(n) * 10 ** (floor_dbfs / 20)
    return (tone + noise).astype(np.float32)


def _measured(block: np.ndarray, strategy: str = "best", rate: int = SR) -> ChannelChoice:
    """The choice for a multi-channel ``block``, with the measurements it was made on (``.stats``)."""
    return choose_channels([block], channels=block.shape[1], sample_rate=rate, channel_strategy=strategy)


def _steady(
    levels: list[float], floors: list[float] | None = None, *, signs: list[float] | None = None
) -> np.ndarray:
    """Channels of one 1 kHz tone, in phase (times ``signs``): 2 s at each channel's floor, then 2 s at its
    level (``floors`` None: 4 s at the level). Every 20 ms frame holds whole periods, so each channel's
    level (-120: digital silence), noise floor and speech level are exactly the ones given."""

    def channel(level: float, floor: float) -> np.ndarray:
        if level <= DIGITAL_SILENCE_DBFS:
            return np.zeros(4 * SR, dtype=np.float32)
        return np.concatenate([_tone(1000, 2.0, floor), _tone(1000, 2.0, level)])

    floors = floors or levels
    signs = signs or [1.0] * len(levels)
    return np.stack([s * channel(lv, f) for lv, f, s in zip(levels, floors, signs, strict=True)], 1)


# --- the measurements: known answers --------------------------------------------------------------


def test_levels_floor_and_speech_level_of_a_two_level_tone() -> None:
    # 2 s at -60 dBFS then 2 s at -20 dBFS, whole periods per 20 ms frame: every frame RMS is exact, so
    # the 10th percentile is -60 and the 95th -20; the overall RMS is the mean of the two powers.
    quiet = _tone(1000, 2.0, -60.0)
    loud = _tone(1000, 2.0, -20.0)
    x = np.concatenate([quiet, loud])
    stats = _measured(np.stack([x, x], 1)).stats
    expected_level = 10 * math.log10((1e-6 + 1e-2) / 2)
    assert stats["level_dbfs"][0] == pytest.approx(expected_level, abs=0.01)
    assert stats["noise_floor_dbfs"][0] == pytest.approx(-60.0, abs=0.01)
    assert stats["speech_level_dbfs"][0] == pytest.approx(-20.0, abs=0.01)
    assert stats["snr_db"][0] == pytest.approx(40.0, abs=0.02)
    assert stats["seconds_examined"] == pytest.approx(4.0)
    assert stats["correlation"] == pytest.approx(1.0) and stats["mean_loss_db"] == 0.0


def test_block_boundaries_do_not_change_the_result() -> None:
    rng = np.random.default_rng(3)
    x = np.stack([_bursts(speech_dbfs=-20, floor_dbfs=-55, seed=1), 0.3 * rng.standard_normal(4 * SR)], 1)
    whole = _measured(x).stats
    sizes = [1, 319, 7000, 5, 33333]
    blocks, pos, i = [], 0, 0
    while pos < len(x):
        blocks.append(x[pos : pos + sizes[i % len(sizes)]])
        pos += sizes[i % len(sizes)]
        i += 1
    pieces = choose_channels(iter(blocks), channels=2, sample_rate=SR).stats
    assert pieces["level_dbfs"] == pytest.approx(whole["level_dbfs"], abs=0.011)
    assert pieces["noise_floor_dbfs"] == pytest.approx(whole["noise_floor_dbfs"], abs=0.011)
    assert pieces["speech_level_dbfs"] == pytest.approx(whole["speech_level_dbfs"], abs=0.011)
    assert pieces["correlation"] == pytest.approx(whole["correlation"], abs=1e-3)


def test_correlation_and_mean_loss_known_answers() -> None:
    x = _bursts(speech_dbfs=-20, floor_dbfs=-50, seed=2)
    same = _measured(np.stack([x, 0.5 * x], 1)).stats
    assert same["correlation"] == pytest.approx(1.0, abs=1e-4)
    # mean of x and x/2 is 0.75 x: 20*log10(0.75) = -2.50 dB against the louder channel
    assert same["mean_loss_db"] == pytest.approx(20 * math.log10(0.75), abs=0.01)
    anti = _measured(np.stack([x, -x], 1)).stats
    assert anti["correlation"] == pytest.approx(-1.0, abs=1e-4)
    assert anti["mean_loss_db"] == pytest.approx(DIGITAL_SILENCE_DBFS - anti["level_dbfs"][0], abs=0.01)
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((2, 8 * SR))
    independent = _measured(np.stack([a, b], 1)).stats
    # Sample correlation of independent noise has standard deviation 1/sqrt(N); allow 5 of those.
    assert abs(independent["correlation"]) < 5 / math.sqrt(8 * SR)
    assert independent["mean_loss_db"] == pytest.approx(-3.01, abs=0.05)


def test_digital_silence_is_floored_never_infinite() -> None:
    x = np.zeros((SR, 2), np.float32)
    x[:, 1] = _tone(1000, 1.0, -20.0)
    choice = _measured(x)
    stats = choice.stats
    assert stats["level_dbfs"][0] == DIGITAL_SILENCE_DBFS
    assert stats["noise_floor_dbfs"][0] == DIGITAL_SILENCE_DBFS
    assert stats["correlation"] is None  # one channel is silent
    text = json.dumps(choice.to_dict(), allow_nan=False)
    assert json.loads(text)["stats"]["level_dbfs"] == [-120.0, -20.0]


def test_non_finite_samples_count_as_zero() -> None:
    x = _tone(1000, 1.0, -20.0)
    x[100] = np.nan
    x[200] = np.inf
    stats = _measured(np.stack([x, x], 1)).stats
    assert math.isfinite(stats["level_dbfs"][0])
    assert stats["level_dbfs"][0] == pytest.approx(-20.0, abs=0.01)


def test_shorter_than_one_frame_uses_the_partial_frame() -> None:
    x = _tone(1000, 0.01, -30.0)  # 10 ms: half a frame, whole periods
    stats = _measured(np.stack([x, x], 1)).stats
    assert stats["noise_floor_dbfs"][0] == pytest.approx(-30.0, abs=0.01)
    assert stats["speech_level_dbfs"][0] == pytest.approx(-30.0, abs=0.01)


# --- the decision rules, on channels of exactly known levels --------------------------------------


def test_mono_input_is_mono_whatever_the_strategy() -> None:
    for strategy in ("first", "mean", "best"):
        choice = choose_channels(None, channels=1, channel_strategy=strategy)
        assert (choice.method, choice.weights, choice.reason) == ("mono", (1.0,), "mono_input")
        assert choice.first_channel_silent is False


def test_silent_first_channel_uses_the_other_and_is_flagged() -> None:
    choice = _measured(_steady([-118.0, -20.0]))
    assert choice.method == "channel"
    assert choice.weights == (0.0, 1.0)
    assert choice.reason == "first_channel_silent"
    assert choice.first_channel_silent is True
    assert choice.detail == "channel 0 is silent (-118 dBFS); using channel 1"


def test_silent_second_channel_uses_the_first() -> None:
    choice = _measured(_steady([-25.0, -120.0]))
    assert (choice.method, choice.weights, choice.reason) == ("channel", (1.0, 0.0), "channel_silent")
    assert choice.first_channel_silent is False


@pytest.mark.parametrize(
    ("levels", "silent"),
    [
        ([-10.0, -50.5], True),  # 40.5 dB below the other: near-silent although above -60 dBFS
        ([-10.0, -49.5], False),  # 39.5 dB below: kept
        ([-30.0, -60.5], True),  # below -60 dBFS
        ([-30.0, -59.5], False),
    ],
)
def test_silence_thresholds(levels: list[float], silent: bool) -> None:
    choice = _measured(_steady(levels))
    if silent:
        assert (choice.reason, choice.weights) == ("channel_silent", (1.0, 0.0))
    else:
        assert (choice.reason, choice.method) == ("channels_similar", "mean")


def test_everything_quiet_keeps_the_channel_that_has_something() -> None:
    choice = _measured(_steady([-120.0, -70.0]))
    assert (choice.reason, choice.weights) == ("all_silent", (0.0, 1.0))
    assert choice.first_channel_silent is True
    both = _measured(_steady([-120.0, -120.0]))
    assert (both.reason, both.method, both.weights) == ("all_silent", "mean", (0.5, 0.5))
    assert both.first_channel_silent is False


@pytest.mark.parametrize(
    ("floors", "speech", "expected"),
    [
        ([-50.0, -40.0], [-20.0, -20.0], (1.0, 0.0)),  # SNR 30 vs 20: channel 1 noisier
        ([-43.0, -50.0], [-20.0, -20.0], (0.0, 1.0)),  # SNR 23 vs 30: channel 0 noisier
        ([-50.0, -45.0], [-20.0, -20.0], None),  # 5 dB worse: similar
        (
            [-50.0, -39.0],
            [-20.0, -14.0],
            (1.0, 0.0),
        ),  # SNR 30 vs 25, but floor 11 dB higher at similar speech
        ([-50.0, -39.0], [-20.0, -13.0], None),  # speech 7 dB apart: floor rule does not apply, SNR 30 vs 26
    ],
)
def test_noisier_channel_rules(
    floors: list[float], speech: list[float], expected: tuple[float, float] | None
) -> None:
    choice = _measured(_steady(speech, floors))
    assert (choice.stats["noise_floor_dbfs"], choice.stats["speech_level_dbfs"]) == (floors, speech)
    snr = choice.stats["snr_db"]
    if expected is None:
        assert (choice.method, choice.reason) == ("mean", "channels_similar")
    else:
        assert (choice.method, choice.reason, choice.weights) == ("channel", "channel_noisier", expected)
        assert f"{max(snr):.0f} dB" in choice.detail


def test_snr_difference_of_exactly_six_db_is_not_noisier() -> None:
    choice = _measured(_steady([-20.0, -20.0], [-50.0, -44.0]))
    assert choice.method == "mean"


def test_anti_phase_pair_becomes_inverted_mean_and_recovers_the_level() -> None:
    x = _bursts(speech_dbfs=-20, floor_dbfs=-60, seed=7)
    block = np.stack([x, -x], 1)
    choice = _measured(block)
    mean = mix(block, _measured(block, "mean"))
    assert np.max(np.abs(mean)) < 1e-6  # the plain mean cancels completely
    assert (choice.method, choice.reason) == ("inverted_mean", "anti_phase")
    assert choice.weights == (0.5, -0.5)  # equal levels: channel 0 keeps its polarity
    out = mix(block, choice)
    assert _db(out) == pytest.approx(_db(x), abs=1.0)
    np.testing.assert_allclose(out, x, atol=1e-6)
    assert "inverted" in choice.detail and "-1.00" in choice.detail


def test_anti_phase_at_different_levels_uses_the_louder_channel() -> None:
    x = _bursts(speech_dbfs=-20, floor_dbfs=-60, seed=8)
    # channel 1 is 0.3 of channel 0 with the sign flipped: mean is 0.35 x, 9.1 dB below channel 0
    block = np.stack([x, -0.3 * x], 1)
    choice = _measured(block)
    stats = choice.stats
    assert stats["mean_loss_db"] == pytest.approx(20 * math.log10(0.35), abs=0.01)
    assert (choice.method, choice.reason, choice.weights) == ("channel", "anti_phase", (1.0, 0.0))
    assert "levels differ by 10 dB" in choice.detail


def test_partly_anti_correlated_pair_uses_the_louder_channel() -> None:
    rng = np.random.default_rng(9)
    a, n = rng.standard_normal((2, 4 * SR)) * 0.05
    b = -(0.6 * a + 0.8 * n)  # correlation -0.6, same level; mean power is 0.2 of a channel: -7 dB
    block = np.stack([a, b], 1).astype(np.float32)
    choice = _measured(block)
    stats = choice.stats
    louder = int(np.argmax(stats["level_dbfs"]))
    assert (choice.method, choice.reason) == ("channel", "anti_phase")
    assert choice.weights[louder] == 1.0


def test_loss_without_cancellation_is_not_anti_phase() -> None:
    # Orthogonal tones 26 dB apart: the mean loses 6.01 dB against the louder one through level alone.
    block = np.stack([_tone(1000, 2.0, -20.0), _tone(500, 2.0, -46.0)], 1)
    choice = _measured(block)
    stats = choice.stats
    assert stats["mean_loss_db"] < -6.0
    assert (choice.method, choice.reason) == ("mean", "channels_similar")


def test_similar_channels_are_averaged() -> None:
    rng = np.random.default_rng(11)
    x = _bursts(speech_dbfs=-20, floor_dbfs=-70, seed=12)
    block = np.stack([x + 0.003 * rng.standard_normal(len(x)), x + 0.003 * rng.standard_normal(len(x))], 1)
    choice = _measured(block.astype(np.float32))
    stats = choice.stats
    assert stats["correlation"] > 0.9
    assert (choice.method, choice.reason, choice.weights) == ("mean", "channels_similar", (0.5, 0.5))
    np.testing.assert_allclose(mix(block, choice), block.mean(axis=1), atol=1e-6)


def test_requested_strategies_are_obeyed_and_warn_about_a_silent_first_channel() -> None:
    block = _steady([-120.0, -20.0])
    first = _measured(block, "first")
    assert (first.method, first.weights, first.reason) == ("first", (1.0, 0.0), "requested")
    assert first.first_channel_silent is True
    assert "hears nothing" in first.detail
    mean = _measured(block, "mean")
    assert (mean.method, mean.weights) == ("mean", (0.5, 0.5))
    unmeasured = choose_channels(None, channels=2, channel_strategy="first")
    assert unmeasured.first_channel_silent is False and unmeasured.stats is None


def test_anti_phase_pair_at_levels_one_db_apart_becomes_inverted_mean() -> None:
    choice = _measured(_steady([-20.0, -21.0], signs=[1.0, -1.0]))
    assert (choice.method, choice.weights) == ("inverted_mean", (0.5, -0.5))


# --- more than two channels -----------------------------------------------------------------------


def test_four_channels_drop_silent_and_noisy_and_average_the_rest() -> None:
    rng = np.random.default_rng(13)
    x = _bursts(speech_dbfs=-20, floor_dbfs=-70, seed=14)
    clean_a = x + 0.0003 * rng.standard_normal(len(x))
    clean_b = x + 0.0003 * rng.standard_normal(len(x))
    noisy = x + 0.03 * rng.standard_normal(len(x))  # floor about -30 dBFS against -70
    block = np.stack([np.zeros_like(x), clean_a, noisy, clean_b], 1).astype(np.float32)
    choice = _measured(block)
    assert choice.weights == (0.0, 0.5, 0.0, 0.5)
    assert choice.method == "mean"
    assert choice.reason == "first_channel_silent" and choice.first_channel_silent
    assert "channel 2 is noisier" in choice.detail


def test_four_channels_cancelling_fall_back_to_the_loudest() -> None:
    x = _bursts(speech_dbfs=-20, floor_dbfs=-70, seed=15)
    block = np.stack([x, -x, 0.9 * x, -0.9 * x], 1)
    choice = _measured(block)
    assert (choice.method, choice.reason, choice.weights) == ("channel", "anti_phase", (1.0, 0.0, 0.0, 0.0))


@pytest.mark.parametrize("name", ["openair_genesis6_studio_live_room.wav", "openair_st_margarets_church.wav"])
def test_b_format_room_response_is_treated_as_four_microphones(name: str) -> None:
    data, rate = sf.read(corpus_file("rir", name), dtype="float32", always_2d=True)
    assert data.shape[1] == 4
    choice = _measured(data, rate=rate)
    stats = choice.stats
    levels = [_db(data[:, i]) for i in range(4)]
    np.testing.assert_allclose(stats["level_dbfs"], levels, atol=0.01)
    as64 = data.astype(np.float64)
    cross = float(np.sum(as64.T @ as64) - np.sum(as64**2))
    # Facts about these files, measured here independently of the module: every channel is well above
    # -60 dBFS and within 40 dB of the others, the SNR estimates lie within 6 dB, and the cross terms are
    # positive (the mean does not cancel). The documented behaviour is then the plain mean of all four.
    assert min(levels) > -60 and max(levels) - min(levels) < 40
    assert max(stats["snr_db"]) - min(stats["snr_db"]) <= 6
    assert cross > 0
    assert (choice.method, choice.reason, choice.weights) == ("mean", "channels_similar", (0.25,) * 4)
    mean_power = float(np.mean(as64.mean(axis=1) ** 2))
    assert _db(mix(data, choice)) == pytest.approx(10 * math.log10(mean_power), abs=0.01)


# --- real speech ----------------------------------------------------------------------------------


def _speech(name: str) -> tuple[np.ndarray, int]:
    data, rate = sf.read(corpus_file("speech", name), dtype="float32")
    return data, rate


def test_real_speech_in_right_channel_only() -> None:
    speech, rate = _speech("pra_cmu_arctic_us_aew_a0001.wav")
    block = np.stack([np.zeros_like(speech), speech], 1)
    best = _measured(block, rate=rate)
    assert best.reason == "first_channel_silent" and best.first_channel_silent
    np.testing.assert_array_equal(mix(block, best), speech)
    first = _measured(block, "first", rate=rate)
    assert np.all(mix(block, first) == 0.0)  # what CosyVoice would hear


def test_real_speech_with_one_noisy_side_picks_the_clean_side() -> None:
    speech, rate = _speech("resem_librispeech_196-122150-0000.flac")
    noise, noise_rate = sf.read(corpus_file("noise", "pra_exercise_bike.wav"), dtype="float32")
    noise = (
        soxr.resample(noise, noise_rate, rate)[: len(speech)] if noise_rate != rate else noise[: len(speech)]
    )
    gain = math.sqrt(np.mean(speech.astype(np.float64) ** 2) / np.mean(noise.astype(np.float64) ** 2))

    def at(snr_db: float) -> np.ndarray:
        return (speech + noise * gain * 10 ** (-snr_db / 20)).astype(np.float32)

    block = np.stack([at(5.0), at(30.0)], 1)  # left 25 dB noisier than right
    choice = _measured(block, rate=rate)
    stats = choice.stats
    assert stats["snr_db"][1] - stats["snr_db"][0] > 6.0
    assert (choice.method, choice.reason, choice.weights) == ("channel", "channel_noisier", (0.0, 1.0))


# --- mix ------------------------------------------------------------------------------------------


def test_mix_shapes_and_types() -> None:
    block = np.arange(12, dtype=np.int16).reshape(6, 2)
    choice = choose_channels(None, channels=2, channel_strategy="mean")
    out = mix(block, choice)
    assert out.dtype == np.float32 and out.shape == (6,)
    np.testing.assert_allclose(out, [0.5, 2.5, 4.5, 6.5, 8.5, 10.5])
    mono = choose_channels(None, channels=1)
    x = np.linspace(-1, 1, 5, dtype=np.float32)
    np.testing.assert_array_equal(mix(x, mono), x)


def test_choice_to_dict_is_plain_json() -> None:
    x = _bursts(speech_dbfs=-20, floor_dbfs=-60, seed=16)
    d = json.loads(json.dumps(_measured(np.stack([x, -x], 1)).to_dict(), allow_nan=False))
    assert d["method"] == "inverted_mean" and d["weights"] == [0.5, -0.5]
    assert d["stats"]["correlation"] == pytest.approx(-1.0, abs=1e-4)
    assert d["stats"]["seconds_examined"] == pytest.approx(4.0)
    assert "power_matrix" not in d["stats"]


# --- examine_channels on files --------------------------------------------------------------------


def _late_tone_file(path: Path) -> Path:
    """150 s at 8 kHz: channel 0 silent throughout, channel 1 a -20 dBFS tone only from 120 s on."""
    rate = 8000
    right = np.zeros(150 * rate, np.float32)
    t = np.arange(30 * rate) / rate
    right[120 * rate :] = math.sqrt(2) * 0.1 * np.sin(2 * np.pi * 500 * t)
    sf.write(path, np.stack([np.zeros_like(right), right], 1), rate, subtype="PCM_16")
    return path


def test_examine_long_file_samples_windows_spread_over_the_whole_file(tmp_path: Path) -> None:
    path = _late_tone_file(tmp_path / "late.wav")
    choice = examine_channels(path)
    # 12 windows of 5 s centred at (k + 0.5) / 12 of 150 s. The tone (from 120 s) covers 1.25 s of the
    # window around 118.75 s and all of those around 131.25 s and 143.75 s: 11.25 s of the 60 s read.
    assert choice.stats is not None
    assert choice.stats["seconds_examined"] == pytest.approx(60.0, abs=1e-3)
    assert choice.stats["level_dbfs"][1] == pytest.approx(-20 + 10 * math.log10(11.25 / 60), abs=0.05)
    assert (choice.reason, choice.weights) == ("first_channel_silent", (0.0, 1.0))
    assert choice.first_channel_silent


def test_examine_reads_a_short_range_whole_and_honours_the_range(tmp_path: Path) -> None:
    path = _late_tone_file(tmp_path / "late.wav")
    whole = examine_channels(path, max_seconds=200.0)
    assert whole.stats is not None and whole.stats["seconds_examined"] == pytest.approx(150.0)
    assert whole.stats["level_dbfs"][1] == pytest.approx(-20 + 10 * math.log10(30 / 150), abs=0.05)
    early = examine_channels(path, end_s=100.0)  # the tone starts at 120 s: nothing to hear here
    assert early.stats is not None and early.stats["level_dbfs"] == [-120.0, -120.0]
    assert early.reason == "all_silent" and not early.first_channel_silent
    late = examine_channels(path, start_s=125.0, end_s=135.0)
    assert late.stats is not None and late.stats["seconds_examined"] == pytest.approx(10.0)
    assert late.stats["level_dbfs"][1] == pytest.approx(-20.0, abs=0.05)
    past_end = examine_channels(path, start_s=200.0)
    assert past_end.stats is not None and past_end.stats["seconds_examined"] == 0.0


def test_examine_mono_file_reads_nothing() -> None:
    choice = examine_channels(
        corpus_file("speech", "pra_cmu_arctic_us_aew_a0001.wav"), channel_strategy="first"
    )
    assert (choice.method, choice.reason, choice.stats) == ("mono", "mono_input", None)
