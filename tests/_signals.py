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
