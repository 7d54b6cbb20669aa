"""pipeline.audio.filters gives scipy.signal's results bit for bit, and the run's path never imports it."""

from __future__ import annotations

import numpy as np
import pytest
from _imports import loaded_after
from scipy import signal

from pipeline.audio import filters
from pipeline.audio.filters import _BUTTER_HIGHPASS

RNG = np.random.default_rng(7)


def _same(a: np.ndarray, b: np.ndarray) -> None:
    """Bit-identical arrays (same shape, same float64 values)."""
    assert a.shape == b.shape
    assert a.dtype == b.dtype
    assert np.array_equal(a, b)


@pytest.mark.parametrize(("order", "hz", "rate"), sorted(_BUTTER_HIGHPASS))
def test_stored_butterworth_designs_are_scipys(order: int, hz: float, rate: int) -> None:
    _same(
        filters.butter_highpass_sos(order, hz, rate),
        signal.butter(order, hz, btype="highpass", fs=rate, output="sos"),
    )


def test_other_rates_are_designed_by_scipy() -> None:
    _same(
        filters.butter_highpass_sos(4, 70.0, 37800),
        signal.butter(4, 70.0, btype="highpass", fs=37800, output="sos"),
    )


@pytest.mark.parametrize("shape", [(5000,), (2, 4000), (3000, 2)])
def test_sosfilt_with_and_without_state(shape: tuple[int, ...]) -> None:
    sos = np.concatenate([filters.butter_highpass_sos(4, 70.0, 16000)] * 2)
    x = RNG.standard_normal(shape)
    axis = 0 if len(shape) == 2 and shape[1] == 2 else -1
    _same(filters.sosfilt(sos, x, axis=axis), signal.sosfilt(sos, x, axis=axis))
    zi_shape = list(x.shape)
    zi_shape[axis] = 2
    zi = RNG.standard_normal((sos.shape[0], *zi_shape))
    y, zf = filters.sosfilt(sos, x, axis=axis, zi=zi)
    y_ref, zf_ref = signal.sosfilt(sos, x, axis=axis, zi=zi)
    _same(y, y_ref)
    _same(zf, zf_ref)


def test_sosfilt_zi_and_zero_phase_filter() -> None:
    for rate in (16000, 44100, 48000):
        sos = filters.butter_highpass_sos(4, 70.0, rate)
        _same(filters.sosfilt_zi(sos), signal.sosfilt_zi(sos))
        for x in (RNG.standard_normal(9000), RNG.standard_normal((9000, 2)), RNG.random(9000, np.float32)):
            before = x.copy()
            _same(filters.sosfiltfilt(sos, x, axis=0), signal.sosfiltfilt(sos, x, axis=0))
            _same(x, before)  # the forward pass runs in the padded copy, never in the input
    with pytest.raises(ValueError, match="padlen"):
        filters.sosfiltfilt(sos, np.ones(15))


def test_fir_design_and_upsampling() -> None:
    for numtaps, cutoff, beta in ((47, 0.25, 8.0), (81, 0.25, 5.0), (41, 0.5, 5.0)):
        _same(
            filters.firwin_lowpass(numtaps, cutoff, beta=beta),
            signal.firwin(numtaps, cutoff, window=("kaiser", beta)),
        )
    for x in (
        RNG.standard_normal(1000),
        RNG.standard_normal((700, 2)),
        RNG.standard_normal(3),
        RNG.random(500, np.float32),
    ):
        _same(filters.upsample_poly(x, 4), signal.resample_poly(x, 4, 1))


def test_bilinear_and_response() -> None:
    b, a = [1.0, 2.0, 3.0], [1.0, 0.5, 40.0]
    for fs in (44100.0 * 1.01, 16000.0, 96000.0):
        got, ref = filters.bilinear(b, a, fs=fs), signal.bilinear(b, a, fs=fs)
        _same(got[0], ref[0])
        _same(got[1], ref[1])
    sos = filters.butter_highpass_sos(4, 70.0, 16000)
    freqs = np.linspace(0.0, 8000.0, 257)
    _same(filters.sos_response(sos, freqs, fs=16000), signal.sosfreqz(sos, worN=freqs, fs=16000)[1])


def test_the_run_path_does_not_import_scipy_signal() -> None:
    """The meters and the render import no ``scipy.signal`` (47 MB and 0.5 s per process); running them
    does not either."""
    code = (
        "import numpy as np\n"
        "from pipeline.analysis import fastpass, loudness, lowfreq, energy\n"
        "from pipeline.render import clip\n"
        "x = np.random.default_rng(1).standard_normal(48000) * 0.1\n"
        "loudness.integrated_loudness(x, sample_rate=44100)\n"
        "energy.speech_band(x[:16000])\n"
        "clip._highpass(x, 44100); clip._peak_envelope(x)\n"
        "lowfreq._highpass_power_response(np.linspace(0, 8000, 9))\n"
    )
    assert loaded_after(code, "scipy.signal", "scipy.stats") == [False, False]
