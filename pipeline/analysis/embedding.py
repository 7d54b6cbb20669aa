"""What every speaker model of :mod:`pipeline.analysis.speaker` shares: pause trimming, partials, cosine.

Resemblyzer's ``preprocess_wav`` reproduced in numpy (:func:`preprocess`: volume up to -30 dBFS, never
down; pauses cut short with WebRTC VAD, keeping where each sample came from), the :class:`Partials` a
model hands out along a span, and :func:`cosine`. Used by :mod:`pipeline.analysis.campplus` (the
pipeline's model) and :mod:`pipeline.analysis.ge2e` (the earlier one); the rest of the package imports
them from :mod:`pipeline.analysis.speaker`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import webrtcvad

from pipeline.analysis.base import ANALYSIS_RATE
from pipeline.errors import InvalidArgument

TARGET_DBFS = -30.0
"""Preprocessing raises a quieter span to this RMS level (full scale = int16 maximum); louder spans stay."""
VAD_WINDOW = 480
"""Samples per VAD decision in preprocessing (30 ms)."""
VAD_AVERAGE_WIDTH = 8
VAD_MAX_SILENCE = 6
"""Speech runs are widened by ``VAD_MAX_SILENCE // 2`` windows on each side (a dilation of 7 windows)."""
INT16_MAX = 2**15 - 1


@dataclass(frozen=True)
class Partials:
    """Partial embeddings along a span: partial ``k`` covers ``[starts_s[k], ends_s[k])`` of the signal.

    Times are in seconds of the signal given (not of the span), first and last sample the partial holds
    (pauses cut out by preprocessing may lie inside); ``vectors`` is ``(n, EMBEDDING_SIZE)``, each row of unit length.
    ``heard_s`` is how much of the span the network was given (after pauses were cut short): a span of
    silence or noise that WebRTC does not call speech leaves ~0 s, and its vectors mean nothing.
    """

    starts_s: np.ndarray
    ends_s: np.ndarray
    vectors: np.ndarray
    heard_s: float

    def __len__(self) -> int:
        return int(self.vectors.shape[0])


def _moving_average(values: np.ndarray, width: int) -> np.ndarray:
    padded = np.concatenate((np.zeros((width - 1) // 2), values, np.zeros(width // 2)))
    sums = np.cumsum(padded, dtype=float)
    sums[width:] = sums[width:] - sums[:-width]
    return sums[width - 1 :] / width


def raise_volume(audio16k: np.ndarray) -> np.ndarray:
    """The span raised to :data:`TARGET_DBFS` RMS when quieter, else unchanged (float32)."""
    x = np.asarray(audio16k, dtype=np.float32)
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
    change_db = TARGET_DBFS - 20 * np.log10(rms) if rms > 0 else 0.0
    return (x * np.float32(10 ** (change_db / 20))).astype(np.float32) if change_db > 0 else x


def preprocess(audio16k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Resemblyzer's preprocessing of a 16 kHz span: ``(signal, index of each kept sample in the input)``.

    Volume up to :data:`TARGET_DBFS` (never down), then pauses shortened with WebRTC VAD (module
    docstring). The tail that does not fill a 30 ms window is dropped, as Resemblyzer does.
    """
    x = raise_volume(audio16k)
    n_windows = x.size // VAD_WINDOW
    x = x[: n_windows * VAD_WINDOW]
    pcm = np.clip(np.round(x * INT16_MAX), -32768, 32767).astype(np.int16).tobytes()
    vad = webrtcvad.Vad(3)
    step = VAD_WINDOW * 2
    flags = np.array(
        [vad.is_speech(pcm[k * step : (k + 1) * step], ANALYSIS_RATE) for k in range(n_windows)], dtype=float
    )
    mask = np.round(_moving_average(flags, VAD_AVERAGE_WIDTH)).astype(bool)
    mask = np.convolve(mask, np.ones(VAD_MAX_SILENCE + 1), mode="same") > 0
    kept = np.flatnonzero(np.repeat(mask, VAD_WINDOW)).astype(np.int32)
    return x[kept], kept


def unit(v: np.ndarray) -> np.ndarray:
    """``v`` scaled to length 1 (a zero vector stays zero): an average of embeddings made an embedding."""
    return v / max(float(np.linalg.norm(v)), 1e-12)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
    """Cosine similarity of embeddings: two vectors give a float; a ``(n, d)`` matrix and a vector give ``(n,)``."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape[-1] != b.shape[-1] or b.ndim != 1 or a.ndim not in (1, 2):
        raise InvalidArgument(f"cosine needs (n, d) or (d,) against (d,), got {a.shape} and {b.shape}")
    norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b)
    result = (a @ b) / np.where(norms > 0, norms, 1)
    return float(result) if a.ndim == 1 else result
