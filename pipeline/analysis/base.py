"""Shared conventions for analysers: frame grid and the :class:`Measurement` container.

Every streaming analyser in :mod:`pipeline.analysis` follows one shape::

    meter = SomeMeter(sample_rate=16000)
    for block in blocks:
        meter.process(block)
    measurement = meter.finish(...)   # a Measurement

A metric that cannot be computed is stored as ``None`` with a reason (never NaN or infinity).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

ANALYSIS_RATE = 16000
"""Sample rate of the mono analysis view (Hz)."""

FRAME_S = 0.01
"""Hop and length of one analysis frame (seconds): 10 ms, 160 samples at 16 kHz."""

FRAME_SAMPLES = round(ANALYSIS_RATE * FRAME_S)


def fit_mask(mask: np.ndarray, n: int) -> np.ndarray:
    """A per-frame ``mask`` as a bool array of ``n`` frames: cut, or padded with False (non-speech)."""
    out = np.zeros(n, dtype=bool)
    m = min(n, mask.shape[0])
    out[:m] = mask[:m]
    return out


def runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start indices and (exclusive) end indices of the runs of ``True`` in a 1-D bool array."""
    m = np.asarray(mask, dtype=bool)
    if m.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    padded = np.concatenate([[False], m, [False]]).astype(np.int8)
    diff = np.diff(padded)
    return np.flatnonzero(diff == 1), np.flatnonzero(diff == -1)


def whole_frames(rest: np.ndarray, block: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The complete ``size``-sample frames of ``rest`` followed by ``block``, as rows, and the samples
    left over for the next block (the carry of every streaming framer on the grid)."""
    x = np.concatenate([rest, block]) if rest.size else block
    whole = (x.shape[0] // size) * size
    return x[:whole].reshape(-1, size), x[whole:].copy()


@dataclass
class Measurement:
    """Metric values plus, for each metric that is ``None``, why it could not be measured."""

    values: dict[str, Any] = field(default_factory=dict)
    null_reasons: dict[str, str] = field(default_factory=dict)

    def put(self, name: str, value: Any, *, why: str | None = None) -> None:
        """Store ``value`` under ``name``; NaN/inf/None become ``None`` with ``why`` recorded.

        ``why`` should read like ``"not_measured: fewer than 0.4 s of audio"`` (a reason code, a colon, a
        human explanation).
        """
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        if value is None:
            self.values[name] = None
            self.null_reasons[name] = why or "not_measured: no value"
            return
        self.values[name] = value
        self.null_reasons.pop(name, None)

    def merge(self, other: Measurement) -> Measurement:
        """Add another measurement's values into this one (``other`` wins on conflicts) and return self."""
        for name, value in other.values.items():
            self.put(name, value, why=other.null_reasons.get(name))
        return self
