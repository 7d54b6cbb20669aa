"""Speaker embeddings: who is speaking, as a 192-number vector, offline and without torch.

The pipeline's speaker model is 3D-Speaker's CAM++ (:mod:`pipeline.analysis.campplus`: the network, its
Kaldi fbank front-end, licence and provenance there). This module is what the rest of the package uses:
it keeps one API whatever model runs behind it (GE2E until 2026-12-08: :mod:`pipeline.analysis.ge2e`,
kept for comparison until the switch is measured) and re-exports what every model shares
(:mod:`pipeline.analysis.embedding`):

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
own), :func:`partial_grid` (their places, embedded on demand: :class:`PartialGrid`), :func:`cosine`,
:data:`EMBEDDING_SIZE`, :data:`MODEL_PATH` / :data:`MODEL_SHA256` (the model in use).
Cost and accuracy on real recordings: ``benchmarks/speaker_bench.py``, ``benchmarks/voices_bench.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.analysis import campplus
from pipeline.analysis.campplus import PartialGrid
from pipeline.analysis.embedding import Partials, cosine, preprocess, raise_volume, unit

__all__ = [
    "EMBEDDING_SIZE",
    "MODEL_NAME",
    "MODEL_PATH",
    "MODEL_SHA256",
    "PARTIAL_S",
    "PartialGrid",
    "Partials",
    "cosine",
    "embed",
    "partial_embeddings",
    "partial_grid",
    "preprocess",
    "raise_volume",
    "unit",
]

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
    return campplus.partial_embeddings(
        audio16k, start_s, end_s, step_s=step_s, partial_s=PARTIAL_S, trim_pauses=trim_pauses
    )


def partial_grid(
    audio16k: np.ndarray,
    start_s: float | None = None,
    end_s: float | None = None,
    *,
    step_s: float = 0.5,
    trim_pauses: bool = True,
) -> PartialGrid:
    """The places of the :data:`PARTIAL_S` partials every ``step_s`` of :func:`partial_embeddings`, embedded
    on demand (:meth:`PartialGrid.vectors <pipeline.analysis.campplus.PartialGrid.vectors>`: the same
    vectors, only for the places asked for)."""
    return campplus.partial_grid(
        audio16k, start_s, end_s, step_s=step_s, partial_s=PARTIAL_S, trim_pauses=trim_pauses
    )
