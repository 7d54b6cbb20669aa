"""Frame energy, the speech band, noise floor, DC offset, the noise under the speech, mask-based SNR and
WADA-SNR: known answers and real speech, including noise with no pauses and low-frequency noise."""

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
    HIGHPASS_HZ,
    DcOffsetMeter,
    FrameEnergy,
    SpeechBandFilter,
    dc_offset,
    frame_db,
    frame_power,
    noise_floor_dbfs,
    speech_band,
)
from pipeline.analysis.snr import (
    SNR_MAX_DB,
    SNR_MIN_DB,
    WadaAccumulator,
    frame_noise,
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


def test_speech_band_has_the_power_response_of_the_render_high_pass():
    """Known answer: the render runs a 70 Hz 4th-order Butterworth forwards and backwards, -24 dB at 50 Hz,
    -6 dB at 70 Hz (docs/render.md); the stream runs it twice forwards: the same power response. A 50 Hz
    and a 1 kHz sine of equal power: 1 kHz passes, 50 Hz loses 24 dB; streaming in odd blocks gives the
    one-shot answer."""
    from scipy import signal

    from pipeline.analysis.energy import highpass_sos

    n = 4 * RATE
    t = np.arange(n) / RATE
    for hz, gain_db in ((50.0, -24.0), (HIGHPASS_HZ, -6.0), (1000.0, 0.0)):
        x = np.sin(2 * np.pi * hz * t)
        y = speech_band(x)[RATE:]  # the filter settled
        assert 10 * np.log10(np.mean(y**2) / 0.5) == pytest.approx(gain_db, abs=0.3), hz
        render = signal.sosfiltfilt(highpass_sos(RATE), x)[RATE:-RATE]
        assert np.mean(y**2) == pytest.approx(np.mean(render**2), rel=0.02)
    x = np.random.default_rng(4).standard_normal(n)
    band = SpeechBandFilter()
    streamed = np.concatenate([band.process(x[i : i + 1001]) for i in range(0, n, 1001)])
    np.testing.assert_allclose(streamed, speech_band(x), rtol=1e-9, atol=1e-12)


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


def test_frame_noise_known_answers():
    """A pause frame is its own noise; a speech frame takes the pauses within 2 s, else the noise track,
    else all the pauses (muted ones too); with neither pauses nor a track it is unknown (NaN)."""
    power = np.full(1000, 1e-4)
    mask = np.zeros(1000, dtype=bool)
    mask[100:900] = True  # speech from 1 s to 9 s: frames 400-600 are more than 2 s from any pause
    power[:100] = 1e-6
    power[900:] = 4e-6
    track = np.full(1000, 2e-6)
    noise = frame_noise(power, mask, track)
    assert noise[50] == 1e-6 and noise[950] == 4e-6
    assert noise[200] == pytest.approx(1e-6)  # the pause before it, 1.0-1.5 s away
    assert noise[800] == pytest.approx(4e-6)
    assert noise[500] == 2e-6  # far from both: the track
    without_track = frame_noise(power, mask)
    assert without_track[500] == pytest.approx((1e-6 + 4e-6) / 2)  # the guarded pauses 0-0.95, 9.05-10 s
    muted = power.copy()
    muted[~mask] = 0.0
    assert frame_noise(muted, mask, track)[200] == 2e-6  # muted pauses are no noise level to borrow
    assert frame_noise(muted, mask)[200] == 0.0
    assert np.isnan(frame_noise(power, np.ones(1000, dtype=bool))).all()


def test_infrasonic_thump_inside_speech_is_removed_by_the_render_and_not_counted():
    """A 300 Hz tone (power 0.02) over frames 100-400, white noise 30 dB under it everywhere, and an 8 Hz
    thump 3x the tone's power inside it: the render's high-pass takes the thump out (more than 100 dB down at 8 Hz), so
    the SNR of what the service hears is the white noise's, 30 dB (in its speech band)."""
    rng = np.random.default_rng(11)
    n = 7 * RATE
    t = np.arange(n) / RATE
    white = np.sqrt(0.02 / 1000) * rng.standard_normal(n)
    thump = np.sqrt(2 * 0.06) * np.sin(2 * np.pi * 8 * t) * ((t >= 2.0) & (t < 2.5))
    x = 0.2 * np.sin(2 * np.pi * 300 * t) * ((t >= 1.0) & (t < 4.0)) + white + thump
    mask = np.zeros(700, dtype=bool)
    mask[100:400] = True
    truth = 10 * np.log10(
        np.mean(speech_band(0.2 * np.sin(2 * np.pi * 300 * t))[RATE:] ** 2) / np.mean(speech_band(white) ** 2)
    )
    assert vad_snr_db(frame_power(speech_band(x)), mask).metrics["snr_db"] == pytest.approx(truth, abs=0.5)
    assert frame_power(x)[200:250].mean() > 0.06  # the thump is there in the full band


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


@pytest.mark.parametrize("meter", [wada_snr_db, frame_power, speech_band, dc_offset])
def test_one_shot_meters_reject_a_bad_signal_by_name(meter) -> None:
    from pipeline.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match=r"^x "):
        meter(np.array([0.0, np.nan, 0.1]))
    with pytest.raises(InvalidArgument, match=r"^x "):
        meter(np.zeros(100, dtype=np.int16))
