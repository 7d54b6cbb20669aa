"""The slow pass on the finalists: Silero edge refinement, music and singing, and DNSMOS of the clip-to-be.

Each piece is read once (:func:`~pipeline.selection.plan.read_piece`: 16 kHz mono, mixed with the channel
weights the analysis used, plus a little of the surrounding silence). Silero moves a piece's outer edges when its speech probability puts them more
than :data:`REFINE_MIN_MOVE_S` away (WebRTC's edges carry hangover and noise); a refinement that would
break the family's duration or run rules is not applied. The music and singing meter then hears the
pieces (a plan with either is left without DNSMOS: selection drops it). DNSMOS then scores audio laid out as the
renderer will lay it out: edge room tone, long pauses cut to the join length, pieces joined by their own
room tone, so the score describes the clip rather than the raw window.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from pipeline.analysis.base import ANALYSIS_RATE, Analysis
from pipeline.audio.memory import release_free_memory
from pipeline.errors import AudioReadError
from pipeline.selection.frames import RecordingIndex
from pipeline.selection.limits import Rules
from pipeline.selection.plan import ClipPlan, Piece, PieceAudio, evaluate, read_piece

REFINE_SEARCH_S = 0.3
"""Silero looks this far (s) on each side of an edge for a speech boundary."""

REFINE_MIN_MOVE_S = 0.05
"""An edge moves only when Silero places it more than this (s) away: smaller moves are noise."""


def refine_piece(piece: Piece, loaded: PieceAudio) -> Piece:
    """``piece`` with its outer edges moved to Silero's speech boundaries (when they move enough)."""
    spans = _silero_edges(loaded, piece.start_s, piece.end_s)
    if not spans:
        return piece
    start, end = spans[0][0], spans[-1][1]
    # Never past the neighbouring speech (the read window already stops there) nor the file start.
    start = max(start, piece.start_s - piece.lead_room_s, 0.0)
    end = min(end, piece.end_s + piece.tail_room_s)
    new_start = start if abs(start - piece.start_s) > REFINE_MIN_MOVE_S else piece.start_s
    new_end = end if abs(end - piece.end_s) > REFINE_MIN_MOVE_S else piece.end_s
    if new_end - new_start <= 0.0 or any(p[0] < new_start or p[1] > new_end for p in piece.long_pauses):
        return piece
    return replace(
        piece,
        start_s=round(new_start, 6),
        end_s=round(new_end, 6),
        lead_room_s=round(max(piece.lead_room_s + (new_start - piece.start_s), 0.0), 6),
        tail_room_s=round(max(piece.tail_room_s + (new_end - piece.end_s), 0.0), 6),
    )


_EDGES_CACHE: dict[bytes, list[tuple[float, float]]] = {}


def _silero_edges(loaded: PieceAudio, start_s: float, end_s: float) -> list[tuple[float, float]]:
    """Silero's speech spans around ``[start_s, end_s]`` of the read audio; families of one speaker often
    short-list the very same piece, so each (audio, span) is heard once per process."""
    from pipeline.analysis.silero import refine_edges

    key = hashlib.blake2b(np.ascontiguousarray(loaded.x).tobytes(), digest_size=16)
    key.update(np.array([loaded.t0, start_s, end_s, REFINE_SEARCH_S], dtype=np.float64).tobytes())
    digest = key.digest()
    if digest not in _EDGES_CACHE:
        if len(_EDGES_CACHE) >= _DNSMOS_CACHE_SIZE:
            _EDGES_CACHE.pop(next(iter(_EDGES_CACHE)))
        _EDGES_CACHE[digest] = refine_edges(
            loaded.x, [(start_s, end_s)], offset_s=loaded.t0, search_s=REFINE_SEARCH_S
        )
    return _EDGES_CACHE[digest]


def clip_audio(pieces: Sequence[Piece], loaded: Sequence[PieceAudio], rules: Rules) -> np.ndarray:
    """The plan's audio laid out like the rendered clip (edge tone, long pauses cut, joins of room tone)."""
    edge, half_join = rules.edge_s / 2.0, rules.join_s / 2.0
    parts: list[np.ndarray] = []
    last = len(pieces) - 1
    for k, (piece, audio) in enumerate(zip(pieces, loaded, strict=True)):
        before = min(piece.lead_room_s, edge if k == 0 else half_join)
        after = min(piece.tail_room_s, edge if k == last else half_join)
        cursor = piece.start_s - before
        for p_start, p_end in piece.long_pauses:
            parts.append(audio.cut(cursor, p_start + half_join))
            cursor = p_end - half_join
        parts.append(audio.cut(cursor, piece.end_s + after))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


_DNSMOS_CACHE: dict[bytes, Analysis] = {}
_DNSMOS_CACHE_SIZE = 256
_SEGMENT_CACHE: dict[bytes, Analysis] = {}
_SAMPLED_AUDIO: dict[tuple[tuple[str, float, float], ...], np.ndarray] = {}
_SAMPLED_AUDIO_SIZE = 8

DNSMOS_LEVEL_DBFS = -23.0
"""RMS level the slow pass brings a window to before DNSMOS (near the rendered clip's level)."""

RANK_SEGMENTS = 2
"""Segments that rank a long finalist (see :func:`finish` with ``sample``): the first and the last of its
cover; the plan selection returns first is then scored on its whole cover (:func:`complete`)."""


def dnsmos_of(audio16k: np.ndarray, *, most_segments: int | None = None) -> Analysis:
    """DNSMOS of 16 kHz mono audio: ``dnsmos_ovrl``/``_sig``/``_bak`` (``None`` plus why when not measurable)
    and ``dnsmos_spread``, the highest minus the lowest OVRL of the segments scored (none for one segment):
    a large spread says part of the audio is worse than the rest, so a window nested inside may score better.

    DNSMOS's own layout scores a 9.01 s segment every 1 s (about 0.4 s of CPU each here: 2.5 s for a
    15 s clip). The clip is instead covered by the fewest 9.01 s segments, evenly spaced (2 for 15 s,
    4 for 30 s), and their calibrated scores averaged: every second is still heard, at a third of the
    cost. Shorter audio is scored as DNSMOS does (tiled). Each segment is first brought to
    :data:`DNSMOS_LEVEL_DBFS` RMS, about the level the renderer delivers (DNSMOS scores a quiet
    recording lower: 0.2 OVRL at 20 dB down, measured), so the score describes the clip as rendered;
    levelled segment by segment, a stretch of audio shared by several plans is scored once.

    ``most_segments`` (``None``: all) scores at most that many segments of the cover, evenly chosen
    among them (the first and the last for 2): an estimate for ranking, marked by the metrics
    ``dnsmos_segments`` (scored) below ``dnsmos_cover`` (the whole cover). Segments are cached by their
    audio, so scoring the whole cover later pays only for the segments not yet heard.
    """
    x = np.asarray(audio16k, dtype=np.float32)
    # Families of one speaker often short-list the very same window: score each audio once per process.
    key = hashlib.blake2b(np.ascontiguousarray(x).tobytes(), digest_size=16).digest() + bytes(
        [min(most_segments or 0, 255)]
    )
    if key in _DNSMOS_CACHE:
        return _DNSMOS_CACHE[key]
    result = _dnsmos_of(x, most_segments)
    if len(_DNSMOS_CACHE) >= _DNSMOS_CACHE_SIZE:
        _DNSMOS_CACHE.pop(next(iter(_DNSMOS_CACHE)))
    _DNSMOS_CACHE[key] = result
    return result


def _segment_dnsmos(chunk: np.ndarray) -> Analysis:
    """DNSMOS of one segment (or of short audio), once per process for the same samples."""
    from pipeline.analysis.dnsmos import dnsmos

    key = hashlib.blake2b(np.ascontiguousarray(chunk).tobytes(), digest_size=16).digest()
    if key not in _SEGMENT_CACHE:
        if len(_SEGMENT_CACHE) >= _DNSMOS_CACHE_SIZE:
            _SEGMENT_CACHE.pop(next(iter(_SEGMENT_CACHE)))
        _SEGMENT_CACHE[key] = dnsmos(chunk)
    return _SEGMENT_CACHE[key]


def _at_level(chunk: np.ndarray) -> np.ndarray:
    """``chunk`` brought to :data:`DNSMOS_LEVEL_DBFS` RMS (silence as it is).

    Each segment is levelled on its own, not by the level of the whole clip: the same stretch of audio
    then gives the same samples in every plan that holds it (a window of another family, a nested
    window), so the segment cache hears it once."""
    rms = float(np.sqrt(np.mean(np.square(chunk, dtype=np.float64)))) if chunk.size else 0.0
    if rms <= 1e-6:
        return chunk
    return (chunk * np.float32(10 ** (DNSMOS_LEVEL_DBFS / 20) / rms)).astype(np.float32)


def _dnsmos_of(x: np.ndarray, most_segments: int | None = None) -> Analysis:
    """:func:`dnsmos_of` without the cache."""
    from pipeline.analysis.dnsmos import SEGMENT_SAMPLES

    if x.size <= SEGMENT_SAMPLES:
        chunks = [x]
    else:
        count = math.ceil(x.size / SEGMENT_SAMPLES)
        starts = np.linspace(0, x.size - SEGMENT_SAMPLES, count).round().astype(np.int64)
        chunks = [x[a : a + SEGMENT_SAMPLES] for a in starts.tolist()]
    cover = len(chunks)
    if most_segments is not None and 0 < most_segments < cover:
        picked = np.linspace(0, cover - 1, most_segments).round().astype(np.int64)
        chunks = [chunks[i] for i in sorted(set(picked.tolist()))]
    release_free_memory()  # the model's working set should not stack on freed selection arrays
    scores = [_segment_dnsmos(_at_level(chunk)) for chunk in chunks]
    known = [m.metrics for m in scores if m.metrics.get("dnsmos_ovrl") is not None]
    if not known:
        why = next((m.null_reasons.get("dnsmos_ovrl") for m in scores), None)
        return Analysis(null_reasons={"dnsmos_ovrl": why or "not_measured: DNSMOS gave no score"})
    out = Analysis(
        {k: float(np.mean([v[k] for v in known])) for k in ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak")}
    )
    ovrl = [v["dnsmos_ovrl"] for v in known]
    if len(ovrl) > 1:
        out.metrics["dnsmos_spread"] = float(max(ovrl) - min(ovrl))
    if len(chunks) < cover:
        out.metrics["dnsmos_segments"] = float(len(chunks))
        out.metrics["dnsmos_cover"] = float(cover)
    return out


def sampled(plan: ClipPlan) -> bool:
    """Whether the plan's DNSMOS is a ranking estimate from part of its cover (``dnsmos_source``
    ``window_sample``), not the measure of the whole clip-to-be."""
    return plan.measures.get("dnsmos_source") == "window_sample"


def complete(plan: ClipPlan, indexes: Mapping[str, RecordingIndex]) -> ClipPlan:
    """``plan`` with DNSMOS of its whole cover when :func:`finish` ranked it on a sample (else ``plan``):
    the same audio, only the segments not yet scored cost anything. Every other measure is kept."""
    if not sampled(plan):
        return plan
    key = tuple((p.path, p.start_s, p.end_s) for p in plan.pieces)
    audio = _SAMPLED_AUDIO.pop(key, None)
    if audio is None:  # evicted: read the pieces again (their edges are already refined)
        rules = indexes[plan.pieces[0].path].rules
        try:
            loaded = [read_piece(p, pad_s=_pad_s(rules), rate=ANALYSIS_RATE) for p in plan.pieces]
        except AudioReadError as exc:
            why = f"not_measured: the source could not be read for the slow pass ({exc.reason})"
            return evaluate(plan.pieces, indexes, slow=Analysis(null_reasons={"dnsmos_ovrl": why}))
        audio = clip_audio(plan.pieces, loaded, rules)
    done = evaluate(plan.pieces, indexes, slow=dnsmos_of(audio))
    done.measures.update({k: v for k, v in plan.measures.items() if k not in done.measures})
    for key in ("dnsmos_segments", "dnsmos_cover"):
        done.measures.pop(key, None)
    return done


_CONTENT_CACHE: dict[bytes, Analysis] = {}


def content_of(
    pieces: Sequence[Piece], loaded: Sequence[PieceAudio], indexes: Mapping[str, RecordingIndex]
) -> Analysis:
    """``music_score``, ``singing_score`` and ``music_spans`` of the speech the pieces hold, joined.

    Each piece is heard with the audio read around it as context and its recording's speech mask; the
    spans are in the clip's timeline (the pieces one after the other, without joins or shortening).
    Families of one speaker often short-list the same window: each is heard once per process.
    """
    from pipeline.analysis.music import ContentFrames, content_frames, content_metrics, speech_mask_at

    work = []
    key = hashlib.blake2b(digest_size=16)
    for piece, audio in zip(pieces, loaded, strict=True):
        mask = speech_mask_at(indexes[piece.path].rec.speech_mask, audio.t0, audio.x.size)
        span = (piece.start_s - audio.t0, piece.end_s - audio.t0)
        for part in (np.ascontiguousarray(audio.x), np.asarray(span), mask):
            key.update(part.tobytes())
        work.append((audio.x, mask, span))
    digest = key.digest()
    if digest not in _CONTENT_CACHE:
        parts: list[ContentFrames] = []
        for x, mask, (start, end) in work:
            frames = content_frames(x, mask)
            lo, hi = np.searchsorted(frames.times, [start, end])
            parts.append(frames.take(int(lo), int(hi)))
        if len(_CONTENT_CACHE) >= _DNSMOS_CACHE_SIZE:
            _CONTENT_CACHE.pop(next(iter(_CONTENT_CACHE)))
        _CONTENT_CACHE[digest] = content_metrics(ContentFrames.concatenate(parts))
    return _CONTENT_CACHE[digest]


def _pad_s(rules: Rules) -> float:
    """Audio read around each piece: room for the edge search and half a join or edge."""
    return REFINE_SEARCH_S + max(rules.edge_s / 2.0, rules.join_s / 2.0)


def heard_content(plan: ClipPlan, indexes: Mapping[str, RecordingIndex]) -> str | None:
    """``music`` or ``singing`` when the plan's pieces hold it, heard as :func:`finish` hears them (and
    cached with them); None when neither is heard or the audio cannot be read."""
    from pipeline.analysis.music import has_content

    pad = _pad_s(indexes[plan.pieces[0].path].rules)
    try:
        loaded = [read_piece(p, pad_s=pad, rate=ANALYSIS_RATE) for p in plan.pieces]
    except AudioReadError:
        return None
    return has_content(content_of(plan.pieces, loaded, indexes).metrics)


def finish(
    plan: ClipPlan, indexes: Mapping[str, RecordingIndex], *, refine: bool = True, sample: bool = False
) -> ClipPlan:
    """The plan after the slow pass: edges refined (when allowed and useful), music and singing heard,
    DNSMOS in its score.

    With ``sample``, a clip longer than :data:`RANK_SEGMENTS` segments is ranked on that many of them
    (``dnsmos_source`` ``window_sample``; :func:`complete` measures the rest when it is chosen).

    A plan with music or singing (:func:`~pipeline.analysis.music.has_content`) gets no DNSMOS (selection
    drops it; see :func:`pipeline.selection.select.choose`): its measures say ``content`` and the scores."""
    from pipeline.analysis.music import has_content

    rules = indexes[plan.pieces[0].path].rules
    pad = _pad_s(rules)
    try:
        loaded = [read_piece(p, pad_s=pad, rate=ANALYSIS_RATE) for p in plan.pieces]
    except AudioReadError as exc:
        # The features were cached but the audio is gone or unreadable: keep the fast plan, say why.
        why = f"not_measured: the source could not be read for the slow pass ({exc.reason})"
        return evaluate(plan.pieces, indexes, slow=Analysis(null_reasons={"dnsmos_ovrl": why}))
    pieces = list(plan.pieces)
    refined = False
    if refine:
        moved = [refine_piece(p, a) for p, a in zip(pieces, loaded, strict=True)]
        if moved != pieces:
            trial = evaluate(moved, indexes)
            if rules.fits(trial.duration_s, trial.longest_run_s):
                pieces, refined = moved, True
    content = content_of(pieces, loaded, indexes).metrics
    found = has_content(content)
    if found is None:
        audio = clip_audio(pieces, loaded, rules)
        slow = dnsmos_of(audio, most_segments=RANK_SEGMENTS if sample else None)
        if slow.metrics.get("dnsmos_segments") is not None:
            if len(_SAMPLED_AUDIO) >= _SAMPLED_AUDIO_SIZE:
                _SAMPLED_AUDIO.pop(next(iter(_SAMPLED_AUDIO)))
            _SAMPLED_AUDIO[tuple((p.path, p.start_s, p.end_s) for p in pieces)] = audio
    else:
        slow = Analysis(null_reasons={"dnsmos_ovrl": f"not_measured: {found} was heard in the window"})
    edges = [
        {"start_s": round(new.start_s - old.start_s, 3), "end_s": round(new.end_s - old.end_s, 3)}
        for old, new in zip(plan.pieces, pieces, strict=True)
    ]
    extra = {"edges_refined": refined, "edge_moves_s": edges, "fast_score": round(plan.score, 4), **content}
    if found is not None:
        extra["content"] = found
    return evaluate(pieces, indexes, slow=slow, extra=extra)
