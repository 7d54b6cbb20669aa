"""Tests for pipeline.audio.resample: lengths, stream/one-shot equality, tone fidelity, anti-aliasing."""

from __future__ import annotations

import numpy as np
import pytest
from _signals import tone

from pipeline.audio.resample import StreamResampler, output_length, resample
from pipeline.errors import InvalidArgument

RATE_PAIRS = [(44100, 16000), (48000, 16000), (16000, 24000), (8000, 48000)]


def _fit_sinusoid(y: np.ndarray, freq: float, rate: int) -> tuple[float, float]:
    """Least-squares amplitude of a sinusoid at exactly ``freq`` and the RMS of what is left over."""
    t = np.arange(len(y)) / rate
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, y.astype(np.float64), rcond=None)
    residual = y - basis @ coef
    return float(np.hypot(*coef)), float(np.sqrt(np.mean(residual**2)))


def _stream(x: np.ndarray, sizes: list[int], resampler: StreamResampler) -> list[np.ndarray]:
    parts = []
    pos = 0
    i = 0
    while pos < len(x):
        size = sizes[i % len(sizes)]
        parts.append(resampler.process(x[pos : pos + size]))
        pos += size
        i += 1
    parts.append(resampler.process(x[:0], last=True))
    return parts


def test_output_length_rounds_half_up() -> None:
    # 7 samples at 16 kHz -> 24 kHz is 10.5 samples: soxr (and we) round half up.
    assert output_length(7, in_rate=16000, out_rate=24000) == 11
    assert output_length(44100, in_rate=44100, out_rate=16000) == 16000
    assert output_length(0, in_rate=8000, out_rate=48000) == 0
    assert output_length(1, in_rate=8000, out_rate=48000) == 6


@pytest.mark.parametrize(("in_rate", "out_rate"), RATE_PAIRS)
@pytest.mark.parametrize("n", [0, 1, 7, 999, 12345])
def test_one_shot_length_is_exact(in_rate: int, out_rate: int, n: int) -> None:
    x = np.random.default_rng(n).standard_normal(n).astype(np.float32) * 0.1
    y = resample(x, in_rate=in_rate, out_rate=out_rate)
    assert y.dtype == np.float32
    assert y.shape == (int(np.floor(n * out_rate / in_rate + 0.5)),)


@pytest.mark.parametrize(("in_rate", "out_rate"), RATE_PAIRS)
def test_stream_equals_one_shot_and_has_the_exact_total_length(in_rate: int, out_rate: int) -> None:
    rng = np.random.default_rng(1)
    x = (0.1 * rng.standard_normal(in_rate + 777)).astype(np.float32)
    parts = _stream(x, [4096, 1, 0, 333, 10000], StreamResampler(in_rate, out_rate))
    streamed = np.concatenate(parts)
    whole = resample(x, in_rate=in_rate, out_rate=out_rate)
    assert len(streamed) == output_length(len(x), in_rate=in_rate, out_rate=out_rate)
    np.testing.assert_allclose(streamed, whole, atol=1e-4)
    # Before the flush the stream may only lag (filter delay), never run ahead of the signal.
    produced_before_flush = sum(len(p) for p in parts[:-1])
    assert produced_before_flush <= len(whole)


def test_stream_multichannel_keeps_channels_separate() -> None:
    x = np.stack(
        [tone(440, 0.5, 48000, dtype=np.float32), tone(1000, 0.5, 48000, 0.25, dtype=np.float32)], axis=1
    )
    resampler = StreamResampler(48000, 16000, channels=2)
    out = np.concatenate(_stream(x, [5000], resampler), axis=0)
    assert out.shape == (8000, 2)
    np.testing.assert_allclose(out[:, 0], resample(x[:, 0], in_rate=48000, out_rate=16000), atol=1e-4)
    amp1, _ = _fit_sinusoid(out[1000:-1000, 1], 1000, 16000)
    assert amp1 == pytest.approx(0.25, rel=1e-3)


@pytest.mark.parametrize(("in_rate", "out_rate"), RATE_PAIRS)
def test_1khz_tone_keeps_frequency_and_amplitude(in_rate: int, out_rate: int) -> None:
    y = resample(tone(1000, 1.0, in_rate, dtype=np.float32), in_rate=in_rate, out_rate=out_rate)
    # Ignore 50 ms at each edge, where the filter sees the signal start and stop.
    edge = out_rate // 20
    amplitude, residual = _fit_sinusoid(y[edge:-edge], 1000, out_rate)
    # HQ passband ripple is far below 0.01 dB (1.2e-3 relative); a frequency error of even 1 Hz over the
    # 0.9 s fitted would leave a residual of the order of the amplitude itself.
    assert amplitude == pytest.approx(0.5, rel=1.2e-3)
    assert residual < 1e-3 * 0.5


@pytest.mark.parametrize(("in_rate", "freq"), [(48000, 12000.0), (44100, 10000.0), (48000, 9000.0)])
def test_content_above_new_nyquist_is_attenuated_by_more_than_60_db(in_rate: int, freq: float) -> None:
    x = tone(freq, 1.0, in_rate, dtype=np.float32)
    y = resample(x, in_rate=in_rate, out_rate=16000)
    edge = 800
    rms_in = 0.5 / np.sqrt(2)
    rms_out = float(np.sqrt(np.mean(y[edge:-edge].astype(np.float64) ** 2)))
    assert 20 * np.log10(max(rms_out, 1e-12) / rms_in) < -60


def test_upsampling_does_not_create_images() -> None:
    # A 3 kHz tone at 8 kHz would mirror to 5 kHz (8 - 3) without the anti-imaging filter.
    y = resample(tone(3000, 1.0, 8000, dtype=np.float32), in_rate=8000, out_rate=48000)
    seg = y[2400:-2400].astype(np.float64)
    amplitude, residual = _fit_sinusoid(seg, 3000, 48000)
    assert amplitude == pytest.approx(0.5, rel=1.2e-3)
    assert 20 * np.log10(residual / (amplitude / np.sqrt(2))) < -60


def test_equal_rates_pass_through_without_copy() -> None:
    x = tone(1000, 0.1, 16000, dtype=np.float32)
    assert resample(x, in_rate=16000, out_rate=16000) is x
    stream = StreamResampler(16000, 16000)
    assert stream.process(x) is x
    as_int = np.arange(5, dtype=np.int16)
    out = resample(as_int, in_rate=16000, out_rate=16000)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [0, 1, 2, 3, 4])


def test_mono_shapes_are_kept() -> None:
    x = tone(1000, 0.2, 48000, dtype=np.float32)
    assert resample(x, in_rate=48000, out_rate=16000).shape == (3200,)
    assert resample(x[:, None], in_rate=48000, out_rate=16000).shape == (3200, 1)
    stream = StreamResampler(48000, 16000)
    total = stream.process(x).shape[0] + stream.process(x[:0], last=True).shape[0]
    assert total == 3200


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"in_rate": 0, "out_rate": 16000}, "in_rate"),
        ({"in_rate": 16000, "out_rate": -1}, "out_rate"),
        ({"in_rate": 16000.5, "out_rate": 16000}, "in_rate"),
        ({"in_rate": 16000, "out_rate": 8000, "quality": "best"}, "quality"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, word: str) -> None:
    with pytest.raises(InvalidArgument, match=word):
        resample(np.zeros(10, np.float32), **kwargs)
