"""Every single-recording window that satisfies the family, scored in bulk, best non-overlapping first.

A window runs from the start of segment ``i`` to the end of segment ``j`` of one recording (never inside a
word). For each start, the ends whose expected duration (after pause shortening, plus edge room tone)
lies in the family's window form one contiguous range, found for all starts at once by binary search on
the shortened timeline (a two-pointer sweep in vectorised form). Longest run and longest pause of each
window come from range-maximum queries over the recording's runs and gaps, and its measures from the
prefix sums of :class:`~pipeline.selection.frames.RecordingIndex`: each window costs O(1), so a one-hour
recording with thousands of segments is searched in well under a second. Windows are processed in chunks
of at most :data:`MAX_PAIRS`, each reduced by non-maximum suppression, so memory stays bounded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.selection import scoring
from pipeline.selection.frames import RecordingIndex
from pipeline.selection.limits import MIN_EDGE_GAP_S, SPLIT_PAUSE_S, Rules
from pipeline.selection.plans import MAX_OVERLAP

MAX_PAIRS = 200_000
"""Most windows scored at once; longer recordings are searched in chunks of starts."""

_EPS = 1e-9


class RangeMax:
    """Sparse table for O(1) maximum queries over a fixed array of non-negative values."""

    def __init__(self, values: np.ndarray) -> None:
        v = np.asarray(values, dtype=np.float64)
        n = max(v.size, 1)
        levels = [np.concatenate([v, np.zeros(n - v.size)])]
        width = 1
        while 2 * width <= n:
            prev = levels[-1]
            nxt = np.zeros(n)
            nxt[: n - width] = np.maximum(prev[: n - width], prev[width:])
            levels.append(nxt)
            width *= 2
        self._table = np.stack(levels)

    def query(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Maximum of ``values[lo..hi]`` (inclusive) per query; 0 where ``lo > hi``."""
        lo = np.asarray(lo, dtype=np.int64)
        hi = np.asarray(hi, dtype=np.int64)
        length = hi - lo + 1
        ok = length > 0
        safe = np.where(ok, length, 1)
        k = np.floor(np.log2(safe)).astype(np.int64)
        lo_c = np.where(ok, lo, 0)
        right = np.where(ok, hi - (1 << k) + 1, 0)
        out = np.maximum(self._table[k, lo_c], self._table[k, right])
        return np.where(ok, out, 0.0)


@dataclass
class Layout:
    """One recording's segments seen through the family's rules."""

    starts: np.ndarray
    ends: np.ndarray
    gaps: np.ndarray
    sp: np.ndarray  # segment starts on the shortened timeline
    ep: np.ndarray  # segment ends on the shortened timeline
    block_last: np.ndarray  # per segment: last segment index before the next enormous gap
    start_ok: np.ndarray
    end_ok: np.ndarray
    run_id: np.ndarray
    run_first: np.ndarray
    run_last: np.ndarray
    runs: RangeMax
    pauses: RangeMax
    long_cum: np.ndarray


def layout(idx: RecordingIndex, rules: Rules) -> Layout:
    """Shortened timeline, blocks, runs and edge eligibility of a recording's segments."""
    s, e = idx.starts, idx.ends
    n = s.size
    gaps = s[1:] - e[:-1]
    short = rules.shortened(gaps)
    sp = np.zeros(n)
    ep = np.zeros(n)
    if n:
        lengths = e - s
        ep = np.cumsum(lengths) + np.concatenate([[0.0], np.cumsum(short)])
        sp = ep - lengths
    split = gaps > SPLIT_PAUSE_S
    block_id = np.concatenate([[0], np.cumsum(split)]).astype(np.int64)
    last_of_block = (
        np.concatenate([np.flatnonzero(split), [n - 1]]).astype(np.int64) if n else np.zeros(0, np.int64)
    )
    block_last = last_of_block[block_id] if n else np.zeros(0, np.int64)
    wide = gaps >= MIN_EDGE_GAP_S - _EPS
    start_ok = np.concatenate([[True], wide]) if n else np.zeros(0, bool)
    end_ok = np.concatenate([wide, [True]]) if n else np.zeros(0, bool)
    brk = (short >= rules.min_pause_s - _EPS) | split
    run_id = np.concatenate([[0], np.cumsum(brk)]).astype(np.int64) if n else np.zeros(0, np.int64)
    n_runs = int(run_id[-1]) + 1 if n else 0
    run_first = np.searchsorted(run_id, np.arange(n_runs), side="left")
    run_last = np.searchsorted(run_id, np.arange(n_runs), side="right") - 1
    run_len = ep[run_last] - sp[run_first] if n else np.zeros(0)
    pause_len = np.where(short >= rules.min_pause_s - _EPS, short, 0.0)
    long_cum = np.concatenate([[0], np.cumsum(rules.is_long(gaps))]).astype(np.int64)
    return Layout(
        starts=s,
        ends=e,
        gaps=gaps,
        sp=sp,
        ep=ep,
        block_last=block_last,
        start_ok=start_ok,
        end_ok=end_ok,
        run_id=run_id,
        run_first=run_first,
        run_last=run_last,
        runs=RangeMax(run_len),
        pauses=RangeMax(pause_len),
        long_cum=long_cum,
    )


def end_ranges(lay: Layout, rules: Rules) -> tuple[np.ndarray, np.ndarray]:
    """For every start segment, the first and last end segment whose duration fits (``lo > hi``: none)."""
    n = lay.starts.size
    first = np.arange(n)
    lo = np.searchsorted(lay.ep, lay.sp + (rules.min_duration_s - rules.edge_s) - _EPS, side="left")
    hi = np.searchsorted(lay.ep, lay.sp + (rules.max_duration_s - rules.edge_s) + _EPS, side="right") - 1
    lo = np.maximum(lo, first)
    hi = np.minimum(hi, lay.block_last)
    hi = np.where(lay.start_ok, hi, -1)
    return lo, hi


def pairs(lo: np.ndarray, hi: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All ``(i, j)`` with ``i`` in ``starts`` and ``lo[i] <= j <= hi[i]``."""
    counts = np.maximum(hi[starts] - lo[starts] + 1, 0)
    total = int(counts.sum())
    if total == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    i = np.repeat(starts, counts)
    offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    j = np.repeat(lo[starts], counts) + offsets
    return i.astype(np.int64), j.astype(np.int64)


@dataclass
class Windows:
    """Arrays describing windows ``(i, j)`` of one recording."""

    i: np.ndarray
    j: np.ndarray
    start_s: np.ndarray
    end_s: np.ndarray
    duration_s: np.ndarray
    longest_run_s: np.ndarray
    max_pause_s: np.ndarray
    long_pauses: np.ndarray
    score: np.ndarray

    def take(self, keep: np.ndarray) -> Windows:
        """The windows selected by ``keep`` (indices or a mask)."""
        return Windows(**{k: getattr(self, k)[keep] for k in self.__dataclass_fields__})


def describe(lay: Layout, i: np.ndarray, j: np.ndarray, rules: Rules) -> Windows:
    """Durations, runs and pauses of windows ``(i, j)`` after shortening (score left at 0)."""
    span = lay.ep[j] - lay.sp[i]
    ri, rj = lay.run_id[i], lay.run_id[j]
    same = ri == rj
    first = lay.ep[lay.run_last[ri]] - lay.sp[i]
    last = lay.ep[j] - lay.sp[lay.run_first[rj]]
    middle = lay.runs.query(ri + 1, rj - 1)
    longest = np.where(same, span, np.maximum(np.maximum(first, last), middle))
    return Windows(
        i=i,
        j=j,
        start_s=lay.starts[i],
        end_s=lay.ends[j],
        duration_s=span + rules.edge_s,
        longest_run_s=longest,
        max_pause_s=lay.pauses.query(i, j - 1),
        long_pauses=lay.long_cum[j] - lay.long_cum[i],
        score=np.zeros(i.size),
    )


def fast_score(idx: RecordingIndex, w: Windows, rules: Rules) -> np.ndarray:
    """The fast-pass score of each window (see :mod:`pipeline.selection.scoring`)."""
    m = idx.measure(w.start_s, w.end_s)
    body = w.duration_s - rules.edge_s
    ratio = np.minimum(m["speech_s"] / np.maximum(body, 1e-9), 1.0)
    metrics = idx.rec.metrics
    reverb = _metric(metrics.get("reverb_score"))
    parts = scoring.parts(
        snr_db=m["snr_db"],
        clipped_events=m["clipped_events"],
        reverb_score=np.full(w.i.size, reverb),
        bandwidth_hz=idx.bandwidth_in(w.start_s, w.end_s),
        speech_ratio=ratio,
        level_iqr_db=m["level_spread_db"],
        dnsmos_ovrl=m["dnsmos_ovrl"],
        duration_s=w.duration_s,
        rules=rules,
    )
    return scoring.total(parts)


def _metric(value: object) -> float:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) else math.nan


def suppress_windows(w: Windows, *, limit: int, max_overlap: float = MAX_OVERLAP) -> Windows:
    """Greedy non-maximum suppression over windows of one recording (best score first)."""
    if w.i.size == 0:
        return w
    order = np.lexsort((w.end_s, w.start_s, -np.round(w.score, 9)))
    alive = np.ones(w.i.size, dtype=bool)
    spans = w.end_s - w.start_s
    kept: list[int] = []
    for k in order.tolist():
        if not alive[k]:
            continue
        kept.append(k)
        if len(kept) >= limit:
            break
        inter = np.clip(np.minimum(w.end_s, w.end_s[k]) - np.maximum(w.start_s, w.start_s[k]), 0.0, None)
        shorter = np.maximum(np.minimum(spans, spans[k]), 1e-9)
        alive &= inter / shorter <= max_overlap + 1e-9
    return w.take(np.array(kept, dtype=np.int64))


def _qualifying(lay: Layout, lo: np.ndarray, hi: np.ndarray, starts: np.ndarray, rules: Rules) -> Windows:
    """The windows with a start in ``starts`` that satisfy every rule (unscored)."""
    i, j = pairs(lo, hi, starts)
    keep = lay.end_ok[j]
    w = describe(lay, i[keep], j[keep], rules)
    if rules.min_run_s is not None:
        w = w.take(w.longest_run_s >= rules.min_run_s - _EPS)
    return w


def all_windows(idx: RecordingIndex, rules: Rules) -> Windows:
    """Every qualifying window of one recording, unscored and in ``(i, j)`` order (for inspection and tests)."""
    lay = layout(idx, rules)
    lo, hi = end_ranges(lay, rules)
    return _qualifying(lay, lo, hi, np.arange(lay.starts.size), rules)


def best_windows(idx: RecordingIndex, rules: Rules, *, limit: int) -> Windows:
    """The ``limit`` best qualifying windows of one recording, pairwise overlapping at most 50 %."""
    lay = layout(idx, rules)
    lo, hi = end_ranges(lay, rules)
    counts = np.maximum(hi - lo + 1, 0)
    chunk_id = np.cumsum(counts) // MAX_PAIRS
    kept: list[Windows] = []
    for chunk in np.unique(chunk_id[counts > 0]).tolist():
        w = _qualifying(lay, lo, hi, np.flatnonzero((chunk_id == chunk) & (counts > 0)), rules)
        if w.i.size:
            w.score = fast_score(idx, w, rules)
            kept.append(suppress_windows(w, limit=limit))
    if not kept:
        return describe(lay, np.zeros(0, np.int64), np.zeros(0, np.int64), rules)
    fields = Windows.__dataclass_fields__
    merged = Windows(**{k: np.concatenate([getattr(w, k) for w in kept]) for k in fields})
    return suppress_windows(merged, limit=limit)


NESTED_MAX_SHARE = 0.75
"""A nested finalist is at most this share of the finalist it lies in (see :func:`best_nested`)."""


def best_nested(
    idx: RecordingIndex, rules: Rules, start_s: float, end_s: float, *, max_duration_s: float
) -> Windows:
    """The best-scoring qualifying window inside ``[start_s, end_s]`` no longer than ``max_duration_s``.

    Non-maximum suppression keeps one window of a run of overlapping ones, so a clean stretch inside a
    longer window that scores better on the fast pass never reaches the slow pass. The selection adds
    this window per finalist so the slow measures can compare the two. Returns at most one window (none
    when no qualifying window fits inside).
    """
    lay = layout(idx, rules)
    inside = np.flatnonzero((lay.starts >= start_s - 1e-6) & (lay.ends <= end_s + 1e-6))
    if inside.size == 0:
        return describe(lay, np.zeros(0, np.int64), np.zeros(0, np.int64), rules)
    first, last = int(inside[0]), int(inside[-1])
    lo, hi = end_ranges(lay, rules)
    hi = np.minimum(hi, last)
    starts = np.arange(first, last + 1)
    w = _qualifying(lay, lo, hi, starts, rules)
    w = w.take(w.duration_s <= max_duration_s + _EPS)
    if w.i.size == 0:
        return w
    w.score = fast_score(idx, w, rules)
    order = np.lexsort((w.end_s, w.start_s, -np.round(w.score, 9)))
    return w.take(order[:1])
