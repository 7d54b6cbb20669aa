"""Effective bandwidth: low-passed noise and chirps with known cutoffs, and real speech at known bands."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
import soundfile as sf
import soxr

from pipeline.analysis.bandwidth import BandwidthMeter, bandwidth_class, find_cliff
from pipeline.errors import InvalidArgument

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SPEECH = DATA / "speech"
LIBRI = [
    "resem_librispeech_196-122150-0000.flac",
    "resem_librispeech_150-126107-0000.flac",
    "resem_librispeech_3080-5032-0006.flac",
]


def measure(
    x: np.ndarray, rate: int, *, block: int = 7777, speech_mask: np.ndarray | None = None
) -> tuple[float | None, str | None]:
    meter = BandwidthMeter(sample_rate=rate)
    samples = np.asarray(x, dtype=np.float32)
    for start in range(0, samples.shape[0], block):
        meter.process(samples[start : start + block])
    values = meter.finish(speech_mask=speech_mask).values
    return values["bandwidth_hz"], values["bandwidth_class"]


def lowpass(x: np.ndarray, cutoff_hz: float, rate: int) -> np.ndarray:
    """Elliptic low-pass (0.1 dB ripple, 80 dB stop band), run forwards and backwards: a sharp cliff."""
    sos = scipy.signal.ellip(12, 0.1, 80, cutoff_hz / (rate / 2), output="sos")
    return scipy.signal.sosfiltfilt(sos, x)


def read_mono(name: str) -> tuple[np.ndarray, int]:
    x, rate = sf.read(SPEECH / name, dtype="float64")
    return (x.mean(axis=1) if x.ndim == 2 else x), rate


def add_noise(x: np.ndarray, snr_db: float, kind: str, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(x.shape[0])
    if kind == "white":
        noise = white
    else:  # pink: 1/f power
        spectrum = np.fft.rfft(white)
        f = np.arange(spectrum.shape[0], dtype=np.float64)
        f[0] = 1.0
        noise = np.fft.irfft(spectrum / np.sqrt(f), x.shape[0])
    return x + noise * np.sqrt(np.mean(x**2) / np.mean(noise**2) / 10 ** (snr_db / 10))


CUTOFFS = [
    (3400, "narrow"),
    (4000, "narrow"),
    (7000, "wide"),
    (8000, "wide"),
    (11000, "super_wide"),
    (16000, "full"),
]


@pytest.mark.parametrize(("cutoff_hz", "expected"), CUTOFFS)
def test_low_passed_white_noise_at_48k(cutoff_hz: int, expected: str) -> None:
    rate = 48000
    rng = np.random.default_rng(cutoff_hz)
    x = lowpass(rng.standard_normal(3 * rate), cutoff_hz, rate) * 0.1
    hz, cls = measure(x, rate)
    assert cls == expected
    # The cliff is reported at the upper edge of the last band within 10 dB of the pass band: the
    # filter's transition (a few tens of Hz) plus one band (100 Hz, 400 Hz above 12.8 kHz).
    assert cutoff_hz - 100 <= hz <= cutoff_hz + 500


@pytest.mark.parametrize(("cutoff_hz", "expected"), CUTOFFS)
def test_low_passed_repeating_chirp_at_48k(cutoff_hz: int, expected: str) -> None:
    rate = 48000
    t = np.arange(rate // 2) / rate
    sweep = scipy.signal.chirp(t, f0=50, t1=t[-1], f1=23500, method="linear")
    x = lowpass(np.tile(sweep, 6), cutoff_hz, rate) * 0.3
    every_frame = np.ones(300, dtype=bool)  # a sweep is not loudest anywhere: average all of it
    hz, cls = measure(x, rate, speech_mask=every_frame)
    assert cls == expected
    assert cutoff_hz - 100 <= hz <= cutoff_hz + 500


def test_full_band_16k_file_is_wide_at_nyquist() -> None:
    rng = np.random.default_rng(1)
    assert measure(rng.standard_normal(3 * 16000) * 0.1, 16000) == (8000.0, "wide")
    assert measure(rng.standard_normal(3 * 8000) * 0.1, 8000) == (4000.0, "narrow")


def test_rate_not_divisible_by_25_and_one_sample_blocks_agree_with_whole_array() -> None:
    rate = 32001  # 40 ms segments are 1280 or 1281 samples: the gather path
    rng = np.random.default_rng(2)
    x = lowpass(rng.standard_normal(rate), 7000, rate).astype(np.float32) * 0.1
    whole = BandwidthMeter(sample_rate=rate)
    whole.process(x)
    pieces = BandwidthMeter(sample_rate=rate)
    for start in range(0, 5000, 1):
        pieces.process(x[start : start + 1])
    pieces.process(x[5000:])
    np.testing.assert_allclose(pieces.long_term_spectrum(), whole.long_term_spectrum(), rtol=0, atol=1e-9)
    assert whole.finish().values["bandwidth_class"] == "wide"


@pytest.mark.parametrize("name", LIBRI)
def test_librispeech_upsampled_to_48k_is_wide_and_its_8k_version_narrow(name: str) -> None:
    x, rate = read_mono(name)
    assert rate == 16000
    hz, cls = measure(soxr.resample(x, rate, 48000), 48000)
    assert cls == "wide" and 7000 <= hz <= 8100
    phone = soxr.resample(soxr.resample(x, rate, 8000), 8000, 48000)
    hz, cls = measure(phone, 48000)
    assert cls == "narrow" and 3500 <= hz <= 4100


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sms_speech-male.wav", "full"),
        ("sms_speech-female.wav", "full"),
        ("aug_vctk_p286_011.wav", "full"),
        ("sb_ljspeech_LJ050-0131.wav", "super_wide"),  # 22.05 kHz: content to its Nyquist, 11 kHz
    ],
)
def test_real_recordings_at_their_native_rate(name: str, expected: str) -> None:
    x, rate = read_mono(name)
    assert measure(x, rate)[1] == expected


def test_mp3_shelf_near_16k_stays_full_and_a_low_bitrate_shelf_drops() -> None:
    """MP3 encoders low-pass: about 85 kbit/s shelves this file near 16 kHz (still ``full``), about
    45 kbit/s near 8 kHz (``wide`` or below: the service hears a band-limited voice)."""
    x, rate = read_mono("sms_speech-male.wav")

    def mp3(level: float) -> np.ndarray:
        buffer = io.BytesIO()
        sf.write(buffer, x, rate, format="MP3", compression_level=level)
        buffer.seek(0)
        return sf.read(buffer, dtype="float32")[0]

    hz, cls = measure(mp3(0.5), rate)
    assert cls == "full" and 14000 <= hz <= 18000
    hz, cls = measure(mp3(0.9), rate)
    assert cls in ("narrow", "wide") and hz < 8200


@pytest.mark.parametrize("kind", ["white", "pink"])
@pytest.mark.parametrize(("low_rate", "expected"), [(8000, "narrow"), (16000, "wide")])
def test_noise_added_before_upsampling_keeps_the_speech_band_class(
    kind: str, low_rate: int, expected: str
) -> None:
    rng = np.random.default_rng(low_rate)
    for name in [*LIBRI[:2], "sms_speech-male.wav"]:
        x, rate = read_mono(name)
        band_limited = soxr.resample(x, rate, low_rate)
        noisy = add_noise(band_limited, 20.0, kind, rng)
        assert measure(soxr.resample(noisy, low_rate, 48000), 48000)[1] == expected, name


def test_full_band_noise_after_band_limiting_counts_once_within_drop_db() -> None:
    """The documented rule: a floor less than ``drop_db`` (20 dB) under the band edge is content."""
    rate = 48000
    rng = np.random.default_rng(3)
    band = lowpass(rng.standard_normal(3 * rate), 4000, rate)  # flat to 4 kHz, per-Hz level = floor's
    floor = rng.standard_normal(3 * rate)
    assert measure(0.1 * band + 0.1 * 10 ** (-15 / 20) * floor, rate)[1] == "full"  # 15 dB step: no cliff
    assert measure(0.1 * band + 0.1 * 10 ** (-30 / 20) * floor, rate)[1] == "narrow"  # 30 dB step: cliff


def test_speech_mask_selects_the_frames_that_are_averaged() -> None:
    rate = 48000
    rng = np.random.default_rng(4)
    loud_narrow = lowpass(rng.standard_normal(2 * rate), 4000, rate) * 0.3
    quiet_full = rng.standard_normal(2 * rate) * 0.03
    x = np.concatenate([loud_narrow, quiet_full])
    assert measure(x, rate)[1] == "narrow"  # no mask: the loudest 30 % are all in the first half
    second_half = np.arange(400) >= 200
    assert measure(x, rate, speech_mask=second_half)[1] == "full"
    assert measure(x, rate, speech_mask=~second_half)[1] == "narrow"
    meter = BandwidthMeter(sample_rate=rate)
    meter.process(x.astype(np.float32))
    nothing = meter.finish(speech_mask=np.zeros(400, dtype=bool))
    assert nothing.values["bandwidth_hz"] is None
    assert nothing.null_reasons["bandwidth_hz"].startswith("no_speech:")


def test_silence_and_empty_input_give_none_with_reasons() -> None:
    meter = BandwidthMeter(sample_rate=48000)
    meter.process(np.zeros(48000, dtype=np.float32))
    silent = meter.finish()
    assert silent.values["bandwidth_class"] is None
    assert silent.null_reasons["bandwidth_class"].startswith("not_measured:")
    empty = BandwidthMeter(sample_rate=48000).finish()
    assert empty.values["bandwidth_hz"] is None
    assert empty.null_reasons["bandwidth_hz"].startswith("empty:")


def test_class_boundaries() -> None:
    assert bandwidth_class(4199.9) == "narrow"
    assert bandwidth_class(4200.0) == "wide"
    assert bandwidth_class(8199.0) == "wide"
    assert bandwidth_class(8200.0) == "super_wide"
    assert bandwidth_class(11999.0) == "super_wide"
    assert bandwidth_class(12000.0) == "full"
    with pytest.raises(InvalidArgument, match="bandwidth_hz"):
        bandwidth_class(-1.0)


def test_find_cliff_on_a_synthetic_spectrum() -> None:
    edges = np.arange(0.0, 24001.0, 100.0)
    tilt = -np.arange(240) * 0.1  # a smooth 10 dB per kHz roll-off is not a cliff
    assert find_cliff(tilt, edges) == 24000.0
    step = tilt.copy()
    step[70:] -= 25.0  # 25 dB step at 7 kHz
    assert find_cliff(step, edges) == 7000.0
    assert find_cliff(step, edges, drop_db=30.0) == 24000.0
    with pytest.raises(InvalidArgument, match="band_edges_hz"):
        find_cliff(step, edges[:-1])


def test_invalid_arguments() -> None:
    with pytest.raises(InvalidArgument, match="sample_rate"):
        BandwidthMeter(sample_rate=0)
    with pytest.raises(InvalidArgument, match="drop_db"):
        BandwidthMeter(sample_rate=48000, drop_db=0.5)
    meter = BandwidthMeter(sample_rate=48000)
    with pytest.raises(InvalidArgument, match="mono"):
        meter.process(np.zeros((100, 2), dtype=np.float32))
    with pytest.raises(InvalidArgument, match="NaN"):
        meter.process(np.array([0.0, np.nan], dtype=np.float32))
    with pytest.raises(InvalidArgument, match="dtype"):
        meter.process(np.zeros(10, dtype=np.int16))
    with pytest.raises(InvalidArgument, match="speech_mask"):
        meter.finish(speech_mask=np.zeros((2, 2), dtype=bool))
