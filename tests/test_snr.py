"""Frame energy (full and low band), noise floor, DC offset, mask-based SNR and WADA-SNR: known answers and
real speech, including bursty low-frequency noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from _corpus import corpus_file
from scipy.special import digamma

from pipeline.analysis.base import FRAME_SAMPLES
from pipeline.analysis.energy import (
    DB_FLOOR,
    DcOffsetMeter,
    FrameEnergy,
    LowBandEnergy,
    dc_offset,
    frame_db,
    frame_power,
    low_band_power,
    noise_floor_dbfs,
)
from pipeline.analysis.snr import (
    SNR_MAX_DB,
    SNR_MIN_DB,
    WadaAccumulator,
    low_band_weight,
    vad_snr_db,
    wada_snr_db,
    wada_table,
)
from pipeline.analysis.vad import smooth, speech_mask, webrtc_vad

RATE = 16000


# --- frame energy, noise floor, DC ------------------------------------------------------------------


def test_frame_energy_known_answer_and_streaming():
    t = np.arange(RATE) / RATE
    x = np.zeros(RATE + 100)
    x[:RATE] = 0.5 * np.sin(2 * np.pi * 1000 * t)  # 10 whole periods per 160-sample frame
    x[8000:9600] = 0.0  # ten silent frames
    meter = FrameEnergy()
    for start in range(0, x.size, 333):
        meter.process(x[start : start + 333])
    power = meter.finish()
    assert power.size == x.size // FRAME_SAMPLES  # the 100-sample tail is not a frame
    np.testing.assert_allclose(power, frame_power(x), rtol=1e-12, atol=0)
    loud = np.r_[0:50, 60:100]
    np.testing.assert_allclose(power[loud], 0.125, rtol=1e-9)
    db = frame_db(power)
    assert np.all(db[50:60] == DB_FLOOR)
    np.testing.assert_allclose(db[loud], 10 * np.log10(0.125), atol=1e-9)


def test_low_band_energy_known_answer_and_streaming():
    """A 5 Hz sine (power 0.005) under a 1 kHz sine 12 dB louder and a 120 Hz voice-like tone.

    Over whole periods of the 5 Hz sine the low-band mean power is 0.005 (the 4th-order 20 Hz low-pass
    passes 5 Hz at -0.00 dB); 1 kHz is about 136 dB down and 120 Hz about 62 dB (80 dB per decade), so the
    two leave less than 1e-7. Streaming in odd blocks gives the one-shot answer, with one value per frame
    of FrameEnergy.
    """
    n = 6 * RATE + 37
    t = np.arange(n) / RATE
    x = (
        0.1 * np.sin(2 * np.pi * 5 * t)
        + 0.4 * np.sin(2 * np.pi * 1000 * t)
        + 0.3 * np.sin(2 * np.pi * 120 * t)
    )
    meter = LowBandEnergy()
    for start in range(0, n, 1001):
        meter.process(x[start : start + 1001])
    low = meter.finish()
    assert low.size == frame_power(x).size == n // FRAME_SAMPLES
    np.testing.assert_allclose(low, low_band_power(x), rtol=1e-9, atol=1e-15)
    assert low[100:600].mean() == pytest.approx(0.005, rel=0.01)  # 1 s to 6 s: 25 periods, filter settled
    voice = 0.3 * np.sin(2 * np.pi * 120 * t)
    assert low_band_power(voice)[100:].mean() < 0.045 * 10 ** (-50 / 10)  # 120 Hz: more than 50 dB down


def test_noise_floor_of_white_noise_from_non_speech_frames():
    """20th percentile of 10 ms levels of white noise at -50 dBFS.

    A frame's mean power of 160 Gaussian samples has a relative spread of sqrt(2/160) (0.49 dB), so the
    20th percentile sits about 0.84 x 0.49 = 0.41 dB below -50 dB; the bursts marked as speech are ignored.
    """
    rng = np.random.default_rng(0)
    x = 10 ** (-50 / 20) * rng.standard_normal(5 * RATE)
    x[RATE : 2 * RATE] += 0.3 * rng.standard_normal(RATE)
    db = frame_db(frame_power(x))
    mask = np.zeros(db.size, dtype=bool)
    mask[100:200] = True
    floor = noise_floor_dbfs(db, mask).metrics["noise_floor_dbfs"]
    assert floor == pytest.approx(-50.41, abs=0.15)


def test_noise_floor_falls_back_to_all_frames_then_to_none():
    db = np.linspace(-80.0, -20.0, 101)  # evenly spread levels: the 10th percentile is -74 dB
    all_speech = np.ones(db.size, dtype=bool)
    assert noise_floor_dbfs(db, all_speech).metrics["noise_floor_dbfs"] == pytest.approx(-74.0)
    assert noise_floor_dbfs(db, None).metrics["noise_floor_dbfs"] == pytest.approx(-74.0)
    short = noise_floor_dbfs(db[:5], None)
    assert short.metrics["noise_floor_dbfs"] is None
    assert short.null_reasons["noise_floor_dbfs"].startswith("not_measured:")


def test_dc_offset_streaming_and_stereo():
    t = np.arange(RATE) / RATE
    mono = 0.01 + 0.5 * np.sin(2 * np.pi * 100 * t)  # whole periods: the sine's mean is zero
    assert dc_offset(mono).metrics["dc_offset"] == pytest.approx(0.01, abs=1e-12)
    stereo = np.stack([mono, -0.03 + 0.0 * t], axis=1)
    meter = DcOffsetMeter()
    for start in range(0, RATE, 999):
        meter.process(stereo[start : start + 999])
    assert meter.finish().metrics["dc_offset"] == pytest.approx(-0.03, abs=1e-12)
    assert DcOffsetMeter().finish().metrics["dc_offset"] is None


# --- mask-based SNR -----------------------------------------------------------------------------------


def test_tone_in_white_noise_at_20_db_with_known_mask():
    """Sine (power A^2/2) on for 2 s inside 4 s of white noise 20 dB below it, mask = where the tone is.

    Each mean is over 100+ frames of 160 samples, so its relative error is about sqrt(2 / 16000) (0.05 dB).
    """
    rng = np.random.default_rng(1)
    n = 4 * RATE
    t = np.arange(n) / RATE
    on = (t >= 1.0) & (t < 3.0)
    tone = 0.1 * np.sin(2 * np.pi * 440 * t) * on
    noise = np.sqrt(0.005 / 100.0) * rng.standard_normal(n)
    power = frame_power(tone + noise)
    mask = np.zeros(power.size, dtype=bool)
    mask[100:300] = True
    assert vad_snr_db(power, mask).metrics["snr_db"] == pytest.approx(20.0, abs=0.3)


def test_snr_edge_cases():
    power = np.full(100, 1e-4)
    mask = np.zeros(100, dtype=bool)
    mask[20:60] = True
    zero_noise = power.copy()
    zero_noise[~mask] = 0.0
    assert vad_snr_db(zero_noise, mask).metrics["snr_db"] == SNR_MAX_DB  # digital silence between speech
    assert vad_snr_db(power, mask).metrics["snr_db"] == SNR_MIN_DB  # "speech" no louder than the noise
    none = vad_snr_db(power, np.zeros(100, dtype=bool))
    assert none.metrics["snr_db"] is None and none.null_reasons["snr_db"].startswith("no_speech:")
    full = vad_snr_db(power, np.ones(100, dtype=bool))
    assert full.metrics["snr_db"] is None and full.null_reasons["snr_db"].startswith("not_measured:")


def test_low_band_weight_ramp():
    """The low band's excess during speech, relative to the speech power, from -15 dB (0) to -5 dB (1)."""
    assert low_band_weight(10**-1.0, 0.0, 1.0) == pytest.approx(0.5)
    assert low_band_weight(10**-0.4, 0.0, 1.0) == 1.0  # -4 dB
    assert low_band_weight(10**-1.6, 0.0, 1.0) == 0.0  # -16 dB
    assert low_band_weight(0.5, 0.5, 1.0) == 0.0  # no excess over the pauses' low band


def _thump_scene(thump_power: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Known-answer scene: a 300 Hz tone (power 0.02) on over frames 100-400 of 700, white noise 30 dB
    under it everywhere, and an 8 Hz "thump" of ``thump_power`` over frames 200-250, inside the speech.

    Returns frame power, low-band power, the mask (where the tone is) and the true SNR: tone power over
    the mean noise power (white + thump spread over the whole 7 s).
    """
    rng = np.random.default_rng(11)
    n = 7 * RATE
    t = np.arange(n) / RATE
    on = (t >= 1.0) & (t < 4.0)
    thump_on = (t >= 2.0) & (t < 2.5)
    white = np.sqrt(0.02 / 1000) * rng.standard_normal(n)
    thump = np.sqrt(2 * thump_power) * np.sin(2 * np.pi * 8 * t) * thump_on
    x = 0.2 * np.sin(2 * np.pi * 300 * t) * on + white + thump
    mask = np.zeros(700, dtype=bool)
    mask[100:400] = True
    true_snr = 10 * np.log10(0.02 / (0.02 / 1000 + thump_power * 50 / 700))
    return frame_power(x), low_band_power(x), mask, true_snr


def test_low_band_noise_during_speech_is_counted():
    """A thump 3x the speech power for 0.5 s inside the speech (6.7 dB true SNR; its excess over the
    speech frames is 3 x 50 / 300 = -3 dB of the speech, so it counts in full). Between the words only
    the white noise is seen (about 30 dB); reading the low band in every frame recovers the truth."""
    power, low, mask, true_snr = _thump_scene(0.06)
    assert true_snr == pytest.approx(6.67, abs=0.01)  # 0.02 / (2e-5 + 0.06 * 50 / 700)
    assert vad_snr_db(power, mask).metrics["snr_db"] > true_snr + 15.0
    assert vad_snr_db(power, mask, low_power=low).metrics["snr_db"] == pytest.approx(true_snr, abs=0.5)


def test_weak_low_band_energy_is_left_to_the_pauses():
    """A thump 25 dB under the speech (a breath or a pop on the microphone is 15-60 dB under it): its
    excess is -33 dB, under the ramp, so the estimate is exactly the one without the low band."""
    power, low, mask, _ = _thump_scene(0.02 * 10 ** (-25 / 10))
    without = vad_snr_db(power, mask).metrics["snr_db"]
    assert vad_snr_db(power, mask, low_power=low).metrics["snr_db"] == pytest.approx(without, abs=1e-9)


def test_silence_has_no_speech_and_no_snr():
    y = np.zeros(3 * RATE, dtype=np.float32)
    power = frame_power(y)
    mask = speech_mask(frame_db(power), webrtc_vad(y))
    assert not mask.any()
    m = vad_snr_db(power, mask)
    assert m.metrics["snr_db"] is None and m.null_reasons["snr_db"].startswith("no_speech:")


def _load16k(path: Path) -> np.ndarray:
    x, rate = sf.read(path, dtype="float32", always_2d=True)
    mono = x.mean(axis=1)
    return np.asarray(mono if rate == RATE else soxr.resample(mono, rate, RATE), dtype=np.float32)


def _reference_mask(clean: np.ndarray) -> np.ndarray:
    db = frame_db(frame_power(clean))
    return smooth(db > np.percentile(db, 99) - 35.0, min_speech_s=0.0, hangover_s=0.08, min_gap_s=0.1)


@pytest.fixture(scope="module")
def speech() -> tuple[np.ndarray, np.ndarray]:
    """Three real utterances at one level with 1 s silences, and their clean speech-active frames."""
    parts = [np.zeros(RATE // 2, dtype=np.float32)]
    for name in (
        "pra_cmu_arctic_us_aew_a0001.wav",
        "pra_cmu_arctic_us_axb_a0004.wav",
        "sb_ljspeech_LJ050-0131.wav",
    ):
        x = _load16k(corpus_file("speech", name))
        db = frame_db(frame_power(x))
        on = np.flatnonzero(db > np.percentile(db, 99) - 35.0)
        x = x[on[0] * FRAME_SAMPLES : (on[-1] + 1) * FRAME_SAMPLES]
        parts += [x * np.float32(0.05 / np.sqrt(np.mean(x**2))), np.zeros(RATE, dtype=np.float32)]
    clean = np.concatenate(parts)
    return clean, _reference_mask(clean)


def _noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "white":
        return rng.standard_normal(n)
    if kind == "pink":
        spectrum = np.fft.rfft(rng.standard_normal(n))
        f = np.arange(spectrum.size, dtype=np.float64)
        f[0] = 1.0
        return np.fft.irfft(spectrum / np.sqrt(f), n)
    return _load16k(corpus_file("noise", "pra_exercise_bike.wav"))[:n].astype(np.float64)


def _mix(clean: np.ndarray, active: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """True SNR (the definition in pipeline.analysis.snr): clean power over active frames / noise power."""
    gain = np.sqrt(frame_power(clean)[active].mean() / np.mean(noise**2) / 10 ** (snr_db / 10))
    return (clean + gain * noise).astype(np.float32)


@pytest.mark.parametrize("kind", ["white", "pink", "exercise_bike"])
@pytest.mark.parametrize("snr", [10.0, 20.0, 30.0])
def test_snr_of_real_speech_in_noise(speech, kind, snr):
    clean, active = speech
    y = _mix(clean, active, _noise(kind, clean.size, np.random.default_rng(2)), snr)
    power = frame_power(y)
    estimate = vad_snr_db(power, speech_mask(frame_db(power), webrtc_vad(y))).metrics["snr_db"]
    assert estimate == pytest.approx(snr, abs=2.5)


def test_snr_orders_real_speech_at_0_db_below_10_db(speech):
    clean, active = speech
    rng = np.random.default_rng(3)
    estimates = []
    for snr in (0.0, 10.0):
        y = _mix(clean, active, _noise("white", clean.size, rng), snr)
        power = frame_power(y)
        estimates.append(vad_snr_db(power, speech_mask(frame_db(power), webrtc_vad(y))).metrics["snr_db"])
    assert estimates[0] < 5.0 < estimates[1]


def _bursty_noise(n: int, *, burst_at_s: float) -> np.ndarray:
    """The DeepFilterNet sample noise (``dfn``, mostly infrasonic, one big thump at its start), looped
    forward and backward so that the thump lands at ``burst_at_s`` seconds."""
    dfn = _load16k(corpus_file("noise", "dfn_noise_freesound_573577.wav")).astype(np.float64)
    start = round(burst_at_s * RATE)
    after = np.tile(dfn, n // dfn.size + 1)[: n - start]
    before = np.tile(dfn[::-1], start // dfn.size + 1)[:start][::-1]
    return np.concatenate([before, after])


def test_snr_with_bursty_low_frequency_noise(speech):
    """Real speech with the real ``dfn`` noise at 5 dB, its thump inside the first sentence.

    Between the words that noise is 15-20 dB quieter than its mean, so the pauses alone read the SNR
    20 dB too high; with the low band read in every frame the error is under 1.5 dB.
    """
    clean, active = speech
    y = _mix(clean, active, _bursty_noise(clean.size, burst_at_s=2.0), 5.0)
    power = frame_power(y)
    mask = speech_mask(frame_db(power), webrtc_vad(y))
    assert vad_snr_db(power, mask).metrics["snr_db"] > 15.0
    measured = vad_snr_db(power, mask, low_power=low_band_power(y)).metrics["snr_db"]
    assert measured == pytest.approx(5.0, abs=1.5)


# --- WADA-SNR -----------------------------------------------------------------------------------------


def test_wada_table_ends_match_the_analytic_limits():
    """G tends to the Gaussian value at low SNR and to the Gamma(0.4) value at high SNR."""
    snrs, g = wada_table()
    gaussian = 0.5 * np.log(2 / np.pi) + (np.euler_gamma + np.log(2)) / 2
    gamma = np.log(0.4) - digamma(0.4)
    assert snrs[0] == -20.0 and snrs[-1] == 100.0
    assert g[0] == pytest.approx(gaussian, abs=0.01)
    assert g[-1] == pytest.approx(gamma, abs=0.03)
    assert np.all(np.diff(g) > 0)


def _gamma_speech_plus_noise(snr_db: float, n: int, rng: np.random.Generator) -> np.ndarray:
    speech = rng.gamma(0.4, 1.0, n) * rng.choice([-1.0, 1.0], n)
    noise = rng.standard_normal(n) * np.sqrt(0.4 * 1.4 / 10 ** (snr_db / 10))
    return 0.05 * (speech + noise)


@pytest.mark.parametrize("snr", [0.0, 10.0, 20.0])
def test_wada_on_gamma_speech_at_known_snr(snr):
    x = _gamma_speech_plus_noise(snr, 200_000, np.random.default_rng(11))
    assert wada_snr_db(x).metrics["wada_snr_db"] == pytest.approx(snr, abs=1.0)


def test_wada_ignores_digital_zeros_and_streams():
    x = _gamma_speech_plus_noise(10.0, 50_000, np.random.default_rng(12))
    padded = np.concatenate([np.zeros(30_000), x, np.zeros(20_000)])
    acc = WadaAccumulator()
    for start in range(0, padded.size, 777):
        acc.process(padded[start : start + 777])
    assert acc.finish().metrics["wada_snr_db"] == pytest.approx(
        wada_snr_db(x).metrics["wada_snr_db"], abs=1e-9
    )


def test_wada_on_pure_noise_is_low_and_on_silence_is_none():
    assert wada_snr_db(np.random.default_rng(13).standard_normal(100_000)).metrics["wada_snr_db"] < 0.0
    m = wada_snr_db(np.zeros(RATE))
    assert m.metrics["wada_snr_db"] is None and m.null_reasons["wada_snr_db"].startswith("not_measured:")


def test_wada_rises_with_snr_on_real_speech(speech):
    clean, active = speech
    rng = np.random.default_rng(14)
    values = [
        wada_snr_db(_mix(clean, active, _noise("white", clean.size, rng), snr)).metrics["wada_snr_db"]
        for snr in (0.0, 10.0, 20.0)
    ]
    assert values[0] < values[1] < values[2]
    assert values[1] == pytest.approx(10.0, abs=3.0)  # WADA is trustworthy around 10 dB (quality.md)


@pytest.mark.parametrize("meter", [wada_snr_db, frame_power, low_band_power, dc_offset])
def test_one_shot_meters_reject_a_bad_signal_by_name(meter) -> None:
    from pipeline.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match=r"^x "):
        meter(np.array([0.0, np.nan, 0.1]))
    with pytest.raises(InvalidArgument, match=r"^x "):
        meter(np.zeros(100, dtype=np.int16))
