"""Every single-recording window that satisfies the family, scored in bulk, best non-overlapping first.

A window runs from the start of segment ``i`` to the end of segment ``j`` of one recording (never inside a
word). For each start, the ends whose expected duration (after pause shortening, plus edge room tone)
lies in the family's window form one contiguous range, found for all starts at once by binary search on
the shortened timeline (a two-pointer sweep in vectorised form). Longest run and longest pause of each
window come from range-maximum queries over the recording's runs and gaps, and its measures from the
prefix sums of :class:`~pipeline.selection.frames.RecordingIndex` (which holds that timeline): each
window ``(i, j)`` is a pair of segment indices and costs O(1), so a one-hour
recording with thousands of segments is searched in well under a second. Windows are processed in chunks
of at most :data:`MAX_PAIRS`, each reduced by non-maximum suppression, so memory stays bounded.
"""

from __future__ import annotations

import numpy as np

from pipeline.selection import scoring
from pipeline.selection.frames import RecordingIndex, float_or_nan
from pipeline.selection.plan import MAX_OVERLAP

MAX_PAIRS = 200_000
"""Most windows scored at once; longer recordings are searched in chunks of starts."""

NESTED_MAX_SHARE = 0.75
"""A nested finalist is at most this share of the finalist it lies in (see :func:`best_nested`)."""

_EPS = 1e-9


def end_ranges(idx: RecordingIndex) -> tuple[np.ndarray, np.ndarray]:
    """For every start segment, the first and last end segment whose duration fits (``lo > hi``: none)."""
    window, edge_s = idx.spec.delivery.duration_s, idx.spec.edge_s
    lo = np.searchsorted(idx.ep, idx.sp + (window.min - edge_s) - _EPS, side="left")
    hi = np.searchsorted(idx.ep, idx.sp + (window.max - edge_s) + _EPS, side="right") - 1
    lo = np.maximum(lo, np.arange(idx.starts.size))
    hi = np.minimum(hi, idx.block_last)
    return lo, np.where(idx.start_ok, hi, -1)


def _qualifying(
    idx: RecordingIndex, lo: np.ndarray, hi: np.ndarray, starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """All windows ``(i, j)`` with ``i`` in ``starts`` and ``lo[i] <= j <= hi[i]`` that satisfy every rule."""
    counts = np.maximum(hi[starts] - lo[starts] + 1, 0)
    total = int(counts.sum())
    offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    i = np.repeat(starts, counts).astype(np.int64)
    j = (np.repeat(lo[starts], counts) + offsets).astype(np.int64)
    keep = idx.end_ok[j]
    i, j = i[keep], j[keep]
    run = idx.spec.limits.min_speech_run_s.value
    if run is not None:
        keep = idx.longest_run_s(i, j) >= run - _EPS
        i, j = i[keep], j[keep]
    return i, j


def fast_score(idx: RecordingIndex, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """The fast-pass score of each window (see :mod:`pipeline.selection.scoring`; less the crossing penalty
    for a window that crosses a part boundary)."""
    start_s, end_s, duration_s = idx.starts[i], idx.ends[j], idx.clip_s(i, j)
    m = idx.measure(start_s, end_s)
    body = duration_s - idx.spec.edge_s
    m["reverb_score"] = np.full(i.size, float_or_nan(idx.rec.metrics.get("reverb_score")))
    m["bandwidth_hz"] = idx.bandwidth_in(start_s, end_s)
    m["speech_ratio"] = np.minimum(m["speech_s"] / np.maximum(body, 1e-9), 1.0)
    m["level_iqr_db"] = m["level_spread_db"]
    return scoring.penalised(scoring.total(scoring.parts(m, duration_s, idx.spec)), idx.crossings(i, j))


def _best_first(idx: RecordingIndex, i: np.ndarray, j: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Order of the windows by score, ties by start and end time."""
    return np.lexsort((idx.ends[j], idx.starts[i], -np.round(score, 9)))


def _suppress(
    idx: RecordingIndex, i: np.ndarray, j: np.ndarray, score: np.ndarray, *, limit: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy non-maximum suppression over windows of one recording: the kept ones, best first."""
    start, end = idx.starts[i], idx.ends[j]
    alive = np.ones(i.size, dtype=bool)
    spans = end - start
    kept: list[int] = []
    for k in _best_first(idx, i, j, score).tolist():
        if not alive[k]:
            continue
        kept.append(k)
        if len(kept) >= limit:
            break
        inter = np.clip(np.minimum(end, end[k]) - np.maximum(start, start[k]), 0.0, None)
        shorter = np.maximum(np.minimum(spans, spans[k]), 1e-9)
        alive &= inter / shorter <= MAX_OVERLAP + 1e-9
    keep = np.array(kept, dtype=np.int64)
    return i[keep], j[keep], score[keep]


def all_windows(idx: RecordingIndex) -> tuple[np.ndarray, np.ndarray]:
    """Every qualifying window ``(i, j)`` of one recording, in ``(i, j)`` order (for inspection and tests)."""
    lo, hi = end_ranges(idx)
    return _qualifying(idx, lo, hi, np.arange(idx.starts.size))


def best_windows(idx: RecordingIndex, *, limit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``limit`` best qualifying windows ``(i, j)`` of one recording and their fast scores, best first,
    pairwise overlapping at most :data:`~pipeline.selection.plan.MAX_OVERLAP`."""
    lo, hi = end_ranges(idx)
    counts = np.maximum(hi - lo + 1, 0)
    chunk_id = np.cumsum(counts) // MAX_PAIRS
    kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for chunk in np.unique(chunk_id[counts > 0]).tolist():
        i, j = _qualifying(idx, lo, hi, np.flatnonzero((chunk_id == chunk) & (counts > 0)))
        if i.size:
            kept.append(_suppress(idx, i, j, fast_score(idx, i, j), limit=limit))
    if not kept:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    i, j, score = (np.concatenate(parts) for parts in zip(*kept, strict=True))
    return _suppress(idx, i, j, score, limit=limit)


def best_nested(
    idx: RecordingIndex, start_s: float, end_s: float, *, max_duration_s: float
) -> tuple[int, int] | None:
    """The best-scoring qualifying window inside ``[start_s, end_s]`` no longer than ``max_duration_s``.

    Non-maximum suppression keeps one window of a run of overlapping ones, so a clean stretch inside a
    longer window that scores better on the fast pass never reaches the slow pass. The selection adds
    this window per finalist so the slow measures can compare the two. ``None`` when no qualifying window
    fits inside.
    """
    inside = np.flatnonzero((idx.starts >= start_s - 1e-6) & (idx.ends <= end_s + 1e-6))
    if inside.size == 0:
        return None
    first, last = int(inside[0]), int(inside[-1])
    lo, hi = end_ranges(idx)
    i, j = _qualifying(idx, lo, np.minimum(hi, last), np.arange(first, last + 1))
    keep = idx.clip_s(i, j) <= max_duration_s + _EPS
    i, j = i[keep], j[keep]
    if i.size == 0:
        return None
    k = int(_best_first(idx, i, j, fast_score(idx, i, j))[0])
    return int(i[k]), int(j[k])
