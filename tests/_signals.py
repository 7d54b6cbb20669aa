"""Known-answer signals shared by the test modules."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt


def tone(
    freq: float,
    seconds: float,
    rate: int,
    amplitude: float = 0.5,
    *,
    phase: float = 0.0,
    dtype: npt.DTypeLike = np.float64,
) -> np.ndarray:
    """``amplitude * sin(2 pi freq t + phase)`` for ``round(seconds * rate)`` samples at ``rate``, mono."""
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t + phase)).astype(dtype, copy=False)


def sine_amplitude(rms_dbfs: float) -> float:
    """The amplitude of a sine whose RMS is ``rms_dbfs`` (dB re full scale)."""
    return math.sqrt(2) * 10 ** (rms_dbfs / 20)


def lowpass(x: np.ndarray, cutoff_hz: float, rate: int) -> np.ndarray:
    """Elliptic low-pass (0.1 dB ripple, 80 dB stop band), run forwards and backwards: a sharp cliff."""
    import scipy.signal

    sos = scipy.signal.ellip(12, 0.1, 80, cutoff_hz / (rate / 2), output="sos")
    return scipy.signal.sosfiltfilt(sos, x)


def band_limited_noise(cutoff_hz: float, seconds: float, rate: int, *, seed: int = 0) -> np.ndarray:
    """White noise low-passed at ``cutoff_hz`` (:func:`lowpass`), RMS about -20 dBFS: its bandwidth is known."""
    rng = np.random.default_rng(seed)
    return lowpass(rng.standard_normal(round(seconds * rate)), cutoff_hz, rate) * 0.1
