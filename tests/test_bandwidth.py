"""Effective bandwidth: low-passed noise and chirps with known cutoffs, and real speech at known bands."""

from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pytest
import scipy.signal
import soundfile as sf
import soxr
from _corpus import corpus_file
from _signals import lowpass

from pipeline.analysis.bandwidth import BandwidthMeter, bandwidth_class, find_cliff, find_excess_cliff

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
    values = meter.finish(speech_mask=speech_mask).metrics
    return values["bandwidth_hz"], values["bandwidth_class"]


def read_mono(name: str) -> tuple[np.ndarray, int]:
    x, rate = sf.read(corpus_file("speech", name), dtype="float64")
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
    assert whole.finish().metrics["bandwidth_class"] == "wide"


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
    """The plain rule: a floor less than ``drop_db`` (20 dB) under the band edge is content. (The band here
    is stationary noise, indistinguishable from the floor in time, so no speech mask could change it.)"""
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
    assert nothing.metrics["bandwidth_hz"] is None
    assert nothing.null_reasons["bandwidth_hz"].startswith("no_speech:")


def test_silence_and_empty_input_give_none_with_reasons() -> None:
    meter = BandwidthMeter(sample_rate=48000)
    meter.process(np.zeros(48000, dtype=np.float32))
    silent = meter.finish()
    assert silent.metrics["bandwidth_class"] is None
    assert silent.null_reasons["bandwidth_class"].startswith("not_measured:")
    empty = BandwidthMeter(sample_rate=48000).finish()
    assert empty.metrics["bandwidth_hz"] is None
    assert empty.null_reasons["bandwidth_hz"].startswith("empty:")


def test_class_boundaries() -> None:
    assert bandwidth_class(4199.9) == "narrow"
    assert bandwidth_class(4200.0) == "wide"
    assert bandwidth_class(8199.0) == "wide"
    assert bandwidth_class(8200.0) == "super_wide"
    assert bandwidth_class(11999.0) == "super_wide"
    assert bandwidth_class(12000.0) == "full"


def test_find_cliff_on_a_synthetic_spectrum() -> None:
    edges = np.arange(0.0, 24001.0, 100.0)
    tilt = -np.arange(240) * 0.1  # a smooth 10 dB per kHz roll-off is not a cliff
    assert find_cliff(tilt, edges) == 24000.0
    step = tilt.copy()
    step[70:] -= 25.0  # 25 dB step at 7 kHz
    assert find_cliff(step, edges) == 7000.0
    assert find_cliff(step, edges, drop_db=30.0) == 24000.0


def clean_speech_mask(x: np.ndarray, rate: int) -> np.ndarray:
    """Speech frames of a clean recording on the 10 ms grid: within 35 dB of its loudest frame."""
    hop = rate // 100
    n = x.shape[0] // hop
    level = 10 * np.log10(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-20)
    return level > level.max() - 35.0


def add_hiss(x: np.ndarray, mask: np.ndarray, rate: int, snr_db: float, seed: int) -> np.ndarray:
    """White noise at ``snr_db`` under the speech frames' mean power, over the full band of ``rate``."""
    hop = rate // 100
    frames = x[: mask.shape[0] * hop].reshape(mask.shape[0], hop)
    speech_power = float(np.mean(frames[mask] ** 2))
    noise = np.random.default_rng(seed).standard_normal(x.shape[0])
    return x + noise * np.sqrt(speech_power / 10 ** (snr_db / 10))


@pytest.mark.parametrize("name", LIBRI)
@pytest.mark.parametrize(
    ("low_rate", "expected", "lowest_hz"), [(16000, "wide", 7000), (8000, "narrow", 3400)]
)
def test_speech_band_under_hiss_added_after_upsampling_is_found_with_a_speech_mask(
    name: str, low_rate: int, expected: str, lowest_hz: int
) -> None:
    """White noise over the whole 48 kHz band, added after band-limiting: at 20 dB SNR the plain spectrum
    falls only to the hiss at the band edge (no cliff), but the band where the speech rises above the
    hiss is found with the speech mask: 8 kHz for the 16 kHz file, 4 kHz for its telephone version."""
    x, rate = read_mono(name)
    y = soxr.resample(soxr.resample(x, rate, low_rate), low_rate, 48000)
    mask = clean_speech_mask(y, 48000)
    for snr_db in (20.0, 30.0):
        noisy = add_hiss(y, mask, 48000, snr_db, seed=low_rate)
        hz, cls = measure(noisy, 48000, speech_mask=mask)
        assert cls == expected and lowest_hz <= hz <= low_rate / 2 + 200, (snr_db, hz)
        if snr_db == 20.0:
            meter = BandwidthMeter(sample_rate=48000)
            meter.process(noisy.astype(np.float32))
            plain = meter.long_term_spectrum(speech_mask=mask)
            assert find_cliff(plain, meter.band_edges_hz) == 24000.0


@pytest.mark.parametrize("name", ["sms_speech-male.wav", "sms_speech-female.wav", "aug_vctk_p286_011.wav"])
def test_natively_full_band_speech_under_hiss_stays_full(name: str) -> None:
    """The same hiss over speech that really reaches 17-24 kHz: its high band sinks gradually into the
    noise, which is no cliff, at 20 dB SNR as at 30 dB."""
    x, rate = read_mono(name)
    mask = clean_speech_mask(x, rate)
    for snr_db in (20.0, 30.0):
        noisy = add_hiss(x, mask, rate, snr_db, seed=int(snr_db))
        assert measure(noisy, rate, speech_mask=mask)[1] == "full", snr_db


def bursts(rate: int, seconds: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """White noise switched on for 150 ms and off for 150 ms (speech-like modulation), and its mask."""
    n = int(seconds * rate)
    on = (np.arange(n) // int(0.15 * rate)) % 2 == 0
    mask = on[:: rate // 100][: n // (rate // 100)]
    return rng.standard_normal(n) * on, mask


def test_noise_aware_cliff_needs_a_modulated_band_above_a_stationary_floor() -> None:
    """Known answer: 4 kHz band-limited bursts over a white floor 12 dB under them (per hertz) have a
    sharp excess cliff at 4 kHz; the same band without the on/off modulation is indistinguishable from
    the floor in time, so there is no speech excess anywhere; under 2 s there is too little to judge."""
    rate = 48000
    rng = np.random.default_rng(5)
    signal, mask = bursts(rate, 6.0, rng)
    band = lowpass(signal, 4000, rate) * 0.1
    floor = rng.standard_normal(band.shape[0]) * 0.1 * 10 ** (-12 / 20)
    assert measure(band + floor, rate)[1] == "full"  # plain rule: a 12 dB step is no cliff
    hz, cls = measure(band + floor, rate, speech_mask=mask)
    assert cls == "narrow" and 3900 <= hz <= 4400
    steady = lowpass(rng.standard_normal(band.shape[0]), 4000, rate) * 0.1 / np.sqrt(2)
    assert measure(steady + floor, rate, speech_mask=mask)[1] == "full"
    short = int(1.5 * rate)
    assert measure((band + floor)[:short], rate, speech_mask=mask[:150])[1] == "full"


def test_gradual_roll_off_into_the_floor_is_not_a_noise_aware_cliff() -> None:
    """Bursts flat to 4 kHz that then fall 8 dB per kilohertz sink into a floor 12 dB under them without
    a cliff (``full``); the same bursts cut by a steep filter at 4 kHz do have one (``narrow``)."""
    rate = 48000
    rng = np.random.default_rng(6)
    signal, mask = bursts(rate, 6.0, rng)
    spectrum = np.fft.rfft(signal)
    f = np.fft.rfftfreq(signal.shape[0], 1 / rate)
    tilt = 10 ** (-8.0 * np.maximum(f - 4000.0, 0.0) / 1000.0 / 20.0)
    sloped = np.fft.irfft(spectrum * tilt, signal.shape[0]) * 0.1
    floor = rng.standard_normal(signal.shape[0]) * 0.1 * 10 ** (-12 / 20)
    assert measure(sloped + floor, rate, speech_mask=mask)[1] == "full"
    assert measure(lowpass(sloped, 4000, rate) + floor, rate, speech_mask=mask)[1] == "narrow"


@pytest.mark.parametrize("rate", [48000, 44100, 16000])
def test_speech_excess_of_stationary_noise_is_zero(rate: int) -> None:
    """The floor calibration: in white noise every band's 'speech' frames are the noise, so the excess
    is 0 dB; it is also independent of the level."""
    rng = np.random.default_rng(rate)
    x = rng.standard_normal(20 * rate).astype(np.float32)
    mask = (np.arange(2000) // 15) % 2 == 0
    excess = []
    for level in (0.3, 0.003):
        meter = BandwidthMeter(sample_rate=rate)
        meter.process(x * np.float32(level))
        values = meter.speech_excess_db(speech_mask=mask)
        assert values is not None
        excess.append(values)
        assert abs(float(np.median(values))) < 0.15
        assert float(np.max(np.abs(values))) < 1.0
    np.testing.assert_allclose(excess[0], excess[1], atol=0.5)


def test_find_excess_cliff_on_synthetic_excess() -> None:
    edges = np.arange(0.0, 24001.0, 100.0)
    lower = edges[:-1]
    step = np.where(lower < 7000, 10.0, 0.0)
    assert find_excess_cliff(step, edges) == 7000.0
    assert find_excess_cliff(np.where(lower < 7000, 10.0, 2.0), edges) is None  # speech left above
    assert find_excess_cliff(np.where(lower < 7000, 2.0, 0.0), edges) is None  # too little below
    ramp = np.clip(10.0 - (lower - 6000.0) / 300.0, 0.0, 10.0)  # 10 dB to 0 over 3 kHz: no cliff
    assert find_excess_cliff(ramp, edges) is None


def direct_codes(x: np.ndarray, rate: int, edges_hz: np.ndarray) -> np.ndarray:
    """The stored band levels by their definition, in float64: each 40 ms segment's Hann-windowed power
    spectrum, averaged over the FFT bins of each band, in 0.75 dB steps from -160 dB (one byte)."""
    size = rate // 25
    count = x.shape[0] // size
    window = np.hanning(size + 2)[1:-1]
    frames = x[: count * size].reshape(count, size).astype(np.float64) * window
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2 / np.sum(window**2)
    freqs = np.arange(power.shape[1]) * rate / size
    band = np.clip(np.searchsorted(edges_hz, freqs, side="right") - 1, 0, edges_hz.shape[0] - 2)
    levels = np.stack([power[:, band == b].mean(axis=1) for b in range(edges_hz.shape[0] - 1)], axis=1)
    return np.clip(np.round((10 * np.log10(levels + 1e-30) + 160.0) / 0.75), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("rate", [48000, 16000])
def test_segments_tiled_across_any_block_boundaries_match_their_definition(rate: int) -> None:
    rng = np.random.default_rng(5)
    # a cliff at 5 kHz onto a floor 40 dB down (far above float32 rounding), fading in
    x = lowpass(rng.standard_normal(3 * rate), 5000, rate) + 0.01 * rng.standard_normal(3 * rate)
    x = (x * np.linspace(0.01, 1.0, 3 * rate)).astype(np.float32)
    meter = BandwidthMeter(sample_rate=rate)
    position, sizes = 0, [1, rate // 25 - 1, rate // 25, rate // 25 + 1, 7, 0, 3 * rate // 5]
    while position < x.shape[0]:
        size = sizes.pop(0) if sizes else int(rng.integers(1, 2 * rate))
        meter.process(x[position : position + size])
        position += size
    stored = np.concatenate(meter._chunks)
    expected = direct_codes(x, rate, meter.band_edges_hz)
    assert stored.shape == expected.shape == (75, meter.band_edges_hz.shape[0] - 1)
    difference = np.abs(stored.astype(int) - expected)
    # float32 spectra against float64: a level within a hair of a step boundary may round the other way
    assert difference.max() <= 1
    assert np.mean(difference == 0) >= 0.999


def test_finish_of_an_hour_needs_little_memory() -> None:
    """An hour at 48 kHz through the noise-aware path (full-band noise, with a speech mask): finish()
    works chunk by chunk on the stored levels (14 MB of them), never on a copy of all of them."""
    rate = 48000
    rng = np.random.default_rng(6)
    block = (rng.standard_normal(10 * rate) * np.repeat(rng.uniform(0.01, 0.1, 100), rate // 10)).astype(
        np.float32
    )
    meter = BandwidthMeter(sample_rate=rate)
    for _ in range(360):
        meter.process(block)
    mask = np.tile(np.repeat(rng.random(100) < 0.5, 10), 360)
    tracemalloc.start()
    try:
        values = meter.finish(speech_mask=mask).metrics
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert values["bandwidth_class"] == "full"
    assert peak < 20e6


def test_block_bandwidths_show_where_a_recording_is_band_limited() -> None:
    # Real full-band speech (48 kHz), 4 s of it as recorded, then the same 4 s low-passed at 4 kHz, then
    # as recorded again: the blocks say full, narrow, full; the whole recording reads full.
    x, rate = read_mono("aug_vctk_p286_011.wav")
    part = x[: 4 * rate]
    y = np.concatenate([part, lowpass(part, 4000, rate), part])
    meter = BandwidthMeter(sample_rate=rate)
    meter.process(y.astype(np.float32))
    mask = np.ones(round(y.size / rate / 0.01), dtype=bool)
    blocks = meter.block_bandwidths(speech_mask=mask)
    assert blocks.shape == (3,)
    assert bandwidth_class(blocks[0]) == "full" and bandwidth_class(blocks[2]) == "full"
    assert 3500 <= blocks[1] <= 4300
    assert meter.finish(speech_mask=mask).metrics["bandwidth_class"] == "full"


def test_block_bandwidths_are_nan_without_enough_speech() -> None:
    rng = np.random.default_rng(3)
    y = lowpass(rng.standard_normal(8 * 16000) * 0.1, 3000, 16000).astype(np.float32)
    meter = BandwidthMeter(sample_rate=16000)
    meter.process(y)
    mask = np.zeros(800, dtype=bool)
    mask[:50] = True  # 0.5 s of "speech" in the first block, none in the second
    assert np.isnan(meter.block_bandwidths(speech_mask=mask)).all()
    mask[:200] = True  # 2 s in the first block
    blocks = meter.block_bandwidths(speech_mask=mask)
    assert 2800 <= blocks[0] <= 3300 and np.isnan(blocks[1])


def test_cliffs_of_many_spectra_at_once_equal_one_at_a_time() -> None:
    # Rows with cliffs at different edges, none, and a quiet floor: the batched search must keep each
    # row's own answer (rows leave the search when their cliff is found).
    from pipeline.analysis.bandwidth import find_cliffs

    edges = np.arange(0.0, 24001.0, 100.0)
    centres = (edges[:-1] + edges[1:]) / 2
    rng = np.random.default_rng(5)
    rows = []
    for cutoff in (3400.0, 4000.0, 7000.0, 11000.0, 16000.0, None):
        level = -20.0 - centres / 1000.0 + rng.normal(0.0, 1.0, centres.size)
        if cutoff is not None:
            level = np.where(centres > cutoff, -110.0 + rng.normal(0.0, 1.0, centres.size), level)
        rows.append(level)
    rows.append(np.full(centres.size, -150.0))
    spectra = np.array(rows)
    batched = find_cliffs(spectra, edges)
    assert batched.tolist() == [find_cliff(r, edges) for r in spectra]
    assert batched[0] == 3400.0 and batched[1] == 4000.0 and batched[4] == 16000.0 and batched[5] == 24000.0


@pytest.mark.parametrize(
    "name", ["sms_speech-male.wav", "resem_librispeech_196-122150-0000.flac", "msc_vctk_p238_165.wav"]
)
def test_16k_voice_under_full_band_white_noise_at_20_db_is_wide(name: str) -> None:
    """Issue 8 item 5: a voice cut at 8 kHz (16 kHz speech upsampled to 48 kHz) under white noise added
    afterwards at 20 dB SNR as the analysis measures it (in the 0-8 kHz band it sees; the noise over the
    whole 48 kHz band is three times as strong) is ``wide``: the bandwidth of the voice, not of the noise.
    Its mean speech excess near 8 kHz is only 1-3 dB over the hiss; its fricatives stand out."""
    from pipeline.analysis.fastpass import analyze_array

    x, rate = sf.read(corpus_file("speech", name), dtype="float64")
    x = x.mean(axis=1) if x.ndim == 2 else x
    y = soxr.resample(soxr.resample(x, rate, 16000), 16000, 48000)
    noisy = add_hiss(y, clean_speech_mask(y, 48000), 48000, 20.0 - 10 * np.log10(3.0), seed=1)
    metrics = analyze_array(noisy.astype(np.float32), 48000).metrics
    assert metrics["bandwidth_class"] == "wide", metrics["bandwidth_hz"]
    assert 7000 <= metrics["bandwidth_hz"] <= 8200
    assert abs(metrics["snr_db"] - 20.0) < 2.0  # the SNR it was built to have, as measured


def test_speech_peak_excess_of_stationary_noise_is_zero() -> None:
    """Known answer: in white noise the loudest tenth of the 'speech' segments is what the noise alone
    gives for its loudest tenth, so the peak excess reads about 0 dB in every band."""
    rng = np.random.default_rng(11)
    meter = BandwidthMeter(sample_rate=48000)
    meter.process(rng.standard_normal(20 * 48000).astype(np.float32) * np.float32(0.05))
    mask = (np.arange(2000) // 15) % 2 == 0
    values = meter.speech_peak_excess_db(speech_mask=mask)
    assert values is not None
    assert abs(float(np.median(values))) < 0.3
    assert float(np.max(np.abs(values))) < 1.5


def test_quiet_power_is_measured_once_until_more_segments_come_in():
    """finish() asks for the quiet share through both excesses: it is measured once, and again after more
    audio, equal to a fresh measure each time."""
    rng = np.random.default_rng(3)
    meter = BandwidthMeter(sample_rate=16000)
    meter.process((0.01 * rng.standard_normal(16000 * 20)).astype(np.float32))
    first = meter._quiet_power()
    assert first is not None and meter._quiet_power() is first
    np.testing.assert_array_equal(first, meter._measure_quiet_power())
    meter.process((0.1 * rng.standard_normal(16000 * 20)).astype(np.float32))
    second = meter._quiet_power()
    assert second is not first
    np.testing.assert_array_equal(second, meter._measure_quiet_power())
    assert not np.array_equal(first, second)
