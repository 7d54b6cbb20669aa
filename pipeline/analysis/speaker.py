"""Speaker embeddings: who is speaking, as a 192-number vector, offline and without torch.

The pipeline's speaker model is 3D-Speaker's CAM++ (:mod:`pipeline.analysis.campplus`: the network, its
Kaldi fbank front-end, licence and provenance there). This module is what the rest of the package uses:
it keeps one API whatever model runs behind it (GE2E until 2026-12-08: :mod:`pipeline.analysis.ge2e`,
kept for comparison until the switch is measured) and holds what every model shares:

1. **preprocessing** (:func:`preprocess`): the span is turned up (never down) to -30 dBFS RMS, then pauses
   are shortened: WebRTC VAD (aggressiveness 3) on 30 ms windows, smoothed over 8 windows, each speech
   run widened by 3 windows on each side; everything else is cut out, so a long pause shrinks to about
   0.2 s. It also returns where each kept sample came from, so partial embeddings keep the times of the
   original signal (Resemblyzer's ``preprocess_wav``, reproduced in numpy);
2. **partials** (:class:`Partials`): embeddings along a span with the times each covers;
3. **cosine** (:func:`cosine`): similarity of vectors (CAM++'s lie in [-1, 1]; another speaker scores
   about 0.07 at the median, the same speaker 0.5-0.9: BENCHMARKS.md, "CAM++ against GE2E").

Public API: :func:`embed` (one vector for a span of the 16 kHz analysis signal: CAM++ hears it whole),
:func:`partial_embeddings` (:data:`PARTIAL_S` partials every ``step_s`` along a span, each heard on its
own), :func:`cosine`, :data:`EMBEDDING_SIZE`, :data:`MODEL_PATH` / :data:`MODEL_SHA256` (the model in use).
Cost and accuracy on real recordings: ``benchmarks/speaker_bench.py``, ``benchmarks/voices_bench.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import webrtcvad

from pipeline.analysis.base import ANALYSIS_RATE
from pipeline.errors import InvalidArgument

MODEL_NAME = "campplus"
"""The speaker model behind this API (part of the run's analysis settings: cached partials of another
model are never reused)."""
MODEL_PATH = Path(__file__).resolve().parent / "models" / "campplus.onnx"
"""The model file in use (:data:`pipeline.analysis.campplus.MODEL_PATH`)."""
MODEL_SHA256 = "1859c0a3371c360c7aea3b3c724248d8649cd6fafad9516b92f540425de18613"
"""Its sha256 (:data:`pipeline.analysis.campplus.MODEL_SHA256`, checked on loading)."""
EMBEDDING_SIZE = 192
"""Numbers per embedding (CAM++; GE2E gave 256)."""
PARTIAL_S = 1.5
"""Seconds of speech each partial hears (CAM++ partials of 1.5 s: BENCHMARKS.md, "CAM++ against GE2E")."""
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


def embed(
    audio16k: np.ndarray,
    start_s: float | None = None,
    end_s: float | None = None,
    *,
    trim_pauses: bool = True,
) -> np.ndarray:
    """The speaker embedding (unit :data:`EMBEDDING_SIZE`-vector) of ``[start_s, end_s)`` of a 16 kHz mono
    signal: the model hears the span whole, pauses cut short unless ``trim_pauses=False``
    (:func:`pipeline.analysis.campplus.embed`)."""
    from pipeline.analysis import campplus

    return campplus.embed(audio16k, start_s, end_s, trim_pauses=trim_pauses)


def partial_embeddings(
    audio16k: np.ndarray,
    start_s: float | None = None,
    end_s: float | None = None,
    *,
    step_s: float = 0.5,
    trim_pauses: bool = True,
) -> Partials:
    """Embeddings of :data:`PARTIAL_S` partials every ``step_s`` (at most :data:`PARTIAL_S`: side by side)
    along ``[start_s, end_s)`` of a 16 kHz mono signal, each heard on its own
    (:func:`pipeline.analysis.campplus.partial_embeddings`, ``pooling="separate"``).

    With ``trim_pauses`` the partials lie on the speech with long pauses cut short, so a partial may span
    more of the signal than :data:`PARTIAL_S`; its times say which part.
    """
    from pipeline.analysis import campplus

    return campplus.partial_embeddings(
        audio16k, start_s, end_s, step_s=step_s, partial_s=PARTIAL_S, trim_pauses=trim_pauses
    )


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
    """Cosine similarity of embeddings: two vectors give a float; a ``(n, d)`` matrix and a vector give ``(n,)``."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape[-1] != b.shape[-1] or b.ndim != 1 or a.ndim not in (1, 2):
        raise InvalidArgument(f"cosine needs (n, d) or (d,) against (d,), got {a.shape} and {b.shape}")
    norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b)
    result = (a @ b) / np.where(norms > 0, norms, 1)
    return float(result) if a.ndim == 1 else result
