"""Other voices in a candidate clip: hear a plan's pieces against the speaker's voice.

Selection hears only the plans it is about to spend the slow pass on (the short list) and the ones it
returns; a plan in which another voice talks for about 2 s or more
(:func:`pipeline.analysis.voice.other_voice_spans`) is dropped and the next candidate takes its place.
What was heard goes into the plan's ``measures``: ``speaker_similarity`` (the plan's speech against the
speaker's voice), ``other_voice_s`` and ``other_voice_spans`` (``[path, start_s, end_s]`` in the
source's times).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from pipeline.analysis.base import ANALYSIS_RATE, merge_spans
from pipeline.analysis.voice import (
    HERE_MIN_COSINE,
    Voice,
    degraded_stretch,
    other_voice_threshold,
    span_finding,
)
from pipeline.errors import AudioReadError
from pipeline.selection.plan import ClipPlan, read_piece

VOICE_KEYS = ("speaker_similarity", "other_voice_s", "other_voice_spans")
"""The measures hearing adds to a plan."""

_CACHE: dict[tuple[Any, ...], tuple[float | None, list[list[Any]]]] = {}
_CACHE_SIZE = 256


def _voice_key(voice: Voice) -> bytes:
    return hashlib.blake2b(np.round(voice.vector, 5).tobytes(), digest_size=8).digest()


def hear(plan: ClipPlan, voice: Voice) -> dict[str, Any]:
    """The voice measures of ``plan`` (:data:`VOICE_KEYS`); families of one speaker share windows, so each
    piece is heard once per process. A piece that cannot be read is not heard (no spans, no similarity)."""
    similarities: list[tuple[float, int]] = []
    spans: list[list[Any]] = []
    # A noisy or reverberant window lowers the speaker's own similarity to a clean voice: without the
    # speaker as heard in that recording, judge it with a lower threshold.
    noisy = degraded_stretch(plan.measures.get("snr_db"), plan.measures.get("reverb_score"))
    threshold = other_voice_threshold(voice, is_degraded=noisy)
    for piece in plan.pieces:
        key = (piece.source, piece.start_s, piece.end_s, tuple(piece.channel_weights), _voice_key(voice))
        here = voice.recordings.get(piece.path)
        if here is not None:  # without the window's own partials: another voice in it pulls them its way
            here = here.without(piece.start_s, piece.end_s)
            if float(here.vector @ voice.vector) < HERE_MIN_COSINE:
                here = None
        here_threshold = None  # against the speaker as heard there: HERE_COSINE, no drop for noise
        key += (round(threshold, 4), None if here is None else _voice_key(here), noisy)
        if key not in _CACHE:
            if len(_CACHE) >= _CACHE_SIZE:
                _CACHE.pop(next(iter(_CACHE)))
            _CACHE[key] = _hear_piece(piece, voice, threshold, here, here_threshold, noisy)
        similarity, piece_spans = _CACHE[key]
        if similarity is not None:
            similarities.append((similarity, max(1, round(piece.end_s - piece.start_s))))
        spans.extend([piece.path, a, b] for a, b in piece_spans)
    total = sum(w for _, w in similarities)
    similarity = round(sum(s * w for s, w in similarities) / total, 4) if total else None
    return {
        "speaker_similarity": similarity,
        "other_voice_s": round(sum(b - a for _, a, b in spans), 3),
        "other_voice_spans": spans,
    }


def _hear_piece(
    piece: Any,
    voice: Voice,
    threshold: float,
    here: Voice | None,
    here_threshold: float | None,
    is_degraded: bool,
) -> tuple[float | None, list[list[float]]]:
    try:
        loaded = read_piece(piece, pad_s=0.0, rate=ANALYSIS_RATE)
    except AudioReadError:
        return None, []
    first = loaded.at(piece.start_s)
    audio = loaded.x[first : max(loaded.at(piece.end_s), first)]
    similarity, spans, _ = span_finding(
        audio,
        voice,
        offset_s=loaded.time(first),
        threshold=threshold,
        here=here,
        here_threshold=here_threshold,
        is_degraded=is_degraded,
    )
    return similarity, spans


def annotate(plan: ClipPlan, voice: Voice) -> bool:
    """Hear ``plan`` unless it was heard, store the measures in it; True when no other voice talks in it."""
    if "speaker_similarity" not in plan.measures:
        plan.measures.update(hear(plan, voice))
    return not plan.measures.get("other_voice_spans")


def avoided_spans(heard: list[list[Any]]) -> list[list[Any]]:
    """Other-voice spans ``[path, start_s, end_s]`` sorted by path, each recording's merged (:func:`merge_spans`)."""
    by_path: dict[str, list[tuple[float, float]]] = {}
    for path, a, b in heard:
        by_path.setdefault(str(path), []).append((a, b))
    return [[path, a, b] for path in sorted(by_path) for a, b in merge_spans(by_path[path])]


def carry(measures: Mapping[str, Any], plan: ClipPlan) -> ClipPlan:
    """``plan`` with the voice measures of ``measures`` (the same window before the slow pass moved its
    edges by a few tenths of a second: what was heard still holds)."""
    plan.measures.update({k: measures[k] for k in VOICE_KEYS if k in measures})
    return plan
